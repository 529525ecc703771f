"""Processes and devices: one plain process, or one rank of a `torchrun` launch (RANK and WORLD_SIZE in the
environment) -- the generator then runs in DistributedDataParallel, each rank takes its own slice of every global
batch, and only rank 0 logs, validates and writes checkpoints. Also the seeding a run starts with."""
from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from realtime.errors import UnveilError


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


def average_gradients(modules: list[nn.Module], world: int) -> None:
    """Discriminators are called several times per step (real, fake, generator side), which DDP's one-forward
    hooks do not allow: their gradients are averaged across ranks by hand."""
    import torch.distributed as dist

    for module in modules:
        for param in module.parameters():
            if param.grad is not None:
                dist.all_reduce(param.grad)
                param.grad /= world
