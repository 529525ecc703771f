"""`unveil process`: a video file, an image or a folder of images, offline."""
from __future__ import annotations

import argparse

from realtime.options import add_pipeline_arguments, pipeline_config_from_args


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="video file, image, or folder of images")
    p.add_argument("-o", "--output", required=True,
                   help="output file (same kind as the input) or folder (for a folder of images)")
    p.add_argument("--save-masks", metavar="DIR", help="write the mask of replaced pixels per frame/image as PNG")
    p.add_argument("--stats", metavar="PATH", help="write frames, faces, failed frames, fps and stage latencies as JSON")
    p.add_argument("--export-faces", metavar="DIR",
                   help="write each track's completed face per frame as an aligned crop (DIR/track_NNN/FRAME.png) at the "
                        "network's output size; small faces come from a completion_super_resolution model if loaded")
    p.add_argument("--single-pass", action="store_true",
                   help="read a video once (memory from the past only; default: two passes, the whole clip)")
    add_pipeline_arguments(p)


def run(args: argparse.Namespace) -> int:
    from realtime.process import process

    summary = process(args.input, args.output, pipeline_config_from_args(args), save_masks=args.save_masks,
                      stats_path=args.stats, export_faces=args.export_faces, two_pass=not args.single_pass)
    failed, warnings = summary["frames_failed_to_decode"], summary["decoder_warnings"]
    fps = summary.get("fps_overall", summary["fps"])
    print(f"wrote {args.output}: {summary['frames']} frames, {summary['faces']} faces, {fps:.1f} fps"
          + (" (two passes)" if summary.get("passes") == 2 else "")
          + (f"; {len(failed)} frames failed to decode: {failed[:20]}{' ...' if len(failed) > 20 else ''}" if failed else "")
          + (f"; the decoders warned {warnings} time{'s' if warnings != 1 else ''} about damaged data in the input"
             if warnings else ""))
    return 0
