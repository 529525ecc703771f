"""A tiny prepared face dataset for trainer tests: variants of the public-domain astronaut portrait (shifted,
rotated, scaled, mirrored, re-lit) run through the real `unveil prepare` path (mediapipe detection + alignment)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from trainer.prepare import PrepareConfig, prepare


def astronaut_variants(astronaut_bgr: np.ndarray, count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w = astronaut_bgr.shape[:2]
    variants = []
    for k in range(count):
        angle, scale = rng.uniform(-12, 12), rng.uniform(0.85, 1.1)
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
        matrix[:, 2] += rng.uniform(-25, 25, size=2)
        image = cv2.warpAffine(astronaut_bgr, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE)
        gain, bias = rng.uniform(0.75, 1.2, size=3), rng.uniform(-20, 20)
        image = np.clip(image.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
        variants.append(image[:, ::-1].copy() if k % 2 else image)
    return variants


def make_face_dataset(folder: Path, astronaut_bgr: np.ndarray, crop_size: int = 32, count: int = 8,
                      val_fraction: float = 0.25) -> Path:
    """Write `count` variant photos and prepare them into `folder / "faces"`; returns the dataset folder."""
    images = folder / "photos"
    images.mkdir(parents=True, exist_ok=True)
    for k, image in enumerate(astronaut_variants(astronaut_bgr, count)):
        cv2.imwrite(str(images / f"face_{k:02d}.png"), image)
    out = folder / "faces"
    prepare(images, out, PrepareConfig(crop_size=crop_size, val_fraction=val_fraction, quality=95), progress=False)
    return out
