"""Small faces in the pipeline (#16): where does the small-face network (completion_super_resolution) pay off?

Validation CelebA photos (identity-disjoint from training) are shrunk so the face (the mesh's cheek-to-cheek width,
points 234-454) is W px wide, and pasted into a 640x480 frame. The face is found in the clean frame (mediapipe
full-range detector + mesh), aligned like the runtime aligns it, and the paper's occlusion is drawn into the frame:
a block of half the aligned crop's side (16 px of the 32 px input, 64 px of the 128 px crop) over a face part
(trainer.train_fcsr.block_position, deterministic per photo), filled with noise, flat colour or blurred noise. The
fill stage is then given that exact mask (no finder errors) and paints it two ways, everything else equal:
  path128   the runtime without the small-face network: the 128 px crop (upsampled from the frame) and
            symmetry-lite given the mask;
  fcsr      the small-face network on the 32 px crop (realtime.small_faces), its 128 px output pasted at the face's size.
Fill order `network` (then Telea for thin leftovers): the networks alone; `--order default` adds the person's own
pixels first (mirror; no memory in photos). Scored in frame pixels against the clean frame inside the hole (the
block's pixels within the face oval, where both paste).

    python -m benchmarks.small_faces --model fcsr-lite.onnx --widths 32 40 44 48 56 64 80 --limit 120
    python -m benchmarks.small_faces --speed --model fcsr-lite.onnx    # per-face cost vs the 128 px networks

Writes report.json and report.md into --out (default docs/fcsr/).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from realtime.align import align_to_template, five_points_from_mesh, invert_affine, transform_points, warp_to_crop
from realtime.detect import DetectorConfig, FaceDetector
from realtime.fill import FillConfig, FillStage
from realtime.frame import Frame
from realtime.models import resolve_model
from realtime.regions import face_oval
from realtime.runner import ModelRunner
from realtime.small_faces import complete_small, eyes_distance, small_inputs
from realtime.stages import BlendStage

FRAME_HW = (480, 640)


def face_width(landmarks: np.ndarray) -> float:
    return float(np.linalg.norm(landmarks[454] - landmarks[234]))


def small_frame(photo: np.ndarray, width: float, target: float, rng: np.random.Generator) -> np.ndarray:
    """The photo shrunk so its face is `target` px wide, pasted into a 640x480 frame over a smooth random colour
    field with a little grain (no other face for the detector to find)."""
    scale = target / width
    small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = FRAME_HW
    field = cv2.resize(rng.integers(40, 200, (6, 8, 3)).astype(np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    frame = np.clip(field + rng.normal(0, 3, field.shape), 0, 255).astype(np.uint8)
    y = int(rng.integers(20, h - small.shape[0] - 20))
    x = int(rng.integers(20, w - small.shape[1] - 20))
    frame[y:y + small.shape[0], x:x + small.shape[1]] = small
    return frame


def occlude(frame: np.ndarray, matrix: np.ndarray, crop_size: int, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The paper's block drawn into the frame -> (occluded frame, frame mask bool, crop-space mask float32)."""
    from trainer.train_fcsr import BLOCK, IN_SIZE, block_position

    x, y = block_position(rng)
    factor = crop_size / IN_SIZE
    x0, y0, side = x * factor, y * factor, BLOCK * factor
    crop_mask = np.zeros((crop_size, crop_size), np.float32)
    crop_mask[int(y0):int(y0 + side), int(x0):int(x0 + side)] = 1.0
    corners = np.array([[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side]]) - 0.5
    polygon = transform_points(corners, invert_affine(matrix))
    mask = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(polygon * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    kind = rng.random()
    if kind < 0.4:
        paint = np.broadcast_to(rng.integers(0, 256, 3).astype(np.uint8), frame.shape)
    else:
        paint = rng.integers(0, 256, frame.shape).astype(np.uint8)
        if kind < 0.7:
            paint = cv2.GaussianBlur(paint, (0, 0), 1.5 * side / crop_size * 4)
    out = frame.copy()
    out[mask > 0] = paint[mask > 0]
    # the crop-space mask the finder would give: the block as it lands in the crop
    crop_mask = np.maximum(crop_mask, (warp_to_crop(mask * 255, matrix, crop_size) > 0).astype(np.float32))
    return out, mask > 0, crop_mask


def fill_with(stage: FillStage, image: np.ndarray, face, crop_mask: np.ndarray) -> np.ndarray:
    frame = Frame(index=0, image=image)
    f = replace(face, mask=crop_mask.copy(), completed=None, fill=None, evidence={}, track_id=-1)
    frame.faces = [f]
    stage.process(frame)
    BlendStage().process(frame)
    return frame.result()


def psnr(a: np.ndarray, b: np.ndarray, region: np.ndarray) -> float:
    err = (a.astype(np.float64) - b.astype(np.float64))[region] ** 2
    return float(10 * np.log10(255.0**2 / max(err.mean(), 1e-10)))


def measure(args) -> dict:
    from trainer.data import FaceStore

    store = FaceStore(args.data)
    photos = Path(store.meta["source"]) if not args.photos else Path(args.photos)
    if not photos.is_absolute():
        photos = (Path(args.data) / ".." / ".." / photos).resolve() if not photos.exists() else photos
    network = ModelRunner(str(resolve_model(args.baseline)), "cpu", threads=1)
    small = ModelRunner(str(resolve_model(args.model)), "cpu", threads=1)
    crop_size = network.contract.crop_size
    order = ("memory", "mirror", "network", "inpaint") if args.order == "default" else ("network", "inpaint")
    config = FillConfig(order=order)
    config = replace(config, memory=replace(config.memory, enabled=False))
    path128 = FillStage(network, replace(config, small_face_eyes=0.0))
    fcsr = FillStage(network, replace(config, small_face_eyes=1e9), small)
    files = [store.file(int(i)) for i in store.indices("val")][: args.limit]
    results: dict[int, list[dict]] = {w: [] for w in args.widths}
    missed = {w: 0 for w in args.widths}
    with FaceDetector(DetectorConfig(model_selection=1, max_faces=1)) as detector:
        for k, name in enumerate(tqdm(files, desc="small faces")):
            photo = cv2.imread(str(photos / name))
            if photo is None:
                continue
            found = detector.detect(photo)
            if not found:
                continue
            width = face_width(found[0].landmarks)
            for target in args.widths:
                rng = np.random.default_rng([k, target])
                clean = small_frame(photo, width, target, rng)
                faces = detector.detect(clean)
                if not faces:
                    missed[target] += 1
                    continue
                face = faces[0]
                if abs(face_width(face.landmarks) - target) > 0.25 * target:   # not the pasted face
                    missed[target] += 1
                    continue
                face.matrix = align_to_template(five_points_from_mesh(face.landmarks), crop_size)
                face.crop = warp_to_crop(clean, face.matrix, crop_size)
                occluded, hole, crop_mask = occlude(clean, face.matrix, crop_size, rng)
                face.crop = warp_to_crop(occluded, face.matrix, crop_size)
                oval = face_oval(face.landmarks, FRAME_HW)
                region = hole & oval
                if region.sum() < 20:
                    continue
                a = fill_with(path128, occluded, face, crop_mask)
                b = fill_with(fcsr, occluded, face, crop_mask)
                results[target].append({"file": name, "eyes": eyes_distance(face.landmarks),
                                        "width": face_width(face.landmarks), "hole_px": int(region.sum()),
                                        "path128": psnr(a, clean, region), "fcsr": psnr(b, clean, region),
                                        "input": psnr(occluded, clean, region)})
                if args.figure and k < 6 and target == args.figure_width:
                    keep_figure(args, k, clean, occluded, a, b, face)
    summary = {}
    for target, rows in results.items():
        if not rows:
            continue
        summary[target] = {"n": len(rows), "missed_detections": missed[target],
                           "eyes_px": float(np.median([r["eyes"] for r in rows])),
                           "width_px": float(np.median([r["width"] for r in rows])),
                           **{m: float(np.mean([r[m] for r in rows])) for m in ("path128", "fcsr", "input")},
                           "fcsr_wins": float(np.mean([r["fcsr"] > r["path128"] for r in rows]))}
    return {"model": args.model, "baseline": args.baseline, "order": list(order), "photos": len(files),
            "summary": summary, "faces": results}


FIGURE_TILES: list[np.ndarray] = []


def keep_figure(args, k, clean, occluded, a, b, face) -> None:
    """Rows of: occluded | 128 path | fcsr | clean, cut around the face and enlarged 3x (nearest) to see pixels."""
    x0, y0, x1, y1 = face.box.astype(int)
    cx, cy, half = (x0 + x1) // 2, (y0 + y1) // 2, int(max(x1 - x0, y1 - y0) * 0.8)
    box = (slice(max(cy - half, 0), cy + half), slice(max(cx - half, 0), cx + half))
    tiles = [cv2.resize(im[box], (192, 192), interpolation=cv2.INTER_NEAREST) for im in (occluded, a, b, clean)]
    FIGURE_TILES.append(np.concatenate(tiles, 1))


def speed(args) -> dict:
    """Median per-face latency on onnxruntime CPU, 1 thread: the small-face network (with its crop cut from a
    frame) vs the 128 px networks (on a 128 px crop)."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (480, 640, 3), np.uint8)
    matrix = align_to_template(np.array([[300, 200], [320, 200], [310, 212], [302, 222], [318, 222]], float), 128)
    mask = np.zeros((128, 128), np.float32)
    mask[40:104, 40:104] = 1
    out = {}
    for name in [args.model, "blind-lite", "symmetry-lite"]:
        runner = ModelRunner(str(resolve_model(name)), "cpu", threads=1)
        c = runner.contract
        if c.kind == "completion_super_resolution":
            call = lambda: complete_small(runner, frame, matrix, mask)  # noqa: E731
            crop, small_mask = small_inputs(frame, matrix, mask, c.crop_size)
            net = lambda: runner.run([crop], [small_mask])  # noqa: E731
        else:
            crop = warp_to_crop(frame, matrix, c.crop_size)
            masks = [mask] if "mask" in c.inputs else None
            net = lambda: runner.run([crop], masks)  # noqa: E731
            call = lambda: runner.run([warp_to_crop(frame, matrix, c.crop_size)], masks)  # noqa: E731
        timings = {}
        for label, fn in (("network_ms", net), ("with_crop_ms", call)):
            for _ in range(10):
                fn()
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t) * 1000)
            timings[label] = statistics.median(times)
        out[name] = {"kind": c.kind, "input": c.crop_size, "output": c.output_size, **timings}
    return out


def write(args, report: dict) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = "speed" if args.speed else f"pipeline_{args.order}"
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1))
    if args.speed:
        lines = ["| model | kind | in px | out px | network ms | with crop ms |", "|---|---|---|---|---|---|"]
        for name, v in report.items():
            lines.append(f"| {Path(name).stem} | {v['kind']} | {v['input']} | {v['output']} | {v['network_ms']:.2f} | "
                         f"{v['with_crop_ms']:.2f} |")
    else:
        lines = [f"fill order {report['order']}, {report['photos']} validation photos, in-hole PSNR (dB) in frame pixels",
                 "", "| face width px (asked) | median width | median eyes px | faces | path128 (symmetry-lite) | fcsr | "
                 "fcsr - path128 | fcsr better on | occluded input |", "|---|---|---|---|---|---|---|---|---|"]
        for target, v in report["summary"].items():
            lines.append(f"| {target} | {v['width_px']:.1f} | {v['eyes_px']:.1f} | {v['n']} | {v['path128']:.2f} | "
                         f"{v['fcsr']:.2f} | {v['fcsr'] - v['path128']:+.2f} | {v['fcsr_wins']:.0%} | {v['input']:.2f} |")
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if FIGURE_TILES:
        cv2.imwrite(str(out / f"pipeline_{args.figure_width}px.png"), np.concatenate(FIGURE_TILES, 0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="the completion_super_resolution model")
    parser.add_argument("--baseline", default="symmetry-lite", help="the 128 px network filler")
    parser.add_argument("--data", default="data_cache/celeba128")
    parser.add_argument("--photos", default=None, help="folder of the dataset's source photos (default: meta source)")
    parser.add_argument("--widths", type=int, nargs="+", default=[40, 44, 48])
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--order", default="network", choices=["network", "default"])
    parser.add_argument("--figure", action="store_true", help="a picture of the first photos at --figure-width")
    parser.add_argument("--figure-width", type=int, default=44)
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--out", default="docs/fcsr")
    args = parser.parse_args(argv)
    import torch  # noqa: F401 - the trainer's block placement imports it; keep its threads to one
    torch.set_num_threads(1)
    write(args, speed(args) if args.speed else measure(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
