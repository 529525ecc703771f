"""The live policy without a window: run a camera / stream / file for N seconds, report fps and latency."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from realtime.frame import Frame
from realtime.pipeline import Pipeline, PipelineConfig, build_pipeline
from realtime.scheduler import RunStats, paced, percentile, run_stages
from realtime.sources import open_source


def models_in_use(pipeline: Pipeline) -> list[str]:
    """The models the pipeline runs (the finder, then the network filler if any), by contract name."""
    return [runner.contract.name or Path(runner.path).stem for runner in pipeline.runners]


class StatusLine:
    """Turns the running stats into one line per interval: fps and latency over the last interval, drops so far."""

    def __init__(self, pipeline: Pipeline, write: Callable[[str], None]) -> None:
        self.suffix = f"mode {pipeline.mode}, model {' + '.join(models_in_use(pipeline))}"
        self.write = write
        self._frames = self._latencies = 0
        self._wall_s = 0.0

    def __call__(self, stats: RunStats) -> None:
        frames, latencies, wall_s = stats.frames, stats.latency_ms[self._latencies:], stats.wall_s
        fps = (frames - self._frames) / (wall_s - self._wall_s) if wall_s > self._wall_s else 0.0
        self._frames, self._latencies, self._wall_s = frames, self._latencies + len(latencies), wall_s
        self.write(f"live: {fps:.1f} fps, latency p50 {percentile(latencies, 50):.0f} ms / p95 "
                   f"{percentile(latencies, 95):.0f} ms, dropped {stats.dropped}, {self.suffix}")


def run_live(source_spec: str, config: PipelineConfig, seconds: float | None = 10.0, width: int | None = None,
             height: int | None = None, fps: float | None = None, on_frame: Callable[[Frame], None] | None = None,
             stop: threading.Event | None = None, status: Callable[[str], None] | None = None,
             status_every_s: float = 1.0) -> dict:
    """Newest-frame-wins processing; a file is played at its own frame rate, as a camera would deliver it.
    `status`, if given, receives a one-line report (fps, latency, drops, mode, model) every `status_every_s`."""
    stop = stop or threading.Event()
    source = open_source(int(source_spec) if str(source_spec).isdigit() else source_spec, width=width, height=height, fps=fps)
    try:
        pipeline = build_pipeline(config, live=True)
    except BaseException:
        source.close()
        raise
    frames = source if source.is_live else paced(source, float(source.info.fps) if source.info else 25.0, stop)
    timer = None
    if seconds:
        timer = threading.Timer(seconds, stop.set)
        timer.daemon = True
        timer.start()
    t0 = time.perf_counter()
    try:
        stats = run_stages(frames, pipeline.stages, on_frame or (lambda frame: None), policy="live", stop=stop,
                           progress=StatusLine(pipeline, status) if status else None, progress_every_s=status_every_s)
    finally:
        if timer:
            timer.cancel()
        source.close()
        pipeline.close()
    summary = stats.summary()
    summary["source"] = str(source_spec)
    summary["mode"] = pipeline.mode
    summary["models"] = models_in_use(pipeline)
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    return summary
