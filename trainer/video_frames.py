"""Frames of the split's clips as images, ready for `unveil prepare`: the segmenter learns in the domain it runs in.

    python -m trainer.video_frames --out data_cache/video_frames        # train + calibrate people, clean clips
    unveil prepare data_cache/video_frames -o data_cache/video128 --identity data_cache/video_frames/identities.csv \
        --val-identities data_cache/video_frames/calibrate.txt

Up to `--per-clip` frames per clip, evenly spaced, as JPEG q95 under OUT/<person>/; `identities.csv` maps each file
to its person and `calibrate.txt` lists the calibrate people (prepare's validation side). Report people are never
written. Clips with a real occluder are left out (their frames are not clean).
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import av
import cv2
import numpy as np

from trainer.people_split import SplitClip, clips_of

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def frame_count(path: Path) -> int:
    with av.open(str(path), metadata_errors="replace") as container:
        stream = container.streams.video[0]
        if stream.frames:
            return int(stream.frames)
        return sum(1 for _ in container.decode(stream))


def sample_frames(path: Path, wanted: int) -> list[tuple[int, np.ndarray]]:
    """(index, BGR image) of up to `wanted` frames spread evenly over the clip."""
    total = frame_count(path)
    keep = set(np.unique(np.linspace(0, max(total - 1, 0), min(wanted, max(total, 1))).round().astype(int)).tolist())
    out = []
    with av.open(str(path), metadata_errors="replace") as container:
        for i, frame in enumerate(container.decode(container.streams.video[0])):
            if i in keep:
                out.append((i, frame.to_ndarray(format="bgr24")))
    return out


def write_clip(clip: SplitClip, root: Path, out: Path, per_clip: int) -> list[tuple[str, str]]:
    folder = out / clip.person
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    stem = Path(clip.path).stem
    for index, image in sample_frames(root / clip.path, per_clip):
        name = f"{clip.person}/{stem}__{index:05d}.jpg"
        cv2.imwrite(str(out / name), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        rows.append((name, clip.person))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data_cache/video_frames"))
    parser.add_argument("--shared", type=Path, default=SHARED, help="../shared/data")
    parser.add_argument("--per-clip", type=int, default=80, help="frames per clip (evenly spaced)")
    args = parser.parse_args(argv)
    if not args.shared.is_dir():
        print(f"unveil: error: shared data not found: {args.shared}", file=sys.stderr)
        return 2
    clips = clips_of("train", clean=True) + clips_of("calibrate", clean=True)
    rows = []
    for k, clip in enumerate(clips, 1):
        rows += write_clip(clip, args.shared, args.out, args.per_clip)
        print(f"[{k}/{len(clips)}] {clip.path}: {len(rows)} frames so far", flush=True)
    with (args.out / "identities.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "identity"])
        writer.writerows(rows)
    (args.out / "calibrate.txt").write_text("".join(f"{c.person}\n" for c in sorted(
        {c.person: c for c in clips if c.side == "calibrate"}.values(), key=lambda c: c.person)))
    print(f"{len(rows)} frames of {len(clips)} clips in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
