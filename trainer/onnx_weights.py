"""Read a network's weights back out of an Unveil ONNX file, to warm-start training from a shipped model.

Run folders (runs/, git-ignored) do not outlive the machine they trained on; the ONNX files in realtime/models do.
The exporter wraps the network as `network`, so its initializers are named `network.<state-dict key>`. Two
exceptions, both handled here:
- a spectral-norm conv (symmfcnet's RecNet) is exported with its weight already divided by sigma, as an unnamed
  constant: it is recovered from the Conv node that also reads `network.<module>.bias`, and stored as the weight
  with sigma = 1 (the same function; training re-estimates sigma, which is then about 1);
- constants the exporter made (shapes, scalars) are not weights and are ignored.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from realtime.errors import UnveilError

PREFIX = "network."


def state_dict_from_onnx(path: str | Path) -> dict[str, torch.Tensor]:
    """{state-dict key: tensor} for every weight the ONNX file names (see the module doc)."""
    import onnx
    from onnx import numpy_helper

    path = Path(path)
    if not path.is_file():
        raise UnveilError(f"ONNX file not found: {path}")
    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise UnveilError(f"{path} is not an ONNX file ({type(exc).__name__}: {str(exc)[:150]})") from None
    arrays = {init.name: init for init in model.graph.initializer}
    state = {name[len(PREFIX):]: torch.from_numpy(np.array(numpy_helper.to_array(init)))
             for name, init in arrays.items() if name.startswith(PREFIX)}
    for node in model.graph.node:
        if node.op_type != "Conv" or len(node.input) < 3:
            continue
        weight, bias = node.input[1], node.input[2]
        if weight.startswith(PREFIX) or not bias.startswith(PREFIX) or weight not in arrays:
            continue
        module = bias[len(PREFIX):-len(".bias")]
        state[f"{module}.weight"] = torch.from_numpy(np.array(numpy_helper.to_array(arrays[weight])))
        state[f"{module}.sigma"] = torch.ones(())
    if not state:
        raise UnveilError(f"{path} names no network weights (not exported by `unveil export`?)")
    return state
