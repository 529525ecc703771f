"""`unveil bench`: throughput and per-stage latency on a clip."""
from __future__ import annotations

import argparse
import json

from realtime.options import add_pipeline_arguments, pipeline_config_from_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="video file (or image / folder of images) to measure on")
    p.add_argument("--frames", type=int, default=300, help="frames to measure at most")
    p.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    add_pipeline_arguments(p)


def run(args: argparse.Namespace) -> int:
    from realtime.bench import bench, format_table

    summary = bench(args.input, pipeline_config_from_args(args), max_frames=args.frames)
    print(format_table(summary))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(summary, fh, indent=2)
    return 0
