"""The skip-connection U-Net baseline: interface, composition, registration."""
from __future__ import annotations

import pytest
import torch

from realtime.contract import KINDS
from realtime.errors import UnveilError
from trainer.networks.unet import UNet
from trainer.registry import NETWORKS

torch.set_num_threads(1)


def test_blind_unet_predicts_a_mask_and_keeps_pixels_it_calls_unoccluded():
    torch.manual_seed(0)
    net = UNet(blind=True, crop_size=32, width=8, depth=3).eval()
    image = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        out = net(image)
    assert net.contract_kind == "blind_completion" and net.input_roles == ("image",)
    assert out["image"].shape == (2, 3, 32, 32) and out["mask"].shape == (2, 1, 32, 32)
    assert 0.0 <= float(out["mask"].min()) and float(out["mask"].max()) <= 1.0
    expected = (1 - out["mask"]) * image + out["mask"] * out["fill"]
    assert torch.allclose(out["image"], expected, atol=1e-6)


def test_non_blind_unet_leaves_every_pixel_outside_the_given_mask_untouched():
    torch.manual_seed(0)
    net = UNet(blind=False, crop_size=32, width=8, depth=3).eval()
    image = torch.rand(1, 3, 32, 32)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:20, 10:24] = 1.0
    with torch.no_grad():
        out = net(image, mask)
    assert net.contract_kind == "symmetry_completion" and net.contract_kind in KINDS
    assert net.input_roles == ("image", "mask") and net.output_roles == ("image",)
    keep = mask.expand_as(image) == 0
    assert torch.equal(out["image"][keep], image[keep])
    assert not torch.allclose(out["image"][~keep], image[~keep])


def test_unet_is_registered_and_trains_end_to_end():
    net = NETWORKS.build("unet", blind=True, crop_size=32, width=4, depth=2)
    out = net(torch.rand(2, 3, 32, 32))
    (out["image"].mean() + out["mask"].mean()).backward()
    assert all(p.grad is not None for p in net.parameters())


def test_unet_rejects_a_crop_size_its_depth_cannot_halve():
    with pytest.raises(UnveilError, match="divisible"):
        UNet(crop_size=36, depth=4)
