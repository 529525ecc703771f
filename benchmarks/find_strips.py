"""Before/after strips of real clips through the whole offline pipeline (video mode), to look at.

Each clip gives one picture: a row of `--count` frames spread over the clip, each cell the face's surroundings as
input | output | input tinted by the evidence that decided each replaced pixel (segmenter orange, surface change green, hands cyan, both
white, graphic overlay magenta, held grey). Nothing is measured here; it shows what the numbers of do_no_harm and find_sources mean.

    python -m benchmarks.find_strips ../shared/data/videos_more/intel-iot-devkit+sample-videos__asl_gestures__eat.mkv
    python -m benchmarks.find_strips CLIP... --count 6 --out docs/find --model my-finder.onnx
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from benchmarks.do_no_harm import ROOT, face_crop, fit_cell, pipeline_config
from realtime.errors import UnveilError
from realtime.find.evidence_map import EVIDENCE_BGR, evidence_in_frame
from realtime.frame import Frame
from realtime.pipeline import build_pipeline
from realtime.scheduler import run_stages
from realtime.sources import VideoFileSource

CELL = 160


def evidence_tint(image: np.ndarray, codes: np.ndarray | None, strength: float = 0.55) -> np.ndarray:
    out = image.copy()
    if codes is None:
        return out
    where = codes > 0
    out[where] = (out[where] * (1 - strength) + EVIDENCE_BGR[codes[where]] * strength).astype(np.uint8)
    return out


def clip_strip(path: Path, config, count: int) -> tuple[np.ndarray, dict]:
    """(picture, {frames, touched}) for one clip: `count` evenly spaced frames, each input | output | evidence."""
    pipeline = build_pipeline(config)
    source = VideoFileSource(path)
    total = source.info.frame_count if source.info and source.info.frame_count else None
    wanted = set(np.linspace(0, (total or count) - 1, count).round().astype(int).tolist())
    cells, seen = [], {"frames": 0, "touched": 0}

    def sink(frame: Frame) -> None:
        seen["frames"] += 1
        seen["touched"] += bool(frame.replaced is not None and frame.replaced.any())
        if frame.index not in wanted:
            return
        landmarks = frame.faces[0].landmarks if frame.faces else None
        ys, xs = face_crop(frame.image, landmarks, pad=0.45) if landmarks is not None else (slice(None), slice(None))
        panes = [frame.image, frame.result(), evidence_tint(frame.image, evidence_in_frame(frame))]
        cell = np.vstack([fit_cell(p[ys, xs], CELL) for p in panes])
        cv2.putText(cell, f"#{frame.index}", (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        cells.append(cell)

    try:
        run_stages(iter(source), pipeline.stages, sink, policy="offline")
    finally:
        source.close()
        pipeline.close()
    return (np.hstack(cells) if cells else np.zeros((3 * CELL, CELL, 3), np.uint8)), seen


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clips", nargs="+")
    p.add_argument("--count", type=int, default=6, help="frames per strip")
    p.add_argument("--model", action="append", default=[], help="model name or .onnx (repeatable; default: shipped)")
    p.add_argument("--out", default=str(ROOT / "docs" / "find"))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = pipeline_config(tuple(args.model))
    for clip in args.clips:
        path = Path(clip)
        if not path.is_file():
            print(f"error: clip not found: {path}", file=sys.stderr)
            return 2
        try:
            picture, seen = clip_strip(path, config, args.count)
        except UnveilError as error:
            print(f"error: {path.name}: {error}", file=sys.stderr)
            return 2
        target = out / f"strip_{'__'.join(path.stem.split('__')[-2:])}.jpg"
        cv2.imwrite(str(target), picture, [cv2.IMWRITE_JPEG_QUALITY, 88])
        print(f"{target}: {seen['touched']}/{seen['frames']} frames touched")
    return 0


if __name__ == "__main__":
    sys.exit(main())
