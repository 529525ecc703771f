"""Per-track state in crop coordinates: the alignment change between frames, how far a face moved, scene cuts."""
from __future__ import annotations

import numpy as np

from realtime.temporal import alignment_change, is_scene_cut, motion_of, warp_crop_image

S = 48  # crop size


def shift_matrix(dx: float, dy: float = 0.0) -> np.ndarray:
    """frame -> crop warp: a pure translation (the crop content moves by (dx, dy))."""
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])


def test_alignment_change_and_motion() -> None:
    change = alignment_change(shift_matrix(2.0), shift_matrix(5.0, -4.0))
    np.testing.assert_allclose(change, shift_matrix(3.0, -4.0), atol=1e-12)
    assert abs(motion_of(change, S) - 5.0 / S) < 1e-9


def test_previous_state_follows_the_face_when_the_alignment_changes() -> None:
    mask = np.zeros((S, S), np.float32)
    mask[16:32, 16:32] = 1.0
    moved = warp_crop_image(mask, alignment_change(shift_matrix(0.0), shift_matrix(5.0)), S)
    assert moved[16:32, 21:37].min() > 0.99 and moved[16:32, 16:21].max() == 0.0


def test_a_scene_cut_is_a_large_change_of_the_visible_face() -> None:
    rng = np.random.default_rng(0)
    crop = rng.integers(60, 200, (S, S, 3), dtype=np.uint8)
    visible = np.ones((S, S), bool)
    noisy = np.clip(crop.astype(int) + rng.integers(-4, 5, crop.shape), 0, 255).astype(np.uint8)
    assert not is_scene_cut(noisy, crop, visible, 25.0)
    assert is_scene_cut(255 - crop, crop, visible, 25.0)
    assert not is_scene_cut(255 - crop, crop, np.zeros((S, S), bool), 25.0)  # all covered: nothing to compare
