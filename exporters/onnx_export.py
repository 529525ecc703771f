"""`unveil export CHECKPOINT -o MODEL.onnx`: a generator network -> ONNX with its model contract in the metadata.

- Input tensors are named by their roles ("image", "mask"); outputs too, except the completed image, which is
  "completed" (ONNX names must be unique, and "image" is the input). Batch axis dynamic; inputs and outputs float32
  (an fp16 export keeps float32 I/O and casts at the boundaries, so the runtime needs no special case).
- Recurrent networks (a `state_inputs` tuple and a `recurrent` map state input -> output role, e.g.
  trainer.networks.recurrent) get their states as extra inputs after the roles, with the batch axis dynamic too, and
  the contract's `recurrent` names the output tensor each state is fed back from; the parity check runs with a
  non-zero state (the clean crop), so a state path that differs between torch and onnxruntime fails the export.
- The contract (realtime.contract.ModelContract) goes into metadata_props under realtime.contract.METADATA_KEY.
- The file passes onnx.checker, then onnxruntime and torch run the same real face crop (the public-domain astronaut,
  aligned exactly as at inference, with a synthetic occluder) and the export fails when they differ by more than the
  tolerance.
torch's dynamo exporter is tried first; a network it cannot export falls back to the TorchScript exporter.
"""
from __future__ import annotations

import argparse
import copy
import functools
import io
import logging
import tempfile
import warnings
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from realtime.align import DEFAULT_MARGIN, DEFAULT_TEMPLATE
from realtime.contract import METADATA_KEY, ModelContract
from realtime.errors import UnveilError

FP32_TOLERANCE = 1e-3
FP16_TOLERANCE = 3e-2


class RoleOutputs(nn.Module):
    """Returns the network's output roles as a tuple (ONNX wants positional outputs); optional half precision
    inside with float32 at the boundaries."""

    def __init__(self, network: nn.Module, half: bool = False):
        super().__init__()
        self.network = network.half() if half else network
        self.half = half
        self.output_roles = tuple(network.output_roles)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.half:
            inputs = tuple(x.half() for x in inputs)
        out = self.network(*inputs)
        return tuple(out[role].float() for role in self.output_roles)


ROLE_CHANNELS = {"image": 3, "mask": 1, "coarse": 3}


def state_inputs(network: nn.Module) -> tuple[str, ...]:
    """Names of a recurrent network's state inputs (after its role inputs); () for a feed-forward network."""
    return tuple(getattr(network, "state_inputs", ()))


def input_names(network: nn.Module) -> list[str]:
    return list(network.input_roles) + list(state_inputs(network))


def example_inputs(network: nn.Module, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random tracing inputs in the network's input roles (images in [0, 1], binary masks), then its states (random
    values shaped like the output role each is fed back from). Trace with batch 2: torch.export specialises a
    dimension of size 1 and would lose the dynamic batch axis."""
    generator = torch.Generator().manual_seed(seed)
    size = network.crop_size
    tensors = []
    for role in network.input_roles:
        if role in ("image", "reference"):
            tensors.append(torch.rand(batch, 3, size, size, generator=generator))
        else:
            tensors.append((torch.rand(batch, 1, size, size, generator=generator) > 0.7).float())
    for name in state_inputs(network):
        channels = ROLE_CHANNELS[network.recurrent[name]]
        tensors.append(torch.rand(batch, channels, size, size, generator=generator))
    return tuple(tensors)


def output_names(network: nn.Module) -> dict[str, str]:
    """Output role -> tensor name: "completed" for the image, the role itself otherwise (unless an input has it)."""
    return {role: "completed" if role == "image" else (f"{role}_out" if role in network.input_roles else role)
            for role in network.output_roles}


def network_contract(network: nn.Module, *, name: str = "", margin: float = DEFAULT_MARGIN,
                     template: str = DEFAULT_TEMPLATE,
                     threshold: float | None = None) -> ModelContract:
    outputs = output_names(network)
    recurrent = getattr(network, "recurrent", {})
    for state, role in recurrent.items():
        if role not in outputs:
            raise UnveilError(f"recurrent state {state!r} is fed back from output role {role!r}, which the network "
                              f"does not output ({', '.join(outputs)})")
    contract = ModelContract(
        kind=network.contract_kind,
        crop_size=int(network.crop_size),
        inputs={role: role for role in network.input_roles},
        outputs=outputs,
        recurrent={state: outputs[role] for state, role in recurrent.items()},
        template=template,
        margin=float(margin),
        threshold=None if threshold is None else float(threshold),
        output_scale=int(getattr(network, "output_scale", 1)),
        name=name,
    )
    contract.validate()
    return contract


def _torch_export(module: nn.Module, inputs: tuple[torch.Tensor, ...], path: Path, input_names: list[str],
                  output_names: list[str], opset: int, dynamo: bool) -> None:
    options: dict = {"dynamo": dynamo}
    if dynamo:
        # forward(*inputs) packs the inputs into one tuple argument, hence the nesting.
        options["dynamic_shapes"] = (tuple({0: torch.export.Dim("batch", min=1, max=4096)} for _ in inputs),)
    else:
        options["dynamic_axes"] = {name: {0: "batch"} for name in input_names + output_names}
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)  # opset up-conversion and missing-torchvision notes are noise here
    try:
        with warnings.catch_warnings(), redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")  # the exporters are chatty; failures still raise
            torch.onnx.export(module, inputs, str(path), input_names=input_names, output_names=output_names,
                              opset_version=opset, **options)
    finally:
        onnx_logger.setLevel(level)


EXPORTERS = ("auto", "dynamo", "torchscript")


def export_graph(module: nn.Module, inputs: tuple[torch.Tensor, ...], path: Path, input_names: list[str],
                 output_names: list[str], opset: int, exporter: str = "auto") -> str:
    """Write the ONNX graph; returns which exporter made it ("dynamo" or "torchscript").

    "auto" tries torch's default dynamo exporter and falls back to the TorchScript one for graphs it refuses;
    "torchscript" alone is ~50x faster to run (what the tests use)."""
    if exporter not in EXPORTERS:
        raise UnveilError(f"unknown exporter {exporter!r} (choose {', '.join(EXPORTERS)})")
    first: Exception | None = None
    if exporter in ("auto", "dynamo"):
        try:
            _torch_export(module, inputs, path, input_names, output_names, opset, dynamo=True)
            return "dynamo"
        except Exception as exc:  # the dynamo exporter refuses some graphs; the TorchScript one often copes
            if exporter == "dynamo":
                raise UnveilError(f"dynamo ONNX export failed: {type(exc).__name__}: {str(exc)[:300]}") from None
            first = exc
    try:
        _torch_export(module, inputs, path, input_names, output_names, opset, dynamo=False)
        return "torchscript"
    except Exception as second:
        before = f"dynamo: {type(first).__name__}: {str(first)[:200]}; " if first else ""
        raise UnveilError(f"ONNX export failed ({before}torchscript: {type(second).__name__}: {str(second)[:200]})") from None


def write_contract(path: Path, contract: ModelContract) -> None:
    """Put the contract into metadata_props, check the model, save it back as one file."""
    import onnx

    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key != METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    entry = model.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, contract.to_json()
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:
        raise UnveilError(f"exported model fails onnx.checker: {str(exc).splitlines()[0][:200]}") from None
    onnx.save(model, str(path))
    # the dynamo exporter may have written the weights beside the file; they are inside it now
    sidecar = path.with_name(path.name + ".data")
    if sidecar.exists():
        sidecar.unlink()


@dataclass(frozen=True)
class ExportResult:
    contract: ModelContract
    exporter: str           # "dynamo" or "torchscript"
    max_abs_diff: float     # onnxruntime vs torch (float32) on the parity crops


def export_network(network: nn.Module, path: str | Path, **options) -> ModelContract:
    """Export, write the contract, check with onnx.checker and (by default) check parity; returns the contract.

    Options are those of `export_with_report`.
    """
    return export_with_report(network, path, **options).contract


def export_with_report(
    network: nn.Module,
    path: str | Path,
    *,
    opset: int = 17,
    fp16: bool = False,
    name: str = "",
    margin: float = DEFAULT_MARGIN,
    template: str = DEFAULT_TEMPLATE,
    threshold: float | None = None,
    tolerance: float | None = None,
    parity: bool = True,
    exporter: str = "auto",
) -> ExportResult:
    path = Path(path)
    if not path.parent.is_dir():
        raise UnveilError(f"output folder does not exist: {path.parent}")
    network = network.eval()
    contract = network_contract(network, name=name, margin=margin, template=template, threshold=threshold)
    # The exported copy may be converted to half; the original stays float32 as the parity reference.
    module = RoleOutputs(copy.deepcopy(network).float(), half=fp16).eval()
    with torch.no_grad():
        exporter = export_graph(module, example_inputs(network, batch=2), path, input_names(network),
                                [contract.outputs[role] for role in network.output_roles], opset, exporter)
    write_contract(path, contract)
    diff = float("nan")
    if parity:
        limit = tolerance if tolerance is not None else (FP16_TOLERANCE if fp16 else FP32_TOLERANCE)
        diff = parity_difference(network, path, parity_inputs(network))
        if not diff <= limit:
            raise UnveilError(f"ONNX parity check failed: max abs difference {diff:.3g} > tolerance {limit:g} ({path})")
    return ExportResult(contract, exporter, diff)


# --- parity ---------------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def astronaut_crop(crop_size: int, margin: float = DEFAULT_MARGIN, template: str = DEFAULT_TEMPLATE) -> np.ndarray:
    """The scikit-image astronaut (public domain) aligned exactly as the runtime aligns faces: uint8 RGB S x S."""
    import cv2
    import skimage.data

    from realtime.align import align_to_template, five_points_from_mesh, warp_to_crop
    from realtime.detect import DetectorConfig, FaceDetector

    bgr = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    with FaceDetector(DetectorConfig(max_faces=1)) as detector:
        faces = detector.detect(bgr)
    if not faces:
        raise UnveilError("parity check: no face found in the astronaut image")
    matrix = align_to_template(five_points_from_mesh(faces[0].landmarks), crop_size, template, margin)
    crop = cv2.cvtColor(warp_to_crop(bgr, matrix, crop_size), cv2.COLOR_BGR2RGB)
    crop.setflags(write=False)  # cached and shared between callers
    return crop


def occlude(crop_rgb: np.ndarray, box: tuple[float, float, float, float], colour: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Paint a flat box (fractions x0, y0, x1, y1 of the crop) -> (occluded uint8 RGB, float32 mask 1 = occluded)."""
    size = crop_rgb.shape[0]
    x0, y0, x1, y1 = (int(round(v * size)) for v in box)
    image = crop_rgb.copy()
    mask = np.zeros((size, size), np.float32)
    image[y0:y1, x0:x1] = colour
    mask[y0:y1, x0:x1] = 1.0
    return image, mask


def parity_inputs(network: nn.Module, margin: float = DEFAULT_MARGIN, template: str = DEFAULT_TEMPLATE) -> tuple[np.ndarray, ...]:
    """A batch of two real-looking inputs: the aligned astronaut with a box over the mouth, and its mirror image
    with a box over one eye -- float32 NCHW in [0, 1], in the network's input-role order; then a non-zero state per
    state input (the clean crops, shifted by 2 px as if warped from the previous frame; the mask: the boxes)."""
    crop = astronaut_crop(network.crop_size, margin, template)
    mirrored = np.ascontiguousarray(crop[:, ::-1])
    first = occlude(crop, (0.3, 0.7, 0.7, 0.9), (40, 40, 40))
    second = occlude(mirrored, (0.2, 0.35, 0.48, 0.55), (230, 200, 30))
    images = np.stack([first[0], second[0]]).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    masks = np.stack([first[1], second[1]])[:, None]
    references = np.roll(np.stack([crop, mirrored]), 1, axis=1).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    by_role = {"image": images, "mask": masks, "reference": references}  # reference: the clean face, 1 px lower
    inputs = [by_role[role] for role in network.input_roles]
    clean = np.roll(np.stack([crop, mirrored]), 2, axis=2).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    states = {"image": clean, "coarse": clean, "mask": masks}
    inputs += [states[network.recurrent[name]] for name in state_inputs(network)]
    return tuple(np.ascontiguousarray(x) for x in inputs)


def parity_difference(network: nn.Module, path: Path, inputs: tuple[np.ndarray, ...]) -> float:
    """Max |onnxruntime - torch float32| over every output role."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise UnveilError(f"onnxruntime cannot load the exported model: {str(exc).splitlines()[0][:200]}") from None
    feeds = {name: array for name, array in zip(input_names(network), inputs)}
    results = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    with torch.no_grad():
        reference = network.float().eval()(*(torch.from_numpy(a) for a in inputs))
    names = output_names(network)
    return max(float(np.abs(results[names[role]].astype(np.float32) - reference[role].numpy()).max())
               for role in network.output_roles)


# --- CLI ------------------------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="training checkpoint (.pt) written by `unveil train`")
    parser.add_argument("-o", "--output", required=True, help="the ONNX file to write")
    parser.add_argument("--fp16", action="store_true", help="half-precision weights (float32 inputs and outputs)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--tolerance", type=float, default=None,
                        help=f"max abs difference onnxruntime vs torch (default {FP32_TOLERANCE:g}, fp16 {FP16_TOLERANCE:g})")
    parser.add_argument("--exporter", default="auto", choices=EXPORTERS,
                        help="torch exporter: auto = dynamo, falling back to torchscript (default)")
    parser.add_argument("--name", default=None, help="model name in the contract (default: the config's name)")


def run(args: argparse.Namespace) -> int:
    from trainer.checkpoints import load_generator

    if not 7 <= args.opset <= 23:
        raise UnveilError(f"--opset must be in 7..23, got {args.opset}")
    network, checkpoint = load_generator(args.checkpoint)
    meta = checkpoint.get("data_meta") or {}
    config = checkpoint.get("config") or {}
    output = Path(args.output)
    result = export_with_report(
        network, output, opset=args.opset, fp16=args.fp16, tolerance=args.tolerance, exporter=args.exporter,
        name=args.name if args.name is not None else str(config.get("name", "")),
        margin=float(meta.get("margin", DEFAULT_MARGIN)), template=str(meta.get("template", DEFAULT_TEMPLATE)),
    )
    c = result.contract
    print(f"wrote {output} ({output.stat().st_size / 1e6:.2f} MB, {c.kind}, {c.crop_size}px, "
          f"{'fp16' if args.fp16 else 'fp32'}, {result.exporter} exporter); "
          f"parity max abs difference {result.max_abs_diff:.3g}")
    return 0
