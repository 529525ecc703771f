"""Finding the cameras on the system: indices 0..9 (on Linux only those with a /dev/videoN), with their mode."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import cv2

from realtime.sources import open_capture_quietly


@dataclass(frozen=True)
class CameraInfo:
    index: int
    width: int
    height: int
    fps: float

    @property
    def label(self) -> str:
        rate = f" @ {self.fps:.3g} fps" if self.fps > 0 else ""
        return f"Camera {self.index} ({self.width}x{self.height}{rate})"


def candidate_indices(max_index: int = 10, dev_dir: Path = Path("/dev"), platform: str = sys.platform) -> list[int]:
    """Indices worth opening: on Linux the /dev/videoN that exist (opening absent ones is slow and noisy)."""
    if platform.startswith("linux"):
        return [i for i in range(max_index) if (dev_dir / f"video{i}").exists()]
    return list(range(max_index))


def probe_camera(index: int) -> CameraInfo | None:
    capture = open_capture_quietly(cv2.VideoCapture, index)
    try:
        if not capture.isOpened():
            return None
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        if width <= 0 or height <= 0:
            return None  # metadata nodes (a second /dev/videoN per camera on Linux) open but give no picture
        return CameraInfo(index, width, height, float(capture.get(cv2.CAP_PROP_FPS) or 0.0))
    finally:
        capture.release()


def find_cameras(max_index: int = 10) -> list[CameraInfo]:
    return [info for info in map(probe_camera, candidate_indices(max_index)) if info is not None]
