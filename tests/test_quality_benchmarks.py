"""The do-no-harm and photo-quality benchmarks: their pure measures on small synthetic data, and each evaluation run
end to end on the astronaut face with the tiny magenta finder (no ../shared data)."""
from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from benchmarks import do_no_harm as dnh
from benchmarks import photo_quality as pq
from realtime.regions import FACE_OVAL
from tests.tiny_models import OCCLUDER_BGR, build_blind_model
from trainer.cutouts import Cutout

# ------------------------------------------------------------------------------------------ synthetic landmarks

CENTRE = np.array([60.0, 60.0])
RADIUS = 40.0


def rotate(points: np.ndarray, degrees: float, centre: np.ndarray = CENTRE) -> np.ndarray:
    t = np.radians(degrees)
    r = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return (np.asarray(points, np.float64) - centre) @ r.T + centre


def circle_face(degrees: float = 0.0) -> np.ndarray:
    """468 mesh points of a schematic upright face: the oval a circle (forehead top 10 at the top, chin 152 at the
    bottom), brows 10 px above the nose bridge, the nose tip below the centre; then rolled by `degrees`."""
    pts = np.tile(CENTRE, (468, 1))
    for k, idx in enumerate(FACE_OVAL):
        a = -np.pi / 2 + 2 * np.pi * k / len(FACE_OVAL)
        pts[idx] = CENTRE + RADIUS * np.array([np.cos(a), np.sin(a)])
    offsets = {105: (-15, -18), 334: (15, -16), 6: (0, -6), 1: (0, 6), 33: (-22, -8), 133: (-8, -8),
               362: (8, -8), 263: (22, -8), 205: (-20, 12), 425: (20, 12)}
    for idx, off in offsets.items():
        pts[idx] = CENTRE + np.array(off, np.float64)
    return rotate(pts, degrees).astype(np.float32)


SHAPE = (120, 120, 3)


def at(mask: np.ndarray, point) -> bool:
    x, y = np.round(point).astype(int)
    return bool(mask[y, x])


# ------------------------------------------------------------------------------------------------ pure measures


def test_a_frame_is_touched_only_by_a_change_above_the_visible_level():
    before = np.full((8, 8, 3), 100, np.uint8)
    after = before.copy()
    assert not dnh.frame_touched(before, after)
    after[3, 4, 2] = 112                       # 12 levels: not visible
    assert not dnh.frame_touched(before, after) and not dnh.changed_pixels(before, after).any()
    after[3, 4, 2] = 87                        # 13 levels down in one channel
    changed = dnh.changed_pixels(before, after)
    assert dnh.frame_touched(before, after) and changed[3, 4] and changed.sum() == 1


def test_the_strict_test_is_any_replaced_pixel():
    assert not dnh.replaced_any(None)
    replaced = np.zeros((4, 4), np.uint8)
    assert not dnh.replaced_any(replaced)
    replaced[1, 1] = 255
    assert dnh.replaced_any(replaced)


def test_face_oval_fills_the_mesh_oval():
    oval = dnh.face_oval(circle_face(), SHAPE)
    assert oval.shape == SHAPE[:2]
    assert abs(oval.sum() / (math.pi * RADIUS ** 2) - 1) < 0.05
    assert oval[60, 60] and not oval[5, 5] and not oval[60, 110]


@pytest.mark.parametrize("roll", [0.0, 90.0, -35.0])
def test_lower_face_is_the_oval_below_the_nose_tip_along_the_face(roll):
    lm = circle_face(roll)
    lower = pq.lower_face(lm, SHAPE)
    oval = dnh.face_oval(lm, SHAPE)
    assert not (lower & ~oval).any()
    assert at(lower, rotate([CENTRE + (0, 25)], roll)[0])          # chin side
    assert not at(lower, rotate([CENTRE + (0, -25)], roll)[0])     # forehead
    assert not at(lower, rotate([CENTRE + (0, 3)], roll)[0])       # just above the nose tip
    # a cap of the circle 6 px below its centre: (r^2 acos(d/r) - d sqrt(r^2 - d^2)) of the area
    d = 6.0
    cap = RADIUS ** 2 * math.acos(d / RADIUS) - d * math.sqrt(RADIUS ** 2 - d ** 2)
    assert abs(lower.sum() / cap - 1) < 0.1


@pytest.mark.parametrize("roll", [0.0, 90.0, 20.0])
def test_eye_band_runs_from_the_higher_brow_down_to_the_nose_bridge(roll):
    lm = circle_face(roll)
    band = pq.eye_band(lm, SHAPE)
    for y, inside in ((-17, True), (-10, True), (-7, True), (-20, False), (0, False), (6, False), (25, False)):
        assert at(band, rotate([CENTRE + (0, y)], roll)[0]) == inside, y
    assert at(band, rotate([CENTRE + (-30, -10)], roll)[0])         # the band spans the face's width
    assert not (band & ~dnh.face_oval(lm, SHAPE)).any()
    assert not (band & pq.lower_face(lm, SHAPE)).any()


def test_coverage_is_the_changed_share_of_the_hole():
    hole = np.zeros((20, 20), bool)
    hole[5:15, 5:15] = True
    changed = np.zeros_like(hole)
    changed[5:10, 5:15] = True
    changed[0, 0] = True                        # outside the hole: does not count
    assert pq.coverage(changed, hole) == pytest.approx(0.5)
    assert math.isnan(pq.coverage(changed, np.zeros_like(hole)))


def test_on_target_counts_changes_within_three_pixels_of_the_occluder():
    occluder = np.zeros((40, 40), bool)
    occluder[10:20, 10:20] = True
    changed = np.zeros_like(occluder)
    changed[12, 12] = True                      # on it
    changed[15, 22] = True                      # 3 px right of it
    changed[15, 26] = True                      # 7 px away
    changed[35, 35] = True                      # far away
    assert pq.on_target(changed, occluder) == pytest.approx(0.5)
    assert math.isnan(pq.on_target(np.zeros_like(occluder), occluder))


def test_sharpness_ratio_is_one_for_the_clean_face_and_falls_when_the_fill_is_smooth():
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)
    hole = np.zeros((64, 64), bool)
    hole[16:48, 16:48] = True
    assert pq.sharpness_ratio(clean, clean, hole) == pytest.approx(1.0)
    blurred = cv2.GaussianBlur(clean, (0, 0), 3)
    assert pq.sharpness_ratio(blurred, clean, hole) < 0.3
    flat = np.full_like(clean, 90)
    assert math.isnan(pq.sharpness_ratio(clean, flat, hole))   # nothing to compare with


def test_psnr_and_ssim_in_the_hole_ignore_everything_outside_it():
    rng = np.random.default_rng(1)
    clean = rng.integers(0, 246, (48, 48, 3)).astype(np.uint8)
    hole = np.zeros((48, 48), bool)
    hole[10:30, 10:30] = True
    other = clean.copy()
    other[~hole] = 0                            # wrong outside the hole only
    assert pq.masked_psnr(other, clean, hole) == math.inf
    assert pq.masked_ssim(clean, clean, hole) == pytest.approx(1.0)
    off = clean.copy()
    off[hole] += 10
    assert pq.masked_psnr(off, clean, hole) == pytest.approx(10 * math.log10(255 ** 2 / 100), abs=1e-6)
    assert pq.masked_ssim(off, clean, hole) < 1.0


def test_reports_are_strict_json():
    value = dnh.jsonable({"a": float("nan"), "b": [np.float32(0.5), float("inf")], "c": np.int64(3), "d": "x"})
    assert value == {"a": None, "b": [0.5, None], "c": 3, "d": "x"}
    assert isinstance(value["c"], int)


def test_mirror_across_reflects_over_the_line():
    mask = np.zeros((40, 40), bool)
    mask[10, 5] = True
    mirrored = pq.mirror_across(mask, np.array([20.0, 0.0]), np.array([20.0, 39.0]))
    assert mirrored[10, 35] and mirrored.sum() == 1


def test_validation_photos_are_the_val_files_of_the_index(tmp_path):
    for name in ("a.jpg", "b.jpg", "c.jpg", "d.jpg"):
        (tmp_path / name).write_bytes(b"x")
    index = tmp_path / "index.npz"
    np.savez(index, files=np.array(["a.jpg", "b.jpg", "c.jpg", "d.jpg", "gone.jpg"]),
             val=np.array([False, True, False, True, True]))
    paths, origin = dnh.validation_photos(tmp_path, index, None)
    assert [p.name for p in paths] == ["b.jpg", "d.jpg"] and "validation" in origin
    one, _ = dnh.validation_photos(tmp_path, index, 1)
    assert one == dnh.validation_photos(tmp_path, index, 1)[0] and len(one) == 1   # a fixed sample
    sample, origin = dnh.validation_photos(tmp_path, tmp_path / "missing.npz", 3)
    assert len(sample) == 3 and "no cache index" in origin


# ----------------------------------------------------------------------------------- painters on a real face


@pytest.fixture(scope="module")
def astronaut_geometry(astronaut_bgr):
    from realtime.detect import FaceDetector

    with FaceDetector() as detector:
        face = detector.detect(astronaut_bgr)[0]
    return pq.face_geometry(face.landmarks, astronaut_bgr.shape)


def test_rect_centre_and_text_occluders_sit_on_the_face(astronaut_bgr, astronaut_geometry):
    geo, shape = astronaut_geometry, astronaut_bgr.shape
    for seed in range(5):
        rng = np.random.default_rng(seed)
        alpha, colour = pq.paint("rect", shape, geo, rng)
        rect = alpha > 0.5
        assert 0.045 * geo.area <= rect.sum() <= 0.155 * geo.area and colour.shape == shape
        assert (rect & geo.oval).sum() > 0.5 * rect.sum()
        centre = pq.paint("centre", shape, geo, rng)[0] > 0.5
        assert at(centre, geo.centre) and 0.2 * geo.area <= centre.sum() <= 0.3 * geo.area
        text = pq.paint("text", shape, geo, rng)[0] > 0.5
        assert (text & geo.oval).sum() > 0.5 * text.sum() > 0
        ys, xs = np.nonzero(text)
        assert xs.max() - xs.min() > 0.4 * geo.width            # across the face


def test_one_half_occluders_stay_on_one_side_so_their_mirror_twin_is_visible(astronaut_bgr, astronaut_geometry):
    geo, shape = astronaut_geometry, astronaut_bgr.shape
    side = geo.midline_side(shape)
    sides = set()
    for seed in range(8):
        occluder = pq.paint("one-half", shape, geo, np.random.default_rng(seed))[0] > 0
        assert occluder.any() and (occluder & geo.oval).sum() > 0.8 * occluder.sum()
        signs = np.sign(side[occluder])
        assert abs(signs.sum()) == len(signs)                   # all on one side of the mid-line
        sides.add(int(signs[0]))
        twin = pq.mirror_across(occluder, geo.landmarks[pq.FOREHEAD], geo.landmarks[pq.CHIN])
        assert not (twin & occluder).any()
    assert sides == {-1, 1}                                     # both sides get covered over the seeds


def test_hand_occluders_are_half_the_face_and_on_it(astronaut_bgr, astronaut_geometry):
    geo, shape = astronaut_geometry, astronaut_bgr.shape
    alpha = np.zeros((60, 40), np.float32)
    cv2.ellipse(alpha, (20, 30), (18, 28), 0, 0, 360, 1.0, -1)
    hand = Cutout(np.full((60, 40, 3), (200, 150, 120), np.uint8), alpha, "hand", "test/0")
    longest = 0.5 * max(geo.width, geo.height)
    for seed in range(4):
        a, colour = pq.paint("hand", shape, geo, np.random.default_rng(seed), [hand])
        occluder = a > 0.5
        ys, xs = np.nonzero(occluder)
        (_, _), (w, h), _ = cv2.minAreaRect(np.stack([xs, ys], axis=1).astype(np.float32))
        assert 0.7 * longest <= max(w, h) <= 1.05 * longest
        assert (occluder & geo.oval).any()
        assert np.allclose(colour[occluder].mean(axis=0), (120, 150, 200), atol=2)   # RGB cutout -> BGR frame
    with pytest.raises(Exception):
        pq.paint("hand", shape, geo, np.random.default_rng(0), [])


# ---------------------------------------------------------------------------- evaluations with the tiny finder


@pytest.fixture(scope="module")
def tiny_finder(tmp_path_factory) -> str:
    return str(build_blind_model(tmp_path_factory.mktemp("quality") / "finder.onnx", crop_size=128))


def tiny_config(model: str, photo: bool = True):
    config = dnh.pipeline_config((model,), photo=photo, network="none")
    return replace(config, find=replace(config.find, hands=False))


def test_clean_photos_come_out_bit_identical_and_a_covered_one_is_shown(tmp_path, tiny_finder, astronaut_bgr):
    covered = astronaut_bgr.copy()
    cv2.rectangle(covered, (205, 120), (245, 150), OCCLUDER_BGR, -1)
    cv2.imwrite(str(tmp_path / "clean.png"), astronaut_bgr)
    cv2.imwrite(str(tmp_path / "covered.png"), covered)
    report = dnh.evaluate_photos([tmp_path / "clean.png", tmp_path / "covered.png"], tiny_config(tiny_finder),
                                 tmp_path / "out", progress=False)
    assert report["photos"] == 2 and report["bit_identical"] == 1 and report["bit_identical_share"] == 0.5
    assert [t["photo"] for t in report["touched"]] == ["covered.png"]
    assert report["touched"][0]["fillers"] and report["touched"][0]["face_oval_replaced_share"] > 0
    assert (tmp_path / "out" / report["grid"]).is_file()


def write_clip(path: Path, frames: list[np.ndarray]) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(25))
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv444p"
        stream.options = {"crf": "0", "preset": "ultrafast"}
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode(None))
    return path


def test_a_clean_clip_is_untouched_and_a_covered_stretch_is_found(tmp_path, tiny_finder, astronaut_bgr):
    face = cv2.resize(astronaut_bgr[0:320, 80:400], (256, 256), interpolation=cv2.INTER_AREA)
    covered = face.copy()
    cv2.rectangle(covered, (118, 80), (150, 100), OCCLUDER_BGR, -1)   # x 205-245 / y 120-150 in the full photo
    clip = write_clip(tmp_path / "clip.mp4", [face] * 5 + [covered] * 4)
    config = tiny_config(tiny_finder, photo=False)
    clean = dnh.evaluate_clip(clip, config, max_frames=5, out_dir=tmp_path, progress=False)
    assert clean["frames"] == 5 and clean["frames_with_face"] == 5
    assert clean["frames_touched"] == 0 and clean["frames_replaced"] == 0 and clean["face_pixels_changed"] == 0
    assert clean["worst_frame"] is None and clean["face_pixels"] > 0
    report = dnh.evaluate_clip(clip, config, out_dir=tmp_path, progress=False)
    assert report["frames"] == 9
    assert report["frames_touched"] >= 1 and min(report["touched_frame_indices"]) >= 5   # only the covered frames
    assert report["worst_frame"]["index"] >= 5 and report["face_pixels_changed_share"] > 0
    assert (tmp_path / report["worst_frame"]["picture"]).is_file()
    totals = dnh.clip_totals([clean, report])
    assert totals["frames"] == 14 and 0 < totals["frames_touched_share"] < 1


def test_synthetic_evaluation_scores_unveil_against_telea(tmp_path, tiny_finder, astronaut_bgr):
    cv2.imwrite(str(tmp_path / "face.png"), astronaut_bgr)
    result = pq.evaluate_synthetic([tmp_path / "face.png"], tiny_config(tiny_finder), ("rect", "centre"),
                                   out_dir=tmp_path / "out", progress=False)
    assert result["no_face_in_clean_photo"] == 0
    for protocol in ("rect", "centre"):
        s = result["per_protocol"][protocol]
        assert s["samples"] == 1
        assert s["psnr_telea"] > s["psnr_occluded"]              # Telea given the hole beats leaving the occluder
        assert set(s["targets"]) and all(v in (True, False, None) for v in s["targets"].values())
    assert (tmp_path / "out" / result["grid"]).is_file()
    assert "rect" in pq.markdown({"mode": "tiny", "synthetic": {"source": "test", **result}, "wall_s": 1.0})


def test_masked_evaluation_measures_the_lower_face_and_the_eye_band(tmp_path, tiny_finder, astronaut_bgr,
                                                                    astronaut_geometry):
    masked = astronaut_bgr.copy()
    lower = pq.lower_face(astronaut_geometry.landmarks, astronaut_bgr.shape)
    masked[lower] = OCCLUDER_BGR                                  # a magenta "face mask" over the lower face
    cv2.imwrite(str(tmp_path / "masked.png"), masked)
    cv2.imwrite(str(tmp_path / "clean.png"), astronaut_bgr)
    report = pq.evaluate_masked([tmp_path / "clean.png", tmp_path / "masked.png"], tiny_config(tiny_finder),
                                tmp_path / "out", progress=False)
    assert report["with_face"] == 2
    clean, covered = sorted(report["per_photo"], key=lambda p: p["photo"])
    assert clean["lower_face"] == 0 and clean["eye_band"] == 0
    assert covered["lower_face"] > 0.5 and covered["eye_band"] < 0.05
    assert (tmp_path / "out" / report["grid"]).is_file()


def test_missing_folders_give_one_line_and_exit_2(tmp_path, capsys):
    assert dnh.main([str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "o")]) == 2
    assert dnh.main(["--no-clips", "--photos", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert pq.main(["--photos", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert pq.main(["--no-synthetic", "--masked", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert pq.main(["--protocols", "rect,blob", "--out", str(tmp_path / "o")]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 5 and all(line.startswith("error:") for line in lines)
