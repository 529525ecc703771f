"""The temporal stage: mask hysteresis, alignment-compensated history, completion smoothing, resets and coasting."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from realtime.frame import Face, Frame
from realtime.temporal import TemporalConfig, TemporalStage, alignment_change, motion_of

S = 48  # crop size


def textured_crop(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(60, 200, (S, S, 3), dtype=np.uint8)


def shift_matrix(dx: float, dy: float = 0.0) -> np.ndarray:
    """frame -> crop warp: a pure translation (the crop content moves by (dx, dy))."""
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])


def frame_with(index: int, mask: np.ndarray, *, track_id: int = 0, crop: np.ndarray | None = None,
               matrix: np.ndarray | None = None, completed: np.ndarray | None = None) -> Frame:
    crop = textured_crop() if crop is None else crop
    face = Face(box=np.array([0, 0, S, S], np.float32), score=0.9, track_id=track_id,
                matrix=shift_matrix(0.0) if matrix is None else matrix, crop=crop,
                mask=mask.astype(np.float32), completed=crop.copy() if completed is None else completed)
    return Frame(index=index, image=np.zeros((S, S, 3), np.uint8), faces=[face])


def square_mask(value: float, x0: int = 16, x1: int = 32, y0: int = 16, y1: int = 32) -> np.ndarray:
    mask = np.zeros((S, S), np.float32)
    mask[y0:y1, x0:x1] = value
    return mask


def test_pixel_flickering_around_the_threshold_stays_on() -> None:
    stage = TemporalStage(TemporalConfig())
    flicker = [0.9, 0.45, 0.55, 0.42, 0.58, 0.44, 0.4, 0.56]
    raw_on = [v >= 0.5 for v in flicker]
    assert len(set(raw_on)) == 2  # without the stage the pixel pops in and out
    kept = [stage.process(frame_with(i, square_mask(v))).faces[0].mask[20, 20] for i, v in enumerate(flicker)]
    assert kept == [1.0] * len(flicker)


def test_mask_turns_off_once_the_occluder_is_really_gone() -> None:
    stage = TemporalStage(TemporalConfig())
    for i in range(3):
        stage.process(frame_with(i, square_mask(1.0)))
    states = [stage.process(frame_with(3 + i, square_mask(0.0))).faces[0].mask[20, 20] for i in range(4)]
    assert states[0] == 1.0 and states[-1] == 0.0  # one frame of hysteresis, then off


def test_new_track_starts_without_history() -> None:
    stage = TemporalStage(TemporalConfig())
    for i in range(3):
        stage.process(frame_with(i, square_mask(1.0), track_id=0))
    out = stage.process(frame_with(3, square_mask(0.4), track_id=1))
    assert out.faces[0].mask.max() == 0.0  # 0.4 alone is below `on`; track 0's history must not leak in


def test_scene_cut_drops_the_history() -> None:
    config = TemporalConfig()
    same, cut = TemporalStage(config), TemporalStage(config)
    for stage in (same, cut):
        for i in range(3):
            stage.process(frame_with(i, square_mask(1.0)))
    held = same.process(frame_with(3, square_mask(0.4))).faces[0].mask
    other_shot = 255 - textured_crop()
    after_cut = cut.process(frame_with(3, square_mask(0.4), crop=other_shot)).faces[0].mask
    assert held[20, 20] == 1.0
    assert after_cut.max() == 0.0


def test_previous_mask_follows_the_face_when_the_alignment_changes() -> None:
    stage = TemporalStage(TemporalConfig())
    face = textured_crop()
    for i in range(3):
        stage.process(frame_with(i, square_mask(1.0), crop=face))
    # The alignment moves the face 6 px right in the crop; the model's mask there is weak (0.4, below `on`).
    moved = np.roll(face, 6, axis=1)
    out = stage.process(frame_with(3, square_mask(0.4, 22, 38), crop=moved, matrix=shift_matrix(6.0))).faces[0].mask
    assert out[16:32, 22:38].min() == 1.0   # held on, on the same face pixels
    assert out[16:32, 16:21].max() == 0.0   # not where the mask was in crop coordinates before


def test_alignment_change_and_motion() -> None:
    change = alignment_change(shift_matrix(2.0), shift_matrix(5.0, -4.0))
    np.testing.assert_allclose(change, shift_matrix(3.0, -4.0), atol=1e-12)
    assert abs(motion_of(change, S) - 5.0 / S) < 1e-9


def test_completion_of_a_still_face_flickers_less() -> None:
    stage = TemporalStage(TemporalConfig())
    rng = np.random.default_rng(1)
    base = textured_crop().astype(np.int16)
    raw, smoothed = [], []
    for i in range(12):
        noisy = np.clip(base + rng.integers(-30, 31, base.shape), 0, 255).astype(np.uint8)
        raw.append(noisy[20, 20].astype(np.float64))
        smoothed.append(stage.process(frame_with(i, square_mask(1.0), completed=noisy)).faces[0].completed[20, 20].astype(np.float64))
    change = lambda xs: np.mean([np.abs(b - a).mean() for a, b in zip(xs, xs[1:])])
    assert change(smoothed) < 0.6 * change(raw)


def test_newly_covered_pixels_start_from_the_face_seen_last_frame() -> None:
    stage = TemporalStage(replace(TemporalConfig(), completion_ema=0.25))
    face = textured_crop()
    stage.process(frame_with(0, square_mask(0.0), crop=face))
    grey_fill = np.full_like(face, 128)
    out = stage.process(frame_with(1, square_mask(1.0), crop=face, completed=grey_fill)).faces[0].completed
    expected = 0.25 * 128 + 0.75 * face[16:32, 16:32].astype(np.float64)
    assert np.abs(out[16:32, 16:32] - expected).max() <= 1.0


def test_fast_motion_gives_the_newest_completion_full_weight() -> None:
    stage = TemporalStage(TemporalConfig())
    face = textured_crop()
    stage.process(frame_with(0, square_mask(1.0), crop=face))
    fill = np.full_like(face, 90)
    jump = TemporalConfig().fast_motion * S * 1.5
    moved = np.roll(face, int(round(jump)), axis=1)
    out = stage.process(frame_with(1, square_mask(1.0), crop=moved, completed=fill, matrix=shift_matrix(jump))).faces[0]
    np.testing.assert_array_equal(out.completed, fill)


def test_missed_detection_coasts_then_stops() -> None:
    config = TemporalConfig(max_coast=2, max_gap=3)
    stage = TemporalStage(config)
    first = frame_with(0, square_mask(1.0), track_id=5)
    first.image = first.faces[0].crop.copy()  # identity alignment: the crop is the frame
    stage.process(first)
    empty = lambda i: Frame(index=i, image=first.image.copy())
    coasted = [stage.process(empty(i)).faces for i in (1, 2, 3)]
    assert [len(f) for f in coasted] == [1, 1, 0]
    assert coasted[0][0].track_id == 5 and coasted[0][0].mask[20, 20] == 1.0 and coasted[0][0].completed is not None


def test_no_coasting_after_a_cut() -> None:
    stage = TemporalStage(TemporalConfig(max_coast=2))
    face = textured_crop()
    first = frame_with(0, square_mask(1.0), crop=face)
    first.image = face.copy()  # identity alignment: the crop is the frame
    stage.process(first)
    same_view = Frame(index=1, image=face.copy())
    other_view = Frame(index=2, image=255 - face)
    assert len(stage.process(same_view).faces) == 1
    assert stage.process(other_view).faces == []


def test_disabled_stage_changes_nothing() -> None:
    stage = TemporalStage(TemporalConfig(enabled=False))
    mask = square_mask(0.45)
    out = stage.process(frame_with(0, mask))
    np.testing.assert_array_equal(out.faces[0].mask, mask)
