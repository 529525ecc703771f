"""`unveil temporal-eval`: temporal stability measured on real clips with synthetic moving occluders.

For each clip, every frame is occluded by a moving occluder (trainer.occluders.moving) placed on the face found in
the clean frame; the occluded clip goes through the pipeline twice, temporal machinery off (no One Euro, no mask persistence, no face memory)
and on, with the same model, and each output is compared with the clean clip:
- PSNR / SSIM inside the face box and inside the occluded region (the hole);
- temporal error: mean |(out_t - out_t-1) - (clean_t - clean_t-1)| over the pixels occluded in frame t;
- flow-warped temporal error: the same with frame t-1 warped onto frame t by DIS optical flow computed on the clean
  frames (the flow-warping error of video-inpainting papers), counted where the flow is forward-backward consistent;
- landmark jitter of the tracked face on the clean clip (RMS residual after removing smooth motion with a
  Savitzky-Golay fit), raw vs One-Euro-smoothed, and the lag (frames) of the smoothed track behind the raw one
  during fast head motion, by cross-correlating their velocities.
`--compare-model NAME` runs another blind model (e.g. the recurrent one) on the same occluded frames and detections,
off and on, as variants "NAME off" / "NAME on" in the same JSON, plots and an extra table.
Torch-free: numpy, OpenCV and the runtime.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from realtime.choices import PROVIDERS
from realtime.detect import FaceDetector
from realtime.errors import UnveilError
from realtime.frame import Face, Frame
from realtime.one_euro import OneEuroFilter
from realtime.pipeline import PipelineConfig, build_pipeline
from realtime.sources import VideoFileSource, open_source
from realtime.track import FaceTracker, TrackerConfig
from trainer.evaluation.metrics import consistent_flow, dis_flow, flow_warp_error, psnr, ssim_map, temporal_error
from trainer.evaluation.plots import draw_series_plot
from trainer.occluders.layers import composite
from trainer.occluders.moving import OCCLUDER_KINDS, PALETTES, FaceAnchor, anchor_from_landmarks, paint_occluder

HOLE_ALPHA = 0.02        # occluder alpha above which a pixel counts as occluded (visibly changed)
FACE_BOX_GROW = 0.15     # the face region for PSNR/SSIM: the clean landmarks' box grown by this fraction per side


# --- landmark trajectories --------------------------------------------------------------------------------------------
def savgol_coefficients(window: int, order: int) -> np.ndarray:
    """Savitzky-Golay smoothing weights (centre value of a least-squares polynomial fit over `window` samples)."""
    if window % 2 == 0 or window <= order:
        raise UnveilError(f"Savitzky-Golay needs an odd window larger than the order, got {window}, {order}")
    half = window // 2
    vander = np.vander(np.arange(-half, half + 1, dtype=np.float64), order + 1, increasing=True)
    return np.linalg.pinv(vander)[0]


def savgol_fit(series: np.ndarray, window: int = 9, order: int = 2) -> np.ndarray:
    """The smooth part of a (T, ...) series, for the interior samples only: shape (T - window + 1, ...)."""
    w = savgol_coefficients(window, order)
    t = series.shape[0] - window + 1
    return sum(w[k] * series[k:k + t] for k in range(window))


def landmark_jitter(trajectory: np.ndarray, window: int = 9, order: int = 2) -> float:
    """RMS (px) of a (T, P, 2) landmark trajectory minus its Savitzky-Golay fit: motion faster than the fit follows."""
    if trajectory.shape[0] < window:
        return float("nan")
    half = window // 2
    residual = trajectory[half:trajectory.shape[0] - half] - savgol_fit(trajectory, window, order)
    return float(np.sqrt((residual**2).sum(axis=-1).mean()))


def tracking_lag(raw: np.ndarray, smoothed: np.ndarray, fast_quantile: float = 0.85, min_speed: float = 1.0,
                 max_lag: int = 6, min_fast: int = 5) -> tuple[float, int]:
    """(lag in frames of `smoothed` behind `raw`, number of fast frames) from (T, 2) centre trajectories.

    Fast frames: the smooth speed of `raw` is in its top (1 - fast_quantile) and at least `min_speed` px/frame.
    The lag maximises the cross-correlation of the two velocities over those frames (parabolic sub-frame peak);
    NaN when the clip has fewer than `min_fast` fast frames (too little fast motion to measure a lag on).
    """
    if raw.shape[0] < 2 * max_lag + 10:
        return float("nan"), 0
    v_raw, v_smooth = np.diff(raw, axis=0), np.diff(smoothed, axis=0)
    fit = np.pad(savgol_fit(raw, 9, 2), ((4, 4), (0, 0)), mode="edge")  # smooth motion, noise removed
    speed = np.linalg.norm(np.diff(fit, axis=0), axis=1)
    threshold = max(float(np.quantile(speed, fast_quantile)), min_speed)
    fast = np.flatnonzero(speed >= threshold)
    fast = fast[(fast >= max_lag) & (fast < len(v_raw) - max_lag)]
    if len(fast) < min_fast:
        return float("nan"), int(len(fast))
    lags = np.arange(-max_lag, max_lag + 1)
    score = np.array([(v_raw[fast] * v_smooth[fast + k]).sum() for k in lags])
    best = int(np.argmax(score))
    peak = float(lags[best])
    if 0 < best < len(lags) - 1:
        left, mid, right = score[best - 1], score[best], score[best + 1]
        denom = left - 2 * mid + right
        if denom < 0:
            peak += 0.5 * (left - right) / denom
    return peak, int(len(fast))


def smoothed_landmarks(raw: list[np.ndarray | None], times: list[float], config: TrackerConfig) -> list[np.ndarray | None]:
    """The tracker's landmarks for a one-face clip (None where no face was found), with `config`'s smoothing."""
    tracker = FaceTracker(config)
    out: list[np.ndarray | None] = []
    for points, t in zip(raw, times):
        faces = [] if points is None else [Face(box=_box_of(points), score=1.0, landmarks=points)]
        tracked = tracker.update(faces, t)
        out.append(tracked[0].landmarks.astype(np.float64) if tracked else None)
    return out


def longest_run(items: list) -> tuple[int, int]:
    """[start, end) of the longest run of items that are not None."""
    best, start = (0, 0), None
    for i, item in enumerate(items + [None]):
        if item is not None and start is None:
            start = i
        elif item is None and start is not None:
            best = max(best, (start, i), key=lambda r: r[1] - r[0])
            start = None
    return best


def landmark_stability(raw: list[np.ndarray | None], times: list[float], config: TrackerConfig) -> dict:
    """Jitter (px RMS) raw vs smoothed, and lag (frames) on fast motion, over the longest run of detected frames."""
    smooth = smoothed_landmarks(raw, times, replace(config, smooth=True))
    start, end = longest_run(raw)
    if end - start < 20:
        return {"frames": end - start, "jitter_raw_px": None, "jitter_smoothed_px": None, "lag_frames": None, "fast_frames": 0}
    r = np.stack(raw[start:end]).astype(np.float64)
    s = np.stack(smooth[start:end]).astype(np.float64)
    lag, fast = tracking_lag(r.mean(axis=1), s.mean(axis=1))
    return {
        "frames": end - start,
        "jitter_raw_px": landmark_jitter(r),
        "jitter_smoothed_px": landmark_jitter(s),
        "lag_frames": None if math.isnan(lag) else lag,
        "fast_frames": fast,
    }


def _box_of(points: np.ndarray) -> np.ndarray:
    return np.concatenate([points.min(axis=0), points.max(axis=0)]).astype(np.float32)


def face_box(points: np.ndarray, frame_hw: tuple[int, int], grow: float = FACE_BOX_GROW) -> tuple[int, int, int, int]:
    """Integer (x0, y0, x1, y1): the landmarks' bounding box grown by `grow` of its size per side, inside the frame."""
    x0, y0, x1, y1 = _box_of(points)
    gx, gy = grow * (x1 - x0), grow * (y1 - y0)
    h, w = frame_hw
    return max(int(x0 - gx), 0), max(int(y0 - gy), 0), min(int(math.ceil(x1 + gx)), w), min(int(math.ceil(y1 + gy)), h)


# --- the evaluation loop -------------------------------------------------------------------------------------------
@dataclass
class FrameScores:
    index: int
    hole_fraction: float          # occluded share of the face region
    psnr_face: dict[str, float]   # variant ('off' / 'on') -> value
    ssim_face: dict[str, float]
    psnr_hole: dict[str, float]
    ssim_hole: dict[str, float]
    temporal_error: dict[str, float]
    warp_error: dict[str, float]
    hole_replaced: dict[str, float]  # share of the occluder's pixels the pipeline replaced (did it find it?)
    clean_change: float = float("nan")  # mean |clean_t - clean_t-1| over the hole: the temporal error of a frozen fill


VARIANTS = ("off", "on")


def variant_configs(config: PipelineConfig, compare: tuple[str, ...] = ()) -> dict[str, PipelineConfig]:
    """Temporal machinery off (no One Euro, no mask persistence per track, no face memory) and on, everything else
    equal; then the same two for each compared model ("NAME off", "NAME on"), which replaces the config's models."""
    def off_on(cfg: PipelineConfig) -> tuple[PipelineConfig, PipelineConfig]:
        off = replace(cfg, tracker=replace(cfg.tracker, smooth=False), find=replace(cfg.find, persist_frames=1),
                      fill=replace(cfg.fill, memory=replace(cfg.fill.memory, enabled=False)))
        on = replace(cfg, tracker=replace(cfg.tracker, smooth=True), find=replace(cfg.find, persist_frames=2),
                     fill=replace(cfg.fill, memory=replace(cfg.fill.memory, enabled=True)))
        return off, on

    variants = dict(zip(VARIANTS, off_on(config)))
    for model in compare:
        off, on = off_on(replace(config, models=(model,)))
        variants[f"{model} off"], variants[f"{model} on"] = off, on
    return variants


def run_after_detect(stages: list, frame: Frame, faces: list[Face]) -> Frame:
    """Run every stage but detection on a copy of `frame` carrying already detected `faces`."""
    copy = dataclasses.replace(frame, faces=list(faces), timings={}, output=None, replaced=None)
    for stage in stages:
        if stage.name != "detect":
            copy = stage.process(copy)
    return copy


def evaluate_clip(path: str, occluder: str, config: PipelineConfig, max_frames: int, palette: str,
                  show_progress: bool = True, compare: tuple[str, ...] = ()) -> dict:
    """Scores of one clip with one occluder: per-frame series for every variant, their means, landmark stability."""
    source = open_source(path)
    if not isinstance(source, VideoFileSource):
        source.close()
        raise UnveilError(f"{path} is not a video file; temporal-eval needs clips")
    pipelines = {name: build_pipeline(cfg) for name, cfg in variant_configs(config, compare).items()}
    variants = tuple(pipelines)
    clean_detector = FaceDetector(config.detector)
    anchor_filter = OneEuroFilter(1.0, 0.05)  # steadies the occluder's placement; it should not inherit mesh jitter
    raw_landmarks: list[np.ndarray | None] = []
    times: list[float] = []
    frames: list[FrameScores] = []
    prev: dict | None = None
    anchor: FaceAnchor | None = None
    total = min(max_frames, source.info.frame_count or max_frames)
    bar = tqdm(total=total, unit="frame", desc=f"{Path(path).name} [{occluder}]", disable=not show_progress, dynamic_ncols=True)
    try:
        for frame in source:
            if frame.index >= max_frames:
                break
            t = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else frame.index / 25.0
            clean = frame.image
            clean_faces = clean_detector.detect(clean)
            points = clean_faces[0].landmarks.astype(np.float64) if clean_faces else None
            raw_landmarks.append(points)
            times.append(t)
            if points is not None:
                a = anchor_from_landmarks(points)
                cx, cy, size = anchor_filter(np.array([a.cx, a.cy, a.size]), t)
                anchor = FaceAnchor(float(cx), float(cy), float(size))
            if anchor is None:  # no face yet: nothing to occlude or to score
                bar.update(1)
                continue
            alpha, colour = paint_occluder(occluder, frame.index, anchor, clean.shape[:2], palette)
            occluded = Frame(index=frame.index, image=composite(clean, alpha, colour, threshold=0.0)[0], pts=frame.pts, time_base=frame.time_base)
            detected = pipelines["on"].stage("detect").process(dataclasses.replace(occluded, faces=[])).faces
            done = {name: run_after_detect(p.stages, occluded, detected) for name, p in pipelines.items()}
            outputs = {name: f.result() for name, f in done.items()}
            if points is not None:
                box = face_box(points, clean.shape[:2])
            elif prev is not None:
                box = prev["box"]
            else:
                bar.update(1)
                continue
            # Every score is taken inside the face box (the flow too): the rest of the frame is not the model's work.
            x0, y0, x1, y1 = box
            roi = (slice(y0, y1), slice(x0, x1))
            hole = alpha[roi] > HOLE_ALPHA
            clean_roi = clean[roi]
            grey = cv2.cvtColor(clean_roi, cv2.COLOR_BGR2GRAY)
            scores = FrameScores(frame.index, float(hole.mean()), {}, {}, {}, {}, {}, {}, {})
            flow = valid = None
            if prev is not None:
                grey_prev = cv2.cvtColor(prev["clean"][roi], cv2.COLOR_BGR2GRAY)
                scores.clean_change = temporal_error(prev["clean"][roi], prev["clean"][roi], clean_roi, prev["clean"][roi], hole)
                flow = dis_flow(grey, grey_prev)
                valid = consistent_flow(flow, dis_flow(grey_prev, grey))
            for name, out in outputs.items():
                out_roi = out[roi]
                scores.psnr_face[name] = psnr(out_roi, clean_roi)
                scores.psnr_hole[name] = psnr(out_roi, clean_roi, hole)
                quality = ssim_map(out_roi, clean_roi)
                scores.ssim_face[name] = float(quality.mean())
                scores.ssim_hole[name] = float(quality[hole].mean()) if hole.any() else float("nan")
                replaced = done[name].replaced
                scores.hole_replaced[name] = (float("nan") if not hole.any() else
                                              0.0 if replaced is None else float((replaced[roi][hole] > 0).mean()))
                if prev is not None:
                    out_prev, clean_prev = prev["out"][name][roi], prev["clean"][roi]
                    scores.temporal_error[name] = temporal_error(out_roi, out_prev, clean_roi, clean_prev, hole)
                    scores.warp_error[name] = flow_warp_error(out_roi, out_prev, clean_roi, clean_prev, flow, hole & valid)
            frames.append(scores)
            prev = {"out": outputs, "clean": clean, "box": box}
            bar.update(1)
    finally:
        bar.close()
        source.close()
        clean_detector.close()
        for p in pipelines.values():
            p.close()
    return {
        "clip": str(path),
        "occluder": occluder,
        "palette": palette,
        "frames": len(frames),
        "variants": list(variants),
        "mean": summarise(frames, variants),
        "landmarks": landmark_stability(raw_landmarks, times, config.tracker),
        "series": series_of(frames, variants),
    }


METRICS = ("psnr_face", "ssim_face", "psnr_hole", "ssim_hole", "temporal_error", "warp_error", "hole_replaced")


def finite_mean(values: list[float]) -> float | None:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(kept)) if kept else None


def summarise(frames: list[FrameScores], variants: tuple[str, ...] = VARIANTS) -> dict:
    """metric -> variant -> mean over frames where it is defined (frames with an empty hole are skipped)."""
    means = {m: {v: finite_mean([getattr(f, m).get(v) for f in frames]) for v in variants} for m in METRICS}
    means["clean_change"] = finite_mean([f.clean_change for f in frames])
    return means


def series_of(frames: list[FrameScores], variants: tuple[str, ...] = VARIANTS) -> dict:
    def clean(x):
        return None if x is None or not math.isfinite(x) else round(float(x), 4)
    return {
        "index": [f.index for f in frames],
        "hole_fraction": [round(f.hole_fraction, 4) for f in frames],
        "clean_change": [clean(f.clean_change) for f in frames],
        **{m: {v: [clean(getattr(f, m).get(v)) for f in frames] for v in variants} for m in METRICS},
    }


# --- report: table and plots ----------------------------------------------------------------------------------------
def ratio(on: float | None, off: float | None) -> float | None:
    return None if on is None or off is None or off == 0 else on / off


def overall(results: list[dict]) -> dict:
    """Means over clips of the per-clip means, per occluder, and the bars of the brief checked."""
    by_occluder: dict[str, dict] = {}
    variants = results[0].get("variants", VARIANTS) if results else VARIANTS
    for occ in sorted({r["occluder"] for r in results}):
        rows = [r for r in results if r["occluder"] == occ]
        by_occluder[occ] = {m: {v: finite_mean([r["mean"][m][v] for r in rows]) for v in variants} for m in METRICS}
        by_occluder[occ]["clean_change"] = finite_mean([r["mean"]["clean_change"] for r in rows])
    lm = {}
    for r in results:
        lm.setdefault(r["clip"], r["landmarks"])
    jitter_raw = finite_mean([v["jitter_raw_px"] for v in lm.values()])
    jitter_smooth = finite_mean([v["jitter_smoothed_px"] for v in lm.values()])
    lags = [v["lag_frames"] for v in lm.values() if v["lag_frames"] is not None]
    return {
        "by_occluder": by_occluder,
        "temporal_error_ratio": {o: ratio(s["temporal_error"]["on"], s["temporal_error"]["off"]) for o, s in by_occluder.items()},
        "warp_error_ratio": {o: ratio(s["warp_error"]["on"], s["warp_error"]["off"]) for o, s in by_occluder.items()},
        "psnr_hole_change_db": {o: (None if s["psnr_hole"]["on"] is None or s["psnr_hole"]["off"] is None
                                    else s["psnr_hole"]["on"] - s["psnr_hole"]["off"]) for o, s in by_occluder.items()},
        "jitter_raw_px": jitter_raw,
        "jitter_smoothed_px": jitter_smooth,
        "jitter_ratio": ratio(jitter_smooth, jitter_raw),
        "lag_frames_max": max(lags) if lags else None,
        "lag_frames_mean": finite_mean(lags),
    }


def _fmt(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def markdown_table(results: list[dict], summary: dict, model: str) -> str:
    lines = [f"Model: `{model}`. Off = no One Euro, no mask persistence, no face memory; on = the defaults.", "",
             "Temporal errors are grey levels (0..255) over the occluded pixels; 'frozen' is the temporal error a fill that never "
             "changes would have (the clean face's own change under the occluder, e.g. a talking mouth).", "",
             "| clip | occluder | frames | temporal err off → on (frozen) | warp err off → on | PSNR hole off → on (dB) | SSIM hole off → on | PSNR face off → on (dB) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        m = r["mean"]
        lines.append(f"| {Path(r['clip']).stem} | {r['occluder']} | {r['frames']} | "
                     f"{_fmt(m['temporal_error']['off'])} → {_fmt(m['temporal_error']['on'])} ({_fmt(m['clean_change'])}) | "
                     f"{_fmt(m['warp_error']['off'])} → {_fmt(m['warp_error']['on'])} | "
                     f"{_fmt(m['psnr_hole']['off'])} → {_fmt(m['psnr_hole']['on'])} | "
                     f"{_fmt(m['ssim_hole']['off'], 3)} → {_fmt(m['ssim_hole']['on'], 3)} | "
                     f"{_fmt(m['psnr_face']['off'])} → {_fmt(m['psnr_face']['on'])} |")
    lines += ["", "| occluder | temporal err off → on (frozen) | temporal err on/off | warp err on/off | PSNR hole off → on (dB) | on − off | hole replaced off → on |",
              "|---|---|---|---|---|---|---|"]
    for occ, s in summary["by_occluder"].items():
        lines.append(f"| {occ} | {_fmt(s['temporal_error']['off'])} → {_fmt(s['temporal_error']['on'])} ({_fmt(s['clean_change'])}) | "
                     f"{_fmt(summary['temporal_error_ratio'][occ])} | {_fmt(summary['warp_error_ratio'][occ])} | "
                     f"{_fmt(s['psnr_hole']['off'])} → {_fmt(s['psnr_hole']['on'])} | {_fmt(summary['psnr_hole_change_db'][occ])} | "
                     f"{_fmt(s['hole_replaced']['off'])} → {_fmt(s['hole_replaced']['on'])} |")
    lines += ["", "| clip | frames | landmark jitter raw → smoothed (px RMS) | lag on fast motion (frames) | fast frames |",
              "|---|---|---|---|---|"]
    seen = set()
    for r in results:
        if r["clip"] in seen:
            continue
        seen.add(r["clip"])
        lm = r["landmarks"]
        lines.append(f"| {Path(r['clip']).stem} | {lm['frames']} | {_fmt(lm['jitter_raw_px'])} → {_fmt(lm['jitter_smoothed_px'])} | "
                     f"{_fmt(lm['lag_frames'])} | {lm['fast_frames']} |")
    lines += ["", f"Mean landmark jitter {_fmt(summary['jitter_raw_px'])} → {_fmt(summary['jitter_smoothed_px'])} px "
              f"(ratio {_fmt(summary['jitter_ratio'])}); lag on fast motion: mean {_fmt(summary['lag_frames_mean'])}, "
              f"max {_fmt(summary['lag_frames_max'])} frames.", ""]
    if len(results[0].get("variants", VARIANTS) if results else VARIANTS) > len(VARIANTS):
        lines += comparison_table(results, summary, model)
    return "\n".join(lines)


def comparison_table(results: list[dict], summary: dict, model: str) -> list[str]:
    """Every variant (the model off / on, each compared model off / on) side by side, per occluder then per clip;
    ratios and differences are against the model with smoothing off."""
    variants = results[0]["variants"]
    name = lambda v: f"{model} {v}" if v in VARIANTS else v
    lines = ["", "All variants, against `" + model + " off` (temporal err ratio ≤ 0.60 with PSNR hole ≥ −0.3 dB is the bar):", "",
             "| occluder | variant | temporal err | ratio | warp err | ratio | PSNR hole (dB) | Δ | SSIM hole | PSNR face (dB) | hole replaced |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for occ, s in summary["by_occluder"].items():
        for v in variants:
            delta = None if s["psnr_hole"][v] is None or s["psnr_hole"]["off"] is None else s["psnr_hole"][v] - s["psnr_hole"]["off"]
            lines.append(f"| {occ} | {name(v)} | {_fmt(s['temporal_error'][v])} | {_fmt(ratio(s['temporal_error'][v], s['temporal_error']['off']))} | "
                         f"{_fmt(s['warp_error'][v])} | {_fmt(ratio(s['warp_error'][v], s['warp_error']['off']))} | "
                         f"{_fmt(s['psnr_hole'][v])} | {_fmt(delta)} | {_fmt(s['ssim_hole'][v], 3)} | {_fmt(s['psnr_face'][v])} | "
                         f"{_fmt(s['hole_replaced'][v])} |")
    lines += ["", "| clip | occluder | " + " | ".join(f"{name(v)}: temporal err / PSNR hole" for v in variants) + " |",
              "|---|---|" + "---|" * len(variants)]
    for r in results:
        m = r["mean"]
        lines.append(f"| {Path(r['clip']).stem} | {r['occluder']} | "
                     + " | ".join(f"{_fmt(m['temporal_error'][v])} / {_fmt(m['psnr_hole'][v])}" for v in variants) + " |")
    return lines + [""]



def write_plots(results: list[dict], plot_dir: Path) -> list[Path]:
    """One PNG per clip and occluder: temporal error, warp error and hole PSNR over time, off vs on."""
    plot_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for r in results:
        s = r["series"]
        panels = [draw_series_plot(s["temporal_error"], f"{Path(r['clip']).stem} [{r['occluder']}] temporal error", "grey levels"),
                  draw_series_plot(s["warp_error"], "flow-warped temporal error", "grey levels"),
                  draw_series_plot(s["psnr_hole"], "PSNR inside the occluded region", "dB")]
        path = plot_dir / f"{Path(r['clip']).stem}__{r['occluder']}.png"
        cv2.imwrite(str(path), np.vstack(panels), [cv2.IMWRITE_PNG_COMPRESSION, 9])
        written.append(path)
    return written


# --- the command ------------------------------------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("clips", nargs="+", metavar="CLIP", help="video files of (one) talking face")
    parser.add_argument("--occluder", action="append", choices=OCCLUDER_KINDS, metavar="KIND",
                        help=f"moving occluder ({', '.join(OCCLUDER_KINDS)}); repeat for several (default: bar and text)")
    parser.add_argument("--palette", default="natural", choices=PALETTES,
                        help="occluder colours: natural, or magenta (what the tiny test model detects)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME|PATH", help="blind model (default: shipped)")
    parser.add_argument("--compare-model", action="append", default=[], metavar="NAME|PATH",
                        help="another blind model run on the same frames, off and on (e.g. a recurrent one); repeatable")
    parser.add_argument("--provider", default="auto", choices=list(PROVIDERS))
    parser.add_argument("--frames", type=int, default=120, help="frames per clip at most")
    parser.add_argument("--json", metavar="PATH", help="write every score (means and per-frame series) as JSON")
    parser.add_argument("--plot-dir", metavar="DIR", help="write PNG plots of the metrics over time, off vs on")
    parser.add_argument("--table", metavar="PATH", help="write the markdown table")


def run(args: argparse.Namespace) -> int:
    if args.frames < 3:
        raise UnveilError(f"--frames must be at least 3, got {args.frames}")
    for clip in args.clips:
        if not Path(clip).is_file():
            raise UnveilError(f"clip not found: {clip}")
    occluders = args.occluder or ["bar", "text"]
    config = PipelineConfig(models=tuple(args.model), provider=args.provider)
    compare = tuple(args.compare_model)
    if len(set(compare)) != len(compare) or set(compare) & set(args.model):
        raise UnveilError("--compare-model: each model once, and not the --model itself")
    results = [evaluate_clip(clip, occ, config, args.frames, args.palette, compare=compare)
               for clip in args.clips for occ in occluders]
    summary = overall(results)
    model = ", ".join(args.model) or "shipped default"
    table = markdown_table(results, summary, model)
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps({"model": model, "summary": summary, "clips": results}))
    if args.table:
        Path(args.table).write_text(table)
    if args.plot_dir:
        write_plots(results, Path(args.plot_dir))
    return 0
