"""`unveil live`: a camera, file or stream, in the viewer window or headless."""
from __future__ import annotations

import argparse
import json
import sys

from realtime.errors import UnveilError
from realtime.options import add_pipeline_arguments, pipeline_config_from_args

DEFAULT_SOURCE = "0"  # the first camera


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", help=f"camera index, device path, video file or stream URL (default {DEFAULT_SOURCE}; "
                                    "the viewer reopens the last source it showed)")
    p.add_argument("--headless", action="store_true",
                   help="no window: a status line every second (fps, latency, drops, mode, models), a JSON summary at the end")
    p.add_argument("--seconds", type=float, default=10.0, help="how long to run headless")
    p.add_argument("--width", type=int, help="camera capture width in pixels (default: the camera's)")
    p.add_argument("--height", type=int, help="camera capture height in pixels (default: the camera's)")
    p.add_argument("--fps", type=float, help="camera capture frame rate (default: the camera's)")
    add_pipeline_arguments(p)


def viewer_request(args: argparse.Namespace):
    """What the command line asks of the viewer: only what the user gave; the rest keeps the viewer's saved settings."""
    from gui.app import ViewerRequest
    from gui.engine import CameraRequest

    return ViewerRequest(pipeline=pipeline_config_from_args(args), source=args.source, models=tuple(args.model),
                         network=None if args.network == "auto" else args.network, threshold=args.threshold,
                         reference=args.reference, provider=None if args.provider == "auto" else args.provider,
                         temporal=not args.no_temporal, camera=CameraRequest(args.width, args.height, args.fps))


def run(args: argparse.Namespace) -> int:
    if not args.headless:
        try:
            from gui.app import run_viewer
        except ImportError as exc:
            raise UnveilError(f"the viewer is not available ({exc}); install `unveil[gui]` or use --headless") from None
        return run_viewer(viewer_request(args))
    from realtime.live import run_live

    summary = run_live(args.source or DEFAULT_SOURCE, pipeline_config_from_args(args), seconds=args.seconds,
                       width=args.width, height=args.height, fps=args.fps,
                       status=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(summary, indent=2))
    return 0
