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

import numpy as np

from realtime.align import DEFAULT_MARGIN, DEFAULT_TEMPLATE, template_points
from realtime.errors import UnveilError
from trainer.occluders.layers import composite, face_layout, jitter_layer, procedural_texture, random_rgb
from trainer.occluders.painters import (
    TEXT_FONTS, WORDS, paint_centre_square, paint_face_mask, paint_half, paint_hand, paint_microphone, paint_pole,
    paint_rect, paint_strokes, paint_subtitle, paint_sunglasses, paint_text, paint_texture, paint_watermark,
    rect_extent, render_word,
)

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



@dataclass
class Occlusion:
    image: np.ndarray  # uint8 SxSx3 occluded crop, same colour order as the input
    mask: np.ndarray  # float32 SxS, exactly 1.0 where the occluder changed the pixel, else 0.0
    kind: str  # one of KINDS
    position: str  # 'mouth','nose','eyes','outside' for face regions; 'centre','random','lower_face','bottom','none'
    size: str  # 'small' / 'medium' / 'large' (see the *_BUCKETS tables), 'none' for clean faces





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
        colour = random_rgb(rng)
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
        out, mask = composite(image, alpha, layer)
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
            out, mask = composite(image, alpha, np.ascontiguousarray(colour))
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
