"""Face detection + face mesh on a real face (the scikit-image astronaut), alone and twice side by side."""
from __future__ import annotations

import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from realtime.align import five_points_from_mesh
from realtime.detect import NATIVE_LOGS_ENV, DetectorConfig, FaceDetector, mesh_crop_bounds
from realtime.errors import UnveilError


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    with FaceDetector() as face_detector:
        yield face_detector


@pytest.fixture(scope="module")
def two_astronauts(astronaut_bgr: np.ndarray) -> np.ndarray:
    """The astronaut scaled to 256 px, placed twice side by side (faces ~50 px wide)."""
    small = cv2.resize(astronaut_bgr, (256, 256), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(np.concatenate([small, small], axis=1))


def inside(points: np.ndarray, box: tuple[float, float, float, float] | np.ndarray) -> np.ndarray:
    x0, y0, x1, y1 = box
    return (points[:, 0] >= x0) & (points[:, 0] <= x1) & (points[:, 1] >= y0) & (points[:, 1] <= y1)


def test_finds_the_astronaut_face_with_landmarks_in_its_box(detector: FaceDetector, astronaut_bgr: np.ndarray) -> None:
    faces = detector.detect(astronaut_bgr)
    assert len(faces) == 1
    face = faces[0]
    x0, y0, x1, y1 = face.box
    h, w = astronaut_bgr.shape[:2]
    assert face.box.dtype == np.float32 and 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    assert 0.01 < (x1 - x0) * (y1 - y0) / (w * h) < 0.25      # a face-sized box, not the whole picture
    assert face.score >= DetectorConfig().min_score
    assert face.landmarks.shape == (468, 2) and face.landmarks.dtype == np.float32
    # Eyes, nose and mouth lie inside the detector's box; the whole mesh (forehead and chin included, which the
    # tight detector box cuts) lies inside the crop the mesh was run on.
    assert inside(five_points_from_mesh(face.landmarks), face.box).all()
    assert inside(face.landmarks, mesh_crop_bounds(face.box, DetectorConfig().box_expand, (h, w))).all()
    assert inside(face.landmarks, face.box).mean() > 0.9
    # The mesh is the right way up: eyes above the nose, nose above the mouth.
    eye_l, eye_r, nose, mouth_l, mouth_r = five_points_from_mesh(face.landmarks)
    assert eye_l[0] < eye_r[0] and max(eye_l[1], eye_r[1]) < nose[1] < min(mouth_l[1], mouth_r[1])


def test_two_faces_side_by_side_are_both_found_with_matching_landmarks(two_astronauts: np.ndarray) -> None:
    # Faces ~50 px wide in a 512 px frame are beyond the short-range model; the full-range one finds them.
    with FaceDetector(DetectorConfig(model_selection=1)) as far_detector:
        faces = far_detector.detect(two_astronauts)
    assert len(faces) == 2
    left, right = sorted(faces, key=lambda face: face.box[0])
    assert left.box[2] <= 256 <= right.box[0]
    for face in (left, right):
        assert face.landmarks.shape == (468, 2)
        assert inside(five_points_from_mesh(face.landmarks), face.box).all()
    # The right copy is the left one shifted by 256 px: so must its landmarks be (mapped back to frame pixels).
    shift = right.landmarks - left.landmarks
    assert np.abs(np.median(shift[:, 0]) - 256.0) < 1.5 and np.abs(np.median(shift[:, 1])) < 1.5


def test_max_faces_keeps_the_best_scoring_faces(two_astronauts: np.ndarray) -> None:
    with FaceDetector(DetectorConfig(model_selection=1, max_faces=1)) as one_face_detector:
        faces = one_face_detector.detect(two_astronauts)
    assert len(faces) == 1


@pytest.mark.parametrize("value", [0, 128, 255])
def test_flat_frame_has_no_face(detector: FaceDetector, value: int) -> None:
    assert detector.detect(np.full((240, 320, 3), value, np.uint8)) == []


@pytest.mark.parametrize(
    "bad",
    [np.zeros((64, 64), np.uint8), np.zeros((64, 64, 4), np.uint8), np.zeros((64, 64, 3), np.float32),
     np.zeros((0, 64, 3), np.uint8), None],
)
def test_bad_image_is_refused(detector: FaceDetector, bad: object) -> None:
    with pytest.raises(UnveilError, match="BGR image"):
        detector.detect(bad)


def test_bad_config_and_use_after_close_are_refused() -> None:
    with pytest.raises(UnveilError, match="model_selection"):
        FaceDetector(DetectorConfig(model_selection=2))
    with pytest.raises(UnveilError, match="max_faces"):
        FaceDetector(DetectorConfig(max_faces=0))
    closed = FaceDetector()
    closed.close()
    closed.close()  # idempotent
    with pytest.raises(UnveilError, match="after close"):
        closed.detect(np.zeros((32, 32, 3), np.uint8))


def test_mesh_crop_is_an_expanded_square_clipped_to_the_frame() -> None:
    box = np.array([100, 100, 140, 120], np.float32)  # 40 x 20 centred on (120, 110)
    assert mesh_crop_bounds(box, 0.5, (480, 640)) == (90, 80, 150, 140)
    x0, y0, x1, y1 = mesh_crop_bounds(np.array([0, 0, 40, 40], np.float32), 1.0, (50, 60))
    assert (x0, y0) == (0, 0) and x1 <= 60 and y1 <= 50


QUIET_RUN = """
import sys, cv2, skimage.data
from realtime.detect import FaceDetector
image = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
print("before", file=sys.stderr, flush=True)
detector = FaceDetector()
faces = [len(detector.detect(image)) for _ in range(3)]
detector.close()
print("after", faces, file=sys.stderr, flush=True)
"""


def native_stderr_of_a_detector_run(env_extra: dict[str, str]) -> list[str]:
    """stderr lines between our own two markers, with mediapipe's C++ / TFLite logging at its defaults."""
    env = {k: v for k, v in os.environ.items() if k not in ("GLOG_minloglevel", "TF_CPP_MIN_LOG_LEVEL", NATIVE_LOGS_ENV)}
    result = subprocess.run([sys.executable, "-c", QUIET_RUN], capture_output=True, text=True, timeout=180,
                            env={**env, **env_extra})
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert "before" in lines and "after [1, 1, 1]" in lines, result.stderr  # our own stderr is never swallowed
    return lines[lines.index("before") + 1:lines.index("after [1, 1, 1]")]


@pytest.mark.slow
def test_mediapipe_native_log_lines_stay_off_stderr_unless_asked_for():
    assert native_stderr_of_a_detector_run({}) == []
    # the lines exist (so the check above means something) and `unveil -v` lets them through
    assert native_stderr_of_a_detector_run({NATIVE_LOGS_ENV: "1"})
