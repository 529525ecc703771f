"""The occluder painters: each `paint_*` returns (alpha, colour) layers for an SxS aligned face crop (numpy + OpenCV)."""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from realtime.align import template_points
from realtime.errors import UnveilError
from trainer.occluders.layers import (
    HiRes, bgr, face_layout, flat_colour, jitter_tone, local_to_crop, pixel_grid,
    procedural_texture, random_rgb, render_text_hires, rotation, soften, supersample, texture_from_image, value_noise,
)

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
    return alpha, flat_colour(size, random_rgb(rng) if colour is None else colour)


def render_word(word: str, font: int, height_px: int, thickness_ratio: float) -> np.ndarray:
    """Binary float32 ink patch of `word` whose ink is exactly `height_px` rows tall (c2fdan's height ratio h)."""
    canvas, _ = render_text_hires(word, font, height_px, thickness_ratio, scale=2)
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
    return alpha, flat_colour(size, random_rgb(rng) if colour is None else colour)


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
    return alpha, flat_colour(size, random_rgb(rng) if colour is None else colour)


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
    return alpha, flat_colour(size, random_rgb(rng) if colour is None else colour)


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
        layer = flat_colour(size, random_rgb(rng))
    else:
        colour = np.asarray(colour, np.float32)
        layer = colour.copy() if colour.shape == (size, size, 3) else flat_colour(size, colour)
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
        return local_to_crop(np.asarray(points, np.float64) * [mirror, 1.0], centre, angle, unit)

    parts: list[np.ndarray] = []
    palm = HiRes(size)  # knuckles at y = -0.12, wrist at y = 0.27 (local units of the hand's length)
    palm.polygon(to_crop([[-0.2, -0.13], [0.2, -0.15], [0.23, 0.02], [0.17, 0.24], [0.0, 0.29], [-0.14, 0.26],
                          [-0.21, 0.08]]))
    palm.ellipse(to_crop([[0.11, 0.1]])[0], (0.12 * unit, 0.15 * unit), angle)  # the thumb's ball
    parts.append(palm.alpha())
    fingers = ((-0.15, -0.06, 0.29), (-0.05, -0.12, 0.36), (0.05, -0.12, 0.34), (0.145, -0.1, 0.31))
    for i, (fx, fy, length) in enumerate(fingers):  # little, ring, middle, index (index next to the thumb)
        finger = HiRes(size)
        tilt = np.deg2rad((i - 1.5) * spread)
        direction = np.array([np.sin(tilt), -np.cos(tilt)])
        base = np.array([fx, fy])
        joint = base + 0.55 * length * curl * direction
        tip = base + length * curl * direction
        width = 0.088 if i else 0.078
        finger.capsule(*to_crop([base, joint]), width * unit)
        finger.capsule(*to_crop([joint, tip]), 0.85 * width * unit)  # fingers taper towards the tip
        parts.append(finger.alpha())
    thumb = HiRes(size)
    t0, t1 = np.array([0.17, 0.12]), np.array([0.29, -0.02])
    t2 = t1 + rng.uniform(0.1, 0.15) * np.array([0.45, -0.9])
    thumb.capsule(*to_crop([t0, t1]), 0.115 * unit)
    thumb.capsule(*to_crop([t1, t2]), 0.095 * unit)
    parts.append(thumb.alpha())
    arm = HiRes(size)  # wrist, then a forearm widening as it runs off the crop
    arm.polygon(to_crop([[-0.14, 0.2], [0.15, 0.2], [0.24, 3.0], [-0.2, 3.0]]))
    parts.append(arm.alpha())

    alpha = np.max(np.stack(parts), axis=0)
    # Creases: each finger's own outline, where it lies inside the hand, darkens the skin (separates the fingers).
    outline = np.zeros_like(alpha)
    kernel = np.ones((3, 3), np.uint8)
    for part in parts[1:6]:
        outline = np.maximum(outline, part - cv2.erode(part, kernel))
    inside = cv2.erode(alpha, kernel)
    crease = soften(np.clip(outline * inside * 1.5, 0, 1), 0.6 * size / 128)
    # Rounded limbs: darker towards the silhouette, from the distance to the edge.
    depth = cv2.distanceTransform((alpha > 0.5).astype(np.uint8), cv2.DIST_L2, 3)
    roundness = 0.78 + 0.22 * np.clip(depth / max(0.05 * unit, 1.0), 0, 1)
    xs, ys = pixel_grid(size)
    light = rotation(rng.uniform(0, 360)) @ np.array([1.0, 0.0])
    side = ((xs - centre[0]) * light[0] + (ys - centre[1]) * light[1]) / unit
    shade = np.clip(1.0 + 0.22 * side, 0.75, 1.15) * (1.0 - 0.28 * crease) * roundness
    tone = jitter_tone(SKIN_TONES_RGB[rng.integers(len(SKIN_TONES_RGB))], rng)
    noise = 1.0 + 0.06 * (value_noise(size, rng, 8) - 0.5)
    colour = np.clip(tone * (shade * noise)[..., None], 0, 255).astype(np.float32)
    return soften(alpha, 0.5 * size / 128), colour


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
    canvas = HiRes(size)
    canvas.polygon(local_to_crop(np.array([[-half, -2.0 * size], [half, -2.0 * size], [half, 2.0 * size],
                                            [-half, 2.0 * size]]), centre, angle, 1.0))
    alpha = canvas.alpha()
    xs, ys = pixel_grid(size)
    normal = rotation(angle) @ np.array([1.0, 0.0])
    across = np.clip(((xs - centre[0]) * normal[0] + (ys - centre[1]) * normal[1]) / max(half, 1e-3), -1, 1)
    if rng.random() < 0.2:
        colour = procedural_texture(size, rng)
    else:
        rgb = POLE_COLOURS_RGB[rng.integers(len(POLE_COLOURS_RGB))] if rng.random() < 0.8 else random_rgb(rng)
        colour = np.broadcast_to(jitter_tone(rgb, rng), (size, size, 3)).astype(np.float32)
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
    head = HiRes(size)
    head.ellipse(centre, (r, r * rng.uniform(0.95, 1.1)), angle)
    head_alpha = head.alpha()
    handle = HiRes(size)
    handle.polygon(local_to_crop(np.array([[-0.55, 0.7], [0.55, 0.7], [0.35, 12.0], [-0.35, 12.0]]), centre, angle, r))
    handle_alpha = handle.alpha()
    band = HiRes(size)
    band.polygon(local_to_crop(np.array([[-0.62, 0.75], [0.62, 0.75], [0.58, 1.15], [-0.58, 1.15]]), centre, angle, r))
    band_alpha = band.alpha()

    xs, ys = pixel_grid(size)
    dx, dy = (xs - centre[0]) / r, (ys - centre[1]) / r
    rim = np.clip(dx**2 + dy**2, 0, 1)
    if rng.random() < 0.65:  # metal grille: mesh lines, spherical shading, a specular spot
        base = bgr([rng.uniform(60, 150)] * 3)
        pitch = max(1.5, r / rng.uniform(3.5, 6))
        mesh = 0.5 * (np.abs(np.sin(np.pi * (xs + ys) / pitch)) + np.abs(np.sin(np.pi * (xs - ys) / pitch)))
        head_shade = (0.6 + 0.5 * mesh) * (1.15 - 0.6 * rim)
    else:  # foam windscreen in a broadcast colour
        base = jitter_tone([(30, 30, 32), (170, 30, 40), (30, 60, 160), (40, 40, 45)][rng.integers(4)], rng)
        head_shade = (0.85 + 0.3 * value_noise(size, rng, int(max(4, size // 6)), 1)) * (1.1 - 0.5 * rim)
    spot = np.exp(-((dx + 0.35) ** 2 + (dy + 0.35) ** 2) / 0.08)
    head_colour = base * head_shade[..., None] + 120.0 * spot[..., None]
    axis = rotation(angle) @ np.array([1.0, 0.0])
    across = ((xs - centre[0]) * axis[0] + (ys - centre[1]) * axis[1]) / r
    handle_colour = bgr([rng.uniform(15, 55)] * 3) * (1.0 + 1.2 * np.exp(-((across + 0.2) ** 2) / 0.03))[..., None]
    band_colour = jitter_tone([(20, 20, 20), (180, 180, 185), (150, 30, 30), (30, 80, 170)][rng.integers(4)], rng)
    colour = handle_colour
    colour = colour * (1 - band_alpha[..., None]) + band_colour * band_alpha[..., None]
    colour = colour * (1 - head_alpha[..., None]) + head_colour * head_alpha[..., None]
    alpha = np.maximum(head_alpha, np.maximum(handle_alpha, band_alpha))
    return soften(alpha, 0.4 * size / 128), np.clip(colour, 0, 255).astype(np.float32)


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
    mask = HiRes(size)
    mask.polygon(local_to_crop(outline, origin, roll, 1.0))
    body = mask.alpha()
    loops = HiRes(size)
    for sign in (-1, 1):
        for y_frac in (0.12, 0.75):
            p0 = np.array([sign * half_w * 0.97, y_frac * chin_depth])
            p1 = np.array([sign * (half_w + 0.1 * iod), 0.15 * chin_depth - 0.1 * d])  # towards the ear
            loops.capsule(*local_to_crop(np.stack([p0, p1]), origin, roll, 1.0), max(0.8, 0.012 * size))
    loop_alpha = loops.alpha()

    xs, ys = pixel_grid(size)
    local = (np.stack([xs - origin[0], ys - origin[1]], -1) @ rotation(roll)).astype(np.float32)
    lx, ly = local[..., 0] / half_w, local[..., 1] / max(chin_depth, 1.0)
    fabric = jitter_tone(FABRIC_COLOURS_RGB[rng.integers(len(FABRIC_COLOURS_RGB))], rng, 0.06)
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
    return soften(alpha, 0.4 * size / 128), np.clip(colour, 0, 255).astype(np.float32)


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
    lenses, rims, bars = HiRes(size), HiRes(size), HiRes(size)
    for eye in (layout.left_eye, layout.right_eye):
        c = eye + rotation(roll) @ np.array([0.0, 0.05 * iod])
        if style == 1:
            outline = np.array([[-1, -1], [1, -1], [0.93, 0.85], [0.7, 1], [-0.7, 1], [-0.93, 0.85]]) * [lens_w, lens_h]
            grown = outline * [(lens_w + frame_w) / lens_w, (lens_h + frame_w) / lens_h]
            rims.polygon(local_to_crop(grown, c, roll, 1.0))
            lenses.polygon(local_to_crop(outline, c, roll, 1.0))
        else:
            drop = 0.25 if style == 2 else 0.0  # aviators: taller lenses hanging lower
            lc = c + rotation(roll) @ np.array([0.0, drop * lens_h * 0.3])
            rims.ellipse(lc, (lens_w + frame_w, lens_h * (1 + drop) + frame_w), roll)
            lenses.ellipse(lc, (lens_w, lens_h * (1 + drop)), roll)
    mid = (layout.left_eye + layout.right_eye) / 2
    along = rotation(roll) @ np.array([1.0, 0.0])
    bars.capsule(mid - along * 0.2 * iod, mid + along * 0.2 * iod, frame_w * 1.2)
    for eye, sign in ((layout.left_eye, -1), (layout.right_eye, 1)):
        outer = eye + along * sign * (lens_w + 0.5 * frame_w)
        bars.capsule(outer, outer + along * sign * 0.55 * iod + rotation(roll) @ np.array([0, 0.08 * iod]), frame_w)
    lens_alpha = lenses.alpha()
    frame_alpha = np.maximum(np.clip(rims.alpha() - lens_alpha, 0, 1), bars.alpha())

    xs, ys = pixel_grid(size)
    tint = jitter_tone([(20, 20, 24), (45, 35, 25), (30, 45, 35), (60, 40, 30), (25, 35, 60)][rng.integers(5)], rng, 0.2)
    vertical = (ys - mid[1]) / max(lens_h, 1.0)
    gradient = np.clip(0.8 + 0.35 * vertical, 0.5, 1.4)  # gradient lenses: darker at the top
    sweep = (xs - ys * rng.uniform(0.6, 1.4)) / max(iod, 1.0)
    glare = np.exp(-((np.mod(sweep + rng.uniform(0, 1), 0.9) - 0.45) ** 2) / 0.006)  # a reflected window streak
    lens_colour = tint * gradient[..., None] + rng.uniform(40, 90) * glare[..., None]
    frame_colour = jitter_tone([(15, 15, 15), (40, 30, 20), (170, 150, 90), (140, 140, 145)][rng.integers(4)], rng)
    colour = lens_colour * (1 - frame_alpha[..., None]) + frame_colour * frame_alpha[..., None]
    lens_opacity = rng.uniform(0.82, 0.97)
    alpha = np.maximum(lens_alpha * lens_opacity, frame_alpha)
    return soften(alpha, 0.35 * size / 128), np.clip(colour, 0, 255).astype(np.float32)


def _outlined_text_patch(text: str, font: int, height_px: float, outline_ratio: float, thickness_ratio: float,
                         scale: int, angle: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (fill, fill+outline) patches of one line of text drawn at `scale`x, rotated by `angle` degrees."""
    fill, _ = render_text_hires(text, font, height_px, thickness_ratio, scale)
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
    """Crop-sized (fill alpha, fill+outline alpha) with text patches (drawn at supersample(size)) on each centre."""
    scale = supersample(size)
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
                                   supersample(size))
    fill, full = _stamp_text(size, *patches, [(x, y)])
    alpha = full
    colour = np.zeros((size, size, 3), np.float32)
    fill_colour = bgr(SUBTITLE_COLOURS_RGB[rng.integers(len(SUBTITLE_COLOURS_RGB))])
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
    patches = _outlined_text_patch(text, font, height_ratio * size, 0.06, rng.uniform(0.1, 0.25), supersample(size),
                                   angle)
    fill, full = _stamp_text(size, *patches, centres)
    tone = bgr([rng.uniform(200, 255)] * 3) if rng.random() < 0.8 else bgr([rng.uniform(20, 80)] * 3)
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
    shape = HiRes(size)
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
    colour = procedural_texture(size, rng) if texture is None else texture_from_image(size, rng, texture)
    return soften(shape.alpha(), rng.uniform(0.3, 1.0) * size / 128), colour
