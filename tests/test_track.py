"""Tracking ids across frames, landmark smoothing per track, and the One Euro filter."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.errors import UnveilError
from realtime.frame import Face
from realtime.one_euro import OneEuroFilter
from realtime.track import FaceTracker, TrackerConfig, box_iou, greedy_match

FPS = 30.0


def face_at(x: float, y: float, size: float = 100.0, landmarks: np.ndarray | None = None) -> Face:
    return Face(box=np.array([x, y, x + size, y + size], np.float32), score=0.9, landmarks=landmarks)


def test_box_iou_of_known_boxes() -> None:
    a = np.array([[0, 0, 10, 10]], np.float64)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 0, 0]], np.float64)
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 1.0 / 3.0, 0.0, 0.0]])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 4)


def test_greedy_match_takes_best_pairs_first_and_respects_threshold() -> None:
    iou = np.array([[0.9, 0.8], [0.85, 0.2]])
    assert sorted(greedy_match(iou, 0.3)) == [(0, 0)]          # row 1's only good column is taken
    assert sorted(greedy_match(iou, 0.1)) == [(0, 0), (1, 1)]


def test_moving_face_keeps_its_id() -> None:
    tracker = FaceTracker()
    ids = [tracker.update([face_at(50 + 6 * i, 40 + 3 * i)], i / FPS)[0].track_id for i in range(30)]
    assert len(set(ids)) == 1 and ids[0] >= 0


def test_two_faces_keep_distinct_ids_whatever_their_order() -> None:
    tracker = FaceTracker()
    first = tracker.update([face_at(0, 0), face_at(300, 0)], 0.0)
    left_id, right_id = first[0].track_id, first[1].track_id
    assert left_id != right_id
    for i in range(1, 10):
        faces = [face_at(300 - 4 * i, 2 * i), face_at(4 * i, 0)]   # order swapped, both moving
        out = tracker.update(faces, i / FPS)
        assert [face.track_id for face in out] == [right_id, left_id]


def test_face_missing_up_to_max_missed_frames_keeps_its_id_longer_gets_a_new_one() -> None:
    max_missed = 3
    tracker = FaceTracker(TrackerConfig(max_missed=max_missed))
    t = 0
    first_id = tracker.update([face_at(10, 10)], t / FPS)[0].track_id
    for _ in range(max_missed):
        t += 1
        assert tracker.update([], t / FPS) == []
    t += 1
    assert tracker.update([face_at(12, 10)], t / FPS)[0].track_id == first_id
    for _ in range(max_missed + 1):
        t += 1
        tracker.update([], t / FPS)
    t += 1
    new_id = tracker.update([face_at(12, 10)], t / FPS)[0].track_id
    assert new_id != first_id


def test_reset_forgets_tracks() -> None:
    tracker = FaceTracker()
    tracker.update([face_at(0, 0), face_at(300, 0)], 0.0)
    tracker.reset()
    assert tracker.update([face_at(300, 0)], 1.0)[0].track_id == 0


def test_landmarks_are_smoothed_per_track_and_inputs_untouched() -> None:
    rng = np.random.default_rng(1)
    still = rng.uniform(100, 200, size=(468, 2)).astype(np.float32)
    smoothed_tracker, raw_tracker = FaceTracker(), FaceTracker(TrackerConfig(smooth=False))
    smoothed, raw = [], []
    for i in range(60):
        noisy = (still + rng.normal(0, 1.0, still.shape)).astype(np.float32)
        face = face_at(100, 100, landmarks=noisy)
        out = smoothed_tracker.update([face], i / FPS)[0]
        assert face.landmarks is noisy and face.track_id == -1      # the input record is not modified
        assert out.landmarks.shape == (468, 2) and out.landmarks.dtype == np.float32
        smoothed.append(out.landmarks)
        raw.append(raw_tracker.update([face], i / FPS)[0].landmarks)
    np.testing.assert_array_equal(raw[-1], noisy)                   # smooth=False passes landmarks through
    smoothed_error = np.abs(np.array(smoothed[30:]) - still).mean()
    raw_error = np.abs(np.array(raw[30:]) - still).mean()
    assert smoothed_error < 0.5 * raw_error


def test_bad_tracker_config_is_refused() -> None:
    with pytest.raises(UnveilError, match="iou_threshold"):
        FaceTracker(TrackerConfig(iou_threshold=0.0))
    with pytest.raises(UnveilError, match="max_missed"):
        FaceTracker(TrackerConfig(max_missed=-1))


def test_one_euro_reduces_noise_on_a_constant_signal() -> None:
    rng = np.random.default_rng(2)
    one_euro = OneEuroFilter(min_cutoff=1.0, beta=0.05)
    samples = 5.0 + rng.normal(0, 1.0, size=(300, 468, 2))
    filtered = np.array([one_euro(x, i / FPS) for i, x in enumerate(samples)])
    assert filtered.shape == samples.shape
    assert filtered[50:].var() < 0.2 * samples[50:].var()
    assert abs(filtered[50:].mean() - 5.0) < 0.1                     # smoothing, not a bias


def test_one_euro_follows_a_step_quickly_with_high_beta_and_slowly_without() -> None:
    step = np.concatenate([np.zeros(20), np.full(20, 100.0)])
    fast, slow = OneEuroFilter(min_cutoff=1.0, beta=1.0), OneEuroFilter(min_cutoff=1.0, beta=0.0)
    fast_out = np.array([fast(np.array([x]), i / FPS)[0] for i, x in enumerate(step)])
    slow_out = np.array([slow(np.array([x]), i / FPS)[0] for i, x in enumerate(step)])
    assert (fast_out[:20] == 0).all()
    assert abs(fast_out[20 + 4] - 100.0) < 2.0                       # within a few samples of the step
    assert slow_out[20 + 4] < 70.0                                   # a fixed 1 Hz low-pass lags far behind


def test_one_euro_first_sample_passes_repeated_time_keeps_state_backward_time_and_reset_restart() -> None:
    one_euro = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    first = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(one_euro(first, 0.0), first)
    moved = one_euro(first + 10.0, 1 / FPS)
    assert (moved > first).all() and (moved < first + 10.0).all()
    np.testing.assert_array_equal(one_euro(first + 50.0, 1 / FPS), moved)  # no time passed: no update
    np.testing.assert_array_equal(one_euro(first - 7.0, 0.0), first - 7.0)  # time went back: starts afresh
    one_euro.reset()
    np.testing.assert_array_equal(one_euro(first + 50.0, 2 / FPS), first + 50.0)
    with pytest.raises(UnveilError, match="min_cutoff"):
        OneEuroFilter(min_cutoff=0.0, beta=0.1)
