"""benchmarks.video_fill: the schedule, the hole, the metrics, the tables and the strip on small synthetic data, and
one tiny end-to-end run (a few frames of a moving public-domain face, the tiny magenta finder). Nothing needs
../shared."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from benchmarks import video_fill as vf
from realtime.fill import FILLER_CODE
from realtime.frame import Face, FaceFill, Frame
from realtime.regions import FACE_OVAL
from tests.tiny_models import build_blind_model


# --- the schedule ---------------------------------------------------------------------------------------------------
def test_the_occluder_arrives_at_the_given_second_and_from_start_means_frame_zero():
    assert vf.arrival_index(2.0, 25.0) == 50
    assert vf.arrival_index(2.0, 30.0) == 60
    assert vf.arrival_index(0.0, 30.0) == 0
    a = vf.arrival_index(1.0, 10.0)
    assert [vf.occluder_on("arrives", i, a) for i in range(8, 13)] == [False, False, True, True, True]
    assert all(vf.occluder_on("from-start", i, a) for i in range(13))
    assert vf.first_occluded("arrives", a) == a and vf.first_occluded("from-start", a) == 0
    with pytest.raises(Exception):
        vf.first_occluded("later", a)
    with pytest.raises(Exception):
        vf.arrival_index(-1.0, 25.0)


def ring_landmarks(cx: float, cy: float, r: float) -> np.ndarray:
    """468 mesh points: the FACE_OVAL points on a circle of radius r, every other point at the centre."""
    points = np.tile(np.array([[cx, cy]], np.float64), (468, 1))
    angles = np.linspace(0, 2 * math.pi, len(FACE_OVAL), endpoint=False)
    points[list(FACE_OVAL)] = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], axis=1)
    return points


def test_anchors_wait_for_the_first_face_and_hold_through_missed_frames():
    points = ring_landmarks(50, 40, 20)
    anchors = vf.smoothed_anchors([None, None, points, None, points + 1.0], fps=25.0)
    assert anchors[0] is None and anchors[1] is None
    assert anchors[2] is not None and anchors[3] == anchors[2]
    assert anchors[2].cx == pytest.approx(50) and anchors[2].size == pytest.approx(40, rel=0.01)
    assert 50 <= anchors[4].cx <= 51    # smoothed: moved towards the new centre, not past it


# --- the hole -------------------------------------------------------------------------------------------------------
def test_the_face_oval_is_the_polygon_of_the_oval_points_in_a_non_square_frame():
    oval = vf.face_oval_mask(ring_landmarks(60, 30, 20), (60, 100))
    assert oval.shape == (60, 100)
    assert oval[30, 60] and not oval[30, 85] and not oval[5, 5]
    assert abs(oval.sum() - math.pi * 20**2) < 0.08 * math.pi * 20**2


def test_the_hole_is_the_visible_occluder_inside_the_face_only():
    oval = np.zeros((40, 40), bool)
    oval[10:30, 10:30] = True
    alpha = np.zeros((40, 40), np.float32)
    alpha[:, 18:22] = 1.0          # a bar over the whole height
    alpha[:, 22] = 0.01            # a faint fringe: not visibly occluded
    hole = vf.hole_mask(alpha, oval)
    assert hole[10:30, 18:22].all()
    assert hole.sum() == 20 * 4     # nothing above or below the face, nothing of the fringe


def test_telea_gets_the_whole_true_mask_grown_by_one_pixel_and_changes_nothing_else():
    rng = np.random.default_rng(0)
    image = np.full((40, 40, 3), 120, np.uint8)
    image[:, :20] = 60
    image = np.clip(image.astype(int) + rng.integers(-3, 4, image.shape), 0, 255).astype(np.uint8)
    alpha = np.zeros((40, 40), np.float32)
    alpha[15:25, 5:35] = 1.0
    mask = vf.telea_mask(alpha)
    assert mask[14, 20] and mask[25, 20] and mask[20, 4] and not mask[13, 20] and not mask[26, 20]
    occluded = image.copy()
    occluded[alpha > 0] = (255, 0, 255)
    filled = vf.telea_fill(occluded, alpha)
    assert np.array_equal(filled[~mask], occluded[~mask])
    assert np.abs(filled[20, 8].astype(int) - 60).max() < 15 and np.abs(filled[20, 32].astype(int) - 120).max() < 15
    assert vf.telea_fill(occluded, None) is occluded
    assert vf.telea_fill(occluded, np.zeros_like(alpha)) is occluded


def test_the_region_of_interest_covers_the_mask_with_a_margin_inside_the_image():
    mask = np.zeros((50, 60), bool)
    mask[2:5, 40:45] = True
    ys, xs = vf.roi_of(mask, pad=4)
    assert (ys.start, ys.stop, xs.start, xs.stop) == (0, 9, 36, 49)
    assert vf.roi_of(np.zeros((5, 5), bool)) == (slice(None), slice(None))


# --- metrics --------------------------------------------------------------------------------------------------------
def textured(seed: int = 0, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size, size, 3), np.uint8)


def test_sharpness_is_one_for_the_clean_image_below_one_for_a_blur_and_zero_for_a_flat_fill():
    clean = textured()
    region = np.zeros((64, 64), bool)
    region[16:48, 16:48] = True
    assert vf.sharpness_ratio(clean, clean, region) == pytest.approx(1.0)
    blurred = cv2.GaussianBlur(clean, (0, 0), 2.0)
    assert vf.sharpness_ratio(blurred, clean, region) < 0.5
    flat = np.full_like(clean, 128)
    assert vf.sharpness_ratio(flat, clean, region) == 0.0
    assert math.isnan(vf.sharpness_ratio(clean, flat, region))       # nothing to compare with
    assert vf.gradient_energy(flat, region) == 0.0
    assert vf.gradient_energy(clean, region) > vf.gradient_energy(clean, region & (np.arange(64) < 32)[:, None])


def test_frame_scores_are_perfect_for_the_clean_frame_and_worse_for_a_flat_fill():
    clean_prev, clean = textured(1), textured(2)
    hole = np.zeros((64, 64), bool)
    hole[20:40, 25:35] = True
    flat = clean.copy()
    flat[hole] = 128
    outputs = {"unveil": clean, "telea": flat}
    previous = {"unveil": clean_prev, "telea": clean_prev}
    s = vf.score_frame(outputs, clean, hole, previous, clean_prev)
    assert s["hole_px"] == 200
    assert s["psnr"]["unveil"] == math.inf and s["psnr"]["telea"] < 15
    assert s["ssim"]["unveil"] == pytest.approx(1.0) and s["ssim"]["telea"] < 0.5
    assert s["energy"]["unveil"] == pytest.approx(s["clean_energy"]) and s["energy"]["telea"] < s["clean_energy"]
    assert s["temporal"]["unveil"] == 0.0 and s["temporal"]["telea"] > 0
    # a frozen fill (the same output twice) scores the clean change itself
    frozen = vf.score_frame({"unveil": clean, "telea": clean}, clean, hole, {"unveil": clean, "telea": clean}, clean_prev)
    assert frozen["temporal"]["unveil"] == pytest.approx(s["frozen_temporal"])
    first = vf.score_frame(outputs, clean, hole, None, None)
    assert math.isnan(first["temporal"]["unveil"]) and math.isnan(first["frozen_temporal"])


def test_replaced_share_and_filler_shares_come_from_the_frame_records():
    hole = np.zeros((30, 40), bool)
    hole[10:20, 10:30] = True
    replaced = np.zeros((30, 40), np.uint8)
    replaced[10:20, 10:20] = 255
    assert vf.replaced_share(replaced, hole) == pytest.approx(0.5)
    assert vf.replaced_share(None, hole) == 0.0
    assert math.isnan(vf.replaced_share(replaced, np.zeros_like(hole)))

    source = np.zeros((20, 30), np.uint8)            # box (5, 5, 35, 25) in the frame
    source[5:15, 5:10] = FILLER_CODE["memory"]       # frame x 10..15
    source[5:15, 10:15] = FILLER_CODE["mirror"]      # frame x 15..20
    source[5:15, 15:25] = FILLER_CODE["network"]     # frame x 20..30
    face = Face(box=np.zeros(4, np.float32), score=1.0)
    face.fill = FaceFill((5, 5, 35, 25), np.zeros((20, 30, 3), np.uint8), np.zeros((20, 30), np.float32), source)
    frame = Frame(index=0, image=np.zeros((30, 40, 3), np.uint8), faces=[face, Face(box=np.zeros(4, np.float32), score=1.0)])
    codes = vf.filler_codes(frame)
    assert codes.shape == (30, 40) and codes[12, 12] == FILLER_CODE["memory"] and codes[0, 0] == 0
    counts = vf.filler_counts(codes, hole & (replaced > 0))
    assert counts == {"memory": 50, "mirror": 50, "network": 0, "inpaint": 0}
    assert vf.shares(counts) == {"memory": 0.5, "mirror": 0.5, "network": 0.0, "inpaint": 0.0}
    assert all(v is None for v in vf.shares({"memory": 0, "mirror": 0}).values())


def fake_frame(index: int, unveil_psnr: float, telea_psnr: float, energy: float = 50.0) -> dict:
    return {"index": index, "hole_px": 100, "clean_energy": 100.0, "frozen_temporal": 4.0,
            "psnr": {"unveil": unveil_psnr, "telea": telea_psnr}, "ssim": {"unveil": 0.8, "telea": 0.6},
            "energy": {"unveil": energy, "telea": 20.0}, "temporal": {"unveil": 3.0, "telea": 6.0},
            "psnr_replaced": {"unveil": unveil_psnr + 1.0, "telea": math.nan},
            "hole_replaced": 0.9, "fillers": {"memory": 30, "mirror": 10, "network": 0, "inpaint": 0}}


def test_runs_average_over_frames_and_the_summary_over_clips():
    run_a = vf.summarise_run([fake_frame(0, 20.0, 18.0, 40.0), fake_frame(1, 22.0, 18.0, 80.0), fake_frame(2, math.inf, 18.0)])
    assert run_a["frames"] == 3
    assert run_a["psnr"]["unveil"] == pytest.approx(21.0)             # inf (identical) frames are left out of means
    assert run_a["sharpness"]["unveil"] == pytest.approx(170 / 300)   # energies summed, then divided
    assert run_a["fillers"] == {"memory": 0.75, "mirror": 0.25, "network": 0.0, "inpaint": 0.0}
    assert run_a["psnr_replaced"]["unveil"] == pytest.approx(22.0) and run_a["psnr_replaced"]["telea"] is None
    run_b = vf.summarise_run([fake_frame(5, 25.0, 20.0)])
    empty = vf.summarise_run([])
    assert empty["frames"] == 0 and empty["psnr"]["unveil"] is None and empty["sharpness"]["unveil"] is None
    runs = [{"kind": "bar", "schedule": "arrives", "clip": "a", "mean": run_a},
            {"kind": "bar", "schedule": "arrives", "clip": "b", "mean": run_b},
            {"kind": "bar", "schedule": "from-start", "clip": "a", "mean": empty}]
    summary = vf.aggregate(runs)
    s = summary["bar"]["arrives"]
    assert s["clips"] == 2 and s["frames"] == 4
    assert s["psnr"]["unveil"] == pytest.approx(23.0) and s["psnr"]["telea"] == pytest.approx(19.0)
    assert s["psnr_delta_db"] == pytest.approx(4.0)
    assert s["temporal_ratio"] == pytest.approx(0.5)
    assert "from-start" not in summary["bar"]                         # no scored frame: no row


def test_the_table_has_one_row_per_kind_and_schedule_and_one_per_run():
    frames = [fake_frame(0, 20.0, 18.0)]
    runs = [{"kind": k, "schedule": s, "clip": f"/x/clip_{k}.mp4", "mean": vf.summarise_run(frames),
             "timing": {"unveil_ms": 50.0, "telea_ms": 5.0}} for k in ("bar", "text") for s in vf.SCHEDULES]
    meta = {"mode": "m", "models": "x", "palette": "natural", "arrive_s": 2.0, "clips": 1, "frames": 90,
            "wall_s": 1.0, "pipeline_frames": 360, "provider": "cpu"}
    table = vf.markdown_table(vf.aggregate(runs), runs, meta)
    rows = [line for line in table.splitlines() if line.startswith("| bar |") or line.startswith("| text |")]
    assert len(rows) == 4
    assert "20.00 / 18.00 (2.00)" in rows[0] and "(0.50)" in rows[0] and "90%" in rows[0] and "memory 75%" in rows[0]
    assert sum(line.startswith("| clip_") for line in table.splitlines()) == 4


def test_the_strip_picks_spread_frames_with_big_holes_and_stacks_four_rows():
    tile = 40
    candidates = [{"index": i, "hole_px": 10 if i % 2 else 100,
                   "tiles": {r: np.full((tile, tile, 3), 30 * k, np.uint8) for k, r in enumerate(vf.ROWS)}}
                  for i in range(12)]
    picked = vf.pick_columns(candidates)
    assert len(picked) == 3 and all(c["hole_px"] == 100 for c in picked)
    assert [c["index"] for c in picked] == sorted(c["index"] for c in picked) and picked[0]["index"] < picked[-1]["index"]
    assert vf.pick_columns(candidates[:2]) == candidates[:2]
    strip = vf.compose_strip(picked)
    assert strip.shape == (4 * tile, 3 * tile, 3)
    assert strip[-5, -5].tolist() == [90, 90, 90]           # bottom row: clean


def test_the_face_crop_is_a_square_inside_the_frame():
    box = vf.face_crop_box(ring_landmarks(20, 50, 15), (100, 120))
    x0, y0, x1, y1 = box
    assert x1 - x0 == y1 - y0 and x0 >= 0 and y0 >= 0 and x1 <= 120 and y1 <= 100
    assert x0 <= 5 and x1 >= 35                              # holds the whole face


def test_occluder_kinds_are_a_checked_comma_list():
    assert vf.parse_kinds("bar, text,bar") == ["bar", "text"]
    with pytest.raises(Exception):
        vf.parse_kinds("bar,pole")


# --- the command ----------------------------------------------------------------------------------------------------
def test_without_clips_and_without_the_shared_folder_it_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(vf, "DEFAULT_CLIP_DIR", tmp_path / "nowhere")
    assert vf.main(["--out", str(tmp_path / "out")]) == 2
    assert "no clip given" in capsys.readouterr().err


def test_missing_and_unreadable_clips_are_reported_on_one_line_each_and_skipped(tmp_path, capsys):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    assert vf.main([str(tmp_path / "missing.mp4"), str(junk), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert any("missing.mp4" in line and "not found" in line for line in err)
    assert any("junk.mp4" in line and "skipping" in line for line in err)
    assert any("no readable clip" in line for line in err)


@pytest.fixture(scope="module")
def tiny_finder(tmp_path_factory) -> str:
    return str(build_blind_model(tmp_path_factory.mktemp("video_fill") / "finder.onnx", crop_size=128))


def write_clip(path, base: np.ndarray, frames: int, fps: float) -> None:
    h, w = base.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for i in range(frames):
        shift = np.float32([[1, 0, i], [0, 1, 0]])              # the face drifts slowly to the right
        writer.write(cv2.warpAffine(base, shift, (w, h), borderMode=cv2.BORDER_REPLICATE))
    writer.release()


@pytest.mark.slow
def test_a_tiny_clip_end_to_end(tmp_path, astronaut_bgr, tiny_finder, capsys):
    clip = tmp_path / "astronaut.mp4"
    write_clip(clip, astronaut_bgr, frames=10, fps=5.0)
    out = tmp_path / "out"
    rc = vf.main([str(clip), str(tmp_path / "gone.mp4"), "--frames", "10", "--arrive-s", "1.0", "--occluders", "mask",
                  "--model", tiny_finder, "--palette", "magenta", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0
    assert sum("gone.mp4" in line for line in captured.err.splitlines()) == 1
    data = json.loads((out / "video_fill.json").read_text())
    runs = {r["schedule"]: r for r in data["runs"]}
    assert set(runs) == set(vf.SCHEDULES)
    assert data["clips"][0]["arrival_index"] == 5 and data["skipped"][0]["clip"].endswith("gone.mp4")
    arrives, start = runs["arrives"], runs["from-start"]
    assert min(arrives["series"]["index"]) >= 5                  # nothing before the arrival is scored
    assert 0 in start["series"]["index"]
    assert arrives["mean"]["frames"] > 0 and start["mean"]["frames"] > arrives["mean"]["frames"]
    for run in runs.values():
        m = run["mean"]
        assert m["hole_replaced"] > 0                                # the tiny finder sees the magenta mask
        assert m["psnr"]["unveil"] is not None and m["psnr"]["telea"] is not None
        assert m["psnr_replaced"]["unveil"] is not None and m["psnr_replaced"]["telea"] is not None
        assert abs(sum(v for v in m["fillers"].values() if v) - 1.0) < 1e-6
    # Unveil removes the magenta: frames it filled are closer to the clean face than frames it left occluded
    series = [(p, r) for run in runs.values() for p, r in zip(run["series"]["psnr"]["unveil"], run["series"]["hole_replaced"])]
    filled = [p for p, r in series if r > 0.5]
    untouched = [p for p, r in series if r == 0.0]
    assert filled
    if untouched:
        assert min(filled) > max(untouched) + 3.0
    summary = data["summary"]["mask"]
    assert set(summary) == set(vf.SCHEDULES)
    table = (out / "video_fill.md").read_text()
    assert "| mask | arrives |" in table and "| mask | from-start |" in table and "| mask | arrives |" in captured.out
    strip = cv2.imread(str(out / "video_fill_strip.jpg"))
    assert strip is not None and strip.shape[0] > strip.shape[1]   # four rows of up to three columns
    assert data["meta"]["strip"]["schedule"] == "arrives" and min(data["meta"]["strip"]["frames"]) >= 5
