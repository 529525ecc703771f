"""Networks register themselves in trainer.registry.NETWORKS on import; import this package to get them all.

Every generator network follows one interface (what the exporter and the trainer rely on):
  - attributes `contract_kind` (see realtime.contract.KINDS), `input_roles` (e.g. ("image",) or ("image", "mask")),
    `output_roles` (e.g. ("image", "mask", "coarse")), `crop_size` (int);
  - `forward(*inputs)` takes tensors in `input_roles` order: images N x 3 x S x S RGB in [0, 1], masks N x 1 x S x S in
    [0, 1] with 1 = occluded; it returns a dict role -> tensor with every role of `output_roles`
    (images RGB in [0, 1], masks in [0, 1]) plus any extra training-only entries.
"""
