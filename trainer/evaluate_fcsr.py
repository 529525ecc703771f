"""`unveil eval MODEL --protocol small-block`: a completion_super_resolution model on small occluded faces.

The protocol is the FCSR-GAN paper's: each validation face (128 px, the truth) is area-downscaled to the model's
input size (32 px) and a 16 px square block (flat colour, noise or blurred noise) is painted over a face part
(trainer.train_fcsr.small_block_example, deterministic in seed and face). Every method is scored at 128 px against
the true face, over the whole crop and inside the hole (the block at 128 px), in the same run:
- model     the network: 32 px occluded face + mask in, 128 px face out (taken whole, as it comes);
- bicubic   the occluded 32 px input upscaled bicubically (doing nothing about the hole);
- path128   what the runtime does for a face without this network: the 32 px input upscaled bicubically to the
            128 px crop and a shipped 128 px network (`--baseline`, default symmetry-lite given the upscaled mask;
            a blind_completion model finds the hole itself) painting the hole; elsewhere the upscaled input.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import torch

from realtime.errors import UnveilError
from trainer import metrics
from trainer.data import FaceStore
from trainer.train_fcsr import BLOCK, small_block_example

SMALL_PROTOCOLS = ("small-block",)
METHODS = ("model", "bicubic", "path128")
METRICS = ("psnr", "ssim", "psnr_hole", "ssim_hole")


def json_safe(value):
    """NaN/inf -> None, so the report is strict JSON (as trainer.evaluate writes it; not imported: no cycle)."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def bicubic(image: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_CUBIC)


# px at 128 by which the 128 path's mask is grown. Bicubic upscaling smears the block's colour about one input pixel
# beyond it (a faint ring); growing the mask by 4 px removes the ring but lowered the baseline's scores (200 faces:
# 16.49 vs 17.25 dB in the hole, 21.22 vs 21.91 overall), so the baseline gets the exact mask: its better figures.
PATH128_GROW = 0


def grown(mask: np.ndarray, px: int) -> np.ndarray:
    return cv2.dilate(mask, np.ones((2 * px + 1, 2 * px + 1), np.uint8)) if px else mask


def run_path128(runner, upscaled_rgb: list[np.ndarray], masks: list[np.ndarray]) -> list[np.ndarray]:
    """A 128 px completion network on the upscaled faces; its output inside the hole, the upscaled input outside."""
    bgr = [np.ascontiguousarray(im[..., ::-1]) for im in upscaled_rgb]
    out = runner.run(bgr, masks if "mask" in runner.contract.inputs else None)
    return [np.where(m[..., None] > 0.5, o[..., ::-1], u).astype(np.uint8)
            for o, u, m in zip(out.images, upscaled_rgb, masks)]


def score(preds: dict[str, list[np.ndarray]], clean: list[np.ndarray], holes: list[np.ndarray]) -> dict[str, dict]:
    """method -> metric -> (N,) values."""
    target = metrics.images_to_tensor(clean)
    hole = metrics.masks_to_tensor(holes)
    out = {}
    for method, images in preds.items():
        pred = metrics.images_to_tensor(images)
        smap = metrics.ssim_map(pred, target)
        out[method] = {"psnr": metrics.psnr(pred, target).numpy(), "ssim": metrics.mean_ssim(smap).numpy(),
                       "psnr_hole": metrics.psnr(pred, target, hole).numpy(),
                       "ssim_hole": metrics.mean_ssim(smap, hole).numpy()}
    return out


def label(tile: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((16, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([bar, tile])


def grid_image(rows: list[list[np.ndarray]], titles: list[str]) -> np.ndarray:
    """RGB rows of equal tiles -> one RGB picture with a title over each column, 2 px gaps."""
    gap = 2
    lines = []
    for r, row in enumerate(rows):
        tiles = [label(t, titles[c]) if r == 0 else t for c, t in enumerate(row)]
        h = tiles[0].shape[0]
        line = []
        for t in tiles:
            line += [t, np.full((h, gap, 3), 255, np.uint8)]
        lines += [np.concatenate(line[:-1], 1), np.full((gap, sum(t.shape[1] for t in tiles) + gap * (len(tiles) - 1), 3),
                                                        255, np.uint8)]
    return np.concatenate(lines[:-1], 0)


def evaluate_small(model_path: Path, data_path: Path, baseline: str = "symmetry-lite", split: str = "val",
                   limit: int | None = None, seed: int = 0, provider: str = "cpu", batch_size: int = 32,
                   figure: Path | None = None, figure_faces: int = 8, progress: bool = True) -> dict:
    from tqdm import tqdm

    from realtime.models import resolve_model
    from realtime.runner import ModelRunner

    store = FaceStore(data_path)
    runner = ModelRunner(str(resolve_model(str(model_path))), provider=provider)
    c = runner.contract
    if c.kind != "completion_super_resolution":
        raise UnveilError(f"--protocol small-block measures completion_super_resolution models; {model_path} is {c.kind}")
    if c.output_size != store.crop_size:
        raise UnveilError(f"the model returns {c.output_size} px faces but the dataset holds {store.crop_size} px crops")
    if c.template != store.meta["template"] or abs(c.margin - store.meta["margin"]) > 1e-9:
        raise UnveilError("the model's alignment template or margin differs from the dataset's")
    block = BLOCK * c.crop_size // 32
    base = ModelRunner(str(resolve_model(baseline)), provider=provider)
    if base.contract.crop_size != store.crop_size or base.contract.kind not in ("symmetry_completion", "blind_completion"):
        raise UnveilError(f"--baseline {baseline}: a {store.crop_size} px symmetry_completion or blind_completion model "
                          "is needed")
    faces = store.indices(split)
    count = len(faces) if limit is None else min(limit, len(faces))
    records = []
    shown: list[list[np.ndarray]] = []
    size = store.crop_size
    with torch.no_grad(), tqdm(total=count, unit="face", desc="eval small-block", disable=not progress) as bar:
        for start in range(0, count, batch_size):
            indices = [int(i) for i in faces[start:start + batch_size][: count - start]]
            clean = [store.image(i) for i in indices]
            examples = [small_block_example(im, seed, i, c.crop_size, block) for im, i in zip(clean, indices)]
            small = [e[0] for e in examples]
            small_masks = [e[1] for e in examples]
            holes = [e[2] for e in examples]
            out = runner.run([np.ascontiguousarray(s[..., ::-1]) for s in small], small_masks)
            model = [np.ascontiguousarray(o[..., ::-1]) for o in out.images]
            upscaled = [bicubic(s, size) for s in small]
            path = run_path128(base, upscaled, [grown(h, PATH128_GROW) for h in holes])
            preds = {"model": model, "bicubic": upscaled, "path128": path}
            values = score(preds, clean, holes)
            for j, index in enumerate(indices):
                records.append({"index": index, "file": store.file(index),
                                **{m: {k: float(v[j]) for k, v in values[m].items()} for m in METHODS}})
            for j in range(len(indices)):
                if len(shown) < figure_faces:
                    nearest = cv2.resize(small[j], (size, size), interpolation=cv2.INTER_NEAREST)
                    shown.append([nearest, upscaled[j], path[j], model[j], clean[j]])
            bar.update(len(indices))
    summary = {"n": len(records), **{m: {k: float(np.nanmean([r[m][k] for r in records])) for k in METRICS}
                                     for m in METHODS}}
    report = {"model": str(model_path), "contract": asdict(c), "baseline": baseline,
              "baseline_kind": base.contract.kind, "dataset": str(data_path), "split": split, "seed": seed,
              "protocol": "small-block", "block": block, "input_size": c.crop_size, "output_size": c.output_size,
              "summary": summary, "faces": records}
    if figure is not None and shown:
        titles = [f"input {c.crop_size}px", "bicubic", "128 path", "this network", "truth"]
        picture = grid_image(shown, titles)
        figure.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(figure), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        report["figure"] = str(figure)
    return json_safe(report)


def format_small(report: dict) -> str:
    s = report["summary"]
    names = {"model": "this network", "bicubic": "bicubic", "path128": f"128 path ({report['baseline']})"}
    lines = [f"{report['model']} ({report['input_size']} px in, {report['output_size']} px out), protocol small-block "
             f"({report['block']} px block at {report['input_size']} px), {s['n']} {report['split']} faces, scored at "
             f"{report['output_size']} px against the true face", "",
             "| method | PSNR | SSIM | PSNR in hole | SSIM in hole |", "|---|---|---|---|---|"]
    for m in METHODS:
        v = s[m]
        lines.append(f"| {names[m]} | {v['psnr']:.2f} | {v['ssim']:.3f} | {v['psnr_hole']:.2f} | {v['ssim_hole']:.3f} |")
    return "\n".join(lines)


def run_small(args) -> int:
    """`unveil eval --protocol small-block` (trainer.evaluate hands over here)."""
    torch.set_num_threads(1)
    report = evaluate_small(args.model, args.data, baseline=args.baseline, split=args.split, limit=args.limit,
                            seed=args.seed, provider=args.provider, batch_size=args.batch_size, figure=args.figure)
    print(format_small(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, allow_nan=False))
        print(f"\nwrote {args.json}")
    if report.get("figure"):
        print(f"wrote {report['figure']}")
    return 0
