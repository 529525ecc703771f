"""`unveil train-vae`: train SymmetryVAE (trainer/networks/symmetry_vae.py) in the vae paper's three stages.

1. reconstruct: the input face crop is its own target (the encoder learns a latent code that describes a face);
2. face only: the target is the crop with everything outside the face (jaw contour up to above the brows, from the
   prepared landmarks) set to black;
3. symmetric: the decoder ends with the projection onto mirror-symmetric images, and the targets are made
   automatically: in the aligned crop the template is mirror-symmetric, so the crop's vertical centre line is the
   face's mid-line; mirroring the image-left half of the face-only crop onto the right, and the right half onto the
   left (realtime.symmetrize.mirror_halves), gives two symmetric faces per photo. The loss takes the nearer of the
   two (both are valid symmetric versions of the face; their average would be a ghosted double image).
Loss: L1 + `ssim_weight` * (1 - SSIM) on the image, + `beta` * KL(q(z|x) || N(0, I)) (the paper: cross-entropy + KL;
L1 and SSIM keep the faces sharper). The paper's later stages fine-tune on less data; here they see the same
training split with the new targets.

Faces come from a prepared dataset (trainer.data.FaceStore, identity-disjoint train/val), resized to `--size`.
Checkpoints every `--checkpoint-every` steps to OUT/last.pt (model, optimiser, step); `--resume` continues exactly
where it stopped, and `--max-minutes` stops cleanly (checkpoint written) so a run can be spread over sessions.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from realtime.errors import UnveilError
from trainer.checkpoints import load_parts, read_run, save_checkpoint
from trainer.data import FaceStore, flip_face
from trainer.metrics import ssim_map
from trainer.networks.symmetry_vae import SymmetryVAE, kl_divergence
from trainer.train_segmenter import face_region_from_points

STAGES = ("reconstruct", "face", "symmetric")


def stage_of(step: int, stage_steps: tuple[int, int, int]) -> int:
    """0, 1 or 2: which stage training step `step` (0-based) belongs to."""
    if step < stage_steps[0]:
        return 0
    if step < stage_steps[0] + stage_steps[1]:
        return 1
    return 2


FINE_TUNE_LR = 0.3   # stages 2 and 3 peak at this fraction of --lr
WARM_UP = 100        # steps over which a fine-tuning stage's learning rate rises from where the last one ended


def learning_rate(step: int, stage_steps: tuple[int, int, int], base: float) -> float:
    """Cosine within each stage down to 5 % of its peak; stages 2 and 3 (fine-tunes of the last) peak at 0.3 x base
    after a linear warm-up from that floor. A jump straight back to a high rate when the targets change collapsed
    the latent (KL to ~0, the output one mean face) in a first run."""
    stage = stage_of(step, stage_steps)
    start = sum(stage_steps[:stage])
    progress = (step - start) / max(stage_steps[stage], 1)
    peak = base * (FINE_TUNE_LR if stage else 1.0)
    lr = peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))
    if stage and step - start < WARM_UP:
        floor = 0.05 * (base if stage == 1 else base * FINE_TUNE_LR)
        lr = floor + (lr - floor) * (step - start) / WARM_UP
    return lr


class VAEFaces(torch.utils.data.Dataset):
    """(image 3xSxS in [0, 1] RGB, face region 1xSxS in [0, 1]) at the network's size; random flips in training."""

    def __init__(self, store: FaceStore, split: str, size: int, flip: bool = True, limit: int | None = None):
        self.store, self.size, self.flip = store, int(size), flip
        self.items = store.indices(split)
        if limit is not None:
            self.items = self.items[:limit]
        if not len(self.items):
            raise UnveilError(f"dataset {store.path} has no faces in split {split!r}")

    def __len__(self) -> int:
        return len(self.items)

    def example(self, i: int, flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(uint8 RGB SxS, float32 region SxS) of item i."""
        index = int(self.items[i])
        image, points = self.store.image(index), self.store.landmarks(index)
        if flip:
            image, points = flip_face(image, points, self.store.mirror)
        region = face_region_from_points(points, image.shape[0]).astype(np.float32)
        if image.shape[0] != self.size:
            image = cv2.resize(image, (self.size, self.size), interpolation=cv2.INTER_AREA)
            region = cv2.resize(region, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return image, region

    def __getitem__(self, i: int):
        flip = self.flip and bool(torch.randint(0, 2, ()).item())
        image, region = self.example(i, flip)
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32) / 255.0)
        return x, torch.from_numpy(region[None])


def symmetric_targets(image: torch.Tensor, region: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two stage-3 targets of a batch (N,3,S,S): the face-only crop (region made symmetric) with its left half
    mirrored onto the right, and its right half onto the left."""
    both = torch.maximum(region, torch.flip(region, dims=[3]))
    face = image * both
    flipped = torch.flip(face, dims=[3])
    half = face.shape[3] // 2
    left = torch.cat([face[..., :half], flipped[..., half:]], dim=3)
    right = torch.cat([flipped[..., :half], face[..., half:]], dim=3)
    return left, right


def per_sample_image_loss(pred: torch.Tensor, target: torch.Tensor, ssim_weight: float) -> torch.Tensor:
    l1 = (pred - target).abs().flatten(1).mean(1)
    if ssim_weight <= 0:
        return l1
    return l1 + ssim_weight * (1.0 - ssim_map(pred, target).flatten(1).mean(1))


def stage_loss(out: dict, image: torch.Tensor, region: torch.Tensor, stage: int, ssim_weight: float, beta: float
               ) -> tuple[torch.Tensor, dict]:
    pred = out["image"]
    if stage == 0:
        image_loss = per_sample_image_loss(pred, image, ssim_weight)
    elif stage == 1:
        image_loss = per_sample_image_loss(pred, image * region, ssim_weight)
    else:
        left, right = symmetric_targets(image, region)
        image_loss = torch.minimum(per_sample_image_loss(pred, left, ssim_weight),
                                   per_sample_image_loss(pred, right, ssim_weight))
    kl = kl_divergence(out["mu"], out["logvar"])
    total = image_loss.mean() + beta * kl
    return total, {"image": float(image_loss.mean().detach()), "kl": float(kl.detach())}


def build_network(args_or_state: dict) -> SymmetryVAE:
    return SymmetryVAE(int(args_or_state["size"]), tuple(args_or_state["widths"]), int(args_or_state["latent"]))


def train(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = FaceStore(args.data)
    stage_steps = tuple(int(s) for s in args.stage_steps)
    if len(stage_steps) != 3 or min(stage_steps) < 0:
        raise UnveilError("--stage-steps needs three step counts (reconstruct, face, symmetric)")
    total = sum(stage_steps)
    settings = {"size": args.size, "widths": list(args.widths), "latent": args.latent, "stage_steps": list(stage_steps),
                "template": store.meta["template"], "margin": float(store.meta["margin"])}
    network = build_network(settings)
    optimiser = torch.optim.Adam(network.parameters(), lr=args.lr)
    step = 0
    checkpoint = out / "last.pt"
    if args.resume and checkpoint.is_file():
        step = load_parts(read_run(checkpoint), {"model": network, "optimiser": optimiser})
        torch.manual_seed(args.seed + step)
        print(f"resumed at step {step}", flush=True)
    data = VAEFaces(store, "train", args.size)
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch, shuffle=True, num_workers=args.workers,
                                         drop_last=True, persistent_workers=args.workers > 0)
    log = (out / "metrics.jsonl").open("a")
    started, first_step = time.time(), step
    network.train()
    while step < total:
        for x, region in loader:
            stage = stage_of(step, stage_steps)
            network.symmetric = stage == 2
            lr = learning_rate(step, stage_steps, args.lr)
            for group in optimiser.param_groups:
                group["lr"] = lr
            loss, parts = stage_loss(network(x), x, region, stage, args.ssim_weight, args.beta)
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(network.parameters(), 1.0)
            optimiser.step()
            step += 1
            if step % 20 == 0:
                rate = (step - first_step) / max(time.time() - started, 1e-6)
                log.write(json.dumps({"step": step, "stage": STAGES[stage], "loss": float(loss.detach()), **parts, "lr": lr}) + "\n")
                log.flush()
                print(f"step {step}/{total} {STAGES[stage]} loss {float(loss.detach()):.4f} (image {parts['image']:.4f}, "
                      f"kl {parts['kl']:.3f}) lr {lr:.2e} ({rate:.2f} steps/s)", flush=True)
            out_of_time = args.max_minutes and (time.time() - started) > 60.0 * args.max_minutes
            if step % args.checkpoint_every == 0 or step >= total or out_of_time:
                save_checkpoint(checkpoint, {"model": network.state_dict(), "optimiser": optimiser.state_dict(),
                                             "step": step, **settings})
            if out_of_time:
                print(f"stopped at step {step} after {args.max_minutes} minutes; --resume continues", flush=True)
                return 0
            if step >= total:
                break
    print(f"trained {step} steps", flush=True)
    return 0


def load_network(checkpoint: Path) -> tuple[SymmetryVAE, dict]:
    """The trained network in eval mode with its symmetric output on, and the checkpoint's settings."""
    if not Path(checkpoint).is_file():
        raise UnveilError(f"checkpoint not found: {checkpoint}")
    state = read_run(checkpoint)
    network = build_network(state)
    network.load_state_dict(state["model"])
    network.symmetric = True
    return network.eval(), {k: v for k, v in state.items() if k not in ("model", "optimiser")}


@torch.no_grad()
def validate(network: SymmetryVAE, store: FaceStore, count: int, size: int) -> dict:
    """On `count` validation faces: L1 to the nearer stage-3 target, and the mirror error of the output (mean
    |y - flip(y)|, in [0, 1]) before ("raw") and after the symmetric projection."""
    data = VAEFaces(store, "val", size, flip=False, limit=count)
    images, regions = zip(*(data[i] for i in range(len(data))))
    x, region = torch.stack(images), torch.stack(regions)
    out = network.eval()(x)
    left, right = symmetric_targets(x, region)
    l1 = torch.minimum((out["image"] - left).abs().flatten(1).mean(1), (out["image"] - right).abs().flatten(1).mean(1))
    mirror = lambda y: float((y - torch.flip(y, dims=[3])).abs().mean())  # noqa: E731
    return {"faces": len(data), "l1_to_target": float(l1.mean()), "mirror_error": mirror(out["image"]),
            "mirror_error_raw": mirror(out["raw"]), "mirror_error_input": mirror(x * torch.maximum(region, torch.flip(region, dims=[3])))}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="data_cache/celeba128", help="prepared dataset (unveil prepare)")
    parser.add_argument("--out", default="runs/symmetry_vae", help="run folder (checkpoints, metrics)")
    parser.add_argument("--size", type=int, default=64, help="crop size the network works at")
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--latent", type=int, default=16, help="latent channels (at size / 2^(levels - 1))")
    parser.add_argument("--stage-steps", type=int, nargs=3, default=[1200, 350, 2500], metavar=("RECON", "FACE", "SYM"),
                        help="training steps of the three stages")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--beta", type=float, default=1e-3, help="weight of the KL term")
    parser.add_argument("--ssim-weight", type=float, default=0.2)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--max-minutes", type=float, default=0.0, help="stop (with a checkpoint) after this long")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--export", metavar="PATH.onnx", help="do not train: export OUT/last.pt (symmetric output on)")
    parser.add_argument("--validate", type=int, default=200, metavar="N",
                        help="with --export: validation faces to report L1 and mirror error on")
