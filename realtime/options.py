"""The pipeline's command-line options, and the PipelineConfig they describe. Shared by every command that runs
the pipeline (process, live, bench, demo); the viewer receives the resulting config, never the arguments."""
from __future__ import annotations

import argparse
from dataclasses import replace

from realtime.choices import NETWORK_FILLERS, PROVIDERS
from realtime.detect import DetectorConfig
from realtime.errors import UnveilError
from realtime.fill import FillConfig
from realtime.pipeline import PipelineConfig


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
    p.add_argument("--full-range", action="store_true",
                   help="mediapipe's full-range face detector (finds faces down to ~35 px wide; default: short range)")
    p.add_argument("--small-face-eyes", type=float, default=None, metavar="PX",
                   help="with a completion_super_resolution model (--model): faces whose eyes are closer than PX frame "
                        f"pixels are painted by it (default {FillConfig().small_face_eyes:g})")


def pipeline_config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """The PipelineConfig that the options of `add_pipeline_arguments` describe."""
    if args.threshold is not None and not 0.0 < args.threshold < 1.0:
        raise UnveilError(f"--threshold must be between 0 and 1, got {args.threshold}")
    config = PipelineConfig(models=tuple(args.model), network=args.network, provider=args.provider,
                            device_id=args.device_id, threads=args.threads, reference=args.reference,
                            detector=DetectorConfig(max_faces=args.max_faces,
                                                    model_selection=1 if getattr(args, "full_range", False) else 0))
    config = replace(config, find=replace(config.find, threshold=args.threshold, hands=not args.no_hands),
                     fill=replace(config.fill, memory=replace(config.fill.memory, enabled=not args.no_memory)))
    if getattr(args, "small_face_eyes", None) is not None:
        if args.small_face_eyes < 0:
            raise UnveilError(f"--small-face-eyes must be >= 0, got {args.small_face_eyes}")
        config = replace(config, fill=replace(config.fill, small_face_eyes=args.small_face_eyes))
    if args.no_temporal:
        config = replace(config, find=replace(config.find, persist_frames=1), tracker=replace(config.tracker, smooth=False))
    return config
