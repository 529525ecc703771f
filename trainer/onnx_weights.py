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


def read_onnx(path: str | Path):
    """The ONNX model in `path`, or one clear UnveilError."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise UnveilError(f"ONNX file not found: {path}")
    try:
        return onnx.load(str(path))
    except Exception as exc:
        raise UnveilError(f"{path} is not an ONNX file ({type(exc).__name__}: {str(exc)[:150]})") from None


def state_dict_from_onnx(path: str | Path, model=None) -> dict[str, torch.Tensor]:
    """{state-dict key: tensor} for every weight the ONNX file names (see the module doc); `model`: the file
    already read (read_onnx)."""
    from onnx import numpy_helper

    model = read_onnx(path) if model is None else model
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


def unfold_batchnorm_into(network: torch.nn.Module, path: str | Path) -> int:
    """Load an ONNX file whose Conv+BatchNorm pairs the exporter folded (one Conv with an unnamed weight and bias)
    into `network`, which still has the BatchNorm after each bias-free conv: the conv takes the folded weight and
    the BatchNorm becomes the identity plus the folded bias (gamma 1, running mean 0, running variance 1 - eps).
    In eval mode that is the exported function exactly; train it with the BatchNorm statistics frozen
    (`freeze_batchnorm`), since batch statistics would re-normalise it into a different function.
    Returns how many convs were loaded; named weights (the head) are loaded as they are."""
    from onnx import numpy_helper

    model = read_onnx(path)
    state = state_dict_from_onnx(path, model)
    arrays = {init.name: init for init in model.graph.initializer}
    modules = dict(network.named_modules())
    loaded = 0
    with torch.no_grad():
        for node in model.graph.node:
            if node.op_type != "Conv" or len(node.input) < 3 or node.input[1].startswith(PREFIX):
                continue
            if node.input[1] not in arrays or not node.name.startswith(f"/{PREFIX[:-1]}/"):
                continue
            conv_name = node.name.split("/")[-2]            # "/network/down.0/down.0.0/Conv" -> "down.0.0"
            parent, _, index = conv_name.rpartition(".")
            conv, norm = modules.get(conv_name), modules.get(f"{parent}.{int(index) + 1}") if index.isdigit() else None
            if not isinstance(conv, torch.nn.Conv2d) or not isinstance(norm, torch.nn.BatchNorm2d):
                raise UnveilError(f"{path}: conv {conv_name} has no BatchNorm after it in this network")
            conv.weight.copy_(torch.from_numpy(np.array(numpy_helper.to_array(arrays[node.input[1]]))))
            norm.weight.fill_(1.0)
            norm.bias.copy_(torch.from_numpy(np.array(numpy_helper.to_array(arrays[node.input[2]]))))
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)
            loaded += 1
        params = network.state_dict()
        for key, value in state.items():
            target = params.get(key)
            if target is None or target.shape != value.shape:
                raise UnveilError(f"{path}: weight {key} does not fit this network")
            target.copy_(value)
    if not loaded:
        raise UnveilError(f"{path} holds no folded convs to unfold")
    return loaded


def freeze_batchnorm(network: torch.nn.Module) -> None:
    """Put every BatchNorm in eval mode (running statistics used and not updated) while the rest trains."""
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()
