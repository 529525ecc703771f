"""`unveil bench`: throughput and per-stage latency of the offline pipeline on a clip (no output written)."""
from __future__ import annotations

import itertools
import os

from tqdm import tqdm

from realtime.pipeline import PipelineConfig, build_pipeline
from realtime.scheduler import run_stages
from realtime.sources import open_source


def bench(input_spec: str, config: PipelineConfig, max_frames: int = 300) -> dict:
    source = open_source(input_spec)
    pipeline = build_pipeline(config)
    total = min(max_frames, source.info.frame_count) if source.info and source.info.frame_count else max_frames
    bar = tqdm(total=total, unit="frame", desc="bench", dynamic_ncols=True)
    try:
        stats = run_stages(itertools.islice(source, max_frames), pipeline.stages, lambda f: bar.update(1), policy="offline")
    finally:
        bar.close()
        source.close()
        pipeline.close()
    summary = stats.summary()
    info = source.info
    summary.update({
        "input": str(input_spec),
        "resolution": f"{info.width}x{info.height}" if info else "",
        "model": pipeline.finder.contract.name or pipeline.finder.path.name,
        "network_model": (pipeline.network.contract.name or pipeline.network.path.name) if pipeline.network else None,
        "mode": pipeline.mode,
        "crop_size": pipeline.finder.contract.crop_size,
        "provider": pipeline.finder.provider.providers[0],
        "filled_pixels": pipeline.stage("fill").filled_pixels(),
        "memory_mib": pipeline.stage("fill").memory_bytes() / 2**20,
        "cpu_cores": os.cpu_count(),
    })
    return summary


def format_table(summary: dict) -> str:
    lines = [
        f"{summary['input']}  {summary['resolution']}  model={summary['model']} ({summary['crop_size']}px)  "
        f"mode={summary.get('mode', '?')}  "
        f"provider={summary['provider']}  cores={summary['cpu_cores']}",
        f"frames={summary['frames']}  faces={summary['faces']}  throughput={summary['fps']:.1f} fps  "
        f"latency p50={summary['latency_ms']['p50']:.1f} ms  p95={summary['latency_ms']['p95']:.1f} ms",
        f"{'stage':<10} {'p50 ms':>8} {'p95 ms':>8}",
    ]
    for name, v in summary["stage_ms"].items():
        lines.append(f"{name:<10} {v['p50']:>8.2f} {v['p95']:>8.2f}")
    return "\n".join(lines)
