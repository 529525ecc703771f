"""Temporal-stability metrics against hand-computed values, the moving occluders, and `unveil temporal-eval` end to end."""
from __future__ import annotations

import argparse
import json
import math
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from realtime.errors import UnveilError
from trainer.evaluation.metrics import dis_flow, flow_warp_error, psnr, ssim, temporal_error, warp_by_flow
from trainer.evaluation.plots import draw_series_plot
from trainer.evaluation.temporal import METRICS, add_arguments, landmark_jitter, run, savgol_fit, tracking_lag
from trainer.occluders.layers import composite
from trainer.occluders.moving import FaceAnchor, paint_occluder
from tests.tiny_models import build_blind_model


def texture(h: int = 64, w: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 2.0)


def test_psnr_matches_hand_computation() -> None:
    a = np.zeros((8, 8, 3), np.uint8)
    b = np.full((8, 8, 3), 10, np.uint8)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100.0))
    region = np.zeros((8, 8), bool)
    region[:2] = True
    c = a.copy()
    c[:2] = 20  # error only inside the region
    assert psnr(a, c, region) == pytest.approx(10 * math.log10(255**2 / 400.0))
    assert psnr(a, a) == math.inf


def test_ssim_is_one_for_identical_images_and_lower_otherwise() -> None:
    img = texture()
    assert ssim(img, img) == pytest.approx(1.0)
    noisy = np.clip(img.astype(np.int16) + np.random.default_rng(1).integers(-40, 41, img.shape), 0, 255).astype(np.uint8)
    assert ssim(img, noisy) < 0.9


def test_temporal_error_is_zero_when_output_equals_clean_and_counts_extra_change() -> None:
    prev, now = texture(seed=1), texture(seed=2)
    region = np.zeros(now.shape[:2], bool)
    region[10:30, 10:30] = True
    assert temporal_error(now, prev, now, prev, region) == 0.0
    flickering = now.copy()
    flickering[region] = np.clip(flickering[region].astype(np.int16) + 5, 0, 255).astype(np.uint8)
    assert temporal_error(flickering, prev, now, prev, region) == pytest.approx(5.0, abs=0.05)
    elsewhere = now.copy()
    elsewhere[~region] = 255 - elsewhere[~region]  # a change outside the region is not counted
    assert temporal_error(elsewhere, prev, now, prev, region) == 0.0
    assert math.isnan(temporal_error(now, prev, now, prev, np.zeros_like(region)))


def test_warp_by_flow_shifts_and_dis_recovers_a_translation() -> None:
    img = texture(96, 96)
    shifted = np.roll(img, 3, axis=1)           # content moved 3 px right
    flow = dis_flow(cv2.cvtColor(shifted, cv2.COLOR_BGR2GRAY), cv2.cvtColor(img, cv2.COLOR_BGR2GRAY))
    inner = (slice(20, 76), slice(20, 76))
    assert np.median(flow[inner][..., 0]) == pytest.approx(-3.0, abs=0.3)
    exact = np.zeros(img.shape[:2] + (2,), np.float32)
    exact[..., 0] = -3.0
    np.testing.assert_array_equal(warp_by_flow(img, exact)[inner], shifted[inner])
    region = np.zeros(img.shape[:2], bool)
    region[inner] = True
    assert flow_warp_error(shifted, img, shifted, img, exact, region) == 0.0


def test_savgol_fit_is_exact_on_quadratics_and_jitter_measures_noise() -> None:
    t = np.arange(40, dtype=np.float64)
    quadratic = np.stack([0.3 * t**2 - t + 4, 2.0 * t], axis=1)[:, None, :]  # (T, 1 point, 2)
    np.testing.assert_allclose(savgol_fit(quadratic), quadratic[4:-4], atol=1e-8)
    assert landmark_jitter(quadratic) == pytest.approx(0.0, abs=1e-8)
    noise = np.zeros_like(quadratic)
    noise[:, 0, 0] = np.where(t % 2 == 0, 1.0, -1.0)  # +-1 px alternation
    # The published 9-point quadratic Savitzky-Golay weights are (-21, 14, 39, 54, 59, 54, 39, 14, -21) / 231; their
    # gain on an alternating signal is -41 / 231, so the residual of a +-1 alternation is 1 + 41 / 231.
    assert landmark_jitter(quadratic + noise) == pytest.approx(1.0 + 41.0 / 231.0, rel=1e-6)


def test_tracking_lag_finds_a_known_delay() -> None:
    t = np.arange(150, dtype=np.float64)
    x = 60.0 * np.sin(2 * np.pi * t / 50.0)
    raw = np.stack([x, 0.5 * x], axis=1)
    delayed = np.concatenate([np.repeat(raw[:2], 1, axis=0), raw[:-2]])   # the smoothed track 2 frames behind
    lag, fast = tracking_lag(raw, delayed)
    assert fast > 0
    assert lag == pytest.approx(2.0, abs=0.25)
    assert tracking_lag(raw, raw)[0] == pytest.approx(0.0, abs=0.25)


@pytest.mark.parametrize("kind", ["bar", "text", "hand", "mask"])
def test_occluders_move_with_time_and_leave_the_rest_untouched(kind: str) -> None:
    anchor = FaceAnchor(80.0, 70.0, 80.0)
    a0, colour = paint_occluder(kind, 0, anchor, (160, 180), "magenta")
    a7, _ = paint_occluder(kind, 7, anchor, (160, 180), "magenta")
    assert a0.shape == (160, 180) and 0.0 <= a0.min() and a0.max() <= 1.0 and a0.max() > 0.9
    if kind == "mask":
        np.testing.assert_array_equal(a0, a7)   # a face mask stays on the face
    else:
        assert np.abs(a0 - a7).sum() > 50.0     # the others move
    image = texture(160, 180)
    out = composite(image, a0, colour, threshold=0.0)[0]
    np.testing.assert_array_equal(out[a0 == 0], image[a0 == 0])
    np.testing.assert_array_equal(out[a0 == 1.0], np.broadcast_to(np.array([255, 0, 255], np.uint8), out[a0 == 1.0].shape))


def test_plot_draws_both_lines() -> None:
    img = draw_series_plot({"off": [3.0, 4.0, 5.0, 4.0], "on": [1.0, 1.5, None, 1.2]}, "t", "y", size=(300, 200))
    assert img.shape == (200, 300, 3)
    red = (img[..., 2] > 180) & (img[..., 0] < 100) & (img[..., 1] < 100)
    blue = (img[..., 0] > 150) & (img[..., 2] < 80)
    assert red.sum() > 20 and blue.sum() > 20


def make_face_clip(path: Path, face_bgr: np.ndarray, frames: int) -> Path:
    """A 30 fps clip of the astronaut's face drifting right by 2 px a frame."""
    face = cv2.resize(face_bgr[20:260, 110:350], (160, 160), interpolation=cv2.INTER_AREA)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=Fraction(30))
        video.width, video.height, video.pix_fmt = 256, 192, "yuv420p"
        video.options = {"crf": "12"}
        for i in range(frames):
            image = np.full((192, 256, 3), 60, np.uint8)
            image[16:176, 30 + 2 * i:190 + 2 * i] = face
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(video.encode(None))
    return path


def test_temporal_eval_command_writes_every_metric(tmp_path: Path, astronaut_bgr: np.ndarray) -> None:
    clip = make_face_clip(tmp_path / "face.mp4", astronaut_bgr, frames=6)
    model = build_blind_model(tmp_path / "tiny.onnx", crop_size=64)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([str(clip), "--model", str(model), "--occluder", "bar", "--palette", "magenta",
                              "--frames", "6", "--json", str(tmp_path / "scores.json"), "--plot-dir", str(tmp_path / "plots"),
                              "--table", str(tmp_path / "table.md")])
    assert run(args) == 0
    scores = json.loads((tmp_path / "scores.json").read_text())
    (result,) = scores["clips"]
    assert result["frames"] == 6
    for metric in METRICS:
        assert set(result["mean"][metric]) == {"off", "on"}
        assert len(result["series"][metric]["on"]) == 6
    assert result["mean"]["psnr_face"]["off"] is not None and result["mean"]["temporal_error"]["on"] is not None
    assert {"jitter_raw_px", "jitter_smoothed_px", "lag_frames"} <= set(result["landmarks"])
    assert "temporal_error_ratio" in scores["summary"]
    assert cv2.imread(str(tmp_path / "plots" / "face__bar.png")) is not None
    assert "| face | bar | 6 |" in (tmp_path / "table.md").read_text()
    assert result["mean"]["clean_change"] is not None
    # the bar runs down the face's edge: only its part over the face oval may be replaced, never all of it
    assert 0.0 <= result["mean"]["hole_replaced"]["on"] < 0.8


def test_temporal_eval_rejects_a_missing_clip(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(UnveilError, match="clip not found"):
        run(parser.parse_args([str(tmp_path / "nope.mp4")]))


@pytest.mark.slow
def test_compare_model_adds_its_variants_on_the_same_frames(tmp_path: Path, astronaut_bgr: np.ndarray) -> None:
    clip = make_face_clip(tmp_path / "face.mp4", astronaut_bgr, frames=5)
    model = build_blind_model(tmp_path / "tiny.onnx", crop_size=64)
    same = build_blind_model(tmp_path / "twin.onnx", crop_size=64)  # the same network under another name
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([str(clip), "--model", str(model), "--compare-model", str(same), "--occluder", "text",
                              "--palette", "magenta", "--frames", "5", "--json", str(tmp_path / "scores.json"),
                              "--table", str(tmp_path / "table.md"), "--plot-dir", str(tmp_path / "plots")])
    assert run(args) == 0
    (result,) = json.loads((tmp_path / "scores.json").read_text())["clips"]
    assert result["variants"] == ["off", "on", f"{same} off", f"{same} on"]
    for metric in METRICS:  # same network, same frames and detections: the same scores
        for variant in ("off", "on"):
            assert result["series"][metric][f"{same} {variant}"] == result["series"][metric][variant]
    assert result["mean"]["temporal_error"]["off"] != result["mean"]["temporal_error"]["on"]
    table = (tmp_path / "table.md").read_text()
    assert f"| text | {same} on |" in table and "All variants" in table
    plot = cv2.imread(str(tmp_path / "plots" / "face__text.png"))
    green = (plot[..., 1] > 130) & (plot[..., 0] < 80) & (plot[..., 2] < 80)
    assert green.sum() > 20                                         # the compared model's line and legend
    with pytest.raises(UnveilError, match="compare-model"):
        run(parser.parse_args([str(clip), "--model", str(model), "--compare-model", str(model)]))
