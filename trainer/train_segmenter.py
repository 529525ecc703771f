"""`unveil train-segmenter`: train the occlusion segmenter, calibrate its threshold, export it with its contract.

Precision first. Every batch holds many clean faces (with lighting, shadow, blur and compression changes that are
*not* occlusions), the project's synthetic occluders (rectangles, text, hands, microphones, masks, subtitles, poles)
and real occluders cut out with their exact masks (trainer.cutouts). Loss: BCE + soft Dice on raw logits. Labels
mark a pixel covered only where the occluder is really visible (alpha > 0.5), not its invisible fringe.

The operating threshold is chosen on the identity-disjoint validation split: the lowest one at which at least
`clean_target` of clean faces come out untouched inside the face region (after the runtime's speckle filter), so
recall is as high as that precision allows. It is written into the ONNX contract.

Checkpoints every `--checkpoint-every` steps to OUT/last.pt hold the model, optimiser and step; `--resume` continues.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from realtime.errors import UnveilError
from realtime.regions import remove_specks
from trainer.checkpoints import load_parts, read_run, save_checkpoint
from trainer.cutouts import Cutout, load_cutouts, place_cutout, split_cutouts
from trainer.data import FaceStore, flip_face, image_to_tensor
from trainer.networks.segmenter import OcclusionSegmenter
from trainer.onnx_weights import freeze_batchnorm, unfold_batchnorm_into
from trainer.occlusion import OcclusionSynth
from realtime.align import template_points

EVAL_PROTOCOLS = ("rect", "text", "centre", "half", "realistic", "cutouts")
# What a synthetic occluder is drawn from (the rest of a batch: clean faces and real cutouts).
MIX_WEIGHTS = {"rect": 0.15, "text": 0.25, "centre": 0.1, "half": 0.1, "realistic": 0.4}
HAND_SHARE = 0.6  # of the real cutouts drawn: hands (the commonest real occluder; few hand files beside many objects)
# The synthetic occluders the segmenter learns. No sunglasses: glasses are part of the face (a first model trained
# with them marked clear glasses' frames on real clips), and few poles (thin dark strands read as hair).
REALISTIC_WEIGHTS = {"hand": 0.2, "microphone": 0.12, "face_mask": 0.15, "subtitle": 0.2, "watermark": 0.1,
                     "texture": 0.13, "pole": 0.1}
JAW = slice(0, 17)   # positions of the jaw points in the prepared landmark subset (trainer.prepare.LANDMARK_GROUPS)
BROWS = slice(17, 27)


def face_region_from_points(points: np.ndarray, size: int) -> np.ndarray:
    """(S, S) bool: the face (jaw contour up to above the brows) from a prepared crop's 69 landmarks."""
    jaw, brows = points[JAW], points[BROWS]
    eyes_y = points[37:49, 1].mean() if len(points) > 48 else brows[:, 1].mean()
    lift = max(float(eyes_y - brows[:, 1].mean()), 4.0) * 1.5
    top = brows.copy()
    top[:, 1] -= lift
    hull = cv2.convexHull(np.concatenate([jaw, top]).astype(np.float32)).astype(np.int32)
    region = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(region, hull, 1)
    return region.astype(bool)


def photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Changes a face goes through that are not occlusions: a side light or cast shadow, colour cast, gamma."""
    out = image.astype(np.float32)
    size = image.shape[0]
    if rng.random() < 0.5:  # a soft shadow or side light over part of the face
        angle = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
        ramp = np.clip((np.cos(angle) * xx + np.sin(angle) * yy) * rng.uniform(2, 8) + rng.uniform(-1, 1), -1, 1)
        out *= (1.0 + ramp * rng.uniform(0.15, 0.5))[..., None]
    if rng.random() < 0.5:
        out *= rng.uniform(0.85, 1.15, 3)[None, None]
    if rng.random() < 0.3:
        out = 255.0 * (np.clip(out, 0, 255) / 255.0) ** rng.uniform(0.7, 1.4)
    return np.clip(out, 0, 255).astype(np.uint8)


def clear_glasses(image: np.ndarray, points5: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Thin-rimmed clear glasses drawn over the eyes: part of the face, never an occlusion (a hard negative; a model
    trained with sunglasses as occluders marked real glasses' frames on clips)."""
    out = image.copy()
    left, right = points5[0], points5[1]
    eye_distance = float(np.linalg.norm(right - left))
    colour = tuple(int(c) for c in rng.integers(0, 120, 3)) if rng.random() < 0.7 else tuple(int(c) for c in rng.integers(140, 230, 3))
    thickness = int(rng.integers(1, 3))
    axes = (int(eye_distance * rng.uniform(0.32, 0.45)), int(eye_distance * rng.uniform(0.22, 0.34)))
    shift = np.array([0.0, eye_distance * rng.uniform(-0.05, 0.12)])
    for centre in (left + shift, right + shift):
        c = (int(round(centre[0])), int(round(centre[1])))
        if rng.random() < 0.5:
            cv2.ellipse(out, c, axes, 0, 0, 360, colour, thickness, cv2.LINE_AA)
        else:
            cv2.rectangle(out, (c[0] - axes[0], c[1] - axes[1]), (c[0] + axes[0], c[1] + axes[1]), colour, thickness,
                          cv2.LINE_AA)
    inner_left = (int(round(left[0] + shift[0] + axes[0])), int(round(left[1] + shift[1])))
    inner_right = (int(round(right[0] + shift[0] - axes[0])), int(round(right[1] + shift[1])))
    cv2.line(out, inner_left, inner_right, colour, thickness, cv2.LINE_AA)
    return out


def degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Camera and codec: blur, noise, JPEG."""
    out = image
    if rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.4, 1.2))
    if rng.random() < 0.3:
        out = np.clip(out.astype(np.float32) + rng.normal(0, rng.uniform(1, 6), out.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.4:
        ok, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(35, 90))])
        out = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    return out


def jitter_alignment(image: np.ndarray, points: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Video landmarks are noisier than a photo's: shift, scale and turn the crop a little (edges replicated)."""
    size = image.shape[0]
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-6, 6), rng.uniform(0.93, 1.07))
    matrix[:, 2] += rng.uniform(-0.04, 0.04, 2) * size
    warped = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return warped, (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


class SegmenterData(torch.utils.data.Dataset):
    """Training items: (input image tensor, mask tensor). A fresh draw per call, seeded from torch's RNG."""

    def __init__(self, store: FaceStore, cutouts: list[Cutout], clean_fraction: float = 0.4,
                 cutout_fraction: float = 0.3, seed: int = 0, glasses_fraction: float = 0.0, natural: bool = True):
        self.store, self.cutouts = store, cutouts
        self.items = store.indices("train")
        self.clean_fraction, self.cutout_fraction, self.seed = clean_fraction, cutout_fraction, seed
        self.glasses_fraction = glasses_fraction  # faces given clear glasses (not an occlusion)
        self.natural = natural  # cutouts lit, coloured and blurred like the frame (trainer.cutouts.naturalise)
        self.hands = [c for c in cutouts if c.kind == "hand"]
        self.others = [c for c in cutouts if c.kind != "hand"] or self.hands
        meta = store.meta
        self.points5 = template_points(store.crop_size, meta["template"], meta["margin"])
        self.synth = OcclusionSynth("mix", store.crop_size, seed=seed, template=meta["template"], margin=meta["margin"],
                                    colour_order="rgb", clean_fraction=0.0,
                                    mix_weights=MIX_WEIGHTS,
                                    realistic_weights=REALISTIC_WEIGHTS)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.seed, int(torch.randint(0, 2**62, ()).item())])
        index = int(self.items[i])
        image, points = self.store.image(index), self.store.landmarks(index)
        if rng.random() < 0.5:
            image, points = flip_face(image, points, self.store.mirror)
        if rng.random() < 0.7:
            image, points = jitter_alignment(image, points, rng)
        image = photometric(image, rng)
        if rng.random() < self.glasses_fraction:
            image = clear_glasses(image, self.points5, rng)
        draw = rng.random()
        if draw < self.clean_fraction:
            occluded, mask = image, np.zeros(image.shape[:2], np.float32)
        elif draw < self.clean_fraction + self.cutout_fraction:
            pool = self.hands if self.hands and rng.random() < HAND_SHARE else self.others
            occluded, mask = place_cutout(image, pool[int(rng.integers(len(pool)))], rng, self.points5, self.natural)
        else:
            occlusion = self.synth.sample(image, rng)
            occluded, mask = occlusion.image, occlusion.mask
        return image_to_tensor(degrade(occluded, rng)), torch.from_numpy(mask[None])


def segmentation_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BCE + soft Dice (Dice over the whole batch, so clean faces do not divide by zero)."""
    bce = nn.functional.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits)
    dice = 1.0 - (2.0 * (prob * target).sum() + 1.0) / (prob.sum() + target.sum() + 1.0)
    return bce + dice


# ------------------------------------------------------------------------------------------------- validation set


def validation_set(store: FaceStore, cutouts: list[Cutout], per_protocol: int, seed: int = 123) -> dict[str, tuple]:
    """protocol -> (occluded uint8 RGB images, true masks, face regions); 'clean' has clean faces. Deterministic."""
    meta = store.meta
    size = store.crop_size
    points5 = template_points(size, meta["template"], meta["margin"])
    faces = store.indices("val")
    out: dict[str, tuple] = {}
    for p, protocol in enumerate(("clean",) + EVAL_PROTOCOLS):
        images, masks, regions = [], [], []
        for k in range(per_protocol):
            index = int(faces[(k * 7 + p * 131) % len(faces)])
            rng = np.random.default_rng([seed, p, k])
            image, points = store.image(index), store.landmarks(index)
            if protocol == "clean":
                occluded, mask = image, np.zeros((size, size), np.float32)
            elif protocol == "cutouts":
                occluded, mask = place_cutout(image, cutouts[k % len(cutouts)], rng, points5, natural=True)
            else:
                synth = OcclusionSynth(protocol, size, seed=seed, template=meta["template"], margin=meta["margin"],
                                       colour_order="rgb")
                occlusion = synth.sample(image, rng)
                occluded, mask = occlusion.image, occlusion.mask
            images.append(occluded)
            masks.append(mask > 0.5)
            regions.append(face_region_from_points(points, size))
        out[protocol] = (np.stack(images), np.stack(masks), np.stack(regions))
    return out


@torch.no_grad()
def predict(network: nn.Module, images: np.ndarray, batch: int = 64) -> np.ndarray:
    network.eval()
    probs = []
    for start in range(0, len(images), batch):
        x = torch.from_numpy(images[start:start + batch].transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
        probs.append(network(x)["mask"][:, 0].numpy())
    return np.concatenate(probs)


def decide(prob: np.ndarray, region: np.ndarray, threshold: float, min_area: int) -> np.ndarray:
    """The runtime's per-frame decision for one crop: above threshold, inside the face, no specks."""
    return remove_specks((prob >= threshold) & region, min_area)


def mask_scores(probs: np.ndarray, truths: np.ndarray, regions: np.ndarray, threshold: float, min_area: int) -> dict:
    """IoU, precision, recall over the face region (pooled over the set), and the share of empty masks."""
    tp = fp = fn = 0
    empty = 0
    for prob, truth, region in zip(probs, truths, regions):
        pred = decide(prob, region, threshold, min_area)
        true = truth & region
        tp += int((pred & true).sum())
        fp += int((pred & ~true).sum())
        fn += int((~pred & true).sum())
        empty += int(not pred.any())
    return {"iou": tp / max(tp + fp + fn, 1), "precision": tp / max(tp + fp, 1), "recall": tp / max(tp + fn, 1),
            "untouched": empty / len(probs)}


def calibrate(clean_probs: np.ndarray, regions: np.ndarray, clean_target: float, min_area: int) -> float:
    """The lowest threshold at which at least `clean_target` of clean faces have an empty final mask."""
    for threshold in np.arange(0.30, 0.991, 0.01):
        untouched = np.mean([not decide(p, r, threshold, min_area).any() for p, r in zip(clean_probs, regions)])
        if untouched >= clean_target:
            return float(round(threshold, 2))
    return 0.99


def evaluate(network: nn.Module, val: dict[str, tuple], threshold: float, min_area: int) -> dict[str, dict]:
    return {name: mask_scores(predict(network, images), truths, regions, threshold, min_area)
            for name, (images, truths, regions) in val.items()}


def evaluate_onnx(model_path: Path, data_path: Path, occluders: Path, per_protocol: int, provider: str = "cpu",
                  min_area: int = 24) -> dict:
    """`unveil eval` for an occlusion_mask model: per protocol (and on clean faces) the mask IoU, precision and
    recall inside the face, and the share of faces left untouched, at the contract's threshold, through
    onnxruntime -- on the same validation set the calibration used."""
    from realtime.runner import ModelRunner

    runner = ModelRunner(str(model_path), provider=provider)
    store = FaceStore(data_path)
    _, held_cutouts = split_cutouts(load_cutouts(occluders))
    val = validation_set(store, held_cutouts, per_protocol)
    scores = {}
    for name, (images, truths, regions) in val.items():
        probs = np.stack(runner.run([np.ascontiguousarray(im[..., ::-1]) for im in images]).masks)
        scores[name] = mask_scores(probs, truths, regions, float(runner.contract.threshold), min_area)
    return {"model": str(model_path), "threshold": runner.contract.threshold, "faces_per_protocol": per_protocol,
            "scores": scores}


def format_scores(report: dict) -> str:
    lines = [f"{report['model']} (occlusion_mask, threshold {report['threshold']}), "
             f"{report['faces_per_protocol']} validation faces per protocol; inside the face region",
             "", "| protocol | IoU | precision | recall | faces untouched |", "|---|---|---|---|---|"]
    for name, v in report["scores"].items():
        lines.append(f"| {name} | {v['iou']:.3f} | {v['precision']:.3f} | {v['recall']:.3f} | {v['untouched']:.1%} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------- loop


def train(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = FaceStore(args.data)
    train_cutouts, held_cutouts = split_cutouts(load_cutouts(args.occluders))
    network = OcclusionSegmenter(store.crop_size, tuple(args.widths))
    optimiser = torch.optim.AdamW(network.parameters(), lr=args.lr, weight_decay=1e-4)
    step = 0
    checkpoint = out / "last.pt"
    frozen_batchnorm = bool(args.warm_start)
    if args.resume and checkpoint.is_file():
        run = read_run(checkpoint)
        step = load_parts(run, {"model": network, "optimiser": optimiser})
        frozen_batchnorm = bool(run.get("frozen_batchnorm", False))
        print(f"resumed at step {step}", flush=True)
    elif args.warm_start:
        loaded = unfold_batchnorm_into(network, args.warm_start)
        print(f"warm start from {args.warm_start} ({loaded} convs; BatchNorm statistics frozen)", flush=True)
    data = mixed_training_data([store] + [FaceStore(extra) for extra in args.also_data], train_cutouts, args,
                               seed=args.seed + step)
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch, shuffle=True, num_workers=args.workers,
                                         drop_last=True, persistent_workers=args.workers > 0)
    return fit(network, optimiser, loader, args, step, out / "last.pt",
               {"widths": list(args.widths), "frozen_batchnorm": frozen_batchnorm})


def mixed_training_data(stores: list[FaceStore], cutouts: list[Cutout], args: argparse.Namespace, seed: int
                        ) -> torch.utils.data.Dataset:
    """The training faces of every store, in one dataset (each store's faces drawn in proportion to its size).
    The stores must share the crop geometry: their crops are fed to one network at one size."""
    first = stores[0]
    for other in stores[1:]:
        if (other.crop_size, other.meta["template"], other.meta["margin"]) != (
                first.crop_size, first.meta["template"], first.meta["margin"]):
            raise UnveilError(f"{other.path} is prepared at another crop size, template or margin than {first.path}")
    parts = [SegmenterData(store, cutouts, args.clean_fraction, args.cutout_fraction, seed=seed + 1000 * k,
                           glasses_fraction=args.glasses_fraction) for k, store in enumerate(stores)]
    return parts[0] if len(parts) == 1 else torch.utils.data.ConcatDataset(parts)


def fit(network: nn.Module, optimiser, loader, args: argparse.Namespace, step: int, checkpoint: Path,
        extra: dict) -> int:
    """The segmenters' training loop: batches are (inputs..., target); AdamW with a cosine decay to 5 % of --lr,
    BCE + Dice, a line and a metrics.jsonl row every 20 steps, OUT/last.pt (with `extra`) every
    --checkpoint-every steps and at the end."""
    log = (checkpoint.parent / "metrics.jsonl").open("a")
    started, first_step = time.time(), step
    network.train()
    if extra.get("frozen_batchnorm"):
        freeze_batchnorm(network)
    while step < args.steps:
        for *inputs, target in loader:
            lr = args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(step / args.steps, 1.0))))
            for group in optimiser.param_groups:
                group["lr"] = lr
            loss = segmentation_loss(network(*inputs)["logits"], target)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            step += 1
            if step % 20 == 0:
                rate = (step - first_step) / max(time.time() - started, 1e-6)
                log.write(json.dumps({"step": step, "loss": float(loss), "lr": lr}) + "\n")
                log.flush()
                print(f"step {step}/{args.steps} loss {float(loss):.4f} lr {lr:.2e} ({rate:.2f} steps/s)", flush=True)
            if step % args.checkpoint_every == 0 or step >= args.steps:
                save_checkpoint(checkpoint, {"model": network.state_dict(), "optimiser": optimiser.state_dict(),
                                             "step": step, **extra})
            if step >= args.steps:
                break
    print(f"trained {step} steps", flush=True)
    return 0


def load_network(checkpoint: Path, crop_size: int = 128, state: dict | None = None) -> OcclusionSegmenter:
    """The segmenter of a run's checkpoint, in eval mode; `state`: the checkpoint already read."""
    if state is None:
        if not checkpoint.is_file():
            raise UnveilError(f"checkpoint not found: {checkpoint}")
        state = read_run(checkpoint)
    network = OcclusionSegmenter(crop_size, tuple(state.get("widths", (16, 32, 64, 128))))
    network.load_state_dict(state["model"])
    return network.eval()


@torch.no_grad()
def recalibrate_batchnorm(network: nn.Module, data: torch.utils.data.Dataset, batches: int, batch_size: int,
                          seed: int = 0) -> None:
    """Re-estimate BatchNorm's running statistics with the final weights (a plain average over `batches` training
    batches). The running averages kept during training lag behind weights that moved fast; with them the
    network in eval mode marked most of a clean face, with these it matches its training-mode behaviour."""
    torch.manual_seed(seed)
    for module in network.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=True, num_workers=0)
    network.train()
    for i, (*inputs, _) in enumerate(loader):
        if i >= batches:
            break
        network(*inputs)
    network.eval()


@dataclass
class Finished:
    """A trained segmenter made ready for export: BatchNorm re-estimated, threshold calibrated."""
    network: nn.Module
    threshold: float
    margin: float
    template: str


def finish(args: argparse.Namespace) -> Finished:
    """Re-estimate BatchNorm, calibrate the threshold on validation, report per protocol (printed and written to
    OUT/calibration.json)."""
    torch.set_num_threads(args.threads)
    store = FaceStore(args.data)
    train_cutouts, held_cutouts = split_cutouts(load_cutouts(args.occluders))
    checkpoint = Path(args.out) / "last.pt"
    if not checkpoint.is_file():
        raise UnveilError(f"checkpoint not found: {checkpoint}")
    run = read_run(checkpoint)
    network = load_network(checkpoint, store.crop_size, run)
    if not run.get("frozen_batchnorm", False):
        data = SegmenterData(store, train_cutouts, args.clean_fraction, args.cutout_fraction, seed=args.seed)
        recalibrate_batchnorm(network, data, args.bn_batches, args.batch)
    val = validation_set(store, held_cutouts, args.val_size)
    clean_probs = predict(network, val["clean"][0])
    threshold = calibrate(clean_probs, val["clean"][2], args.clean_target, args.min_area)
    report = {"threshold": threshold, "min_area": args.min_area, "scores": evaluate(network, val, threshold, args.min_area)}
    print(json.dumps(report, indent=2))
    (Path(args.out) / "calibration.json").write_text(json.dumps(report, indent=2))
    return Finished(network, threshold, float(store.meta["margin"]), str(store.meta["template"]))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="data_cache/celeba128", help="prepared dataset (unveil prepare)")
    parser.add_argument("--also-data", action="append", default=[], metavar="DATASET",
                        help="another prepared dataset whose training faces are mixed in (repeatable; validation and "
                             "calibration stay on --data)")
    parser.add_argument("--occluders", default="../shared/data/occluders", help="real occluders with masks")
    parser.add_argument("--out", default="runs/segmenter", help="run folder (checkpoints, metrics)")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--clean-fraction", type=float, default=0.4, help="share of clean faces per batch")
    parser.add_argument("--cutout-fraction", type=float, default=0.3, help="share of real cut-out occluders")
    parser.add_argument("--glasses-fraction", type=float, default=0.0,
                        help="share of faces given clear glasses, which are face, not occlusion (not in the shipped "
                             "model: see its model card)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warm-start", metavar="MODEL.onnx",
                        help="start from a shipped segmenter (its folded BatchNorm unfolded, statistics frozen)")
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--finish", action="store_true", help="do not train: calibrate, report and export")
    parser.add_argument("--export", metavar="PATH.onnx", help="with --finish: write the ONNX model here")
    parser.add_argument("--val-size", type=int, default=500, help="validation faces per protocol")
    parser.add_argument("--bn-batches", type=int, default=60, help="with --finish: batches that re-estimate BatchNorm")
    parser.add_argument("--clean-target", type=float, default=0.99, help="share of clean faces that must stay untouched")
    parser.add_argument("--min-area", type=int, default=24, help="speck filter: smallest region kept, crop pixels")


