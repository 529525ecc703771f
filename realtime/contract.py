"""The model contract: one JSON document in the ONNX file's metadata (key `unveil_contract`).

The runtime reads it and adapts: no size, tensor name or normalisation is hard-coded anywhere else.
The exporter writes it with `ModelContract.to_json()`; the runtime reads it with `read_contract()`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from realtime.align import DEFAULT_MARGIN, DEFAULT_TEMPLATE
from realtime.errors import ModelContractError

METADATA_KEY = "unveil_contract"
CONTRACT_VERSION = 1

KINDS = ("blind_completion", "symmetry_completion", "completion_super_resolution", "symmetrization", "occlusion_mask",
         "occlusion_change")
# kinds whose output is larger than their input: `crop_size` is the input size, the output is crop_size * output_scale
# (both aligned with the same template and margin, so the output is the same face crop at a finer pixel size)
SUPER_RESOLUTION_KINDS = ("completion_super_resolution",)
# kinds that only find (a mask out, no image out)
MASK_KINDS = ("occlusion_mask", "occlusion_change")
# Tensor roles the runtime knows how to feed and read. Any model input must have one of these roles.
INPUT_ROLES = ("image", "mask", "reference")  # reference: a clean crop of the same face (occlusion_change)
OUTPUT_ROLES = ("image", "mask", "coarse")


@dataclass(frozen=True)
class ModelContract:
    kind: str                                # one of KINDS
    crop_size: int                           # square aligned crop, pixels
    inputs: dict[str, str]                   # role -> input tensor name ("image" always, "mask" for non-blind)
    outputs: dict[str, str]                  # role -> output tensor name ("image" always, "mask" for blind)
    template: str = DEFAULT_TEMPLATE         # name of the alignment template in realtime.align.TEMPLATES
    margin: float = DEFAULT_MARGIN           # extra crop margin around the template, as a fraction of its size
    value_range: tuple[float, float] = (0.0, 1.0)  # pixel values the model sees and returns
    color_order: str = "RGB"                 # "RGB" or "BGR"
    layout: str = "NCHW"
    mask_convention: str = "1=occluded"
    # Recurrent state: input tensor name -> output tensor name fed back on the next frame of the same track.
    recurrent: dict[str, str] = field(default_factory=dict)
    output_scale: int = 1                    # completion_super_resolution models return crop_size * output_scale
    # occlusion_mask models: the probability at which a crop pixel counts as covered, calibrated on clean validation
    # faces (trainer.train_segmenter); the runtime uses it unless the user overrides it
    threshold: float | None = None
    name: str = ""
    version: int = CONTRACT_VERSION

    @property
    def input_size(self) -> int:
        """Side of the square crop the model takes (the same as crop_size)."""
        return self.crop_size

    @property
    def output_size(self) -> int:
        """Side of the square image the model returns."""
        return self.crop_size * self.output_scale

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ModelContract":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ModelContractError(f"model contract is not valid JSON ({exc.msg})") from None
        if not isinstance(raw, dict):
            raise ModelContractError("model contract must be a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ModelContractError(f"model contract has unknown fields: {', '.join(unknown)}")
        missing = [k for k in ("kind", "crop_size", "inputs", "outputs") if k not in raw]
        if missing:
            raise ModelContractError(f"model contract lacks required fields: {', '.join(missing)}")
        if "value_range" in raw:
            raw["value_range"] = tuple(raw["value_range"])
        contract = cls(**raw)
        contract.validate()
        return contract

    def validate(self) -> None:
        """Raise ModelContractError naming the first thing this runtime cannot honour."""
        if self.version > CONTRACT_VERSION:
            raise ModelContractError(f"model contract version {self.version} is newer than this runtime ({CONTRACT_VERSION})")
        if self.kind not in KINDS:
            raise ModelContractError(f"unknown model kind {self.kind!r} (expected one of {', '.join(KINDS)})")
        if not isinstance(self.crop_size, int) or not 16 <= self.crop_size <= 2048:
            raise ModelContractError(f"crop_size must be an integer in 16..2048, got {self.crop_size!r}")
        if self.layout != "NCHW":
            raise ModelContractError(f"layout {self.layout!r} is not supported (only NCHW)")
        if self.color_order not in ("RGB", "BGR"):
            raise ModelContractError(f"color_order must be RGB or BGR, got {self.color_order!r}")
        if self.mask_convention != "1=occluded":
            raise ModelContractError(f"mask convention {self.mask_convention!r} is not supported (only 1=occluded)")
        lo, hi = self.value_range
        if not hi > lo:
            raise ModelContractError(f"value_range must be increasing, got {self.value_range}")
        for role in self.inputs:
            if role not in INPUT_ROLES:
                raise ModelContractError(f"unknown input role {role!r} (expected {', '.join(INPUT_ROLES)})")
        for role in self.outputs:
            if role not in OUTPUT_ROLES:
                raise ModelContractError(f"unknown output role {role!r} (expected {', '.join(OUTPUT_ROLES)})")
        if "image" not in self.inputs:
            raise ModelContractError("model contract must name an 'image' input")
        if self.kind in MASK_KINDS:
            if "mask" not in self.outputs:
                raise ModelContractError(f"an {self.kind} model must output its 'mask'")
            if self.threshold is None or not 0.0 < float(self.threshold) < 1.0:
                raise ModelContractError(f"an {self.kind} model must declare a threshold in (0, 1), got {self.threshold!r}")
        elif "image" not in self.outputs:
            raise ModelContractError("model contract must name an 'image' output")
        if (self.kind == "occlusion_change") != ("reference" in self.inputs):
            raise ModelContractError("an occlusion_change model, and only one, takes a 'reference' input")
        if not isinstance(self.output_scale, int) or not 1 <= self.output_scale <= 16:
            raise ModelContractError(f"output_scale must be an integer in 1..16, got {self.output_scale!r}")
        if self.kind in SUPER_RESOLUTION_KINDS and self.output_scale < 2:
            raise ModelContractError(f"a {self.kind} model must declare an output_scale of at least 2")
        if self.kind not in SUPER_RESOLUTION_KINDS and self.output_scale != 1:
            raise ModelContractError(f"only {', '.join(SUPER_RESOLUTION_KINDS)} models may return a larger image "
                                     f"(output_scale {self.output_scale} on a {self.kind} model)")
        if self.kind == "blind_completion" and "mask" not in self.outputs:
            raise ModelContractError("a blind_completion model must output its predicted 'mask'")
        if self.kind == "symmetry_completion" and "mask" not in self.inputs:
            raise ModelContractError("a symmetry_completion model must take a 'mask' input")
        if self.kind == "symmetrization" and (set(self.inputs) != {"image"} or self.recurrent or self.output_scale != 1):
            raise ModelContractError("a symmetrization model takes only an 'image' (an aligned face) and returns its "
                                     "symmetric version at the same size, without state")
        from realtime.align import TEMPLATES  # local import: align does not depend on the contract

        if self.template not in TEMPLATES:
            raise ModelContractError(f"unknown alignment template {self.template!r} (known: {', '.join(TEMPLATES)})")
        if not 0.0 <= self.margin <= 2.0:
            raise ModelContractError(f"margin must be in 0..2, got {self.margin}")


def read_contract(model_path: str | Path) -> ModelContract:
    """Read the contract from an ONNX file's metadata without building an inference session."""
    import onnxruntime as ort

    path = Path(model_path)
    if not path.is_file():
        raise ModelContractError(f"model file not found: {path}")
    try:
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several private exception types for bad files
        raise ModelContractError(f"{path} is not a loadable ONNX model ({str(exc).splitlines()[0][:200]})") from None
    return contract_from_session(session, path)


def contract_from_session(session, path: str | Path = "model") -> ModelContract:
    meta = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in meta:
        raise ModelContractError(f"{path} has no Unveil model contract (metadata key '{METADATA_KEY}' is missing)")
    contract = ModelContract.from_json(meta[METADATA_KEY])
    names_in = {i.name for i in session.get_inputs()}
    names_out = {o.name for o in session.get_outputs()}
    for role, name in contract.inputs.items():
        if name not in names_in:
            raise ModelContractError(f"{path}: contract names input {name!r} for {role!r}, but the graph has {sorted(names_in)}")
    for role, name in contract.outputs.items():
        if name not in names_out:
            raise ModelContractError(f"{path}: contract names output {name!r} for {role!r}, but the graph has {sorted(names_out)}")
    for state_in, state_out in contract.recurrent.items():
        if state_in not in names_in or state_out not in names_out:
            raise ModelContractError(f"{path}: recurrent state {state_in!r} -> {state_out!r} is not in the graph")
    return contract
