"""ONNX export: names, dynamic batch, contract in the metadata, onnx.checker, parity with torch, fp16, the command."""
from __future__ import annotations

import argparse

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from exporters import onnx_export
from exporters.onnx_export import export_with_report, parity_inputs
from realtime.contract import METADATA_KEY, read_contract
from realtime.errors import UnveilError
from trainer.networks.c2fdan import C2FDAN
from trainer.networks.unet import UNet

torch.set_num_threads(1)


def session(path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_blind_unet_exports_with_its_contract_and_matches_torch(tmp_path):
    torch.manual_seed(0)
    net = UNet(blind=True, crop_size=32, width=8, depth=3).eval()
    path = tmp_path / "blind.onnx"
    result = export_with_report(net, path, name="tiny-blind", margin=0.2, exporter="torchscript")
    assert result.max_abs_diff <= onnx_export.FP32_TOLERANCE
    onnx.checker.check_model(onnx.load(str(path)))
    contract = read_contract(path)
    assert (contract.kind, contract.crop_size, contract.margin, contract.name) == ("blind_completion", 32, 0.2, "tiny-blind")
    assert contract.inputs == {"image": "image"} and contract.outputs == {"image": "completed", "mask": "mask"}
    assert (contract.value_range, contract.color_order, contract.layout) == ((0.0, 1.0), "RGB", "NCHW")
    # Dynamic batch: three faces at once, float32 in and out, same numbers as torch.
    images = np.random.default_rng(0).random((3, 3, 32, 32), dtype=np.float32)
    completed, mask = session(path).run(["completed", "mask"], {"image": images})
    with torch.no_grad():
        reference = net(torch.from_numpy(images))
    assert completed.dtype == np.float32 and completed.shape == (3, 3, 32, 32) and mask.shape == (3, 1, 32, 32)
    assert np.abs(completed - reference["image"].numpy()).max() < 1e-4


def test_non_blind_unet_takes_image_and_mask(tmp_path):
    net = UNet(blind=False, crop_size=32, width=8, depth=3)
    path = tmp_path / "fill.onnx"
    contract = onnx_export.export_network(net, path, exporter="torchscript")
    assert contract.kind == "symmetry_completion"
    assert contract.inputs == {"image": "image", "mask": "mask"} and contract.outputs == {"image": "completed"}
    assert {i.name for i in session(path).get_inputs()} == {"image", "mask"}


def test_c2fdan_exports_within_tolerance(tmp_path):
    torch.manual_seed(0)
    net = C2FDAN("lite", crop_size=32, width=4)
    result = export_with_report(net, tmp_path / "c2fdan.onnx", exporter="torchscript")
    assert result.max_abs_diff <= onnx_export.FP32_TOLERANCE
    assert read_contract(tmp_path / "c2fdan.onnx").outputs == {"image": "completed", "mask": "mask"}


def test_fp16_export_has_half_weights_float_io_and_reports_parity(tmp_path):
    torch.manual_seed(0)
    net = UNet(blind=True, crop_size=32, width=8, depth=3)
    path = tmp_path / "half.onnx"
    result = export_with_report(net, path, fp16=True, exporter="torchscript")
    model = onnx.load(str(path))
    weight_types = {init.data_type for init in model.graph.initializer if len(init.dims) == 4}
    assert weight_types == {onnx.TensorProto.FLOAT16}
    assert all(v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT for v in list(model.graph.input) + list(model.graph.output))
    assert 0.0 < result.max_abs_diff <= onnx_export.FP16_TOLERANCE
    assert next(p.value for p in model.metadata_props if p.key == METADATA_KEY)
    # A tolerance below the half-precision error fails the export, and says by how much.
    with pytest.raises(UnveilError, match="max abs difference"):
        export_with_report(net, tmp_path / "strict.onnx", fp16=True, tolerance=1e-9, exporter="torchscript")


def test_parity_inputs_are_an_aligned_real_face_with_occluders():
    net = UNet(blind=False, crop_size=32, width=4, depth=2)
    image, mask = parity_inputs(net)
    assert image.shape == (2, 3, 32, 32) and mask.shape == (2, 1, 32, 32)
    assert 0.05 < mask.mean() < 0.3
    assert image.std() > 0.1  # a real picture, not a constant


def test_export_command_reads_the_checkpoint_and_dataset_margin(tmp_path, capsys):
    net = UNet(blind=True, crop_size=32, width=8, depth=3)
    config = {"name": "cli-net", "network": {"name": "unet", "args": {"blind": True, "crop_size": 32, "width": 8, "depth": 3}}}
    checkpoint = tmp_path / "last.pt"
    torch.save({"model": net.state_dict(), "config": config, "data_meta": {"margin": 0.25, "template": "unveil5"}}, checkpoint)
    parser = argparse.ArgumentParser()
    onnx_export.add_arguments(parser)
    out = tmp_path / "model.onnx"
    assert onnx_export.run(parser.parse_args([str(checkpoint), "-o", str(out), "--exporter", "torchscript"])) == 0
    contract = read_contract(out)
    assert (contract.margin, contract.name, contract.crop_size) == (0.25, "cli-net", 32)
    assert "parity max abs difference" in capsys.readouterr().out
    with pytest.raises(UnveilError, match="checkpoint not found"):
        onnx_export.run(parser.parse_args([str(tmp_path / "missing.pt"), "-o", str(out)]))
    with pytest.raises(UnveilError, match="output folder does not exist"):
        onnx_export.run(parser.parse_args([str(checkpoint), "-o", str(tmp_path / "no" / "m.onnx"), "--exporter", "torchscript"]))


def test_recurrent_network_exports_its_state_and_the_runner_feeds_it_back(tmp_path):
    from realtime.runner import ModelRunner
    from trainer.networks.recurrent import RecurrentC2FDAN

    torch.manual_seed(0)
    net = RecurrentC2FDAN("lite", crop_size=32, width=4)
    with torch.no_grad():  # the state's input weights start at zero (the blind network): make it use the state
        for conv in (net.coarse.encoder.levels[0][0][0], net.fine.encoder.levels[0][0][0]):
            conv.weight[:, -3:].normal_(0.0, 0.3)
        net.coarse.mask_decoder.head.bias.fill_(3.0)  # predict "occluded" nearly everywhere, so the fill shows
    path = tmp_path / "recurrent.onnx"
    result = export_with_report(net, path, name="tiny-recurrent", exporter="torchscript")
    assert result.max_abs_diff <= onnx_export.FP32_TOLERANCE        # checked with a non-zero state
    assert result.contract.recurrent == {"previous": "completed"}
    assert [i.name for i in session(path).get_inputs()] == ["image", "previous"]
    images = np.random.default_rng(1).random((3, 3, 32, 32), dtype=np.float32)  # dynamic batch, state included
    completed, _ = session(path).run(["completed", "mask"], {"image": images, "previous": images[::-1].copy()})
    assert completed.shape == (3, 3, 32, 32)

    runner = ModelRunner(str(path), provider="cpu")
    crop = (np.random.default_rng(2).random((32, 32, 3)) * 255).astype(np.uint8)
    first = runner.run([crop])                                       # a track's first frame: zero state
    second = runner.run([crop], states=first.states)                 # next frame: last frame's completion
    np.testing.assert_allclose(first.states[0]["previous"][0].transpose(1, 2, 0)[..., ::-1] * 255.0,
                               first.images[0], atol=0.51)           # the state is the completed crop (RGB, 0..1)
    assert np.abs(second.images[0].astype(int) - first.images[0].astype(int)).max() > 2
    again = runner.run([crop])                                       # no state given: zeros again
    np.testing.assert_array_equal(again.images[0], first.images[0])


def test_a_state_fed_back_from_an_output_the_network_lacks_is_refused(tmp_path):
    from trainer.networks.recurrent import RecurrentUNet

    net = RecurrentUNet(crop_size=32, width=4, depth=2)
    net.recurrent = {"previous": "coarse"}
    with pytest.raises(UnveilError, match="fed back from output role 'coarse'"):
        export_with_report(net, tmp_path / "bad.onnx", exporter="torchscript")
