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


def triangle_index_map(target_points: np.ndarray, triangles: np.ndarray, box: tuple[int, int, int, int],
                       subset: np.ndarray | None = None) -> np.ndarray:
    """(h, w) int32 map over `box` (x0, y0, x1, y1): 1 + the triangle covering each pixel, 0 outside the mesh.
    `subset` (indices into `triangles`, ascending) rasterises only those triangles."""
    x0, y0, x1, y1 = box
    index = np.zeros((y1 - y0, x1 - x0), np.int32)
    shift = 4
    corners = np.round((np.asarray(target_points, np.float64) - (x0, y0)) * (1 << shift)).astype(np.int32)
    for k in (range(len(triangles)) if subset is None else subset):
        cv2.fillConvexPoly(index, corners[triangles[k]], int(k) + 1, lineType=cv2.LINE_8, shift=shift)
    return index


def triangles_touching(target_points: np.ndarray, triangles: np.ndarray, box: tuple[int, int, int, int],
                       needed: np.ndarray) -> np.ndarray:
    """Ascending indices of the triangles whose bounding box meets that of the `needed` pixels (bool, box-sized):
    the only ones that can cover them. A hole over the mouth needs a fraction of the mesh's ~900 triangles."""
    ys, xs = np.nonzero(needed)
    if not len(ys):
        return np.zeros(0, np.int64)
    x0, y0 = box[0], box[1]
    corners = np.asarray(target_points, np.float64)[triangles]       # T, 3, 2
    lo, hi = corners.min(axis=1), corners.max(axis=1)
    meets = ((hi[:, 0] >= xs.min() + x0 - 1) & (lo[:, 0] <= xs.max() + x0 + 1) &
             (hi[:, 1] >= ys.min() + y0 - 1) & (lo[:, 1] <= ys.max() + y0 + 1))
    return np.flatnonzero(meets)


def warp_mesh(source: np.ndarray, source_points: np.ndarray, target_points: np.ndarray,
              box: tuple[int, int, int, int], only: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Warp `source` so that its mesh lands on `target_points`, over the target `box`.

    Returns (image over the box, same dtype as source; bool valid map: inside the mesh and sampled inside the
    source). `only` (bool, box-sized) limits the work to the pixels that are needed.
    """
    _, _, triangles = load_topology()
    return warp_triangles(source, source_points, target_points, triangles, box, only=only)


def warp_triangles(source: np.ndarray, source_points: np.ndarray, target_points: np.ndarray, triangles: np.ndarray,
                   box: tuple[int, int, int, int], only: np.ndarray | None = None,
                   usable: np.ndarray | None = None, border: int = cv2.BORDER_CONSTANT) -> tuple[np.ndarray, np.ndarray]:
    """The piecewise-affine warp over any triangulation; `usable` (T,) bool leaves triangles out, `border` is the
    OpenCV border mode for samples that fall outside `source`."""
    x0, y0, x1, y1 = box
    h, w = y1 - y0, x1 - x0
    subset = triangles_touching(target_points, triangles, box, only) if only is not None else None
    index = triangle_index_map(target_points, triangles, box, subset)
    affines, kept = triangle_affines(source_points, target_points, triangles)
    if usable is not None:
        kept &= usable
    inside = index > 0
    inside[inside] = kept[index[inside] - 1]
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
    warped = cv2.remap(source, map_x, map_y, cv2.INTER_LINEAR, borderMode=border, borderValue=0)
    sh, sw = source.shape[:2]
    valid = inside & (map_x >= 0) & (map_y >= 0) & (map_x <= sw - 1) & (map_y <= sh - 1)
    return warped, valid


def mirrored_points(points: np.ndarray) -> np.ndarray:
    """The mesh with left and right swapped: warping a face with it as source maps each half onto the other."""
    _, mirror, _ = load_topology()
    return np.asarray(points)[mirror]


def hidden_points(points: np.ndarray, hole: np.ndarray, grow: int = 2) -> np.ndarray:
    """(468,) bool: mesh points that lie in (or within `grow` px of) the hole; box-local points and hole."""
    h, w = hole.shape
    xy = np.round(points).astype(int)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    near = cv2.dilate(hole.astype(np.uint8), np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)) > 0 if grow else hole
    hidden = np.zeros(len(points), bool)
    hidden[inside] = near[xy[inside, 1], xy[inside, 0]]
    return hidden


def complete_hidden(reference: np.ndarray, points: np.ndarray, hidden: np.ndarray, sigma: float) -> np.ndarray:
    """`points` with the hidden ones replaced by the `reference` face's, moved by the affine that best maps the
    reference's visible points onto the current ones (weighted towards the hole, Gaussian `sigma` in pixels).

    The face mesh guesses what an occluder hides; the remembered (or mirrored) face knows it. Without enough
    visible points the mesh is kept as it is."""
    visible = ~hidden
    if not hidden.any() or visible.sum() < 12:
        return points
    centre = points[hidden].mean(0)
    weight = np.exp(-((points[visible] - centre) ** 2).sum(1) / (2.0 * sigma**2)) + 1e-3
    src = np.concatenate([reference[visible], np.ones((visible.sum(), 1))], axis=1) * np.sqrt(weight)[:, None]
    dst = points[visible] * np.sqrt(weight)[:, None]
    affine, *_ = np.linalg.lstsq(src, dst, rcond=None)           # (3, 2)
    out = np.asarray(points, np.float64).copy()
    out[hidden] = np.concatenate([reference[hidden], np.ones((hidden.sum(), 1))], axis=1) @ affine
    return out.astype(np.float32)
