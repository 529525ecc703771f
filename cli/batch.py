"""`unveil batch`: many videos, one task each, locally in worker processes or on a Ray cluster; resumable."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from realtime.errors import UnveilError
from realtime.options import add_pipeline_arguments, pipeline_config_from_args

GPU_PROVIDERS = ("cuda", "tensorrt")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="video file, folder (its video files, not recursive), glob, or list file (@FILE or *.txt: "
                        "one path, folder or glob per line, # comments)")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR",
                   help="output folder: OUT_DIR/<name of the input>, and OUT_DIR/manifest.jsonl (one line per attempt)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="videos processed at once (default: the number of cores, at most the number of videos; "
                        "with --ray: the most tasks in flight, default no limit, and the CPUs of --ray local)")
    p.add_argument("--ray", metavar="auto|local|ADDRESS",
                   help="run the videos as Ray tasks: auto = the running cluster, local = start a private Ray on this "
                        "machine, or the head's HOST:6379 (needs pip install 'unveil[cluster]')")
    p.add_argument("--gpus-per-task", type=float, metavar="G",
                   help="GPUs each Ray task asks for (default 1 with --provider cuda or tensorrt, else 0)")
    p.add_argument("--retries", type=int, default=1, metavar="K",
                   help="extra attempts a failed video gets, counted across runs in the manifest (default 1); "
                        "a crashed worker is retried in the same run, a bad input on the next run")
    p.add_argument("--save-masks", action="store_true", help="write each video's masks to OUT_DIR/<stem>.masks/")
    p.add_argument("--stats", action="store_true", help="write each video's stats to OUT_DIR/<stem>.stats.json")
    p.add_argument("--single-pass", action="store_true",
                   help="read each video once (memory from the past only; default: two passes, the whole clip)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (the summary table is still printed)")
    add_pipeline_arguments(p)


def run(args: argparse.Namespace) -> int:
    from realtime.batch import BatchSettings, LocalPool, RayExecutor, discover_inputs, run_batch, summary_table

    check_numbers(args)
    if args.ray:
        from realtime.batch import import_ray
        import_ray()  # a missing extra is reported before any file is looked at
    inputs = discover_inputs(args.inputs)
    config = pipeline_config_from_args(args)  # --threads defaults to 1: one onnxruntime thread per worker
    settings = BatchSettings(Path(args.output), config, retries=args.retries, save_masks=args.save_masks, stats=args.stats,
                             two_pass=not args.single_pass)
    if args.ray:
        gpus = args.gpus_per_task if args.gpus_per_task is not None else float(args.provider in GPU_PROVIDERS)
        local_cpus = args.workers or available_cores()
        factory = lambda _n: RayExecutor(args.ray, local_cpus, gpus)  # noqa: E731
        in_flight = args.workers or len(inputs)
    else:
        in_flight = min(args.workers or available_cores(), len(inputs))
        factory = LocalPool
    results = run_batch(inputs, settings, factory, max_in_flight=in_flight, show_progress=not args.no_progress)
    print(summary_table(results))
    print(f"manifest: {settings.manifest}")
    return 1 if any(r.status == "failed" for r in results) else 0


def available_cores() -> int:
    """The cores this process may run on (a container's or taskset's limit), not the machine's total."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def check_numbers(args: argparse.Namespace) -> None:
    if args.workers is not None and args.workers < 1:
        raise UnveilError(f"--workers must be at least 1, got {args.workers}")
    if args.retries < 0:
        raise UnveilError(f"--retries must be 0 or more, got {args.retries}")
    if args.gpus_per_task is not None and args.gpus_per_task < 0:
        raise UnveilError(f"--gpus-per-task must be 0 or more, got {args.gpus_per_task}")
