"""Photo quality: does Unveil find and fill what covers a face, and only that, on full photos (photo mode)?

(a) Synthetic occluders on clean validation CelebA photos, composited in FRAME coordinates and placed relative to the
    face found in the clean photo (its mesh landmarks):
      rect      a filled rectangle of 5-15 % of the face box area somewhere on the face
      text      one or two lines of words in a Hershey font across the face
      one-half  an ellipse over one eye or one cheek, wholly on one side of the face's mid-line (its mirror twin shows)
      centre    a square of ~25 % of the face box area over the face centre
      hand      a held-out real hand cutout (trainer.cutouts) scaled to half the face
    TRUE hole = occluder pixels (alpha > 0.5) inside the clean face oval. Per protocol:
      coverage       share of true-hole pixels visibly changed (> 12 levels in some channel vs the occluded input)
      on target      share of visibly changed pixels within 3 px of the whole occluder (alpha > 0.5, dilated)
      replaced on target  the same for every replaced pixel (`frame.replaced`, any change)
      PSNR / SSIM    in the hole vs the clean photo, for Unveil and for OpenCV Telea given the true hole
                     (cv2.inpaint radius 3, the hole dilated 1 px)
      sharpness      sum of squared Sobel gradient magnitude (grey) in the hole, output / clean, median over photos
      untouched      share of faces the pipeline left bit-identical
(b) Real masked faces (no ground truth): the share of the LOWER FACE replaced (face oval below the nose tip, mesh 1)
    and of the EYE BAND touched (brows, mesh 105/334, down to the nose bridge, mesh 6, within the face oval); the
    regions come from the mesh the pipeline found on each photo. Plus a grid of 12: input | output | replaced tint.

    python -m benchmarks.photo_quality --limit 60 --masked-limit 40 --model blind-lite --model symmetry-lite

Writes report.json, report.md, samples.json (every synthetic sample's numbers) and the pictures into --out (default
docs/photo_quality/).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from benchmarks.do_no_harm import (
    DEFAULT_INDEX, DEFAULT_PHOTOS, ROOT, SHARED, changed_pixels, face_crop, face_oval, fit_cell, markdown_table,
    jsonable, pct, pipeline_config, run_frame, save_grid, tint, validation_photos, verdict, write_report,
)
from realtime.errors import UnveilError
from realtime.pipeline import build_pipeline
from realtime.regions import FACE_OVAL, dilate, polygon_mask
from realtime.sources import list_images, read_image
from trainer.cutouts import Cutout, load_cutouts, split_cutouts
from trainer.occluders.layers import composite
from trainer.occluders.painters import WORDS

DEFAULT_MASKED = SHARED / "occluded" / "face_masks"
DEFAULT_OCCLUDERS = SHARED / "occluders"
PROTOCOLS = ("rect", "text", "one-half", "centre", "hand")
HERSHEY = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
           cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_COMPLEX_SMALL, cv2.FONT_HERSHEY_SIMPLEX | cv2.FONT_ITALIC)
OCCLUDER_ALPHA = 0.5      # a pixel belongs to the occluder where its alpha is above this
VISIBLE_ALPHA = 0.02      # pixels whose occluder alpha is at or below this stay bit-identical
ON_TARGET_PX = 3          # "on target" = within this many pixels of the occluder
MIN_HOLE = 16             # samples whose true hole is smaller are skipped
PSNR_CAP = 100.0          # a perfect fill counts as this many dB in the means
EXAMPLES_PER_PROTOCOL = 3

# mesh points
NOSE_TIP, NOSE_BRIDGE, BROWS, FOREHEAD, CHIN = 1, 6, (105, 334), 10, 152
EYES = ((33, 133), (362, 263))   # image-left eye, image-right eye (corner pairs)
CHEEKS = (205, 425)              # image-left cheek, image-right cheek

TARGETS = {   # protocol -> what must hold (checked in `targets_met`)
    "coverage": {"rect": 0.97, "text": 0.92},
    "on_target": 0.95,
    "psnr_over_telea": {"rect": 1.0, "text": -1.0, "one-half": 1.0},
    "sharpness": 0.7,
    "hand_replaced_on_target": 0.80,
    "lower_face": 0.80,
    "eye_band": 0.02,
}


# ------------------------------------------------------------------------------------------- geometry of a face


@dataclass(frozen=True)
class FaceGeometry:
    """Where a face is in a frame, from its 468 mesh landmarks (frame pixels)."""

    landmarks: np.ndarray
    oval: np.ndarray               # (H, W) bool face oval
    box: tuple[float, float, float, float]   # bounding box of the oval points

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def centre(self) -> np.ndarray:
        return np.array([(self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2])

    def eye(self, side: int) -> np.ndarray:
        return self.landmarks[list(EYES[side])].mean(axis=0)

    @property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.eye(1) - self.eye(0)))

    @property
    def roll(self) -> float:
        """Degrees of the eye line against the horizontal (OpenCV's angle sense: clockwise on screen)."""
        d = self.eye(1) - self.eye(0)
        return float(np.degrees(np.arctan2(d[1], d[0])))

    def midline_side(self, shape: tuple[int, ...]) -> np.ndarray:
        """(H, W) signed distance in pixels of every pixel to the mid-line (forehead top -> chin)."""
        return signed_distance_to_line(self.landmarks[FOREHEAD], self.landmarks[CHIN], shape)


def face_geometry(landmarks: np.ndarray, shape: tuple[int, ...]) -> FaceGeometry:
    pts = np.asarray(landmarks, np.float64)[list(FACE_OVAL)]
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    return FaceGeometry(np.asarray(landmarks, np.float64), face_oval(landmarks, shape), (x0, y0, x1, y1))


def signed_distance_to_line(a: np.ndarray, b: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(H, W) signed distance of each pixel to the line through a and b (positive on one side)."""
    h, w = shape[:2]
    d = np.asarray(b, np.float64) - np.asarray(a, np.float64)
    d /= max(np.linalg.norm(d), 1e-9)
    ys, xs = np.mgrid[0:h, 0:w]
    return ((xs - a[0]) * d[1] - (ys - a[1]) * d[0]).astype(np.float32)


def mirror_across(mask: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """`mask` reflected across the line through a and b (nearest pixel)."""
    h, w = mask.shape
    d = np.asarray(b, np.float64) - np.asarray(a, np.float64)
    d /= max(np.linalg.norm(d), 1e-9)
    reflect = np.eye(2) * -1 + 2 * np.outer(d, d)             # reflection about the direction d
    matrix = np.hstack([reflect, (np.asarray(a) - reflect @ np.asarray(a))[:, None]])
    return cv2.warpAffine(mask.astype(np.uint8), matrix, (w, h), flags=cv2.INTER_NEAREST, borderValue=0).astype(bool)


def down_projection(landmarks: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, callable]:
    """(H, W) position of each pixel along the face's vertical axis (forehead top -> chin, pixels), and the same
    projection for points."""
    top = np.asarray(landmarks[FOREHEAD], np.float64)
    down = np.asarray(landmarks[CHIN], np.float64) - top
    down /= max(np.linalg.norm(down), 1e-9)
    h, w = shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    grid = ((xs - top[0]) * down[0] + (ys - top[1]) * down[1]).astype(np.float32)
    return grid, lambda p: float((np.asarray(p, np.float64) - top) @ down)


def lower_face(landmarks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(H, W) bool: the face oval below the nose tip (along the face's own vertical axis)."""
    grid, at = down_projection(landmarks, shape)
    return face_oval(landmarks, shape) & (grid > at(landmarks[NOSE_TIP]))


def eye_band(landmarks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(H, W) bool: the face oval from the higher brow (mesh 105/334) down to the nose bridge (mesh 6)."""
    grid, at = down_projection(landmarks, shape)
    top = min(at(landmarks[BROWS[0]]), at(landmarks[BROWS[1]]))
    return face_oval(landmarks, shape) & (grid >= top) & (grid <= at(landmarks[NOSE_BRIDGE]))


# ------------------------------------------------------------------------------------------------------ painters
# Each painter returns (alpha float32 HxW in [0, 1], colour float32 HxWx3 BGR) in frame coordinates.


def random_colour(rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, 3).astype(np.float32)


def flat(shape: tuple[int, ...], bgr: np.ndarray) -> np.ndarray:
    return np.broadcast_to(np.asarray(bgr, np.float32), (shape[0], shape[1], 3)).copy()


def face_point(geo: FaceGeometry, rng: np.random.Generator, shrink: float = 0.6) -> np.ndarray:
    """A random pixel of the face oval shrunk towards its centre (so what is centred there lies on the face)."""
    pts = geo.landmarks[list(FACE_OVAL)]
    centre = pts.mean(axis=0)
    h, w = geo.oval.shape
    inner = polygon_mask(centre + shrink * (pts - centre), max(h, w))[:h, :w]
    ys, xs = np.nonzero(inner if inner.any() else geo.oval)
    if len(ys) == 0:
        return geo.centre
    k = rng.integers(len(ys))
    return np.array([xs[k], ys[k]], np.float64)


def paint_rect(shape, geo: FaceGeometry, rng: np.random.Generator, area_ratio: tuple[float, float] = (0.05, 0.15)):
    area = rng.uniform(*area_ratio) * geo.area
    aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    w, h = np.sqrt(area * aspect), np.sqrt(area / aspect)
    cx, cy = face_point(geo, rng)
    alpha = np.zeros(shape[:2], np.float32)
    x0, y0 = int(round(cx - w / 2)), int(round(cy - h / 2))
    alpha[max(y0, 0):max(y0 + int(round(h)), 0), max(x0, 0):max(x0 + int(round(w)), 0)] = 1.0
    return alpha, flat(shape, random_colour(rng))


def paint_text(shape, geo: FaceGeometry, rng: np.random.Generator):
    """One or two lines of words across the face: each line 60-100 % of the face width (words are added until it is
    that wide), its ink about 10-18 % of the face height (less when one long word must fit the width)."""
    canvas = np.zeros(shape[:2], np.uint8)
    lines = int(rng.integers(1, 3))
    font = int(HERSHEY[rng.integers(len(HERSHEY))])
    cy = geo.box[1] + rng.uniform(0.35, 0.7) * geo.height
    cx = geo.centre[0] + rng.uniform(-0.08, 0.08) * geo.width
    height = rng.uniform(0.10, 0.18) * geo.height
    ratio = rng.uniform(0.10, 0.2)
    line_gap = 1.5 * height
    for line in range(lines):
        target = rng.uniform(0.6, 1.0) * geo.width
        text = str(rng.choice(WORDS))
        (tw, th), _ = cv2.getTextSize(text, font, 1.0, 1)
        while tw * height / th < target:
            text += " " + str(rng.choice(WORDS))
            (tw, th), _ = cv2.getTextSize(text, font, 1.0, 1)
        scale = min(height / th, 1.1 * target / tw)
        thickness = max(1, int(round(th * scale * ratio)))
        (tw, th), _ = cv2.getTextSize(text, font, scale, thickness)
        y = cy + (line - (lines - 1) / 2) * line_gap
        cv2.putText(canvas, text, (int(round(cx - tw / 2)), int(round(y + th / 2))), font, scale, 255, thickness,
                    cv2.LINE_AA)
    return canvas.astype(np.float32) / 255.0, flat(shape, random_colour(rng))


def paint_one_half(shape, geo: FaceGeometry, rng: np.random.Generator):
    """An ellipse over one eye or one cheek, cut at the mid-line (2 px clear of it) so its mirror twin is visible."""
    side = int(rng.integers(2))
    d = geo.eye_distance
    if rng.random() < 0.5:
        centre, axes = geo.eye(side), (rng.uniform(0.30, 0.40) * d, rng.uniform(0.20, 0.28) * d)
    else:
        centre, axes = geo.landmarks[CHEEKS[side]], (rng.uniform(0.25, 0.33) * d, rng.uniform(0.30, 0.40) * d)
    canvas = np.zeros(shape[:2], np.uint8)
    shift = 4
    c = tuple(int(round(v * (1 << shift))) for v in centre)
    ax = tuple(max(1, int(round(v * (1 << shift)))) for v in axes)
    cv2.ellipse(canvas, c, ax, geo.roll + rng.uniform(-15, 15), 0, 360, 255, -1, cv2.LINE_AA, shift)
    alpha = canvas.astype(np.float32) / 255.0
    distance = geo.midline_side(shape)
    own = np.sign(distance[int(np.clip(centre[1], 0, shape[0] - 1)), int(np.clip(centre[0], 0, shape[1] - 1))]) or 1.0
    alpha[distance * own < 2.0] = 0.0
    return alpha, flat(shape, random_colour(rng))


def paint_centre(shape, geo: FaceGeometry, rng: np.random.Generator):
    side = np.sqrt(rng.uniform(0.22, 0.28) * geo.area)
    cx, cy = geo.centre
    alpha = np.zeros(shape[:2], np.float32)
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    alpha[max(y0, 0):max(y0 + int(round(side)), 0), max(x0, 0):max(x0 + int(round(side)), 0)] = 1.0
    return alpha, flat(shape, random_colour(rng))


def paint_hand(shape, geo: FaceGeometry, rng: np.random.Generator, hands: list[Cutout]):
    """A real hand cutout, its longer side half the face box's longer side, rotated, maybe flipped, on the face."""
    cut = hands[int(rng.integers(len(hands)))]
    colour, alpha = cv2.cvtColor(cut.colour, cv2.COLOR_RGB2BGR), cut.alpha
    if rng.random() < 0.5:
        colour, alpha = colour[:, ::-1], alpha[:, ::-1]
    h, w = alpha.shape
    scale = 0.5 * max(geo.width, geo.height) / max(h, w)
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-180, 180), scale)
    matrix[:, 2] += face_point(geo, rng) - np.array([w / 2, h / 2])
    size = (shape[1], shape[0])
    layer_alpha = cv2.warpAffine(np.ascontiguousarray(alpha), matrix, size, flags=cv2.INTER_LINEAR, borderValue=0)
    layer = cv2.warpAffine(np.ascontiguousarray(colour), matrix, size, flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    return layer_alpha.astype(np.float32), layer.astype(np.float32)


def paint(protocol: str, shape, geo: FaceGeometry, rng: np.random.Generator, hands: list[Cutout] | None = None):
    if protocol == "rect":
        return paint_rect(shape, geo, rng)
    if protocol == "text":
        return paint_text(shape, geo, rng)
    if protocol == "one-half":
        return paint_one_half(shape, geo, rng)
    if protocol == "centre":
        return paint_centre(shape, geo, rng)
    if protocol == "hand":
        if not hands:
            raise UnveilError("the hand protocol needs hand cutouts")
        return paint_hand(shape, geo, rng, hands)
    raise UnveilError(f"unknown protocol {protocol!r} (choose {', '.join(PROTOCOLS)})")


# ------------------------------------------------------------------------------------------------------ metrics


def coverage(changed: np.ndarray, hole: np.ndarray) -> float:
    """Share of hole pixels that changed; nan for an empty hole."""
    n = int(hole.sum())
    return float((changed & hole).sum() / n) if n else float("nan")


def on_target(changed: np.ndarray, occluder: np.ndarray, px: int = ON_TARGET_PX) -> float:
    """Share of changed pixels within `px` pixels of the occluder; nan when nothing changed."""
    n = int(changed.sum())
    return float((changed & dilate(occluder, px)).sum() / n) if n else float("nan")


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB, peak 255) over the pixels of `mask`, all channels; inf when they are equal, nan for an empty mask."""
    if not mask.any():
        return float("nan")
    mse = float(np.mean((a[mask].astype(np.float64) - b[mask].astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim_map(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """(H, W) SSIM (Gaussian window, the usual constants), averaged over the colour channels."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda x: cv2.GaussianBlur(x, (11, 11), sigma)  # noqa: E731
    maps = []
    for ch in range(a.shape[2]):
        x, y = a[..., ch], b[..., ch]
        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
        maps.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2)))
    return np.mean(maps, axis=0)


def masked_ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    return float(ssim_map(a, b)[mask].mean()) if mask.any() else float("nan")


def sharpness(image: np.ndarray, mask: np.ndarray) -> float:
    """Sum over `mask` of the squared Sobel gradient magnitude of the grey image."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32) if image.ndim == 3 else image.astype(np.float32)
    gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    return float((gx * gx + gy * gy)[mask].sum())


def sharpness_ratio(output: np.ndarray, clean: np.ndarray, mask: np.ndarray) -> float:
    """How much detail the fill has compared with the clean face there (1 = as much, < 1 = smoother)."""
    reference = sharpness(clean, mask)
    return sharpness(output, mask) / reference if reference > 0 else float("nan")


def telea(occluded: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """OpenCV Telea given the true hole (dilated 1 px), radius 3."""
    return cv2.inpaint(occluded, dilate(hole, 1).astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)


def mean(values) -> float | None:
    v = [x for x in values if x is not None and not np.isnan(x)]
    return float(np.mean(v)) if v else None


def median(values) -> float | None:
    v = [x for x in values if x is not None and not np.isnan(x)]
    return float(np.median(v)) if v else None


# --------------------------------------------------------------------------------------------- (a) synthetic


def score_sample(clean: np.ndarray, occluded: np.ndarray, occluder: np.ndarray, hole: np.ndarray, frame
                 ) -> tuple[dict, np.ndarray, np.ndarray]:
    """(every per-photo number, the Telea fill, the replaced map) for one occluded photo and the pipeline's frame."""
    output = frame.result()
    changed = changed_pixels(occluded, output)
    replaced = frame.replaced > 0 if frame.replaced is not None else np.zeros(hole.shape, bool)
    inpainted = telea(occluded, hole)
    return {
        "hole_px": int(hole.sum()),
        "untouched": frame.replaced is None and frame.output is None,
        "coverage": coverage(changed, hole),
        "on_target": on_target(changed, occluder),
        "replaced_on_target": on_target(replaced, occluder),
        "psnr": min(masked_psnr(output, clean, hole), PSNR_CAP),
        "psnr_telea": min(masked_psnr(inpainted, clean, hole), PSNR_CAP),
        "psnr_occluded": min(masked_psnr(occluded, clean, hole), PSNR_CAP),
        "ssim": masked_ssim(output, clean, hole),
        "ssim_telea": masked_ssim(inpainted, clean, hole),
        "sharpness": sharpness_ratio(output, clean, hole),
        "sharpness_telea": sharpness_ratio(inpainted, clean, hole),
    }, inpainted, replaced


def summarise(samples: list[dict]) -> dict:
    return {
        "samples": len(samples),
        "untouched_share": mean([float(s["untouched"]) for s in samples]),
        "coverage": mean([s["coverage"] for s in samples]),
        "on_target": mean([s["on_target"] for s in samples]),
        "replaced_on_target": mean([s["replaced_on_target"] for s in samples]),
        "psnr": mean([s["psnr"] for s in samples]),
        "psnr_telea": mean([s["psnr_telea"] for s in samples]),
        "psnr_occluded": mean([s["psnr_occluded"] for s in samples]),
        "ssim": mean([s["ssim"] for s in samples]),
        "ssim_telea": mean([s["ssim_telea"] for s in samples]),
        "sharpness": median([s["sharpness"] for s in samples]),
        "sharpness_telea": median([s["sharpness_telea"] for s in samples]),
    }


def targets_met(protocol: str, s: dict) -> dict[str, bool | None]:
    """Each target that applies to the protocol -> met (None when the number is missing)."""
    def check(value, ok):
        return None if value is None else bool(ok(value))

    met: dict[str, bool | None] = {}
    if protocol in TARGETS["coverage"]:
        need = TARGETS["coverage"][protocol]
        met[f"coverage ≥ {pct(need, 0)}"] = check(s["coverage"], lambda v: v >= need)
    met[f"on target ≥ {pct(TARGETS['on_target'], 0)}"] = check(s["on_target"], lambda v: v >= TARGETS["on_target"])
    if protocol in TARGETS["psnr_over_telea"]:
        d = TARGETS["psnr_over_telea"][protocol]
        gap = None if s["psnr"] is None or s["psnr_telea"] is None else s["psnr"] - s["psnr_telea"]
        met[f"PSNR ≥ Telea{d:+.0f} dB"] = check(gap, lambda v: v >= d)
    met[f"sharpness ≥ {TARGETS['sharpness']}"] = check(s["sharpness"], lambda v: v >= TARGETS["sharpness"])
    if protocol == "hand":
        need = TARGETS["hand_replaced_on_target"]
        met[f"replaced pixels on the hand ≥ {pct(need, 0)}"] = check(s["replaced_on_target"], lambda v: v >= need)
    return met


def evaluate_synthetic(paths: list[Path], config, protocols=PROTOCOLS, hands: list[Cutout] | None = None,
                       out_dir: Path | None = None, seed: int = 0, progress: bool = True) -> dict:
    pipeline = build_pipeline(config)
    detector = pipeline.stage("detect").detector
    samples: dict[str, list[dict]] = {p: [] for p in protocols}
    skipped = {p: 0 for p in protocols}
    examples: dict[str, list[np.ndarray]] = {p: [] for p in protocols}
    no_face = unreadable = 0
    t0 = time.perf_counter()
    try:
        for i, path in enumerate(tqdm(paths, desc="occluded photos", unit="photo", disable=not progress, dynamic_ncols=True)):
            clean = read_image(path)
            if clean is None:
                unreadable += 1
                continue
            faces = detector.detect(clean)
            if not faces:
                no_face += 1
                continue
            geo = face_geometry(faces[0].landmarks, clean.shape)
            for k, protocol in enumerate(protocols):
                rng = np.random.default_rng([seed, i, k])
                alpha, colour = paint(protocol, clean.shape, geo, rng, hands)
                occluder = alpha > OCCLUDER_ALPHA
                hole = occluder & geo.oval
                if hole.sum() < MIN_HOLE:
                    skipped[protocol] += 1
                    continue
                occluded = composite(clean, alpha, colour, threshold=VISIBLE_ALPHA)[0]
                frame = run_frame(pipeline, occluded, i)
                scores, inpainted, replaced = score_sample(clean, occluded, occluder, hole, frame)
                samples[protocol].append({"photo": path.name, **scores})
                if len(examples[protocol]) < EXAMPLES_PER_PROTOCOL:
                    ys, xs = face_crop(clean, geo.landmarks)
                    cells = [clean, occluded, frame.result(), inpainted, tint(frame.result(), replaced)]
                    examples[protocol].append(np.hstack([fit_cell(c[ys, xs], 128) for c in cells]))
    finally:
        pipeline.close()
    wall = time.perf_counter() - t0
    rows = [r for p in protocols for r in examples[p]]
    grid = save_grid(rows, Path(out_dir) / "synthetic_examples.jpg", columns=1) if out_dir is not None else None
    per_protocol = {}
    for p in protocols:
        s = summarise(samples[p])
        per_protocol[p] = {**s, "skipped_small_hole": skipped[p], "targets": targets_met(p, s)}
    n = sum(len(v) for v in samples.values())
    return {"photos": len(paths), "unreadable": unreadable, "no_face_in_clean_photo": no_face,
            "per_protocol": per_protocol, "grid": grid.name if grid else None,
            "s_per_sample": wall / max(n, 1), "wall_s": wall,
            "samples": {p: samples[p] for p in protocols}}


# ----------------------------------------------------------------------------------------------- (b) masked


def evaluate_masked(paths: list[Path], config, out_dir: Path | None = None, grid_count: int = 12,
                    progress: bool = True) -> dict:
    pipeline = build_pipeline(config)
    per_photo: list[dict] = []
    rows: list[np.ndarray] = []
    no_face = unreadable = 0
    t0 = time.perf_counter()
    try:
        for i, path in enumerate(tqdm(paths, desc="masked faces", unit="photo", disable=not progress, dynamic_ncols=True)):
            image = read_image(path)
            if image is None:
                unreadable += 1
                continue
            frame = run_frame(pipeline, image, i)
            if not frame.faces or frame.faces[0].landmarks is None:
                no_face += 1
                continue
            landmarks = frame.faces[0].landmarks
            replaced = frame.replaced > 0 if frame.replaced is not None else np.zeros(image.shape[:2], bool)
            lower, band = lower_face(landmarks, image.shape), eye_band(landmarks, image.shape)
            per_photo.append({"photo": path.name, "lower_face": coverage(replaced, lower),
                              "eye_band": coverage(replaced, band), "replaced_px": int(replaced.sum())})
            if len(rows) < grid_count:
                ys, xs = face_crop(image, landmarks)
                output = frame.result()
                rows.append(np.hstack([fit_cell(c[ys, xs]) for c in (image, output, tint(output, replaced))]))
    finally:
        pipeline.close()
    wall = time.perf_counter() - t0
    grid = save_grid(rows, Path(out_dir) / "masked_faces.jpg", columns=2) if out_dir is not None else None
    lower_values = [p["lower_face"] for p in per_photo]
    band_values = [p["eye_band"] for p in per_photo]
    summary = {
        "photos": len(paths), "unreadable": unreadable, "no_face": no_face, "with_face": len(per_photo),
        "lower_face_covered": mean(lower_values),
        "photos_lower_face_at_least_80": mean([float(v >= TARGETS["lower_face"]) for v in lower_values if not np.isnan(v)]),
        "eye_band_touched": mean(band_values),
        "photos_eye_band_over_2": mean([float(v > TARGETS["eye_band"]) for v in band_values if not np.isnan(v)]),
        "untouched_share": mean([float(p["replaced_px"] == 0) for p in per_photo]),
        "grid": grid.name if grid else None, "s_per_photo": wall / max(len(paths), 1), "wall_s": wall,
        "per_photo": per_photo,
    }
    lc, eb = summary["lower_face_covered"], summary["eye_band_touched"]
    summary["targets"] = {"lower face ≥ 80 %": None if lc is None else lc >= TARGETS["lower_face"],
                          "eye band ≤ 2 %": None if eb is None else eb <= TARGETS["eye_band"]}
    return summary


# ------------------------------------------------------------------------------------------------------ report


def db(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def met_cell(targets: dict[str, bool | None]) -> str:
    return "; ".join(f"{name}: {'–' if ok is None else ('yes' if ok else '**no**')}" for name, ok in targets.items())


def markdown(report: dict) -> str:
    parts = ["# Photo quality", "", f"Models: {report['mode']}. *Visibly changed* = a channel moved by more than 12 "
             "levels; *replaced* = changed at all (`frame.replaced`). PSNR/SSIM are in the true hole (occluder ∩ clean "
             "face oval) against the clean photo; Telea is given that hole. Sharpness: median over photos.", ""]
    syn = report.get("synthetic")
    if syn:
        rows = []
        for p, s in syn["per_protocol"].items():
            gap = None if s["psnr"] is None or s["psnr_telea"] is None else s["psnr"] - s["psnr_telea"]
            rows.append([p, s["samples"], pct(s["untouched_share"]), pct(s["coverage"]), pct(s["on_target"]),
                         pct(s["replaced_on_target"]), db(s["psnr"]), db(s["psnr_telea"]),
                         "–" if gap is None else f"{gap:+.2f}", num(s["ssim"]), num(s["ssim_telea"]),
                         num(s["sharpness"], 2), num(s["sharpness_telea"], 2), met_cell(s["targets"])])
        parts += ["## Synthetic occluders on clean validation photos", "",
                  f"{syn['photos']} photos from {syn['source']}; {syn['no_face_in_clean_photo']} without a face in the "
                  f"clean photo. Examples: `{syn['grid']}` (clean | occluded | Unveil | Telea | replaced tinted).", "",
                  markdown_table(["protocol", "n", "untouched", "coverage", "on target", "replaced on target",
                                  "PSNR Unveil", "PSNR Telea", "Δ dB", "SSIM Unveil", "SSIM Telea",
                                  "sharpness Unveil", "sharpness Telea", "targets met"], rows), ""]
    masked = report.get("masked")
    if masked:
        m = masked
        parts += ["## Real masked faces (no ground truth)", "",
                  f"{m['photos']} photos, {m['with_face']} with a face. Grid: `{m['grid']}` (input | output | replaced "
                  "tinted).", "",
                  markdown_table(["with face", "lower face replaced (mean)", "target", "photos ≥ 80 %",
                                  "eye band touched (mean)", "target", "photos > 2 %", "untouched"],
                                 [[m["with_face"], pct(m["lower_face_covered"]),
                                   "≥ 80 % " + verdict(m["targets"]["lower face ≥ 80 %"]),
                                   pct(m["photos_lower_face_at_least_80"]), pct(m["eye_band_touched"], 2),
                                   "≤ 2 % " + verdict(m["targets"]["eye band ≤ 2 %"]),
                                   pct(m["photos_eye_band_over_2"]), pct(m["untouched_share"])]]), ""]
    parts += [f"Wall time: {report['wall_s']:.0f} s.", ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photos", default=str(DEFAULT_PHOTOS), help="folder of clean CelebA photos")
    p.add_argument("--index", default=str(DEFAULT_INDEX), help="cache index whose `val` files are the photos to use")
    p.add_argument("--limit", type=int, default=500, help="clean photos to occlude")
    p.add_argument("--protocols", default=",".join(PROTOCOLS), help=f"comma list of {', '.join(PROTOCOLS)}")
    p.add_argument("--occluders", default=str(DEFAULT_OCCLUDERS), help="real occluders (the hand protocol)")
    p.add_argument("--masked", default=str(DEFAULT_MASKED), help="folder of real masked-face photos")
    p.add_argument("--masked-limit", type=int, default=None, help="at most this many masked faces (default all)")
    p.add_argument("--no-synthetic", action="store_true")
    p.add_argument("--no-masked", action="store_true")
    p.add_argument("--model", action="append", default=[], help="model name or .onnx (repeatable; default: shipped)")
    p.add_argument("--provider", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=str(ROOT / "docs" / "photo_quality"))
    args = p.parse_args(argv)

    protocols = tuple(x.strip() for x in args.protocols.split(",") if x.strip())
    unknown = [x for x in protocols if x not in PROTOCOLS]
    if unknown:
        print(f"error: unknown protocol(s) {', '.join(unknown)} (choose {', '.join(PROTOCOLS)})", file=sys.stderr)
        return 2
    photos_dir, masked_dir, occluders_dir = Path(args.photos), Path(args.masked), Path(args.occluders)
    if not args.no_synthetic and not photos_dir.is_dir():
        print(f"error: clean photo folder not found: {photos_dir}", file=sys.stderr)
        return 2
    if not args.no_synthetic and "hand" in protocols and not occluders_dir.is_dir():
        print(f"error: occluder folder not found: {occluders_dir} (needed by the hand protocol)", file=sys.stderr)
        return 2
    if not args.no_masked and not masked_dir.is_dir():
        print(f"error: masked-face folder not found: {masked_dir}", file=sys.stderr)
        return 2
    out = Path(args.out)
    config = pipeline_config(tuple(args.model), args.provider, args.threads, photo=True)
    t0 = time.perf_counter()
    try:
        probe = build_pipeline(config)
        report: dict = {"mode": probe.mode, "models": list(args.model) or "shipped default"}
        probe.close()
        out.mkdir(parents=True, exist_ok=True)
        if not args.no_synthetic:
            hands = None
            if "hand" in protocols:
                hands = [c for c in split_cutouts(load_cutouts(occluders_dir))[1] if c.kind == "hand"]
                if not hands:
                    print(f"error: no held-out hand cutouts under {occluders_dir}", file=sys.stderr)
                    return 2
            paths, origin = validation_photos(photos_dir, Path(args.index), args.limit, args.seed)
            if not paths:
                print(f"error: no photos found in {photos_dir}", file=sys.stderr)
                return 2
            syn = evaluate_synthetic(paths, config, protocols, hands, out, args.seed)
            # every sample's numbers, per protocol
            (out / "samples.json").write_text(json.dumps(jsonable(syn.pop("samples")), indent=1))
            report["synthetic"] = {"source": origin, "held_out_hands": len(hands or []), "samples_file": "samples.json",
                                   **syn}
        if not args.no_masked:
            masked_paths = list_images(masked_dir)[:args.masked_limit]
            if not masked_paths:
                print(f"error: no photos in {masked_dir}", file=sys.stderr)
                return 2
            report["masked"] = evaluate_masked(masked_paths, config, out)
    except UnveilError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report["wall_s"] = time.perf_counter() - t0
    return write_report(out, report, markdown)


if __name__ == "__main__":
    sys.exit(main())
