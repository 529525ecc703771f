"""Real masked-face photos through the pipeline: a grid of before / predicted mask / after triples, and how much of
the lower face (nose to chin, where a face mask sits) versus the upper face (eyes, brows) the predicted mask covers.

    python -m benchmarks.masked_faces_grid ../shared/data/occluded/face_masks -o docs/models/masked_faces.png
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from realtime.align import template_points
from realtime.frame import Frame
from realtime.pipeline import PipelineConfig, build_pipeline
from realtime.sources import list_images, read_image
from realtime.temporal import TemporalConfig
from realtime.track import TrackerConfig

CELL = 160


def lower_and_upper(crop_size: int, template: str, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """Crop-space masks: lower face (from just above the nose tip to below the mouth) and upper face (eye band)."""
    pts = template_points(crop_size, template, margin)
    lower = np.zeros((crop_size, crop_size), bool)
    upper = np.zeros((crop_size, crop_size), bool)
    x0, x1 = int(pts[0, 0] - 0.1 * crop_size), int(pts[1, 0] + 0.1 * crop_size)
    nose_y, mouth_y, eye_y = pts[2, 1], pts[3:, 1].mean(), pts[:2, 1].mean()
    lower[int(nose_y - 0.05 * crop_size):int(mouth_y + 0.12 * crop_size), x0:x1] = True
    upper[int(eye_y - 0.08 * crop_size):int(eye_y + 0.06 * crop_size), x0:x1] = True
    return lower, upper


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("folder")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--model", action="append", default=[])
    p.add_argument("--count", type=int, default=16)
    args = p.parse_args()
    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"error: {folder} is not a folder of photos", file=sys.stderr)
        return 2
    config = PipelineConfig(models=tuple(args.model), tracker=TrackerConfig(smooth=False),
                            temporal=TemporalConfig(enabled=False))
    pipeline = build_pipeline(config)
    c = pipeline.blind.contract
    lower, upper = lower_and_upper(c.crop_size, c.template, c.margin)
    rows, lower_cov, upper_cov, with_face = [], [], [], 0
    paths = list_images(folder)
    for i, path in enumerate(tqdm(paths, desc="masked faces", unit="photo")):
        image = read_image(path)
        if image is None:
            continue
        frame = Frame(index=i, image=image)
        for stage in pipeline.stages:
            frame = stage.process(frame)
        if not frame.faces:
            continue
        with_face += 1
        mask = frame.faces[0].mask >= 0.5
        lower_cov.append(mask[lower].mean())
        upper_cov.append(mask[upper].mean())
        if len(rows) < args.count:
            face = frame.faces[0]
            x0, y0, x1, y1 = face.box.astype(int)
            pad = int(0.35 * max(x1 - x0, y1 - y0))
            ys, xs = slice(max(y0 - pad, 0), y1 + pad), slice(max(x0 - pad, 0), x1 + pad)
            tint = image.copy()
            if frame.replaced is not None:
                tint[frame.replaced > 0] = (0.4 * tint[frame.replaced > 0] + 0.6 * np.array([255, 0, 255])).astype(np.uint8)
            cells = [cv2.resize(im[ys, xs], (CELL, CELL)) for im in (image, tint, frame.result())]
            rows.append(np.hstack(cells))
    pipeline.close()
    grid = [np.hstack(rows[i:i + 2]) for i in range(0, len(rows) - 1, 2)]
    cv2.imwrite(args.output, np.vstack(grid), [cv2.IMWRITE_JPEG_QUALITY, 85])
    report = {"photos": len(paths), "with_face": with_face,
              "lower_face_covered_mean": round(float(np.mean(lower_cov)), 3),
              "upper_face_covered_mean": round(float(np.mean(upper_cov)), 3),
              "photos_with_half_the_lower_face_covered": round(float(np.mean(np.array(lower_cov) >= 0.5)), 3)}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
