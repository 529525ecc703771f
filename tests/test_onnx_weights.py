"""Warm start from an exported ONNX file: the weights come back out, spectral-norm convs included."""
from __future__ import annotations

import pytest
import torch

from exporters.onnx_export import export_network, parity_difference, parity_inputs
from realtime.errors import UnveilError
from trainer.checkpoints import warm_start
from trainer.networks.c2fdan import C2FDAN
from trainer.networks.symmfcnet import build_symmfcnet
from trainer.onnx_weights import state_dict_from_onnx


def _randomise(network: torch.nn.Module) -> None:
    with torch.no_grad():
        for p in network.parameters():
            p.normal_(0, 0.2)


@pytest.mark.parametrize("make", [lambda: C2FDAN("lite", crop_size=32, width=4),
                                  lambda: build_symmfcnet("lite", crop_size=32, width=4)],
                         ids=["c2fdan", "symmfcnet"])
@pytest.mark.slow
def test_a_network_warm_started_from_its_onnx_file_matches_that_file(tmp_path, make):
    torch.manual_seed(0)
    source = make()
    _randomise(source)  # non-trivial weights (zero-initialised heads would hide a missed tensor)
    path = tmp_path / "model.onnx"
    export_network(source.eval(), path, exporter="torchscript")

    torch.manual_seed(1)
    target = make()
    inputs = parity_inputs(target)
    assert parity_difference(target.eval(), path, inputs) > 1e-3  # a fresh init is not already the file
    report = warm_start(target, path)
    assert report["copied"] and not report["widened"]
    # the same function as the exported network: its parity with the file, and its own outputs
    assert parity_difference(target.eval(), path, inputs) <= parity_difference(source, path, inputs) + 1e-6
    tensors = [torch.from_numpy(x) for x in inputs]
    with torch.no_grad():
        assert torch.allclose(target(*tensors)["image"], source(*tensors)["image"], atol=1e-5)


def test_spectral_norm_weights_come_back_as_the_normalised_weight(tmp_path):
    torch.manual_seed(0)
    network = build_symmfcnet("lite", crop_size=32, width=4)
    _randomise(network)
    network.eval()
    path = tmp_path / "symm.onnx"
    export_network(network, path, exporter="torchscript")
    state = state_dict_from_onnx(path)
    conv = network.rec_net.enc1[0]
    expected = (conv.weight / conv.sigma).detach()
    assert torch.allclose(state["rec_net.enc1.0.weight"], expected, atol=1e-6)
    assert float(state["rec_net.enc1.0.sigma"]) == 1.0


def test_a_file_that_is_not_onnx_is_refused_clearly(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(UnveilError, match="not an ONNX file"):
        state_dict_from_onnx(bad)
    with pytest.raises(UnveilError, match="not found"):
        state_dict_from_onnx(tmp_path / "missing.onnx")


def _randomise_batchnorm(network: torch.nn.Module) -> None:
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.3)
                module.running_var.uniform_(0.5, 2.0)


def test_a_segmenter_with_folded_batchnorm_comes_back_as_the_same_function_and_trains_with_frozen_statistics(tmp_path):
    from trainer.networks.segmenter import OcclusionSegmenter
    from trainer.onnx_weights import freeze_batchnorm, unfold_batchnorm_into

    torch.manual_seed(0)
    source = OcclusionSegmenter(32, (4, 8))
    _randomise(source)
    _randomise_batchnorm(source)
    path = tmp_path / "seg.onnx"
    export_network(source.eval(), path, exporter="torchscript", threshold=0.5)

    torch.manual_seed(1)
    target = OcclusionSegmenter(32, (4, 8))
    inputs = parity_inputs(target)
    assert parity_difference(target.eval(), path, inputs) > 1e-3
    assert unfold_batchnorm_into(target, path) == 6  # three blocks (two down, one up) of two convs, each with its BatchNorm
    assert parity_difference(target.eval(), path, inputs) < 1e-4

    # training with frozen statistics keeps the function (batch statistics would not) until the weights move
    target.train()
    freeze_batchnorm(target)
    before = [m.running_mean.clone() for m in target.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    x = torch.from_numpy(inputs[0])
    with torch.no_grad():
        out_frozen = target(x)["mask"]
        out_eval = target.eval()(x)["mask"]
    assert torch.allclose(out_frozen, out_eval, atol=1e-6)
    after = [m.running_mean for m in target.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(torch.equal(a, b) for a, b in zip(before, after))


def test_unfolding_into_a_network_without_batchnorm_is_refused(tmp_path):
    from trainer.networks.segmenter import OcclusionSegmenter
    from trainer.onnx_weights import unfold_batchnorm_into

    source = OcclusionSegmenter(32, (4, 8))
    path = tmp_path / "seg.onnx"
    export_network(source.eval(), path, exporter="torchscript", threshold=0.5)
    plain = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3))
    with pytest.raises(UnveilError):
        unfold_batchnorm_into(plain, path)
