"""The temporal loss of recurrent networks trained on sequences (trainer.networks.recurrent.SequenceUnroll)."""
from __future__ import annotations

import torch

from trainer.registry import LOSSES


@LOSSES.register("temporal_hole")
class TemporalHole:
    """|(out_t - W out_t-1) - (clean_t - W clean_t-1)| inside the hole of frame t (t > 0), W the known warp: the
    flicker the temporal-eval measures, on sequences (needs SequenceUnroll's "previous" and the sequence batch's
    "target_previous" / "has_previous")."""

    def __init__(self, output: str = "image"):
        self.output = output

    def __call__(self, out: dict, batch: dict, ctx) -> torch.Tensor:
        change = out[self.output].float() - out["previous"].float()
        truth = batch["target"].float() - batch["target_previous"].float()
        weight = batch["mask"].float() * batch["has_previous"].float()
        return ((change - truth).abs() * weight).sum() / (weight.sum() * change.shape[1] + 1e-6)
