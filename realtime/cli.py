"""The `unveil` command. Runtime commands are defined here; trainer commands are imported only when used,
so a runtime-only install (no torch) still runs process / live / bench / demo."""
from __future__ import annotations

import __future__
import argparse
import ast
import importlib
import importlib.util
import json
import logging
import os
import sys
from dataclasses import replace
from typing import Callable

from realtime.errors import UnveilError
from realtime.choices import NETWORK_FILLERS, PROVIDERS

# command -> module that provides add_arguments(parser) and run(args) -> int
EXTERNAL_COMMANDS = {
    "prepare": ("trainer.prepare", "align the faces of an image folder into a compact training dataset"),
    "train": ("trainer.train", "train a network from a JSON config"),
    "train-segmenter": ("trainer.train_segmenter", "train, calibrate and export the occlusion segmenter"),
    "export": ("exporters.onnx_export", "export a checkpoint to ONNX with the model contract and a parity check"),
    "eval": ("trainer.evaluate", "evaluate an ONNX model on a prepared dataset against baselines"),
    "eval-symmetry": ("trainer.evaluate_symmetry", "symmetry network ablation (blind / RecNet / SymmFCNet / blind+symmetry)"),
    "temporal-eval": ("realtime.temporal_eval", "measure temporal stability on real clips with moving occluders"),
}


def add_pipeline_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", action="append", default=[], metavar="NAME|PATH",
                   help="shipped model name or .onnx file; repeat to give a finder (occlusion_mask or blind_completion) "
                        "and a symmetry_completion filler (default: occlusion-lite + symmetry-lite)")
    p.add_argument("--network", default="auto", choices=list(NETWORK_FILLERS),
                   help="which network paints what memory and the mirrored half cannot: auto (default: the symmetry "
                        "model if loaded, else a blind finder's own fill), symmetry, blind, or none (inpainting only)")
    p.add_argument("--reference", metavar="PHOTO", help="a clean photo of the person: seeds the face memory")
    p.add_argument("--threshold", type=float, metavar="P",
                   help="finder probability that counts as covered (default: the model contract's calibrated value)")
    p.add_argument("--no-hands", action="store_true", help="do not use mediapipe Hands as occlusion evidence")
    p.add_argument("--no-memory", action="store_true", help="do not fill from the face seen in earlier frames")
    p.add_argument("--provider", default="auto", choices=list(PROVIDERS),
                   help="onnxruntime execution provider (default auto: TensorRT, then CUDA, then CPU, as installed)")
    p.add_argument("--device-id", type=int, default=0, help="GPU index for cuda / tensorrt (default 0)")
    p.add_argument("--threads", type=int, default=1,
                   help="onnxruntime intra-op threads (default 1: the stages already run in parallel; 0 = onnxruntime chooses)")
    p.add_argument("--no-temporal", action="store_true",
                   help="decide every frame on its own: no mask persistence per track, no landmark smoothing")
    p.add_argument("--max-faces", type=int, default=4, help="most faces handled per frame, best detections first (default 4)")


def pipeline_config(args: argparse.Namespace):
    from realtime.detect import DetectorConfig
    from realtime.pipeline import PipelineConfig

    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        raise UnveilError(f"--threshold must be between 0 and 1, got {args.threshold}")
    config = PipelineConfig(models=tuple(args.model), network=args.network, provider=args.provider,
                            device_id=args.device_id, threads=args.threads, reference=args.reference,
                            detector=DetectorConfig(max_faces=args.max_faces))
    config = replace(config, find=replace(config.find, threshold=args.threshold, hands=not args.no_hands),
                     fill=replace(config.fill, memory=replace(config.fill.memory, enabled=not args.no_memory)))
    if args.no_temporal:
        config = replace(config, find=replace(config.find, persist_frames=1), tracker=replace(config.tracker, smooth=False))
    return config


def cmd_process(args: argparse.Namespace) -> int:
    from realtime.process import process

    summary = process(args.input, args.output, pipeline_config(args), save_masks=args.save_masks, stats_path=args.stats)
    failed = summary["frames_failed_to_decode"]
    print(f"wrote {args.output}: {summary['frames']} frames, {summary['faces']} faces, {summary['fps']:.1f} fps"
          + (f"; {len(failed)} frames failed to decode: {failed[:20]}{' ...' if len(failed) > 20 else ''}" if failed else ""))
    return 0


def cmd_live(args: argparse.Namespace) -> int:
    from realtime.live import run_live

    if not args.headless:
        try:
            from gui.app import run_viewer
        except ImportError as exc:
            raise UnveilError(f"the viewer is not available ({exc}); install `unveil[gui]` or use --headless") from None
        return run_viewer(args)
    summary = run_live(args.source, pipeline_config(args), seconds=args.seconds,
                       width=args.width, height=args.height, fps=args.fps,
                       status=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(summary, indent=2))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from realtime.bench import bench, format_table

    summary = bench(args.input, pipeline_config(args), max_frames=args.frames)
    print(format_table(summary))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(summary, fh, indent=2)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from realtime.demo import run_demo

    outputs = run_demo(args.out, pipeline_config(args), frames=args.frames)
    for label, path in outputs.items():
        print(f"{label}: {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="unveil", description="Real-time removal of occlusions from faces.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("process", help="remove occlusions from a video file, an image or a folder of images")
    p.add_argument("input", help="video file, image, or folder of images")
    p.add_argument("-o", "--output", required=True,
                   help="output file (same kind as the input) or folder (for a folder of images)")
    p.add_argument("--save-masks", metavar="DIR", help="write the mask of replaced pixels per frame/image as PNG")
    p.add_argument("--stats", metavar="PATH", help="write frames, faces, failed frames, fps and stage latencies as JSON")
    add_pipeline_arguments(p)
    p.set_defaults(func=cmd_process)

    p = sub.add_parser("live", help="live occlusion removal from a camera, file or stream")
    p.add_argument("--source", default="0", help="camera index, device path, video file or stream URL")
    p.add_argument("--headless", action="store_true",
                   help="no window: a status line every second (fps, latency, drops, mode, models), a JSON summary at the end")
    p.add_argument("--seconds", type=float, default=10.0, help="how long to run headless")
    p.add_argument("--width", type=int, help="camera capture width in pixels (default: the camera's)")
    p.add_argument("--height", type=int, help="camera capture height in pixels (default: the camera's)")
    p.add_argument("--fps", type=float, help="camera capture frame rate (default: the camera's)")
    add_pipeline_arguments(p)
    p.set_defaults(func=cmd_live)

    p = sub.add_parser("bench", help="throughput and per-stage latency on a clip")
    p.add_argument("input", help="video file (or image / folder of images) to measure on")
    p.add_argument("--frames", type=int, default=300, help="frames to measure at most")
    p.add_argument("--json", metavar="PATH", help="also write the numbers as JSON")
    add_pipeline_arguments(p)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("demo", help="make a short clip of a public-domain face with a moving occluder and clean it")
    p.add_argument("-o", "--out", default="unveil-demo", help="output folder")
    p.add_argument("--frames", type=int, default=75, help="length of the clip in frames (default 75)")
    add_pipeline_arguments(p)
    p.set_defaults(func=cmd_demo)

    for name, (module, help_text) in EXTERNAL_COMMANDS.items():
        p = sub.add_parser(name, help=help_text, add_help=False)
        p.set_defaults(func=None, external=module)
    return parser


def external_add_arguments(module_name: str) -> Callable[[argparse.ArgumentParser], None] | None:
    """A trainer command's own add_arguments, read without running its module (whose imports need torch): the
    module-level imports, constants and add_arguments are executed one by one and those that fail are skipped."""
    spec = importlib.util.find_spec(module_name)
    source = spec.loader.get_source(module_name) if spec and spec.loader else None
    if not source:
        return None
    namespace: dict = {"__name__": f"{module_name}:help", "__package__": spec.parent}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign)) or (
                isinstance(node, ast.FunctionDef) and node.name == "add_arguments"):
            code = compile(ast.Module(body=[node], type_ignores=[]), spec.origin or module_name, "exec",
                           flags=__future__.annotations.compiler_flag, dont_inherit=True)
            try:
                exec(code, namespace)  # noqa: S102 - the project's own module, one statement at a time
            except Exception:  # noqa: BLE001 - e.g. `import torch` without torch: the help does not need it
                continue
    return namespace.get("add_arguments")


def print_external_help(command: str, missing: str) -> int:
    """`unveil COMMAND --help` where COMMAND's extras are not installed: its real arguments and what to install."""
    module_name, help_text = EXTERNAL_COMMANDS[command]
    sub = argparse.ArgumentParser(prog=f"unveil {command}", description=help_text, epilog=f"Note: {missing}")
    try:
        add_arguments = external_add_arguments(module_name)
        if add_arguments is not None:
            add_arguments(sub)
    except Exception:  # noqa: BLE001 - the usage line and the note are still worth showing
        sub = argparse.ArgumentParser(prog=f"unveil {command}", description=help_text, epilog=f"Note: {missing}")
    sub.print_help()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    verbose = args.verbose
    if verbose:  # mediapipe's C++ / TFLite log lines too (realtime.detect keeps them off the terminal otherwise)
        os.environ["UNVEIL_NATIVE_LOGS"] = "1"
        os.environ.setdefault("GLOG_minloglevel", "0")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0")
    try:
        if args.func is None:  # trainer / exporter command: its own parser
            try:
                module = importlib.import_module(args.external)
            except ImportError as exc:
                missing = (f"`unveil {args.command}` needs the training extras ({exc.name} is missing): "
                           "pip install 'unveil[train,cpu]' (or 'unveil[train,gpu]')")
                if "-h" in rest or "--help" in rest:
                    return print_external_help(args.command, missing)
                raise UnveilError(missing) from None
            sub = argparse.ArgumentParser(prog=f"unveil {args.command}", description=EXTERNAL_COMMANDS[args.command][1])
            module.add_arguments(sub)
            return module.run(sub.parse_args(rest))
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        return args.func(args)
    except UnveilError as exc:
        if verbose:
            raise
        print(f"unveil: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("unveil: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
