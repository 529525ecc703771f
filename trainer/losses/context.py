"""What a loss may use besides the generator's outputs and the batch: the active discriminators, whose verdicts
are cached for one generator step."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


def judge_with(disc: nn.Module, image: torch.Tensor, occluded: torch.Tensor):
    """(logits, features) of one discriminator. Conditional ones (the c2fdan paper's) also see the occluded input."""
    return disc(image, occluded) if getattr(disc, "conditional", False) else disc(image)


@dataclass
class LossContext:
    """What losses may use besides the outputs and the batch. `judge` caches each discriminator's verdict on the
    generated and real images for one generator step, so the adversarial and feature-matching losses share it."""

    discriminators: dict[str, nn.Module] = field(default_factory=dict)
    step: int = 0
    _verdicts: dict = field(default_factory=dict)

    def judge(self, name: str, which: str, image: torch.Tensor, occluded: torch.Tensor):
        key = (name, which)
        if key not in self._verdicts:
            self._verdicts[key] = judge_with(self.discriminators[name], image, occluded)
        return self._verdicts[key]

    def new_step(self, step: int) -> None:
        self.step = step
        self._verdicts.clear()
