"""The result as a virtual camera (pyvirtualcam, optional extra `vcam`), with a plain reason when unavailable."""
from __future__ import annotations

import importlib.util
import sys
import threading

import cv2
import numpy as np

from realtime.errors import UnveilError


def virtual_camera_unavailable_reason() -> str | None:
    """None when pyvirtualcam can be imported, else what the user can do about it."""
    if importlib.util.find_spec("pyvirtualcam") is None:
        backend = {"linux": "and the v4l2loopback kernel module", "darwin": "and OBS (its virtual camera)",
                   "win32": "and OBS (its virtual camera)"}.get(sys.platform, "")
        return f"virtual camera unavailable: pyvirtualcam is not installed (pip install 'unveil[vcam]' {backend})"
    return None


class VirtualCamera:
    """Opens the device on the first frame (its size is only known then); errors become UnveilError."""

    def __init__(self, fps: float) -> None:
        reason = virtual_camera_unavailable_reason()
        if reason:
            raise UnveilError(reason)
        self.fps = fps or 30.0
        self.camera = None
        self.size: tuple[int, int] | None = None
        self._lock = threading.Lock()   # the pipeline thread sends, the GUI thread closes

    def send(self, image_bgr: np.ndarray) -> None:
        with self._lock:
            self._send(image_bgr)

    def _send(self, image_bgr: np.ndarray) -> None:
        import pyvirtualcam

        height, width = image_bgr.shape[:2]
        if self.camera is None:
            try:
                self.camera = pyvirtualcam.Camera(width=width, height=height, fps=self.fps)
            except Exception as error:  # pyvirtualcam raises RuntimeError with the backend's reason
                raise UnveilError(f"virtual camera unavailable: {error}") from None
            self.size = (width, height)
        if (width, height) != self.size:
            image_bgr = cv2.resize(image_bgr, self.size, interpolation=cv2.INTER_AREA)
        self.camera.send(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))

    @property
    def device(self) -> str:
        return getattr(self.camera, "device", "") if self.camera is not None else ""

    def close(self) -> None:
        with self._lock:
            if self.camera is not None:
                self.camera.close()
                self.camera = None
