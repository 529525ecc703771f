"""A real clip with a moving synthetic occluder over the face, written as a video file, for `unveil bench`,
`unveil live --source` and `unveil process` timings with an occluder present (issue #23).

The occluder (trainer.occluders.moving: bar, text, hand, mask) is placed from the landmarks found on each clean
frame, smoothed as benchmarks.video_fill does, and is there from `--from-s` seconds on.

    python -m benchmarks.occluded_clip CLIP -o /tmp/hand.mp4 --kind hand --frames 300 --size 640x480
"""
from __future__ import annotations

import argparse
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from benchmarks.video_fill import clean_landmarks, read_frames, smoothed_anchors
from realtime.detect import DetectorConfig, FaceDetector
from trainer.occluders.layers import composite
from trainer.occluders.moving import OCCLUDER_KINDS, paint_occluder


def fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """`image` scaled to cover width x height and centre-cropped (the face stays in the middle)."""
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    resized = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    y0, x0 = (resized.shape[0] - height) // 2, (resized.shape[1] - width) // 2
    return np.ascontiguousarray(resized[y0:y0 + height, x0:x0 + width])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clip")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--kind", default="hand", choices=OCCLUDER_KINDS)
    p.add_argument("--frames", type=int, default=300, help="frames to write (the clip is looped back and forth)")
    p.add_argument("--size", default="640x480", help="WxH of the output")
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--from-s", type=float, default=0.0, help="the occluder is there from this second on")
    args = p.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    source = read_frames(Path(args.clip), 10**6)
    if not source:
        print(f"error: no frames in {args.clip}", file=sys.stderr)
        return 2
    looped = (source + source[::-1]) * (args.frames // (2 * len(source)) + 1)
    frames = [fit(f, width, height) for f in looped[:args.frames]]
    detector = FaceDetector(DetectorConfig())
    try:
        anchors = smoothed_anchors(clean_landmarks(frames, detector), args.fps)
    finally:
        detector.close()
    rate = Fraction(args.fps).limit_denominator(1001)
    with av.open(args.output, "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18"}
        for i, image in enumerate(frames):
            if anchors[i] is not None and i >= args.from_s * args.fps:
                alpha, colour = paint_occluder(args.kind, i, anchors[i], image.shape[:2])
                image = composite(image, alpha, colour, threshold=0.0)[0]
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode(None))
    print(f"wrote {args.output}: {len(frames)} frames {width}x{height} at {args.fps:g} fps, {args.kind} from "
          f"{args.from_s:g} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
