"""The segmenter at its own pace in video: a face that looks as it did reuses the last probability, warped; any
block that changed, a big move, a photo or a frame `every` frames on runs the network again."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.find.segmenter import SegmenterEvidence, block_change
from realtime.frame import Face
from realtime.runner import ModelRunner
from tests.tiny_models import build_mask_model

S = 32


@pytest.fixture(scope="module")
def mask_runner(tmp_path_factory) -> ModelRunner:
    return ModelRunner(str(build_mask_model(tmp_path_factory.mktemp("seg") / "mask.onnx", crop_size=S)), "cpu")


def _face(crop: np.ndarray, shift_x: float = 0.0, track_id: int = 1) -> Face:
    matrix = np.array([[1.0, 0.0, shift_x], [0.0, 1.0, 0.0]])
    return Face(box=np.array([0, 0, S, S], np.float32), score=1.0, matrix=matrix, crop=crop, track_id=track_id)


def _grey_crop(level: int = 120) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(level + rng.normal(0, 3, (S, S, 3)), 0, 255).astype(np.uint8)


def test_block_change_sees_one_changed_block_that_the_mean_would_hide():
    a = np.full((S, S), 100.0, np.float32)
    b = a.copy()
    b[:16, :16] += 40.0
    assert block_change(a, b) == pytest.approx(40.0)
    assert float(np.abs(a - b).mean()) < 12.0
    assert block_change(a, a) == 0.0


def test_a_still_face_reuses_the_last_probability_until_every_frames_have_passed(mask_runner):
    evidence = SegmenterEvidence(mask_runner, every=2, still_levels=12.0)
    crop = _grey_crop()
    first, _ = evidence.probabilities([_face(crop)], 0)
    second, _ = evidence.probabilities([_face(crop)], 1)
    assert evidence.runs == 1 and np.allclose(first[0], second[0], atol=1e-3)
    evidence.probabilities([_face(crop)], 2)
    assert evidence.runs == 2                       # at least every 2nd frame


def test_a_block_that_changed_runs_the_segmenter_again_on_that_frame(mask_runner):
    evidence = SegmenterEvidence(mask_runner, every=4, still_levels=12.0)
    crop = _grey_crop()
    evidence.probabilities([_face(crop)], 0)
    covered = crop.copy()
    covered[4:14, 4:14] = (255, 0, 255)             # an occluder comes in (magenta: the tiny model's "covered")
    now, _ = evidence.probabilities([_face(covered)], 1)
    assert evidence.runs == 2 and now[0][8, 8] > 0.9


def test_the_reused_probability_follows_the_alignment_and_a_big_move_runs_again(mask_runner):
    evidence = SegmenterEvidence(mask_runner, every=4, still_levels=12.0)
    crop = _grey_crop()
    crop[10:20, 10:20] = (255, 0, 255)
    first, _ = evidence.probabilities([_face(crop)], 0)
    shifted = np.roll(crop, 1, axis=1)              # the face moved one crop pixel right...
    moved, _ = evidence.probabilities([_face(shifted, shift_x=1.0)], 1)   # ...and the alignment says so
    assert evidence.runs == 1
    assert np.allclose(moved[0][:, 1:-1], first[0][:, :-2], atol=1e-3)
    evidence.probabilities([_face(np.roll(crop, 4, axis=1), shift_x=4.0)], 2)   # 4 px of 32: a big move
    assert evidence.runs == 2


def test_photos_and_untracked_faces_always_run(mask_runner):
    photos = SegmenterEvidence(mask_runner, every=3, video=False)
    crop = _grey_crop()
    photos.probabilities([_face(crop)], 0)
    photos.probabilities([_face(crop)], 1)
    untracked = SegmenterEvidence(mask_runner, every=3)
    untracked.probabilities([_face(crop, track_id=-1)], 0)
    untracked.probabilities([_face(crop, track_id=-1)], 1)
    assert photos.runs == 2 and untracked.runs == 2
