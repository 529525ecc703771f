"""`unveil train CONFIG`: the training loop.

A JSON config chooses everything by name through the registries: the network (NETWORKS), the discriminators
(DISCRIMINATORS), the losses (LOSSES), the learning-rate schedule (SCHEDULES) and the data (a folder made by
`unveil prepare`, an occlusion protocol). Training runs as a list of PHASES, each with its own step count, losses,
generator forward ("forward", or "forward_coarse" for c2fdan's phase 1), trainable parameter prefixes, discriminators
and learning rates, so the c2fdan two-phase and the symmfcnet three-phase schedules are plain configs.

Recurrent networks train on short synthetic sequences (`data.sequence`, trainer/sequence_data.py): the network is
unrolled over each sequence with its warped output fed back (trainer.networks.recurrent.SequenceUnroll) and every
per-image loss and metric sees the T frames as T images, plus the "temporal_hole" loss and a temporal validation
metric. `init.checkpoint` warm-starts a fresh run from another run's weights -- a checkpoint or an exported .onnx file
(same names and shapes copied, convs widened for the state keep the source's channels and zeros for the new ones).

Reproducibility: every random draw of the data is a function of (seed, step, position in the batch) -- the sample
order comes from per-epoch permutations of `seed`, each item's occlusion from a seed made of (seed, step, position)
-- and checkpoints hold the model, optimisers, scaler, step, phase and RNG states, so resuming at step k gives
exactly the steps an uninterrupted run would have taken.

Multi-GPU / multi-node: when launched by `torchrun` (RANK and WORLD_SIZE in the environment) the generator runs in
DistributedDataParallel, each rank takes its own slice of every global batch, and only rank 0 logs, validates and
writes checkpoints. Otherwise it is one plain process.
"""
from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import cv2
import numpy as np
import torch
from torch import nn

from realtime.align import DEFAULT_MARGIN, DEFAULT_TEMPLATE
from realtime.errors import UnveilError
from trainer import losses as _losses  # noqa: F401  (registers the losses)
from trainer.losses import LossContext
from trainer.onnx_weights import state_dict_from_onnx
from trainer.registry import DISCRIMINATORS, LOSSES, NETWORKS, SCHEDULES, import_networks

# ================================================================================================================
# Learning-rate schedules: factor(step within the phase, steps of the phase) -> multiplier of the base lr.
# ================================================================================================================


@SCHEDULES.register("constant")
def constant_schedule() -> Callable[[int, int], float]:
    return lambda step, total: 1.0


@SCHEDULES.register("step")
def step_schedule(every: int, gamma: float = 0.1) -> Callable[[int, int], float]:
    """lr x gamma every `every` steps (c2fdan: x0.1 every epoch)."""
    if every <= 0:
        raise ValueError("'every' must be positive")
    return lambda step, total: gamma ** (step // every)


@SCHEDULES.register("cosine")
def cosine_schedule(min_factor: float = 0.0, warmup: int = 0) -> Callable[[int, int], float]:
    def factor(step: int, total: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return factor


# ================================================================================================================
# Configuration
# ================================================================================================================


@dataclass(frozen=True)
class Named:
    """A registry entry chosen by name, with its keyword arguments (and a weight, for losses)."""

    name: str
    args: dict[str, Any] = field(default_factory=dict)
    weight: float = 1.0


@dataclass(frozen=True)
class PhaseConfig:
    name: str
    steps: int
    losses: tuple[Named, ...]
    forward: str = "forward"                  # generator method: "forward" or e.g. "forward_coarse"
    trainable: tuple[str, ...] = ("",)        # parameter-name prefixes that train ("" = everything)
    discriminators: tuple[str, ...] = ()      # names of the discriminators trained and used in this phase
    lr: float = 2e-4
    lr_groups: dict[str, float] = field(default_factory=dict)  # prefix -> lr (longest prefix wins)
    disc_lr: float = 2e-4


@dataclass(frozen=True)
class DataConfig:
    path: Path
    protocol: str
    batch_size: int = 8
    workers: int = 2
    val_size: int = 64
    sequence: Any = None   # trainer.sequence_data.SequenceConfig: train on synthetic sequences (recurrent networks)
    occlusion: dict = field(default_factory=dict)  # OcclusionSynth weights: mix_weights, realistic_weights, clean_fraction


@dataclass(frozen=True)
class LogConfig:
    log_every: int = 10
    val_every: int = 500
    sample_every: int = 500
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    samples: int = 4


@dataclass(frozen=True)
class TrainConfig:
    network: Named
    data: DataConfig
    phases: tuple[PhaseConfig, ...]
    discriminators: dict[str, dict[str, Any]]
    schedule: Named
    log: LogConfig
    betas: tuple[float, float] = (0.5, 0.999)
    seed: int = 0
    amp: bool = True
    name: str = ""
    init: str | None = None                    # warm start: a checkpoint whose matching weights a fresh run loads
    raw: dict = field(default_factory=dict)    # the JSON as given, saved in checkpoints

    @property
    def total_steps(self) -> int:
        return sum(p.steps for p in self.phases)


def _need(raw: dict, key: str, kind: type | tuple, where: str, default: Any = ...) -> Any:
    """raw[key], type-checked; a clear UnveilError naming the config path when it is missing or of the wrong type."""
    if key not in raw:
        if default is ...:
            raise UnveilError(f"config: {where}.{key} is missing")
        return default
    value = raw[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise UnveilError(f"config: {where}.{key} must be {names}, got {type(value).__name__} {value!r}")
    return value


def _named(raw: Any, where: str, registry_names: list[str], kind: str) -> Named:
    if isinstance(raw, str):
        raw = {"name": raw}
    if not isinstance(raw, dict):
        raise UnveilError(f"config: {where} must be an object with a 'name', got {raw!r}")
    name = _need(raw, "name", str, where)
    if name not in registry_names:
        raise UnveilError(f"config: {where}: unknown {kind} {name!r}; known: {', '.join(registry_names) or 'none'}")
    args = _need(raw, "args", dict, where, {})
    weight = _need(raw, "weight", float, where, 1.0)
    unknown = sorted(set(raw) - {"name", "args", "weight"})
    if unknown:
        raise UnveilError(f"config: {where} has unknown keys: {', '.join(unknown)}")
    return Named(name, dict(args), weight)


def _phase(raw: Any, index: int, disc_names: list[str]) -> PhaseConfig:
    where = f"phases[{index}]"
    if not isinstance(raw, dict):
        raise UnveilError(f"config: {where} must be an object")
    known = {"name", "steps", "losses", "forward", "trainable", "discriminators", "lr", "lr_groups", "disc_lr"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise UnveilError(f"config: {where} has unknown keys: {', '.join(unknown)}")
    steps = _need(raw, "steps", int, where)
    if steps <= 0:
        raise UnveilError(f"config: {where}.steps must be positive, got {steps}")
    loss_list = _need(raw, "losses", list, where)
    if not loss_list:
        raise UnveilError(f"config: {where}.losses is empty")
    losses = tuple(_named(item, f"{where}.losses[{i}]", LOSSES.names(), "loss") for i, item in enumerate(loss_list))
    discs = _need(raw, "discriminators", (bool, list), where, False)
    if discs is True:
        discs = list(disc_names)
    elif discs is False:
        discs = []
    for name in discs:
        if name not in disc_names:
            raise UnveilError(f"config: {where}.discriminators names {name!r}, which the config's 'discriminators' lacks")
    uses_disc = [item.name for item in losses if item.name in ("adversarial", "feature_matching")]
    if uses_disc and not discs:
        raise UnveilError(f"config: {where} uses {', '.join(uses_disc)} but has no discriminators")
    trainable = _need(raw, "trainable", list, where, [""])
    lr_groups = _need(raw, "lr_groups", dict, where, {})
    for prefix, lr in lr_groups.items():
        if not isinstance(lr, (int, float)) or isinstance(lr, bool):
            raise UnveilError(f"config: {where}.lr_groups[{prefix!r}] must be a number, got {lr!r}")
    return PhaseConfig(
        name=_need(raw, "name", str, where, f"phase{index + 1}"),
        steps=steps,
        losses=losses,
        forward=_need(raw, "forward", str, where, "forward"),
        trainable=tuple(str(t) for t in trainable),
        discriminators=tuple(discs),
        lr=_need(raw, "lr", float, where, 2e-4),
        lr_groups={str(k): float(v) for k, v in lr_groups.items()},
        disc_lr=_need(raw, "disc_lr", float, where, 2e-4),
    )


def parse_config(raw: Any, data_path: str | Path | None = None) -> TrainConfig:
    """Validate a config dict; every problem becomes an UnveilError that says where it is."""
    import_networks()
    if not isinstance(raw, dict):
        raise UnveilError("config: the top level must be a JSON object")
    known = {"name", "seed", "network", "data", "phases", "discriminators", "schedule", "log", "betas", "amp", "comment",
             "init"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise UnveilError(f"config has unknown keys: {', '.join(unknown)}")
    network = _named(_need(raw, "network", (dict, str), "config"), "network", NETWORKS.names(), "network")
    data_raw = _need(raw, "data", dict, "config")
    path = Path(data_path) if data_path is not None else Path(_need(data_raw, "path", str, "data"))
    if not path.is_dir():
        raise UnveilError(f"config: data.path {str(path)!r} is not a folder (make one with `unveil prepare`)")
    sequence = None
    if "sequence" in data_raw:
        from trainer.sequence_data import SequenceConfig

        sequence = SequenceConfig.from_dict(data_raw["sequence"])
    data = DataConfig(
        path=path,
        protocol=_need(data_raw, "protocol", str, "data"),
        batch_size=_need(data_raw, "batch_size", int, "data", 8),
        workers=_need(data_raw, "workers", int, "data", 2),
        val_size=_need(data_raw, "val_size", int, "data", 64),
        sequence=sequence,
        occlusion=occlusion_options(data_raw.get("occlusion", {})),
    )
    if data.batch_size <= 0 or data.workers < 0 or data.val_size <= 0:
        raise UnveilError("config: data.batch_size and data.val_size must be positive, data.workers >= 0")
    discs_raw = _need(raw, "discriminators", dict, "config", {})
    for name, args in discs_raw.items():
        if name not in DISCRIMINATORS:
            raise UnveilError(f"config: unknown discriminator {name!r}; known: {', '.join(DISCRIMINATORS.names()) or 'none'}")
        if not isinstance(args, dict):
            raise UnveilError(f"config: discriminators.{name} must be an object of arguments")
    phases_raw = _need(raw, "phases", list, "config")
    if not phases_raw:
        raise UnveilError("config: phases is empty")
    phases = tuple(_phase(p, i, sorted(discs_raw)) for i, p in enumerate(phases_raw))
    schedule = _named(_need(raw, "schedule", (dict, str), "config", "constant"), "schedule", SCHEDULES.names(), "schedule")
    log_raw = _need(raw, "log", dict, "config", {})
    log = LogConfig(**{k: _need(log_raw, k, int, "log", getattr(LogConfig, k)) for k in LogConfig.__dataclass_fields__})
    init = None
    if "init" in raw:
        init_raw = _need(raw, "init", dict, "config")
        unknown = sorted(set(init_raw) - {"checkpoint"})
        if unknown:
            raise UnveilError(f"config: init has unknown keys: {', '.join(unknown)}")
        init = _need(init_raw, "checkpoint", str, "init")
    betas = _need(raw, "betas", list, "config", [0.5, 0.999])
    if len(betas) != 2 or not all(isinstance(b, (int, float)) for b in betas):
        raise UnveilError(f"config: betas must be two numbers, got {betas!r}")
    return TrainConfig(
        network=network, data=data, phases=phases, discriminators={k: dict(v) for k, v in discs_raw.items()},
        schedule=schedule, log=log, betas=(float(betas[0]), float(betas[1])), seed=_need(raw, "seed", int, "config", 0),
        amp=_need(raw, "amp", bool, "config", True), name=_need(raw, "name", str, "config", ""), init=init, raw=raw,
    )


def load_config(path: str | Path, data_path: str | Path | None = None) -> TrainConfig:
    path = Path(path)
    if not path.is_file():
        shipped = Path(__file__).parent / "configs"
        name = path.name if path.suffix == ".json" else f"{path.name}.json"
        if path.parent == Path(".") and (shipped / name).is_file():
            path = shipped / name  # `unveil train c2fdan_lite` or `c2fdan_lite.json` finds the shipped configs
        else:
            known = ", ".join(sorted(p.stem for p in shipped.glob("*.json")))
            raise UnveilError(f"config file not found: {path} (shipped configs: {known})")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UnveilError(f"config {path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    return parse_config(raw, data_path)


# ================================================================================================================
# Building things from names
# ================================================================================================================


OCCLUSION_OPTIONS = {"mix_weights": dict, "realistic_weights": dict, "clean_fraction": (int, float)}


def occlusion_options(raw: Any) -> dict:
    """data.occlusion: keyword arguments of OcclusionSynth (which checks the kinds and values themselves)."""
    if not isinstance(raw, dict):
        raise UnveilError("config: data.occlusion must be an object")
    unknown = sorted(set(raw) - set(OCCLUSION_OPTIONS))
    if unknown:
        raise UnveilError(f"config: data.occlusion has unknown keys: {', '.join(unknown)} "
                          f"(known: {', '.join(OCCLUSION_OPTIONS)})")
    for key, kind in OCCLUSION_OPTIONS.items():
        if key in raw and not isinstance(raw[key], kind):
            raise UnveilError(f"config: data.occlusion.{key} has the wrong type")
    from trainer.occlusion import OcclusionSynth

    try:  # the synth checks kind names and values; check them now, not when the datasets are built
        OcclusionSynth("mix", 64, **raw)
    except UnveilError as exc:
        raise UnveilError(f"config: data.occlusion: {exc}") from None
    return dict(raw)


def build_network(spec: Named) -> nn.Module:
    try:
        network = NETWORKS.build(spec.name, **spec.args)
    except UnveilError:
        raise
    except (TypeError, ValueError) as exc:
        raise UnveilError(f"config: network {spec.name!r} rejects its args {spec.args}: {exc}") from None
    for attr in ("contract_kind", "input_roles", "output_roles", "crop_size"):
        if not hasattr(network, attr):
            raise UnveilError(f"network {spec.name!r} lacks the generator attribute {attr!r}")
    return network


def build_discriminator(name: str, args: dict, defaults: dict[str, Any]) -> nn.Module:
    """Build a discriminator; crop_size / template / margin come from the network and dataset unless given."""
    builder = DISCRIMINATORS.get(name)
    accepted = inspect.signature(builder).parameters
    args = {**{k: v for k, v in defaults.items() if k in accepted}, **args}
    try:
        return builder(**args)
    except (TypeError, ValueError) as exc:
        raise UnveilError(f"config: discriminator {name!r} rejects its args {args}: {exc}") from None


LossFn = Callable[[dict, dict, LossContext], torch.Tensor]


def build_loss(spec: Named) -> LossFn:
    """A registered loss class is built with its args; a registered plain function is the loss itself
    (it may take (out, batch) or (out, batch, ctx))."""
    entry = LOSSES.get(spec.name)
    if inspect.isclass(entry):
        try:
            return entry(**spec.args)
        except (TypeError, ValueError) as exc:
            raise UnveilError(f"config: loss {spec.name!r} rejects its args {spec.args}: {exc}") from None
    if spec.args:
        raise UnveilError(f"config: loss {spec.name!r} takes no args, got {spec.args}")
    if len(inspect.signature(entry).parameters) >= 3:
        return entry
    return lambda out, batch, ctx: entry(out, batch)


# ================================================================================================================
# Data: a deterministic, resumable, rank-sharded stream of batches
# ================================================================================================================


def item_seed(seed: int, step: int, position: int) -> int:
    return int(np.random.SeedSequence([seed, step, position]).generate_state(1)[0])


class StepBatches(torch.utils.data.Sampler):
    """Batches for steps start..stop-1: lists of (dataset index, item seed). The global batch of a step is
    positions step*B*W .. of an endless stream of per-epoch permutations of `seed`; rank r takes its B of them."""

    def __init__(self, size: int, batch_size: int, seed: int, start: int, stop: int, rank: int = 0, world: int = 1):
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.start, self.stop, self.rank, self.world = start, stop, rank, world
        self._epoch, self._perm = -1, np.arange(size)

    def _index(self, position: int) -> int:
        epoch = position // self.size
        if epoch != self._epoch:
            self._epoch = epoch
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.size)
        return int(self._perm[position % self.size])

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        global_batch = self.batch_size * self.world
        for step in range(self.start, self.stop):
            first = step * global_batch + self.rank * self.batch_size
            yield [(self._index(first + i), item_seed(self.seed, step, self.rank * self.batch_size + i))
                   for i in range(self.batch_size)]

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


class SeededItems(torch.utils.data.Dataset):
    """Fetches item `index` with the global RNGs (random, numpy, torch) seeded from the item seed, then restores
    them, so an item's random occlusion and flip depend only on its seed -- not on the worker or what came before."""

    def __init__(self, dataset: torch.utils.data.Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, seed = key
        saved = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        try:
            return self.dataset[index]
        finally:
            random.setstate(saved[0])
            np.random.set_state(saved[1])
            torch.random.set_rng_state(saved[2])


def tensors_only(items: list[dict]) -> dict:
    """Collate: stack tensors / arrays, keep strings (position, size, kind) as lists."""
    out: dict[str, Any] = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if isinstance(values[0], torch.Tensor):
            out[key] = torch.stack(values)
        elif isinstance(values[0], np.ndarray):
            out[key] = torch.from_numpy(np.stack(values))
        else:
            out[key] = values
    return out


def to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}


def device_batch(batch: dict, device: torch.device) -> dict:
    """to_device, and a batch of sequences flattened to per-frame entries (trainer.sequence_data.flatten_sequences)."""
    from trainer.sequence_data import flatten_sequences, is_sequence_batch

    batch = to_device(batch, device)
    return flatten_sequences(batch) if is_sequence_batch(batch) else batch


def open_datasets(config: TrainConfig):
    """(face store, training set, fixed validation subset)."""
    from trainer.data import FaceStore, OccludedFaces

    store = FaceStore(config.data.path)
    if config.data.sequence is not None:
        from trainer.sequence_data import SequenceFaces

        train_set = SequenceFaces(store, "train", config.data.sequence, config.data.protocol, seed=config.seed, fixed=False,
                                  synth_options=config.data.occlusion)
        val_full = SequenceFaces(store, "val", config.data.sequence, config.data.protocol, seed=config.seed, fixed=True, flip=False,
                                 synth_options=config.data.occlusion)
        val_set = torch.utils.data.Subset(val_full, range(min(config.data.val_size, len(val_full))))
        return store, train_set, val_set
    train_set = OccludedFaces(store, "train", config.data.protocol, seed=config.seed, fixed=False, flip=True,
                              synth_options=config.data.occlusion)
    val_full = OccludedFaces(store, "val", config.data.protocol, seed=config.seed, fixed=True, flip=False,
                             synth_options=config.data.occlusion)
    if len(train_set) == 0 or len(val_full) == 0:
        raise UnveilError(f"dataset {config.data.path} has an empty train or val split")
    val_set = torch.utils.data.Subset(val_full, range(min(config.data.val_size, len(val_full))))
    return store, train_set, val_set


# ================================================================================================================
# Distributed setup, seeding, device
# ================================================================================================================


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device_choice: str) -> Distributed:
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Distributed()
    import torch.distributed as dist

    backend = "nccl" if device_choice != "cpu" and torch.cuda.is_available() else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def choose_device(choice: str, dist_info: Distributed) -> torch.device:
    if choice not in ("auto", "cpu", "cuda"):
        raise UnveilError(f"--device must be auto, cpu or cuda, got {choice!r}")
    if choice == "cuda" and not torch.cuda.is_available():
        raise UnveilError("--device cuda was asked for but torch sees no CUDA device")
    if choice == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    torch.cuda.set_device(dist_info.local_rank)
    return torch.device("cuda", dist_info.local_rank)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def rng_states() -> dict:
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]),
        "torch": torch.random.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    torch.random.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


# ================================================================================================================
# One phase's optimisation setup
# ================================================================================================================


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


def average_gradients(modules: list[nn.Module], world: int) -> None:
    """Discriminators are called several times per step (real, fake, generator side), which DDP's one-forward
    hooks do not allow: their gradients are averaged across ranks by hand."""
    import torch.distributed as dist

    for module in modules:
        for param in module.parameters():
            if param.grad is not None:
                dist.all_reduce(param.grad)
                param.grad /= world


# ================================================================================================================
# Validation, plots, sample grids
# ================================================================================================================


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


def _to_bgr_uint8(image: torch.Tensor) -> np.ndarray:
    """3xHxW (or 1xHxW) float [0,1] RGB -> HxWx3 uint8 BGR."""
    arr = image.detach().float().clamp(0, 1).cpu().numpy()
    if arr.shape[0] == 1:
        arr = np.repeat(arr, 3, axis=0)
    return np.ascontiguousarray((arr.transpose(1, 2, 0)[..., ::-1] * 255.0 + 0.5).astype(np.uint8))


def sample_grid(batch: dict, out: dict, rows: int) -> np.ndarray:
    """One row per sample: input | predicted mask (or the given mask) | output | target."""
    mask = out["mask"] if "mask" in out else batch["mask"]
    lines = []
    for i in range(min(rows, batch["input"].shape[0])):
        cells = [batch["input"][i], mask[i], out["image"][i], batch["target"][i]]
        lines.append(np.concatenate([_to_bgr_uint8(c) for c in cells], axis=1))
    grid = np.concatenate(lines, axis=0)
    zoom = max(1, 96 // batch["input"].shape[-1])  # small crops are enlarged (nearest) so they can be looked at
    return cv2.resize(grid, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST) if zoom > 1 else grid


def draw_curves(series: dict[str, list[tuple[int, float]]], size: tuple[int, int] = (900, 300)) -> np.ndarray:
    """Plot of each named series (one panel each, own y range) with OpenCV: matplotlib is not a dependency."""
    width, panel_h = size
    names = [n for n in series if series[n]]
    canvas = np.full((max(1, len(names)) * panel_h, width, 3), 255, np.uint8)
    colours = [(180, 80, 20), (30, 120, 220), (40, 160, 40), (160, 40, 160), (20, 20, 200), (120, 120, 0)]
    left, right, top, bottom = 70, 20, 28, 30
    for k, name in enumerate(names):
        points = np.array(series[name], np.float64)
        y0 = k * panel_h
        x_lo, x_hi = points[:, 0].min(), max(points[:, 0].max(), points[:, 0].min() + 1)
        v_lo, v_hi = points[:, 1].min(), points[:, 1].max()
        if v_hi - v_lo < 1e-12:
            v_lo, v_hi = v_lo - 0.5, v_hi + 0.5
        px = left + (points[:, 0] - x_lo) / (x_hi - x_lo) * (width - left - right)
        py = y0 + top + (v_hi - points[:, 1]) / (v_hi - v_lo) * (panel_h - top - bottom)
        cv2.rectangle(canvas, (left, y0 + top), (width - right, y0 + panel_h - bottom), (200, 200, 200), 1)
        pts = np.stack([px, py], 1).round().astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(canvas, [pts], False, colours[k % len(colours)], 2, cv2.LINE_AA)
        font = cv2.FONT_HERSHEY_SIMPLEX
        cv2.putText(canvas, f"{name} (last {points[-1, 1]:.4g})", (left, y0 + 20), font, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(canvas, f"{v_hi:.4g}", (4, y0 + top + 10), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(canvas, f"{v_lo:.4g}", (4, y0 + panel_h - bottom), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(canvas, f"step {int(x_lo)}", (left, y0 + panel_h - 8), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(canvas, f"{int(x_hi)}", (width - right - 50, y0 + panel_h - 8), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def read_metrics(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_metrics(metrics_path: Path, png_path: Path) -> None:
    records = read_metrics(metrics_path)
    series: dict[str, list[tuple[int, float]]] = {"train loss": []}
    for rec in records:
        if rec["kind"] == "train":
            series["train loss"].append((rec["step"], rec["loss"]))
        elif rec["kind"] == "val":
            for key in ("psnr", "psnr_hole", "ssim", "mask_iou", "temporal"):
                if key in rec:
                    series.setdefault(f"val {key}", []).append((rec["step"], rec[key]))
    cv2.imwrite(str(png_path), draw_curves(series))


def keep_metrics_until(path: Path, step: int) -> None:
    """On resume, drop records an interrupted run wrote after its last checkpoint (they will be written again)."""
    records = [r for r in read_metrics(path) if r["step"] <= step]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


# ================================================================================================================
# Checkpoints
# ================================================================================================================


def save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # never leave a half-written checkpoint under the real name


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UnveilError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UnveilError(f"{path} is not an Unveil checkpoint ({type(exc).__name__}: {str(exc)[:150]})") from None


def settle_spectral_norms(network: nn.Module, iterations: int = 20) -> None:
    """An ONNX file holds no power-iteration vector: estimate each spectral-norm conv's from its weight, so the
    first training step divides by the weight's real sigma rather than a random vector's underestimate. The
    stored sigma stays 1, so evaluation gives the ONNX file's outputs (training re-estimates it every step)."""
    with torch.no_grad():
        for module in network.modules():
            if hasattr(module, "power_iteration"):
                for _ in range(iterations):
                    module.power_iteration()
                module.sigma.fill_(1.0)


def warm_start(network: nn.Module, path: str | Path) -> dict[str, list[str]]:
    """Load the matching weights of another run's checkpoint, or of an exported ONNX file (its initializers,
    trainer/onnx_weights.py) -- runs/ does not outlive a machine, realtime/models does. Names and shapes must
    match (trainer.networks.recurrent.load_matching_weights)."""
    from trainer.networks.recurrent import load_matching_weights

    if Path(path).suffix.lower() == ".onnx":
        source = state_dict_from_onnx(path)
    else:
        checkpoint = load_checkpoint(path)
        if "model" not in checkpoint:
            raise UnveilError(f"init.checkpoint {path} has no model weights")
        source = checkpoint["model"]
    report = load_matching_weights(network, source)
    if Path(path).suffix.lower() == ".onnx":
        settle_spectral_norms(network)
    if not report["copied"]:
        raise UnveilError(f"init.checkpoint {path} shares no weights with network {type(network).__name__}")
    print(f"warm start from {path}: {len(report['copied'])} tensors copied, {len(report['widened'])} widened "
          f"({', '.join(report['widened']) or 'none'}), {len(report['kept'])} left as initialised")
    return report


def load_generator(path: str | Path) -> tuple[nn.Module, dict]:
    """(network in eval mode with the checkpoint's weights, the checkpoint) -- what the exporter needs."""
    checkpoint = load_checkpoint(path)
    if "model" not in checkpoint or "config" not in checkpoint:
        raise UnveilError(f"{path} is not an Unveil training checkpoint (no model/config)")
    import_networks()
    spec = checkpoint["config"]["network"]
    network = build_network(_named(spec, "network", NETWORKS.names(), "network"))
    network.load_state_dict(checkpoint["model"])
    return network.eval(), checkpoint


def rotate_checkpoints(folder: Path, keep: int) -> None:
    steps = sorted(folder.glob("step_*.pt"))
    for old in steps[:-keep] if keep > 0 else []:
        old.unlink()


# ================================================================================================================
# The loop
# ================================================================================================================


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
        _append(metrics_path, {"kind": "val", "step": 0, "phase": "init", **last_val})
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
                    _append(metrics_path, record)
                if step % config.log.val_every == 0 or step == total:
                    network.eval()
                    last_val = validate(make_call(network, phase.forward, sequence), network, val_loader, dev)
                    _append(metrics_path, {"kind": "val", "step": step, "phase": phase.name, **last_val})
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


def _append(path: Path, record: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


@torch.no_grad()
def write_samples(call, network: nn.Module, loader, device: torch.device, path: Path, rows: int) -> None:
    batch = device_batch(next(iter(loader)), device)
    out = call(*generator_inputs(network, batch))
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sample_grid(batch, out, rows))


# ================================================================================================================
# CLI
# ================================================================================================================


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
