"""The one place where the runtime pipeline is wired together.

source -> detect -> track -> align -> hands -> find -> fill -> blend -> sink. `build_pipeline` turns a `PipelineConfig` into
the stage list and the model runners; `realtime.scheduler.run_stages` runs it under the live or offline policy.

Models take roles by the kind in their contract:
- the finder, which says where the face is covered: an `occlusion_mask` segmenter (preferred), or a
  `blind_completion` network's mask head;
- the network filler, which paints only what the person's own pixels (memory, mirrored half) cannot give:
  a `symmetry_completion` network, or a blind network's own completion;
- the small-face network (optional): a `completion_super_resolution` model paints instead of the network filler
  for faces whose eyes are closer than `FillConfig.small_face_eyes` frame pixels (realtime.small_faces).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2

from realtime.align import align_to_template, five_points_from_mesh
from realtime.choices import NETWORK_FILLERS
from realtime.detect import DetectorConfig, FaceDetector
from realtime.errors import UnveilError
from realtime.fill import FillConfig, FillStage
from realtime.find import FindConfig, FindStage
from realtime.find.hands import HandsStage
from realtime.models import DEFAULT_CHANGE, DEFAULT_FINDER, DEFAULT_SYMMETRY, available_models, resolve_model
from realtime.runner import ModelRunner
from realtime.stages import AlignStage, Beside, BlendStage, DetectStage, TrackStage
from realtime.track import FaceTracker, TrackerConfig



@dataclass(frozen=True)
class PipelineConfig:
    models: tuple[str, ...] = ()     # shipped names or .onnx paths; the kind in each contract says its role
    network: str = "auto"            # one of NETWORK_FILLERS
    provider: str = "auto"           # auto | cpu | cuda | tensorrt
    device_id: int = 0
    threads: int = 1                 # onnxruntime intra-op threads; the stages already run in parallel threads,
                                     # so one is fastest on small CPUs (0 = onnxruntime chooses)
    reference: str | None = None     # a clean photo of the person: seeds the face memory of every track
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    find: FindConfig = field(default_factory=FindConfig)
    fill: FillConfig = field(default_factory=FillConfig)


@dataclass
class Pipeline:
    stages: list
    finder: ModelRunner
    network: ModelRunner | None      # the network filler given a mask (symmetry), if any
    small: ModelRunner | None = None  # the completion_super_resolution model for small faces, if any

    def stage(self, name: str):
        """The stage called `name`, also when it runs beside another (realtime.stages.Beside)."""
        return next(part for s in self.stages for part in getattr(s, "parts", (s,)) if part.name == name)

    @property
    def runners(self) -> list[ModelRunner]:
        surface = self.stage("find").surface
        return [r for r in (self.finder, surface.runner if surface else None, self.network, self.small) if r is not None]

    @property
    def mode(self) -> str:
        """Which models find and fill, e.g. 'occlusion-lite → memory/mirror/symmetry-lite'."""
        name = lambda r: r.contract.name or r.path.stem  # noqa: E731
        if self.network is not None:
            painter = name(self.network)
        elif self.finder.contract.kind == "blind_completion" and "network" in self.stage("fill").config.order:
            painter = name(self.finder)
        else:
            painter = "inpaint"
        small = f" (small faces: {name(self.small)})" if self.small is not None else ""
        surface = self.stage("find").surface
        finder = name(self.finder) + (f"+{name(surface.runner)}" if surface is not None else "")
        return f"{finder} → memory/mirror/{painter}{small}"

    def close(self) -> None:
        self.stage("detect").detector.close()
        for stage in self.stages:
            close = getattr(stage, "close", None)
            if close is not None:
                close()


def load_runners(config: PipelineConfig) -> tuple[ModelRunner, ModelRunner | None]:
    """(finder, network filler or None) from the given models, or the shipped defaults."""
    finder, network, _ = load_all_runners(config)
    return finder, network


def load_all_runners(config: PipelineConfig) -> tuple[ModelRunner, ModelRunner | None, ModelRunner | None]:
    """(finder, network filler or None, small-face completion_super_resolution model or None)."""
    finder, network, small, _ = load_runner_set(config)
    return finder, network, small


def load_runner_set(config: PipelineConfig
                    ) -> tuple[ModelRunner, ModelRunner | None, ModelRunner | None, ModelRunner | None]:
    """(finder, network filler or None, small-face model or None, occlusion_change model or None)."""
    names = list(config.models)
    shipped = available_models()

    def defaults() -> list[str]:
        if DEFAULT_FINDER not in shipped:
            raise UnveilError("no model given and no default model is shipped; pass --model PATH.onnx")
        return ([DEFAULT_FINDER] + ([DEFAULT_CHANGE] if DEFAULT_CHANGE in shipped else [])
                + ([DEFAULT_SYMMETRY] if config.network in ("auto", "symmetry") and DEFAULT_SYMMETRY in shipped else []))

    if not names:
        names = defaults()
    runners: dict[str, ModelRunner] = {}
    small: ModelRunner | None = None
    change: ModelRunner | None = None
    queue = list(names)
    while queue:
        name = queue.pop(0)
        runner = ModelRunner(str(resolve_model(name)), config.provider, config.device_id, config.threads)
        kind = runner.contract.kind
        if kind == "completion_super_resolution" and small is None:
            small = runner
            if not queue and not runners:   # only a small-face model given: the shipped defaults do the rest
                queue = defaults()
            continue
        if kind == "occlusion_change" and change is None:
            change = runner
            continue
        if kind in runners or kind not in ("occlusion_mask", "blind_completion", "symmetry_completion"):
            raise UnveilError(f"{name}: a second or unsupported model of kind {kind!r}; give at most one occlusion "
                              "finder (occlusion_mask or blind_completion) and one symmetry_completion model")
        runners[kind] = runner
    finder = runners.get("occlusion_mask") or runners.get("blind_completion")
    if finder is None:
        raise UnveilError("a model that finds occlusions is needed (kind occlusion_mask or blind_completion); pass one with --model")
    network = runners.get("symmetry_completion") if config.network in ("auto", "symmetry") else None
    if config.network == "symmetry" and network is None:
        raise UnveilError("--network symmetry needs a symmetry_completion model (--model PATH)")
    if config.network == "blind" and finder.contract.kind != "blind_completion":
        raise UnveilError("--network blind needs a blind_completion model as the finder (--model blind-lite)")
    for runner in runners.values():
        if runner.contract.crop_size != finder.contract.crop_size:
            raise UnveilError("all models must use the same crop size")
    if small is not None:
        fc, sc = finder.contract, small.contract
        if sc.output_size != fc.crop_size or sc.template != fc.template or abs(sc.margin - fc.margin) > 1e-9:
            raise UnveilError(f"{small.path.name}: a completion_super_resolution model must return the finder's crop "
                              f"({fc.crop_size} px, template {fc.template}, margin {fc.margin}); it returns "
                              f"{sc.output_size} px, template {sc.template}, margin {sc.margin}")
    if change is not None:
        fc, cc = finder.contract, change.contract
        if cc.template != fc.template or abs(cc.margin - fc.margin) > 1e-9:
            raise UnveilError(f"{change.path.name}: an occlusion_change model must use the finder's alignment "
                              f"(template {fc.template}, margin {fc.margin}); it uses {cc.template}, {cc.margin}")
    return finder, network, small, change


def fill_config(config: PipelineConfig, finder: ModelRunner, network: ModelRunner | None,
                small: ModelRunner | None = None) -> FillConfig:
    """The filler order, without the network step when no network can paint."""
    if config.network not in NETWORK_FILLERS:
        raise UnveilError(f"unknown network filler {config.network!r} (choose {', '.join(NETWORK_FILLERS)})")
    order = config.fill.order
    paints = network is not None or (finder.contract.kind == "blind_completion" and config.network != "none")
    paints = paints or (small is not None and config.network != "none")
    if not paints:
        order = tuple(o for o in order if o != "network")
    return replace(config.fill, order=order)


def seed_reference(fill: FillStage, path: str, detector: FaceDetector, crop_size: int, template: str, margin: float) -> None:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise UnveilError(f"--reference {path}: not a readable image")
    faces = detector.detect(image)
    if not faces:
        raise UnveilError(f"--reference {path}: no face found in the photo")
    face = faces[0]
    matrix = align_to_template(five_points_from_mesh(face.landmarks), crop_size, template, margin)
    fill.remember_reference(image, face.landmarks, matrix, crop_size)


def build_pipeline(config: PipelineConfig, live: bool = False) -> Pipeline:
    """The stages wired in order. `live` is accepted for symmetry with the viewer; both policies run the same stages."""
    finder, network, small, change = load_runner_set(config)
    if config.network == "none":
        small = None   # no network paints at all
    c = finder.contract
    detector = FaceDetector(config.detector)
    fill = FillStage(network, fill_config(config, finder, network, small), small)
    if config.reference:
        seed_reference(fill, config.reference, detector, c.crop_size, c.template, c.margin)
    stages = [
        Beside(DetectStage(detector), HandsStage(config.find)),   # hands need no faces: found at the same time
        TrackStage(FaceTracker(config.tracker)),
        AlignStage(c.crop_size, c.template, c.margin),
        FindStage(finder, config.find, change),
        fill,
        BlendStage(),
    ]
    return Pipeline(stages, finder, network, small)
