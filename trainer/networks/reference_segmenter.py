"""The reference-conditioned segmenter: "is this pixel covered now, given how this person's face looked when clean?"

Inputs: the current aligned crop and a clean crop of the same person from another moment (the track's reference),
both at the contract's crop size. It sees the two and their difference, and learns which differences are the
person's own (expression, light, a blink, glasses present in both) and which are an occluder. Small on purpose: it
runs on every face of every frame that has a reference.
"""
from __future__ import annotations

import torch
from torch import nn

from trainer.networks.segmenter import _block, unet_pass
from trainer.registry import NETWORKS


@NETWORKS.register("reference_segmenter")
class ReferenceSegmenter(nn.Module):
    contract_kind = "occlusion_change"
    input_roles = ("image", "reference")
    output_roles = ("mask",)

    def __init__(self, crop_size: int = 64, widths: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        self.crop_size = int(crop_size)
        self.down = nn.ModuleList([_block(9, widths[0])] + [_block(widths[i - 1], widths[i], 2) for i in range(1, len(widths))])
        self.up = nn.ModuleList([_block(widths[i] + widths[i - 1], widths[i - 1]) for i in range(len(widths) - 1, 0, -1)])
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, image: torch.Tensor, reference: torch.Tensor) -> dict[str, torch.Tensor]:
        x = torch.cat([image * 2.0 - 1.0, reference * 2.0 - 1.0, (image - reference) * 2.0], dim=1)
        logits = unet_pass(self, x)
        return {"mask": torch.sigmoid(logits), "logits": logits}
