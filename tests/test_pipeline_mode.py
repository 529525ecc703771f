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
