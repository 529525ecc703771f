"""Display statistics over a sliding window: fps, capture-to-display latency (p50/p95) and per-stage times."""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from realtime.frame import Frame


@dataclass(frozen=True)
class StatsSnapshot:
    fps: float
    latency_p50_ms: float
    latency_p95_ms: float
    stage_ms: dict[str, float]    # stage name -> median milliseconds
    frames: int                   # frames in the window


class DisplayStats:
    def __init__(self, window: int = 120) -> None:
        self.shown_at: deque[float] = deque(maxlen=window)
        self.latency_ms: deque[float] = deque(maxlen=window)
        self.stage_ms: dict[str, deque[float]] = {}
        self.window = window

    def reset(self) -> None:
        self.shown_at.clear()
        self.latency_ms.clear()
        self.stage_ms.clear()

    def on_display(self, frame: Frame, now: float) -> None:
        self.shown_at.append(now)
        self.latency_ms.append((now - frame.captured_at) * 1000.0)
        for name, ms in frame.timings.items():
            self.stage_ms.setdefault(name, deque(maxlen=self.window)).append(ms)

    def snapshot(self) -> StatsSnapshot:
        fps = 0.0
        if len(self.shown_at) >= 2 and self.shown_at[-1] > self.shown_at[0]:
            fps = (len(self.shown_at) - 1) / (self.shown_at[-1] - self.shown_at[0])
        p50, p95 = (np.percentile(self.latency_ms, [50, 95]) if self.latency_ms else (0.0, 0.0))
        stages = {name: float(np.median(v)) for name, v in self.stage_ms.items() if v}
        return StatsSnapshot(fps, float(p50), float(p95), stages, len(self.shown_at))


def format_stage_times(stage_ms: dict[str, float]) -> str:
    return "  ".join(f"{name} {ms:.1f}" for name, ms in stage_ms.items()) + (" ms" if stage_ms else "")
