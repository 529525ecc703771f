"""Line plots drawn with OpenCV (no plotting library needed at runtime or in CI)."""
from __future__ import annotations

import math

import cv2
import numpy as np

PLOT_COLOURS = {"off": (40, 40, 220), "on": (200, 120, 20)}  # BGR: red = smoothing off, blue = on
COMPARE_COLOURS = [(40, 160, 40), (160, 40, 160), (0, 140, 220), (120, 120, 120)]  # green, purple, orange, grey


def draw_series_plot(series: dict[str, list[float | None]], title: str, y_label: str,
                     size: tuple[int, int] = (760, 250), x_values: list[float] | None = None,
                     x_label: str = "frame") -> np.ndarray:
    """A line plot (uint8 BGR) of one metric, one line per variant, drawn with OpenCV. The i-th value of every line
    is at x = i (frames), or at x_values[i] (e.g. training steps) when given."""
    w, h = size
    left, right, top, bottom = 70, 20, 40, 40
    compared = [name for name in series if name not in PLOT_COLOURS]
    columns = 2 if compared else len(series)           # compared models have long names: two legend entries a row
    legend_rows = -(-len(series) // max(columns, 1))
    top += 14 * (legend_rows - 1)
    img = np.full((h, w, 3), 255, np.uint8)
    values = [v for line in series.values() for v in line if v is not None and math.isfinite(v)]
    n = max((len(line) for line in series.values()), default=0)
    cv2.putText(img, title, (left, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    if not values or n < 2:
        cv2.putText(img, "no data", (w // 2 - 40, h // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        return img
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        lo, hi = lo - 1.0, hi + 1.0
    pw, ph = w - left - right, h - top - bottom

    xs = np.arange(n, dtype=np.float64) if x_values is None else np.asarray(x_values, np.float64)
    x_lo, x_span = float(xs[0]), max(float(xs[-1] - xs[0]), 1e-9)

    def to_px(i: int, v: float) -> tuple[int, int]:
        return int(left + pw * (xs[i] - x_lo) / x_span), int(top + ph * (1.0 - (v - lo) / (hi - lo)))

    cv2.rectangle(img, (left, top), (left + pw, top + ph), (0, 0, 0), 1)
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        y = to_px(0, v)[1]
        cv2.line(img, (left, y), (left + pw, y), (225, 225, 225), 1)
        cv2.putText(img, f"{v:.3g}", (5, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for k in range(0, n, max(1, n // 10)):
        x = to_px(k, lo)[0]
        cv2.putText(img, f"{xs[k]:.6g}", (x - 8, top + ph + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1,
                    cv2.LINE_AA)
    cv2.putText(img, x_label, (left + pw // 2 - 20, h - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, y_label, (left + 5, top + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (90, 90, 90), 1, cv2.LINE_AA)
    entry = 120 if not compared else (pw - 10) // columns
    for j, (name, line) in enumerate(series.items()):
        colour = PLOT_COLOURS.get(name) or COMPARE_COLOURS[compared.index(name) % len(COMPARE_COLOURS)]
        points = [to_px(i, v) if v is not None and math.isfinite(v) else None for i, v in enumerate(line)]
        for p, q in zip(points, points[1:]):
            if p is not None and q is not None:
                cv2.line(img, p, q, colour, 1, cv2.LINE_8)  # aliased lines: few colours, small PNGs
        lx = left + pw - entry * columns + entry * (j % columns)
        ly = 30 + 14 * (j // columns)
        cv2.line(img, (lx, ly), (lx + 25, ly), colour, 2)
        label = f"smooth {name}" if name in PLOT_COLOURS else name
        cv2.putText(img, label, (lx + 28, ly + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return img
