"""Piecewise-affine warps on the face mesh: one image's face moved onto another face's mesh, triangle by triangle.

Face memory uses it to move a remembered face onto the current one; symmetry uses it to move the visible half of
the current face onto its hidden half (source points = the current mesh with left and right swapped).
"""
from __future__ import annotations

import cv2
import numpy as np

from realtime.mesh_topology import load_topology


def triangle_affines(source_points: np.ndarray, target_points: np.ndarray, triangles: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(T, 2, 3) affine per triangle mapping target pixels to source pixels, and (T,) bool usable (not degenerate).

    Closed form on the triangles' edge vectors (a batched 2x2 inverse): np.linalg.inv costs far more here."""
    t = np.asarray(target_points, np.float64)[triangles]          # T, 3, 2
    s = np.asarray(source_points, np.float64)[triangles]
    et = np.stack([t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]], axis=2)  # T, 2, 2 (columns are edges)
    es = np.stack([s[:, 1] - s[:, 0], s[:, 2] - s[:, 0]], axis=2)
    det = et[:, 0, 0] * et[:, 1, 1] - et[:, 0, 1] * et[:, 1, 0]
    usable = np.abs(det) > 1e-3
    safe = np.where(usable, det, 1.0)
    inverse = np.stack([np.stack([et[:, 1, 1], -et[:, 0, 1]], 1), np.stack([-et[:, 1, 0], et[:, 0, 0]], 1)], 1) / safe[:, None, None]
    linear = es @ inverse                                           # T, 2, 2
    shift = s[:, 0] - np.einsum("tij,tj->ti", linear, t[:, 0])
    return np.concatenate([linear, shift[:, :, None]], axis=2), usable


def triangle_index_map(target_points: np.ndarray, triangles: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """(h, w) int32 map over `box` (x0, y0, x1, y1): 1 + the triangle covering each pixel, 0 outside the mesh."""
    x0, y0, x1, y1 = box
    index = np.zeros((y1 - y0, x1 - x0), np.int32)
    shift = 4
    corners = np.round((np.asarray(target_points, np.float64) - (x0, y0)) * (1 << shift)).astype(np.int32)
    for k, tri in enumerate(triangles):
        cv2.fillConvexPoly(index, corners[tri], k + 1, lineType=cv2.LINE_8, shift=shift)
    return index


def warp_mesh(source: np.ndarray, source_points: np.ndarray, target_points: np.ndarray,
              box: tuple[int, int, int, int], only: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Warp `source` so that its mesh lands on `target_points`, over the target `box`.

    Returns (image over the box, same dtype as source; bool valid map: inside the mesh and sampled inside the
    source). `only` (bool, box-sized) limits the work to the pixels that are needed.
    """
    _, _, triangles = load_topology()
    x0, y0, x1, y1 = box
    h, w = y1 - y0, x1 - x0
    index = triangle_index_map(target_points, triangles, box)
    affines, usable = triangle_affines(source_points, target_points, triangles)
    inside = index > 0
    inside[inside] = usable[index[inside] - 1]
    if only is not None:
        inside &= only
    map_x = np.full((h, w), -1.0, np.float32)
    map_y = np.full((h, w), -1.0, np.float32)
    ys, xs = np.nonzero(inside)
    if len(ys):
        a = affines[index[ys, xs] - 1]
        fx, fy = xs + x0, ys + y0
        map_x[ys, xs] = a[:, 0, 0] * fx + a[:, 0, 1] * fy + a[:, 0, 2]
        map_y[ys, xs] = a[:, 1, 0] * fx + a[:, 1, 1] * fy + a[:, 1, 2]
    warped = cv2.remap(source, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    sh, sw = source.shape[:2]
    valid = inside & (map_x >= 0) & (map_y >= 0) & (map_x <= sw - 1) & (map_y <= sh - 1)
    return warped, valid


def mirrored_points(points: np.ndarray) -> np.ndarray:
    """The mesh with left and right swapped: warping a face with it as source maps each half onto the other."""
    _, mirror, _ = load_topology()
    return np.asarray(points)[mirror]
