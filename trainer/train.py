"""`unveil train CONFIG`: the training loop (the config and its defaults: trainer/config.py).

The loop runs the config's phases in order, each with its own losses, generator forward ("forward", or
"forward_coarse" for c2fdan's phase 1), trainable parameter prefixes, discriminators and learning rates, so the
c2fdan two-phase and the symmfcnet three-phase schedules are plain configs. Recurrent networks train on short
synthetic sequences (`data.sequence`, trainer/sequence_data.py), unrolled with their warped output fed back
(trainer.networks.recurrent.SequenceUnroll): every per-image loss and metric sees the T frames as T images.
`init.checkpoint` warm-starts a fresh run from another run's checkpoint or an exported .onnx file.

Checkpoints hold the model, optimisers, scaler, step, phase and RNG states, and the batches are a function of
(seed, step) (trainer/batches.py), so resuming at step k gives exactly the steps an uninterrupted run would have
taken. Under `torchrun` the generator runs in DistributedDataParallel (trainer/distributed.py).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import torch
from torch import nn

from realtime.align import DEFAULT_MARGIN, DEFAULT_TEMPLATE
from realtime.errors import UnveilError
from trainer.batches import SeededItems, StepBatches, device_batch, open_datasets, tensors_only
from trainer.builders import build_discriminator, build_loss, build_network
from trainer.checkpoints import load_checkpoint, rng_states, rotate_checkpoints, save_checkpoint, set_rng_states, warm_start
from trainer.config import PhaseConfig, TrainConfig, load_config
from trainer.distributed import average_gradients, choose_device, seed_everything, setup_distributed
from trainer.losses import LossContext
from trainer.plots import append_record, keep_metrics_until, plot_metrics, sample_grid
from trainer.registry import SCHEDULES


# --- one phase's optimisation and generator call --------------------------------------------------------------------


def set_trainable(network: nn.Module, prefixes: tuple[str, ...]) -> list[str]:
    """requires_grad = name starts with one of the prefixes; returns the trainable names."""
    names = []
    for name, param in network.named_parameters():
        on = any(name.startswith(p) for p in prefixes)
        param.requires_grad_(on)
        if on:
            names.append(name)
    if not names:
        raise UnveilError(f"no parameter matches the trainable prefixes {list(prefixes)}")
    return names


def phase_optimizer(network: nn.Module, phase: PhaseConfig, betas: tuple[float, float]) -> torch.optim.Optimizer:
    """Adam with one parameter group per learning rate (longest matching lr_groups prefix, else phase.lr)."""
    groups: dict[float, list[nn.Parameter]] = {}
    for name, param in network.named_parameters():
        if not param.requires_grad:
            continue
        matches = [p for p in phase.lr_groups if name.startswith(p)]
        lr = phase.lr_groups[max(matches, key=len)] if matches else phase.lr
        groups.setdefault(lr, []).append(param)
    param_groups = [{"params": params, "lr": lr, "base_lr": lr} for lr, params in sorted(groups.items())]
    return torch.optim.Adam(param_groups, betas=betas)


def apply_schedule(optimizer: torch.optim.Optimizer, factor: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor


class GeneratorCall(nn.Module):
    """Calls the generator's chosen forward method through nn.Module.__call__, so DDP sees it."""

    def __init__(self, network: nn.Module, method: str):
        super().__init__()
        if not callable(getattr(network, method, None)):
            raise UnveilError(f"network {type(network).__name__} has no method {method!r} (phase forward)")
        self.network = network
        self.method = method

    def forward(self, *inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        return getattr(self.network, self.method)(*inputs)


def make_call(network: nn.Module, method: str, sequence: bool) -> nn.Module:
    """The module the loop calls: the chosen forward method, or its unroll over sequences."""
    if sequence:
        from trainer.networks.recurrent import SequenceUnroll

        if not callable(getattr(network, method, None)):
            raise UnveilError(f"network {type(network).__name__} has no method {method!r} (phase forward)")
        return SequenceUnroll(network, method)
    return GeneratorCall(network, method)


def generator_inputs(network: nn.Module, batch: dict) -> list[torch.Tensor]:
    if "sequence_input" in batch:  # SequenceUnroll's inputs
        return [batch["sequence_input"], batch["changes"]]
    sources = {"image": "input", "mask": "mask"}
    return [batch[sources[role]] for role in network.input_roles]


# --- validation -----------------------------------------------------------------------------------------------------


@torch.no_grad()
def validate(call: Callable[..., dict], network: nn.Module, loader, device: torch.device) -> dict[str, float]:
    """PSNR / SSIM over the whole crop and inside the hole; mask IoU for networks that predict the mask."""
    from trainer import metrics

    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for batch in loader:
        batch = device_batch(batch, device)
        out = call(*generator_inputs(network, batch))
        pred = out["image"].float().clamp(0, 1)
        target, mask = batch["target"].float(), batch["mask"].float()
        values = {
            "psnr": metrics.psnr(pred, target),
            "ssim": metrics.ssim(pred, target),
            "psnr_hole": metrics.psnr(pred, target, mask=mask),
            "ssim_hole": metrics.ssim(pred, target, mask=mask),
        }
        if "mask" in out and "mask" not in network.input_roles:
            values["mask_iou"] = metrics.mask_iou(out["mask"].float(), mask)
        if "previous" in out and "target_previous" in batch:
            values.update(temporal_errors(pred, out["previous"].float(), target, batch["target_previous"].float(),
                                          mask * batch["has_previous"].float()))
        for key, per_image in values.items():
            finite = per_image[torch.isfinite(per_image)]  # hole metrics are NaN for a crop without occlusion
            sums[key] = sums.get(key, 0.0) + float(finite.sum())
            counts[key] = counts.get(key, 0) + int(finite.numel())
    return {key: sums[key] / counts[key] for key in sums if counts[key]}


def temporal_errors(out: torch.Tensor, out_previous: torch.Tensor, target: torch.Tensor, target_previous: torch.Tensor,
                    hole: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per image, in grey levels (0..255) as `unveil temporal-eval` reports them, over the hole (NaN without one):
    "temporal": mean |(out_t - W out_t-1) - (clean_t - W clean_t-1)|; "temporal_frozen": the same for a fill that
    never changes, |clean_t - W clean_t-1| (the clean face's own change)."""
    area = hole.flatten(1).sum(1) * out.shape[1]
    per_image = lambda x: torch.where(area > 0, (x * hole).flatten(1).sum(1) / area.clamp(min=1), torch.nan)
    truth = target - target_previous
    return {"temporal": 255.0 * per_image(((out - out_previous) - truth).abs()),
            "temporal_frozen": 255.0 * per_image(truth.abs())}


@torch.no_grad()
def write_samples(call, network: nn.Module, loader, device: torch.device, path: Path, rows: int) -> None:
    batch = device_batch(next(iter(loader)), device)
    out = call(*generator_inputs(network, batch))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sample_grid(batch, out, rows))


# --- the loop -------------------------------------------------------------------------------------------------------


@dataclass
class TrainResult:
    step: int                        # steps completed
    losses: dict[int, float]         # step -> total generator loss (this process's run only)
    checkpoint: Path | None          # the last checkpoint written
    validation: dict[str, float]     # the last validation metrics (empty if none ran)


def phase_at(config: TrainConfig, step: int) -> tuple[int, int]:
    """(phase index, first step of that phase) for the step about to run."""
    start = 0
    for index, phase in enumerate(config.phases):
        if step < start + phase.steps:
            return index, start
        start += phase.steps
    return len(config.phases) - 1, start - config.phases[-1].steps


def train(
    config: TrainConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    max_steps: int | None = None,
    device: str = "auto",
    progress: bool = True,
) -> TrainResult:
    from tqdm import tqdm

    out_dir = Path(out_dir)
    dist_info = setup_distributed(device)
    dev = choose_device(device, dist_info)
    seed_everything(config.seed)
    network = build_network(config.network).to(dev)
    store, train_set, val_set = open_datasets(config)
    defaults = {"crop_size": network.crop_size, "template": store.meta.get("template", DEFAULT_TEMPLATE),
                "margin": store.meta.get("margin", DEFAULT_MARGIN)}
    discriminators = {
        name: build_discriminator(name, args, defaults).to(dev) for name, args in sorted(config.discriminators.items())
    }
    meta_crop = store.meta.get("crop_size") if isinstance(store.meta, dict) else None
    if meta_crop is not None and int(meta_crop) != network.crop_size:
        raise UnveilError(f"network crop_size {network.crop_size} does not match the dataset's {meta_crop} ({config.data.path})")
    amp = config.amp and dev.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    disc_params = [p for d in discriminators.values() for p in d.parameters()]
    disc_optimizer = torch.optim.Adam(disc_params, lr=2e-4, betas=config.betas) if disc_params else None
    for group in disc_optimizer.param_groups if disc_optimizer else []:
        group["base_lr"] = group["lr"]

    sequence = config.data.sequence is not None
    if config.init and not resume:
        warm_start(network, config.init)
    step, checkpoint = 0, None
    ckpt_dir = out_dir / "checkpoints"
    metrics_path = out_dir / "metrics.jsonl"
    if resume:
        checkpoint = load_checkpoint(out_dir / "last.pt")
        network.load_state_dict(checkpoint["model"])
        for name, disc in discriminators.items():
            disc.load_state_dict(checkpoint["discriminators"][name])
        if disc_optimizer and checkpoint.get("disc_optimizer"):
            disc_optimizer.load_state_dict(checkpoint["disc_optimizer"])
        scaler.load_state_dict(checkpoint["scaler"])
        step = int(checkpoint["step"])
    total = config.total_steps if max_steps is None else min(config.total_steps, max_steps)
    if dist_info.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text(json.dumps(config.raw, indent=2))
        if resume:
            keep_metrics_until(metrics_path, step)
        elif metrics_path.exists():
            metrics_path.unlink()

    loader = torch.utils.data.DataLoader(
        SeededItems(train_set),
        batch_sampler=StepBatches(len(train_set), config.data.batch_size, config.seed, step, total, dist_info.rank, dist_info.world),
        num_workers=config.data.workers, collate_fn=tensors_only, pin_memory=dev.type == "cuda",
        generator=torch.Generator().manual_seed(config.seed),  # keeps the global RNG out of the loader
        persistent_workers=False,
    )
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=config.data.batch_size, shuffle=False,
                                             num_workers=0, collate_fn=tensors_only)
    batches = iter(loader)
    if checkpoint is not None:
        set_rng_states(checkpoint["rng"])  # last: building the loaders above must not shift the streams

    losses_by_step: dict[int, float] = {}
    last_val: dict[str, float] = {}
    last_ckpt: Path | None = None
    ctx = LossContext()
    if config.init and step == 0 and dist_info.main:
        # the warm start's own scores on this run's validation data: where the curves start from
        network.eval()
        first = config.phases[0].forward
        last_val = validate(make_call(network, first, sequence), network, val_loader, dev)
        append_record(metrics_path, {"kind": "val", "step": 0, "phase": "init", **last_val})
        write_samples(make_call(network, first, sequence), network, val_loader, dev,
                      out_dir / "samples" / f"step_{0:07d}.png", config.log.samples)
    timer_start, timer_step = time.perf_counter(), step  # seconds per step between log records (data included)
    bar = tqdm(total=total, initial=step, disable=not (progress and dist_info.main), desc=config.name or "train",
               unit="step", dynamic_ncols=True)
    try:
        while step < total:
            phase_index, phase_start = phase_at(config, step)
            phase = config.phases[phase_index]
            phase_stop = min(phase_start + phase.steps, total)
            set_trainable(network, phase.trainable)
            optimizer = phase_optimizer(network, phase, config.betas)
            if checkpoint is not None and checkpoint.get("phase") == phase_index and checkpoint.get("optimizer"):
                optimizer.load_state_dict(checkpoint["optimizer"])
            checkpoint = None
            call = make_call(network, phase.forward, sequence)
            if dist_info.enabled:
                from torch.nn.parallel import DistributedDataParallel

                call = DistributedDataParallel(call, device_ids=[dev.index] if dev.type == "cuda" else None,
                                               find_unused_parameters=True)
            loss_fns = [(spec, build_loss(spec)) for spec in phase.losses]
            active = {name: discriminators[name] for name in phase.discriminators}
            ctx.discriminators = active
            schedule = SCHEDULES.build(config.schedule.name, **config.schedule.args)
            bar.set_description(f"{config.name or 'train'} [{phase.name}]")
            network.train()
            for d in discriminators.values():
                d.train()

            while step < phase_stop:
                batch = device_batch(next(batches), dev)
                factor = schedule(step - phase_start, phase.steps)
                apply_schedule(optimizer, factor)
                ctx.new_step(step)
                with torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
                    out = call(*generator_inputs(network, batch))

                disc_loss = None
                if active:
                    for g in disc_optimizer.param_groups:
                        g["lr"] = phase.disc_lr * factor
                    for d in active.values():
                        d.requires_grad_(True)
                    with torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
                        sides = [spec.weight * fn.discriminator_side(out, batch, ctx)
                                 for spec, fn in loss_fns if hasattr(fn, "discriminator_side")]
                    if sides:
                        disc_loss = torch.stack(sides).sum()
                        disc_optimizer.zero_grad(set_to_none=True)
                        scaler.scale(disc_loss).backward()
                        if dist_info.enabled:
                            average_gradients(list(active.values()), dist_info.world)
                        scaler.step(disc_optimizer)
                    for d in active.values():
                        d.requires_grad_(False)  # the generator step must not accumulate discriminator gradients

                with torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
                    terms: dict[str, tuple[float, torch.Tensor]] = {}
                    for spec, fn in loss_fns:
                        key = spec.name if spec.name not in terms else f"{spec.name}_{len(terms)}"
                        terms[key] = (spec.weight, fn(out, batch, ctx).float())
                    loss = torch.stack([w * v for w, v in terms.values()]).sum()
                if not torch.isfinite(loss):
                    raise UnveilError(f"training diverged at step {step}: loss is {loss.item()}")
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                step += 1
                loss_value = float(loss.detach())
                losses_by_step[step] = loss_value
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")

                if not dist_info.main:
                    continue
                if step % config.log.log_every == 0 or step == total:
                    now = time.perf_counter()
                    step_time = (now - timer_start) / max(1, step - timer_step)
                    timer_start, timer_step = now, step
                    record = {"kind": "train", "step": step, "phase": phase.name, "loss": loss_value,
                              "lr": optimizer.param_groups[0]["lr"], "seconds_per_step": step_time,
                              "terms": {k: float(v.detach()) for k, (_, v) in terms.items()}}
                    if disc_loss is not None:
                        record["disc_loss"] = float(disc_loss.detach())
                    append_record(metrics_path, record)
                if step % config.log.val_every == 0 or step == total:
                    network.eval()
                    last_val = validate(make_call(network, phase.forward, sequence), network, val_loader, dev)
                    append_record(metrics_path, {"kind": "val", "step": step, "phase": phase.name, **last_val})
                    plot_metrics(metrics_path, out_dir / "metrics.png")
                    network.train()
                if step % config.log.sample_every == 0 or step == total:
                    network.eval()
                    write_samples(make_call(network, phase.forward, sequence), network, val_loader, dev,
                                  out_dir / "samples" / f"step_{step:07d}.png", config.log.samples)
                    network.train()
                if step % config.log.checkpoint_every == 0 or step == total:
                    state = {
                        "model": network.state_dict(),
                        "discriminators": {n: d.state_dict() for n, d in discriminators.items()},
                        "optimizer": optimizer.state_dict(),
                        "disc_optimizer": disc_optimizer.state_dict() if disc_optimizer else None,
                        "scaler": scaler.state_dict(),
                        "step": step,
                        "phase": phase_index,
                        "rng": rng_states(),
                        "config": config.raw,
                        "data_meta": dict(store.meta) if isinstance(store.meta, dict) else {},
                    }
                    last_ckpt = ckpt_dir / f"step_{step:07d}.pt"
                    save_checkpoint(last_ckpt, state)
                    save_checkpoint(out_dir / "last.pt", state)
                    rotate_checkpoints(ckpt_dir, config.log.keep_checkpoints)
                if step % config.log.val_every == 0 or step % config.log.sample_every == 0 or step % config.log.checkpoint_every == 0:
                    timer_start, timer_step = time.perf_counter(), step  # validation and saving are not training time
    finally:
        bar.close()
        del batches
    return TrainResult(step, losses_by_step, last_ckpt, last_val)


# --- the `unveil train` command -------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="training config (JSON); a bare name finds the configs shipped in trainer/configs")
    parser.add_argument("--out", default=None, help="run folder (default: runs/<config name>)")
    parser.add_argument("--resume", action="store_true", help="continue from <out>/last.pt exactly where it stopped")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many steps in all (a checkpoint is written)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--data", default=None, help="dataset folder, overriding the config's data.path")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.data)
    out = Path(args.out) if args.out else Path("runs") / (config.name or Path(args.config).stem)
    if args.resume and not (out / "last.pt").is_file():
        raise UnveilError(f"--resume: no checkpoint at {out / 'last.pt'}")
    if args.max_steps is not None and args.max_steps <= 0:
        raise UnveilError("--max-steps must be positive")
    started = time.perf_counter()
    result = train(config, out, resume=args.resume, max_steps=args.max_steps, device=args.device)
    if setup_distributed(args.device).main:
        if not result.losses:
            print(f"nothing to do: {out} is already at step {result.step}")
            return 0
        summary = ", ".join(f"{k} {v:.4f}" for k, v in result.validation.items())
        print(f"trained to step {result.step} in {time.perf_counter() - started:.0f} s; {summary}; checkpoint {result.checkpoint}")
    return 0
