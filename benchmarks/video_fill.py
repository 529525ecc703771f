"""Issue #13's video targets: Unveil's fill of moving occluders on real clips, against OpenCV Telea given the true mask.

    python -m benchmarks.video_fill [CLIPS...] [--frames N] [--arrive-s 2.0] [--occluders bar,text,hand]
                                    [--model M ...] [--out DIR]

For each clip, each occluder kind and two schedules,
- "arrives":    the occluder appears at --arrive-s seconds, after the face has been seen clean (memory can help);
- "from-start": the occluder is there from the first frame (nothing of the hidden face was ever seen),
a moving occluder (trainer.occluders.moving, placed from the landmarks detected on each CLEAN frame, smoothed
exactly as `unveil temporal-eval` does) is composited over the clean frames. The occluded frames go through one
fresh Unveil pipeline per (clip, kind, schedule), in order. The baseline is OpenCV Telea (radius 3) given the TRUE
occluder mask (alpha > 0.02) dilated by 1 px, over the whole frame.

Scores are taken on the HOLE = true occluder mask ∩ the face oval of the clean frame's landmarks (Unveil never
repaints outside the face by design), on frames whose hole has at least MIN_HOLE_PX pixels; for "arrives" only from
the arrival frame on:
- PSNR and SSIM inside the hole (mean over frames);
- sharpness: the output's gradient energy over the clean frame's inside the hole (sum of squared Sobel gradients of
  the grey image, summed over the scored frames, then divided; a blur gives < 1);
- temporal error: mean |(out_t - out_t-1) - (clean_t - clean_t-1)| over the hole of frame t
  (trainer.evaluation.metrics.temporal_error);
- the share of hole pixels Unveil replaced (frame.replaced > 0) and, of those, the share each filler made.
Per (kind, schedule) the per-clip means are averaged over clips. Writes video_fill.json (every number, per-frame
series too), video_fill.md (the tables) and video_fill_strip.jpg (one clip and kind, 3 frames after the arrival;
rows: occluded | Unveil | Telea | clean) into --out.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from realtime.detect import FaceDetector
from realtime.errors import UnveilError
from realtime.fill import FILLERS
from realtime.frame import Frame
from realtime.one_euro import OneEuroFilter
from realtime.pipeline import PipelineConfig, build_pipeline
from realtime.process import Gathered, gather, render_stages, use_gathered
from realtime.align import transform_points
from realtime.regions import dilate, face_oval, face_region
from trainer.evaluation.metrics import psnr, ssim_map, temporal_error
from trainer.evaluation.temporal import HOLE_ALPHA
from trainer.occluders.layers import composite
from trainer.occluders.moving import OCCLUDER_KINDS, PALETTES, FaceAnchor, anchor_from_landmarks, paint_occluder

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CLIP_DIR = REPO.parent / "shared" / "data" / "videos"
DEFAULT_OUT = REPO / "docs" / "video_fill"
SCHEDULES: tuple[str, ...] = ("arrives", "from-start")
METHODS: tuple[str, ...] = ("unveil", "telea")
NAMED_FILLERS: tuple[str, ...] = FILLERS[1:]     # memory, mirror, network, inpaint
MIN_HOLE_PX = 32          # a frame is scored when the occluder covers at least this many face pixels
TELEA_RADIUS = 3
TELEA_DILATE_PX = 1
ROI_PAD = 16              # metrics are computed on the hole's box grown by this (SSIM window, Sobel) -- same values
STRIP_WIDTH = 900
STRIP_COLUMNS = 3


# --- the schedule ---------------------------------------------------------------------------------------------------
def arrival_index(arrive_s: float, fps: float) -> int:
    """The first frame showing the occluder in the "arrives" schedule."""
    if arrive_s < 0:
        raise UnveilError(f"--arrive-s must be >= 0, got {arrive_s}")
    return int(round(arrive_s * fps))


def first_occluded(schedule: str, arrival: int) -> int:
    """The first frame index that carries the occluder (and is scored) in `schedule`."""
    if schedule == "arrives":
        return arrival
    if schedule == "from-start":
        return 0
    raise UnveilError(f"unknown schedule {schedule!r} (choose {', '.join(SCHEDULES)})")


def occluder_on(schedule: str, index: int, arrival: int) -> bool:
    return index >= first_occluded(schedule, arrival)


# --- the occluder's placement (the same anchor logic as trainer.evaluation.temporal) -----------------------------
def smoothed_anchors(landmarks: list[np.ndarray | None], fps: float) -> list[FaceAnchor | None]:
    """Per frame, the occluder's anchor: the clean landmarks' anchor through a One Euro filter (1.0 Hz, beta 0.05) on
    the clip's clock; a frame without a face keeps the last anchor; None until the first face."""
    smoother = OneEuroFilter(1.0, 0.05)
    anchor: FaceAnchor | None = None
    anchors: list[FaceAnchor | None] = []
    for i, points in enumerate(landmarks):
        if points is not None:
            a = anchor_from_landmarks(points)
            cx, cy, size = smoother(np.array([a.cx, a.cy, a.size]), i / fps)
            anchor = FaceAnchor(float(cx), float(cy), float(size))
        anchors.append(anchor)
    return anchors


# --- masks ----------------------------------------------------------------------------------------------------------
def face_oval_mask(landmarks: np.ndarray, frame_hw: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the polygon of the mesh's FACE_OVAL points (frame pixels)."""
    h, w = frame_hw
    return face_oval(landmarks, (h, w))


def hole_mask(alpha: np.ndarray, oval: np.ndarray) -> np.ndarray:
    """The scored pixels: where the occluder is visible (alpha > HOLE_ALPHA) and the face is."""
    return (alpha > HOLE_ALPHA) & oval


def telea_mask(alpha: np.ndarray) -> np.ndarray:
    """The baseline's (true) mask: every visibly changed pixel, grown by TELEA_DILATE_PX."""
    return dilate(alpha > HOLE_ALPHA, TELEA_DILATE_PX)


def telea_fill(image: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """OpenCV Telea inpainting of the occluded image given the true mask (the image itself when nothing is covered)."""
    if alpha is None:
        return image
    mask = telea_mask(alpha)
    if not mask.any():
        return image
    return cv2.inpaint(image, mask.astype(np.uint8), TELEA_RADIUS, cv2.INPAINT_TELEA)


def roi_of(mask: np.ndarray, pad: int = ROI_PAD) -> tuple[slice, slice]:
    """The box around `mask` grown by `pad`, inside the image (the whole image for an empty mask)."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return slice(None), slice(None)
    h, w = mask.shape
    return (slice(max(int(ys.min()) - pad, 0), min(int(ys.max()) + pad + 1, h)),
            slice(max(int(xs.min()) - pad, 0), min(int(xs.max()) + pad + 1, w)))


# --- metrics --------------------------------------------------------------------------------------------------------
def gradient_energy(image: np.ndarray, region: np.ndarray) -> float:
    """Sum over `region` of the squared Sobel gradients (3x3) of the grey image (grey levels^2)."""
    grey = (cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image).astype(np.float32)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
    return float((gx[region].astype(np.float64) ** 2 + gy[region].astype(np.float64) ** 2).sum())


def sharpness_ratio(fill: np.ndarray, clean: np.ndarray, region: np.ndarray) -> float:
    """The fill's gradient energy over the clean image's inside `region`: 1 = as much detail, < 1 = blurrier."""
    reference = gradient_energy(clean, region)
    return float("nan") if reference <= 0 else gradient_energy(fill, region) / reference


def filler_codes(frame: Frame) -> np.ndarray:
    """(H, W) uint8: which filler (realtime.fill.FILLERS code) made each pixel of the frame; 0 = none."""
    codes = np.zeros(frame.image.shape[:2], np.uint8)
    for face in frame.faces:
        fill = getattr(face, "fill", None)
        if fill is None:
            continue
        x0, y0, x1, y1 = fill.box
        block = codes[y0:y1, x0:x1]
        source = fill.source[: block.shape[0], : block.shape[1]]
        block[source > 0] = source[source > 0]
    return codes


def filler_counts(codes: np.ndarray, region: np.ndarray) -> dict[str, int]:
    """Pixels of `region` made by each named filler."""
    counts = np.bincount(codes[region].ravel(), minlength=len(FILLERS))
    return {name: int(counts[FILLERS.index(name)]) for name in NAMED_FILLERS}


def shares(counts: dict[str, int]) -> dict[str, float | None]:
    """Counts as shares of their total (None when nothing was counted)."""
    total = sum(counts.values())
    return {k: (v / total if total else None) for k, v in counts.items()}


def replaced_share(replaced: np.ndarray | None, hole: np.ndarray) -> float:
    """The share of `hole` pixels the pipeline replaced (0 when it replaced nothing)."""
    if not hole.any():
        return float("nan")
    return 0.0 if replaced is None else float((replaced[hole] > 0).mean())


def score_frame(outputs: dict[str, np.ndarray], clean: np.ndarray, hole: np.ndarray,
                previous: dict[str, np.ndarray] | None, clean_prev: np.ndarray | None) -> dict:
    """Every per-frame score of each method's output against the clean frame, over `hole` (computed on its box)."""
    roi = roi_of(hole)
    h = hole[roi]
    c = clean[roi]
    scores: dict = {"hole_px": int(hole.sum()), "clean_energy": gradient_energy(c, h),
                    "psnr": {}, "ssim": {}, "energy": {}, "temporal": {}}
    scores["frozen_temporal"] = (temporal_error(clean_prev[roi], clean_prev[roi], c, clean_prev[roi], h)
                                 if clean_prev is not None else float("nan"))
    for name, out in outputs.items():
        o = out[roi]
        scores["psnr"][name] = psnr(o, c, h)
        scores["ssim"][name] = float(ssim_map(o, c)[h].mean())
        scores["energy"][name] = gradient_energy(o, h)
        scores["temporal"][name] = (temporal_error(o, previous[name][roi], c, clean_prev[roi], h)
                                    if previous is not None and clean_prev is not None else float("nan"))
    return scores


def finite_mean(values) -> float | None:
    kept = [float(v) for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(kept)) if kept else None


def summarise_run(frames: list[dict]) -> dict:
    """Means of one (clip, kind, schedule) run over its scored frames."""
    out: dict = {"frames": len(frames)}
    for metric in ("psnr", "ssim", "temporal", "psnr_replaced"):
        out[metric] = {m: finite_mean(f[metric][m] for f in frames) for m in METHODS}
    clean_energy = sum(f["clean_energy"] for f in frames)
    out["sharpness"] = {m: (sum(f["energy"][m] for f in frames) / clean_energy if clean_energy > 0 else None)
                        for m in METHODS}
    out["frozen_temporal"] = finite_mean(f["frozen_temporal"] for f in frames)
    out["hole_replaced"] = finite_mean(f["hole_replaced"] for f in frames)
    counts = {k: sum(f["fillers"][k] for f in frames) for k in NAMED_FILLERS}
    out["filler_pixels"] = counts
    out["fillers"] = shares(counts)
    return out


def aggregate(runs: list[dict]) -> dict:
    """kind -> schedule -> means over clips of the per-run means (runs without scored frames are left out)."""
    summary: dict = {}
    for kind in dict.fromkeys(r["kind"] for r in runs):
        summary[kind] = {}
        for schedule in SCHEDULES:
            rows = [r["mean"] for r in runs if r["kind"] == kind and r["schedule"] == schedule and r["mean"]["frames"]]
            if not rows:
                continue
            s: dict = {"clips": len(rows), "frames": sum(r["frames"] for r in rows)}
            for metric in ("psnr", "ssim", "sharpness", "temporal", "psnr_replaced"):
                s[metric] = {m: finite_mean(r[metric][m] for r in rows) for m in METHODS}
            s["frozen_temporal"] = finite_mean(r["frozen_temporal"] for r in rows)
            s["hole_replaced"] = finite_mean(r["hole_replaced"] for r in rows)
            s["fillers"] = {k: finite_mean(r["fillers"][k] for r in rows) for k in NAMED_FILLERS}
            u, t = s["psnr"]["unveil"], s["psnr"]["telea"]
            s["psnr_delta_db"] = None if u is None or t is None else u - t
            u, t = s["temporal"]["unveil"], s["temporal"]["telea"]
            s["temporal_ratio"] = None if u is None or t is None or t == 0 else u / t
            summary[kind][schedule] = s
    return summary


# --- the table ------------------------------------------------------------------------------------------------------
def _f(x: float | None, digits: int = 2) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _pct(x: float | None) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{100 * x:.0f}%"


def fillers_cell(fillers: dict[str, float | None]) -> str:
    parts = [f"{k} {_pct(v)}" for k, v in fillers.items() if v]
    return " · ".join(parts) if parts else "—"


def markdown_table(summary: dict, runs: list[dict], meta: dict) -> str:
    lines = [f"Unveil: `{meta['mode']}` (models: {meta['models']}); baseline: OpenCV Telea (radius {TELEA_RADIUS}) "
             f"given the true occluder mask dilated by {TELEA_DILATE_PX} px. Occluder palette: {meta['palette']}; "
             f"'arrives' = occluder from {meta['arrive_s']} s on (scored from the arrival frame), 'from-start' = from frame 0. "
             f"Scores inside the hole = true occluder ∩ face oval, on frames where it has ≥ {MIN_HOLE_PX} px; means over "
             f"{meta['clips']} clip(s), ≤ {meta['frames']} frames each.", "",
             "| kind | schedule | PSNR Unveil / Telea (Δ dB) | SSIM Unveil / Telea | sharpness Unveil / Telea "
             "| temporal error Unveil / Telea (ratio) | hole replaced | fillers |",
             "|---|---|---|---|---|---|---|---|"]
    for kind, by_schedule in summary.items():
        for schedule, s in by_schedule.items():
            lines.append(
                f"| {kind} | {schedule} | {_f(s['psnr']['unveil'])} / {_f(s['psnr']['telea'])} ({_f(s['psnr_delta_db'])}) "
                f"| {_f(s['ssim']['unveil'], 3)} / {_f(s['ssim']['telea'], 3)} "
                f"| {_f(s['sharpness']['unveil'])} / {_f(s['sharpness']['telea'])} "
                f"| {_f(s['temporal']['unveil'])} / {_f(s['temporal']['telea'])} ({_f(s['temporal_ratio'])}) "
                f"| {_pct(s['hole_replaced'])} | {fillers_cell(s['fillers'])} |")
    lines += ["", "Sharpness: gradient energy of the output over the clean face's in the hole (1 = as detailed, < 1 = "
              "blurrier; seams at the hole's edge add energy). Temporal error in grey levels; a fill that never changed "
              "would score the 'frozen' value below. Fillers: share of the replaced hole pixels each filler made.", "",
              "Per run; 'PSNR on replaced px' scores both methods only on the hole pixels Unveil replaced (its fill "
              "quality apart from what the finder missed). ms/frame are over all frames of the run.", "",
              "| clip | kind | schedule | scored frames | PSNR Unveil / Telea | PSNR on replaced px Unveil / Telea "
              "| temporal err Unveil / Telea (frozen) | hole replaced | ms/frame Unveil / Telea |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        m = r["mean"]
        lines.append(f"| {Path(r['clip']).stem} | {r['kind']} | {r['schedule']} | {m['frames']} "
                     f"| {_f(m['psnr']['unveil'])} / {_f(m['psnr']['telea'])} "
                     f"| {_f(m['psnr_replaced']['unveil'])} / {_f(m['psnr_replaced']['telea'])} "
                     f"| {_f(m['temporal']['unveil'])} / {_f(m['temporal']['telea'])} ({_f(m['frozen_temporal'])}) "
                     f"| {_pct(m['hole_replaced'])} | {_f(r['timing']['unveil_ms'], 1)} / {_f(r['timing']['telea_ms'], 1)} |")
    lines += ["", f"Wall time {meta['wall_s']:.0f} s for {meta['pipeline_frames']} pipeline frames on {meta['provider']}.", ""]
    return "\n".join(lines)


# --- the picture strip ----------------------------------------------------------------------------------------------
def face_crop_box(landmarks: np.ndarray, frame_hw: tuple[int, int], grow: float = 0.3) -> tuple[int, int, int, int]:
    """A square (x0, y0, x1, y1) around the landmarks, grown by `grow` of their size per side, inside the frame."""
    lo, hi = landmarks.min(axis=0), landmarks.max(axis=0)
    cx, cy = (lo + hi) / 2.0
    half = (1.0 + 2.0 * grow) * float(max(hi - lo)) / 2.0
    h, w = frame_hw
    half = min(half, w / 2.0, h / 2.0)
    x0 = int(round(min(max(cx - half, 0.0), w - 2 * half)))
    y0 = int(round(min(max(cy - half, 0.0), h - 2 * half)))
    side = int(round(2 * half))
    return x0, y0, x0 + side, y0 + side


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    for colour, thickness in (((0, 0, 0), 3), ((255, 255, 255), 1)):
        cv2.putText(tile, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, thickness, cv2.LINE_AA)
    return tile


ROWS = ("occluded", "unveil", "telea", "clean")
ROW_LABELS = {"occluded": "occluded", "unveil": "Unveil", "telea": "Telea (true mask)", "clean": "clean"}


def strip_tiles(images: dict[str, np.ndarray], box: tuple[int, int, int, int], tile: int) -> dict[str, np.ndarray]:
    """The four images of one frame cropped to `box` and resized to tile x tile."""
    x0, y0, x1, y1 = box
    return {k: cv2.resize(images[k][y0:y1, x0:x1], (tile, tile), interpolation=cv2.INTER_AREA) for k in ROWS}


def pick_columns(candidates: list[dict], count: int = STRIP_COLUMNS) -> list[dict]:
    """`count` frames spread over the candidates whose hole is at least the median hole (in frame order)."""
    if len(candidates) <= count:
        return candidates
    median = float(np.median([c["hole_px"] for c in candidates]))
    big = [c for c in candidates if c["hole_px"] >= median]
    if len(big) < count:
        big = candidates
    picks = [big[int((2 * k + 1) * len(big) / (2 * count))] for k in range(count)]
    return picks


def compose_strip(columns: list[dict]) -> np.ndarray:
    """Rows occluded | Unveil | Telea | clean, one column per picked frame (tiles already resized), labelled."""
    rows = []
    for row in ROWS:
        tiles = []
        for c in columns:
            tile = c["tiles"][row].copy()
            _label(tile, f"{ROW_LABELS[row]}  f{c['index']}" if row == "occluded" else ROW_LABELS[row])
            tiles.append(tile)
        rows.append(np.hstack(tiles))
    return np.vstack(rows)


# --- clips ----------------------------------------------------------------------------------------------------------
@dataclass
class ClipInfo:
    path: Path
    fps: float
    frames: int           # frames that will be used (min of --frames and the clip's count, an estimate until read)
    note: str = ""


def probe_clip(path: Path, max_frames: int) -> ClipInfo | str:
    """The clip's fps and frame count, or a reason it cannot be used."""
    if not path.is_file():
        return "file not found"
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return "not a readable video"
        ok, image = cap.read()
        if not ok or image is None:
            return "no frame could be decoded"
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    finally:
        cap.release()
    note = ""
    if not math.isfinite(fps) or fps <= 0:
        fps, note = 25.0, "fps unknown, 25 assumed"
    return ClipInfo(path, fps, min(max_frames, count) if count > 0 else max_frames, note)


def read_frames(path: Path, max_frames: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        while len(frames) < max_frames:
            ok, image = cap.read()
            if not ok or image is None:
                break
            frames.append(image)
    finally:
        cap.release()
    return frames


def clean_landmarks(frames: list[np.ndarray], detector: FaceDetector) -> list[np.ndarray | None]:
    """The first face's landmarks in each clean frame (None where no face was found)."""
    out = []
    for image in frames:
        faces = detector.detect(image)
        out.append(faces[0].landmarks.astype(np.float64) if faces and faces[0].landmarks is not None else None)
    return out


# --- one run --------------------------------------------------------------------------------------------------------
@dataclass
class StripRequest:
    tile: int
    candidates: list[dict] = field(default_factory=list)


class TrueMaskFind:
    """A stand-in for the find stage that hands fill the TRUE occluder mask (`alpha`, set per frame): the fill
    measured apart from the finding, against Telea given the same mask (`--true-mask`)."""

    name = "find"
    surface = None  # no surface-change model: the pipeline's `mode` and `runners` read this

    def __init__(self) -> None:
        self.alpha: np.ndarray | None = None

    def process(self, frame: Frame) -> Frame:
        for face in frame.faces:
            if face.crop is None or face.landmarks is None:
                continue
            size = face.crop.shape[0]
            face.region = face_region(transform_points(face.landmarks, face.matrix), size)
            occluded = np.zeros((size, size), bool)
            if self.alpha is not None:
                covered = (self.alpha > HOLE_ALPHA).astype(np.float32)
                occluded = dilate(cv2.warpAffine(covered, face.matrix, (size, size)) > 0.1, 1)
            face.mask = (occluded & face.region).astype(np.float32)
            face.evidence = {"beyond": occluded & ~face.region}
        return frame

    def close(self) -> None:
        pass


def gather_with_true_mask(frames_and_alphas, config: PipelineConfig) -> Gathered:
    """Pass 1 as realtime.process.gather, but with the TRUE occluder mask as the find stage (frames one at a time,
    so that each frame meets its own mask): what the fill learns of the whole clip, apart from the finding."""
    t0 = time.perf_counter()
    pipeline = build_pipeline(config)
    pipeline.stage("fill").paint = False
    oracle = TrueMaskFind()
    stages = [oracle if stage.name == "find" else stage for stage in pipeline.stages if stage.name != "blend"]
    try:
        for frame, alpha in frames_and_alphas:
            oracle.alpha = alpha
            for stage in stages:
                frame = stage.process(frame)
    finally:
        pipeline.close()
    return Gathered(pipeline.stage("fill").memories, None, time.perf_counter() - t0)


def run_schedule(frames: list[np.ndarray], landmarks: list[np.ndarray | None], anchors: list[FaceAnchor | None],
                 fps: float, kind: str, schedule: str, arrival: int, config: PipelineConfig, palette: str,
                 bar: tqdm | None = None, strip: StripRequest | None = None, true_mask: bool = False,
                 two_pass: bool = False) -> dict:
    """Occlude the clean `frames` on `schedule`, run them through a fresh pipeline in order, score Unveil and Telea.
    `two_pass`: first gather the whole occluded clip, as `unveil process` does with a file (realtime.process)."""
    hw = frames[0].shape[:2]
    first = first_occluded(schedule, arrival)
    time_base = 1 / Fraction(fps).limit_denominator(1001)

    def occluded_frame(i: int, clean: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if anchors[i] is not None and occluder_on(schedule, i, arrival):
            alpha, colour = paint_occluder(kind, i, anchors[i], hw, palette)
            return composite(clean, alpha, colour, threshold=0.0)[0], alpha
        return clean, None

    gathered = None
    if two_pass and true_mask:
        def frame_and_alpha(i: int, clean: np.ndarray) -> tuple[Frame, np.ndarray | None]:
            image, alpha = occluded_frame(i, clean)
            return Frame(index=i, image=image, pts=i, time_base=time_base), alpha

        gathered = gather_with_true_mask((frame_and_alpha(i, c) for i, c in enumerate(frames)), config)
    elif two_pass:
        gathered = gather((Frame(index=i, image=occluded_frame(i, c)[0], pts=i, time_base=time_base)
                           for i, c in enumerate(frames)), config)
    pipeline = build_pipeline(config)
    if gathered is not None:
        use_gathered(pipeline, gathered)
    oracle = None
    if true_mask:
        oracle = TrueMaskFind()
        pipeline.stages = [oracle if stage.name == "find" else stage for stage in pipeline.stages]
    stages = render_stages(pipeline, gathered)
    scored: list[dict] = []
    previous: dict[str, np.ndarray] | None = None
    clean_prev: np.ndarray | None = None
    unveil_s = telea_s = 0.0
    start = time.perf_counter()
    try:
        for i, clean in enumerate(frames):
            occluded, alpha = occluded_frame(i, clean)
            if oracle is not None:
                oracle.alpha = alpha
            t0 = time.perf_counter()
            frame = Frame(index=i, image=occluded, pts=i, time_base=time_base)
            for stage in stages:
                frame = stage.process(frame)
            t1 = time.perf_counter()
            outputs = {"unveil": frame.result(), "telea": telea_fill(occluded, alpha)}
            t2 = time.perf_counter()
            unveil_s += t1 - t0
            telea_s += t2 - t1
            if alpha is not None and landmarks[i] is not None and i >= first:
                hole = hole_mask(alpha, face_oval_mask(landmarks[i], hw))
                if int(hole.sum()) >= MIN_HOLE_PX:
                    scores = score_frame(outputs, clean, hole, previous, clean_prev)
                    scores["index"] = i
                    scores["hole_replaced"] = replaced_share(frame.replaced, hole)
                    made = hole & (frame.replaced > 0) if frame.replaced is not None else np.zeros_like(hole)
                    scores["fillers"] = filler_counts(filler_codes(frame), made)
                    # fill quality apart from finding: both methods on the hole pixels Unveil did replace
                    scores["psnr_replaced"] = {m: psnr(o, clean, made) if made.sum() >= MIN_HOLE_PX else float("nan")
                                               for m, o in outputs.items()}
                    scored.append(scores)
                    if strip is not None:
                        box = face_crop_box(landmarks[i], hw)
                        strip.candidates.append({"index": i, "hole_px": scores["hole_px"], "tiles": strip_tiles(
                            {"occluded": occluded, "clean": clean, **outputs}, box, strip.tile)})
            previous, clean_prev = outputs, clean
            if bar is not None:
                bar.update(1)
        filled = pipeline.stage("fill").filled_pixels()
        mode = pipeline.mode
    finally:
        pipeline.close()
    n = max(len(frames), 1)
    return {
        "kind": kind, "schedule": schedule, "first_scored": first, "frames_run": len(frames), "mode": mode,
        "mean": summarise_run(scored),
        "filled_pixels_all_frames": filled,
        "passes": 2 if gathered is not None else 1,
        "timing": {"wall_s": time.perf_counter() - start, "unveil_ms": 1000 * unveil_s / n, "telea_ms": 1000 * telea_s / n},
        "series": series_of(scored),
    }


def series_of(frames: list[dict]) -> dict:
    def r(x):
        return None if x is None or not math.isfinite(x) else round(float(x), 4)
    return {
        "index": [f["index"] for f in frames],
        "hole_px": [f["hole_px"] for f in frames],
        "hole_replaced": [r(f["hole_replaced"]) for f in frames],
        "frozen_temporal": [r(f["frozen_temporal"]) for f in frames],
        **{metric: {m: [r(f[metric][m]) for f in frames] for m in METHODS}
           for metric in ("psnr", "ssim", "temporal", "psnr_replaced")},
        "sharpness": {m: [r(f["energy"][m] / f["clean_energy"]) if f["clean_energy"] > 0 else None for f in frames]
                      for m in METHODS},
        "fillers": [f["fillers"] for f in frames],
    }


# --- the command ----------------------------------------------------------------------------------------------------
def parse_kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in OCCLUDER_KINDS]
    if not kinds or unknown:
        raise argparse.ArgumentTypeError(f"occluders must be a comma list of {', '.join(OCCLUDER_KINDS)}; got {text!r}")
    return list(dict.fromkeys(kinds))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.video_fill", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clips", nargs="*", metavar="CLIP", help=f"video files (default: {DEFAULT_CLIP_DIR}/*.mp4)")
    p.add_argument("--frames", type=int, default=150, help="frames per clip at most (default 150)")
    p.add_argument("--arrive-s", type=float, default=2.0, help="when the occluder appears in the 'arrives' schedule")
    p.add_argument("--occluders", type=parse_kinds, default=["bar", "text", "hand"], metavar="KINDS",
                   help=f"comma list of {', '.join(OCCLUDER_KINDS)} (default bar,text,hand)")
    p.add_argument("--model", action="append", default=[], metavar="NAME|PATH",
                   help="a model for the pipeline, repeatable (default: the shipped defaults)")
    p.add_argument("--provider", default="cpu", choices=["auto", "cpu", "cuda", "tensorrt"])
    p.add_argument("--palette", default="natural", choices=PALETTES,
                   help="occluder colours (magenta: what the tiny test model detects)")
    p.add_argument("--two-pass", action="store_true",
                   help="gather the whole occluded clip first, as `unveil process` does with a file")
    p.add_argument("--true-mask", action="store_true",
                   help="fill the TRUE occluder mask instead of the one Unveil finds: the fill alone against Telea")
    p.add_argument("--strip-kind", choices=OCCLUDER_KINDS, help="occluder of the picture strip (default: the first)")
    p.add_argument("--out", default=str(DEFAULT_OUT), metavar="DIR", help="where the JSON, table and strip go")
    return p


def default_clips() -> list[Path]:
    return sorted(DEFAULT_CLIP_DIR.glob("*.mp4")) if DEFAULT_CLIP_DIR.is_dir() else []


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.frames < 3:
        print(f"video_fill: --frames must be at least 3, got {args.frames}", file=sys.stderr)
        return 2
    paths = [Path(c) for c in args.clips] or default_clips()
    if not paths:
        print(f"video_fill: no clip given and none found in {DEFAULT_CLIP_DIR}; pass video files", file=sys.stderr)
        return 2
    clips: list[ClipInfo] = []
    skipped: list[dict] = []
    for path in paths:
        info = probe_clip(path, args.frames)
        if isinstance(info, str):
            print(f"video_fill: skipping {path}: {info}", file=sys.stderr)
            skipped.append({"clip": str(path), "reason": info})
        else:
            clips.append(info)
    if not clips:
        print("video_fill: no readable clip; nothing to measure", file=sys.stderr)
        return 2
    kinds = args.occluders
    strip_kind = args.strip_kind or kinds[0]
    if strip_kind not in kinds:
        kinds = kinds + [strip_kind]
    config = PipelineConfig(models=tuple(args.model), provider=args.provider)
    try:
        build_pipeline(config).close()   # fail early, with the runtime's own message, on a missing model
    except UnveilError as e:
        print(f"video_fill: {e}", file=sys.stderr)
        return 2

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    runs: list[dict] = []
    clip_meta: list[dict] = []
    strip_candidates: list[dict] = []
    strip_source = None
    tile = STRIP_WIDTH // STRIP_COLUMNS
    bar = tqdm(total=sum(c.frames for c in clips) * len(kinds) * len(SCHEDULES), unit="frame", dynamic_ncols=True)
    detector = FaceDetector(config.detector)
    try:
        for clip in clips:
            frames = read_frames(clip.path, args.frames)
            if len(frames) != clip.frames:
                bar.total += (len(frames) - clip.frames) * len(kinds) * len(SCHEDULES)
                bar.refresh()
            t0 = time.perf_counter()
            landmarks = clean_landmarks(frames, detector)
            detect_s = time.perf_counter() - t0
            seen = sum(p is not None for p in landmarks)
            arrival = arrival_index(args.arrive_s, clip.fps)
            meta = {"clip": str(clip.path), "fps": clip.fps, "frames": len(frames), "faces_found": seen,
                    "arrival_index": arrival, "clean_detect_ms": 1000 * detect_s / max(len(frames), 1), "note": clip.note}
            clip_meta.append(meta)
            if seen == 0:
                print(f"video_fill: skipping {clip.path}: no face found in its clean frames", file=sys.stderr)
                skipped.append({"clip": str(clip.path), "reason": "no face found"})
                bar.total -= len(frames) * len(kinds) * len(SCHEDULES)
                bar.refresh()
                continue
            anchors = smoothed_anchors(landmarks, clip.fps)
            for kind in kinds:
                for schedule in SCHEDULES:
                    if schedule == "arrives" and arrival >= len(frames):
                        print(f"video_fill: {clip.path.name}: the occluder would arrive at frame {arrival}, after the "
                              f"{len(frames)} frames read; no 'arrives' run", file=sys.stderr)
                        bar.total -= len(frames)
                        bar.refresh()
                        continue
                    bar.set_description(f"{clip.path.stem[:28]} {kind} {schedule}")
                    want_strip = strip_source is None and kind == strip_kind and schedule == "arrives"
                    request = StripRequest(tile) if want_strip else None
                    run = run_schedule(frames, landmarks, anchors, clip.fps, kind, schedule, arrival, config,
                                       args.palette, bar, request, true_mask=args.true_mask,
                                       two_pass=args.two_pass)
                    run["clip"] = str(clip.path)
                    runs.append(run)
                    if request is not None and request.candidates:
                        strip_candidates, strip_source = request.candidates, (clip.path.stem, kind, schedule)
    finally:
        bar.close()
        detector.close()
    if not runs:
        print("video_fill: nothing was measured (no usable clip)", file=sys.stderr)
        return 2
    summary = aggregate(runs)
    meta = {
        "models": ", ".join(args.model) or "shipped defaults", "mode": runs[0]["mode"], "provider": args.provider,
        "passes": 2 if args.two_pass else 1,
        "palette": args.palette, "arrive_s": args.arrive_s, "frames": args.frames, "occluders": kinds,
        "clips": len({r["clip"] for r in runs}), "pipeline_frames": sum(r["frames_run"] for r in runs),
        "wall_s": time.perf_counter() - start, "min_hole_px": MIN_HOLE_PX,
        "hole_alpha": HOLE_ALPHA, "telea_radius": TELEA_RADIUS, "telea_dilate_px": TELEA_DILATE_PX,
    }
    table = markdown_table(summary, runs, meta)
    print(table)
    (out_dir / "video_fill.md").write_text(table)
    strip_path = out_dir / "video_fill_strip.jpg"
    if strip_candidates:
        columns = pick_columns(strip_candidates)
        cv2.imwrite(str(strip_path), compose_strip(columns), [cv2.IMWRITE_JPEG_QUALITY, 92])
        meta["strip"] = {"clip": strip_source[0], "kind": strip_source[1], "schedule": strip_source[2],
                         "frames": [c["index"] for c in columns], "file": strip_path.name}
    else:
        print("video_fill: no scored frame after the arrival for the picture strip; none written", file=sys.stderr)
    (out_dir / "video_fill.json").write_text(json.dumps(
        {"meta": meta, "summary": summary, "clips": clip_meta, "skipped": skipped, "runs": runs}, indent=1))
    print(f"wrote {out_dir / 'video_fill.md'}, {out_dir / 'video_fill.json'}"
          + (f", {strip_path}" if strip_candidates else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
