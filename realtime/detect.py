"""Face detection and 468-point face-mesh landmarks with mediapipe.

Two stages: the face detector finds every face (boxes, scores), then the face mesh runs once per face on a
square crop around its box, so several faces per frame get landmarks and each mesh call sees one face at a
size it handles well. Landmarks come back in frame pixels.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from types import TracebackType

# mediapipe's C++ logging (glog/absl) prints warnings meant for its developers to stderr; keep the user's terminal
# for our own messages unless they ask for more.
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import mediapipe as mp  # noqa: E402
import numpy as np

from realtime.errors import UnveilError
from realtime.frame import Face
from realtime.native_stderr import NATIVE_LOGS_ENV, quiet_native_stderr  # noqa: F401 - NATIVE_LOGS_ENV: re-exported

MESH_POINT_COUNT = 468

# The env variables above do not reach the lines mediapipe 0.10 prints (TFLite's "XNNPACK delegate", absl's
# "inference_feedback_manager" / "landmark_projection_calculator" warnings), written straight to file descriptor 2
# by graph threads while the models load (after the constructor returns) and when the mesh first finds a face.
# So file descriptor 2 is redirected (realtime.native_stderr) while the graphs are built and warmed up on a blank
# image, and around mesh calls until the first face.


@dataclass(frozen=True)
class DetectorConfig:
    max_faces: int = 4
    min_score: float = 0.5
    model_selection: int = 0   # mediapipe face_detection: 0 short range (< 2 m), 1 full range (< 5 m)
    box_expand: float = 0.5    # the mesh crop is a square of side max(w, h) * (1 + box_expand) around the box


def detection_box(relative_box: object, frame_hw: tuple[int, int]) -> np.ndarray:
    """mediapipe relative bounding box -> (4,) float32 x0, y0, x1, y1 in frame pixels, clipped to the frame."""
    h, w = frame_hw
    x0 = relative_box.xmin * w
    y0 = relative_box.ymin * h
    box = np.array([x0, y0, x0 + relative_box.width * w, y0 + relative_box.height * h], np.float32)
    return np.clip(box, 0.0, np.array([w, h, w, h], np.float32))


def mesh_crop_bounds(box: np.ndarray, expand: float, frame_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """Integer square (x0, y0, x1, y1) around `box`, enlarged by `expand`, clipped to the frame.

    The detector's box is tight (it cuts the forehead and chin); the mesh needs the whole face and some context.
    """
    h, w = frame_hw
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    half = max(box[2] - box[0], box[3] - box[1]) * (1.0 + expand) / 2.0
    x0, y0 = max(int(np.floor(cx - half)), 0), max(int(np.floor(cy - half)), 0)
    x1, y1 = min(int(np.ceil(cx + half)), w), min(int(np.ceil(cy + half)), h)
    return x0, y0, x1, y1


class FaceDetector:
    """mediapipe face detection + per-face face mesh. Not thread-safe: one instance per thread."""

    def __init__(self, config: DetectorConfig = DetectorConfig()) -> None:
        if config.max_faces < 1:
            raise UnveilError(f"max_faces must be at least 1, got {config.max_faces}")
        if config.model_selection not in (0, 1):
            raise UnveilError(f"model_selection must be 0 (short range) or 1 (full range), got {config.model_selection}")
        self.config = config
        self._closed = False
        self._mesh_found_face = False  # the mesh logs once more on its first face; see quiet_native_stderr
        with quiet_native_stderr():
            self._detector = mp.solutions.face_detection.FaceDetection(
                model_selection=config.model_selection, min_detection_confidence=config.min_score
            )
            # static_image_mode: every crop is a new image (crops of different faces must not share tracking state).
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=False, min_detection_confidence=config.min_score
            )
            blank = np.zeros((64, 64, 3), np.uint8)  # waits until both graphs have loaded their models (and logged)
            self._detector.process(blank)
            self._mesh.process(blank)

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        """All faces in a uint8 BGR frame, best score first; faces whose mesh fails are dropped."""
        if (
            not isinstance(image_bgr, np.ndarray)
            or image_bgr.ndim != 3
            or image_bgr.shape[2] != 3
            or image_bgr.dtype != np.uint8
            or image_bgr.size == 0
        ):
            shape = getattr(image_bgr, "shape", None)
            raise UnveilError(f"face detection needs an (H, W, 3) uint8 BGR image, got {type(image_bgr).__name__} {shape}")
        if self._closed:
            raise UnveilError("face detector used after close()")
        frame_hw = image_bgr.shape[:2]
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)  # the one full-frame copy; crops below are views of it
        detections = self._detector.process(rgb).detections or []
        detections = sorted(detections, key=lambda d: d.score[0], reverse=True)[: self.config.max_faces]
        faces = []
        for detection in detections:
            box = detection_box(detection.location_data.relative_bounding_box, frame_hw)
            landmarks = self._mesh_landmarks(rgb, box)
            if landmarks is not None:
                faces.append(Face(box=box, score=float(detection.score[0]), landmarks=landmarks))
        return faces

    def _mesh_landmarks(self, rgb: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """(468, 2) float32 frame-pixel landmarks of the face in `box`, or None when the mesh finds no face."""
        x0, y0, x1, y1 = mesh_crop_bounds(box, self.config.box_expand, rgb.shape[:2])
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        with contextlib.nullcontext() if self._mesh_found_face else quiet_native_stderr():
            result = self._mesh.process(rgb[y0:y1, x0:x1])  # a view: mediapipe copies it into its own frame once
        if not result.multi_face_landmarks:
            return None
        self._mesh_found_face = True
        points = result.multi_face_landmarks[0].landmark
        normalised = np.array([(p.x, p.y) for p in points[:MESH_POINT_COUNT]], np.float32)
        return normalised * np.array([x1 - x0, y1 - y0], np.float32) + np.array([x0, y0], np.float32)

    def close(self) -> None:
        """Release the mediapipe graphs; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._detector.close()
        self._mesh.close()

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
