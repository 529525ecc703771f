"""Peak memory of `unveil process` on a long clip vs a short one (issue: bounded frames in flight).

Makes synthetic 720p clips with a moving public-domain face, an occluder and an AAC audio track, then runs the
offline pipeline on each in a fresh process and reports its peak RSS:

    python -m benchmarks.memory_long_clip --model MODEL.onnx --short 10 --long 600 --workdir /tmp/unveil-mem
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from tqdm import tqdm

from realtime.demo import demo_frames

W, H, FPS, AUDIO_RATE = 1280, 720, 25, 16000


def make_clip(path: Path, seconds: int) -> Path:
    if path.exists():
        return path
    loop = [cv2.resize(f, (W, H)) for f in demo_frames(100)]  # 4 s of motion, looped
    n = seconds * FPS
    tmp = path.with_suffix(".partial.mp4")
    with av.open(str(tmp), "w") as c:
        v = c.add_stream("libx264", rate=FPS)
        v.width, v.height, v.pix_fmt, v.options = W, H, "yuv420p", {"preset": "ultrafast", "crf": "23"}
        a = c.add_stream("aac", rate=AUDIO_RATE)
        a.layout = "mono"
        samples_per_frame = AUDIO_RATE // FPS
        for i in tqdm(range(n), desc=f"making {seconds}s clip", unit="frame"):
            c.mux(v.encode(av.VideoFrame.from_ndarray(loop[i % len(loop)], format="bgr24")))
            t = (np.arange(samples_per_frame) + i * samples_per_frame) / AUDIO_RATE
            af = av.AudioFrame.from_ndarray((0.2 * np.sin(2 * np.pi * 330 * t)).astype(np.float32)[None], format="flt", layout="mono")
            af.sample_rate, af.pts, af.time_base = AUDIO_RATE, i * samples_per_frame, Fraction(1, AUDIO_RATE)
            c.mux(a.encode(af))
        c.mux(v.encode(None))
        c.mux(a.encode(None))
    tmp.rename(path)
    return path


def measure(clip: Path, model: str, out: Path) -> dict:
    """Run `unveil process` in a fresh interpreter and read its peak RSS."""
    code = (
        "import json,resource,sys\n"
        "from cli.main import main\n"
        f"rc = main(['process', {str(clip)!r}, '-o', {str(out)!r}, '--model', {model!r}, '--stats', {str(out) + '.json'!r}])\n"
        "print(json.dumps({'rc': rc, 'peak_rss_mib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    last = [line for line in res.stdout.splitlines() if line.startswith("{")][-1]
    report = json.loads(last)
    report.update(json.loads(Path(str(out) + ".json").read_text()))
    return report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", required=True)
    p.add_argument("--short", type=int, default=10, help="seconds")
    p.add_argument("--long", type=int, default=600, help="seconds")
    p.add_argument("--workdir", default="/tmp/unveil-mem")
    args = p.parse_args()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    results = {}
    for label, seconds in (("short", args.short), ("long", args.long)):
        clip = make_clip(work / f"clip_{seconds}s.mp4", seconds)
        r = measure(clip, args.model, work / f"out_{seconds}s.mp4")
        results[label] = {"seconds": seconds, "frames": r["frames"], "fps": r["fps"], "peak_rss_mib": round(r["peak_rss_mib"], 1)}
        print(label, results[label], flush=True)
    ratio = results["long"]["peak_rss_mib"] / results["short"]["peak_rss_mib"]
    results["ratio"] = round(ratio, 3)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
