"""Find, per evidence source, on frames of people nothing was tuned on (issue #22).

Frames are taken from the clean clips of one side of splits/people.json (default: report), a few per clip, evenly
spaced. Each frame is run clean and with each synthetic occluder of benchmarks.photo_quality (rect, text, one-half,
centre, a held-out real hand cutout), composited in frame coordinates on the face found in the clean frame, and with
`hand-over-face`: a held-out real hand (tabletop or egocentric), as tall as most of the face, upright within 40
degrees, over the mouth and nose, in the face's own skin colour and light (trainer.cutouts.naturalise): a hand
mediapipe Hands can find, as a real hand in front of a face is. Only
the stages up to find run (photo mode: every frame decided on its own), so this measures the mask, not the fill.

Per protocol and per source, pooled over frames, inside the face region (crop coordinates):
  segmenter  the finder's probability at or above its threshold
  hands      the hand silhouette from mediapipe Hands' landmarks (refined to the pixels)
  graphic    the pixels in a graphic overlay's flat colour (realtime.find.graphic)
  decided    the final mask (`face.mask`: what fill and blend get)
  recall = true-hole pixels marked / true-hole pixels; precision = marked pixels on the occluder (within 3 % of the
  face's width of it, as "tight" counts) / marked pixels. Clean frames: the share with any marked pixel.

    python -m benchmarks.find_sources                       # report people, 4 frames per clip, shipped models
    python -m benchmarks.find_sources --side calibrate --model my-finder.onnx

Writes report.json and report.md into --out (default docs/find/).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from benchmarks.do_no_harm import SHARED, ROOT, jsonable, markdown_table, pct, pipeline_config, write_report
from benchmarks.photo_quality import DEFAULT_OCCLUDERS, OCCLUDER_ALPHA, PROTOCOLS, VISIBLE_ALPHA, face_geometry, paint
from realtime.align import warp_to_crop
from realtime.errors import UnveilError
from realtime.frame import Frame
from realtime.pipeline import build_pipeline
from realtime.regions import dilate
from trainer.cutouts import load_cutouts, naturalise, split_cutouts
from trainer.occluders.layers import composite
from trainer.people_split import clips_of
from trainer.video_frames import sample_frames

SOURCES = ("segmenter", "hands", "graphic", "decided")
FIND_PROTOCOLS = PROTOCOLS + ("hand-over-face",)
TIGHT = 0.03  # a marked pixel within this share of the face's width of the occluder counts as on it


def paint_hand_over_face(shape, geo, rng: np.random.Generator, hands, image: np.ndarray):
    cut = hands[int(rng.integers(len(hands)))]
    h, w = cut.alpha.shape
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), rng.uniform(-40, 40), rng.uniform(0.7, 1.0) * geo.height / max(h, w))
    matrix[:, 2] += geo.centre + rng.normal(0, 0.08, 2) * geo.height + np.array([0, 0.2 * geo.height]) - (w / 2, h / 2)
    size = (shape[1], shape[0])
    alpha = cv2.warpAffine(np.ascontiguousarray(cut.alpha), matrix, size, borderValue=0)
    colour = cv2.warpAffine(np.ascontiguousarray(cut.colour), matrix, size, borderMode=cv2.BORDER_REPLICATE)
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    layer, alpha = naturalise(colour.astype(np.float32), alpha, rgb, geo_points5(geo), "hand", rng)
    return alpha.astype(np.float32), cv2.cvtColor(np.clip(layer, 0, 255).astype(np.uint8), cv2.COLOR_RGB2BGR).astype(np.float32)


def geo_points5(geo) -> np.ndarray:
    """The five alignment points (eyes, nose, mouth corners) of the face, frame pixels."""
    lm = geo.landmarks
    return np.array([lm[[33, 133]].mean(0), lm[[362, 263]].mean(0), lm[1], lm[61], lm[291]], np.float32)


def run_until_find(pipeline, image: np.ndarray, index: int) -> Frame:
    frame = Frame(index=index, image=image)
    for stage in pipeline.stages:
        frame = stage.process(frame)
        if stage.name == "find":
            break
    return frame


def source_masks(face, threshold: float) -> dict[str, np.ndarray]:
    region = face.region.astype(bool)
    return {"segmenter": (face.evidence["finder"] >= threshold) & region,
            "hands": face.evidence["hands"].astype(bool) & region,
            "graphic": face.evidence["graphic"].astype(bool) & region,
            "decided": face.mask > 0.5}


class Tally:
    """Pooled pixel counts per source."""

    def __init__(self) -> None:
        self.true = 0
        self.hit = {s: 0 for s in SOURCES}
        self.marked = {s: 0 for s in SOURCES}
        self.on = {s: 0 for s in SOURCES}
        self.samples = 0

    def add(self, masks: dict[str, np.ndarray], hole: np.ndarray, near: np.ndarray) -> None:
        self.samples += 1
        self.true += int(hole.sum())
        for s, m in masks.items():
            self.hit[s] += int((m & hole).sum())
            self.marked[s] += int(m.sum())
            self.on[s] += int((m & near).sum())

    def scores(self) -> dict:
        return {s: {"recall": self.hit[s] / max(self.true, 1),
                    "precision": self.on[s] / self.marked[s] if self.marked[s] else None} for s in SOURCES} | {
            "samples": self.samples}


def evaluate(frames: list[tuple[str, np.ndarray]], config, hands, seed: int = 0, progress: bool = True) -> dict:
    pipeline = build_pipeline(config)
    threshold = pipeline.stage("find").threshold
    detector = pipeline.stage("detect").detector
    tallies = {p: Tally() for p in FIND_PROTOCOLS}
    clean = {s: 0 for s in SOURCES}
    clean_faces = 0
    runs = 0  # every run gets its own frame index: the hands stage keeps a frame's hands for that index
    t0 = time.perf_counter()
    try:
        for i, (name, image) in enumerate(tqdm(frames, desc="frames", unit="frame", disable=not progress,
                                               dynamic_ncols=True)):
            faces = detector.detect(image)
            if not faces:
                continue
            runs += 1
            frame = run_until_find(pipeline, image, runs)
            if frame.faces:
                clean_faces += 1
                for s, m in source_masks(frame.faces[0], threshold).items():
                    clean[s] += bool(m.any())
            geo = face_geometry(faces[0].landmarks, image.shape)
            for k, protocol in enumerate(FIND_PROTOCOLS):
                rng = np.random.default_rng([seed, i, k])
                if protocol == "hand-over-face":
                    alpha, colour = paint_hand_over_face(image.shape, geo, rng, hands, image)
                else:
                    alpha, colour = paint(protocol, image.shape, geo, rng, hands)
                occluded = composite(image, alpha, colour, threshold=VISIBLE_ALPHA)[0]
                runs += 1
                frame = run_until_find(pipeline, occluded, runs)
                if not frame.faces:
                    continue  # the occluder hid the face from the detector: nothing to decide
                face = frame.faces[0]
                size = face.crop.shape[0]
                occluder = warp_to_crop(alpha.astype(np.float32), face.matrix, size) > OCCLUDER_ALPHA
                hole = occluder & face.region.astype(bool)
                if hole.sum() < 16:
                    continue
                near = dilate(occluder, max(int(round(TIGHT * size)), 1))
                tallies[protocol].add(source_masks(face, threshold), hole, near)
    finally:
        pipeline.close()
    return {"frames": len(frames), "clean_faces": clean_faces, "threshold": threshold,
            "clean_marked_share": {s: clean[s] / max(clean_faces, 1) for s in SOURCES},
            "protocols": {p: t.scores() for p, t in tallies.items()}, "wall_s": time.perf_counter() - t0}


def markdown(report: dict) -> str:
    rows = []
    for protocol, scores in report["protocols"].items():
        row = [protocol, scores["samples"]]
        for s in SOURCES:
            row += [pct(scores[s]["recall"]), pct(scores[s]["precision"]) if scores[s]["precision"] is not None else "–"]
        rows.append(row)
    rows.append(["clean frames marked", report["clean_faces"]] + sum(
        ([pct(report["clean_marked_share"][s]), ""] for s in SOURCES), []))
    headers = ["protocol", "samples"] + sum(([f"{s} recall", f"{s} precision"] for s in SOURCES), [])
    return "\n".join([
        "# Find, per evidence source", "",
        f"People: {report['people']}; {report['clips']} clips, {report['frames']} frames; models: {report['models']}; "
        f"segmenter threshold {report['threshold']}. Inside the face region; precision counts marks within 3 % of the "
        "face's width of the occluder as on it.", "",
        markdown_table(headers, rows), "",
        f"Wall time: {report['wall_s']:.0f} s.", ""])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--side", default="report", choices=("report", "calibrate", "train"))
    p.add_argument("--per-clip", type=int, default=4, help="frames per clip, evenly spaced")
    p.add_argument("--model", action="append", default=[], help="model name or .onnx (repeatable; default: shipped)")
    p.add_argument("--occluders", default=str(DEFAULT_OCCLUDERS))
    p.add_argument("--out", default=str(ROOT / "docs" / "find"))
    args = p.parse_args(argv)
    clips = clips_of(args.side, clean=True)
    missing = [c.path for c in clips if not (SHARED / c.path).is_file()]
    if missing or not clips:
        print(f"error: clips not found under {SHARED}: {', '.join(missing[:3]) or 'none listed'}", file=sys.stderr)
        return 2
    try:
        _, held = split_cutouts(load_cutouts(args.occluders))
        hands = [c for c in held if c.kind == "hand"]
        frames = [(c.path, image) for c in clips for _, image in sample_frames(SHARED / c.path, args.per_clip)]
        report = evaluate(frames, pipeline_config(tuple(args.model), photo=True), hands)
    except UnveilError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report.update({"people": f"{args.side} side of splits/people.json", "clips": len(clips),
                   "models": list(args.model) or "shipped default"})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return write_report(out, jsonable(report), markdown)


if __name__ == "__main__":
    sys.exit(main())
