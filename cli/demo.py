"""`unveil demo`: a short clip of a public-domain face with a moving occluder, cleaned."""
from __future__ import annotations

import argparse

from realtime.options import add_pipeline_arguments, pipeline_config_from_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--out", default="unveil-demo", help="output folder")
    p.add_argument("--frames", type=int, default=75, help="length of the clip in frames (default 75)")
    add_pipeline_arguments(p)


def run(args: argparse.Namespace) -> int:
    from realtime.demo import run_demo

    outputs = run_demo(args.out, pipeline_config_from_args(args), frames=args.frames)
    for label, path in outputs.items():
        print(f"{label}: {path}")
    return 0
