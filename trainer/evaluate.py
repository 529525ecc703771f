"""`unveil eval`: an ONNX model, run through realtime's ModelRunner, on the fixed validation occlusions of a dataset.

Every face is measured three ways in the same run: the model's output, the occluded input itself ("input": doing
nothing), and OpenCV's Telea inpainting given the true mask ("telea"). Metrics (trainer.metrics, the same code the
training loop validates with): whole-crop PSNR/SSIM, in-hole PSNR/SSIM, mask IoU (models that predict a mask), the
fraction of faces left bit-for-bit untouched and, for blind models, the fraction whose predicted mask is empty.
They are averaged overall and per occlusion position, size and kind.
"""
from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from realtime.errors import UnveilError
from trainer import metrics
from trainer.data import FaceStore, OccludedFaces
from trainer.occlusion import PROTOCOLS

METHODS = ("model", "input", "telea")
METRIC_NAMES = ("psnr", "ssim", "psnr_hole", "ssim_hole", "mask_iou", "untouched", "mask_empty", "identity", "same_person")
TELEA_RADIUS = 3


@dataclass
class EvalConfig:
    protocols: tuple[str, ...]
    split: str = "val"
    limit: int | None = None
    provider: str = "cpu"
    seed: int = 0           # the validation occlusion seed: the training config's seed gives the same occlusions
    batch_size: int = 32
    identity: bool = False  # dlib identity distance to the true face per method (trainer.evaluation.identity)


def telea_inpaint(occluded_rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """OpenCV Telea inpainting of the pixels where mask > 0.5 (the baseline that is told where the hole is)."""
    hole = (mask > 0.5).astype(np.uint8) * 255
    if not hole.any():
        return occluded_rgb.copy()
    return cv2.inpaint(occluded_rgb, hole, TELEA_RADIUS, cv2.INPAINT_TELEA)


def check_model_fits(contract, meta: dict) -> None:
    """Refuse a model whose crops would not be the dataset's crops (size, template, margin)."""
    if contract.kind == "symmetrization":
        raise UnveilError("`unveil eval` measures completion models; a symmetrization model has no ground truth here")
    out_size = contract.crop_size * contract.output_scale
    if out_size != meta["crop_size"]:
        raise UnveilError(f"the model returns {out_size}px crops but the dataset holds {meta['crop_size']}px crops; "
                          f"prepare a dataset with --size {out_size}")
    if contract.template != meta["template"] or abs(contract.margin - meta["margin"]) > 1e-9:
        raise UnveilError(f"the model was trained on template {contract.template!r} margin {contract.margin}, the dataset "
                          f"is aligned with {meta['template']!r} margin {meta['margin']}; prepare a matching dataset")


def run_model(runner, occluded_rgb: list[np.ndarray], masks: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """Model outputs (RGB, dataset crop size) and predicted masks (or None). A model with a mask input gets the true
    mask; a completion + super-resolution model gets the crops downscaled to its input size."""
    c = runner.contract
    crops = [im[..., ::-1] for im in occluded_rgb]  # the runner speaks BGR, like the rest of the runtime
    feed_masks = masks if "mask" in c.inputs else None
    if c.output_scale != 1:
        s = c.crop_size
        crops = [cv2.resize(im, (s, s), interpolation=cv2.INTER_AREA) for im in crops]
        if feed_masks is not None:
            feed_masks = [(cv2.resize(m, (s, s), interpolation=cv2.INTER_AREA) > 0).astype(np.float32) for m in feed_masks]
    out = runner.run([np.ascontiguousarray(x) for x in crops], feed_masks)
    images = [np.ascontiguousarray(im[..., ::-1]) for im in out.images]
    pred_masks = None
    if out.masks is not None:
        size = occluded_rgb[0].shape[0]
        pred_masks = [m if m.shape[0] == size else cv2.resize(m, (size, size), interpolation=cv2.INTER_LINEAR)
                      for m in out.masks]
    return images, pred_masks


def low_res_input(occluded_rgb: np.ndarray, crop_size: int) -> np.ndarray:
    """What a super-resolution model sees, brought back to full size (bicubic): the 'input' baseline for it."""
    size = occluded_rgb.shape[0]
    small = cv2.resize(occluded_rgb, (crop_size, crop_size), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)


def measure(preds: dict[str, list[np.ndarray]], clean: list[np.ndarray], occluded: list[np.ndarray],
            true_masks: list[np.ndarray], pred_masks: list[np.ndarray] | None) -> dict[str, dict[str, np.ndarray]]:
    """method -> metric -> (N,) values for one batch."""
    target = metrics.images_to_tensor(clean)
    hole = metrics.masks_to_tensor(true_masks)
    occluded_arr = np.stack(occluded)
    results = {}
    for method, images in preds.items():
        pred = metrics.images_to_tensor(images)
        smap = metrics.ssim_map(pred, target)  # once for both SSIM numbers
        values = {
            "psnr": metrics.psnr(pred, target), "ssim": metrics.mean_ssim(smap),
            "psnr_hole": metrics.psnr(pred, target, hole), "ssim_hole": metrics.mean_ssim(smap, hole),
        }
        values = {k: v.numpy().astype(np.float64) for k, v in values.items()}
        values["untouched"] = np.all(np.stack(images) == occluded_arr, axis=(1, 2, 3)).astype(np.float64)
        if method == "model" and pred_masks is not None:
            pm = metrics.masks_to_tensor(pred_masks)
            values["mask_iou"] = metrics.mask_iou(pm, hole).numpy().astype(np.float64)
            values["mask_empty"] = (pm.flatten(1).max(1).values < 0.5).numpy().astype(np.float64)
        results[method] = values
    return results


def add_identity(results: dict[str, dict[str, np.ndarray]], preds: dict[str, list[np.ndarray]],
                 clean: list[np.ndarray]) -> None:
    """Per method, dlib's descriptor distance between its face and the true face ("identity") and whether dlib calls
    them the same person ("same_person", distance < 0.6); the face box is found once, on the true crop."""
    from trainer.evaluation.identity import THRESHOLD, FaceIdentity, shared_identity

    scorer: FaceIdentity | None = shared_identity()
    if scorer is None:
        raise UnveilError("--identity needs dlib: pip install 'unveil[identity]'")
    for method in preds:
        results[method]["identity"] = np.full(len(clean), np.nan)
    for j, truth in enumerate(clean):
        bgr = np.ascontiguousarray(truth[..., ::-1])
        box = scorer.box_for(bgr, crop=True)
        reference = scorer.descriptor(bgr, box)
        for method, images in preds.items():
            other = scorer.descriptor(np.ascontiguousarray(images[j][..., ::-1]), box)
            results[method]["identity"][j] = float(np.linalg.norm(reference - other))
    for method in preds:
        results[method]["same_person"] = (results[method]["identity"] < THRESHOLD).astype(np.float64)


def evaluate_protocol(runner, store: FaceStore, protocol: str, config: EvalConfig, progress: bool = True) -> list[dict]:
    """One record per face: labels and method -> metric -> value."""
    from tqdm import tqdm

    dataset = OccludedFaces(store, config.split, protocol, seed=config.seed, fixed=True, flip=False)
    count = len(dataset) if config.limit is None else min(config.limit, len(dataset))
    records: list[dict] = []
    sr_size = runner.contract.crop_size if runner.contract.output_scale != 1 else None
    with tqdm(total=count, unit="face", desc=f"eval {protocol}", disable=not progress, dynamic_ncols=True) as bar:
        for start in range(0, count, config.batch_size):
            examples = [dataset.example(i) for i in range(start, min(start + config.batch_size, count))]
            clean = [e[0] for e in examples]
            occlusions = [e[1] for e in examples]
            occluded = [o.image for o in occlusions]
            masks = [o.mask for o in occlusions]
            model_out, pred_masks = run_model(runner, occluded, masks)
            baseline_in = [low_res_input(o, sr_size) for o in occluded] if sr_size else occluded
            preds = {"model": model_out, "input": baseline_in,
                     "telea": [telea_inpaint(o, m) for o, m in zip(baseline_in, masks)]}
            batch = measure(preds, clean, occluded, masks, pred_masks)
            if config.identity:
                add_identity(batch, preds, clean)
            for j, (_, occ, _, index) in enumerate(examples):
                records.append({
                    "index": index, "file": store.file(index), "kind": occ.kind, "position": occ.position,
                    "size": occ.size, "hole_fraction": float(occ.mask.mean()),
                    **{m: {k: float(v[j]) for k, v in batch[m].items()} for m in batch},
                })
            bar.update(len(examples))
    return records


def summarize(records: list[dict]) -> dict[str, dict]:
    """group -> {'n': count, method: {metric: mean over the group, None if undefined}}.

    'overall' and the position / size / kind groups average the occluded faces; faces left clean (protocol 'none',
    mix's clean fraction) form the group 'clean' on their own, where 'untouched' and 'mask_empty' are what matter
    (their whole-crop PSNR is capped at 100 dB when untouched and would swamp an average with occluded faces).
    """
    occluded = [r for r in records if r["hole_fraction"] > 0]
    clean = [r for r in records if r["hole_fraction"] == 0]
    groups: dict[str, list[dict]] = {}
    if occluded:
        groups["overall"] = occluded
    if clean:
        groups["clean"] = clean
    for label in ("position", "size", "kind"):
        for value in sorted({r[label] for r in occluded}):
            groups[f"{label}={value}"] = [r for r in occluded if r[label] == value]
    summary = {}
    for name, members in groups.items():
        summary[name] = {"n": len(members), **mean_scores(members, METHODS, METRIC_NAMES)}
    return summary


def mean_scores(members: list[dict], methods, metrics) -> dict[str, dict[str, float | None]]:
    """method -> metric -> mean over the records that have it, NaNs left out (None when none has a value)."""
    means: dict[str, dict[str, float | None]] = {}
    for method in methods:
        means[method] = {}
        for metric in metrics:
            values = np.array([r[method][metric] for r in members if metric in r[method]], np.float64)
            values = values[~np.isnan(values)]
            means[method][metric] = float(values.mean()) if len(values) else None
    return means


def format_table(protocol: str, summary: dict[str, dict]) -> str:
    columns = [("psnr", "PSNR", 7, 2), ("ssim", "SSIM", 7, 4), ("psnr_hole", "PSNR-hole", 10, 2),
               ("ssim_hole", "SSIM-hole", 10, 4), ("mask_iou", "IoU", 7, 3), ("untouched", "untouched", 10, 3),
               ("mask_empty", "mask-empty", 11, 3)]
    if any(entry[m]["identity"] is not None for entry in summary.values() for m in METHODS):
        columns += [("identity", "ID-dist", 8, 3), ("same_person", "same", 6, 3)]
    head = f"{'group':<22}{'n':>6}  {'method':<7}" + "".join(f"{title:>{w}}" for _, title, w, _ in columns)
    lines = [f"protocol {protocol}", head, "-" * len(head)]
    for group, entry in summary.items():
        for k, method in enumerate(METHODS):
            cells = []
            for key, _, width, digits in columns:
                value = entry[method][key]
                cells.append(f"{'-' if value is None else f'{value:.{digits}f}':>{width}}")
            first = f"{group:<22}{entry['n']:>6}" if k == 0 else " " * 28
            lines.append(f"{first}  {method:<7}" + "".join(cells))
    return "\n".join(lines)


def json_safe(value):
    """NaN/inf -> None, so the file is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def evaluate(model_path: Path, data_path: Path, config: EvalConfig, progress: bool = True) -> dict:
    """Everything `--json` writes: model, dataset, settings, and per protocol the summary and the per-face records."""
    from realtime.runner import ModelRunner

    unknown = [p for p in config.protocols if p not in PROTOCOLS]
    if unknown:
        raise UnveilError(f"unknown protocol {unknown[0]!r}; choose from {', '.join(PROTOCOLS)} (comma-separated) or all")
    if config.batch_size < 1:
        raise UnveilError(f"--batch-size must be at least 1, got {config.batch_size}")
    store = FaceStore(data_path)
    runner = ModelRunner(str(model_path), provider=config.provider)
    check_model_fits(runner.contract, store.meta)
    report = {
        "model": str(model_path), "contract": asdict(runner.contract), "providers": runner.provider.providers,
        "dataset": str(data_path), "settings": asdict(config), "methods": list(METHODS),
        "mask_fed": "mask" in runner.contract.inputs, "protocols": {},
    }
    for protocol in config.protocols:
        records = evaluate_protocol(runner, store, protocol, config, progress)
        report["protocols"][protocol] = {"count": len(records), "summary": summarize(records), "faces": records}
    return json_safe(report)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, metavar="MODEL.onnx")
    parser.add_argument("--data", type=Path, required=True, metavar="DATASET", help="a dataset made by `unveil prepare`")
    parser.add_argument("--protocol", default="all",
                        help=f"occlusion protocol(s), comma-separated, or 'all': {', '.join(PROTOCOLS)} (a segmenter "
                             "is always scored on clean faces, rect, text, centre, realistic and real cutouts); "
                             "small-block for a completion_super_resolution model (32 px faces, 16 px block)")
    parser.add_argument("--occluders", type=Path, default=Path("../shared/data/occluders"),
                        help="real occluders with masks, for a segmenter's held-out cutouts")
    parser.add_argument("--split", default="val", choices=["val", "train", "all"])
    parser.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N faces of the split")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write every number (and per face) here")
    parser.add_argument("--provider", default="cpu", choices=["auto", "cpu", "cuda", "tensorrt"])
    parser.add_argument("--seed", type=int, default=0, help="validation occlusion seed (the training config's seed)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--identity", action="store_true",
                        help="add dlib's identity distance to the true face and same-person share (< 0.6) per method "
                             "(needs the identity extra; 4 face descriptors per face)")
    parser.add_argument("--baseline", default="symmetry-lite", metavar="NAME|PATH",
                        help="small-block: the 128 px network run on the upscaled input (default symmetry-lite)")
    parser.add_argument("--figure", type=Path, default=None, metavar="PNG",
                        help="small-block: a grid of input | bicubic | 128 path | the model | truth")


def run(args: argparse.Namespace) -> int:
    from realtime.contract import read_contract

    if args.protocol == "small-block":  # a completion_super_resolution model on 32 px faces (trainer.evaluate_fcsr)
        from trainer.evaluate_fcsr import run_small

        return run_small(args)
    if read_contract(args.model).kind == "occlusion_mask":  # a segmenter: mask scores, not completion
        from trainer.train_segmenter import evaluate_onnx, format_scores

        report = evaluate_onnx(args.model, args.data, args.occluders, args.limit or 500, args.provider)
        print(format_scores(report))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(report, indent=1))
        return 0
    protocols = PROTOCOLS if args.protocol == "all" else tuple(p.strip() for p in args.protocol.split(",") if p.strip())
    # The metric tensors of a batch are small: torch's intra-op thread pool cost 3x more than it saved (measured on
    # 2 busy cores). onnxruntime keeps its own threads for the model.
    torch.set_num_threads(1)
    config = EvalConfig(protocols=protocols, split=args.split, limit=args.limit, provider=args.provider,
                        seed=args.seed, batch_size=args.batch_size, identity=args.identity)
    report = evaluate(args.model, args.data, config)
    c = report["contract"]
    print(f"model {report['model']} ({c['kind']}, {c['crop_size']}px{', fed the true mask' if report['mask_fed'] else ''})"
          f" on {report['dataset']} split {config.split}")
    for protocol, result in report["protocols"].items():
        print()
        print(format_table(protocol, result["summary"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, allow_nan=False))
        print(f"\nwrote {args.json}")
    return 0
