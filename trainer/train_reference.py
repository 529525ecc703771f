"""`unveil train-reference`: train, calibrate and export the reference-conditioned segmenter (surface change).

Pairs of aligned video crops of one person from different moments of the prepared video dataset (trainer.video_frames
then `unveil prepare`): the reference is clean; the current crop gets, half of the time, an occluder from the
segmenter's synthesis (synthetic painters and real cutouts lit like the frame). Each crop gets its own small
alignment jitter and light change, as two moments of a clip do. Hard negatives: the same clear glasses or the same
sticker on both (what is in both is the face), and no occluder at all. Loss: BCE + soft Dice. The threshold is the
lowest at which `--clean-target` of the calibrate people's clean pairs stay untouched.

    unveil train-reference --data data_cache/video128 --out runs/reference --steps 2000
    unveil train-reference --data data_cache/video128 --out runs/reference --finish --export occlusion-change.onnx
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import torch

from realtime.align import template_points
from realtime.errors import UnveilError
from trainer.checkpoints import load_parts, read_run
from trainer.cutouts import load_cutouts, place_cutout, split_cutouts
from trainer.data import FaceStore, image_to_tensor
from trainer.networks.reference_segmenter import ReferenceSegmenter
from trainer.occlusion import OcclusionSynth
from trainer.train_segmenter import (
    MIX_WEIGHTS, REALISTIC_WEIGHTS, calibrate, clear_glasses, degrade, face_region_from_points, jitter_alignment,
    fit, mask_scores, photometric, recalibrate_batchnorm,
)


def small(image: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


class PairData(torch.utils.data.Dataset):
    """(current, reference, mask) tensors at `size`; a fresh draw per call."""

    def __init__(self, store: FaceStore, cutouts, split: str = "train", size: int = 64, occluded: float = 0.5,
                 shared: float = 0.15, seed: int = 0):
        self.store, self.cutouts, self.size = store, cutouts, size
        self.items = store.indices(split)
        groups: dict[str, list[int]] = defaultdict(list)
        for i in self.items:
            groups[store.identity(int(i))].append(int(i))
        self.groups = {k: np.array(v) for k, v in groups.items() if len(v) >= 2}
        self.items = np.concatenate(list(self.groups.values()))
        self.occluded, self.shared, self.seed = occluded, shared, seed
        meta = store.meta
        self.points5 = template_points(store.crop_size, meta["template"], meta["margin"])
        self.synth = OcclusionSynth("mix", store.crop_size, seed=seed, template=meta["template"], margin=meta["margin"],
                                    colour_order="rgb", clean_fraction=0.0, mix_weights=MIX_WEIGHTS,
                                    realistic_weights=REALISTIC_WEIGHTS)

    def __len__(self) -> int:
        return len(self.items)

    def draw(self, i: int, rng: np.random.Generator):
        current_index = int(self.items[i])
        group = self.groups[self.store.identity(current_index)]
        reference_index = int(rng.choice(group[group != current_index]))
        current, reference = self.store.image(current_index), self.store.image(reference_index)
        points = self.store.landmarks(current_index)
        if rng.random() < 0.6:
            current, points = jitter_alignment(current, points, rng)
        if rng.random() < 0.6:
            reference, _ = jitter_alignment(reference, self.store.landmarks(reference_index), rng)
        current, reference = photometric(current, rng), photometric(reference, rng)
        mask = np.zeros(current.shape[:2], np.float32)
        draw = rng.random()
        if draw < self.shared:  # the same thing on both: part of the person, not an occluder
            if rng.random() < 0.5:
                same = int(rng.integers(2**62))  # one seed: the same glasses on both
                current = clear_glasses(current, self.points5, np.random.default_rng(same))
                reference = clear_glasses(reference, self.points5, np.random.default_rng(same))
            else:
                occlusion = self.synth.sample(current, rng)
                alpha = occlusion.mask[..., None]
                current = (current * (1 - alpha) + occlusion.image * alpha).astype(np.uint8)
                reference = np.where(alpha > 0, occlusion.image, reference).astype(np.uint8)
        elif draw < self.shared + self.occluded:
            if rng.random() < 0.4:
                cut = self.cutouts[int(rng.integers(len(self.cutouts)))]
                current, mask = place_cutout(current, cut, rng, self.points5, natural=True)
            else:
                occlusion = self.synth.sample(current, rng)
                current, mask = occlusion.image, occlusion.mask
        current, reference = degrade(current, rng), degrade(reference, rng)
        return small(current, self.size), small(reference, self.size), small(mask, self.size), points

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.seed, int(torch.randint(0, 2**62, ()).item())])
        current, reference, mask, _ = self.draw(i, rng)
        return image_to_tensor(current), image_to_tensor(reference), torch.from_numpy((mask > 0.5).astype(np.float32)[None])


def validation_pairs(store: FaceStore, cutouts, count: int, size: int, seed: int = 321) -> dict[str, tuple]:
    """'clean' and 'occluded' -> (current, reference, true masks, face regions) at `size`, deterministic."""
    data = PairData(store, cutouts, "val", size, occluded=1.0, shared=0.0, seed=seed)
    out = {}
    for name, occluded in (("clean", 0.0), ("occluded", 1.0)):
        data.occluded = occluded
        rows = []
        for k in range(count):
            rng = np.random.default_rng([seed, k, int(occluded)])
            current, reference, mask, points = data.draw((k * 37) % len(data), rng)
            region = small(face_region_from_points(points, store.crop_size).astype(np.uint8), size) > 0
            rows.append((current, reference, mask > 0.5, region))
        out[name] = tuple(np.stack(col) for col in zip(*rows))
    return out


@torch.no_grad()
def predict(network, currents: np.ndarray, references: np.ndarray, batch: int = 64) -> np.ndarray:
    network.eval()
    probs = []
    for start in range(0, len(currents), batch):
        x = torch.from_numpy(currents[start:start + batch].transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
        r = torch.from_numpy(references[start:start + batch].transpose(0, 3, 1, 2).astype(np.float32) / 255.0)
        probs.append(network(x, r)["mask"][:, 0].numpy())
    return np.concatenate(probs)


def train(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = FaceStore(args.data)
    train_cutouts, _ = split_cutouts(load_cutouts(args.occluders))
    network = ReferenceSegmenter(args.size, tuple(args.widths))
    optimiser = torch.optim.AdamW(network.parameters(), lr=args.lr, weight_decay=1e-4)
    step = 0
    checkpoint = out / "last.pt"
    if args.resume and checkpoint.is_file():
        step = load_parts(read_run(checkpoint), {"model": network, "optimiser": optimiser})
        print(f"resumed at step {step}", flush=True)
    data = PairData(store, train_cutouts, "train", args.size, seed=args.seed + step)
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch, shuffle=True, num_workers=args.workers,
                                         drop_last=True, persistent_workers=args.workers > 0)
    return fit(network, optimiser, loader, args, step, checkpoint, {"widths": list(args.widths), "size": args.size})


def finish(args: argparse.Namespace):
    """BatchNorm re-estimated, threshold calibrated on the calibrate people's pairs; (network, threshold, meta)."""
    torch.set_num_threads(args.threads)
    store = FaceStore(args.data)
    train_cutouts, held_cutouts = split_cutouts(load_cutouts(args.occluders))
    checkpoint = Path(args.out) / "last.pt"
    if not checkpoint.is_file():
        raise UnveilError(f"checkpoint not found: {checkpoint}")
    state = read_run(checkpoint)
    network = ReferenceSegmenter(int(state.get("size", args.size)), tuple(state.get("widths", args.widths)))
    network.load_state_dict(state["model"])

    recalibrate_batchnorm(network, PairData(store, train_cutouts, "train", network.crop_size, seed=args.seed),
                          args.bn_batches, args.batch)
    network.eval()
    val = validation_pairs(store, held_cutouts, args.val_size, network.crop_size)
    min_area = max(int(round(args.min_area * network.crop_size ** 2 / 128 ** 2)), 1)
    clean_probs = predict(network, val["clean"][0], val["clean"][1])
    threshold = calibrate(clean_probs, val["clean"][3], args.clean_target, min_area)
    scores = {name: mask_scores(predict(network, cur, ref), truth, region, threshold, min_area)
              for name, (cur, ref, truth, region) in val.items()}
    report = {"threshold": threshold, "min_area": min_area, "pairs_per_set": args.val_size, "scores": scores}
    print(json.dumps(report, indent=2))
    (Path(args.out) / "calibration.json").write_text(json.dumps(report, indent=2))
    return network, threshold, store.meta


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="data_cache/video128", help="prepared video dataset (see trainer.video_frames)")
    parser.add_argument("--occluders", default="../shared/data/occluders", help="real occluders with masks")
    parser.add_argument("--out", default="runs/reference", help="run folder (checkpoints, metrics)")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=64, help="crop size the network works at")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--finish", action="store_true", help="do not train: calibrate, report and export")
    parser.add_argument("--export", metavar="PATH.onnx", help="with --finish: write the ONNX model here")
    parser.add_argument("--val-size", type=int, default=400, help="validation pairs per set")
    parser.add_argument("--bn-batches", type=int, default=40)
    parser.add_argument("--clean-target", type=float, default=0.99, help="share of clean pairs that must stay untouched")
    parser.add_argument("--min-area", type=int, default=24, help="speck filter at 128 px (scaled to --size)")
