"""Property tests of the training losses."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from trainer import losses  # noqa: F401  (registers the losses)
from trainer.builders import build_loss
from trainer.config import Named
from trainer.losses import LossContext, discriminator_adversarial, generator_adversarial
from trainer.registry import LOSSES

torch.set_num_threads(1)


def make_batch(seed: int = 0, size: int = 16) -> dict:
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(2, 3, size, size, generator=g)
    mask = torch.zeros(2, 1, size, size)
    mask[0, :, 2:8, 3:9] = 1.0
    mask[1, :, 5:15, 1:12] = 1.0
    occluded = target * (1 - mask) + 0.5 * mask
    return {"input": occluded, "target": target, "mask": mask}


def test_l1_hole_is_zero_when_the_hole_is_right_whatever_the_valid_region():
    batch = make_batch()
    hole = batch["mask"].expand_as(batch["target"]) > 0
    out = batch["target"].clone()
    out[~hole] = torch.rand(int((~hole).sum()))           # garbage outside the hole
    assert float(LOSSES.build("l1_hole")({"image": out}, batch, LossContext())) == pytest.approx(0.0, abs=1e-7)
    wrong = out.clone()
    wrong[hole] += 0.2
    assert float(LOSSES.build("l1_hole")({"image": wrong}, batch, LossContext())) == pytest.approx(0.2, rel=1e-4)


def test_l1_valid_is_zero_when_the_valid_region_is_right_whatever_the_hole():
    batch = make_batch()
    hole = batch["mask"].expand_as(batch["target"]) > 0
    out = batch["target"].clone()
    out[hole] = 1.0
    assert float(LOSSES.build("l1_valid")({"image": out}, batch, LossContext())) == pytest.approx(0.0, abs=1e-7)
    out[~hole] += 0.1
    assert float(LOSSES.build("l1_valid")({"image": out}, batch, LossContext())) == pytest.approx(0.1, rel=1e-4)


def test_l1_hole_is_normalised_by_area_so_hole_size_does_not_change_it():
    small, large = make_batch(), make_batch()
    small["mask"] = torch.zeros_like(small["mask"])
    small["mask"][..., 0:2, 0:2] = 1
    large["mask"] = torch.ones_like(large["mask"])
    for batch in (small, large):
        value = LOSSES.build("l1_hole")({"image": batch["target"] + 0.3}, batch, LossContext())
        assert float(value) == pytest.approx(0.3, rel=1e-4)


def test_l1_losses_read_the_output_they_are_told_to():
    batch = make_batch()
    out = {"image": torch.zeros_like(batch["target"]), "coarse": batch["target"].clone()}
    assert float(LOSSES.build("l1_hole", output="coarse")(out, batch, LossContext())) == 0.0
    assert float(LOSSES.build("l1_hole")(out, batch, LossContext())) > 0.0


def test_mask_bce_prefers_the_true_mask_and_logits_agree_with_probabilities():
    batch = make_batch()
    good = batch["mask"] * 0.9 + 0.05
    bad = 1.0 - good
    bce = LOSSES.build("mask_bce")
    assert float(bce({"mask": good}, batch, LossContext())) < float(bce({"mask": bad}, batch, LossContext()))
    logits = torch.randn_like(batch["mask"])
    via_logits = bce({"mask": torch.sigmoid(logits), "mask_logits": logits}, batch, LossContext())
    via_probs = bce({"mask": torch.sigmoid(logits)}, batch, LossContext())
    assert float(via_logits) == pytest.approx(float(via_probs), rel=1e-4)


def test_ssim_loss_is_zero_for_the_target_and_grows_with_noise():
    batch = make_batch(size=32)
    ssim = LOSSES.build("ssim")
    noisy = (batch["target"] + 0.1 * torch.randn_like(batch["target"])).clamp(0, 1)
    noisier = (batch["target"] + 0.3 * torch.randn_like(batch["target"])).clamp(0, 1)
    assert float(ssim({"image": batch["target"]}, batch, LossContext())) == pytest.approx(0.0, abs=1e-5)
    assert 0.0 < float(ssim({"image": noisy}, batch, LossContext())) < float(ssim({"image": noisier}, batch, LossContext()))


def test_tv_is_zero_on_flat_images_and_the_hole_region_ignores_valid_texture():
    batch = make_batch()
    flat = torch.full_like(batch["target"], 0.4)
    assert float(LOSSES.build("tv")({"image": flat}, batch, LossContext())) == 0.0
    hole_tv = LOSSES.build("tv", region="hole")
    inner_mask = torch.zeros_like(batch["mask"])
    inner_mask[..., 8:, 8:] = 1
    batch2 = dict(batch, mask=inner_mask)
    textured = flat.clone()
    textured[..., :6, :6] = torch.rand(2, 3, 6, 6)  # texture well away from the hole
    assert float(hole_tv({"image": textured}, batch2, LossContext())) == 0.0
    assert float(LOSSES.build("tv")({"image": textured}, batch2, LossContext())) > 0.0


class TinyDisc(nn.Module):
    """A stand-in conditional discriminator: mean-pooled logits and one feature map."""

    conditional = True

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(6, 4, 3, padding=1)
        self.head = nn.Conv2d(4, 1, 1)

    def forward(self, image, condition=None):
        feature = torch.relu(self.conv(torch.cat([image, condition], dim=1)))
        return self.head(feature), [feature]


def test_adversarial_terms_follow_hinge_and_nonsaturating_definitions():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-3.0, 0.0])
    assert float(generator_adversarial(fake, "hinge")) == pytest.approx(1.5)
    assert float(discriminator_adversarial(real, fake, "hinge")) == pytest.approx((0 + 0.5) / 2 + (0 + 1) / 2)
    sp = torch.nn.functional.softplus
    assert float(generator_adversarial(fake, "nonsaturating")) == pytest.approx(float(sp(-fake).mean()))
    assert float(discriminator_adversarial(real, fake, "nonsaturating")) == pytest.approx(
        float(sp(-real).mean() + sp(fake).mean()))


def test_adversarial_loss_trains_the_generator_through_the_discriminator_only_on_its_side():
    torch.manual_seed(0)
    batch = make_batch()
    disc = TinyDisc()
    fake = batch["target"].clone().requires_grad_(True)
    ctx = LossContext({"global": disc})
    adv = LOSSES.build("adversarial", mode="nonsaturating")
    adv({"image": fake}, batch, ctx).backward()
    assert fake.grad is not None and float(fake.grad.abs().sum()) > 0
    d_loss = adv.discriminator_side({"image": fake}, batch, LossContext({"global": disc}))
    disc.zero_grad()
    d_loss.backward()
    assert disc.conv.weight.grad is not None
    with pytest.raises(ValueError, match="discriminators"):
        adv({"image": fake}, batch, LossContext())


def test_feature_matching_is_zero_for_real_images_and_positive_for_others():
    torch.manual_seed(0)
    batch = make_batch()
    disc = TinyDisc()
    fm = LOSSES.build("feature_matching")
    assert float(fm({"image": batch["target"]}, batch, LossContext({"global": disc})).detach()) == pytest.approx(0.0, abs=1e-7)
    assert float(fm({"image": batch["input"]}, batch, LossContext({"global": disc})).detach()) > 0.0


def test_build_loss_accepts_classes_with_args_and_plain_functions():
    batch = make_batch()
    hole = build_loss(Named("l1_hole", {"output": "coarse"}))
    assert float(hole({"coarse": batch["target"]}, batch, LossContext())) == 0.0

    name = "test_plain_two_argument_loss"
    if name not in LOSSES:
        LOSSES.register(name)(lambda out, batch: (out["image"] - batch["target"]).abs().mean())
    plain = build_loss(Named(name))
    assert float(plain({"image": batch["target"] + 1}, batch, LossContext())) == pytest.approx(1.0)
