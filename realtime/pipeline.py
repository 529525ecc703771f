"""The one place where the runtime pipeline is wired together.

source -> detect -> track -> align -> infer -> temporal -> blend -> sink. `build_pipeline` turns a
`PipelineConfig` into the stage list and the model runners; `realtime.scheduler.run_stages` runs it under the
live or offline policy.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from realtime.blend import BlendConfig
from realtime.detect import DetectorConfig, FaceDetector
from realtime.errors import UnveilError
from realtime.models import DEFAULT_BLIND, DEFAULT_SYMMETRY, available_models, resolve_model
from realtime.runner import ModelRunner
from realtime.stages import AlignStage, BlendStage, DetectStage, InferStage, TrackStage
from realtime.temporal import TemporalConfig, TemporalStage
from realtime.track import FaceTracker, TrackerConfig


@dataclass(frozen=True)
class PipelineConfig:
    models: tuple[str, ...] = ()     # shipped names or .onnx paths; the kind in each contract says its role
    mode: str = "auto"               # auto | blind | symmetry | blind+symmetry (see resolve_mode)
    provider: str = "auto"           # auto | cpu | cuda | tensorrt
    device_id: int = 0
    threads: int = 1                 # onnxruntime intra-op threads; the stages already run in parallel threads,
                                     # so one is fastest on small CPUs (0 = onnxruntime chooses)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    blend: BlendConfig = field(default_factory=BlendConfig)


@dataclass
class Pipeline:
    stages: list
    blind: ModelRunner
    symmetry: ModelRunner | None

    def stage(self, name: str):
        return next(s for s in self.stages if s.name == name)

    @property
    def mode(self) -> str:
        """The mode the pipeline runs ('auto' resolved): blind, symmetry or blind+symmetry."""
        return self.stage("infer").mode

    def close(self) -> None:
        self.stage("detect").detector.close()


AUTO_MODE = "auto"


def resolve_mode(mode: str, symmetry: ModelRunner | None, live: bool = False) -> str:
    """'auto' (the default) is blind+symmetry when a symmetry model is loaded, else blind: the shipped symmetry-lite
    measured better on one-half occlusions and no worse on centre ones (docs/models/symmetry_ablation.md). Live, auto
    is blind: the second network costs ~8 fps on this 2-core CPU (29 -> 21.5 fps at 640x480), below a camera's rate."""
    if mode != AUTO_MODE:
        return mode
    return "blind+symmetry" if symmetry is not None and not live else "blind"


def load_runners(config: PipelineConfig) -> tuple[ModelRunner, ModelRunner | None]:
    """The blind runner (always needed: it finds the occlusion) and the symmetry runner if given or shipped."""
    names = list(config.models)
    if not names:
        shipped = available_models()
        if DEFAULT_BLIND not in shipped:
            raise UnveilError("no model given and no default model is shipped; pass --model PATH.onnx")
        names = [DEFAULT_BLIND] + ([DEFAULT_SYMMETRY] if config.mode != "blind" and DEFAULT_SYMMETRY in shipped else [])
    blind = symmetry = None
    for name in names:
        runner = ModelRunner(str(resolve_model(name)), config.provider, config.device_id, config.threads)
        kind = runner.contract.kind
        if kind == "blind_completion" and blind is None:
            blind = runner
        elif kind == "symmetry_completion" and symmetry is None:
            symmetry = runner
        else:
            raise UnveilError(f"{name}: a second or unsupported model of kind {kind!r}; give one blind and at most one symmetry model")
    if blind is None:
        raise UnveilError("a blind_completion model is needed to find occlusions; pass one with --model")
    if symmetry is not None and symmetry.contract.crop_size != blind.contract.crop_size:
        raise UnveilError("the blind and symmetry models must use the same crop size")
    return blind, symmetry


def build_pipeline(config: PipelineConfig, live: bool = False) -> Pipeline:
    """The stages wired in order. `live` only changes what mode 'auto' means (see resolve_mode)."""
    blind, symmetry = load_runners(config)
    c = blind.contract
    stages = [
        DetectStage(FaceDetector(config.detector)),
        TrackStage(FaceTracker(config.tracker)),
        AlignStage(c.crop_size, c.template, c.margin),
        InferStage(blind, symmetry, resolve_mode(config.mode, symmetry, live), region=config.blend),
        TemporalStage(config.temporal),
        BlendStage(config.blend),
    ]
    return Pipeline(stages, blind, symmetry)
