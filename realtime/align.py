"""Alignment: one template, one forward warp, one inverse warp, one paste-back.

Used unchanged by the runtime and by the trainer's `prepare`, so training crops match inference crops
exactly. All matrices are 2x3 similarity transforms mapping *frame* pixels to *crop* pixels.
"""
from __future__ import annotations

import cv2
import numpy as np

# Five reference points in unit-square crop coordinates: image-left eye, image-right eye, nose tip, image-left
# mouth corner, image-right mouth corner. Started from the common 112x112 ArcFace layout and refitted (generalised
# Procrustes) to the mean of mediapipe's face-mesh points on 300 CelebA faces, so the mesh points we align with
# sit on the template on average instead of 2-4 px off.
TEMPLATES: dict[str, np.ndarray] = {
    "unveil5": np.array(
        [[0.33519, 0.46253], [0.66371, 0.46115], [0.49844, 0.67949], [0.35980, 0.80361], [0.64400, 0.80306]],
        dtype=np.float64,
    ),
}

# Face-mesh (468 points) indices that make up the five template points; pairs are averaged.
MESH_FIVE_POINTS: tuple[tuple[int, ...], ...] = ((33, 133), (362, 263), (1,), (61,), (291,))


def five_points_from_mesh(landmarks: np.ndarray) -> np.ndarray:
    """(468, 2) face-mesh landmarks in pixels -> (5, 2) template points in pixels."""
    return np.stack([landmarks[list(idx)].mean(axis=0) for idx in MESH_FIVE_POINTS]).astype(np.float64)


DEFAULT_TEMPLATE = "unveil5"   # the template every shipped model was trained with
DEFAULT_MARGIN = 0.15          # crop margin around the template, as a fraction of its size


def template_points(crop_size: int, template: str = DEFAULT_TEMPLATE, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Template points in crop pixels; `margin` widens the crop around the template on every side."""
    unit = (TEMPLATES[template] + margin) / (1.0 + 2.0 * margin)
    return unit * crop_size


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping src -> dst.

    Umeyama's closed form: deterministic and exact for noise-free points, unlike RANSAC estimators.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s_c, d_c = src - mu_s, dst - mu_d
    cov = d_c.T @ s_c / len(src)
    u, sig, vt = np.linalg.svd(cov)
    fix = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        fix[1, 1] = -1
    rot = u @ fix @ vt
    var_s = (s_c**2).sum() / len(src)
    scale = (sig * np.diag(fix)).sum() / var_s
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rot
    matrix[:, 2] = mu_d - scale * rot @ mu_s
    return matrix


def align_to_template(points5: np.ndarray, crop_size: int, template: str = DEFAULT_TEMPLATE,
                      margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """Frame -> crop similarity matrix that puts five face points on the template."""
    return estimate_similarity(points5, template_points(crop_size, template, margin))


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64))


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


ANTI_ALIAS_BELOW = 0.75  # crop pixels per frame pixel under which the frame is area-averaged before the warp


def warp_to_crop(image: np.ndarray, matrix: np.ndarray, crop_size: int) -> np.ndarray:
    """Cut the aligned square crop out of a frame (edges replicated where the crop leaves the frame).

    A face much larger than the crop is area-averaged to the crop's scale first: a plain bilinear warp that shrinks
    3-4x aliases hair and skin texture into speckle that photos (and the networks trained on them) never show."""
    matrix = np.asarray(matrix, np.float64)
    scale = float(np.hypot(matrix[0, 0], matrix[0, 1]))
    if scale < ANTI_ALIAS_BELOW:
        x0, y0, x1, y1 = crop_bounds_in_frame(matrix, crop_size, image.shape[:2])
        if x1 > x0 and y1 > y0:
            w, h = max(int(round((x1 - x0) * scale)), 1), max(int(round((y1 - y0) * scale)), 1)
            small = cv2.resize(image[y0:y1, x0:x1], (w, h), interpolation=cv2.INTER_AREA)
            sx, sy = w / (x1 - x0), h / (y1 - y0)
            # small pixel (u, v) is centred on frame pixel (x0 + (u + 0.5) / sx - 0.5, y0 + (v + 0.5) / sy - 0.5)
            shifted = np.empty((2, 3))
            shifted[:, 0] = matrix[:, 0] / sx
            shifted[:, 1] = matrix[:, 1] / sy
            shifted[:, 2] = (matrix[:, 2] + matrix[:, 0] * (x0 + 0.5 / sx - 0.5)
                             + matrix[:, 1] * (y0 + 0.5 / sy - 0.5))
            image, matrix = small, shifted
    return cv2.warpAffine(image, matrix, (crop_size, crop_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def warp_to_frame(crop: np.ndarray, matrix: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    """Inverse warp: put a crop-space image (or mask) back into frame coordinates; outside the crop is 0."""
    h, w = frame_hw
    return cv2.warpAffine(
        crop, matrix, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def crop_bounds_in_frame(matrix: np.ndarray, crop_size: int, frame_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """Integer box (x0, y0, x1, y1) in the frame that contains the whole crop, clipped to the frame."""
    corners = np.array([[0, 0], [crop_size, 0], [0, crop_size], [crop_size, crop_size]], np.float64)
    pts = transform_points(corners, invert_affine(matrix))
    h, w = frame_hw
    x0, y0 = np.floor(pts.min(0)).astype(int) - 1
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 1
    return max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)


def paste_back(frame: np.ndarray, crop: np.ndarray, weight: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blend a crop-space image into a copy of `frame` with a crop-space weight in [0, 1].

    Only pixels whose warped weight is > 0 change; every other pixel of the result is the input's, bit for
    bit. Returns (result, frame-space weight as float32, > 0 exactly where a pixel changed). Work is limited to the
    crop's bounding box.
    """
    h, w = frame.shape[:2]
    out = frame.copy()
    full_weight = np.zeros((h, w), np.float32)
    x0, y0, x1, y1 = crop_bounds_in_frame(matrix, crop.shape[0], (h, w))
    if x1 <= x0 or y1 <= y0 or not np.any(weight > 0):
        return out, full_weight
    # Shift the matrix so the inverse warp lands in the box only.
    shifted = matrix.copy()
    shifted[:, 2] += matrix[:, :2] @ np.array([x0, y0], np.float64)
    bh, bw = y1 - y0, x1 - x0
    wgt = warp_to_frame(weight.astype(np.float32), shifted, (bh, bw))
    np.clip(wgt, 0.0, 1.0, out=wgt)
    if not np.any(wgt > 0):
        return out, full_weight
    src = warp_to_frame(crop, shifted, (bh, bw)).astype(np.float32)
    region = out[y0:y1, x0:x1]
    changed = wgt > 0
    blended = region.astype(np.float32) * (1.0 - wgt[..., None]) + src * wgt[..., None]
    new_pixels = np.clip(np.rint(blended[changed]), 0, 255).astype(np.uint8)
    # a pixel whose blend rounds back to its old value did not change: its weight is reported as 0
    wgt[changed] *= (new_pixels != region[changed]).any(axis=1)
    region[changed] = new_pixels
    full_weight[y0:y1, x0:x1] = wgt
    return out, full_weight
