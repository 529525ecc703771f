"""Symmetric faces, measured (issue #17, the vae paper's Table 1): is the symmetrized face still the same person?

On identity-disjoint validation CelebA photos (the split of data_cache/celeba128) each face is made symmetric by
  landmark      the mesh baseline (realtime/symmetrize.py: mid-line from the mirror map, halves averaged), pasted back;
  vae           a `symmetrization` network (unveil train-vae), pasted back;
  crop-halves   a control: the aligned crop's image-left half mirrored onto the right about the crop's centre line
                (the 5-point mid-line, what the VAE's stage-3 targets are made of), pasted back the same way;
  mirror        a control: the whole photo flipped (the same person, seen in a mirror).
Identity: dlib's ResNet face descriptor (trainer/evaluation/identity.py) of the original photo's face and of the
same box in the output; same person when the distance is below 0.6. The paper's figure: 0.872 of symmetrized faces
recognised as the original person by OpenFace (landmark mirroring: 0.66-0.74).
Output symmetry: mean |crop - its mirror image| over the face (grey levels 0-255) in the aligned crop of each output
(the face oval, made symmetric, less a rim of 9 % of the crop), and of the input for reference.
Speed: faces per second of each method on one thread (the network alone through onnxruntime, and the whole method
as `unveil symmetrize` runs it per face, mesh scores included).

    python -m benchmarks.symmetrize_identity --vae runs/symmetry_vae/symmetry-vae.onnx --limit 200

Writes report.json, report.md and grid.jpg (input | VAE output | VAE pasted back | landmark | crop-halves, each with
its identity distance and mirror error) into --out.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from benchmarks.do_no_harm import DEFAULT_INDEX, DEFAULT_PHOTOS, ROOT, validation_photos
from realtime.align import align_to_template, five_points_from_mesh, paste_back, transform_points, warp_to_crop
from realtime.detect import DetectorConfig, FaceDetector
from realtime.errors import UnveilError
from realtime.sources import read_image
from realtime.symmetrize import (CROP_SIZE, MIRROR_INSET, FrameSymmetrizer, crop_face_region, inward_ramp, mirror_error,
                                 mirror_halves)
from trainer.evaluation import identity

PAPER = {"ours (VAE)": 0.872, "CLNF": 0.738, "SDM": 0.694, "CLM": 0.658, "Dlib": 0.712}


def crop_halves(image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The control: (output frame, aligned crop) with the crop's left half mirrored, pasted back over the face."""
    matrix = align_to_template(five_points_from_mesh(points), CROP_SIZE)
    crop = warp_to_crop(image, matrix, CROP_SIZE)
    left, _ = mirror_halves(crop)
    region = crop_face_region(transform_points(points, matrix), CROP_SIZE)
    out, _ = paste_back(image, left, inward_ramp(region, 0.05 * CROP_SIZE), matrix)
    return out, left


def input_crop(image: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(aligned crop, its face region for the mirror error, the frame -> crop matrix)."""
    matrix = align_to_template(five_points_from_mesh(points), CROP_SIZE)
    crop = warp_to_crop(image, matrix, CROP_SIZE)
    return crop, crop_face_region(transform_points(points, matrix), CROP_SIZE, MIRROR_INSET), matrix


def network_speed(model: str, count: int = 200) -> float:
    """Faces per second of the network alone, batch 1, one onnxruntime thread."""
    from realtime.runner import ModelRunner

    runner = ModelRunner(model, provider="cpu", threads=1)
    size = runner.contract.crop_size
    crop = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    for _ in range(10):
        runner.run([crop])
    start = time.perf_counter()
    for _ in range(count):
        runner.run([crop])
    return count / (time.perf_counter() - start)


def label(cell: np.ndarray, lines: list[str], height: int = 34) -> np.ndarray:
    bar = np.full((height, cell.shape[1], 3), 255, np.uint8)
    for k, text in enumerate(lines):
        cv2.putText(bar, text, (3, 13 + 15 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([cell, bar])


def grid(rows: list[dict], path: Path, size: int = 160) -> None:
    header_names = ["input", "VAE output", "VAE pasted back", "landmark baseline", "crop halves (control)"]
    header = np.hstack([label(np.zeros((0, size, 3), np.uint8), [name], 18) for name in header_names])
    lines = [header]
    for row in rows:
        cells = []
        for key in ("input", "vae-net", "vae", "landmark", "crop-halves"):
            if key not in row["crops"]:
                cells.append(np.full((size + 34, size, 3), 255, np.uint8))
                continue
            cell = cv2.resize(row["crops"][key], (size, size), interpolation=cv2.INTER_CUBIC)
            if key == "input":
                text = [f"asymmetry {row['asymmetry']:.1f} % IOD", f"appearance {row['appearance']:.0f} levels"]
            elif key == "vae-net":
                text = ["the network's 64 px crop", f"mirror error {row['mirror']['vae']:.1f}"]
            else:
                d = row["identity"].get(key)
                text = [f"identity d={d:.2f} {'same' if d < 0.6 else 'OTHER'}" if d is not None and np.isfinite(d) else "identity -",
                        f"mirror error {row['mirror'][key]:.1f}"]
            cells.append(label(cell, text))
        lines.append(np.hstack(cells))
    cv2.imwrite(str(path), np.vstack(lines), [cv2.IMWRITE_JPEG_QUALITY, 85])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--index", type=Path, default=DEFAULT_INDEX, help="dataset index whose validation split is used")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--vae", default=None, help="the symmetrization model (.onnx); without it, landmark only")
    parser.add_argument("--grid", type=int, default=8, help="rows in grid.jpg")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "symmetrize")
    args = parser.parse_args(argv)
    if not identity.available():
        raise SystemExit(f"needs dlib: {identity.INSTALL_HINT}")
    args.out.mkdir(parents=True, exist_ok=True)
    photos, origin = validation_photos(args.photos, args.index, args.limit)
    methods = {"landmark": FrameSymmetrizer("landmark", threads=1)}
    if args.vae:
        methods["vae"] = FrameSymmetrizer("vae", args.vae, threads=1)
    scorer = identity.FaceIdentity()
    names = list(methods) + ["crop-halves", "mirror"]
    distances: dict[str, list[float]] = {name: [] for name in names}
    mirror: dict[str, list[float]] = {name: [] for name in ["input"] + list(methods) + ["crop-halves"]}
    seconds: dict[str, float] = {name: 0.0 for name in methods}
    asymmetry, rows = [], []
    skipped = {"no_mesh": 0, "no_dlib_face": 0}
    with FaceDetector(DetectorConfig(max_faces=1)) as detector:
        for path in tqdm(photos, unit="photo"):
            image = read_image(path)
            faces = detector.detect(image) if image is not None else []
            if not faces:
                skipped["no_mesh"] += 1
                continue
            box = scorer.box_for(image)
            if box is None:
                skipped["no_dlib_face"] += 1
                continue
            points = faces[0].landmarks
            row = {"file": path.name, "identity": {}, "mirror": {}, "crops": {}}
            crop, region, matrix = input_crop(image, points)
            row["crops"]["input"] = crop
            row["mirror"]["input"] = 255.0 * mirror_error(crop, region)
            outputs = {}
            for name, method in methods.items():
                start = time.perf_counter()
                out, reports = method(image, [points])
                seconds[name] += time.perf_counter() - start
                outputs[name] = out
                row["crops"][name] = warp_to_crop(out, matrix, CROP_SIZE)   # pasted back, framed like the input
                if name == "vae":
                    row["crops"]["vae-net"] = reports[0].crop
                row["mirror"][name] = reports[0].mirror_error
                row["asymmetry"], row["appearance"] = reports[0].shape, reports[0].appearance
            out, halves = crop_halves(image, points)
            outputs["crop-halves"], row["crops"]["crop-halves"] = out, warp_to_crop(out, matrix, CROP_SIZE)
            row["mirror"]["crop-halves"] = 255.0 * mirror_error(halves, region)
            outputs["mirror"] = np.ascontiguousarray(image[:, ::-1])
            reference = scorer.descriptor(image, box)
            for name in names:
                target = outputs[name]
                if name == "mirror":   # the flipped photo: its face sits in the flipped box
                    w = image.shape[1]
                    flipped = identity.Box(w - 1 - box.right, box.top, w - 1 - box.left, box.bottom)
                    d = float(np.linalg.norm(reference - scorer.descriptor(target, flipped)))
                else:
                    d = float(np.linalg.norm(reference - scorer.descriptor(target, box)))
                distances[name].append(d)
                row["identity"][name] = d
            for name in mirror:
                mirror[name].append(row["mirror"][name])
            asymmetry.append(row["asymmetry"])
            rows.append(row)
    faces = len(rows)
    if not faces:
        raise UnveilError("no face measured")
    report = {
        "photos": origin, "measured_faces": faces, "skipped": skipped, "threshold": identity.THRESHOLD,
        "identity": {name: identity.summarize(d) for name, d in distances.items()},
        "output_mirror_error": {name: float(np.mean(v)) for name, v in mirror.items()},
        "asymmetry_score": {"mean": float(np.mean(asymmetry)), "median": float(np.median(asymmetry)),
                            "p90": float(np.percentile(asymmetry, 90))},
        "speed_faces_per_s": {f"{name} (whole method, per face)": faces / s for name, s in seconds.items()},
        "paper_table1": PAPER,
        "vae_model": args.vae,
    }
    if args.vae:
        report["speed_faces_per_s"]["vae network alone (onnxruntime, 1 thread)"] = network_speed(args.vae)
    (args.out / "report.json").write_text(json.dumps(report, indent=1))
    write_markdown(report, args.out / "report.md")
    picked = rows[: args.grid]
    grid(picked, args.out / "grid.jpg")
    print(json.dumps({k: report[k] for k in ("measured_faces", "identity", "output_mirror_error", "speed_faces_per_s")},
                     indent=1))
    return 0


def write_markdown(report: dict, path: Path) -> None:
    lines = [f"{report['measured_faces']} faces ({report['photos']}); identity: dlib ResNet descriptor, same person "
             f"below {report['threshold']}", "",
             "| method | same person | mean distance | median distance | output mirror error (levels) |",
             "|---|---|---|---|---|"]
    for name, v in report["identity"].items():
        m = report["output_mirror_error"].get(name)
        lines.append(f"| {name} | {v['same_person']:.3f} | {v['mean_distance']:.3f} | {v['median_distance']:.3f} | "
                     f"{'-' if m is None else f'{m:.2f}'} |")
    lines.append(f"| input (reference) | - | - | - | {report['output_mirror_error']['input']:.2f} |")
    lines += ["", "| speed | faces/s |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in report["speed_faces_per_s"].items()]
    a = report["asymmetry_score"]
    lines += ["", f"Asymmetry score (shape, % of the inter-ocular distance): mean {a['mean']:.2f}, median "
              f"{a['median']:.2f}, 90th percentile {a['p90']:.2f}."]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
