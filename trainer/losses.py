"""Training losses, registered in trainer.registry.LOSSES by name.

`LOSSES.build(name, **args)` returns a callable `loss(out, batch, ctx) -> scalar Tensor`:
  out   the generator's output dict (roles "image", "mask" plus training-only entries such as "coarse", "fill");
  batch the data dict ("input" occluded RGB, "target" clean RGB, "mask" 1 = occluded, "landmarks", ...);
  ctx   a LossContext (the active discriminators, with a per-step cache of their verdicts).
Losses that act on an image take `output=` to choose which entry of `out` they judge (c2fdan's "coarse" in phase 1,
the composed "image" later), so one registry entry serves every network and phase.

Losses that need downloaded pretrained weights (perceptual / identity / style on VGG-Face or ArcFace features, used
by the c2fdan and symmfcnet papers) are not available offline: discriminator feature matching and SSIM replace them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from trainer.registry import LOSSES

_EPS = 1e-6


def _image(out: dict, key: str) -> torch.Tensor:
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

    def __call__(self, out: dict, batch: dict, ctx: "LossContext") -> torch.Tensor:
        return masked_l1(_image(out, self.output), batch["target"].float(), batch["mask"])


@LOSSES.register("l1_valid")
class L1Valid:
    """L1 outside the true occlusion, normalised by its area (c2fdan Eq. 7)."""

    def __init__(self, output: str = "image"):
        self.output = output

    def __call__(self, out: dict, batch: dict, ctx: "LossContext") -> torch.Tensor:
        return masked_l1(_image(out, self.output), batch["target"].float(), 1.0 - batch["mask"].float())


@LOSSES.register("l2")
class L2:
    """Mean squared error over the whole crop (the skip-connection paper's reconstruction loss)."""

    def __init__(self, output: str = "image"):
        self.output = output

    def __call__(self, out: dict, batch: dict, ctx: "LossContext") -> torch.Tensor:
        return F.mse_loss(_image(out, self.output), batch["target"].float())


@LOSSES.register("mask_bce")
class MaskBCE:
    """Per-pixel binary cross-entropy of the predicted mask against the true one (c2fdan Eq. 5).

    Uses the network's "mask_logits" when it returns them (numerically safe, autocast-safe), else the probabilities
    clamped away from 0 and 1.
    """

    def __call__(self, out: dict, batch: dict, ctx: "LossContext") -> torch.Tensor:
        target = batch["mask"].float()
        if "mask_logits" in out:
            return F.binary_cross_entropy_with_logits(out["mask_logits"].float(), target)
        prob = _image(out, "mask").clamp(_EPS, 1.0 - _EPS)
        return -(target * torch.log(prob) + (1.0 - target) * torch.log(1.0 - prob)).mean()


@LOSSES.register("ssim")
class SSIMLoss:
    """1 - SSIM over the whole crop (trainer.metrics.ssim, differentiable)."""

    def __init__(self, output: str = "image"):
        self.output = output

    def __call__(self, out: dict, batch: dict, ctx: "LossContext") -> torch.Tensor:
        from trainer.metrics import ssim

        return 1.0 - ssim(_image(out, self.output), batch["target"].float()).mean()


@LOSSES.register("tv")
class TotalVariation:
    """Mean absolute difference of neighbouring pixels; `region="hole"` restricts it to the true occlusion."""

    def __init__(self, output: str = "image", region: str = "all"):
        if region not in ("all", "hole"):
            raise ValueError(f"tv region must be 'all' or 'hole', got {region!r}")
        self.output = output
        self.region = region

    def __call__(self, out: dict, batch: dict, ctx: "LossContext") -> torch.Tensor:
        img = _image(out, self.output)
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


# --- adversarial terms ---------------------------------------------------------------------------------------------


def judge_with(disc: nn.Module, image: torch.Tensor, occluded: torch.Tensor):
    """(logits, features) of one discriminator. Conditional ones (the c2fdan paper's) also see the occluded input."""
    return disc(image, occluded) if getattr(disc, "conditional", False) else disc(image)


def _logit_list(logits) -> list[torch.Tensor]:
    return [t.float() for t in logits] if isinstance(logits, (list, tuple)) else [logits.float()]


def generator_adversarial(logits, mode: str) -> torch.Tensor:
    """The generator's side: make the discriminator call fakes real."""
    terms = [(-t).mean() if mode == "hinge" else F.softplus(-t).mean() for t in _logit_list(logits)]
    return torch.stack(terms).mean()


def discriminator_adversarial(real_logits, fake_logits, mode: str) -> torch.Tensor:
    """The discriminator's side: real -> high logits, fake -> low logits."""
    terms = []
    for real, fake in zip(_logit_list(real_logits), _logit_list(fake_logits)):
        if mode == "hinge":
            terms.append(F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean())
        else:
            terms.append(F.softplus(-real).mean() + F.softplus(fake).mean())
    return torch.stack(terms).mean()


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


@LOSSES.register("adversarial")
class Adversarial:
    """Mean adversarial loss over the active discriminators (global, parts, eye_consistency: c2fdan Eq. 11-12).

    mode "nonsaturating" is the paper's -log D; "hinge" is the hinge GAN loss. `discriminator_side` is the
    discriminators' loss on the same batch; the trainer calls it for the discriminator update.
    """

    def __init__(self, output: str = "image", mode: str = "hinge"):
        if mode not in ("hinge", "nonsaturating"):
            raise ValueError(f"adversarial mode must be 'hinge' or 'nonsaturating', got {mode!r}")
        self.output = output
        self.mode = mode

    def __call__(self, out: dict, batch: dict, ctx: LossContext) -> torch.Tensor:
        if not ctx.discriminators:
            raise ValueError("the adversarial loss needs discriminators: enable them in this phase")
        fake = _image(out, self.output)
        terms = [
            generator_adversarial(ctx.judge(name, "fake", fake, batch["input"])[0], self.mode)
            for name in sorted(ctx.discriminators)
        ]
        return torch.stack(terms).mean()

    def discriminator_side(self, out: dict, batch: dict, ctx: LossContext) -> torch.Tensor:
        fake = _image(out, self.output).detach()
        real = batch["target"].float()
        terms = []
        for name in sorted(ctx.discriminators):
            disc = ctx.discriminators[name]
            real_logits = judge_with(disc, real, batch["input"])[0]
            fake_logits = judge_with(disc, fake, batch["input"])[0]
            terms.append(discriminator_adversarial(real_logits, fake_logits, self.mode))
        return torch.stack(terms).mean()


@LOSSES.register("feature_matching")
class FeatureMatching:
    """L1 between the discriminators' intermediate features of the generated and the real image (pix2pixHD);
    stands in for the perceptual loss, which would need downloaded weights."""

    def __init__(self, output: str = "image"):
        self.output = output

    def __call__(self, out: dict, batch: dict, ctx: LossContext) -> torch.Tensor:
        if not ctx.discriminators:
            raise ValueError("the feature_matching loss needs discriminators: enable them in this phase")
        fake = _image(out, self.output)
        real = batch["target"].float()
        terms = []
        for name in sorted(ctx.discriminators):
            fake_feats = ctx.judge(name, "fake", fake, batch["input"])[1]
            with torch.no_grad():
                real_feats = ctx.judge(name, "real", real, batch["input"])[1]
            for f, r in zip(fake_feats, real_feats):
                terms.append(F.l1_loss(f.float(), r.float().detach()))
        return torch.stack(terms).mean()
