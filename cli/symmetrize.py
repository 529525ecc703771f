"""`unveil symmetrize`: a perfectly symmetric version of every face of a photo, a folder of photos or a video, and a
per-face asymmetry score (docs/symmetrize.md).

Methods: `landmark` (the mesh baseline: mid-line from the mirror map, each half mirrored about it through a
piecewise-affine warp, realtime/symmetrize.py) and `vae` (a `symmetrization` network trained by `unveil train-vae`).
The output is the input with each face replaced by its symmetric version (a video keeps its frames, timestamps and
audio), or with --crops a folder of aligned symmetric face crops. The scores go to a CSV or JSON file: per face the
shape asymmetry (mean distance between each mesh point and its mirrored twin, reflected about the mid-line, in % of
the inter-ocular distance), the appearance asymmetry, the mid-line's tilt, and the output's own mirror error.
"""
from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass
from pathlib import Path

from realtime.errors import UnveilError

COLUMNS = ("source", "frame", "face", "method", "asymmetry", "appearance", "tilt_deg", "mirror_error", "change")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="image, folder of images, or video file")
    p.add_argument("-o", "--output", required=True,
                   help="output of the same kind as the input (image, folder, video), or a folder with --crops")
    p.add_argument("--method", default="landmark", choices=["landmark", "vae"],
                   help="landmark: the mesh baseline (default); vae: a symmetrization network (--model)")
    p.add_argument("--model", default=None, metavar="NAME|PATH",
                   help="the symmetrization model for --method vae (default: the shipped symmetry-vae, if shipped)")
    p.add_argument("--crops", action="store_true", help="write aligned crops of the symmetric faces into the OUTPUT folder")
    p.add_argument("--mode", default="blend", choices=["blend", "left", "right"],
                   help="landmark method: average the two mirrored halves (default), or keep the image-left/right half")
    p.add_argument("--scores", default=None, metavar="PATH.csv|PATH.json",
                   help="per-face scores (default: OUTPUT's name + .asymmetry.csv, or OUTPUT/asymmetry.csv for a folder)")
    p.add_argument("--heatmap", default=None, metavar="PATH",
                   help="also write the input with the asymmetry heat-map over each face (same kind as the input)")
    p.add_argument("--max-faces", type=int, default=4, help="faces per frame, best first")
    p.add_argument("--provider", default="cpu", choices=["auto", "cpu", "cuda", "tensorrt"])
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


@dataclass
class Outputs:
    """Where results go: the frame sink (or the crops folder) and the optional heat-map sink."""
    sink: object | None
    crops: Path | None
    heatmap: object | None


def default_scores_path(output: Path, to_folder: bool) -> Path:
    return output / "asymmetry.csv" if to_folder else output.with_name(output.name + ".asymmetry.csv")


def open_sink(path: Path, source, input_spec: str, is_video: bool, is_folder: bool):
    from realtime.sinks import ImageSink, VideoFileSink

    if is_video:
        return VideoFileSink(path, source.info, audio_from=input_spec)
    return ImageSink(path, to_folder=is_folder)


def write_scores(path: Path, rows: list[dict], summary: dict) -> None:
    import os

    temporary = path.with_name(f".{path.name}.unveil-partial")
    try:
        if path.suffix.lower() == ".json":
            temporary.write_text(json.dumps({"summary": summary, "faces": rows}, indent=1))
        else:
            with temporary.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=COLUMNS)
                writer.writeheader()
                writer.writerows(rows)
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise UnveilError(f"cannot write {path} ({error.strerror or error})") from None


def run(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    from realtime.detect import DetectorConfig, FaceDetector
    from realtime.sinks import check_writable, frame_file_stem, write_image_atomically
    from realtime.sources import CameraSource, VideoFileSource, open_source
    from realtime.symmetrize import FrameSymmetrizer, asymmetry_heatmap

    output = Path(args.output)
    if output.resolve() == Path(args.input).resolve():
        raise UnveilError(f"output {output} is the input; choose another name (the input is never overwritten)")
    if args.max_faces < 1:
        raise UnveilError(f"--max-faces must be at least 1, got {args.max_faces}")
    scores_path = Path(args.scores) if args.scores else None
    if scores_path is not None and scores_path.suffix.lower() not in (".csv", ".json"):
        raise UnveilError(f"--scores {scores_path} must end in .csv or .json")
    source = open_source(args.input)
    sinks = Outputs(None, None, None)
    try:
        if isinstance(source, CameraSource):
            raise UnveilError(f"{args.input} is a camera; symmetrize reads photos, folders and video files")
        is_video = isinstance(source, VideoFileSource)
        is_folder = not is_video and Path(args.input).is_dir()
        symmetrizer = FrameSymmetrizer(args.method, args.model, args.provider, args.mode)  # a bad model: nothing written
        if args.crops:
            check_writable(output, folder=True)
            output.mkdir(exist_ok=True)
            sinks.crops = output
        else:
            sinks.sink = open_sink(output, source, args.input, is_video, is_folder)
        if args.heatmap:
            sinks.heatmap = open_sink(Path(args.heatmap), source, args.input, is_video, is_folder)
        scores_path = scores_path or default_scores_path(output, args.crops or is_folder)
        check_writable(scores_path)
    except BaseException:
        for sink in (sinks.sink, sinks.heatmap):
            if sink is not None:
                sink.abort()
        source.close()
        raise
    total = source.info.frame_count if is_video and source.info else len(getattr(source, "paths", ())) or None
    bar = tqdm(total=total, unit="frame" if is_video else "image", desc=Path(args.input).name, dynamic_ncols=True,
               disable=args.no_progress or not (is_video or is_folder))
    rows: list[dict] = []
    frames = faces_seen = 0
    try:
        with FaceDetector(DetectorConfig(max_faces=args.max_faces)) as detector:
            for frame in source:
                faces = [] if frame.decode_failed else detector.detect(frame.image)
                points = [face.landmarks for face in faces]
                output_image, reports = symmetrizer(frame.image, points) if points else (frame.image, [])
                frame.output = output_image
                name = frame.source_name or Path(args.input).name
                for report in reports:
                    rows.append({"source": name, "frame": frame.index, "face": report.face, "method": args.method,
                                 "asymmetry": round(report.shape, 3), "appearance": round(report.appearance, 2),
                                 "tilt_deg": round(report.tilt_deg, 2), "mirror_error": round(report.mirror_error, 2),
                                 "change": round(report.change, 2)})
                    if sinks.crops is not None:
                        write_image_atomically(sinks.crops / f"{frame_file_stem(frame)}_face{report.face}.png",
                                               report.crop)
                if sinks.sink is not None:
                    sinks.sink.write(frame)
                if sinks.heatmap is not None:
                    results = [report.symmetry for report in reports]
                    heat = type(frame)(index=frame.index, image=frame.image, pts=frame.pts, time_base=frame.time_base,
                                       source_name=frame.source_name)
                    heat.output = asymmetry_heatmap(frame.image, results) if results else frame.image
                    sinks.heatmap.write(heat)
                frames += 1
                faces_seen += len(reports)
                bar.update(1)
        for sink in (sinks.sink, sinks.heatmap):
            if sink is not None:
                sink.close()
    except BaseException:
        for sink in (sinks.sink, sinks.heatmap):
            if sink is not None:
                sink.abort()
        raise
    finally:
        bar.close()
        source.close()
        symmetrizer.close()
    scores = np.array([r["asymmetry"] for r in rows], np.float64)
    summary = {"input": str(args.input), "output": str(output), "method": args.method, "frames": frames,
               "faces": faces_seen, "mean_asymmetry": float(scores.mean()) if len(scores) else None,
               "failed_frames": list(source.failed_frames), "decoder_warnings": source.library_warnings}
    write_scores(scores_path, rows, summary)
    warnings = summary["decoder_warnings"]
    print(f"wrote {output}: {frames} {'frames' if is_video else 'images'}, {faces_seen} faces"
          + (f", mean asymmetry {summary['mean_asymmetry']:.2f} % of the inter-ocular distance" if len(scores) else
             " (no face found)") + f"; scores in {scores_path}"
          + (f"; the decoders warned {warnings} time{'s' if warnings != 1 else ''} about damaged data in the input"
             if warnings else ""))
    return 0
