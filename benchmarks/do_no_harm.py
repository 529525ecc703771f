"""Do no harm (issue #12): how often Unveil changes faces that are NOT covered.

(a) Clean clips, video mode, frame by frame through the real offline stages. Per clip: the share of frames touched
    (some pixel changed by more than 12 levels; and, strictly, `frame.replaced` non-empty: any pixel changed by the
    pipeline at all), the share of face-oval pixels changed by more than 12 levels over all frames, and the worst
    frame (most face pixels changed; saved as a before | after | tint picture). Targets: <= 2 % of frames touched,
    <= 0.2 % of face pixels changed.
(b) Clean photos, photo mode: identity-disjoint validation CelebA faces (the `val` files of the trainer's cache
    index, data_cache/celeba128/index.npz; without it a fixed sample of the folder). The share that comes out
    bit-identical (target >= 99 %), and a grid of the touched ones (before | after | replaced pixels tinted).

    python -m benchmarks.do_no_harm                                   # all clips, 500 photos, shipped models
    python -m benchmarks.do_no_harm CLIP.mp4 --frames 100 --limit 60 --model blind-lite --model symmetry-lite

A pixel counts as visibly changed when any of its colour channels moves by more than 12 levels.
Writes report.json, report.md and the pictures into --out (default docs/do_no_harm/).
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from realtime.errors import UnveilError
from realtime.fill import FILLERS
from realtime.frame import Frame
from realtime.pipeline import PipelineConfig, build_pipeline
from realtime import regions
from realtime.regions import FACE_OVAL
from realtime.scheduler import run_stages
from realtime.sources import VideoFileSource, list_images, read_image
from trainer.people_split import clips_of

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
DEFAULT_PHOTOS = SHARED / "faces" / "celeba"
DEFAULT_INDEX = ROOT / "data_cache" / "celeba128" / "index.npz"

VISIBLE = 12                 # levels: a pixel changed by more than this (any channel) is visibly changed
TINT_BGR = (255, 0, 255)     # replaced pixels in the pictures
CELL = 160                   # grid cell side, pixels

TARGET_FRAMES_TOUCHED = 0.02
TARGET_FACE_PIXELS = 0.002
TARGET_BIT_IDENTICAL = 0.99


# ------------------------------------------------------------------------------------------------- pure helpers


def changed_pixels(before: np.ndarray, after: np.ndarray, level: int = VISIBLE) -> np.ndarray:
    """(H, W) bool: pixels where some channel of `after` differs from `before` by more than `level`."""
    diff = np.abs(before.astype(np.int16) - after.astype(np.int16))
    return diff.max(axis=2) > level if diff.ndim == 3 else diff > level


def frame_touched(before: np.ndarray, after: np.ndarray, level: int = VISIBLE) -> bool:
    """Whether any pixel of the frame changed visibly (more than `level` in some channel)."""
    return bool(changed_pixels(before, after, level).any())


def replaced_any(replaced: np.ndarray | None) -> bool:
    """The strict test: the pipeline reported at least one replaced pixel (any change at all)."""
    return replaced is not None and bool(np.asarray(replaced).any())


def face_oval(landmarks: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """(H, W) bool: the mesh face oval (forehead to chin, cheek to cheek) of 468 frame-pixel landmarks."""
    h, w = shape[:2]
    return regions.face_oval(landmarks, (h, w))


def faces_oval(faces, shape: tuple[int, ...]) -> np.ndarray:
    """The union of the face ovals of every face that has landmarks."""
    mask = np.zeros(shape[:2], bool)
    for face in faces:
        if face.landmarks is not None:
            mask |= face_oval(face.landmarks, shape)
    return mask


def tint(image: np.ndarray, mask: np.ndarray | None, colour=TINT_BGR, strength: float = 0.6) -> np.ndarray:
    """`image` with the pixels of `mask` blended towards `colour`."""
    out = image.copy()
    if mask is not None:
        m = np.asarray(mask).astype(bool)
        out[m] = (out[m] * (1 - strength) + np.array(colour, np.float32) * strength).astype(np.uint8)
    return out


def fit_cell(image: np.ndarray, size: int = CELL) -> np.ndarray:
    """`image` scaled to fit a size x size cell, letterboxed in dark grey."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    cell = np.full((size, size, 3), 40, np.uint8)
    y0, x0 = (size - small.shape[0]) // 2, (size - small.shape[1]) // 2
    cell[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
    return cell


def face_crop(image: np.ndarray, landmarks: np.ndarray | None, pad: float = 0.3) -> tuple[slice, slice]:
    """Slices of a square around the face (the whole image when there is no face)."""
    if landmarks is None:
        return slice(None), slice(None)
    pts = np.asarray(landmarks)[list(FACE_OVAL)]
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, (1 + pad) * max(x1 - x0, y1 - y0) / 2
    h, w = image.shape[:2]
    return (slice(max(int(cy - half), 0), min(int(cy + half) + 1, h)),
            slice(max(int(cx - half), 0), min(int(cx + half) + 1, w)))


def save_grid(rows: list[np.ndarray], path: Path, columns: int = 2) -> Path | None:
    """Stack picture rows (all the same size) into a grid `columns` rows wide; None when there is nothing to save."""
    if not rows:
        return None
    blank = np.full_like(rows[0], 255)
    rows = rows + [blank] * (-len(rows) % columns)
    grid = np.vstack([np.hstack(rows[i:i + columns]) for i in range(0, len(rows), columns)])
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), grid)
    return path


def jsonable(value):
    """`value` with NaN and infinite floats as None (strict JSON) and numpy scalars as Python numbers."""
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_report(out: Path, report: dict, to_markdown) -> int:
    """report.json (every number) and report.md (the tables, also printed) into `out`; the exit status 0."""
    (out / "report.json").write_text(json.dumps(jsonable(report), indent=2))
    text = to_markdown(report)
    (out / "report.md").write_text(text)
    print(text)
    return 0


def markdown_table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{100 * value:.{digits}f} %"


def verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("yes" if ok else "**no**")


def filler_counts(frame: Frame) -> dict[str, int]:
    """How many replaced pixels each filler made (memory / mirror / network / inpaint)."""
    counts: dict[str, int] = {}
    if frame.replaced is None:
        return counts
    for face in frame.faces:
        if face.fill is None:
            continue
        x0, y0, x1, y1 = face.fill.box
        hit = frame.replaced[y0:y1, x0:x1] > 0
        codes, n = np.unique(face.fill.source[hit], return_counts=True)
        for code, k in zip(codes, n):
            name = FILLERS[int(code)] if int(code) < len(FILLERS) else str(int(code))
            counts[name] = counts.get(name, 0) + int(k)
    return counts


# ------------------------------------------------------------------------------------------------ the pipeline


def pipeline_config(models: tuple[str, ...] = (), provider: str = "cpu", threads: int = 1, photo: bool = False,
                    **overrides) -> PipelineConfig:
    """The runtime's config; for unrelated photos as `unveil process` sets it (no smoothing, no masks carried over,
    no face memory)."""
    config = PipelineConfig(models=tuple(models), provider=provider, threads=threads, **overrides)
    if photo:
        config = replace(config, tracker=replace(config.tracker, smooth=False), find=replace(config.find, video=False),
                         fill=replace(config.fill, memory=replace(config.fill.memory, enabled=False)))
    return config


def run_frame(pipeline, image: np.ndarray, index: int = 0) -> Frame:
    frame = Frame(index=index, image=image)
    for stage in pipeline.stages:
        frame = stage.process(frame)
    return frame


def validation_photos(folder: Path, index: Path | None, limit: int | None, seed: int = 0) -> tuple[list[Path], str]:
    """(photo paths, where they came from): the identity-disjoint validation files of the cache index that exist in
    `folder`, else a fixed sample of the folder; a fixed random subset of `limit` of them, in name order."""
    if index is not None and Path(index).is_file():
        data = np.load(index)
        names = sorted(str(f) for f, v in zip(data["files"], data["val"]) if v)
        paths = [folder / n for n in names if (folder / n).is_file()]
        origin = f"validation split of {index} ({len(paths)} files)"
    else:
        paths = list_images(folder)
        origin = f"fixed sample of {folder} (no cache index)"
    if limit is not None and len(paths) > limit:
        pick = np.random.default_rng(seed).choice(len(paths), limit, replace=False)
        paths = [paths[i] for i in sorted(pick)]
    return paths, origin


# ------------------------------------------------------------------------------------------------------ clips


def worst_picture(image: np.ndarray, output: np.ndarray, changed: np.ndarray, height: int = 320) -> np.ndarray:
    scale = height / image.shape[0]
    size = (max(1, round(image.shape[1] * scale)), height)
    cells = [cv2.resize(im, size, interpolation=cv2.INTER_AREA) for im in (image, output, tint(output, changed))]
    return np.hstack(cells)


def evaluate_clip(path: Path, config: PipelineConfig, max_frames: int | None = None, out_dir: Path | None = None,
                  progress: bool = True) -> dict:
    """Run one clip in video mode through the offline stages and measure what changed (see the module doc)."""
    pipeline = build_pipeline(config)
    source = VideoFileSource(path)
    total = source.info.frame_count if source.info else None
    if max_frames is not None:
        total = min(total or max_frames, max_frames)
    bar = tqdm(total=total, unit="frame", desc=Path(path).name[:40], disable=not progress, dynamic_ncols=True)
    acc = {"frames": 0, "with_face": 0, "touched": 0, "replaced": 0, "face_px": 0, "face_changed": 0,
           "touched_frames": [], "worst": None}

    def sink(frame: Frame) -> None:
        output = frame.result()
        changed = changed_pixels(frame.image, output) if frame.output is not None else np.zeros(frame.image.shape[:2], bool)
        oval = faces_oval(frame.faces, frame.image.shape)
        n_face, n_changed = int(oval.sum()), int((changed & oval).sum())
        acc["frames"] += 1
        acc["with_face"] += bool(frame.faces)
        acc["face_px"] += n_face
        acc["face_changed"] += n_changed
        if changed.any():
            acc["touched"] += 1
            acc["touched_frames"].append(frame.index)
        acc["replaced"] += replaced_any(frame.replaced)
        worst = acc["worst"]
        if changed.any() and (worst is None or (n_changed, int(changed.sum())) > (worst["face_changed"], worst["changed"])):
            acc["worst"] = {"index": frame.index, "face_changed": n_changed, "changed": int(changed.sum()),
                            "face_share": n_changed / max(n_face, 1),
                            "picture": worst_picture(frame.image, output, changed)}
        bar.update(1)

    frames = source if max_frames is None else itertools.islice(iter(source), max_frames)
    t0 = time.perf_counter()
    try:
        run_stages(frames, pipeline.stages, sink, policy="offline")
    finally:
        wall = time.perf_counter() - t0
        bar.close()
        source.close()
        pipeline.close()
    n = max(acc["frames"], 1)
    worst = acc["worst"]
    report = {
        "clip": Path(path).name, "frames": acc["frames"], "frames_with_face": acc["with_face"],
        "frames_touched": acc["touched"], "frames_touched_share": acc["touched"] / n,
        "frames_replaced": acc["replaced"], "frames_replaced_share": acc["replaced"] / n,
        "face_pixels": acc["face_px"], "face_pixels_changed": acc["face_changed"],
        "face_pixels_changed_share": acc["face_changed"] / max(acc["face_px"], 1),
        "touched_frame_indices": acc["touched_frames"][:200],
        "worst_frame": None, "fps": acc["frames"] / wall if wall > 0 else None, "wall_s": wall,
    }
    if worst is not None:
        report["worst_frame"] = {k: v for k, v in worst.items() if k != "picture"}
        if out_dir is not None:
            picture = Path(out_dir) / f"worst_{Path(path).stem}.jpg"
            picture.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(picture), worst["picture"])
            report["worst_frame"]["picture"] = picture.name
    return report


# ----------------------------------------------------------------------------------------------------- photos


def evaluate_photos(paths: list[Path], config: PipelineConfig, out_dir: Path | None = None, grid_max: int = 24,
                    progress: bool = True) -> dict:
    """Run clean photos one by one in photo mode; the share that comes out bit-identical, and what changed."""
    pipeline = build_pipeline(config)
    photos = with_face = identical = visible = unreadable = 0
    touched: list[dict] = []
    rows: list[np.ndarray] = []
    t0 = time.perf_counter()
    try:
        for i, path in enumerate(tqdm(paths, desc="clean photos", unit="photo", disable=not progress, dynamic_ncols=True)):
            image = read_image(path)
            if image is None:
                unreadable += 1
                continue
            frame = run_frame(pipeline, image, i)
            photos += 1
            with_face += bool(frame.faces)
            output = frame.result()
            if np.array_equal(output, image):
                identical += 1
                continue
            changed = changed_pixels(image, output)
            visible += bool(changed.any())
            replaced = frame.replaced > 0 if frame.replaced is not None else (output != image).any(axis=2)
            oval = faces_oval(frame.faces, image.shape)
            touched.append({"photo": path.name, "replaced_pixels": int(replaced.sum()),
                            "visibly_changed_pixels": int(changed.sum()),
                            "face_oval_replaced_share": float((replaced & oval).sum() / max(oval.sum(), 1)),
                            "fillers": filler_counts(frame)})
            if len(rows) < grid_max:
                ys, xs = face_crop(image, frame.faces[0].landmarks if frame.faces else None)
                rows.append(np.hstack([fit_cell(image[ys, xs]), fit_cell(output[ys, xs]),
                                       fit_cell(tint(output, replaced)[ys, xs])]))
    finally:
        pipeline.close()
    wall = time.perf_counter() - t0
    grid = save_grid(rows, Path(out_dir) / "touched_photos.jpg") if out_dir is not None else None
    touched.sort(key=lambda t: -t["replaced_pixels"])
    return {
        "photos": photos, "unreadable": unreadable, "photos_with_face": with_face,
        "bit_identical": identical, "bit_identical_share": identical / max(photos, 1),
        "visibly_touched": visible, "visibly_touched_share": visible / max(photos, 1),
        "touched": touched, "grid": grid.name if grid else None,
        "s_per_photo": wall / max(photos, 1),
    }


# ------------------------------------------------------------------------------------------------------ report


def markdown(report: dict) -> str:
    parts = ["# Do no harm", "", f"Models: {report['mode']}. A pixel is *visibly changed* when a channel moves by "
             f"more than {VISIBLE} levels; *replaced* = the pipeline changed it at all (`frame.replaced`).", ""]
    clips = report.get("clips")
    if clips:
        t = clips["total"]
        def worst(c: dict) -> str:
            w = c["worst_frame"]
            return "–" if w is None else f"#{w['index']} ({pct(w['face_share'], 2)} of face)"

        rows = [[c["clip"], c["frames"], c["frames_with_face"], pct(c["frames_touched_share"]),
                 pct(c["frames_replaced_share"]), pct(c["face_pixels_changed_share"], 3), worst(c),
                 f"{c['fps']:.1f}" if c["fps"] else "–"] for c in clips["per_clip"]]
        rows.append(["**all**", t["frames"], t["frames_with_face"], pct(t["frames_touched_share"]),
                     pct(t["frames_replaced_share"]), pct(t["face_pixels_changed_share"], 3), "", ""])
        rows.append(["target", "", "", f"≤ {pct(TARGET_FRAMES_TOUCHED)}", f"(≤ {pct(TARGET_FRAMES_TOUCHED)})",
                     f"≤ {pct(TARGET_FACE_PIXELS)}", "", ""])
        rows.append(["met", "", "", verdict(t["frames_touched_share"] <= TARGET_FRAMES_TOUCHED),
                     verdict(t["frames_replaced_share"] <= TARGET_FRAMES_TOUCHED),
                     verdict(t["face_pixels_changed_share"] <= TARGET_FACE_PIXELS), "", ""])
        parts += ["## Clean clips (video mode)", "",
                  markdown_table(["clip", "frames", "with face", "frames touched (>12)", "frames replaced (any)",
                                  "face pixels changed (>12)", "worst frame", "fps"], rows), ""]
        pictures = [c["worst_frame"]["picture"] for c in clips["per_clip"]
                    if c["worst_frame"] and c["worst_frame"].get("picture")]
        if pictures:
            parts += ["Worst frames (before | after | changed pixels tinted): " + ", ".join(f"`{p}`" for p in pictures), ""]
    photos = report.get("photos")
    if photos:
        parts += ["## Clean photos (photo mode)", "", f"Photos: {photos['source']}.", "",
                  markdown_table(["photos", "with face", "bit-identical", "target", "met", "visibly touched"],
                                 [[photos["photos"], photos["photos_with_face"], pct(photos["bit_identical_share"]),
                                   f"≥ {pct(TARGET_BIT_IDENTICAL)}",
                                   verdict(photos["bit_identical_share"] >= TARGET_BIT_IDENTICAL),
                                   pct(photos["visibly_touched_share"])]]), ""]
        if photos["touched"]:
            rows = [[t["photo"], t["replaced_pixels"], t["visibly_changed_pixels"], pct(t["face_oval_replaced_share"], 2),
                     ", ".join(f"{k} {v}" for k, v in sorted(t["fillers"].items()))] for t in photos["touched"][:20]]
            parts += [f"Touched photos (largest first{', first 20' if len(photos['touched']) > 20 else ''}); grid "
                      f"`{photos['grid']}` (before | after | replaced tinted):", "",
                      markdown_table(["photo", "replaced px", "visibly changed px", "of face oval", "fillers (px)"], rows), ""]
    parts += [f"Wall time: {report['wall_s']:.0f} s.", ""]
    return "\n".join(parts)


def clip_totals(per_clip: list[dict]) -> dict:
    frames = sum(c["frames"] for c in per_clip)
    face_px = sum(c["face_pixels"] for c in per_clip)
    return {"frames": frames, "frames_with_face": sum(c["frames_with_face"] for c in per_clip),
            "frames_touched_share": sum(c["frames_touched"] for c in per_clip) / max(frames, 1),
            "frames_replaced_share": sum(c["frames_replaced"] for c in per_clip) / max(frames, 1),
            "face_pixels_changed_share": sum(c["face_pixels_changed"] for c in per_clip) / max(face_px, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clips", nargs="*", help="clean clips (default: the clean clips of --side's people)")
    p.add_argument("--side", default="report", choices=("report", "calibrate", "train"),
                   help="which people of splits/people.json (default report: nothing is tuned on them)")
    p.add_argument("--photos", default=str(DEFAULT_PHOTOS), help="folder of clean CelebA photos")
    p.add_argument("--index", default=str(DEFAULT_INDEX), help="cache index whose `val` files are the photos to use")
    p.add_argument("--limit", type=int, default=500, help="photos to run")
    p.add_argument("--frames", type=int, default=None, help="at most this many frames per clip")
    p.add_argument("--model", action="append", default=[], help="model name or .onnx (repeatable; default: shipped)")
    p.add_argument("--provider", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-clips", action="store_true")
    p.add_argument("--no-photos", action="store_true")
    p.add_argument("--out", default=str(ROOT / "docs" / "do_no_harm"))
    args = p.parse_args(argv)

    clips: list[Path] = []
    if not args.no_clips:
        clips = [Path(c) for c in args.clips] if args.clips else [SHARED / c.path for c in clips_of(args.side, clean=True)]
        missing = [str(c) for c in clips if not c.is_file()]
        if not clips or missing:
            print(f"error: clean clips not found: {', '.join(missing) or str(SHARED)}", file=sys.stderr)
            return 2
    photos_dir = Path(args.photos)
    if not args.no_photos and not photos_dir.is_dir():
        print(f"error: photo folder not found: {photos_dir}", file=sys.stderr)
        return 2
    out = Path(args.out)
    video_config = pipeline_config(tuple(args.model), args.provider, args.threads)
    photo_config = pipeline_config(tuple(args.model), args.provider, args.threads, photo=True)
    t0 = time.perf_counter()
    try:
        probe = build_pipeline(photo_config)
        mode = probe.mode
        probe.close()
        out.mkdir(parents=True, exist_ok=True)
        report: dict = {"mode": mode, "models": list(args.model) or "shipped default", "visible_level": VISIBLE,
                        "people": "given clips" if args.clips else f"{args.side} side of splits/people.json"}
        if clips:
            per_clip = [evaluate_clip(c, video_config, args.frames, out) for c in clips]
            report["clips"] = {"per_clip": per_clip, "total": clip_totals(per_clip), "max_frames": args.frames,
                               "targets": {"frames_touched_share": TARGET_FRAMES_TOUCHED,
                                           "face_pixels_changed_share": TARGET_FACE_PIXELS}}
        if not args.no_photos:
            paths, origin = validation_photos(photos_dir, Path(args.index), args.limit)
            if not paths:
                print(f"error: no photos found in {photos_dir}", file=sys.stderr)
                return 2
            report["photos"] = {"source": origin, **evaluate_photos(paths, photo_config, out),
                                "target_bit_identical_share": TARGET_BIT_IDENTICAL}
    except UnveilError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report["wall_s"] = time.perf_counter() - t0
    return write_report(out, report, markdown)


if __name__ == "__main__":
    sys.exit(main())
