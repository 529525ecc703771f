"""Synthetic occluders that move over a face in a video, for measuring temporal stability (`unveil temporal-eval`).

Each painter draws one frame of an occluder in frame pixels, placed relative to a face anchor (its centre and
size, from the face detector run on the clean frame), and returns two layers: alpha (float32 HxW in [0, 1]) and
colour (float32 HxWx3 BGR, 0..255). `trainer.occluders.layers.composite` applies them (threshold 0: every pixel the
occluder touches). Motion is a pure function of the frame index, so a
clip is reproducible. Kinds:
- bar:  a tilted vertical bar sliding left and right across the face;
- text: a subtitle line scrolling right to left across the lower face;
- hand: an open hand (palm, fingers, thumb) passing diagonally over the face and back;
- mask: a face mask over nose, mouth and chin that stays on the face and moves with it.
Palettes: 'natural' (plausible colours, for trained models) and 'magenta' (what the tiny test model detects).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from realtime.errors import UnveilError

OCCLUDER_KINDS: tuple[str, ...] = ("bar", "text", "hand", "mask")
PALETTES: tuple[str, ...] = ("natural", "magenta")
MAGENTA_BGR = (255.0, 0.0, 255.0)
NATURAL_BGR: dict[str, tuple[float, float, float]] = {
    "bar": (60.0, 70.0, 80.0),        # dark grey-brown, like a pole or a door frame
    "text": (240.0, 240.0, 240.0),    # white subtitle letters
    "hand": (120.0, 150.0, 200.0),    # skin tone
    "mask": (225.0, 205.0, 170.0),    # light-blue surgical mask
}
SUBTITLE_TEXT = "and that is why we keep talking about it"
_SUPERSAMPLE = 4  # shapes are drawn at 4x and reduced, for anti-aliased edges at sub-pixel positions


@dataclass(frozen=True)
class FaceAnchor:
    """Where the face is in the clean frame: centre (x, y) in pixels and size (face width) in pixels."""

    cx: float
    cy: float
    size: float


def anchor_from_landmarks(landmarks: np.ndarray) -> FaceAnchor:
    """Anchor from (468, 2) face-mesh points: the centre of their bounding box and its width."""
    lo, hi = landmarks.min(axis=0), landmarks.max(axis=0)
    return FaceAnchor(float(lo[0] + hi[0]) / 2.0, float(lo[1] + hi[1]) / 2.0, float(hi[0] - lo[0]))


def triangle_wave(t: float, period: float) -> float:
    """-1 .. 1 .. -1 over one period, linear in between (constant speed, turning at the ends)."""
    phase = (t / period) % 1.0
    return 4.0 * phase - 1.0 if phase < 0.5 else 3.0 - 4.0 * phase


def _fill_polygons(frame_hw: tuple[int, int], polygons: list[np.ndarray]) -> np.ndarray:
    """Anti-aliased coverage (float32 HxW) of filled polygons given in frame pixels."""
    h, w = frame_hw
    big = np.zeros((h * _SUPERSAMPLE, w * _SUPERSAMPLE), np.uint8)
    for poly in polygons:
        cv2.fillPoly(big, [np.rint(np.asarray(poly) * _SUPERSAMPLE).astype(np.int32)], 255, lineType=cv2.LINE_8)
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def _ellipse(cx: float, cy: float, rx: float, ry: float, angle_deg: float, points: int = 48) -> np.ndarray:
    t = np.linspace(0.0, 2.0 * math.pi, points, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    a = math.radians(angle_deg)
    return np.stack([cx + x * math.cos(a) - y * math.sin(a), cy + x * math.sin(a) + y * math.cos(a)], axis=1)


def _capsule(p0: np.ndarray, p1: np.ndarray, radius: float) -> np.ndarray:
    """A rounded finger from p0 to p1, as a polygon."""
    d = p1 - p0
    angle = math.degrees(math.atan2(d[1], d[0]))
    half = float(np.hypot(*d)) / 2.0
    centre = (p0 + p1) / 2.0
    t = np.linspace(-math.pi / 2, math.pi / 2, 12)
    right = np.stack([half + radius * np.cos(t), radius * np.sin(t)], axis=1)
    left = np.stack([-half - radius * np.cos(t), -radius * np.sin(t)], axis=1)
    local = np.concatenate([right, left])
    a = math.radians(angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return local @ rot.T + centre


def bar_alpha(index: int, anchor: FaceAnchor, frame_hw: tuple[int, int]) -> np.ndarray:
    """A bar 0.2 face wide and 1.6 faces tall, tilted 10 degrees, sweeping +-0.9 face across every 60 frames."""
    s = anchor.size
    cx = anchor.cx + 0.9 * s * triangle_wave(index, 60.0)
    corners = np.array([[-0.1, -0.8], [0.1, -0.8], [0.1, 0.8], [-0.1, 0.8]]) * s
    a = math.radians(10.0)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return _fill_polygons(frame_hw, [corners @ rot.T + (cx, anchor.cy)])


def text_alpha(index: int, anchor: FaceAnchor, frame_hw: tuple[int, int]) -> np.ndarray:
    """A subtitle line 0.16 face tall over the mouth, scrolling left by 3% of the face per frame and wrapping."""
    s = anchor.size
    h, w = frame_hw
    font, thickness_ratio = cv2.FONT_HERSHEY_DUPLEX, 0.12
    scale = 0.16 * s * _SUPERSAMPLE / 22.0  # FONT_HERSHEY_DUPLEX capitals are about 22 px tall at scale 1
    thickness = max(1, int(round(thickness_ratio * 22.0 * scale)))
    (text_w, _), _ = cv2.getTextSize(SUBTITLE_TEXT, font, scale, thickness)
    span = text_w / _SUPERSAMPLE + 2.0 * s
    x = anchor.cx + 0.5 * s - (0.03 * s * index) % span  # starts on the face, wraps after passing through
    y = anchor.cy + 0.28 * s
    big = np.zeros((h * _SUPERSAMPLE, w * _SUPERSAMPLE), np.uint8)
    cv2.putText(big, SUBTITLE_TEXT, (int(round(x * _SUPERSAMPLE)), int(round(y * _SUPERSAMPLE))), font, scale, 255,
                thickness, cv2.LINE_AA)
    # A dark outline makes real subtitles readable; here it also makes the occluder a solid band around the letters.
    big = cv2.dilate(big, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * thickness + 1, 2 * thickness + 1)))
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def hand_alpha(index: int, anchor: FaceAnchor, frame_hw: tuple[int, int]) -> np.ndarray:
    """An open hand 0.6 face wide passing diagonally (upper right to lower left and back) every 80 frames."""
    s = anchor.size
    u = triangle_wave(index, 80.0)
    cx, cy = anchor.cx - 0.8 * s * u, anchor.cy - 0.1 * s + 0.35 * s * u
    angle = -25.0 + 15.0 * u
    a = math.radians(angle)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    palm = _ellipse(cx, cy, 0.24 * s, 0.28 * s, angle)
    shapes = [palm]
    for dx, length in ((-0.16, 0.34), (-0.055, 0.40), (0.055, 0.38), (0.16, 0.30)):
        base = np.array([dx * s, -0.18 * s]) @ rot.T + (cx, cy)
        tip = np.array([dx * s * 1.15, -(0.18 + length) * s]) @ rot.T + (cx, cy)
        shapes.append(_capsule(base, tip, 0.05 * s))
    thumb_base = np.array([0.2 * s, 0.05 * s]) @ rot.T + (cx, cy)
    thumb_tip = np.array([0.42 * s, -0.12 * s]) @ rot.T + (cx, cy)
    shapes.append(_capsule(thumb_base, thumb_tip, 0.055 * s))
    return _fill_polygons(frame_hw, shapes)


def mask_alpha(index: int, anchor: FaceAnchor, frame_hw: tuple[int, int]) -> np.ndarray:
    """A face mask from just below the eyes to under the chin; it stays on the face (no motion of its own)."""
    s = anchor.size
    x0, x1 = anchor.cx - 0.5 * s, anchor.cx + 0.5 * s
    top = anchor.cy - 0.04 * s
    bottom = anchor.cy + 0.62 * s
    outline = np.array([
        [x0, top + 0.08 * s], [anchor.cx - 0.2 * s, top], [anchor.cx, top - 0.03 * s], [anchor.cx + 0.2 * s, top],
        [x1, top + 0.08 * s], [x1 - 0.06 * s, bottom - 0.2 * s], [anchor.cx + 0.2 * s, bottom - 0.03 * s],
        [anchor.cx, bottom], [anchor.cx - 0.2 * s, bottom - 0.03 * s], [x0 + 0.06 * s, bottom - 0.2 * s],
    ])
    return _fill_polygons(frame_hw, [outline])


PAINTERS = {"bar": bar_alpha, "text": text_alpha, "hand": hand_alpha, "mask": mask_alpha}


def paint_occluder(kind: str, index: int, anchor: FaceAnchor, frame_hw: tuple[int, int],
                   palette: str = "natural") -> tuple[np.ndarray, np.ndarray]:
    """(alpha float32 HxW in [0, 1], colour float32 HxWx3 BGR) of occluder `kind` at frame `index`."""
    if kind not in PAINTERS:
        raise UnveilError(f"unknown occluder {kind!r} (choose {', '.join(OCCLUDER_KINDS)})")
    if palette not in PALETTES:
        raise UnveilError(f"unknown palette {palette!r} (choose {', '.join(PALETTES)})")
    alpha = PAINTERS[kind](index, anchor, frame_hw)
    bgr = MAGENTA_BGR if palette == "magenta" else NATURAL_BGR[kind]
    colour = np.empty(frame_hw + (3,), np.float32)
    colour[:] = bgr
    if palette == "natural":
        # Gentle vertical shading so a natural occluder is not a flat patch (a magenta one must stay pure).
        shade = np.linspace(1.08, 0.9, frame_hw[0], dtype=np.float32)[:, None, None]
        colour = np.clip(colour * shade, 0.0, 255.0)
    return alpha, colour
