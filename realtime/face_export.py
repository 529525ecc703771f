"""`unveil process --export-faces DIR`: each track's completed face, frame by frame, as aligned crops.

DIR/track_NNN/FFFFFF.png (track id, frame index; unrelated images get track -1's folder `track_none`). Every crop is
the network's output size: with a completion_super_resolution model loaded (realtime.small_faces), a small face
is that model's 128 px output -- its fill when the fill stage ran it, else the model run on the finished frame's small
crop with no hole (super-resolution alone); a face at or above the size threshold, or any face without such a model,
is the finished frame cut out at the pipeline's crop size (the same template and margin).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from realtime.align import warp_to_crop
from realtime.errors import UnveilError
from realtime.fill import FILLER_CODE
from realtime.frame import Frame
from realtime.runner import ModelRunner
from realtime.small_faces import complete_small, is_small


class FaceExport:
    def __init__(self, folder: str | Path, crop_size: int, small: ModelRunner | None = None,
                 small_face_eyes: float = 0.0):
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UnveilError(f"--export-faces {folder}: cannot create the folder ({exc.strerror})") from None
        self.crop_size, self.small, self.small_face_eyes = crop_size, small, small_face_eyes
        self.written = 0

    def crop(self, frame: Frame, face) -> np.ndarray:
        """The completed face at the output size (uint8 BGR)."""
        if self.small is not None and is_small(face.landmarks, self.small_face_eyes):
            # the network filler painted part of this small face: with a small-face model loaded, that was its output
            painted = face.fill is not None and bool((face.fill.source == FILLER_CODE["network"]).any())
            if painted and face.completed is not None:
                return face.completed
            clean = np.zeros((self.crop_size, self.crop_size), np.float32)
            return complete_small(self.small, frame.result(), face.matrix, clean)
        return warp_to_crop(frame.result(), face.matrix, self.crop_size)

    def write(self, frame: Frame) -> None:
        for face in frame.faces:
            if face.matrix is None or face.landmarks is None:
                continue
            track = f"track_{face.track_id:03d}" if face.track_id >= 0 else "track_none"
            name = f"{frame.index:06d}.png" if not frame.source_name else f"{Path(frame.source_name).stem}.png"
            folder = self.folder / track
            folder.mkdir(exist_ok=True)
            if not cv2.imwrite(str(folder / name), self.crop(frame, face)):
                raise UnveilError(f"--export-faces: cannot write {folder / name}")
            self.written += 1
