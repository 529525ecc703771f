"""Alignment round trip on a real face, inverse-warp accuracy, and paste-back leaving untouched pixels untouched."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.align import (
    align_to_template,
    five_points_from_mesh,
    invert_affine,
    paste_back,
    template_points,
    transform_points,
    warp_to_crop,
    warp_to_frame,
)
from realtime.detect import FaceDetector

CROP = 128


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    with FaceDetector() as face_detector:
        yield face_detector


@pytest.fixture(scope="module")
def astronaut_landmarks(detector: FaceDetector, astronaut_bgr: np.ndarray) -> np.ndarray:
    faces = detector.detect(astronaut_bgr)
    assert len(faces) == 1
    return faces[0].landmarks


def smooth_image(h: int, w: int) -> np.ndarray:
    """Low-frequency colour waves: bilinear resampling of it is nearly exact."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    channels = [
        128 + 100 * np.sin(x / 37.0) * np.cos(y / 53.0),
        128 + 90 * np.cos((x + y) / 61.0),
        128 + 80 * np.sin((x - 2 * y) / 47.0),
    ]
    return np.clip(np.rint(np.stack(channels, axis=-1)), 0, 255).astype(np.uint8)


def rotation_scale_matrix(angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), shift[0]], [scale * np.sin(a), scale * np.cos(a), shift[1]]])


def test_aligned_five_points_land_on_the_template(astronaut_landmarks: np.ndarray) -> None:
    points5 = five_points_from_mesh(astronaut_landmarks)
    matrix = align_to_template(points5, CROP)
    error = np.linalg.norm(transform_points(points5, matrix) - template_points(CROP), axis=1)
    # A least-squares fit of a real face to a fixed template: eyes within a few px; nose and mouth corners sit
    # ~5 % of the crop off (mesh nose tip lower, mouth corners higher than the 5-point template's).
    assert error[:2].max() < 4.0
    assert error.max() < 8.0
    # The face is scaled to the template's size: eye distance matches.
    eye_distance = np.linalg.norm(np.diff(transform_points(points5[:2], matrix), axis=0))
    template_eye_distance = np.linalg.norm(np.diff(template_points(CROP)[:2], axis=0))
    assert abs(eye_distance / template_eye_distance - 1.0) < 0.1


def test_landmarks_detected_on_the_aligned_crop_match_the_transformed_landmarks(
    detector: FaceDetector, astronaut_bgr: np.ndarray, astronaut_landmarks: np.ndarray
) -> None:
    matrix = align_to_template(five_points_from_mesh(astronaut_landmarks), CROP)
    crop = warp_to_crop(astronaut_bgr, matrix, CROP)
    assert crop.shape == (CROP, CROP, 3) and crop.dtype == np.uint8
    faces = detector.detect(crop)
    assert len(faces) == 1
    error = np.linalg.norm(faces[0].landmarks - transform_points(astronaut_landmarks, matrix), axis=1)
    assert error.mean() < 1.5 and error.max() < 4.0


def test_warp_to_crop_then_warp_to_frame_reproduces_the_crop_region() -> None:
    frame = smooth_image(240, 320)
    matrix = rotation_scale_matrix(17.0, 1.3, (-120.0, -40.0))  # frame -> crop: rotated and enlarged
    crop = warp_to_crop(frame, matrix, CROP)
    back = warp_to_frame(crop, matrix, frame.shape[:2])
    # Where the crop covers the frame (away from its edge, where bilinear mixes in the zero border).
    coverage = warp_to_frame(np.ones((CROP, CROP), np.float32), matrix, frame.shape[:2])
    interior = coverage > 0.999
    edge_free = np.zeros_like(interior)
    edge_free[2:-2, 2:-2] = interior[:-4, :-4] & interior[4:, 4:] & interior[:-4, 4:] & interior[4:, :-4]
    assert edge_free.sum() > 0.05 * edge_free.size
    error = np.abs(back.astype(np.float64) - frame.astype(np.float64))[edge_free]
    assert error.mean() < 1.5
    assert (back[~(coverage > 0)] == 0).all()  # outside the crop is 0


def test_transform_points_with_matrix_then_inverse_is_identity() -> None:
    rng = np.random.default_rng(0)
    points = rng.uniform(-500, 1500, size=(468, 2))
    matrix = rotation_scale_matrix(-33.0, 0.37, (12.5, -300.25))
    round_trip = transform_points(transform_points(points, matrix), invert_affine(matrix))
    np.testing.assert_allclose(round_trip, points, rtol=0, atol=1e-9)


def test_paste_back_with_zero_weight_returns_the_frame_bit_identical() -> None:
    frame = smooth_image(120, 160)
    matrix = rotation_scale_matrix(10.0, 1.5, (-40.0, -20.0))
    crop = np.full((64, 64, 3), 7, np.uint8)
    result, weight = paste_back(frame, crop, np.zeros((64, 64), np.float32), matrix)
    assert result is not frame and np.array_equal(result, frame)
    assert weight.shape == frame.shape[:2] and not weight.any()


def test_paste_back_with_partial_weight_changes_only_pixels_under_the_weight() -> None:
    frame = smooth_image(120, 160)
    original = frame.copy()
    matrix = rotation_scale_matrix(10.0, 1.5, (-40.0, -20.0))
    crop = np.full((64, 64, 3), 7, np.uint8)       # far from the frame's colours, so every blend shows
    crop_weight = np.zeros((64, 64), np.float32)
    crop_weight[16:40, 8:30] = 1.0
    result, weight = paste_back(frame, crop, crop_weight, matrix)
    assert np.array_equal(frame, original)         # the input is never modified
    changed = (result != frame).any(axis=-1)
    assert changed.sum() > 100
    assert not (changed & ~(weight > 0)).any()
    np.testing.assert_array_equal(weight > 0, warp_to_frame(crop_weight, matrix, frame.shape[:2]) > 0)
    # Fully weighted pixels take the crop's value.
    assert (result[weight >= 1.0] == 7).all()


def test_a_large_face_is_averaged_before_it_is_shrunk_into_the_crop() -> None:
    """Shrinking 4x: the crop of a fine stripe pattern is its average grey (no aliasing), and a smooth picture lands
    where the plain warp puts it (the same geometry)."""
    from realtime.align import ANTI_ALIAS_BELOW

    matrix = np.array([[0.25, 0.0, -10.0], [0.0, 0.25, -20.0]])
    assert 0.25 < ANTI_ALIAS_BELOW
    stripes = np.zeros((800, 800, 3), np.uint8)
    stripes[:, ::2] = 255
    crop = warp_to_crop(stripes, matrix, 64)
    assert np.abs(crop.astype(float) - 127.5).max() < 20
    ys, xs = np.mgrid[0:800, 0:800]
    smooth = np.repeat((127 + 100 * np.sin(xs / 60.0) * np.cos(ys / 80.0))[..., None], 3, 2).astype(np.uint8)
    plain = cv2.warpAffine(smooth, matrix, (64, 64), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    assert np.abs(warp_to_crop(smooth, matrix, 64).astype(float) - plain.astype(float)).mean() < 2.0
