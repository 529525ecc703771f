"""Adversarial losses: the active discriminators' verdicts on the generated and the real image (adversarial,
feature matching; the discriminators come in the LossContext)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from trainer.losses.context import LossContext, judge_with
from trainer.losses.pixel import network_output
from trainer.registry import LOSSES


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
        fake = network_output(out, self.output)
        terms = [
            generator_adversarial(ctx.judge(name, "fake", fake, batch["input"])[0], self.mode)
            for name in sorted(ctx.discriminators)
        ]
        return torch.stack(terms).mean()

    def discriminator_side(self, out: dict, batch: dict, ctx: LossContext) -> torch.Tensor:
        fake = network_output(out, self.output).detach()
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
        fake = network_output(out, self.output)
        real = batch["target"].float()
        terms = []
        for name in sorted(ctx.discriminators):
            fake_feats = ctx.judge(name, "fake", fake, batch["input"])[1]
            with torch.no_grad():
                real_feats = ctx.judge(name, "real", real, batch["input"])[1]
            for f, r in zip(fake_feats, real_feats):
                terms.append(F.l1_loss(f.float(), r.float().detach()))
        return torch.stack(terms).mean()
