"""`unveil bench`: throughput and per-stage latency of the offline pipeline on a clip (no output written)."""
from __future__ import annotations

import itertools
import os

from tqdm import tqdm

from realtime.pipeline import PipelineConfig, build_pipeline
from realtime.scheduler import run_stages
from realtime.sources import open_source


# CPU milliseconds per frame each stage may spend so that 2 cores keep 30 fps (about 66 CPU-ms a frame in all, with
# decode and encode); docs/realtime_budget.md says why each is what it is.
BUDGET_CPU_MS = {"detect": 15.0, "track": 1.0, "align": 1.0, "hands": 5.0, "find": 10.0, "fill": 15.0, "blend": 2.0}
FRAME_BUDGET_CPU_MS = 66.0


def budget_report(summary: dict) -> dict:
    """Per stage: wall p50/p95, CPU-ms per frame, the budget and whether it is over; the stages over budget."""
    stages = {}
    for name, wall in summary["stage_ms"].items():
        cpu = summary.get("stage_cpu_ms", {}).get(name)
        budget = BUDGET_CPU_MS.get(name)
        stages[name] = {"wall_p50_ms": wall["p50"], "wall_p95_ms": wall["p95"], "cpu_ms": cpu, "budget_cpu_ms": budget,
                        "over": bool(cpu is not None and budget is not None and cpu > budget)}
    total = summary.get("cpu_ms_per_frame", 0.0)
    return {"stages": stages, "over_budget": [n for n, v in stages.items() if v["over"]],
            "cpu_ms_per_frame": total, "frame_budget_cpu_ms": FRAME_BUDGET_CPU_MS,
            "frame_over_budget": total > FRAME_BUDGET_CPU_MS}


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
    summary["budget"] = budget_report(summary)
    return summary


def format_table(summary: dict) -> str:
    lines = [
        f"{summary['input']}  {summary['resolution']}  model={summary['model']} ({summary['crop_size']}px)  "
        f"mode={summary.get('mode', '?')}  "
        f"provider={summary['provider']}  cores={summary['cpu_cores']}",
        f"frames={summary['frames']}  faces={summary['faces']}  throughput={summary['fps']:.1f} fps  "
        f"latency p50={summary['latency_ms']['p50']:.1f} ms  p95={summary['latency_ms']['p95']:.1f} ms",
        f"{'stage':<10} {'p50 ms':>8} {'p95 ms':>8} {'CPU ms':>8} {'budget':>8}",
    ]
    budget = summary.get("budget") or budget_report(summary)
    for name, v in budget["stages"].items():
        cpu = f"{v['cpu_ms']:.2f}" if v["cpu_ms"] is not None else "-"
        limit = f"{v['budget_cpu_ms']:.0f}" if v["budget_cpu_ms"] is not None else "-"
        lines.append(f"{name:<10} {v['wall_p50_ms']:>8.2f} {v['wall_p95_ms']:>8.2f} {cpu:>8} {limit:>8}"
                     + ("  OVER" if v["over"] else ""))
    lines.append(f"process CPU {budget['cpu_ms_per_frame']:.1f} ms per frame (budget {budget['frame_budget_cpu_ms']:.0f}"
                 f"{', OVER' if budget['frame_over_budget'] else ''}); over budget: "
                 f"{', '.join(budget['over_budget']) or 'none'}")
    return "\n".join(lines)
