"""`unveil eval-symmetry`: the symmfcnet Table III ablation, measured through onnxruntime on what ships.

On the fixed validation occlusions of a prepared dataset (identity-disjoint split), per protocol (default: 'half',
one-half occlusions whose mirror twin is visible, and 'centre', a centred square missing on both halves), rows:

  blind            the blind network alone: it finds its own mask and fills it
  recnet           RecNet without the symmetry stage (use_symmetry=false), given the true mask
  symmfcnet        the symmetry network, given the true mask
  blind+symmetry   the blind network finds (its mask, thresholded and grown), the symmetry network fills that region
                   of the blind network's completion

Columns: whole-crop PSNR / SSIM, in-hole PSNR / SSIM (trainer.metrics, the training loop's code) and symmetry
consistency (trainer.networks.symmfcnet.symmetry_consistency: mean absolute RGB difference, 0..1, between each
filled pixel of the face and its mirror twin; lower = more symmetric; the clean faces' own value is the
'ground truth' reference). A Fig. 6 style grid (input, warped flip, stage-I result, final, ground truth) comes
from the torch network: a training checkpoint (--checkpoint), or the symmetry ONNX file's own weights rebuilt into
symmfcnet (trainer/onnx_weights.py), since the ONNX graph does not expose the intermediates.

Stage-I analysis (--stage-one N): on the one-half part of the holes (pixels whose mirror twin is visible), the
in-hole PSNR of the mirrored ground truth with no flow, of the warped flip, of the illumination-corrected Stage-I
fill and of the final output, with the mean flow confidence: how much the symmetry prior itself could give.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import torch

from realtime.errors import UnveilError
from trainer import evaluate as ev
from trainer import metrics
from trainer.data import FaceStore, OccludedFaces, image_to_tensor
from trainer.occlusion import PROTOCOLS

ROWS = ("blind", "recnet", "symmfcnet", "blind+symmetry")
ROW_TITLES = {
    "blind": "(a) blind network alone (own mask)",
    "recnet": "(b) RecNet without symmetry stage (true mask)",
    "symmfcnet": "(c) SymmFCNet (true mask)",
    "blind+symmetry": "(d) blind -> symmetry, as the runtime runs it",
    "ground_truth": "clean face (reference)",
}
METRICS = ("psnr", "ssim", "psnr_hole", "ssim_hole", "symmetry")
# blind+symmetry becomes the runtime default when it beats the blind network on one-half holes by this much (in-hole
# PSNR) and loses at most TOLERANCE_DB (whole-crop and in-hole PSNR) on centre holes.
CLEAR_MARGIN_DB = 0.5
TOLERANCE_DB = 0.1
FIGURE_COLUMNS = ("input", "warped flip", "stage I", "final", "ground truth")


@dataclass
class SymmetryEvalConfig:
    protocols: tuple[str, ...] = ("half", "centre")
    split: str = "val"
    limit: int | None = 500
    provider: str = "cpu"
    seed: int = 0           # validation occlusion seed (the training configs' seed gives the same occlusions)
    batch_size: int = 32


# ------------------------------------------------------------------------------------------------------------ models


def load_runners(blind: str, symmetry: str, recnet: str | None, provider: str, meta: dict) -> dict:
    """Row name -> ModelRunner for the models the rows need (recnet is optional), each checked against the dataset."""
    from realtime.models import resolve_model
    from realtime.runner import ModelRunner

    wanted = {"blind": (blind, "blind_completion"), "symmetry": (symmetry, "symmetry_completion")}
    if recnet is not None:
        wanted["recnet"] = (recnet, "symmetry_completion")
    runners = {}
    for role, (name, kind) in wanted.items():
        runner = ModelRunner(str(resolve_model(name)), provider=provider)
        if runner.contract.kind != kind:
            raise UnveilError(f"--{role} {name}: expected a model of kind {kind!r}, got {runner.contract.kind!r}")
        ev.check_model_fits(runner.contract, meta)
        runners[role] = runner
    return runners


def runtime_blind_symmetry(blind, symmetry, crops_bgr: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(completed BGR crops, blind masks): the blind network finds (mask >= 0.5, grown by 2 % of the crop), the
    symmetry network fills that region of the blind network's completion."""
    found = blind.run([np.ascontiguousarray(c) for c in crops_bgr])
    grow = int(round(0.02 * crops_bgr[0].shape[0]))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    holes = [cv2.dilate((m >= 0.5).astype(np.uint8), kernel).astype(np.float32) for m in found.masks]
    completed = list(found.images)
    todo = [i for i, hole in enumerate(holes) if hole.any()]
    if todo:
        filled = symmetry.run([found.images[i] for i in todo], [holes[i] for i in todo]).images
        for i, image in zip(todo, filled):
            completed[i] = image
    return completed, found.masks


def run_rows(runners: dict, occluded_rgb: list[np.ndarray], masks: list[np.ndarray]) -> tuple[dict, list[np.ndarray]]:
    """Row -> RGB outputs for one batch, and the blind network's predicted masks."""
    outputs = {}
    outputs["blind"], blind_masks = ev.run_model(runners["blind"], occluded_rgb, masks)
    if "recnet" in runners:
        outputs["recnet"], _ = ev.run_model(runners["recnet"], occluded_rgb, masks)
    outputs["symmfcnet"], _ = ev.run_model(runners["symmetry"], occluded_rgb, masks)
    completed, _ = runtime_blind_symmetry(runners["blind"], runners["symmetry"], [im[..., ::-1] for im in occluded_rgb])
    outputs["blind+symmetry"] = [np.ascontiguousarray(im[..., ::-1]) for im in completed]
    return outputs, blind_masks


# ----------------------------------------------------------------------------------------------------------- metrics


def symmetry_scores(images: list[np.ndarray], masks: list[np.ndarray], landmarks: list[np.ndarray],
                    mirror: np.ndarray) -> np.ndarray:
    """(N,) symmetry consistency of each image inside its true hole (lower = more symmetric)."""
    from trainer.networks.symmfcnet import symmetry_consistency

    mirror_t = torch.as_tensor(mirror, dtype=torch.long)
    pred = metrics.images_to_tensor(images)
    hole = metrics.masks_to_tensor(masks)
    return np.array([symmetry_consistency(pred[j], hole[j], torch.as_tensor(landmarks[j], dtype=torch.float32),
                                          mirror_t) for j in range(len(images))], np.float64)


def evaluate_protocol(runners: dict, store: FaceStore, protocol: str, config: SymmetryEvalConfig,
                      progress: bool = True) -> list[dict]:
    """One record per face: labels, row -> metric -> value, and the blind mask's IoU with the true one."""
    from tqdm import tqdm

    dataset = OccludedFaces(store, config.split, protocol, seed=config.seed, fixed=True, flip=False)
    count = len(dataset) if config.limit is None else min(config.limit, len(dataset))
    records: list[dict] = []
    with tqdm(total=count, unit="face", desc=f"eval-symmetry {protocol}", disable=not progress,
              dynamic_ncols=True) as bar:
        for start in range(0, count, config.batch_size):
            examples = [dataset.example(i) for i in range(start, min(start + config.batch_size, count))]
            clean = [e[0] for e in examples]
            occluded = [e[1].image for e in examples]
            masks = [e[1].mask for e in examples]
            landmarks = [e[2] for e in examples]
            outputs, blind_masks = run_rows(runners, occluded, masks)
            batch = ev.measure(outputs, clean, occluded, masks, None)
            for row, images in list(outputs.items()) + [("ground_truth", clean)]:
                batch.setdefault(row, {})["symmetry"] = symmetry_scores(images, masks, landmarks, store.mirror)
            iou = metrics.mask_iou(metrics.masks_to_tensor(blind_masks), metrics.masks_to_tensor(masks)).numpy()
            for j, (_, occ, _, index) in enumerate(examples):
                records.append({
                    "index": index, "file": store.file(index), "kind": occ.kind, "position": occ.position,
                    "size": occ.size, "hole_fraction": float(occ.mask.mean()), "blind_mask_iou": float(iou[j]),
                    **{row: {m: float(batch[row][m][j]) for m in METRICS if m in batch[row]} for row in batch},
                })
            bar.update(len(examples))
    return records


def summarize(records: list[dict]) -> dict[str, dict]:
    """group ('overall', 'position=...', 'size=...') -> {'n', 'blind_mask_iou', row: {metric: mean or None}}."""
    groups = {"overall": records}
    for label in ("position", "size"):
        for value in sorted({r[label] for r in records}):
            groups[f"{label}={value}"] = [r for r in records if r[label] == value]
    rows = [r for r in (*ROWS, "ground_truth") if records and r in records[0]]
    summary = {}
    for name, members in groups.items():
        summary[name] = {"n": len(members), "blind_mask_iou": float(np.mean([r["blind_mask_iou"] for r in members])),
                         **ev.mean_scores(members, rows, METRICS)}
    return summary


def recommend_default(summaries: dict[str, dict]) -> tuple[bool, str]:
    """(make blind+symmetry the default mode?, why) from the 'half' and 'centre' overall rows."""
    if "half" not in summaries or "centre" not in summaries:
        return False, "needs both the 'half' and the 'centre' protocol"
    half, centre = summaries["half"]["overall"], summaries["centre"]["overall"]
    gain = half["blind+symmetry"]["psnr_hole"] - half["blind"]["psnr_hole"]
    centre_hole = centre["blind+symmetry"]["psnr_hole"] - centre["blind"]["psnr_hole"]
    centre_whole = centre["blind+symmetry"]["psnr"] - centre["blind"]["psnr"]
    facts = (f"one-half in-hole PSNR {gain:+.2f} dB over the blind network; centre in-hole {centre_hole:+.2f} dB, "
             f"whole-crop {centre_whole:+.2f} dB")
    if gain >= CLEAR_MARGIN_DB and min(centre_hole, centre_whole) >= -TOLERANCE_DB:
        return True, f"yes: {facts} (bar: >= {CLEAR_MARGIN_DB} dB on half, >= -{TOLERANCE_DB} dB on centre)"
    return False, f"no: {facts} (bar: >= {CLEAR_MARGIN_DB} dB on half, >= -{TOLERANCE_DB} dB on centre)"


# ------------------------------------------------------------------------------------------------------------ output


def _cell(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(protocol: str, summary: dict[str, dict], groups: int = 1) -> str:
    """Markdown table of the rows for the first `groups` groups of a protocol's summary."""
    lines = [f"| {protocol} | n | PSNR | SSIM | PSNR in hole | SSIM in hole | symmetry error (lower = better) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name in list(summary)[:groups]:
        entry = summary[name]
        for row in [r for r in (*ROWS, "ground_truth") if r in entry]:
            v = entry[row]
            label = ROW_TITLES[row] if name == "overall" else f"{name}: {row}"
            lines.append(f"| {label} | {entry['n']} | {_cell(v['psnr'], 2)} | {_cell(v['ssim'], 4)} | "
                         f"{_cell(v['psnr_hole'], 2)} | {_cell(v['ssim_hole'], 4)} | {_cell(v['symmetry'], 4)} |")
    return "\n".join(lines)


def markdown_report(report: dict) -> str:
    s = report["settings"]
    lines = [
        "# Symmetry network: Table III ablation (symmfcnet paper)",
        "",
        f"Written by `unveil eval-symmetry` on {report['written']}. Dataset `{report['dataset']}`, split "
        f"`{s['split']}` (identity-disjoint from training), first {s['limit']} faces, occlusion seed {s['seed']}, "
        f"onnxruntime provider `{s['provider']}`. Models: " +
        ", ".join(f"{role} `{path}`" for role, path in report["models"].items()) + ".",
        "",
        "Rows: " + "; ".join(f"{ROW_TITLES[r]}" for r in ROWS if r in report["rows"]) + ". "
        "The symmetry error is the mean absolute RGB difference (0..1) between each pixel of the true hole (inside "
        "the face's landmark hull) and its mirror twin (landmark-fitted mirror map); the clean faces' own value is "
        "the reference: lower than it is not better, it means a blurrier, more mirror-copied fill.",
        "",
    ]
    for protocol, result in report["protocols"].items():
        summary = result["summary"]
        lines += [f"## Protocol `{protocol}` ({result['count']} faces; blind mask IoU "
                  f"{summary['overall']['blind_mask_iou']:.3f})", "", format_table(protocol, summary), ""]
        positions = [g for g in summary if g.startswith("position=")]
        if len(positions) > 1:
            sub = {g: summary[g] for g in positions}
            lines += [f"Per position (in-hole PSNR, dB):", "",
                      "| position | n | " + " | ".join(r for r in ROWS if r in summary["overall"]) + " |",
                      "|---|---:|" + "---:|" * sum(r in summary["overall"] for r in ROWS)]
            for g, entry in sub.items():
                lines.append(f"| {g.split('=', 1)[1]} | {entry['n']} | " + " | ".join(
                    _cell(entry[r]["psnr_hole"], 2) for r in ROWS if r in entry) + " |")
            lines.append("")
    make_default, why = recommend_default({p: r["summary"] for p, r in report["protocols"].items()})
    lines += ["## Runtime default", "", f"blind+symmetry as the default mode: {why}.", ""]
    if "stage_one" in report:
        lines += ["## Stage I", "", format_stage_one(report["stage_one"]), ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------------------ figure


def _label(tile: np.ndarray, text: str) -> np.ndarray:
    bar = np.full((18, tile.shape[1], 3), 255, np.uint8)
    cv2.putText(bar, text, (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([bar, tile])


def symmetry_network(checkpoint: Path | None, symmetry: str) -> torch.nn.Module:
    """The torch symmfcnet (eval mode) of a training checkpoint, or else rebuilt from the symmetry ONNX file."""
    from trainer.checkpoints import load_generator, warm_start

    if checkpoint is not None:
        network, _ = load_generator(checkpoint)
        source = str(checkpoint)
    else:
        from realtime.contract import read_contract
        from realtime.models import resolve_model
        from trainer.networks.symmfcnet import PRESETS, build_symmfcnet
        from trainer.onnx_weights import state_dict_from_onnx

        path = resolve_model(symmetry)
        crop = read_contract(path).crop_size
        refused = UnveilError(f"{path} does not hold symmfcnet weights; pass its training checkpoint with --checkpoint")
        try:
            state = state_dict_from_onnx(path)
            if "rec_net.enc1.0.weight" not in state:
                raise refused
            preset = "full" if crop >= 256 else "lite"
            first = state["rec_net.enc1.0.weight"]  # (width, inputs x unshuffle^2, 3, 3)
            guided = first.shape[1] > 5 * PRESETS[preset].rec_unshuffle ** 2
            network = build_symmfcnet(preset, crop_size=crop, width=int(first.shape[0]), rec_guide=guided)
            report = warm_start(network, path)
        except UnveilError:
            raise refused from None
        missing = [k for k in report["kept"] if not k.endswith(".u")]  # power-iteration vectors are not weights
        if missing or report["widened"]:
            raise UnveilError(f"{path} does not hold a symmfcnet preset's weights (missing {', '.join(missing[:4])}); "
                              "pass its training checkpoint with --checkpoint")
        network.eval()
        source = str(path)
    if not getattr(network, "use_symmetry", False):
        raise UnveilError(f"{source} is not a symmetry network with its symmetry stage (network 'symmfcnet')")
    return network


def _psnr_in(a: torch.Tensor, b: torch.Tensor, region: torch.Tensor) -> float:
    err = float(((a - b) ** 2 * region).sum() / (3 * region.sum()))
    return 10 * float(np.log10(1.0 / max(err, 1e-10)))


STAGE_ONE_ROWS = ("mirror, no flow", "warped flip", "stage I (flip x light)", "final")


def stage_one_analysis(network: torch.nn.Module, data_path: Path, count: int = 200, protocol: str = "half",
                       seed: int = 0, split: str = "val", batch_size: int = 20) -> dict:
    """Mean in-hole PSNR on the one-half part of each hole (faces with at least 20 such pixels), per fill, and the
    mean flow confidence there: what the mirrored half is worth before RecNet."""
    from trainer.networks.symmfcnet import flip_horizontal

    dataset = OccludedFaces(FaceStore(data_path), split, protocol, seed=seed, fixed=True, flip=False)
    scores: dict[str, list[float]] = {name: [] for name in (*STAGE_ONE_ROWS, "confidence", "one-half share")}
    for start in range(0, min(count, len(dataset)), batch_size):
        examples = [dataset.example(i) for i in range(start, min(start + batch_size, count, len(dataset)))]
        image = torch.stack([image_to_tensor(e[1].image) for e in examples])
        truth = torch.stack([image_to_tensor(e[0]) for e in examples])
        mask = torch.stack([torch.from_numpy(e[1].mask[None]) for e in examples])
        with torch.no_grad():
            out = network(image, mask)
        fills = dict(zip(STAGE_ONE_ROWS, (flip_horizontal(truth), out["warped_flip"], out["stage1"], out["image"])))
        for i in range(len(examples)):
            region = out["one_half"][i] * mask[i]
            if float(region.sum()) < 20:
                continue
            for name, fill in fills.items():
                scores[name].append(_psnr_in(fill[i], truth[i], region))
            scores["confidence"].append(float((out["confidence"][i] * region).sum() / region.sum()))
            scores["one-half share"].append(float(region.sum() / mask[i].sum()))
    return {"protocol": protocol, "faces": len(scores["final"]),
            **{name: (float(np.mean(v)) if v else None) for name, v in scores.items()}}


def format_stage_one(result: dict) -> str:
    lines = [f"Stage I on the one-half part of '{result['protocol']}' holes ({result['faces']} faces; "
             f"{100 * (result['one-half share'] or 0):.0f} % of the hole on average, mean flow confidence "
             f"{result['confidence'] or 0:.2f}):", "", "| fill | in-hole PSNR (dB) |", "|---|---|"]
    lines += [f"| {name} | {_cell(result[name], 2)} |" for name in STAGE_ONE_ROWS]
    return "\n".join(lines)


def figure(network: torch.nn.Module, data_path: Path, out: Path, protocol: str = "half", count: int = 6, seed: int = 0,
           split: str = "val") -> Path:
    """Paper Fig. 6: one face per row; columns input, warped flip, stage-I result, final, ground truth (torch)."""
    store = FaceStore(data_path)
    dataset = OccludedFaces(store, split, protocol, seed=seed, fixed=True, flip=False)
    examples = [dataset.example(i) for i in range(min(count, len(dataset)))]
    image = torch.stack([image_to_tensor(e[1].image) for e in examples])
    mask = torch.stack([torch.from_numpy(e[1].mask[None]) for e in examples])
    with torch.no_grad():
        result = network(image, mask)

    def rgb(t: torch.Tensor) -> list[np.ndarray]:
        return [np.ascontiguousarray((x.permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)[..., ::-1])
                for x in t]

    columns = [rgb(image), rgb(result["warped_flip"]), rgb(result["stage1"]), rgb(result["image"]),
               [e[0][..., ::-1] for e in examples]]
    rows = [np.hstack([np.pad(col[i], ((2, 2), (2, 2), (0, 0)), constant_values=255) for col in columns])
            for i in range(len(examples))]
    header = np.hstack([_label(np.full((0, columns[0][0].shape[1] + 4, 3), 255, np.uint8), name)
                        for name in FIGURE_COLUMNS])
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), np.vstack([header, *rows])):
        raise UnveilError(f"could not write {out}")
    return out


# --------------------------------------------------------------------------------------------------------------- CLI


def evaluate(data_path: Path, blind: str, symmetry: str, recnet: str | None, config: SymmetryEvalConfig,
             progress: bool = True) -> dict:
    unknown = [p for p in config.protocols if p not in PROTOCOLS]
    if unknown:
        raise UnveilError(f"unknown protocol {unknown[0]!r}; choose from {', '.join(PROTOCOLS)} (comma-separated)")
    if config.batch_size < 1:
        raise UnveilError(f"--batch-size must be at least 1, got {config.batch_size}")
    if config.limit is not None and config.limit < 1:
        raise UnveilError(f"--limit must be at least 1, got {config.limit}")
    store = FaceStore(data_path)
    runners = load_runners(blind, symmetry, recnet, config.provider, store.meta)
    report = {
        "written": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "dataset": str(data_path), "settings": asdict(config),
        "models": {role: str(r.path) for role, r in runners.items()},
        "rows": [r for r in ROWS if r != "recnet" or "recnet" in runners], "protocols": {},
    }
    for protocol in config.protocols:
        records = evaluate_protocol(runners, store, protocol, config, progress)
        report["protocols"][protocol] = {"count": len(records), "summary": summarize(records), "faces": records}
    make_default, why = recommend_default({p: r["summary"] for p, r in report["protocols"].items()})
    report["default_mode"] = {"blind+symmetry": make_default, "why": why}
    return ev.json_safe(report)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, metavar="DATASET", help="a dataset made by `unveil prepare`")
    parser.add_argument("--blind", default="blind-lite", metavar="NAME|PATH", help="blind model (default: shipped)")
    parser.add_argument("--symmetry", default="symmetry-lite", metavar="NAME|PATH",
                        help="symmetry model (default: shipped)")
    parser.add_argument("--recnet", default=None, metavar="PATH",
                        help="RecNet-only model (symmfcnet use_symmetry=false) for the ablation row; skipped if absent")
    parser.add_argument("--protocol", default="half,centre", help="occlusion protocols, comma-separated")
    parser.add_argument("--split", default="val", choices=["val", "train", "all"])
    parser.add_argument("--limit", type=int, default=500, metavar="N", help="the first N faces of the split (0 = all)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="the summaries as JSON")
    parser.add_argument("--per-face", action="store_true", help="also write every face's numbers into --json")
    parser.add_argument("--markdown", type=Path, default=None, metavar="PATH", help="the tables as Markdown")
    parser.add_argument("--figure", type=Path, default=None, metavar="PNG",
                        help="Fig. 6 grid (input, warped flip, stage I, final, ground truth)")
    parser.add_argument("--stage-one", type=int, default=0, metavar="N",
                        help="Stage-I analysis on the first N one-half holes (what the mirrored half is worth)")
    parser.add_argument("--checkpoint", type=Path, default=None, metavar="PT",
                        help="the symmetry network's training checkpoint, for --figure / --stage-one "
                             "(default: the --symmetry ONNX file's weights rebuilt into symmfcnet)")
    parser.add_argument("--figure-faces", type=int, default=6, metavar="N")
    parser.add_argument("--provider", default="cpu", choices=["auto", "cpu", "cuda", "tensorrt"])
    parser.add_argument("--seed", type=int, default=0, help="validation occlusion seed (the training config's seed)")
    parser.add_argument("--batch-size", type=int, default=32)


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)  # small metric tensors; onnxruntime has its own threads (see trainer.evaluate.run)
    protocols = tuple(p.strip() for p in args.protocol.split(",") if p.strip())
    config = SymmetryEvalConfig(protocols=protocols, split=args.split, limit=args.limit or None,
                                provider=args.provider, seed=args.seed, batch_size=args.batch_size)
    report = evaluate(args.data, args.blind, args.symmetry, args.recnet, config)
    network = symmetry_network(args.checkpoint, args.symmetry) if args.figure or args.stage_one else None
    if args.stage_one:
        report["stage_one"] = stage_one_analysis(network, args.data, args.stage_one, seed=args.seed)
    for protocol, result in report["protocols"].items():
        print()
        print(format_table(protocol, result["summary"]))
    print()
    print(f"blind+symmetry as the default mode: {report['default_mode']['why']}")
    if "stage_one" in report:
        print()
        print(format_stage_one(report["stage_one"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        written = report if args.per_face else {**report, "protocols": {
            p: {k: v for k, v in r.items() if k != "faces"} for p, r in report["protocols"].items()}}
        args.json.write_text(json.dumps(written, indent=1, allow_nan=False))
        print(f"wrote {args.json}")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown_report(report))
        print(f"wrote {args.markdown}")
    if args.figure:
        print(f"wrote {figure(network, args.data, args.figure, seed=args.seed, count=args.figure_faces)}")
    return 0
