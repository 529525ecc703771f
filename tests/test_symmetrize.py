"""The landmark baseline of issue #17 (realtime/symmetrize.py): mid-line, symmetric mesh, symmetric face, scores."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from realtime.errors import UnveilError
from realtime.mesh_topology import load_topology
from realtime.regions import face_oval
from realtime.symmetrize import (FEATHER_IOD, asymmetry_heatmap, fit_midline, inter_ocular, mirror_error, mirror_halves,
                                 shape_asymmetry, symmetric_points, symmetrize_face, symmetrize_frame)


def symmetric_mesh(size: float = 200.0, angle_deg: float = 0.0, shift=(20.0, 10.0)) -> np.ndarray:
    """The mean mesh made exactly mirror-symmetric about x = 0.5, scaled to pixels, turned and moved."""
    mean, mirror, _ = load_topology()
    twin = mean[mirror].copy()
    twin[:, 0] = 1.0 - twin[:, 0]
    unit = (mean + twin) / 2.0
    a = np.radians(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    centre = np.array([0.5, 0.5])
    return ((unit - centre) @ rot.T + centre) * size + np.asarray(shift)


def test_midline_of_a_turned_symmetric_mesh_is_found():
    points = symmetric_mesh(angle_deg=12.0)
    line = fit_midline(points)
    assert line.angle_deg == pytest.approx(12.0, abs=0.05)
    _, mirror, _ = load_topology()
    assert np.abs(line.reflect(points[mirror]) - points).max() < 1e-6
    assert shape_asymmetry(points) < 1e-6


def test_shape_score_grows_with_a_one_sided_change():
    points = symmetric_mesh()
    mean, _, _ = load_topology()
    right = mean[:, 0] > 0.55
    moved = points.copy()
    moved[right, 1] += 4.0                      # the image-right half 4 px lower
    more = points.copy()
    more[right, 1] += 8.0
    assert 0.5 < shape_asymmetry(moved) < shape_asymmetry(more)


def test_symmetric_points_are_exactly_symmetric():
    rng = np.random.default_rng(0)
    points = symmetric_mesh(angle_deg=-7.0) + rng.normal(0, 3.0, (468, 2))
    line = fit_midline(points)
    sym = symmetric_points(points, line)
    _, mirror, _ = load_topology()
    assert np.abs(line.reflect(sym[mirror]) - sym).max() < 1e-9
    assert shape_asymmetry(sym) < 1e-6 < shape_asymmetry(points)


def textured_face(points: np.ndarray, shape=(260, 260), seed: int = 1) -> np.ndarray:
    """An image with smooth but asymmetric texture and a dark dot on one cheek only."""
    rng = np.random.default_rng(seed)
    noise = cv2.resize(rng.uniform(40, 220, (16, 16, 3)).astype(np.float32), shape[::-1], interpolation=cv2.INTER_CUBIC)
    image = np.clip(noise, 0, 255).astype(np.uint8)
    cheek = points[205] if points[205, 0] < points[425, 0] else points[425]
    cv2.circle(image, tuple(int(v) for v in cheek), 9, (10, 10, 10), -1)
    return image


def test_symmetrized_face_is_mirror_symmetric_about_its_midline():
    rng = np.random.default_rng(2)
    points = symmetric_mesh(angle_deg=5.0) + rng.normal(0, 2.0, (468, 2))
    image = textured_face(points)
    out, results = symmetrize_frame(image, [points])
    result = results[0]
    reflected = cv2.warpAffine(out, result.line.matrix(), image.shape[1::-1], flags=cv2.INTER_LINEAR)
    rim = int(FEATHER_IOD * inter_ocular(points)) + 3     # the symmetric face fades in over this rim
    inside = cv2.erode(face_oval(result.symmetric, image.shape[:2]).astype(np.uint8),
                       np.ones((2 * rim + 1, 2 * rim + 1), np.uint8)) > 0
    assert inside.sum() > 2000
    before = np.abs(image.astype(float) - cv2.warpAffine(image, result.line.matrix(), image.shape[1::-1])).mean(2)[inside].mean()
    after = np.abs(out.astype(float) - reflected).mean(2)[inside].mean()
    assert before > 20.0 and after < 2.5
    assert result.appearance > 10.0 and result.shape > 0.5
    # far from the face nothing changes, and the map is on the face only
    assert np.array_equal(out[:4, :4], image[:4, :4]) and np.array_equal(out[-4:, -4:], image[-4:, -4:])
    assert result.asymmetry_map.max() > 10.0
    assert asymmetry_heatmap(image, results).shape == image.shape


def test_a_symmetric_face_scores_near_zero_and_comes_back_almost_unchanged():
    points = symmetric_mesh()
    image = textured_face(points)
    mirrored = image[:, ::-1]                      # the mesh's mid-line is x = 120 (100 * 2 / 2 + 20)
    x = np.arange(image.shape[1])
    centre = 120.0
    source = np.clip(np.round(2 * centre - x), 0, image.shape[1] - 1).astype(int)
    symmetric_image = np.where((x < centre)[None, :, None], image, image[:, source])
    del mirrored
    result = symmetrize_face(symmetric_image, points)
    assert result.shape < 1e-6
    assert result.appearance < 3.0
    x0, y0, x1, y1 = result.box
    inside = face_oval(points, symmetric_image.shape[:2])[y0:y1, x0:x1]
    assert np.abs(result.image.astype(float) - symmetric_image[y0:y1, x0:x1])[inside].mean() < 3.0


def test_half_modes_and_bad_mode():
    points = symmetric_mesh()
    image = textured_face(points)
    left = symmetrize_face(image, points, "left")
    right = symmetrize_face(image, points, "right")
    assert np.abs(left.image.astype(float) - right.image).mean() > 2.0
    with pytest.raises(UnveilError):
        symmetrize_face(image, points, "both")


def test_mirror_halves_and_mirror_error():
    rng = np.random.default_rng(3)
    crop = rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    left, right = mirror_halves(crop)
    assert np.array_equal(left, left[:, :, ::-1]) and np.array_equal(right, right[:, :, ::-1])
    assert np.array_equal(left[:, :, :8], crop[:, :, :8]) and np.array_equal(right[:, :, 8:], crop[:, :, 8:])
    assert mirror_error(left[0]) == 0.0 and mirror_error(crop[0]) > 0.2
    region = np.zeros((16, 16), bool)
    region[4:8, 6:10] = True
    assert mirror_error(crop[0], region) > 0.0
