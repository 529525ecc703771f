"""Models take roles by the kind in their contract: a finder (occlusion_mask or blind_completion) and a network
filler (symmetry_completion, or a blind finder's own fill)."""
from __future__ import annotations

import pytest

from cli.main import parse_command
from realtime.errors import UnveilError
from realtime.models import DEFAULT_FINDER, DEFAULT_SYMMETRY, available_models
from realtime.pipeline import PipelineConfig, build_pipeline, load_runners
from tests.tiny_models import build_blind_model, build_symmetry_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("roles")
    return {"blind": str(build_blind_model(folder / "b.onnx")), "symmetry": str(build_symmetry_model(folder / "s.onnx"))}


def test_roles_come_from_the_contract_kind_in_any_order(tiny):
    finder, network = load_runners(PipelineConfig(models=(tiny["symmetry"], tiny["blind"]), provider="cpu"))
    assert finder.contract.kind == "blind_completion" and network.contract.kind == "symmetry_completion"
    finder, network = load_runners(PipelineConfig(models=(tiny["blind"],), provider="cpu"))
    assert network is None


def test_a_symmetry_model_alone_cannot_find_occlusions(tiny):
    with pytest.raises(UnveilError, match="finds occlusions"):
        load_runners(PipelineConfig(models=(tiny["symmetry"],), provider="cpu"))


def test_network_choices_are_checked(tiny):
    with pytest.raises(UnveilError, match="symmetry_completion"):
        load_runners(PipelineConfig(models=(tiny["blind"],), network="symmetry", provider="cpu"))
    _, network = load_runners(PipelineConfig(models=(tiny["blind"], tiny["symmetry"]), network="none", provider="cpu"))
    assert network is None
    assert parse_command(["process", "in.mp4", "-o", "out"])[1].network == "auto"


def test_the_fill_order_drops_the_network_when_nothing_can_paint(tiny):
    painting = build_pipeline(PipelineConfig(models=(tiny["blind"],), provider="cpu"))
    inpainting = build_pipeline(PipelineConfig(models=(tiny["blind"],), network="none", provider="cpu"))
    try:
        assert "network" in painting.stage("fill").config.order
        assert "network" not in inpainting.stage("fill").config.order
        assert painting.mode.endswith("tiny-blind") and inpainting.mode.endswith("inpaint")
    finally:
        painting.close()
        inpainting.close()


@pytest.mark.skipif(not {DEFAULT_FINDER, DEFAULT_SYMMETRY} <= set(available_models()), reason="models not shipped")
def test_the_shipped_defaults_are_the_segmenter_and_the_symmetry_model():
    finder, network = load_runners(PipelineConfig(provider="cpu"))
    assert finder.contract.kind == "occlusion_mask" and 0 < finder.contract.threshold < 1
    assert network is not None and network.path.stem == DEFAULT_SYMMETRY
