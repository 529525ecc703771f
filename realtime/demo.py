"""`unveil demo`: a short clip made on the spot from a public-domain face, cleaned by the default models.

The face is NASA's portrait of astronaut Eileen Collins (public domain), shipped by scikit-image. It gets small head
motion and a moving occluder (a bar sliding across the face and a subtitle), then runs through `unveil process`.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from realtime.errors import UnveilError
from realtime.pipeline import PipelineConfig
from realtime.process import process
from realtime.sources import open_source

FRAME_W, FRAME_H, FPS = 640, 480, 25


def public_domain_face() -> np.ndarray:
    import skimage.data

    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)


def demo_frames(count: int, seed: int = 0) -> list[np.ndarray]:
    """Frames of the face with gentle head motion and an occluder moving across it."""
    rng = np.random.default_rng(seed)
    # the head and shoulders part of the portrait, enlarged so the face fills a webcam-like frame
    face = cv2.resize(public_domain_face()[0:280, 100:380], (420, 420), interpolation=cv2.INTER_CUBIC)
    base = np.full((FRAME_H, FRAME_W, 3), (60, 50, 45), np.uint8)
    frames = []
    phase = rng.uniform(0, 2 * np.pi)
    for i in range(count):
        t = i / FPS
        angle = 4.0 * np.sin(2 * np.pi * 0.4 * t + phase)
        dx, dy = 12 * np.sin(2 * np.pi * 0.25 * t), 6 * np.sin(2 * np.pi * 0.35 * t)
        m = cv2.getRotationMatrix2D((210, 160), angle, 1.0)
        m[:, 2] += (FRAME_W / 2 - 210 + dx, 20 + dy)
        frame = cv2.warpAffine(face, m, (FRAME_W, FRAME_H), dst=base.copy(), borderMode=cv2.BORDER_TRANSPARENT)
        # a bar sliding left-right over the lower face, and a subtitle line that appears halfway
        x = int(FRAME_W / 2 - 150 + 300 * (0.5 - 0.5 * np.cos(2 * np.pi * t / (count / FPS))))
        cv2.rectangle(frame, (x - 30, 150), (x + 30, 290), (40, 40, 200), -1)
        if i >= count // 2:
            cv2.putText(frame, "unveil demo", (FRAME_W // 2 - 105, 250), cv2.FONT_HERSHEY_DUPLEX, 1.1, (255, 255, 255), 3)
        frames.append(frame)
    return frames


def write_clip(frames: list[np.ndarray], path: Path) -> None:
    """Frames (all the same size, BGR) to an H.264 file at the demo's frame rate."""
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "16"}
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def read_frames(path: Path) -> list[np.ndarray]:
    source = open_source(str(path))
    try:
        return [f.image for f in source]
    finally:
        source.close()


def run_demo(out_dir: str, config: PipelineConfig, frames: int = 75) -> dict[str, Path]:
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UnveilError(f"cannot create output folder {out}: {exc.strerror}") from None
    clip, cleaned, side, strip = out / "demo_input.mp4", out / "demo_output.mp4", out / "demo_side_by_side.mp4", out / "demo_strip.png"
    write_clip(demo_frames(frames), clip)
    summary = process(str(clip), str(cleaned), config, stats_path=str(out / "demo_stats.json"))
    before, after = read_frames(clip), read_frames(cleaned)
    pairs = [np.hstack([b, a]) for b, a in zip(before, after)]
    write_clip(pairs, side)
    picks = np.linspace(0, len(before) - 1, 5).round().astype(int)
    rows = [np.hstack([cv2.resize(before[i], (320, 240)) for i in picks]), np.hstack([cv2.resize(after[i], (320, 240)) for i in picks])]
    cv2.imwrite(str(strip), np.vstack(rows))
    return {"input clip": clip, "cleaned clip": cleaned, "before | after video": side, "before / after strip": strip,
            "stats": out / "demo_stats.json", "faces found": summary["faces"]}

