"""Which evidence decided each replaced pixel, in frame pixels: for `--save-masks` and the viewer's overlay."""
from __future__ import annotations

import cv2
import numpy as np

from realtime.align import crop_bounds_in_frame
from realtime.frame import Frame

# BGR per EVIDENCE code (realtime.find.decide): none, held grey, segmenter orange, surface green, hands cyan,
# segmenter and hands white, graphic overlay magenta
EVIDENCE_BGR = np.array([[0, 0, 0], [150, 150, 150], [0, 140, 255], [80, 220, 80], [255, 220, 0], [255, 255, 255],
                         [255, 0, 255]], np.uint8)


def evidence_in_frame(frame: Frame) -> np.ndarray | None:
    """(H, W) uint8 EVIDENCE codes of every face's decided mask, or None when no face has one."""
    faces = [f for f in frame.faces if f.found_by is not None and f.found_by.any()]
    if not faces:
        return None
    h, w = frame.image.shape[:2]
    out = np.zeros((h, w), np.uint8)
    for face in faces:
        x0, y0, x1, y1 = crop_bounds_in_frame(face.matrix, face.found_by.shape[0], (h, w))
        if x1 <= x0 or y1 <= y0:
            continue
        shifted = np.asarray(face.matrix, np.float64).copy()
        shifted[:, 2] += shifted[:, :2] @ np.array([x0, y0], np.float64)
        codes = cv2.warpAffine(face.found_by, shifted, (x1 - x0, y1 - y0),
                               flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0)
        np.maximum(out[y0:y1, x0:x1], codes, out=out[y0:y1, x0:x1])
    return out


def evidence_picture(codes: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 BGR: each code in its colour, black where nothing was decided."""
    return EVIDENCE_BGR[np.minimum(codes, len(EVIDENCE_BGR) - 1)]
