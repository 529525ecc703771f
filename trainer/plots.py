"""What a run leaves to look at: metrics.jsonl (one JSON record per line), the curves drawn from it (metrics.png,
with OpenCV: matplotlib is not a dependency) and grids of validation samples."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch

from trainer.evaluation.plots import draw_series_plot


def append_record(path: Path, record: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def _to_bgr_uint8(image: torch.Tensor) -> np.ndarray:
    """3xHxW (or 1xHxW) float [0,1] RGB -> HxWx3 uint8 BGR."""
    arr = image.detach().float().clamp(0, 1).cpu().numpy()
    if arr.shape[0] == 1:
        arr = np.repeat(arr, 3, axis=0)
    return np.ascontiguousarray((arr.transpose(1, 2, 0)[..., ::-1] * 255.0 + 0.5).astype(np.uint8))


def sample_grid(batch: dict, out: dict, rows: int) -> np.ndarray:
    """One row per sample: input | predicted mask (or the given mask) | output | target."""
    mask = out["mask"] if "mask" in out else batch["mask"]
    lines = []
    for i in range(min(rows, batch["input"].shape[0])):
        cells = [batch["input"][i], mask[i], out["image"][i], batch["target"][i]]
        lines.append(np.concatenate([_to_bgr_uint8(c) for c in cells], axis=1))
    grid = np.concatenate(lines, axis=0)
    zoom = max(1, 96 // batch["input"].shape[-1])  # small crops are enlarged (nearest) so they can be looked at
    return cv2.resize(grid, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST) if zoom > 1 else grid


def draw_curves(series: dict[str, list[tuple[int, float]]], size: tuple[int, int] = (900, 300)) -> np.ndarray:
    """One panel per named series of (step, value), each with its own y range."""
    panels = []
    for name, points in series.items():
        if points:
            steps, values = zip(*points)
            panels.append(draw_series_plot({name: list(values)}, f"{name} (last {values[-1]:.4g})", "", size,
                                           x_values=list(steps), x_label="step"))
    return np.vstack(panels) if panels else np.full((size[1], size[0], 3), 255, np.uint8)


def read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_metrics(metrics_path: Path, png_path: Path) -> None:
    records = read_metrics(metrics_path)
    series: dict[str, list[tuple[int, float]]] = {"train loss": []}
    for rec in records:
        if rec["kind"] == "train":
            series["train loss"].append((rec["step"], rec["loss"]))
        elif rec["kind"] == "val":
            for key in ("psnr", "psnr_hole", "ssim", "mask_iou", "temporal"):
                if key in rec:
                    series.setdefault(f"val {key}", []).append((rec["step"], rec[key]))
    cv2.imwrite(str(png_path), draw_curves(series))


def keep_metrics_until(path: Path, step: int) -> None:
    """On resume, drop records an interrupted run wrote after its last checkpoint (they will be written again)."""
    records = [r for r in read_metrics(path) if r["step"] <= step]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
