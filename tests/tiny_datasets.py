"""Small prepared datasets written with prepare's own writer (no face detection), for data and eval tests."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from trainer.prepare import LANDMARK_INDICES, DatasetWriter, PrepareConfig, encode_crop, finalize


def write_dataset(out: Path, crops_bgr: list[np.ndarray], points: list[np.ndarray], identities: list[str],
                  val_fraction: float = 0.3) -> Path:
    """A complete dataset of the given crops (one skipped 'no face' file too), split by `identities`."""
    size = crops_bgr[0].shape[0]
    config = PrepareConfig(crop_size=size, val_fraction=val_fraction, seed=0)
    writer = DatasetWriter(out, config)
    names = [f"{i:03d}.jpg" for i in range(len(crops_bgr))]
    for name, crop, pts in zip(names, crops_bgr, points):
        writer.add_face(name, encode_crop(crop, "jpeg", 90), pts)
    writer.add_skip("zz_noface.jpg", "no_face", "no face found")
    writer.close()
    csv = out.parent / f"{out.name}_ids.csv"
    csv.write_text("file,identity\n" + "".join(f"{n},{i}\n" for n, i in zip(names, identities)))
    finalize(out, config, out.parent, csv, writer.records, set(names) | {"zz_noface.jpg"})
    return out


def face_crops(astronaut_bgr: np.ndarray, count: int, size: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """`count` different square views of the astronaut (BGR) and random landmark sets for them."""
    rng = np.random.default_rng(seed)
    crops, points = [], []
    for _ in range(count):
        y, x = rng.integers(0, 200, 2)
        crops.append(cv2.resize(astronaut_bgr[y: y + 300, x: x + 300], (size, size), interpolation=cv2.INTER_AREA))
        points.append((rng.random((len(LANDMARK_INDICES), 2)) * size).astype(np.float32))
    return crops, points
