"""Occluder layers: an occluder is a pair of layers, alpha (float32 HxW in [0, 1]) and colour (float32 HxWx3,
0..255, BGR), applied by `composite`, the one place where pixels change. Also the face layout painters place
occluders by, and the drawing primitives they share."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from realtime.errors import UnveilError

# Pixels whose occluder alpha is at or below this stay bit-identical; above it they change and are in the mask.
ALPHA_THRESHOLD = 0.05
SUPERSAMPLE_PIXELS = 512  # realistic shapes are drawn on a canvas this wide (at most 4x) and area-averaged down



@dataclass(frozen=True)
class FaceLayout:
    """Where the face parts are in an aligned crop, from the five template points (pixels)."""

    left_eye: np.ndarray
    right_eye: np.ndarray
    nose: np.ndarray
    mouth: np.ndarray  # midpoint of the mouth corners
    mouth_width: float
    eye_distance: float  # between the eye centres
    eye_to_mouth: float  # from the eyes' midpoint to the mouth's midpoint
    face_centre: np.ndarray  # centre of the ellipse that bounds the face (forehead to chin, cheek to cheek)
    face_axes: np.ndarray  # its half axes (x, y)

    @property
    def chin_y(self) -> float:
        return float(self.mouth[1] + 0.6 * self.eye_to_mouth)

    def inside_face(self, point: np.ndarray) -> bool:
        d = (np.asarray(point, np.float64) - self.face_centre) / self.face_axes
        return float(d @ d) <= 1.0


def face_layout(points5: np.ndarray) -> FaceLayout:
    """Face geometry from the five points (left eye, right eye, nose, left and right mouth corners) in pixels."""
    pts = np.asarray(points5, np.float64)
    eyes_mid = (pts[0] + pts[1]) / 2
    mouth = (pts[3] + pts[4]) / 2
    eye_distance = float(np.linalg.norm(pts[1] - pts[0]))
    eye_to_mouth = float(np.linalg.norm(mouth - eyes_mid))
    # Hairline about one eye-to-mouth distance above the eyes, chin about 0.6 of it below the mouth (adult proportions).
    top = eyes_mid[1] - 1.0 * eye_to_mouth
    bottom = mouth[1] + 0.6 * eye_to_mouth
    centre = np.array([eyes_mid[0], (top + bottom) / 2])
    axes = np.array([1.1 * eye_distance, (bottom - top) / 2])
    return FaceLayout(pts[0], pts[1], pts[2], mouth, float(np.linalg.norm(pts[4] - pts[3])), eye_distance, eye_to_mouth,
                      centre, axes)


# ----------------------------------------------------------------------------------------------------------- composite


def composite(image: np.ndarray, alpha: np.ndarray, colour: np.ndarray,
              threshold: float = ALPHA_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Blend an occluder layer over `image`; returns (occluded uint8 image, binary float32 mask).

    Pixels with alpha <= threshold are left bit-identical. Every pixel with alpha > threshold is changed; where the
    blend happens to equal the input (an occluder of the face's own colour) one channel moves by one level, so the
    mask is both "the occluder is here" and exactly "this pixel differs from the input".
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise UnveilError(f"composite needs a uint8 HxWx3 image, got {image.dtype} {image.shape}")
    if alpha.shape != image.shape[:2] or colour.shape != image.shape:
        raise UnveilError(f"occluder layers {alpha.shape}/{colour.shape} do not match the image {image.shape}")
    out = image.copy()
    mask = np.zeros(image.shape[:2], np.float32)
    rows, cols = np.nonzero(alpha > threshold)
    if len(rows) == 0:
        return out, mask
    box = (slice(rows.min(), rows.max() + 1), slice(cols.min(), cols.max() + 1))  # work only where the occluder is
    covered = alpha[box] > threshold
    a = alpha[box][covered].astype(np.float32)[:, None]
    before = image[box][covered]
    blended = np.clip(np.rint(before.astype(np.float32) * (1.0 - a) + colour[box][covered].astype(np.float32) * a), 0, 255)
    blended = blended.astype(np.uint8)
    same = (blended == before).all(axis=1)
    if same.any():
        green = blended[same, 1]
        blended[same, 1] = np.where(green < 255, green + 1, green - 1)
    out[box][covered] = blended
    mask[box] = covered
    return out, mask


def move_layer(alpha: np.ndarray, colour: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Warp an occluder layer with a 2x3 affine (e.g. a shift per video frame); outside the source is transparent."""
    size = (alpha.shape[1], alpha.shape[0])
    moved_alpha = cv2.warpAffine(alpha.astype(np.float32), matrix, size, flags=cv2.INTER_LINEAR, borderValue=0)
    moved_colour = cv2.warpAffine(colour.astype(np.float32), matrix, size, flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
    return moved_alpha, moved_colour


# --------------------------------------------------------------------------------------------------- drawing primitives


def bgr(rgb: Sequence[float]) -> np.ndarray:
    return np.array(rgb[::-1], np.float32)


def random_rgb(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, 3).astype(np.float32)


def flat_colour(size: int, bgr: np.ndarray) -> np.ndarray:
    return np.broadcast_to(np.asarray(bgr, np.float32), (size, size, 3)).copy()


def jitter_tone(rgb: Sequence[int], rng: np.random.Generator, spread: float = 0.08) -> np.ndarray:
    gain = 1.0 + rng.uniform(-spread, spread) + rng.uniform(-spread / 3, spread / 3, 3)
    return np.clip(bgr(rgb) * gain[::-1], 0, 255).astype(np.float32)


def rotation(angle_deg: float) -> np.ndarray:
    t = np.deg2rad(angle_deg)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


def local_to_crop(points: np.ndarray, centre: np.ndarray, angle_deg: float, unit: float) -> np.ndarray:
    """Shape points drawn in a local frame (unit = shape length, y down) -> crop pixels."""
    return np.asarray(points, np.float64) * unit @ rotation(angle_deg).T + centre


def supersample(size: int) -> int:
    """Drawing scale for anti-aliased edges: 4x for small crops, less for large ones (same edge quality, less work)."""
    return int(np.clip(SUPERSAMPLE_PIXELS // size, 1, 4))


class HiRes:
    """A supersampled uint8 canvas for one shape part; `alpha()` area-averages it down to crop size."""

    def __init__(self, size: int):
        self.size, self.scale = size, supersample(size)
        self.canvas = np.zeros((size * self.scale, size * self.scale), np.uint8)

    def _pt(self, p: np.ndarray) -> tuple[int, int]:
        q = (np.asarray(p, np.float64) + 0.5) * self.scale - 0.5
        return int(round(q[0])), int(round(q[1]))

    def capsule(self, p0: np.ndarray, p1: np.ndarray, width: float) -> None:
        cv2.line(self.canvas, self._pt(p0), self._pt(p1), 255, max(1, int(round(width * self.scale))), cv2.LINE_8)

    def polygon(self, points: np.ndarray) -> None:
        pts = np.array([self._pt(p) for p in points], np.int32)
        cv2.fillPoly(self.canvas, [pts], 255, cv2.LINE_8)

    def ellipse(self, centre: np.ndarray, axes: tuple[float, float], angle_deg: float = 0.0) -> None:
        ax = (max(1, int(round(axes[0] * self.scale))), max(1, int(round(axes[1] * self.scale))))
        cv2.ellipse(self.canvas, self._pt(centre), ax, angle_deg, 0, 360, 255, -1, cv2.LINE_8)

    def alpha(self) -> np.ndarray:
        small = cv2.resize(self.canvas, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return small.astype(np.float32) / 255.0


def soften(alpha: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(alpha, (0, 0), sigma) if sigma > 0.05 else alpha


def pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return xs, ys


def value_noise(size: int, rng: np.random.Generator, cells: int, octaves: int = 3) -> np.ndarray:
    """Smooth fractal noise in [0, 1], float32 SxS: random grids upsampled with bicubic interpolation."""
    total = np.zeros((size, size), np.float32)
    weight = 0.0
    for octave in range(octaves):
        n = max(2, cells * 2**octave)
        grid = rng.random((n + 1, n + 1)).astype(np.float32)
        total += cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC) * 0.5**octave
        weight += 0.5**octave
    total /= weight
    lo, hi = float(total.min()), float(total.max())
    return (total - lo) / max(hi - lo, 1e-6)


def procedural_texture(size: int, rng: np.random.Generator) -> np.ndarray:
    """A float32 SxSx3 texture (noise, gradient, stripes or plaid between two random colours) when no images are given."""
    a, b = random_rgb(rng), random_rgb(rng)
    xs, ys = pixel_grid(size)
    style = rng.integers(4)
    angle = rng.uniform(0, np.pi)
    along = (xs * np.cos(angle) + ys * np.sin(angle)) / size
    if style == 0:
        t = value_noise(size, rng, int(rng.integers(2, 8)))
    elif style == 1:
        t = np.clip(along - along.min(), 0, None) / max(float(np.ptp(along)), 1e-6)
        t = np.clip(t + 0.15 * (value_noise(size, rng, 6) - 0.5), 0, 1)
    elif style == 2:
        t = 0.5 + 0.5 * np.sin(2 * np.pi * along * rng.uniform(3, 12))
    else:
        across = (-xs * np.sin(angle) + ys * np.cos(angle)) / size
        f = rng.uniform(4, 10)
        t = 0.5 * ((np.sin(2 * np.pi * along * f) > 0).astype(np.float32) + (np.sin(2 * np.pi * across * f) > 0))
    t = t[..., None].astype(np.float32)
    grain = (rng.normal(0, 6, (size, size, 1))).astype(np.float32)
    return np.clip(a * (1 - t) + b * t + grain, 0, 255).astype(np.float32)


def texture_from_image(size: int, rng: np.random.Generator, texture: np.ndarray) -> np.ndarray:
    """A random square patch of `texture`, resized to SxS (the patch keeps the texture's colour order)."""
    h, w = texture.shape[:2]
    side = int(rng.integers(max(4, min(h, w) // 4), min(h, w) + 1))
    y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    patch = texture[y0:y0 + side, x0:x0 + side]
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)


def render_text_hires(text: str, font: int, height_px: float, thickness_ratio: float,
                       scale: int) -> tuple[np.ndarray, int]:
    """Text at `scale`x resolution; returns (uint8 ink canvas tight around the glyph box, baseline offset)."""
    (tw, th), base = cv2.getTextSize(text, font, 1.0, 1)
    font_scale = height_px * scale / max(th, 1)
    thickness = max(1, int(round(font_scale * thickness_ratio * 10)))
    (tw, th), base = cv2.getTextSize(text, font, font_scale, thickness)
    pad = thickness + 2
    canvas = np.zeros((th + base + 2 * pad, tw + 2 * pad), np.uint8)
    cv2.putText(canvas, text, (pad, pad + th), font, font_scale, 255, thickness, cv2.LINE_AA)
    return canvas, pad + th


# ---------------------------------------------------------------------------------------------- paper occluders (c2fdan)




def jitter_layer(alpha: np.ndarray, colour: np.ndarray, rng: np.random.Generator,
                 max_blur: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Colour (gain, bias) and blur (defocus) jitter of an occluder layer; blur is premultiplied so edges do not darken."""
    size = alpha.shape[0]
    gain = rng.uniform(0.85, 1.15) * (1.0 + rng.uniform(-0.05, 0.05, 3))
    colour = np.clip(colour * gain + rng.uniform(-12, 12), 0, 255).astype(np.float32)
    sigma = rng.uniform(0.0, max_blur) * size / 128
    if sigma > 0.3:
        premultiplied = cv2.GaussianBlur(colour * alpha[..., None], (0, 0), sigma)
        alpha = cv2.GaussianBlur(alpha, (0, 0), sigma)
        colour = premultiplied / np.maximum(alpha, 1e-4)[..., None]
    return alpha.astype(np.float32), np.clip(colour, 0, 255).astype(np.float32)


# --------------------------------------------------------------------------------------------------------------- synth
