"""`unveil eval` with tiny ONNX models on a tiny dataset: per-category tables, baselines, JSON, mask feeding."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from realtime.contract import METADATA_KEY, ModelContract
from realtime.errors import UnveilError
from tests.tiny_datasets import face_crops, write_dataset
from tests.tiny_models import build_symmetry_model
from trainer import evaluate as ev
from trainer import metrics
from trainer.data import FaceStore, OccludedFaces

torch.set_num_threads(1)
SIZE = 64


def build_identity_model(path: Path, crop_size: int = SIZE) -> Path:
    """A blind model that changes nothing: output image = input, predicted mask = 0 everywhere."""
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, crop_size, crop_size])
    out = helper.make_tensor_value_info("completed", TensorProto.FLOAT, ["batch", 3, crop_size, crop_size])
    mask = helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", 1, crop_size, crop_size])
    nodes = [
        helper.make_node("Identity", ["image"], ["completed"]),
        helper.make_node("ReduceMean", ["image"], ["grey"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["grey", "zero"], ["mask"]),
    ]
    graph = helper.make_graph(nodes, "identity", [image], [out, mask],
                              [numpy_helper.from_array(np.array(0.0, np.float32), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    contract = ModelContract(kind="blind_completion", crop_size=crop_size, inputs={"image": "image"},
                             outputs={"image": "completed", "mask": "mask"}, name="identity")
    helper.set_model_props(model, {METADATA_KEY: contract.to_json()})
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, astronaut_bgr) -> Path:
    crops, points = face_crops(astronaut_bgr, 10, SIZE, seed=2)
    out = tmp_path_factory.mktemp("eval") / "ds"
    return write_dataset(out, crops, points, identities=[str(i) for i in range(10)], val_fraction=0.5)


@pytest.fixture(scope="module")
def identity_model(tmp_path_factory) -> Path:
    return build_identity_model(tmp_path_factory.mktemp("models") / "identity.onnx")


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    ev.add_arguments(parser)
    return ev.run(parser.parse_args(argv))


def test_identity_model_equals_the_input_baseline(dataset, identity_model, tmp_path, capsys):
    out_json = tmp_path / "report.json"
    assert run_cli([str(identity_model), "--data", str(dataset), "--protocol", "rect", "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out
    assert "protocol rect" in printed and "telea" in printed and "position=" in printed and "size=" in printed
    report = json.loads(out_json.read_text())
    faces = report["protocols"]["rect"]["faces"]
    assert len(faces) == len(FaceStore(dataset).indices("val")) == report["protocols"]["rect"]["count"]
    for face in faces:
        for metric in ("psnr", "ssim", "psnr_hole", "ssim_hole", "untouched"):
            assert face["model"][metric] == face["input"][metric]
        assert face["model"]["untouched"] == 1.0 and face["model"]["mask_empty"] == 1.0
        assert face["model"]["mask_iou"] == 0.0           # a real hole, nothing predicted
        assert face["telea"]["untouched"] == 0.0
    summary = report["protocols"]["rect"]["summary"]
    assert summary["overall"]["model"] == {**summary["overall"]["input"], "mask_iou": 0.0, "mask_empty": 1.0}
    # Telea, told where the hole is, fills it better than leaving the random-colour rectangle there.
    assert summary["overall"]["telea"]["psnr_hole"] > summary["overall"]["input"]["psnr_hole"] + 3
    positions = [k for k in summary if k.startswith("position=")]
    assert positions and sum(summary[k]["n"] for k in positions) == len(faces)


def test_protocol_none_counts_untouched_faces(dataset, identity_model):
    config = ev.EvalConfig(protocols=("none",), limit=3)
    report = ev.evaluate(identity_model, dataset, config, progress=False)
    summary = report["protocols"]["none"]["summary"]
    assert set(summary) == {"clean"}                       # no occluded face, so no 'overall' or categories
    overall = summary["clean"]
    assert overall["n"] == 3
    assert overall["model"]["untouched"] == 1.0 and overall["model"]["mask_empty"] == 1.0
    assert overall["model"]["mask_iou"] == 1.0             # no hole, none predicted
    assert overall["model"]["psnr_hole"] is None           # nothing to measure inside an empty hole
    assert overall["telea"]["psnr"] == overall["input"]["psnr"]


def test_symmetry_model_gets_the_true_mask(dataset, tmp_path):
    model = build_symmetry_model(tmp_path / "sym.onnx", crop_size=SIZE)
    report = ev.evaluate(model, dataset, ev.EvalConfig(protocols=("irregular",), limit=2), progress=False)
    assert report["mask_fed"] is True
    ds = OccludedFaces(FaceStore(dataset), "val", "irregular", seed=0, fixed=True, flip=False)
    for i, face in enumerate(report["protocols"]["irregular"]["faces"]):
        clean, occlusion, _, _ = ds.example(i)
        m = occlusion.mask[..., None]
        expected = np.rint(occlusion.image * (1 - m) + occlusion.image[:, ::-1] * m).astype(np.uint8)
        want = metrics.psnr(metrics.images_to_tensor(expected), metrics.images_to_tensor(clean)).item()
        assert face["model"]["psnr"] == pytest.approx(want, abs=1e-4)
        assert face["model"]["psnr"] != face["input"]["psnr"]
        assert "mask_iou" not in face["model"]               # nothing predicted, nothing to score


def test_refuses_models_that_do_not_fit_the_dataset(dataset, tmp_path):
    small = build_identity_model(tmp_path / "small.onnx", crop_size=32)
    with pytest.raises(UnveilError, match="32px"):
        ev.evaluate(small, dataset, ev.EvalConfig(protocols=("rect",)), progress=False)


def test_unknown_protocol_is_refused(dataset, identity_model):
    with pytest.raises(UnveilError, match="unknown protocol"):
        ev.evaluate(identity_model, dataset, ev.EvalConfig(protocols=("blobs",)), progress=False)


def test_telea_only_changes_the_hole():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    mask = np.zeros((32, 32), np.float32)
    mask[10:20, 10:20] = 1
    filled = ev.telea_inpaint(image, mask)
    assert np.array_equal(filled[mask == 0], image[mask == 0])
    assert not np.array_equal(filled[mask == 1], image[mask == 1])
    assert np.array_equal(ev.telea_inpaint(image, np.zeros_like(mask)), image)


def build_upscaling_model(path: Path, crop_size: int, scale: int) -> Path:
    """A completion + super-resolution stand-in: nearest-neighbour upscaling, no mask."""
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, crop_size, crop_size])
    out = helper.make_tensor_value_info("large", TensorProto.FLOAT, ["batch", 3, crop_size * scale, crop_size * scale])
    nodes = [helper.make_node("Resize", ["image", "", "scales"], ["large"], mode="nearest")]
    scales = numpy_helper.from_array(np.array([1, 1, scale, scale], np.float32), "scales")
    graph = helper.make_graph(nodes, "upscale", [image], [out], [scales])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    contract = ModelContract(kind="completion_super_resolution", crop_size=crop_size, inputs={"image": "image"},
                             outputs={"image": "large"}, output_scale=scale, name="upscale")
    helper.set_model_props(model, {METADATA_KEY: contract.to_json()})
    onnx.save(model, str(path))
    return path


def test_super_resolution_model_sees_downscaled_crops(dataset, tmp_path):
    model = build_upscaling_model(tmp_path / "sr.onnx", crop_size=SIZE // 2, scale=2)
    report = ev.evaluate(model, dataset, ev.EvalConfig(protocols=("rect",), limit=2), progress=False)
    for face in report["protocols"]["rect"]["faces"]:
        # Blocky nearest-neighbour upscaling is worse than the bicubic 'input' baseline of the same low-res crop,
        # and neither is the untouched full-resolution input.
        assert face["model"]["psnr"] < face["input"]["psnr"]
        assert face["model"]["untouched"] == 0.0 and face["input"]["untouched"] == 0.0
