"""`unveil demo` (the README's first command) with a real pipeline on the public-domain face."""
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from cli.main import main
from realtime.contract import read_contract
from realtime.demo import demo_frames
from realtime.models import DEFAULT_BLIND, available_models, resolve_model
from tests.tiny_models import build_blind_model


@pytest.mark.slow
def test_demo_writes_side_by_side_video_and_strip(tmp_path, capsys):
    model = build_blind_model(tmp_path / "tiny.onnx", crop_size=64)
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--frames", "12", "--model", str(model)]) == 0
    with av.open(str(out / "demo_side_by_side.mp4")) as c:
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    assert len(frames) == 12 and frames[0].shape == (480, 1280, 3)
    strip = cv2.imread(str(out / "demo_strip.png"))
    assert strip.shape == (480, 1600, 3)
    assert "faces found: 12" in capsys.readouterr().out


def test_demo_frames_move_and_carry_an_occluder():
    frames = demo_frames(20)
    assert np.abs(frames[0].astype(int) - frames[10].astype(int)).mean() > 1.0
    red = [((f[..., 2] > 180) & (f[..., 1] < 70) & (f[..., 0] < 70)).sum() for f in frames]
    assert min(red) > 1000  # the sliding bar is in every frame


def test_a_default_blind_model_ships_with_a_valid_contract():
    assert DEFAULT_BLIND in available_models()
    contract = read_contract(resolve_model(DEFAULT_BLIND))
    assert contract.kind == "blind_completion" and contract.crop_size == 128
    assert not Path(str(resolve_model(DEFAULT_BLIND)) + ".data").exists()
