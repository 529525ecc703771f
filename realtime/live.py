"""The live policy without a window: run a camera / stream / file for N seconds, report fps and latency."""
from __future__ import annotations

import threading
import time
from typing import Callable

from realtime.frame import Frame
from realtime.pipeline import PipelineConfig, build_pipeline
from realtime.scheduler import paced, run_stages
from realtime.sources import open_source


def run_live(source_spec: str, config: PipelineConfig, seconds: float | None = 10.0, width: int | None = None,
             height: int | None = None, fps: float | None = None, on_frame: Callable[[Frame], None] | None = None,
             stop: threading.Event | None = None) -> dict:
    """Newest-frame-wins processing; a file is played at its own frame rate, as a camera would deliver it."""
    stop = stop or threading.Event()
    source = open_source(int(source_spec) if str(source_spec).isdigit() else source_spec, width=width, height=height, fps=fps)
    pipeline = build_pipeline(config, live=True)
    frames = source if source.is_live else paced(source, float(source.info.fps) if source.info else 25.0, stop)
    timer = None
    if seconds:
        timer = threading.Timer(seconds, stop.set)
        timer.daemon = True
        timer.start()
    t0 = time.perf_counter()
    try:
        stats = run_stages(frames, pipeline.stages, on_frame or (lambda frame: None), policy="live", stop=stop)
    finally:
        if timer:
            timer.cancel()
        source.close()
        pipeline.close()
    summary = stats.summary()
    summary["source"] = str(source_spec)
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    return summary
