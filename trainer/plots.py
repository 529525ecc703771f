"""What a run leaves to look at: metrics.jsonl (one JSON record per line), the curves drawn from it (metrics.png,
with OpenCV: matplotlib is not a dependency) and grids of validation samples."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch


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
    """Plot of each named series (one panel each, own y range) with OpenCV: matplotlib is not a dependency."""
    width, panel_h = size
    names = [n for n in series if series[n]]
    canvas = np.full((max(1, len(names)) * panel_h, width, 3), 255, np.uint8)
    colours = [(180, 80, 20), (30, 120, 220), (40, 160, 40), (160, 40, 160), (20, 20, 200), (120, 120, 0)]
    left, right, top, bottom = 70, 20, 28, 30
    for k, name in enumerate(names):
        points = np.array(series[name], np.float64)
        y0 = k * panel_h
        x_lo, x_hi = points[:, 0].min(), max(points[:, 0].max(), points[:, 0].min() + 1)
        v_lo, v_hi = points[:, 1].min(), points[:, 1].max()
        if v_hi - v_lo < 1e-12:
            v_lo, v_hi = v_lo - 0.5, v_hi + 0.5
        px = left + (points[:, 0] - x_lo) / (x_hi - x_lo) * (width - left - right)
        py = y0 + top + (v_hi - points[:, 1]) / (v_hi - v_lo) * (panel_h - top - bottom)
        cv2.rectangle(canvas, (left, y0 + top), (width - right, y0 + panel_h - bottom), (200, 200, 200), 1)
        pts = np.stack([px, py], 1).round().astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [pts], False, colours[k % len(colours)], 2, cv2.LINE_AA)
        font = cv2.FONT_HERSHEY_SIMPLEX
        cv2.putText(canvas, f"{name} (last {points[-1, 1]:.4g})", (left, y0 + 20), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(canvas, f"{v_hi:.4g}", (4, y0 + top + 10), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(canvas, f"{v_lo:.4g}", (4, y0 + panel_h - bottom), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(canvas, f"step {int(x_lo)}", (left, y0 + panel_h - 8), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(canvas, f"{int(x_hi)}", (width - right - 50, y0 + panel_h - 8), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


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
