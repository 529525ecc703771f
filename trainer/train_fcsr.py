"""`unveil train-fcsr`: train FCSR-GAN's generator (trainer.networks.fcsr) -- a 32 px occluded face in, the complete
128 px face out -- in the paper's stages, on a prepared 128 px dataset.

Data. Each 128 px training crop (the truth) is made small the way a distant face is: half the time a plain area
downscale to 32 px, half the time the camera's way -- blur at full size, an area downscale to the face's size in the
frame (36..96 px), sensor noise, JPEG, then the area downscale to 32 px that the runtime's aligner does. Then the
occlusion: the paper's 16 px block at 32 px (flat colour, noise or blurred noise), or one of our occlusion protocols
drawn at 128 px before the downscale (rect / text / realistic / half: hands, microphones, masks, subtitles ...), its
32 px mask marking every pixel the occluder touches; a few faces stay clean (super-resolution alone).

Phases (one global step counter; `--resume` continues in whichever phase the checkpoint stopped):
  parser      a small face parser (trainer.face_parsing) learns six classes rasterised from the face mesh; it is
              frozen afterwards and serves the parsing loss and, in place of VGG-19, the perceptual features;
  completion  stage 1: the completion module alone at 32 px, mean absolute error (hole-weighted), optionally the
              parsing loss on its upscaled output;
  sr          stage 2a: completion frozen, the super-resolution module learns 32 -> 128 px;
  joint       stage 2b: end to end (at the lower --joint-lr): L1 + MSE at 128 px, perceptual (parser features), parsing, and a light hinge
              adversarial term from a global (whole face) and a local (64 px around the hole) patch discriminator.

Checkpoints: OUT/last.pt (generator, parser, discriminators, optimisers, step) every `--checkpoint-every` steps and
at each phase's end; OUT/metrics.jsonl logs losses and the validation PSNR/SSIM at 128 px (small-block protocol).
`--max-minutes` stops cleanly (checkpoint written) once that much wall time has passed in this run.
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
from torch.nn import functional as F

from realtime.errors import UnveilError
from trainer import metrics
from trainer.checkpoints import load_parts, read_run, save_checkpoint
from trainer.data import FaceStore, flip_face
from trainer.face_parsing import FaceParser, labels_tensor, parsing_accuracy
from trainer.networks.fcsr import PRESETS, FCSRNet
from trainer.occlusion import OcclusionSynth

IN_SIZE = 32
SCALE = 4
BLOCK = 16           # the paper's occlusion block at 32 px
PHASES = ("parser", "completion", "sr", "joint")
PROTOCOL_WEIGHTS = {"rect": 0.3, "text": 0.1, "realistic": 0.4, "half": 0.2}


# ------------------------------------------------------------------------------------------------ degradations


def area(image: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


def camera_small(image: np.ndarray, rng: np.random.Generator, size: int = IN_SIZE) -> np.ndarray:
    """A 128 px crop made small the way a distant face in a video frame is: optical blur, the face's own size in
    the frame (36..96 px), sensor noise, JPEG, then the aligner's area downscale to `size`."""
    out = image
    if rng.random() < 0.6:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.3, 1.6))
    native = int(rng.integers(size + 4, 3 * size + 1))
    out = area(out, native)
    if rng.random() < 0.5:
        out = np.clip(out.astype(np.float32) + rng.normal(0, rng.uniform(0.5, 4.0), out.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.7:
        ok, data = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 92))])
        out = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    return area(out, size)


def block_position(rng: np.random.Generator, size: int = IN_SIZE, block: int = BLOCK) -> tuple[int, int]:
    """Top-left (x, y) of the paper's block: always over a face part (the aligned template puts the eyes at y ~ 15,
    the mouth at y ~ 23 of 32 px, between x ~ 10 and 22)."""
    f = size / IN_SIZE
    x = int(rng.integers(int(2 * f), int(14 * f) + 1))
    y = int(rng.integers(int(4 * f), int(14 * f) + 1))
    return min(x, size - block), min(y, size - block)


def paint_block(image: np.ndarray, rng: np.random.Generator, block: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """The paper's square occlusion at the small size: flat colour, noise or blurred noise -> (image, mask)."""
    size = image.shape[0]
    x, y = block_position(rng, size, block)
    out = image.copy()
    kind = rng.random()
    if kind < 0.4:
        patch = np.broadcast_to(rng.integers(0, 256, 3).astype(np.uint8), (block, block, 3))
    else:
        patch = rng.integers(0, 256, (block, block, 3)).astype(np.uint8)
        if kind < 0.7:
            patch = cv2.GaussianBlur(patch, (0, 0), 1.5)
    out[y:y + block, x:x + block] = patch
    mask = np.zeros((size, size), np.float32)
    mask[y:y + block, x:x + block] = 1.0
    return out, mask


def small_mask(mask128: np.ndarray, size: int = IN_SIZE) -> np.ndarray:
    """A 128 px mask at the network's input size: every small pixel the occluder touches counts as covered."""
    return (area(mask128.astype(np.float32), size) > 0).astype(np.float32)


def small_block_example(clean: np.ndarray, seed: int, index: int, size: int = IN_SIZE, block: int = BLOCK
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The evaluation protocol `small-block` (the paper's): the clean crop area-downscaled to `size`, a `block`
    square painted over a face part -> (occluded small uint8, small mask, mask at the clean crop's size).
    Deterministic in (seed, index)."""
    rng = np.random.default_rng([seed, index, 16])
    occluded, mask = paint_block(area(clean, size), rng, block)
    factor = clean.shape[0] // size
    return occluded, mask, np.kron(mask, np.ones((factor, factor), np.float32))


# ------------------------------------------------------------------------------------------------------- data


class FcsrData(torch.utils.data.Dataset):
    """Training items (a fresh draw per call): small occluded input, small mask, 128 px truth, 32 px truth, 128 px
    mask (where the small mask is), parser labels of the truth."""

    def __init__(self, store: FaceStore, split: str = "train", seed: int = 0, camera_fraction: float = 0.5,
                 protocol_fraction: float = 0.35, clean_fraction: float = 0.05):
        if store.crop_size != IN_SIZE * SCALE:
            raise UnveilError(f"train-fcsr needs a {IN_SIZE * SCALE} px dataset, {store.path} holds {store.crop_size} px")
        self.store, self.items, self.seed = store, store.indices(split), seed
        self.camera_fraction, self.protocol_fraction, self.clean_fraction = camera_fraction, protocol_fraction, clean_fraction
        meta = store.meta
        self.synth = OcclusionSynth("mix", store.crop_size, seed=seed, template=meta["template"], margin=meta["margin"],
                                    colour_order="rgb", clean_fraction=0.0, mix_weights=PROTOCOL_WEIGHTS)

    def __len__(self) -> int:
        return len(self.items)

    def draw(self, i: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        index = int(self.items[i])
        image, points = self.store.image(index), self.store.landmarks(index)
        if rng.random() < 0.5:
            image, points = flip_face(image, points, self.store.mirror)
        shrink = (lambda im: camera_small(im, rng)) if rng.random() < self.camera_fraction else (lambda im: area(im, IN_SIZE))
        draw = rng.random()
        if draw < self.clean_fraction:
            small, mask = shrink(image), np.zeros((IN_SIZE, IN_SIZE), np.float32)
        elif draw < self.clean_fraction + self.protocol_fraction:
            occlusion = self.synth.sample(image, rng)
            small, mask = shrink(occlusion.image), small_mask(occlusion.mask)
        else:
            small, mask = paint_block(shrink(image), rng)
        return {"small": small, "mask": mask, "clean": image, "points": points}

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, int(torch.randint(0, 2**62, ()).item())])
        return to_tensors(self.draw(i, rng))


def to_tensors(item: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    chw = lambda im: torch.from_numpy(np.ascontiguousarray(im.transpose(2, 0, 1), np.float32) / 255.0)  # noqa: E731
    mask = item["mask"]
    factor = item["clean"].shape[0] // mask.shape[0]
    return {"input": chw(item["small"]), "mask": torch.from_numpy(mask[None]),
            "target": chw(item["clean"]), "target_small": chw(area(item["clean"], mask.shape[0])),
            "mask_large": torch.from_numpy(np.kron(mask, np.ones((factor, factor), np.float32))[None]),
            "labels": labels_tensor([item["points"]], item["clean"].shape[0])[0]}


def validation_batch(store: FaceStore, count: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """`count` validation faces under the small-block protocol, as one batch (fixed)."""
    faces = store.indices("val")[:count]
    items = []
    for index in faces:
        clean = store.image(int(index))
        small, mask, _ = small_block_example(clean, seed, int(index))
        items.append(to_tensors({"small": small, "mask": mask, "clean": clean, "points": store.landmarks(int(index))}))
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


# ------------------------------------------------------------------------------------------------ discriminator


class PatchDiscriminator(nn.Module):
    """Four 4x4 stride-2 convs with LeakyReLU and spectral norm -> a patch map of logits."""

    def __init__(self, width: int = 16):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        chans = [3, width, 2 * width, 4 * width]
        layers: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [sn(nn.Conv2d(a, b, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, inplace=True)]
        layers.append(sn(nn.Conv2d(chans[-1], 1, 3, padding=1)))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def hole_windows(image: torch.Tensor, mask_large: torch.Tensor, side: int = 64) -> torch.Tensor:
    """A `side` px window of each image centred on its hole (the crop's centre for a clean face): the local
    discriminator's view."""
    n, _, h, w = image.shape
    windows = []
    for k in range(n):
        ys, xs = torch.nonzero(mask_large[k, 0] > 0.5, as_tuple=True)
        cy, cx = (int(ys.float().mean()), int(xs.float().mean())) if len(ys) else (h // 2, w // 2)
        y0 = min(max(cy - side // 2, 0), h - side)
        x0 = min(max(cx - side // 2, 0), w - side)
        windows.append(image[k:k + 1, :, y0:y0 + side, x0:x0 + side])
    return torch.cat(windows)


# ------------------------------------------------------------------------------------------------------ losses


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, hole_weight: float = 5.0) -> torch.Tensor:
    """Whole-image L1 plus `hole_weight` times the L1 over the hole (normalised by its area)."""
    err = (pred - target).abs()
    hole = (err * mask).sum() / (mask.sum() * 3.0 + 1.0)
    return err.mean() + hole_weight * hole


def perceptual(parser: FaceParser, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        reference = parser.features(target)
    return sum(F.l1_loss(a, b) for a, b in zip(parser.features(pred), reference)) / 3.0


# -------------------------------------------------------------------------------------------------- the loop


def phase_of(step: int, plan: list[tuple[str, int]]) -> tuple[str, int, int] | None:
    """(phase, first step of the phase, its length) for a global step; None when training is done."""
    start = 0
    for name, steps in plan:
        if step < start + steps:
            return name, start, steps
        start += steps
    return None


def cosine(base: float, done: float) -> float:
    return base * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(max(done, 0.0), 1.0))))


@torch.no_grad()
def validate(generator: FCSRNet, batch: dict[str, torch.Tensor]) -> dict[str, float]:
    generator.eval()
    out = generator(batch["input"], batch["mask"])["image"].clamp(0, 1)
    generator.train()
    target, hole = batch["target"], batch["mask_large"]
    smap = metrics.ssim_map(out, target)
    return {"psnr": float(metrics.psnr(out, target).mean()), "ssim": float(metrics.mean_ssim(smap).mean()),
            "psnr_hole": float(metrics.psnr(out, target, hole).nanmean())}


def train(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = FaceStore(args.data)
    generator = FCSRNet(args.preset, IN_SIZE, SCALE)
    parser = FaceParser(args.parser_width)
    d_global, d_local = PatchDiscriminator(args.disc_width), PatchDiscriminator(args.disc_width)
    opt_g = torch.optim.Adam(generator.parameters(), lr=args.lr, betas=(0.5, 0.999))
    opt_p = torch.optim.Adam(parser.parameters(), lr=2e-3)
    opt_d = torch.optim.Adam(list(d_global.parameters()) + list(d_local.parameters()), lr=args.lr, betas=(0.5, 0.999))
    plan = [("parser", args.parser_steps), ("completion", args.completion_steps), ("sr", args.sr_steps),
            ("joint", args.joint_steps)]
    step = 0
    checkpoint = out / "last.pt"
    if args.resume and checkpoint.is_file():
        state = read_run(checkpoint)
        if state["preset"] != args.preset:
            raise UnveilError(f"{checkpoint} holds preset {state['preset']!r}, not {args.preset!r}")
        step = load_parts(state, {"generator": generator, "parser": parser, "d_global": d_global, "d_local": d_local,
                                  "opt_g": opt_g, "opt_p": opt_p, "opt_d": opt_d})
        print(f"resumed at step {step}", flush=True)

    def state_dict() -> dict:
        return {"generator": generator.state_dict(), "parser": parser.state_dict(), "d_global": d_global.state_dict(),
                "d_local": d_local.state_dict(), "opt_g": opt_g.state_dict(), "opt_p": opt_p.state_dict(),
                "opt_d": opt_d.state_dict(), "step": step, "preset": args.preset, "plan": plan,
                "crop_size": IN_SIZE, "scale": SCALE, "template": store.meta["template"],
                "margin": float(store.meta["margin"])}

    data = FcsrData(store, "train", seed=args.seed + step)
    loader = torch.utils.data.DataLoader(data, batch_size=args.batch, shuffle=True, num_workers=args.workers,
                                         drop_last=True, persistent_workers=args.workers > 0)
    val = validation_batch(store, args.val_size)
    log = (out / "metrics.jsonl").open("a")
    started, first = time.time(), step
    generator.train()
    stop = False
    while not stop:
        for batch in loader:
            where = phase_of(step, plan)
            if where is None or (args.max_minutes and time.time() - started > 60 * args.max_minutes):
                stop = True
                break
            phase, phase_start, phase_steps = where
            done = (step - phase_start) / max(phase_steps, 1)
            record = {"step": step + 1, "phase": phase}
            if phase == "parser":
                parser.train()
                for group in opt_p.param_groups:
                    group["lr"] = cosine(2e-3, done)
                logits = parser(batch["target"])
                loss = F.cross_entropy(logits, batch["labels"])
                opt_p.zero_grad()
                loss.backward()
                opt_p.step()
                record.update(loss=float(loss.detach()), **parsing_accuracy(logits.detach(), batch["labels"]))
            else:
                parser.eval()
                for p in parser.parameters():
                    p.requires_grad_(False)
                for group in opt_g.param_groups:   # joint fine-tunes: restarting at --lr destabilised it
                    group["lr"] = cosine(args.joint_lr if phase == "joint" else args.lr, done)
                record["loss"] = float(generator_step(generator, parser, d_global, d_local, opt_g, opt_d, batch,
                                                      phase, args, record).detach())
            step += 1
            if step % args.log_every == 0:
                rate = (step - first) / max(time.time() - started, 1e-6)
                if phase != "parser" and step % args.val_every == 0:
                    record.update({f"val_{k}": v for k, v in validate(generator, val).items()})
                log.write(json.dumps(record) + "\n")
                log.flush()
                shown = " ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items())
                print(f"{shown} ({rate:.2f} steps/s)", flush=True)
            end_of_phase = step == phase_start + phase_steps
            if step % args.checkpoint_every == 0 or end_of_phase:
                save_checkpoint(checkpoint, state_dict())
            if end_of_phase and phase != "parser":
                scores = validate(generator, val)
                log.write(json.dumps({"step": step, "phase": phase, "end": True,
                                      **{f"val_{k}": v for k, v in scores.items()}}) + "\n")
                log.flush()
                print(f"end of {phase}: {scores}", flush=True)
    save_checkpoint(checkpoint, state_dict())
    print(f"stopped at step {step} of {sum(s for _, s in plan)}", flush=True)
    return 0


def generator_step(generator: FCSRNet, parser: FaceParser, d_global: nn.Module, d_local: nn.Module,
                   opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer, batch: dict, phase: str,
                   args: argparse.Namespace, record: dict) -> torch.Tensor:
    x, m = batch["input"], batch["mask"]
    target, hole = batch["target"], batch["mask_large"]
    completion_trains = phase in ("completion", "joint")
    for p in generator.completion.parameters():
        p.requires_grad_(completion_trains)
    if phase == "completion":
        low, _ = generator.complete(x, m)
        loss = masked_l1(low, batch["target_small"], m)
        record["l1_low"] = float(loss.detach())
        if args.parsing_weight_stage1:
            up = F.interpolate(low, scale_factor=float(SCALE), mode="bilinear", align_corners=False)
            parse = F.cross_entropy(parser(up), batch["labels"])
            loss = loss + args.parsing_weight_stage1 * parse
            record["parse"] = float(parse.detach())
        opt_g.zero_grad()
        loss.backward()
        opt_g.step()
        return loss
    out = generator(x, m)
    high, low = out["image"], out["low"]
    pixel = masked_l1(high, target, hole, hole_weight=2.0) + args.mse_weight * F.mse_loss(high, target)
    loss = pixel
    record["pixel"] = float(pixel.detach())
    if phase == "joint":
        low_l1 = masked_l1(low, batch["target_small"], m)
        loss = loss + 0.5 * low_l1
    if args.perceptual_weight:
        perc = perceptual(parser, high, target)
        loss = loss + args.perceptual_weight * perc
        record["perceptual"] = float(perc.detach())
    if args.parsing_weight:
        parse = F.cross_entropy(parser(high), batch["labels"])
        loss = loss + args.parsing_weight * parse
        record["parse"] = float(parse.detach())
    adversarial = args.adv_weight and phase == "joint"
    if adversarial:
        fake_g, fake_l = d_global(high), d_local(hole_windows(high, hole))
        adv = -(fake_g.mean() + fake_l.mean())
        loss = loss + args.adv_weight * adv
        record["adv"] = float(adv.detach())
    opt_g.zero_grad()
    loss.backward()
    opt_g.step()
    if adversarial:  # hinge loss for the two discriminators
        fake = high.detach()
        real_g, real_l = d_global(target), d_local(hole_windows(target, hole))
        fake_g, fake_l = d_global(fake), d_local(hole_windows(fake, hole))
        d_loss = (F.relu(1 - real_g).mean() + F.relu(1 + fake_g).mean() + F.relu(1 - real_l).mean()
                  + F.relu(1 + fake_l).mean())
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        record["d"] = float(d_loss.detach())
    return loss


def load_generator(checkpoint: Path) -> tuple[FCSRNet, dict]:
    if not Path(checkpoint).is_file():
        raise UnveilError(f"checkpoint not found: {checkpoint}")
    state = read_run(checkpoint)
    generator = FCSRNet(state["preset"], int(state["crop_size"]), int(state["scale"]))
    generator.load_state_dict(state["generator"])
    return generator.eval(), state


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", default="data_cache/celeba128", help="prepared 128 px dataset (unveil prepare)")
    parser.add_argument("--out", default="runs/fcsr_lite", help="run folder (checkpoints, metrics)")
    parser.add_argument("--preset", default="lite", choices=("lite", "paper"), help="network size (trainer.networks.fcsr)")
    parser.add_argument("--parser-steps", type=int, default=300)
    parser.add_argument("--completion-steps", type=int, default=2500, help="stage 1: completion at 32 px")
    parser.add_argument("--sr-steps", type=int, default=800, help="stage 2a: super-resolution, completion frozen")
    parser.add_argument("--joint-steps", type=int, default=2000, help="stage 2b: end to end")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3, help="parser, completion and sr phases (cosine each)")
    parser.add_argument("--joint-lr", type=float, default=2e-4, help="the end-to-end phase (cosine)")
    parser.add_argument("--mse-weight", type=float, default=4.0, help="MSE beside L1 at 128 px")
    parser.add_argument("--perceptual-weight", type=float, default=0.05, help="parser-feature (perceptual) loss")
    parser.add_argument("--parsing-weight", type=float, default=0.01, help="face-parsing cross-entropy, stage 2")
    parser.add_argument("--parsing-weight-stage1", type=float, default=0.0, help="face-parsing loss in stage 1")
    parser.add_argument("--adv-weight", type=float, default=1e-3, help="hinge adversarial (global + local), joint only")
    parser.add_argument("--parser-width", type=int, default=16)
    parser.add_argument("--disc-width", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-size", type=int, default=48, help="validation faces scored during training")
    parser.add_argument("--log-every", type=int, default=25)
    parser.add_argument("--val-every", type=int, default=250)
    parser.add_argument("--checkpoint-every", type=int, default=100)
    parser.add_argument("--max-minutes", type=float, default=0, help="stop (resumably) after this much wall time")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--export", metavar="PATH.onnx", help="do not train: export OUT/last.pt's generator here")
    parser.add_argument("--name", default=None, help="model name in the contract (default: the file's stem)")
