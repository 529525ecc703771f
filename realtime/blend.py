"""Blend: paste each face's fill into the frame with its weight; nothing else changes.

The weight comes from the fill stage: 1 on the decided occlusion, feathered outside it, 0 outside the face oval.
A pixel whose blended value rounds back to its old value is not reported as replaced.
"""
from __future__ import annotations

import numpy as np

from realtime.frame import Frame


def paste_fill(image: np.ndarray, fill_image: np.ndarray, weight: np.ndarray, box: tuple[int, int, int, int]
               ) -> np.ndarray:
    """Blend `fill_image` into `image[box]` in place with `weight`; returns the box's bool map of changed pixels."""
    x0, y0, x1, y1 = box
    region = image[y0:y1, x0:x1]
    touched = weight > 0
    if not touched.any():
        return touched
    w = weight[touched][:, None]
    blended = region[touched].astype(np.float32) * (1.0 - w) + fill_image[touched].astype(np.float32) * w
    new = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    changed = np.zeros_like(touched)
    changed[touched] = (new != region[touched]).any(axis=1)
    region[touched] = new
    return changed


def blend_frame(frame: Frame) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(output, replaced) for a frame whose faces carry a fill; (None, None) when no pixel changes."""
    out = replaced = None
    for face in frame.faces:
        fill = face.fill
        if fill is None or not fill.weight.any():
            continue
        if out is None:
            out = frame.image.copy()
            replaced = np.zeros(frame.image.shape[:2], np.uint8)
        changed = paste_fill(out, fill.image, fill.weight, fill.box)
        x0, y0, x1, y1 = fill.box
        replaced[y0:y1, x0:x1][changed] = 255
    if replaced is not None and not replaced.any():
        return None, None
    return out, replaced
