"""Reconstruction losses: L1 inside and outside the hole, L2, mask BCE, SSIM, total variation."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from trainer.losses.context import LossContext
from trainer.registry import LOSSES

_EPS = 1e-6


def network_output(out: dict, key: str) -> torch.Tensor:
    """out[key] as float32, or an error that names what the network did return."""
    if key not in out:
        raise KeyError(f"loss needs output {key!r} but the network returned {sorted(out)}")
    return out[key].float()


def masked_l1(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """sum |pred - target| * weight / (sum weight * channels): the mean error over the weighted area only."""
    weight = weight.float()
    channels = pred.shape[1]
    return ((pred - target).abs() * weight).sum() / (weight.sum() * channels + _EPS)


@LOSSES.register("l1_hole")
class L1Hole:
    """L1 inside the true occlusion, normalised by its area (c2fdan Eq. 6)."""

    def __init__(self, output: str = "image"):
        self.output = output

    def __call__(self, out: dict, batch: dict, ctx: LossContext) -> torch.Tensor:
        return masked_l1(network_output(out, self.output), batch["target"].float(), batch["mask"])


@LOSSES.register("l1_valid")
class L1Valid:
    """L1 outside the true occlusion, normalised by its area (c2fdan Eq. 7)."""

    def __init__(self, output: str = "image"):
        self.output = output

    def __call__(self, out: dict, batch: dict, ctx: LossContext) -> torch.Tensor:
        return masked_l1(network_output(out, self.output), batch["target"].float(), 1.0 - batch["mask"].float())


@LOSSES.register("l2")
class L2:
    """Mean squared error over the whole crop (the skip-connection paper's reconstruction loss)."""

    def __init__(self, output: str = "image"):
        self.output = output

    def __call__(self, out: dict, batch: dict, ctx: LossContext) -> torch.Tensor:
        return F.mse_loss(network_output(out, self.output), batch["target"].float())


@LOSSES.register("mask_bce")
class MaskBCE:
    """Per-pixel binary cross-entropy of the predicted mask against the true one (c2fdan Eq. 5).

    Uses the network's "mask_logits" when it returns them (numerically safe, autocast-safe), else the probabilities
    clamped away from 0 and 1.
    """

    def __call__(self, out: dict, batch: dict, ctx: LossContext) -> torch.Tensor:
        target = batch["mask"].float()
        if "mask_logits" in out:
            return F.binary_cross_entropy_with_logits(out["mask_logits"].float(), target)
        prob = network_output(out, "mask").clamp(_EPS, 1.0 - _EPS)
        return -(target * torch.log(prob) + (1.0 - target) * torch.log(1.0 - prob)).mean()


@LOSSES.register("ssim")
class SSIMLoss:
    """1 - SSIM over the whole crop (trainer.metrics.ssim, differentiable)."""

    def __init__(self, output: str = "image"):
        self.output = output

    def __call__(self, out: dict, batch: dict, ctx: LossContext) -> torch.Tensor:
        from trainer.metrics import ssim

        return 1.0 - ssim(network_output(out, self.output), batch["target"].float()).mean()


@LOSSES.register("tv")
class TotalVariation:
    """Mean absolute difference of neighbouring pixels; `region="hole"` restricts it to the true occlusion."""

    def __init__(self, output: str = "image", region: str = "all"):
        if region not in ("all", "hole"):
            raise ValueError(f"tv region must be 'all' or 'hole', got {region!r}")
        self.output = output
        self.region = region

    def __call__(self, out: dict, batch: dict, ctx: LossContext) -> torch.Tensor:
        img = network_output(out, self.output)
        dx = (img[..., :, 1:] - img[..., :, :-1]).abs()
        dy = (img[..., 1:, :] - img[..., :-1, :]).abs()
        if self.region == "all":
            return dx.mean() + dy.mean()
        mask = batch["mask"].float()
        wx = torch.maximum(mask[..., :, 1:], mask[..., :, :-1])
        wy = torch.maximum(mask[..., 1:, :], mask[..., :-1, :])
        return masked_l1(dx, torch.zeros_like(dx), wx.expand_as(dx[:, :1])) + masked_l1(
            dy, torch.zeros_like(dy), wy.expand_as(dy[:, :1])
        )
