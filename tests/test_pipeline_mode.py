"""The runtime's default mode: 'auto' is blind+symmetry when a symmetry model is loaded, else blind."""
from __future__ import annotations

import pytest

from realtime.cli import build_parser
from realtime.models import DEFAULT_BLIND, DEFAULT_SYMMETRY, available_models
from realtime.pipeline import PipelineConfig, load_runners, resolve_mode
from realtime.stages import InferStage
from tests.tiny_models import build_blind_model, build_symmetry_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("mode")
    return {"blind": str(build_blind_model(folder / "b.onnx")), "symmetry": str(build_symmetry_model(folder / "s.onnx"))}


def infer_stage(config: PipelineConfig) -> InferStage:
    blind, symmetry = load_runners(config)
    return InferStage(blind, symmetry, resolve_mode(config.mode, symmetry))


def test_auto_is_the_default_and_uses_the_symmetry_model_when_there_is_one(tiny):
    assert PipelineConfig().mode == "auto"
    assert build_parser().parse_args(["process", "in.mp4", "-o", "out"]).mode == "auto"
    both = infer_stage(PipelineConfig(models=(tiny["blind"], tiny["symmetry"]), provider="cpu"))
    assert both.mode == "blind+symmetry" and both.symmetry is not None
    alone = infer_stage(PipelineConfig(models=(tiny["blind"],), provider="cpu"))  # no error: falls back to blind
    assert alone.mode == "blind" and alone.symmetry is None
    explicit = infer_stage(PipelineConfig(models=(tiny["blind"], tiny["symmetry"]), mode="blind", provider="cpu"))
    assert explicit.mode == "blind"


@pytest.mark.skipif(not {DEFAULT_BLIND, DEFAULT_SYMMETRY} <= set(available_models()), reason="models not shipped")
def test_the_shipped_models_run_blind_plus_symmetry_by_default():
    blind, symmetry = load_runners(PipelineConfig(provider="cpu"))
    assert symmetry is not None and symmetry.path.stem == DEFAULT_SYMMETRY
    assert resolve_mode("auto", symmetry) == "blind+symmetry"
    assert load_runners(PipelineConfig(mode="blind", provider="cpu"))[1] is None  # blind mode loads no symmetry model


def test_the_symmetry_model_fills_the_region_the_blend_pastes(tiny):
    """blind+symmetry hands the symmetry model the blend's binary, dilated region, not the blind model's soft mask."""
    import numpy as np

    from realtime.blend import BlendConfig, occluded_region
    from realtime.frame import Face, Frame
    from tests.tiny_models import OCCLUDER_BGR

    blind, symmetry = load_runners(PipelineConfig(models=(tiny["blind"], tiny["symmetry"]), provider="cpu"))
    region = BlendConfig(threshold=0.5, dilate=0.05)
    stage = InferStage(blind, symmetry, "blind+symmetry", region=region)
    size = blind.contract.crop_size
    rng = np.random.default_rng(0)
    crop = rng.integers(40, 200, (size, size, 3), dtype=np.uint8)
    crop[20:40, 8:26] = OCCLUDER_BGR  # an occluder on one half: its mirror twin is visible
    face = Face(box=np.zeros(4, np.float32), score=1.0, crop=crop)
    stage.process(Frame(index=0, image=np.zeros((8, 8, 3), np.uint8), faces=[face]))

    found = blind.run([crop])
    hole = occluded_region(found.masks[0], region)
    assert 0 < (found.masks[0] >= 0.5).sum() < hole.sum()  # the dilation adds a ring
    expected = symmetry.run(found.images, [hole.astype(np.float32)]).images[0]
    soft = symmetry.run(found.images, found.masks).images[0]
    assert np.array_equal(face.completed, expected)
    assert not np.array_equal(face.completed, soft)
    outside = hole == 0
    assert np.array_equal(face.completed[outside], found.images[0][outside])  # nothing outside the region changes


def test_auto_is_blind_when_live(tiny):
    blind, symmetry = load_runners(PipelineConfig(models=(tiny["blind"], tiny["symmetry"]), provider="cpu"))
    assert resolve_mode("auto", symmetry, live=True) == "blind"
    assert resolve_mode("auto", symmetry, live=False) == "blind+symmetry"
    assert resolve_mode("blind+symmetry", symmetry, live=True) == "blind+symmetry"  # an explicit mode is kept


class CountingRunner:
    """A real ModelRunner that counts the faces it is asked to complete."""

    def __init__(self, runner):
        self.runner, self.faces = runner, 0

    def run(self, images, masks=None, states=None):
        self.faces += len(images)
        return self.runner.run(images, masks)


def test_a_face_with_nothing_to_fill_skips_the_symmetry_model(tiny):
    import numpy as np

    from realtime.frame import Face, Frame
    from tests.tiny_models import OCCLUDER_BGR

    blind, symmetry = load_runners(PipelineConfig(models=(tiny["blind"], tiny["symmetry"]), provider="cpu"))
    counting = CountingRunner(symmetry)
    stage = InferStage(blind, counting, "blind+symmetry")
    size = blind.contract.crop_size
    rng = np.random.default_rng(1)
    clean = rng.integers(40, 200, (size, size, 3), dtype=np.uint8)
    covered = clean.copy()
    covered[20:40, 8:26] = OCCLUDER_BGR
    faces = [Face(box=np.zeros(4, np.float32), score=1.0, crop=c) for c in (clean, covered)]
    stage.process(Frame(index=0, image=np.zeros((8, 8, 3), np.uint8), faces=faces))
    assert counting.faces == 1
    assert np.array_equal(faces[0].completed, blind.run([clean]).images[0])
    assert not np.array_equal(faces[1].completed, blind.run([covered]).images[0])


def test_the_pipeline_reports_the_mode_auto_resolved_to(tiny):
    from realtime.pipeline import build_pipeline

    config = PipelineConfig(models=(tiny["blind"], tiny["symmetry"]), provider="cpu")
    offline, live = build_pipeline(config), build_pipeline(config, live=True)
    try:
        assert offline.mode == "blind+symmetry" and live.mode == "blind"  # live auto keeps to one network (speed)
    finally:
        offline.close()
        live.close()
