"""Pixel regions of a face in aligned-crop coordinates: where the face is, and binary-mask clean-up.

Only face pixels may ever be replaced. The face region is the mediapipe mesh's face oval (forehead to chin, cheek
to cheek), rasterised in the aligned crop. Hair, ears, neck, clothes and background are outside it.
"""
from __future__ import annotations

import cv2
import numpy as np

# mediapipe face mesh FACEMESH_FACE_OVAL, in order around the face (starting at the top of the forehead).
FACE_OVAL: tuple[int, ...] = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150,
    136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)


def polygon_mask(points: np.ndarray, shape: int | tuple[int, int]) -> np.ndarray:
    """Bool mask of the filled polygon through `points` (pixels), sub-pixel accurate; `shape` is (h, w) or a side."""
    mask = np.zeros((shape, shape) if isinstance(shape, int) else tuple(shape), np.uint8)
    shift = 4
    pts = np.round(np.asarray(points, np.float64) * (1 << shift)).astype(np.int32)
    cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=shift)
    return mask.astype(bool)


def face_oval(landmarks: np.ndarray, shape: int | tuple[int, int]) -> np.ndarray:
    """Bool face oval of 468 mesh points (in the pixels of an image of `shape`: (h, w) or a square's side)."""
    return polygon_mask(np.asarray(landmarks)[list(FACE_OVAL)], shape)


def face_region(landmarks_crop: np.ndarray, size: int, shrink: float = 0.0) -> np.ndarray:
    """(size, size) bool face oval from 468 mesh points already in crop pixels; `shrink` (crop fraction) erodes it."""
    region = face_oval(landmarks_crop, size)
    px = int(round(shrink * size))
    if px > 0 and region.any():
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
        region = cv2.erode(region.astype(np.uint8), kernel).astype(bool)
    return region


def remove_specks(mask: np.ndarray, min_area: int, spare: np.ndarray | None = None) -> np.ndarray:
    """Drop connected regions smaller than `min_area` pixels (single-frame speckles never reach the output), except
    those holding a pixel of `spare`."""
    mask = np.asarray(mask, bool)
    if min_area <= 1 or not mask.any():
        return mask
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = np.zeros(count, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_area
    if spare is not None:
        keep[np.unique(labels[spare & mask])] = True
        keep[0] = False
    return keep[labels]


def dilate(mask: np.ndarray, px: int) -> np.ndarray:
    mask = np.asarray(mask, bool)
    if px <= 0 or not mask.any():
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)
