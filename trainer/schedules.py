"""Learning-rate schedules, registered in trainer.registry.SCHEDULES by name: factor(step within the phase, steps
of the phase) -> multiplier of the phase's base learning rates."""
from __future__ import annotations

import math
from typing import Callable

from trainer.registry import SCHEDULES


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
