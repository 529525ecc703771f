"""C2FDAN blind completion network: shapes, composition, gradients, attention details, ONNX parity, cost tool."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from realtime.errors import UnveilError
from trainer.network_cost import count_gflops, cpu_session, dummy_inputs, export_onnx
from trainer.networks.c2fdan import C2FDAN, PRESETS, PatchCrossAttention, compose, overlapping_patches
from trainer.registry import NETWORKS

torch.set_num_threads(1)

CROP = 32
WIDTH = 4


def tiny(preset: str) -> C2FDAN:
    torch.manual_seed(0)
    return C2FDAN(preset, crop_size=CROP, width=WIDTH)


@pytest.mark.parametrize("preset", ["lite", "full"])
def test_outputs_have_the_contract_shapes_and_ranges(preset: str) -> None:
    network = tiny(preset).eval()
    assert network.config.upsample_first == PRESETS[preset].upsample_first  # the preset's structure is kept
    image = torch.rand(2, 3, CROP, CROP)
    with torch.no_grad():
        out = network(image)
        coarse_only = network.forward_coarse(image)
    for role in ("image", "coarse", "fine", "coarse_image"):
        assert out[role].shape == (2, 3, CROP, CROP), role
        assert 0.0 <= out[role].min() and out[role].max() <= 1.0, role
    assert out["mask"].shape == (2, 1, CROP, CROP)
    assert set(coarse_only) == {"coarse", "mask", "image"}
    torch.testing.assert_close(coarse_only["image"], out["coarse_image"])
    assert set(network.output_roles) <= set(out) and network.input_roles == ("image",)
    assert network.contract_kind == "blind_completion" and network.crop_size == CROP


def test_registry_builds_the_network_and_rejects_bad_crop_sizes() -> None:
    network = NETWORKS.build("c2fdan", preset="lite", crop_size=CROP, width=WIDTH)
    assert isinstance(network, C2FDAN) and network.crop_size == CROP
    with pytest.raises(UnveilError, match="multiple of"):
        C2FDAN("lite", crop_size=40, width=WIDTH)
    with pytest.raises(UnveilError, match="preset"):
        C2FDAN("huge")


def test_compose_keeps_unmasked_pixels_bit_for_bit() -> None:
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(2, 3, 16, 16, generator=generator)
    generated = torch.rand(2, 3, 16, 16, generator=generator)
    mask = torch.rand(2, 1, 16, 16, generator=generator)
    mask[..., :8] = 0.0
    mask[..., 12:] = 1.0
    out = compose(image, mask, generated)
    assert torch.equal(out[..., :8], image[..., :8])
    assert torch.equal(out[..., 12:], generated[..., 12:])


def test_network_output_equals_input_where_the_predicted_mask_is_zero() -> None:
    network = tiny("lite").eval()
    head = network.coarse.mask_decoder.head
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-1e4)  # sigmoid underflows to exactly 0
        image = torch.rand(1, 3, CROP, CROP)
        out = network(image)
    assert torch.count_nonzero(out["mask"]) == 0
    assert torch.equal(out["image"], image)


def test_gradients_reach_coarse_fine_and_both_attentions() -> None:
    network = tiny("lite").train()
    image = torch.rand(2, 3, CROP, CROP)
    out = network(image)
    (out["image"].mean() + out["fine"].mean() + out["coarse"].mean()).backward()

    def grad_norm(module: nn.Module) -> float:
        return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)

    for name, module in [
        ("coarse encoder", network.coarse.encoder),
        ("coarse mask decoder", network.coarse.mask_decoder),
        ("coarse image decoder", network.coarse.image_decoder),
        ("fine encoder", network.fine.encoder),
        ("cross-attention query", network.fine.cross_attention.query),
        ("cross-attention key", network.fine.cross_attention.key),
        ("self-attention", network.fine.self_attention),
    ]:
        assert grad_norm(module) > 0.0, name


def test_overlapping_patches_use_pixel_unshuffle_order() -> None:
    x = torch.randn(2, 3, 6, 8)
    patches = overlapping_patches(x).reshape(2, 12, 5, 7)
    torch.testing.assert_close(patches[:, :, ::2, ::2], F.pixel_unshuffle(x, 2), rtol=0, atol=0)


def test_cross_attention_changes_features_only_inside_the_mask_and_copies_known_patches() -> None:
    torch.manual_seed(0)
    attention = PatchCrossAttention(channels=8, attention_channels=4, softmax_scale=1e4).eval()
    features = torch.randn(1, 8, 8, 8)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:4, 2:4] = 1.0
    with torch.no_grad():
        out = attention(features, mask)
        value = attention.value(features)
    assert torch.equal(out[..., mask[0, 0] == 0], value[..., mask[0, 0] == 0])
    # With a very sharp softmax the occluded 2x2 cell is (almost) a copy of one fully known value patch.
    hole = out[0, :, 2:4, 2:4].reshape(1, -1)
    known_patches = overlapping_patches(value)[0].T  # P x 4C
    key_known = F.avg_pool2d(1 - mask, 2, stride=1).flatten() == 1
    distances = (known_patches[key_known] - hole).abs().amax(dim=1)
    assert float(distances.min()) < 1e-3


def test_onnx_export_with_dynamic_batch_matches_torch(tmp_path) -> None:
    network = tiny("lite").eval()
    path = tmp_path / "c2fdan.onnx"
    exporter = export_onnx(network, dummy_inputs(network, batch=1), path, dynamo=False)
    session = cpu_session(path, threads=1)
    image = torch.rand(3, 3, CROP, CROP)  # another batch size than the export's
    with torch.no_grad():
        expected = network(image)
    outputs = session.run(None, {"input_image": image.numpy()})
    for role, got in zip(network.output_roles, outputs):
        diff = float(np.abs(got - expected[role].numpy()).max())
        print(f"onnx ({exporter}) vs torch, {role}: max abs diff {diff:.2e}")
        assert got.shape == tuple(expected[role].shape)
        assert diff < 1e-4


class FakeSymmetryNetwork(nn.Module):
    input_roles = ("image", "mask")
    crop_size = 16

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return image


def test_dummy_inputs_follow_the_input_roles() -> None:
    image, mask = dummy_inputs(FakeSymmetryNetwork(), batch=2)
    assert image.shape == (2, 3, 16, 16) and mask.shape == (2, 1, 16, 16)
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert set(torch.unique(mask).tolist()) == {0.0, 1.0}


def test_flop_count_of_a_single_conv() -> None:
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    conv.crop_size, conv.input_roles = 16, ("image",)
    # one multiply-add (2 FLOPs) per weight per output pixel
    assert count_gflops(conv, (torch.rand(1, 3, 16, 16),)) * 1e9 == pytest.approx(2 * 3 * 8 * 9 * 16 * 16)


def test_cost_tool_refuses_an_unknown_network() -> None:
    import argparse

    from trainer import network_cost

    parser = argparse.ArgumentParser()
    network_cost.add_arguments(parser)
    with pytest.raises(UnveilError, match="unknown network"):
        network_cost.run(parser.parse_args(["no_such_network", "--no-latency"]))


def test_leaky_mask_decoder_keeps_the_weights_and_lifts_the_mask_cap():
    """The option only swaps the mask decoder's activation: a ReLU model's weights load into it unchanged. With every
    decoder feature pushed below zero (what training left in blind-lite on occluded pixels) the ReLU mask is stuck at
    sigmoid(head bias); the leaky decoder's head can still raise it."""
    torch.manual_seed(0)
    relu = C2FDAN("lite", width=4).eval()
    leaky = C2FDAN("lite", width=4, leaky_mask_decoder=True).eval()
    leaky.load_state_dict(relu.state_dict())  # same names and shapes: a warm start is exact
    with torch.no_grad():
        for net in (relu, leaky):
            for m in net.coarse.mask_decoder.blocks.modules():
                if isinstance(m, nn.Conv2d):
                    m.weight.zero_()
                    m.bias.fill_(-1.0)   # every pre-activation is -1
            net.coarse.mask_decoder.head.weight.fill_(-0.3)
            net.coarse.mask_decoder.head.bias.fill_(0.4)
        image = torch.rand(1, 3, 128, 128)
        cap = torch.sigmoid(torch.tensor(0.4))
        relu_mask, leaky_mask = relu(image)["mask"], leaky(image)["mask"]
    assert torch.allclose(relu_mask, cap.expand_as(relu_mask))
    assert bool((leaky_mask > cap + 0.05).all())
