"""Occlusion synthesis for training and validation crops (numpy + OpenCV only, no torch).

Protocols
- 'rect', 'text': the c2fdan protocol. Rectangles with aspect ratio in [0.5, 2] and area ratio a in [0.01, 0.15]
  of the crop; words drawn with cv2.putText fonts with ink height ratio h in [0.05, 0.5]; random RGB colour; placed
  on one of four regions of the aligned face: mouth, nose, eyes, outside (the face).
- 'centre', 'irregular': the symmfcnet test masks. A centred square (half the crop side) and free-form brush strokes.
- 'half': symmfcnet's one-half occlusions: an occluder (rectangle or ellipse, flat colour or texture) that lies wholly
  on ONE side of the face's mid-line (the crop's vertical centre line: the alignment template is mirror symmetric),
  over one eye, one cheek, or one whole side of the face, so its mirror twin is visible.
- 'symmetry': the symmetry network's training mix of half / centre / irregular (SYMMETRY_MIX_WEIGHTS, or mix_weights).
- 'realistic': what live video is full of: hands, microphones, face masks, sunglasses, subtitles, watermarks and
  textured patches cut from other images, with soft edges, shading, colour and blur jitter.
- 'mix': the training mix of rect / text / realistic (weights are a constructor argument) plus a fraction of clean
  faces, so a blind network learns to leave clean faces alone.
- 'none': the input unchanged, empty mask.

Every occluder is a pair of layers, alpha (float32 SxS in [0, 1]) and colour (float32 SxSx3, 0..255), produced by a
public `paint_*` function and applied by `composite`, the one place where pixels change. The mask is binary and is
exactly the set of pixels that differ from the input.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from realtime.align import DEFAULT_MARGIN, DEFAULT_TEMPLATE, template_points
from realtime.errors import UnveilError

PROTOCOLS: tuple[str, ...] = ("none", "rect", "text", "centre", "irregular", "half", "realistic", "mix", "symmetry")
REALISTIC_KINDS: tuple[str, ...] = ("hand", "microphone", "face_mask", "sunglasses", "subtitle", "watermark", "texture",
                                     "pole")
KINDS: tuple[str, ...] = ("rect", "text", "centre", "irregular", "half") + REALISTIC_KINDS + ("none",)
SIZES: tuple[str, ...] = ("small", "medium", "large")
FACE_REGIONS: tuple[str, ...] = ("mouth", "nose", "eyes", "outside")

# Where each kind may be placed; when no position is requested the synth draws one of these uniformly.
KIND_POSITIONS: dict[str, tuple[str, ...]] = {
    "rect": FACE_REGIONS,
    "text": FACE_REGIONS,
    "centre": ("centre",),
    "irregular": ("random",),
    "half": ("eye", "cheek", "side"),
    "hand": FACE_REGIONS,
    "microphone": ("mouth", "outside"),
    "face_mask": ("lower_face",),
    "sunglasses": ("eyes",),
    "subtitle": ("bottom",),
    "watermark": ("random",),
    "texture": FACE_REGIONS,
    "pole": FACE_REGIONS,
    "none": ("none",),
}

# c2fdan draws a in [0.01, 0.15] and h in [0.05, 0.5]; its analysis reports three sizes, so each range is cut in three.
RECT_AREA_BUCKETS: dict[str, tuple[float, float]] = {"small": (0.01, 0.05), "medium": (0.05, 0.10), "large": (0.10, 0.15)}
TEXT_HEIGHT_BUCKETS: dict[str, tuple[float, float]] = {"small": (0.05, 0.20), "medium": (0.20, 0.35), "large": (0.35, 0.50)}
# Every other kind is labelled by the fraction of the crop its mask covers (they are larger than the paper's rectangles).
COVERAGE_BUCKETS: dict[str, tuple[float, float]] = {"small": (0.0, 0.10), "medium": (0.10, 0.25), "large": (0.25, 1.0)}
CENTRE_AREA_BUCKETS: dict[str, tuple[float, float]] = {"small": (0.04, 0.10), "medium": (0.10, 0.25), "large": (0.25, 0.36)}

DEFAULT_MIX_WEIGHTS: dict[str, float] = {"rect": 0.3, "text": 0.3, "realistic": 0.4}
# The symmetry network learns one-half holes (filled from the mirror side) and holes with no visible twin.
SYMMETRY_MIX_WEIGHTS: dict[str, float] = {"half": 0.5, "centre": 0.2, "irregular": 0.3}
MIX_KINDS: tuple[str, ...] = ("rect", "text", "centre", "irregular", "half", "realistic")
DEFAULT_REALISTIC_WEIGHTS: dict[str, float] = {
    "hand": 0.2, "microphone": 0.1, "face_mask": 0.15, "sunglasses": 0.15, "subtitle": 0.15, "watermark": 0.1, "texture": 0.15,
    "pole": 0.0,  # opt-in (realistic_weights): the shipped blind-lite was trained before it existed
}
# Pixels whose occluder alpha is at or below this stay bit-identical; above it they change and are in the mask.
ALPHA_THRESHOLD = 0.05
SUPERSAMPLE_PIXELS = 512  # realistic shapes are drawn on a canvas this wide (at most 4x) and area-averaged down

WORDS: tuple[str, ...] = (
    "able", "about", "above", "across", "action", "actor", "after", "again", "agent", "album", "alert", "alpha", "amber",
    "angle", "animal", "answer", "apple", "april", "arena", "armor", "arrow", "artist", "atlas", "audio", "autumn",
    "baby", "bacon", "badge", "baker", "banana", "band", "bank", "basic", "beach", "bear", "beauty", "before", "begin",
    "bell", "berry", "bicycle", "bird", "black", "blade", "blue", "board", "boat", "bonus", "book", "border", "bottle",
    "brave", "bread", "brick", "bridge", "bright", "brother", "brown", "cabin", "cable", "camera", "candle", "canvas",
    "captain", "carbon", "castle", "center", "chair", "chance", "change", "charm", "cherry", "chess", "circle", "city",
    "classic", "clock", "cloud", "coffee", "color", "comet", "copper", "corner", "cotton", "country", "crystal", "dance",
    "danger", "delta", "desert", "diamond", "dinner", "doctor", "dragon", "dream", "eagle", "earth", "echo", "editor",
    "energy", "engine", "escape", "event", "falcon", "family", "feather", "field", "finger", "flame", "flower", "forest",
    "frame", "friend", "galaxy", "garden", "ghost", "giant", "glass", "global", "golden", "guitar", "harbor", "heart",
    "hello", "hero", "history", "honey", "horizon", "hotel", "house", "ice", "image", "island", "jacket", "jazz", "jewel",
    "jungle", "kitchen", "lemon", "letter", "light", "lion", "live", "lucky", "magic", "marble", "market", "matrix",
    "meadow", "melody", "metal", "mirror", "modern", "moment", "money", "monkey", "morning", "mountain", "music", "nature",
    "night", "noble", "number", "ocean", "office", "orange", "orbit", "paper", "parade", "pearl", "pepper", "piano",
    "pilot", "planet", "pocket", "poem", "portal", "power", "prize", "purple", "puzzle", "quiet", "rabbit", "radio",
    "rain", "record", "river", "robot", "rocket", "royal", "salad", "salt", "season", "secret", "shadow", "silver",
    "simple", "sister", "smile", "snow", "solar", "sound", "spirit", "spring", "square", "star", "stone", "storm",
    "studio", "summer", "sunset", "tiger", "ticket", "today", "tomato", "topic", "tower", "travel", "tree", "trophy",
    "unique", "urban", "velvet", "video", "violet", "vision", "voice", "water", "window", "winter", "wizard", "world",
    "yellow", "young", "zebra", "zero",
)
TEXT_FONTS: tuple[int, ...] = (
    cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_COMPLEX_SMALL, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
    cv2.FONT_HERSHEY_SCRIPT_COMPLEX, cv2.FONT_HERSHEY_SIMPLEX | cv2.FONT_ITALIC,
)
# Colours below are RGB triplets (readable); painters return BGR layers, the OpenCV order of the crops.
SKIN_TONES_RGB: tuple[tuple[int, int, int], ...] = (
    (255, 222, 196), (241, 194, 167), (226, 172, 138), (198, 134, 96), (160, 104, 72), (112, 72, 52),
)
FABRIC_COLOURS_RGB: tuple[tuple[int, int, int], ...] = (
    (150, 200, 225), (235, 235, 235), (30, 30, 34), (90, 95, 105), (70, 110, 170), (200, 160, 170), (120, 140, 100),
)
SUBTITLE_COLOURS_RGB: tuple[tuple[int, int, int], ...] = ((255, 255, 255), (255, 240, 80), (240, 240, 240))


@dataclass
class Occlusion:
    image: np.ndarray  # uint8 SxSx3 occluded crop, same colour order as the input
    mask: np.ndarray  # float32 SxS, exactly 1.0 where the occluder changed the pixel, else 0.0
    kind: str  # one of KINDS
    position: str  # 'mouth','nose','eyes','outside' for face regions; 'centre','random','lower_face','bottom','none'
    size: str  # 'small' / 'medium' / 'large' (see the *_BUCKETS tables), 'none' for clean faces


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


def composite(image: np.ndarray, colour: np.ndarray, alpha: np.ndarray,
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
    covered = alpha > threshold
    out = image.copy()
    if not covered.any():
        return out, np.zeros(image.shape[:2], np.float32)
    a = alpha[covered].astype(np.float32)[:, None]
    before = image[covered]
    blended = np.clip(np.rint(before.astype(np.float32) * (1.0 - a) + colour[covered].astype(np.float32) * a), 0, 255)
    blended = blended.astype(np.uint8)
    same = (blended == before).all(axis=1)
    if same.any():
        green = blended[same, 1]
        blended[same, 1] = np.where(green < 255, green + 1, green - 1)
    out[covered] = blended
    return out, covered.astype(np.float32)


def move_layer(alpha: np.ndarray, colour: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Warp an occluder layer with a 2x3 affine (e.g. a shift per video frame); outside the source is transparent."""
    size = (alpha.shape[1], alpha.shape[0])
    moved_alpha = cv2.warpAffine(alpha.astype(np.float32), matrix, size, flags=cv2.INTER_LINEAR, borderValue=0)
    moved_colour = cv2.warpAffine(colour.astype(np.float32), matrix, size, flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE)
    return moved_alpha, moved_colour


# --------------------------------------------------------------------------------------------------- drawing primitives


def _bgr(rgb: Sequence[float]) -> np.ndarray:
    return np.array(rgb[::-1], np.float32)


def _random_rgb(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, 3).astype(np.float32)


def _flat_colour(size: int, bgr: np.ndarray) -> np.ndarray:
    return np.broadcast_to(np.asarray(bgr, np.float32), (size, size, 3)).copy()


def _jitter_tone(rgb: Sequence[int], rng: np.random.Generator, spread: float = 0.08) -> np.ndarray:
    gain = 1.0 + rng.uniform(-spread, spread) + rng.uniform(-spread / 3, spread / 3, 3)
    return np.clip(_bgr(rgb) * gain[::-1], 0, 255).astype(np.float32)


def _rotation(angle_deg: float) -> np.ndarray:
    t = np.deg2rad(angle_deg)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


def _local_to_crop(points: np.ndarray, centre: np.ndarray, angle_deg: float, unit: float) -> np.ndarray:
    """Shape points drawn in a local frame (unit = shape length, y down) -> crop pixels."""
    return np.asarray(points, np.float64) * unit @ _rotation(angle_deg).T + centre


def _supersample(size: int) -> int:
    """Drawing scale for anti-aliased edges: 4x for small crops, less for large ones (same edge quality, less work)."""
    return int(np.clip(SUPERSAMPLE_PIXELS // size, 1, 4))


class _HiRes:
    """A supersampled uint8 canvas for one shape part; `alpha()` area-averages it down to crop size."""

    def __init__(self, size: int):
        self.size, self.scale = size, _supersample(size)
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


def _soften(alpha: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(alpha, (0, 0), sigma) if sigma > 0.05 else alpha


def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
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
    a, b = _random_rgb(rng), _random_rgb(rng)
    xs, ys = _pixel_grid(size)
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


def _texture_from_image(size: int, rng: np.random.Generator, texture: np.ndarray) -> np.ndarray:
    """A random square patch of `texture`, resized to SxS (the patch keeps the texture's colour order)."""
    h, w = texture.shape[:2]
    side = int(rng.integers(max(4, min(h, w) // 4), min(h, w) + 1))
    y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    patch = texture[y0:y0 + side, x0:x0 + side]
    if rng.random() < 0.5:
        patch = patch[:, ::-1]
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)


def _render_text_hires(text: str, font: int, height_px: float, thickness_ratio: float,
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


def rect_extent(size: int, area_ratio: float, aspect: float) -> tuple[int, int]:
    """(width, height) in pixels of a rectangle covering `area_ratio` of an SxS crop with width/height = aspect."""
    w = max(1, int(round(np.sqrt(area_ratio * aspect) * size)))
    h = max(1, int(round(np.sqrt(area_ratio / aspect) * size)))
    return min(w, size), min(h, size)


def paint_rect(size: int, rng: np.random.Generator, *, centre: Sequence[float] | None = None,
               area_ratio: float | None = None, aspect: float | None = None,
               colour: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """c2fdan rectangle: flat random colour, binary alpha, kept whole inside the crop."""
    area_ratio = rng.uniform(0.01, 0.15) if area_ratio is None else area_ratio
    aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0)))) if aspect is None else aspect
    w, h = rect_extent(size, area_ratio, aspect)
    if centre is None:
        centre = (rng.uniform(w / 2, size - w / 2), rng.uniform(h / 2, size - h / 2))
    x0 = int(np.clip(round(centre[0] - w / 2), 0, size - w))
    y0 = int(np.clip(round(centre[1] - h / 2), 0, size - h))
    alpha = np.zeros((size, size), np.float32)
    alpha[y0:y0 + h, x0:x0 + w] = 1.0
    return alpha, _flat_colour(size, _random_rgb(rng) if colour is None else colour)


def render_word(word: str, font: int, height_px: int, thickness_ratio: float) -> np.ndarray:
    """Binary float32 ink patch of `word` whose ink is exactly `height_px` rows tall (c2fdan's height ratio h)."""
    canvas, _ = _render_text_hires(word, font, height_px, thickness_ratio, scale=2)
    solid = canvas > 127
    rows, cols = np.flatnonzero(solid.any(axis=1)), np.flatnonzero(solid.any(axis=0))
    ink = canvas[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    width = max(1, int(round(ink.shape[1] * height_px / ink.shape[0])))
    small = cv2.resize(ink, (width, height_px), interpolation=cv2.INTER_AREA)
    patch = (small >= 100).astype(np.float32)
    patch[0, :] = np.maximum(patch[0, :], (small[0, :] == small[0, :].max()))  # keep the top and bottom ink rows
    patch[-1, :] = np.maximum(patch[-1, :], (small[-1, :] == small[-1, :].max()))
    return patch


def paint_text(size: int, rng: np.random.Generator, *, centre: Sequence[float] | None = None,
               height_ratio: float | None = None, word: str | None = None, font: int | None = None,
               thickness_ratio: float | None = None, colour: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """c2fdan text: a random word whose ink height is height_ratio * size, flat colour, binary alpha.

    The word is kept whole vertically; horizontally it is kept inside the crop when it fits, otherwise centred
    on `centre` and cut by the crop's sides (long words span the face, as in the paper).
    """
    height_ratio = rng.uniform(0.05, 0.5) if height_ratio is None else height_ratio
    word = str(rng.choice(WORDS)) if word is None else word
    font = int(TEXT_FONTS[rng.integers(len(TEXT_FONTS))]) if font is None else font
    thickness_ratio = rng.uniform(0.1, 0.35) if thickness_ratio is None else thickness_ratio
    patch = render_word(word, font, max(2, int(round(height_ratio * size))), thickness_ratio)
    if centre is None:
        centre = (rng.uniform(0, size), rng.uniform(patch.shape[0] / 2, size - patch.shape[0] / 2))
    alpha = np.zeros((size, size), np.float32)
    _paste(alpha, patch, _fit_top_left(centre, patch.shape[1], patch.shape[0], size))
    return alpha, _flat_colour(size, _random_rgb(rng) if colour is None else colour)


def _fit_top_left(centre: Sequence[float], w: int, h: int, size: int) -> tuple[int, int]:
    """Top-left corner for a w x h patch centred on `centre`, moved inside the crop along each axis where it fits."""
    x0 = int(round(centre[0] - w / 2))
    y0 = int(round(centre[1] - h / 2))
    if w <= size:
        x0 = int(np.clip(x0, 0, size - w))
    if h <= size:
        y0 = int(np.clip(y0, 0, size - h))
    return x0, y0


def _paste(canvas: np.ndarray, patch: np.ndarray, top_left: tuple[int, int]) -> None:
    """canvas = max(canvas, patch) on their overlap; the patch may hang over any border."""
    x0, y0 = top_left
    h, w = patch.shape[:2]
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + w, canvas.shape[1]), min(y0 + h, canvas.shape[0])
    if cx1 <= cx0 or cy1 <= cy0:
        return
    region = canvas[cy0:cy1, cx0:cx1]
    np.maximum(region, patch[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0], out=region)


# ------------------------------------------------------------------------------------------ paper occluders (symmfcnet)


def paint_centre_square(size: int, rng: np.random.Generator, *, area_ratio: float = 0.25,
                        colour: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """symmfcnet's centre mask: a square of area_ratio * size^2 (default: half the side) centred in the crop."""
    side = min(size, max(1, int(round(np.sqrt(area_ratio) * size))))
    start = (size - side) // 2
    alpha = np.zeros((size, size), np.float32)
    alpha[start:start + side, start:start + side] = 1.0
    return alpha, _flat_colour(size, _random_rgb(rng) if colour is None else colour)


def paint_strokes(size: int, rng: np.random.Generator, *, strokes: int | None = None, max_width_ratio: float = 0.1,
                  colour: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Irregular free-form mask: random brush strokes (random walks of thick segments with round joints)."""
    strokes = int(rng.integers(1, 6)) if strokes is None else strokes
    canvas = np.zeros((size, size), np.uint8)
    for _ in range(strokes):
        point = rng.uniform(0, size, 2)
        width = max(2, int(round(rng.uniform(0.25, 1.0) * max_width_ratio * size)))
        heading = rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(3, 10))):
            heading += rng.uniform(-0.9, 0.9)
            length = rng.uniform(0.05, 0.22) * size
            nxt = np.clip(point + length * np.array([np.cos(heading), np.sin(heading)]), 0, size - 1)
            cv2.line(canvas, tuple(int(v) for v in point), tuple(int(v) for v in nxt), 255, width, cv2.LINE_8)
            cv2.circle(canvas, tuple(int(v) for v in nxt), width // 2, 255, -1, cv2.LINE_8)
            point = nxt
    alpha = (canvas > 0).astype(np.float32)
    return alpha, _flat_colour(size, _random_rgb(rng) if colour is None else colour)


def half_side_columns(size: int, side: str, gap: int = 1) -> slice:
    """Columns of one half of an SxS crop ('left' = low x), `gap` columns away from the mirror axis x = (S - 1) / 2.

    A horizontal flip maps column c to S - 1 - c, so a hole inside these columns has its mirror twin in the other half.
    """
    if side not in ("left", "right"):
        raise UnveilError(f"side must be 'left' or 'right', got {side!r}")
    half = size // 2
    return slice(0, half - gap) if side == "left" else slice(size - half + gap, size)


def paint_half(size: int, rng: np.random.Generator, *, box: Sequence[float], side: str, ellipse: bool = False,
               colour: np.ndarray | None = None, gap: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """One-half occluder: a rectangle or ellipse filling `box` (x0, y0, x1, y1 pixels), cut to one side of the
    mirror axis (half_side_columns), binary alpha; flat random colour, or `colour` (an SxSx3 layer or one colour)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    alpha = np.zeros((size, size), np.float32)
    if ellipse:
        centre = ((x0 + x1) / 2, (y0 + y1) / 2)
        axes = (max(1, int(round((x1 - x0) / 2))), max(1, int(round((y1 - y0) / 2))))
        cv2.ellipse(alpha, (int(round(centre[0])), int(round(centre[1]))), axes, 0, 0, 360, 1.0, -1, cv2.LINE_8)
    else:
        c0, r0 = int(np.clip(round(x0), 0, size)), int(np.clip(round(y0), 0, size))
        c1, r1 = int(np.clip(round(x1), 0, size)), int(np.clip(round(y1), 0, size))
        alpha[r0:r1, c0:c1] = 1.0
    keep = np.zeros(size, bool)
    keep[half_side_columns(size, side, gap)] = True
    alpha[:, ~keep] = 0.0
    if colour is None:
        layer = _flat_colour(size, _random_rgb(rng))
    else:
        colour = np.asarray(colour, np.float32)
        layer = colour.copy() if colour.shape == (size, size, 3) else _flat_colour(size, colour)
    return alpha, layer


# ---------------------------------------------------------------------------------------------------- realistic occluders


def paint_hand(size: int, rng: np.random.Generator, *, centre: Sequence[float] | None = None,
               scale: float | None = None, angle: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A hand (palm, four fingers, thumb, wrist and forearm running off the crop) in a skin tone, with shading.

    centre: palm centre in pixels; scale: wrist-to-fingertip length / size; angle: degrees, 0 = fingers up.
    """
    scale = rng.uniform(0.5, 0.9) if scale is None else scale
    angle = rng.uniform(-110, 110) if angle is None else angle
    centre = np.asarray(rng.uniform(0.2, 0.8, 2) * size if centre is None else centre, np.float64)
    unit = scale * size
    mirror = -1.0 if rng.random() < 0.5 else 1.0  # left or right hand: which side the thumb is on
    curl = rng.uniform(0.5, 1.0)  # 1 = open hand, lower = fingers partly folded
    spread = rng.uniform(0.0, 9.0)  # degrees between neighbouring fingers

    def to_crop(points: np.ndarray) -> np.ndarray:
        return _local_to_crop(np.asarray(points, np.float64) * [mirror, 1.0], centre, angle, unit)

    parts: list[np.ndarray] = []
    palm = _HiRes(size)  # knuckles at y = -0.12, wrist at y = 0.27 (local units of the hand's length)
    palm.polygon(to_crop([[-0.2, -0.13], [0.2, -0.15], [0.23, 0.02], [0.17, 0.24], [0.0, 0.29], [-0.14, 0.26],
                          [-0.21, 0.08]]))
    palm.ellipse(to_crop([[0.11, 0.1]])[0], (0.12 * unit, 0.15 * unit), angle)  # the thumb's ball
    parts.append(palm.alpha())
    fingers = ((-0.15, -0.06, 0.29), (-0.05, -0.12, 0.36), (0.05, -0.12, 0.34), (0.145, -0.1, 0.31))
    for i, (fx, fy, length) in enumerate(fingers):  # little, ring, middle, index (index next to the thumb)
        finger = _HiRes(size)
        tilt = np.deg2rad((i - 1.5) * spread)
        direction = np.array([np.sin(tilt), -np.cos(tilt)])
        base = np.array([fx, fy])
        joint = base + 0.55 * length * curl * direction
        tip = base + length * curl * direction
        width = 0.088 if i else 0.078
        finger.capsule(*to_crop([base, joint]), width * unit)
        finger.capsule(*to_crop([joint, tip]), 0.85 * width * unit)  # fingers taper towards the tip
        parts.append(finger.alpha())
    thumb = _HiRes(size)
    t0, t1 = np.array([0.17, 0.12]), np.array([0.29, -0.02])
    t2 = t1 + rng.uniform(0.1, 0.15) * np.array([0.45, -0.9])
    thumb.capsule(*to_crop([t0, t1]), 0.115 * unit)
    thumb.capsule(*to_crop([t1, t2]), 0.095 * unit)
    parts.append(thumb.alpha())
    arm = _HiRes(size)  # wrist, then a forearm widening as it runs off the crop
    arm.polygon(to_crop([[-0.14, 0.2], [0.15, 0.2], [0.24, 3.0], [-0.2, 3.0]]))
    parts.append(arm.alpha())

    alpha = np.max(np.stack(parts), axis=0)
    # Creases: each finger's own outline, where it lies inside the hand, darkens the skin (separates the fingers).
    outline = np.zeros_like(alpha)
    kernel = np.ones((3, 3), np.uint8)
    for part in parts[1:6]:
        outline = np.maximum(outline, part - cv2.erode(part, kernel))
    inside = cv2.erode(alpha, kernel)
    crease = _soften(np.clip(outline * inside * 1.5, 0, 1), 0.6 * size / 128)
    # Rounded limbs: darker towards the silhouette, from the distance to the edge.
    depth = cv2.distanceTransform((alpha > 0.5).astype(np.uint8), cv2.DIST_L2, 3)
    roundness = 0.78 + 0.22 * np.clip(depth / max(0.05 * unit, 1.0), 0, 1)
    xs, ys = _pixel_grid(size)
    light = _rotation(rng.uniform(0, 360)) @ np.array([1.0, 0.0])
    side = ((xs - centre[0]) * light[0] + (ys - centre[1]) * light[1]) / unit
    shade = np.clip(1.0 + 0.22 * side, 0.75, 1.15) * (1.0 - 0.28 * crease) * roundness
    tone = _jitter_tone(SKIN_TONES_RGB[rng.integers(len(SKIN_TONES_RGB))], rng)
    noise = 1.0 + 0.06 * (value_noise(size, rng, 8) - 0.5)
    colour = np.clip(tone * (shade * noise)[..., None], 0, 255).astype(np.float32)
    return _soften(alpha, 0.5 * size / 128), colour


POLE_COLOURS_RGB: tuple[tuple[int, int, int], ...] = (
    (80, 70, 60), (40, 40, 42), (140, 110, 80), (190, 190, 195), (235, 235, 230), (110, 60, 40), (60, 80, 110),
)


def paint_pole(size: int, rng: np.random.Generator, *, centre: Sequence[float] | None = None,
               width: float | None = None, angle: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A long bar across the whole crop: a pole, a door frame, a cable, a stand, an arm passing by.

    centre: a point on its axis (pixels); width: fraction of the crop; angle: degrees from vertical (mostly near
    vertical, sometimes horizontal). Shaded across its width like a cylinder or a lit edge, sometimes textured."""
    width = rng.uniform(0.06, 0.25) if width is None else width
    if angle is None:
        angle = rng.uniform(-30, 30) + (90.0 if rng.random() < 0.15 else 0.0)
    centre = np.asarray(rng.uniform(0.3, 0.7, 2) * size if centre is None else centre, np.float64)
    half = width * size / 2
    canvas = _HiRes(size)
    canvas.polygon(_local_to_crop(np.array([[-half, -2.0 * size], [half, -2.0 * size], [half, 2.0 * size],
                                            [-half, 2.0 * size]]), centre, angle, 1.0))
    alpha = canvas.alpha()
    xs, ys = _pixel_grid(size)
    normal = _rotation(angle) @ np.array([1.0, 0.0])
    across = np.clip(((xs - centre[0]) * normal[0] + (ys - centre[1]) * normal[1]) / max(half, 1e-3), -1, 1)
    if rng.random() < 0.2:
        colour = procedural_texture(size, rng)
    else:
        rgb = POLE_COLOURS_RGB[rng.integers(len(POLE_COLOURS_RGB))] if rng.random() < 0.8 else _random_rgb(rng)
        colour = np.broadcast_to(_jitter_tone(rgb, rng), (size, size, 3)).astype(np.float32)
    light = rng.uniform(-0.8, 0.8)  # where across the bar the light falls
    shade = 1.0 + rng.uniform(0.1, 0.5) * (np.exp(-((across - light) ** 2) / 0.15) - 0.4)
    return alpha, np.clip(colour * shade[..., None], 0, 255).astype(np.float32)


def paint_microphone(size: int, rng: np.random.Generator, *, centre: Sequence[float] | None = None,
                     scale: float | None = None, angle: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A handheld microphone: a round head (metal grille or foam) and a dark tapered handle running off the crop.

    centre: head centre in pixels; scale: head radius / size; angle: handle direction in degrees, 0 = straight down.
    """
    scale = rng.uniform(0.07, 0.16) if scale is None else scale
    angle = rng.uniform(-45, 45) if angle is None else angle
    centre = np.asarray(rng.uniform(0.3, 0.7, 2) * size if centre is None else centre, np.float64)
    r = scale * size
    head = _HiRes(size)
    head.ellipse(centre, (r, r * rng.uniform(0.95, 1.1)), angle)
    head_alpha = head.alpha()
    handle = _HiRes(size)
    handle.polygon(_local_to_crop(np.array([[-0.55, 0.7], [0.55, 0.7], [0.35, 12.0], [-0.35, 12.0]]), centre, angle, r))
    handle_alpha = handle.alpha()
    band = _HiRes(size)
    band.polygon(_local_to_crop(np.array([[-0.62, 0.75], [0.62, 0.75], [0.58, 1.15], [-0.58, 1.15]]), centre, angle, r))
    band_alpha = band.alpha()

    xs, ys = _pixel_grid(size)
    dx, dy = (xs - centre[0]) / r, (ys - centre[1]) / r
    rim = np.clip(dx**2 + dy**2, 0, 1)
    if rng.random() < 0.65:  # metal grille: mesh lines, spherical shading, a specular spot
        base = _bgr([rng.uniform(60, 150)] * 3)
        pitch = max(1.5, r / rng.uniform(3.5, 6))
        mesh = 0.5 * (np.abs(np.sin(np.pi * (xs + ys) / pitch)) + np.abs(np.sin(np.pi * (xs - ys) / pitch)))
        head_shade = (0.6 + 0.5 * mesh) * (1.15 - 0.6 * rim)
    else:  # foam windscreen in a broadcast colour
        base = _jitter_tone([(30, 30, 32), (170, 30, 40), (30, 60, 160), (40, 40, 45)][rng.integers(4)], rng)
        head_shade = (0.85 + 0.3 * value_noise(size, rng, int(max(4, size // 6)), 1)) * (1.1 - 0.5 * rim)
    spot = np.exp(-((dx + 0.35) ** 2 + (dy + 0.35) ** 2) / 0.08)
    head_colour = base * head_shade[..., None] + 120.0 * spot[..., None]
    axis = _rotation(angle) @ np.array([1.0, 0.0])
    across = ((xs - centre[0]) * axis[0] + (ys - centre[1]) * axis[1]) / r
    handle_colour = _bgr([rng.uniform(15, 55)] * 3) * (1.0 + 1.2 * np.exp(-((across + 0.2) ** 2) / 0.03))[..., None]
    band_colour = _jitter_tone([(20, 20, 20), (180, 180, 185), (150, 30, 30), (30, 80, 170)][rng.integers(4)], rng)
    colour = handle_colour
    colour = colour * (1 - band_alpha[..., None]) + band_colour * band_alpha[..., None]
    colour = colour * (1 - head_alpha[..., None]) + head_colour * head_alpha[..., None]
    alpha = np.maximum(head_alpha, np.maximum(handle_alpha, band_alpha))
    return _soften(alpha, 0.4 * size / 128), np.clip(colour, 0, 255).astype(np.float32)


def paint_face_mask(size: int, rng: np.random.Generator, *, points5: np.ndarray | None = None,
                    scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A medical / fabric face mask from the nose bridge to under the chin, cheek to cheek, with ear loops and pleats.

    points5: the face's five points in crop pixels (default: the unveil5 template at margin 0.15).
    """
    layout = face_layout(template_points(size) if points5 is None else points5)
    scale = rng.uniform(0.9, 1.1) if scale is None else scale
    d, iod = layout.eye_to_mouth, layout.eye_distance
    eyes_mid = (layout.left_eye + layout.right_eye) / 2
    roll = np.degrees(np.arctan2(*(layout.right_eye - layout.left_eye)[::-1]))
    top_y = layout.nose[1] - rng.uniform(0.2, 0.45) * (layout.nose[1] - eyes_mid[1])
    half_w = 1.02 * iod * scale
    centre_x = layout.nose[0]
    # Local outline relative to (centre_x, top_y) in pixels, before the face's roll: a low arch on top, a round chin.
    t = np.linspace(0, 1, 24)
    top = np.stack([(2 * t - 1) * half_w, 0.18 * d * (2 * t - 1) ** 2 + 0.05 * d], axis=1)
    chin_depth = (layout.chin_y - top_y) * scale + rng.uniform(-0.05, 0.08) * d
    u = np.linspace(0, np.pi, 32)
    bottom = np.stack([np.cos(u) * half_w * 0.98, 0.25 * d + np.sin(u) ** 0.8 * (chin_depth - 0.25 * d)], axis=1)
    outline = np.concatenate([top, bottom])
    origin = np.array([centre_x, top_y])
    mask = _HiRes(size)
    mask.polygon(_local_to_crop(outline, origin, roll, 1.0))
    body = mask.alpha()
    loops = _HiRes(size)
    for sign in (-1, 1):
        for y_frac in (0.12, 0.75):
            p0 = np.array([sign * half_w * 0.97, y_frac * chin_depth])
            p1 = np.array([sign * (half_w + 0.1 * iod), 0.15 * chin_depth - 0.1 * d])  # towards the ear
            loops.capsule(*_local_to_crop(np.stack([p0, p1]), origin, roll, 1.0), max(0.8, 0.012 * size))
    loop_alpha = loops.alpha()

    xs, ys = _pixel_grid(size)
    local = (np.stack([xs - origin[0], ys - origin[1]], -1) @ _rotation(roll)).astype(np.float32)
    lx, ly = local[..., 0] / half_w, local[..., 1] / max(chin_depth, 1.0)
    fabric = _jitter_tone(FABRIC_COLOURS_RGB[rng.integers(len(FABRIC_COLOURS_RGB))], rng, 0.06)
    curvature = 1.05 - 0.3 * lx**2  # the mask wraps round the face: darker towards the cheeks
    pleats = np.zeros_like(lx)
    if rng.random() < 0.6:  # surgical pleats: three soft horizontal folds
        for fold in (0.35, 0.52, 0.69):
            pleats += np.exp(-((ly - fold) ** 2) / 0.0015)
    weave = 1.0 + 0.05 * (value_noise(size, rng, max(4, size // 8), 1) - 0.5)
    shade = curvature * (1.0 - 0.22 * pleats) * weave
    colour = fabric * shade[..., None]
    loop_colour = fabric * 0.9
    colour = colour * (1 - loop_alpha[..., None]) + loop_colour * loop_alpha[..., None]
    alpha = np.maximum(body, loop_alpha)
    return _soften(alpha, 0.4 * size / 128), np.clip(colour, 0, 255).astype(np.float32)


def paint_sunglasses(size: int, rng: np.random.Generator, *, points5: np.ndarray | None = None,
                     scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Sunglasses over both eyes: tinted lenses with a reflection, frame, bridge and temples running to the sides."""
    layout = face_layout(template_points(size) if points5 is None else points5)
    scale = rng.uniform(0.85, 1.15) if scale is None else scale
    iod = layout.eye_distance
    roll = np.degrees(np.arctan2(*(layout.right_eye - layout.left_eye)[::-1]))
    style = rng.integers(3)  # 0 round, 1 rectangular, 2 aviator
    lens_w, lens_h = 0.42 * iod * scale, (0.3 if style == 1 else 0.36) * iod * scale
    frame_w = max(1.0, rng.uniform(0.03, 0.07) * iod)
    lenses, rims, bars = _HiRes(size), _HiRes(size), _HiRes(size)
    for eye in (layout.left_eye, layout.right_eye):
        c = eye + _rotation(roll) @ np.array([0.0, 0.05 * iod])
        if style == 1:
            outline = np.array([[-1, -1], [1, -1], [0.93, 0.85], [0.7, 1], [-0.7, 1], [-0.93, 0.85]]) * [lens_w, lens_h]
            grown = outline * [(lens_w + frame_w) / lens_w, (lens_h + frame_w) / lens_h]
            rims.polygon(_local_to_crop(grown, c, roll, 1.0))
            lenses.polygon(_local_to_crop(outline, c, roll, 1.0))
        else:
            drop = 0.25 if style == 2 else 0.0  # aviators: taller lenses hanging lower
            lc = c + _rotation(roll) @ np.array([0.0, drop * lens_h * 0.3])
            rims.ellipse(lc, (lens_w + frame_w, lens_h * (1 + drop) + frame_w), roll)
            lenses.ellipse(lc, (lens_w, lens_h * (1 + drop)), roll)
    mid = (layout.left_eye + layout.right_eye) / 2
    along = _rotation(roll) @ np.array([1.0, 0.0])
    bars.capsule(mid - along * 0.2 * iod, mid + along * 0.2 * iod, frame_w * 1.2)
    for eye, sign in ((layout.left_eye, -1), (layout.right_eye, 1)):
        outer = eye + along * sign * (lens_w + 0.5 * frame_w)
        bars.capsule(outer, outer + along * sign * 0.55 * iod + _rotation(roll) @ np.array([0, 0.08 * iod]), frame_w)
    lens_alpha = lenses.alpha()
    frame_alpha = np.maximum(np.clip(rims.alpha() - lens_alpha, 0, 1), bars.alpha())

    xs, ys = _pixel_grid(size)
    tint = _jitter_tone([(20, 20, 24), (45, 35, 25), (30, 45, 35), (60, 40, 30), (25, 35, 60)][rng.integers(5)], rng, 0.2)
    vertical = (ys - mid[1]) / max(lens_h, 1.0)
    gradient = np.clip(0.8 + 0.35 * vertical, 0.5, 1.4)  # gradient lenses: darker at the top
    sweep = (xs - ys * rng.uniform(0.6, 1.4)) / max(iod, 1.0)
    glare = np.exp(-((np.mod(sweep + rng.uniform(0, 1), 0.9) - 0.45) ** 2) / 0.006)  # a reflected window streak
    lens_colour = tint * gradient[..., None] + rng.uniform(40, 90) * glare[..., None]
    frame_colour = _jitter_tone([(15, 15, 15), (40, 30, 20), (170, 150, 90), (140, 140, 145)][rng.integers(4)], rng)
    colour = lens_colour * (1 - frame_alpha[..., None]) + frame_colour * frame_alpha[..., None]
    lens_opacity = rng.uniform(0.82, 0.97)
    alpha = np.maximum(lens_alpha * lens_opacity, frame_alpha)
    return _soften(alpha, 0.35 * size / 128), np.clip(colour, 0, 255).astype(np.float32)


def _outlined_text_patch(text: str, font: int, height_px: float, outline_ratio: float, thickness_ratio: float,
                         scale: int, angle: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (fill, fill+outline) patches of one line of text drawn at `scale`x, rotated by `angle` degrees."""
    fill, _ = _render_text_hires(text, font, height_px, thickness_ratio, scale)
    grow = max(0, int(round(outline_ratio * height_px * scale)))
    fill = np.pad(fill, grow + 1)  # room for the outline
    full = cv2.dilate(fill, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))) if grow else fill
    if abs(angle) > 0.01:
        h, w = fill.shape
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
        bw, bh = int(np.ceil(h * sin + w * cos)), int(np.ceil(h * cos + w * sin))
        matrix[:, 2] += [(bw - w) / 2, (bh - h) / 2]
        fill, full = (cv2.warpAffine(c, matrix, (bw, bh), flags=cv2.INTER_LINEAR, borderValue=0) for c in (fill, full))
    return fill, full


def _stamp_text(size: int, fill: np.ndarray, full: np.ndarray,
                centres: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Crop-sized (fill alpha, fill+outline alpha) with text patches (drawn at _supersample(size)) on each centre."""
    scale = _supersample(size)
    hi_fill = np.zeros((size * scale, size * scale), np.uint8)
    hi_full = np.zeros_like(hi_fill)
    h, w = fill.shape
    for cx, cy in centres:
        top_left = (int(round(cx * scale - w / 2)), int(round(cy * scale - h / 2)))
        _paste(hi_fill, fill, top_left)
        _paste(hi_full, full, top_left)
    down = (size, size)
    return (cv2.resize(hi_fill, down, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0,
            cv2.resize(hi_full, down, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0)


def paint_subtitle(size: int, rng: np.random.Generator, *, text: str | None = None, height_ratio: float | None = None,
                   y: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A subtitle line: white or yellow letters with a black outline, sometimes on a semi-transparent dark box."""
    text = " ".join(str(w) for w in rng.choice(WORDS, int(rng.integers(2, 6)))).capitalize() if text is None else text
    height_ratio = rng.uniform(0.05, 0.13) if height_ratio is None else height_ratio
    y = rng.uniform(0.72, 0.93) * size if y is None else y
    font = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX)[rng.integers(2)]
    height_px = height_ratio * size
    x = size / 2 + rng.uniform(-0.1, 0.1) * size
    patches = _outlined_text_patch(text, font, height_px, rng.uniform(0.08, 0.16), rng.uniform(0.12, 0.2),
                                   _supersample(size))
    fill, full = _stamp_text(size, *patches, [(x, y)])
    alpha = full
    colour = np.zeros((size, size, 3), np.float32)
    fill_colour = _bgr(SUBTITLE_COLOURS_RGB[rng.integers(len(SUBTITLE_COLOURS_RGB))])
    colour = colour * (1 - fill[..., None]) + fill_colour * fill[..., None]
    colour = colour / np.maximum(full, 1e-3)[..., None]  # un-premultiply: letters are solid, their edges are soft
    if rng.random() < 0.35:  # a translucent box behind the line, as many players draw
        box = np.zeros((size, size), np.float32)
        cols = np.nonzero(full.max(axis=0) > 0)[0]
        if len(cols):
            pad = 0.3 * height_px
            y0, y1 = int(max(0, y - height_px - pad)), int(min(size, y + height_px * 0.6 + pad))
            box[y0:y1, int(max(0, cols.min() - pad)):int(min(size, cols.max() + 1 + pad))] = rng.uniform(0.45, 0.7)
        alpha = 1.0 - (1.0 - box) * (1.0 - full)  # the text over the box, as one layer
        colour = colour * full[..., None] / np.maximum(alpha, 1e-3)[..., None]
    return alpha, np.clip(colour, 0, 255).astype(np.float32)


def paint_watermark(size: int, rng: np.random.Generator, *, text: str | None = None, height_ratio: float | None = None,
                    opacity: float | None = None, tiled: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A semi-transparent watermark: a word (or a tiled diagonal pattern of it), white or grey, with a faint outline."""
    text = (str(rng.choice(WORDS)).upper() if rng.random() < 0.6 else "(c) " + str(rng.choice(WORDS))) \
        if text is None else text
    height_ratio = rng.uniform(0.06, 0.18) if height_ratio is None else height_ratio
    opacity = rng.uniform(0.25, 0.6) if opacity is None else opacity
    tiled = rng.random() < 0.3 if tiled is None else tiled
    font = int(TEXT_FONTS[rng.integers(6)])
    angle = rng.uniform(-35, 35) if rng.random() < 0.6 else 0.0
    centres = [tuple(rng.uniform(0.2, 0.8, 2) * size)]
    if tiled:  # a diagonal grid of repeats, every other row shifted by half a step
        step = rng.uniform(0.45, 0.7) * size
        off = rng.uniform(0, step, 2)
        centres = [(x + (step / 2 if row % 2 else 0.0), y)
                   for row, y in enumerate(np.arange(off[1] - step, size + step, step * 0.6))
                   for x in np.arange(off[0] - step, size + step, step)]
    patches = _outlined_text_patch(text, font, height_ratio * size, 0.06, rng.uniform(0.1, 0.25), _supersample(size),
                                   angle)
    fill, full = _stamp_text(size, *patches, centres)
    tone = _bgr([rng.uniform(200, 255)] * 3) if rng.random() < 0.8 else _bgr([rng.uniform(20, 80)] * 3)
    colour = tone * fill[..., None] + (tone * 0.35) * (full - fill)[..., None]
    colour = colour / np.maximum(full, 1e-3)[..., None]
    return full * opacity, np.clip(colour, 0, 255).astype(np.float32)


def paint_texture(size: int, rng: np.random.Generator, *, centre: Sequence[float] | None = None,
                  scale: float | None = None, texture: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A patch of another image (or a procedural texture) in a random blob / polygon / ellipse shape, soft-edged.

    The colour layer keeps `texture`'s colour order; procedural textures have no order.
    """
    scale = rng.uniform(0.2, 0.6) if scale is None else scale
    centre = np.asarray(rng.uniform(0.2, 0.8, 2) * size if centre is None else centre, np.float64)
    radius = scale * size / 2
    shape = _HiRes(size)
    style = rng.integers(3)
    if style == 0:
        shape.ellipse(centre, (radius * rng.uniform(0.6, 1.2), radius * rng.uniform(0.6, 1.2)), rng.uniform(0, 180))
    else:
        n = int(rng.integers(5, 9)) if style == 1 else 24
        angles = np.sort(rng.uniform(0, 2 * np.pi, n))
        spread = 0.15 if style == 1 else 0.35
        radii = radius * np.clip(1.0 + rng.normal(0, spread, n), 0.45, 1.6)
        if style == 2:  # smooth blob: low-pass the radii around the loop
            radii = np.convolve(np.concatenate([radii[-3:], radii, radii[:3]]), np.ones(5) / 5, "same")[3:-3]
        shape.polygon(centre + np.stack([np.cos(angles), np.sin(angles)], 1) * radii[:, None])
    colour = procedural_texture(size, rng) if texture is None else _texture_from_image(size, rng, texture)
    return _soften(shape.alpha(), rng.uniform(0.3, 1.0) * size / 128), colour


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


def coverage_bucket(coverage: float) -> str:
    for name, (lo, hi) in COVERAGE_BUCKETS.items():
        if coverage < hi:
            return name
    return "large"


class OcclusionSynth:
    """Draws occluded versions of aligned face crops under one protocol.

    `sample` draws from a caller's generator (training); `__call__` is deterministic in (seed, index) (validation).
    """

    def __init__(self, protocol: str, crop_size: int, seed: int = 0, template: str = DEFAULT_TEMPLATE,
                 margin: float = DEFAULT_MARGIN,
                 textures: Sequence[np.ndarray] | None = None, mix_weights: Mapping[str, float] | None = None,
                 clean_fraction: float = 0.1, realistic_weights: Mapping[str, float] | None = None,
                 colour_order: str = "bgr"):
        if protocol not in PROTOCOLS:
            raise UnveilError(f"unknown occlusion protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
        if crop_size < 16:
            raise UnveilError(f"crop size {crop_size} is too small for occlusion synthesis (need >= 16)")
        if not 0.0 <= clean_fraction < 1.0:
            raise UnveilError(f"clean_fraction must be in [0, 1), got {clean_fraction}")
        if colour_order not in ("bgr", "rgb"):
            raise UnveilError(f"colour_order must be 'bgr' or 'rgb', got {colour_order!r}")
        self.protocol, self.crop_size, self.seed = protocol, crop_size, seed
        self.points5 = template_points(crop_size, template, margin)
        self.layout = face_layout(self.points5)
        self.textures = [np.asarray(t) for t in (textures or [])]
        for t in self.textures:
            if t.ndim != 3 or t.shape[2] != 3 or min(t.shape[:2]) < 8:
                raise UnveilError(f"textures must be HxWx3 images of at least 8x8 pixels, got {t.shape}")
        default_mix = SYMMETRY_MIX_WEIGHTS if protocol == "symmetry" else DEFAULT_MIX_WEIGHTS
        self.mix_weights = self._weights(default_mix if mix_weights is None else mix_weights, MIX_KINDS, "mix_weights")
        self.realistic_weights = self._weights(DEFAULT_REALISTIC_WEIGHTS if realistic_weights is None
                                               else realistic_weights, REALISTIC_KINDS, "realistic_weights")
        self.clean_fraction = clean_fraction
        self.colour_order = colour_order

    @staticmethod
    def _weights(weights: Mapping[str, float], allowed: tuple[str, ...], name: str) -> dict[str, float]:
        unknown = set(weights) - set(allowed)
        if unknown:
            raise UnveilError(f"{name} has unknown entries {sorted(unknown)}; allowed: {', '.join(allowed)}")
        if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
            raise UnveilError(f"{name} must be non-negative and not all zero, got {dict(weights)}")
        return dict(weights)

    # ------------------------------------------------------------------------------------------------------ public

    def __call__(self, image: np.ndarray, index: int) -> Occlusion:
        return self.sample(image, np.random.default_rng([self.seed, index]))

    def sample(self, image: np.ndarray, rng: np.random.Generator, position: str | None = None,
               size: str | None = None, kind: str | None = None) -> Occlusion:
        """One occluded crop. position / size request a region / size bucket; kind overrides the protocol's choice."""
        self._check_image(image)
        if size is not None and size not in SIZES:
            raise UnveilError(f"unknown occlusion size {size!r}; choose one of {', '.join(SIZES)}")
        if kind is None:
            kind = self._choose_kind(rng, position)
        elif kind not in KINDS:
            raise UnveilError(f"unknown occlusion kind {kind!r}; choose one of {', '.join(KINDS)}")
        if position is None:
            allowed = KIND_POSITIONS[kind]
            position = allowed[int(rng.integers(len(allowed)))]
        elif position not in KIND_POSITIONS[kind]:
            raise UnveilError(f"position {position!r} is not available for occlusion kind {kind!r} "
                              f"(it takes {', '.join(KIND_POSITIONS[kind])})")
        if kind == "none":
            return Occlusion(image.copy(), np.zeros(image.shape[:2], np.float32), "none", "none", "none")
        if kind in ("rect", "text", "centre"):
            return self._paper_kind(image, rng, kind, position, size)
        return self._coverage_kind(image, rng, kind, position, size)

    # ----------------------------------------------------------------------------------------------------- choices

    def _check_image(self, image: np.ndarray) -> None:
        s = self.crop_size
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.shape != (s, s, 3):
            got = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
            raise UnveilError(f"occlusion synthesis needs a uint8 {s}x{s}x3 aligned crop, got {got}")

    def _choose_kind(self, rng: np.random.Generator, position: str | None) -> str:
        protocol = self.protocol
        if protocol == "mix":
            # A requested position asks for an occluder there, so clean faces come only from unconstrained draws.
            if position is None and rng.random() < self.clean_fraction:
                return "none"
            protocol = self._pick(rng, self.mix_weights, position)
        elif protocol == "symmetry":  # no clean faces: with an empty mask the symmetry network has nothing to learn
            protocol = self._pick(rng, self.mix_weights, position)
        if protocol == "realistic":
            return self._pick(rng, self.realistic_weights, position)
        if position is not None and position not in KIND_POSITIONS[protocol]:
            raise UnveilError(f"position {position!r} is not available under protocol {protocol!r}")
        return protocol

    def _pick(self, rng: np.random.Generator, weights: Mapping[str, float], position: str | None) -> str:
        """Weighted choice of a kind (or of 'realistic'), restricted to those that can take `position`."""
        def takes(name: str) -> bool:
            kinds = [k for k, w in self.realistic_weights.items() if w > 0] if name == "realistic" else [name]
            return position is None or any(position in KIND_POSITIONS[k] for k in kinds)

        names = [n for n, w in weights.items() if w > 0 and takes(n)]
        if not names:
            raise UnveilError(f"no occlusion kind of protocol {self.protocol!r} can be placed at {position!r}")
        p = np.array([weights[n] for n in names], np.float64)
        return names[int(rng.choice(len(names), p=p / p.sum()))]

    def _region_centre(self, rng: np.random.Generator, position: str, extent: tuple[float, float]) -> np.ndarray:
        """A centre for an occluder of extent (w, h) on a face region; 'outside' keeps the centre off the face ellipse.

        Inside the crop where the extent fits, so the paper's rectangles keep their exact area.
        """
        lay, s = self.layout, self.crop_size
        w, h = min(extent[0], s), min(extent[1], s)
        lo = np.array([w / 2, h / 2])
        hi = np.array([s - w / 2, s - h / 2])
        if position == "outside":
            best, best_d = None, -1.0
            for _ in range(64):
                c = rng.uniform(lo, np.maximum(hi, lo + 1e-6))
                d = float((((c - lay.face_centre) / lay.face_axes) ** 2).sum())
                if d > 1.0:
                    return c
                if d > best_d:
                    best, best_d = c, d
            return best
        anchor = {"mouth": lay.mouth, "nose": lay.nose,
                  "eyes": lay.left_eye if rng.random() < 0.5 else lay.right_eye}[position]
        jitter = rng.uniform(-1, 1, 2) * np.array([0.15 * lay.eye_distance, 0.08 * lay.eye_to_mouth])
        return np.clip(anchor + jitter, lo, hi)

    # ------------------------------------------------------------------------------------------------------ kinds

    def _paper_kind(self, image: np.ndarray, rng: np.random.Generator, kind: str, position: str,
                    size: str | None) -> Occlusion:
        s = self.crop_size
        colour = _random_rgb(rng)
        if kind == "rect":
            size = size or self._bucket_for(rng.uniform(0.01, 0.15), RECT_AREA_BUCKETS)
            area = rng.uniform(*RECT_AREA_BUCKETS[size])
            aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
            centre = self._region_centre(rng, position, rect_extent(s, area, aspect))
            alpha, layer = paint_rect(s, rng, centre=centre, area_ratio=area, aspect=aspect, colour=colour)
        elif kind == "text":
            size = size or self._bucket_for(rng.uniform(0.05, 0.5), TEXT_HEIGHT_BUCKETS)
            height = rng.uniform(*TEXT_HEIGHT_BUCKETS[size])
            word = str(rng.choice(WORDS))
            font = int(TEXT_FONTS[rng.integers(len(TEXT_FONTS))])
            thickness = rng.uniform(0.1, 0.35)
            patch = render_word(word, font, max(2, int(round(height * s))), thickness)
            centre = self._region_centre(rng, position, (patch.shape[1], patch.shape[0]))
            alpha, layer = paint_text(s, rng, centre=centre, height_ratio=height, word=word, font=font,
                                      thickness_ratio=thickness, colour=colour)
        else:
            area = 0.25 if size is None else rng.uniform(*CENTRE_AREA_BUCKETS[size])
            size = size or self._bucket_for(area, CENTRE_AREA_BUCKETS)
            alpha, layer = paint_centre_square(s, rng, area_ratio=area, colour=colour)
        out, mask = composite(image, layer, alpha)
        return Occlusion(out, mask, kind, position, size)

    @staticmethod
    def _bucket_for(value: float, buckets: Mapping[str, tuple[float, float]]) -> str:
        for name, (lo, hi) in buckets.items():
            if lo <= value < hi:
                return name
        return list(buckets)[-1]

    def _coverage_kind(self, image: np.ndarray, rng: np.random.Generator, kind: str, position: str,
                       size: str | None) -> Occlusion:
        """Kinds labelled by mask coverage; a requested size is met by redrawing (up to 12 times), the label is true."""
        out = mask = None
        for _ in range(12 if size else 1):
            alpha, colour = self._paint(rng, kind, position, size)
            if kind in REALISTIC_KINDS:
                alpha, colour = jitter_layer(alpha, colour, rng)
                if self.colour_order == "rgb" and not (kind == "texture" and self.textures):
                    colour = colour[..., ::-1]
            out, mask = composite(image, np.ascontiguousarray(colour), alpha)
            if size is None or coverage_bucket(float(mask.mean())) == size:
                break
        return Occlusion(out, mask, kind, position, coverage_bucket(float(mask.mean())))

    def _paint_half(self, rng: np.random.Generator, position: str, size: str | None) -> tuple[np.ndarray, np.ndarray]:
        """A one-half occluder over one eye, one cheek or one whole side of the face (box in eye-distance units)."""
        s, lay = self.crop_size, self.layout
        side = "left" if rng.random() < 0.5 else "right"
        eye = lay.left_eye if side == "left" else lay.right_eye
        ed, em = lay.eye_distance, lay.eye_to_mouth
        mid = (s - 1) / 2
        outward = -1.0 if side == "left" else 1.0
        if position == "eye":
            k = self._scale(rng, 0.7, 1.8, size)
            centre = eye + rng.uniform(-0.1, 0.1, 2) * ed
            w, h = k * ed * rng.uniform(0.9, 1.3), k * ed * rng.uniform(0.5, 0.9)
        elif position == "cheek":
            k = self._scale(rng, 0.7, 1.7, size)
            centre = np.array([eye[0] + outward * rng.uniform(0.0, 0.25) * ed, eye[1] + rng.uniform(0.45, 0.8) * em])
            w, h = k * ed * rng.uniform(0.7, 1.1), k * em * rng.uniform(0.8, 1.3)
        else:  # side: from the mid-line out past the cheek, a vertical band of the face
            k = self._scale(rng, 0.6, 1.1, size)
            top = lay.face_centre[1] - lay.face_axes[1] * rng.uniform(0.3, 1.0)
            bottom = top + k * 2 * lay.face_axes[1]
            outer = mid + outward * lay.face_axes[0] * rng.uniform(1.1, 1.5)
            x0, x1 = sorted((mid, outer))
            box = (x0, top, x1, bottom)
        if position != "side":
            box = (centre[0] - w / 2, centre[1] - h / 2, centre[0] + w / 2, centre[1] + h / 2)
        colour = procedural_texture(s, rng) if rng.random() < 0.4 else None
        return paint_half(s, rng, box=box, side=side, ellipse=bool(rng.random() < 0.4), colour=colour)

    def _scale(self, rng: np.random.Generator, lo: float, hi: float, size: str | None) -> float:
        """A scale drawn from [lo, hi], or from its lower / middle / upper third when a size bucket is requested."""
        if size is None:
            return rng.uniform(lo, hi)
        third = (hi - lo) / 3
        start = lo + SIZES.index(size) * third
        return rng.uniform(start, start + third)

    def _paint(self, rng: np.random.Generator, kind: str, position: str,
               size: str | None) -> tuple[np.ndarray, np.ndarray]:
        s, lay = self.crop_size, self.layout
        if kind == "irregular":
            strokes = {None: None, "small": 1, "medium": 3, "large": 5}[size]
            return paint_strokes(s, rng, strokes=strokes)
        if kind == "half":
            return self._paint_half(rng, position, size)
        if kind == "hand":
            scale = self._scale(rng, 0.5, 0.9, size)
            centre = self._region_centre(rng, position, (0, 0))
            away = centre - lay.face_centre  # the arm comes from the side of the crop nearest the palm (or from below)
            base = np.degrees(np.arctan2(away[0], -away[1])) + 180 if position == "outside" else rng.uniform(-60, 60)
            angle = float(np.clip(((base + 180) % 360) - 180, -120, 120)) + rng.uniform(-20, 20)
            return paint_hand(s, rng, centre=centre, scale=scale, angle=angle)
        if kind == "microphone":
            scale = self._scale(rng, 0.07, 0.16, size)
            if position == "mouth":
                centre = lay.mouth + np.array([rng.uniform(-0.3, 0.3) * lay.eye_distance,
                                               rng.uniform(0.0, 0.5) * lay.eye_to_mouth])
            else:
                centre = self._region_centre(rng, "outside", (0, 0))
                centre[1] = max(centre[1], lay.nose[1])  # microphones are held below the face, not above it
            return paint_microphone(s, rng, centre=centre, scale=scale)
        if kind == "face_mask":
            return paint_face_mask(s, rng, points5=self.points5, scale=self._scale(rng, 0.9, 1.1, size))
        if kind == "sunglasses":
            return paint_sunglasses(s, rng, points5=self.points5, scale=self._scale(rng, 0.85, 1.15, size))
        if kind == "subtitle":
            return paint_subtitle(s, rng, height_ratio=self._scale(rng, 0.05, 0.13, size))
        if kind == "pole":
            centre = self._region_centre(rng, position, (0, 0))
            return paint_pole(s, rng, centre=centre, width=self._scale(rng, 0.06, 0.25, size))
        if kind == "watermark":
            return paint_watermark(s, rng, height_ratio=self._scale(rng, 0.06, 0.18, size))
        if kind == "texture":
            texture = self.textures[int(rng.integers(len(self.textures)))] if self.textures else None
            centre = self._region_centre(rng, position, (0, 0))
            return paint_texture(s, rng, centre=centre, scale=self._scale(rng, 0.2, 0.6, size), texture=texture)
        raise UnveilError(f"occlusion kind {kind!r} has no painter")
