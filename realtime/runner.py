"""The ONNX model runner: reads the model contract, chooses execution providers, batches faces.

It converts between the runtime's crops (uint8 BGR, masks float32 in [0, 1]) and whatever the contract says the
model wants (value range, colour order, NCHW), so nothing else in the runtime knows about a model's conventions.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from realtime.choices import PROVIDERS
from realtime.contract import ModelContract, contract_from_session
from realtime.errors import ModelContractError, UnveilError

log = logging.getLogger("unveil")
_warned: set[str] = set()  # a fallback is told once per process, not once per model


def warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning("unveil: warning: %s", message)

ORT_PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


@dataclass
class RunnerOutput:
    images: list[np.ndarray]                 # uint8 SxSx3 BGR (S = crop_size * output_scale: larger than the
                                             # input for a completion_super_resolution model)
    masks: list[np.ndarray] | None           # float32 SxS in [0, 1] for models that predict a mask
    states: list[dict[str, np.ndarray]] | None = None  # recurrent state per face, to feed back next frame


@dataclass(frozen=True)
class ProviderChoice:
    requested: str
    providers: list[str]          # what the session actually runs with, best first
    fallback_reason: str | None   # why the requested accelerator is not in use (None when it is)


def choose_providers(requested: str, available: list[str], device_id: int = 0) -> tuple[list, str | None]:
    """Pure: the provider list to ask onnxruntime for, and why we fell back to CPU (None if we did not)."""
    requested = requested.lower()
    if requested not in PROVIDERS:
        raise UnveilError(f"unknown provider {requested!r} (choose auto, cpu, cuda or tensorrt)")
    if requested == "cpu":
        return ["CPUExecutionProvider"], None
    wanted = ["tensorrt", "cuda"] if requested == "auto" else (["tensorrt", "cuda"] if requested == "tensorrt" else ["cuda"])
    chosen: list = []
    for name in wanted:
        if ORT_PROVIDERS[name] in available:
            chosen.append((ORT_PROVIDERS[name], {"device_id": device_id}))
    chosen.append("CPUExecutionProvider")
    if len(chosen) == 1 and requested != "auto":
        return chosen, (
            f"{requested} provider is not in this onnxruntime build (available: {', '.join(available)}); "
            "install the GPU runtime with `pip install unveil[gpu]` (and not onnxruntime beside it)"
        )
    return chosen, None


class ModelRunner:
    def __init__(self, model_path: str, provider: str = "auto", device_id: int = 0, threads: int = 0):
        import onnxruntime as ort

        from pathlib import Path

        path = Path(model_path)
        if not path.is_file():
            raise ModelContractError(f"model file not found: {path}")
        providers, reason = choose_providers(provider, ort.get_available_providers(), device_id)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3  # onnxruntime's own warnings are noise to users; we report fallbacks ourselves
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelContractError(f"{path} is not a loadable ONNX model ({first})") from None
        active = self.session.get_providers()
        wanted_gpu = [p if isinstance(p, str) else p[0] for p in providers if p != "CPUExecutionProvider"]
        if wanted_gpu and active == ["CPUExecutionProvider"]:
            reason = f"{', '.join(wanted_gpu)} could not be loaded (missing CUDA/cuDNN libraries or no GPU); running on CPU"
        self.provider = ProviderChoice(provider, active, reason)
        if reason:
            warn_once(reason)
        self.contract: ModelContract = contract_from_session(self.session, path)
        self.path = path
        self._input_types = {i.name: i.type for i in self.session.get_inputs()}
        self._input_shapes = {i.name: i.shape for i in self.session.get_inputs()}
        self._output_names = [o.name for o in self.session.get_outputs()]

    # --- conversions between runtime crops and model tensors -------------------------------------------------------
    def _images_to_tensor(self, crops: list[np.ndarray]) -> np.ndarray:
        c = self.contract
        batch = np.stack(crops).astype(np.float32)            # N,S,S,3 BGR 0..255
        if c.color_order == "RGB":
            batch = batch[..., ::-1]
        lo, hi = c.value_range
        batch = batch * ((hi - lo) / 255.0) + lo
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))

    def _tensor_to_images(self, tensor: np.ndarray) -> list[np.ndarray]:
        c = self.contract
        lo, hi = c.value_range
        arr = (tensor.astype(np.float32) - lo) * (255.0 / (hi - lo))
        arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
        if c.color_order == "RGB":
            arr = arr[..., ::-1]
        return [np.ascontiguousarray(a) for a in arr]

    def _feed(self, name: str, array: np.ndarray) -> np.ndarray:
        return array.astype(np.float16) if self._input_types[name] == "tensor(float16)" else array.astype(np.float32)

    def run(
        self,
        crops: list[np.ndarray],
        masks: list[np.ndarray] | None = None,
        states: list[dict[str, np.ndarray] | None] | None = None,
        references: list[np.ndarray] | None = None,
    ) -> RunnerOutput:
        """Run all faces of a frame (or several frames) as one batch."""
        c = self.contract
        if not crops:
            return RunnerOutput([], [] if "mask" in c.outputs else None, [] if c.recurrent else None)
        for crop in crops:
            if crop.shape != (c.crop_size, c.crop_size, 3) or crop.dtype != np.uint8:
                raise UnveilError(f"crop of shape {crop.shape} {crop.dtype} does not match the model's {c.crop_size}x{c.crop_size}x3 uint8")
        feeds = {c.inputs["image"]: self._feed(c.inputs["image"], self._images_to_tensor(crops))}
        if "mask" in c.inputs:
            if masks is None or len(masks) != len(crops):
                raise UnveilError(f"{self.path.name} needs an occlusion mask for every face")
            feeds[c.inputs["mask"]] = self._feed(c.inputs["mask"], np.stack(masks)[:, None].astype(np.float32))
        if "reference" in c.inputs:
            if references is None or len(references) != len(crops):
                raise UnveilError(f"{self.path.name} needs a reference crop for every face")
            feeds[c.inputs["reference"]] = self._feed(c.inputs["reference"], self._images_to_tensor(references))
        for state_in in c.recurrent:
            per_face = [self._initial_state(state_in) if not s or state_in not in s else s[state_in] for s in (states or [None] * len(crops))]
            feeds[state_in] = self._feed(state_in, np.concatenate(per_face))
        results = dict(zip(self._output_names, self.session.run(None, feeds)))
        if "image" in c.outputs and results[c.outputs["image"]].shape[-2:] != (c.output_size, c.output_size):
            raise UnveilError(f"{self.path.name} returned images of {results[c.outputs['image']].shape[-2:]} pixels; "
                              f"its contract says {c.output_size}x{c.output_size} (crop_size {c.crop_size} x "
                              f"output_scale {c.output_scale})")
        images = self._tensor_to_images(results[c.outputs["image"]]) if "image" in c.outputs else []
        out_masks = None
        if "mask" in c.outputs:
            m = results[c.outputs["mask"]].astype(np.float32)
            out_masks = [np.clip(x.reshape(x.shape[-2:]), 0.0, 1.0) for x in m]
        out_states = None
        if c.recurrent:
            out_states = [{s_in: results[s_out][i : i + 1] for s_in, s_out in c.recurrent.items()} for i in range(len(crops))]
        return RunnerOutput(images, out_masks, out_states)

    def _initial_state(self, name: str) -> np.ndarray:
        """Zeros of the state input's shape for one face (dynamic dims: batch 1, spatial = crop size)."""
        shape = [d if isinstance(d, int) else None for d in self._input_shapes[name]]
        shape[0] = 1
        shape = [self.contract.crop_size if d is None else d for d in shape]
        return np.zeros(shape, np.float32)
