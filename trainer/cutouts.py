"""Real occluders cut out with their exact masks (hands, cups, bottles, phones, face masks), pasted over aligned faces.

The folder layout is ../shared/data/occluders (see its README): `hands_tabletop`, `hands_egocentric` and
`objects_coco` hold `images/` and `masks/`; `face_mask_templates` holds RGBA PNGs. Each connected object becomes
one `Cutout` (colour + alpha, tight box). Torch-free: training and evaluation both use it.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from realtime.errors import UnveilError

MIN_PIXELS = 600          # smaller objects are too few pixels to look like anything once scaled onto a face
LABEL_ALPHA = 0.5         # a pixel is labelled occluded where the occluder's alpha is above this (no invisible fringes)


@dataclass(frozen=True)
class Cutout:
    colour: np.ndarray    # (h, w, 3) uint8 RGB
    alpha: np.ndarray     # (h, w) float32 in [0, 1]
    kind: str             # hand | object | face_mask
    source: str           # file it came from, for held-out splits and reports


def _tight(colour: np.ndarray, alpha: np.ndarray, kind: str, source: str, pad: int = 2) -> Cutout | None:
    ys, xs = np.nonzero(alpha > LABEL_ALPHA)
    if len(ys) < MIN_PIXELS:
        return None
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, alpha.shape[0])
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, alpha.shape[1])
    return Cutout(np.ascontiguousarray(colour[y0:y1, x0:x1]), np.ascontiguousarray(alpha[y0:y1, x0:x1]), kind, source)


def _components(colour: np.ndarray, binary: np.ndarray, kind: str, source: str, keep: int = 2) -> list[Cutout]:
    """The `keep` largest connected objects of a binary mask, each with a softened one-pixel edge."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    order = np.argsort(-stats[1:, cv2.CC_STAT_AREA])[:keep] + 1
    out = []
    for label in order:
        alpha = cv2.GaussianBlur((labels == label).astype(np.float32), (0, 0), 0.7)
        cut = _tight(colour, alpha, kind, source)
        if cut is not None:
            out.append(cut)
    return out


def _read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UnveilError(f"cannot read occluder image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_cutouts(root: str | Path) -> list[Cutout]:
    """Every usable real occluder under `root`, in a fixed order (so held-out splits are reproducible)."""
    root = Path(root)
    if not root.is_dir():
        raise UnveilError(f"occluder folder not found: {root}")
    cutouts: list[Cutout] = []
    for folder in ("hands_tabletop", "hands_egocentric"):
        for mask_path in sorted((root / folder / "masks").glob("*.png")):
            images = list((root / folder / "images").glob(mask_path.stem + ".*"))
            if not images:
                continue
            colour = _read_rgb(images[0])
            mask = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
            binary = mask > (127 if mask.max() > 1 else 0)
            cutouts += _components(colour, binary, "hand", f"{folder}/{mask_path.stem}")
    manifest = root / "objects_coco" / "manifest.csv"
    if manifest.is_file():
        with manifest.open() as fh:
            for row in csv.DictReader(fh):
                mask = cv2.imread(str(root / "objects_coco" / "masks" / row["mask_file"]), cv2.IMREAD_GRAYSCALE)
                if mask is None:
                    continue
                colour = _read_rgb(root / "objects_coco" / "images" / row["image"])
                cutouts += _components(colour, mask > 127, "object", f"objects_coco/{row['mask_file']}", keep=1)
    for path in sorted((root / "face_mask_templates").glob("*.png")):
        rgba = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if rgba is None or rgba.ndim != 3 or rgba.shape[2] != 4:
            continue
        cut = _tight(cv2.cvtColor(rgba[..., :3], cv2.COLOR_BGR2RGB), rgba[..., 3].astype(np.float32) / 255.0,
                     "face_mask", f"face_mask_templates/{path.stem}")
        if cut is not None:
            cutouts.append(cut)
    if not cutouts:
        raise UnveilError(f"no usable occluders under {root}")
    return cutouts


def split_cutouts(cutouts: list[Cutout], every: int = 5) -> tuple[list[Cutout], list[Cutout]]:
    """(train, held out): every `every`-th source file is held out with all its objects (at least one file)."""
    sources = sorted({c.source for c in cutouts})
    held = {s for i, s in enumerate(sources) if i % every == every - 1} or set(sources[-1:])
    return [c for c in cutouts if c.source not in held], [c for c in cutouts if c.source in held]


def place_cutout(image: np.ndarray, cutout: Cutout, rng: np.random.Generator, points5: np.ndarray,
                 natural: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Paste a cutout over an aligned face crop (RGB); returns (occluded image, float32 mask, 1 = occluded).

    Face masks sit on the lower face (nose to chin), scaled to the face's width; hands and objects are scaled to
    a third to most of the face and centred anywhere on it, some reaching in from the edge, rotated and flipped.
    `natural`: lit, coloured and blurred like the frame (`naturalise`).
    """
    size = image.shape[0]
    eyes = (points5[0] + points5[1]) / 2
    mouth = (points5[3] + points5[4]) / 2
    eye_distance = float(np.linalg.norm(points5[1] - points5[0]))
    h, w = cutout.alpha.shape
    if cutout.kind == "face_mask":
        scale = rng.uniform(2.0, 2.5) * eye_distance / w
        centre = np.array([(points5[0][0] + points5[1][0]) / 2, mouth[1] - 0.1 * (mouth[1] - eyes[1])])
        centre = centre + rng.normal(0, 0.03 * size, 2)
        angle = rng.uniform(-8, 8)
    else:
        scale = rng.uniform(0.35, 1.0) * size / max(h, w)
        face_centre = np.array([eyes[0], (eyes[1] + mouth[1]) / 2])
        spread = np.array([1.3 * eye_distance, 1.4 * float(mouth[1] - eyes[1])])
        centre = face_centre + rng.uniform(-1, 1, 2) * spread
        angle = rng.uniform(-180, 180)
    colour, alpha = cutout.colour, cutout.alpha
    if rng.random() < 0.5:
        colour, alpha = colour[:, ::-1], alpha[:, ::-1]
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
    matrix[:, 2] += centre - np.array([w / 2, h / 2])
    layer_alpha = cv2.warpAffine(np.ascontiguousarray(alpha), matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
    layer = cv2.warpAffine(np.ascontiguousarray(colour), matrix, (size, size), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    if natural:
        layer, layer_alpha = naturalise(layer, layer_alpha, image, points5, cutout.kind, rng)
    else:
        layer *= rng.uniform(0.75, 1.2)  # the occluder's lighting differs from the photo's
    a = layer_alpha[..., None]
    out = np.clip(np.rint(image.astype(np.float32) * (1 - a) + layer * a), 0, 255).astype(np.uint8)
    mask = (layer_alpha > LABEL_ALPHA).astype(np.float32)
    out[layer_alpha <= 0.02] = image[layer_alpha <= 0.02]
    return out, mask


def face_skin(image: np.ndarray, points5: np.ndarray) -> np.ndarray:
    """(N, 3) float32 Lab pixels of the cheeks and nose (between the eyes and the mouth) of an RGB crop."""
    eyes_y = (points5[0][1] + points5[1][1]) / 2
    mouth_y = (points5[3][1] + points5[4][1]) / 2
    x0, x1 = int(points5[0][0]), int(points5[1][0])
    y0, y1 = int(eyes_y + 0.25 * (mouth_y - eyes_y)), int(mouth_y - 0.2 * (mouth_y - eyes_y))
    patch = image[max(y0, 0):max(y1, y0 + 1), max(x0, 0):max(x1, x0 + 1)]
    if patch.size == 0:
        patch = image
    return cv2.cvtColor(np.ascontiguousarray(patch), cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float32)


def naturalise(layer: np.ndarray, alpha: np.ndarray, image: np.ndarray, points5: np.ndarray, kind: str,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An occluder layer (float RGB) as the frame's camera would show it: a hand takes on most of the face's own
    skin colour and light (the hand in front of a face is that person's, under the same light, so colour alone
    must not give it away), every occluder gets a light gradient across it, and some are defocused or
    motion-blurred like a hand near the camera (alpha blurred with it)."""
    h, w = layer.shape[:2]
    inside = alpha > 0.5
    if inside.sum() >= 16:
        lab = cv2.cvtColor(np.clip(layer, 0, 255).astype(np.uint8), cv2.COLOR_RGB2LAB).astype(np.float32)
        skin = face_skin(image, points5)
        own_mean, own_std = lab[inside].mean(0), lab[inside].std(0) + 1e-3
        skin_mean, skin_std = skin.mean(0), skin.std(0) + 1e-3
        strength = rng.uniform(0.6, 1.0) if kind == "hand" else rng.uniform(0.0, 0.5)
        target_mean = own_mean + strength * (skin_mean - own_mean)
        target_std = own_std * (1 - strength) + strength * np.clip(skin_std, 0.5 * own_std, 1.5 * own_std)
        lab = (lab - own_mean) / own_std * target_std + target_mean
        layer = cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32) / max(h, w) - 0.5
    angle = rng.uniform(0, 2 * np.pi)
    shade = 1.0 + rng.uniform(0.0, 0.6) * (np.cos(angle) * xx + np.sin(angle) * yy)
    layer = layer * (shade * rng.uniform(0.8, 1.15))[..., None]
    draw = rng.random()
    if draw < 0.3:  # defocus: the occluder is nearer the camera than the face
        sigma = rng.uniform(0.6, 2.0)
        layer, alpha = cv2.GaussianBlur(layer, (0, 0), sigma), cv2.GaussianBlur(alpha, (0, 0), sigma)
    elif draw < 0.45:  # motion blur along a random direction
        length = int(rng.integers(3, 9))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2] = 1.0 / length
        kernel = cv2.warpAffine(kernel, cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5),
                                                                rng.uniform(0, 180), 1.0), (length, length))
        kernel /= max(kernel.sum(), 1e-6)
        layer, alpha = cv2.filter2D(layer, -1, kernel), cv2.filter2D(alpha, -1, kernel)
    return layer, alpha
