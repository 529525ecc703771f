"""Small faces (#16): the FCSR network, its trainer and export, the completion_super_resolution contract, the
small-block evaluation, and the runtime's routing of small faces (normal faces unchanged, bit for bit)."""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from fractions import Fraction

import cv2
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from realtime.contract import METADATA_KEY, ModelContract, read_contract
from realtime.errors import ModelContractError, UnveilError
from realtime.fill import FILLER_CODE, FillConfig
from realtime.frame import Frame
from realtime.pipeline import PipelineConfig, build_pipeline
from realtime.runner import ModelRunner
from realtime.small_faces import eyes_distance, small_inputs, small_matrix
from tests.tiny_models import OCCLUDER_BGR, build_blind_model, build_symmetry_model
from trainer.networks.fcsr import FCSRNet
from trainer.train_fcsr import area, small_block_example

GREEN = (0.0, 1.0, 0.0)  # RGB: what the tiny small-face model paints into a hole


def build_tiny_sr_model(path, crop_size: int = 32, scale: int = 4, declared_scale: int | None = None):
    """A completion_super_resolution stand-in: the hole painted green, then nearest-neighbour upscaling."""
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, crop_size, crop_size])
    mask = helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", 1, crop_size, crop_size])
    out = helper.make_tensor_value_info("completed", TensorProto.FLOAT, ["batch", 3, crop_size * scale, crop_size * scale])
    nodes = [helper.make_node("Sub", ["one", "mask"], ["keep"]),
             helper.make_node("Mul", ["image", "keep"], ["kept"]),
             helper.make_node("Mul", ["green", "mask"], ["painted"]),
             helper.make_node("Add", ["kept", "painted"], ["low"]),
             helper.make_node("Resize", ["low", "", "scales"], ["completed"], mode="nearest")]
    inits = [numpy_helper.from_array(np.array([1, 1, scale, scale], np.float32), "scales"),
             numpy_helper.from_array(np.array(1.0, np.float32), "one"),
             numpy_helper.from_array(np.array(GREEN, np.float32).reshape(1, 3, 1, 1), "green")]
    graph = helper.make_graph(nodes, "tiny_sr", [image, mask], [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    fields = dict(kind="completion_super_resolution", crop_size=crop_size, inputs={"image": "image", "mask": "mask"},
                  outputs={"image": "completed"}, output_scale=declared_scale or scale, name="tiny-sr")
    helper.set_model_props(model, {METADATA_KEY: ModelContract(**fields).to_json()})
    onnx.save(model, str(path))
    return str(path)


# ------------------------------------------------------------------------------------------------ the network


def test_fcsr_returns_a_face_four_times_larger_and_keeps_visible_pixels_at_the_small_size():
    torch.manual_seed(0)
    net = FCSRNet("lite").eval()
    image = torch.rand(2, 3, 32, 32)
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 8:24, 8:24] = 1
    with torch.no_grad():
        out = net(image, mask)
    assert out["image"].shape == (2, 3, 128, 128)
    assert torch.equal(out["low"] * (1 - mask), image * (1 - mask))  # the hole alone is painted
    assert not torch.equal(out["low"] * mask, image * mask)
    counts = net.parameter_counts()
    assert counts["total"] < 1.5e6
    paper = FCSRNet("paper").parameter_counts()
    assert 3.0e6 < paper["completion"] < 4.0e6 and 1.0e6 < paper["super_resolution"] < 1.4e6  # the paper: 3.5M + 1.2M
    with pytest.raises(UnveilError):
        FCSRNet("huge")
    from trainer.networks.fcsr import PRESETS

    assert set(PRESETS) == {"lite", "paper"}   # the CLI lists them literally (its help must work without torch)


def test_small_block_protocol_is_deterministic_and_covers_a_face_part():
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 256, (128, 128, 3), np.uint8)
    a = small_block_example(clean, 0, 7)
    b = small_block_example(clean, 0, 7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    small, mask, large = a
    assert small.shape == (32, 32, 3) and mask.sum() == 16 * 16 and large.sum() == 64 * 64
    ys, xs = np.nonzero(mask)
    assert 2 <= xs.min() <= 14 and 4 <= ys.min() <= 14   # a 16 px block there always covers an eye, nose or mouth
    assert np.array_equal(small[mask == 0], area(clean, 32)[mask == 0])
    assert np.array_equal(cv2.resize(large, (32, 32), interpolation=cv2.INTER_AREA) > 0, mask > 0)


# ----------------------------------------------------------------------------------------------- the contract


def test_the_contract_says_input_size_output_size_and_scale():
    c = ModelContract(kind="completion_super_resolution", crop_size=32, inputs={"image": "image", "mask": "mask"},
                      outputs={"image": "completed"}, output_scale=4)
    c.validate()
    assert (c.input_size, c.output_size) == (32, 128)
    assert ModelContract.from_json(c.to_json()) == c
    with pytest.raises(ModelContractError, match="output_scale of at least 2"):
        replace(c, output_scale=1).validate()
    with pytest.raises(ModelContractError, match="larger image"):
        replace(c, kind="symmetry_completion").validate()
    with pytest.raises(ModelContractError, match="unknown model kind"):
        replace(c, kind="completion_sr").validate()


def test_the_runner_returns_the_larger_output_and_refuses_a_model_that_lies_about_it(tmp_path):
    runner = ModelRunner(build_tiny_sr_model(tmp_path / "sr.onnx"), provider="cpu")
    crop = np.full((32, 32, 3), 100, np.uint8)
    mask = np.zeros((32, 32), np.float32)
    mask[4:8, 4:8] = 1
    out = runner.run([crop, crop], [mask, mask])
    assert [im.shape for im in out.images] == [(128, 128, 3)] * 2
    assert (out.images[0][16:32, 16:32] == (0, 255, 0)).all() and (out.images[0][64:, 64:] == 100).all()
    liar = ModelRunner(build_tiny_sr_model(tmp_path / "liar.onnx", scale=2, declared_scale=4), provider="cpu")
    with pytest.raises(UnveilError, match="contract says 128x128"):
        liar.run([crop], [mask])


# ------------------------------------------------------------------------------------------- trainer + export


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory, astronaut_bgr):
    from realtime.align import template_points
    from tests.tiny_datasets import write_dataset
    from trainer.prepare import LANDMARK_INDICES

    rng = np.random.default_rng(0)
    crops, points = [], []
    for k in range(12):
        y, x = rng.integers(0, 120, 2)
        crops.append(cv2.resize(astronaut_bgr[y:y + 380, x:x + 380], (128, 128), interpolation=cv2.INTER_AREA))
        centre = template_points(128).mean(0)
        points.append((centre + rng.normal(0, 20, (len(LANDMARK_INDICES), 2))).astype(np.float32))
    return write_dataset(tmp_path_factory.mktemp("fcsr") / "faces", crops, points, [f"id{k % 4}" for k in range(12)])


def trainer_args(out, data, **steps):
    from trainer.train_fcsr import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    plan = {"parser_steps": 2, "completion_steps": 2, "sr_steps": 2, "joint_steps": 2, **steps}
    argv = ["--data", str(data), "--out", str(out), "--batch", "2", "--workers", "0", "--val-size", "2",
            "--log-every", "1", "--val-every", "1", "--checkpoint-every", "1"]
    for key, value in plan.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return parser.parse_args(argv)


@pytest.mark.slow
def test_the_trainer_runs_every_phase_resumes_and_exports_a_contract(tiny_dataset, tmp_path):
    from cli.train_fcsr import run
    from trainer.train_fcsr import train

    out = tmp_path / "run"
    assert train(trainer_args(out, tiny_dataset, joint_steps=1)) == 0
    first = torch.load(out / "last.pt", weights_only=False)
    assert first["step"] == 7
    phases = [json.loads(line)["phase"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert phases[:2] == ["parser", "parser"] and {"completion", "sr", "joint"} <= set(phases)
    args = trainer_args(out, tiny_dataset)
    args.resume = True
    assert train(args) == 0
    assert torch.load(out / "last.pt", weights_only=False)["step"] == 8   # one more joint step, not a restart
    args.export = str(tmp_path / "fcsr.onnx")
    assert run(args) == 0
    contract = read_contract(tmp_path / "fcsr.onnx")
    assert (contract.kind, contract.crop_size, contract.output_scale, contract.output_size) == (
        "completion_super_resolution", 32, 4, 128)
    assert set(contract.inputs) == {"image", "mask"}
    out = ModelRunner(str(tmp_path / "fcsr.onnx"), provider="cpu").run(
        [np.zeros((32, 32, 3), np.uint8)], [np.zeros((32, 32), np.float32)])
    assert out.images[0].shape == (128, 128, 3)


# ------------------------------------------------------------------------------------------------- evaluation


@pytest.mark.slow
def test_small_block_evaluation_scores_three_methods_at_128_and_draws_the_grid(tiny_dataset, tmp_path):
    from trainer.evaluate_fcsr import evaluate_small

    model = build_tiny_sr_model(tmp_path / "sr.onnx")
    baseline = str(build_symmetry_model(tmp_path / "sym.onnx", crop_size=128))
    figure = tmp_path / "grid.png"
    report = evaluate_small(model, tiny_dataset, baseline=baseline, figure=figure, progress=False)
    s = report["summary"]
    assert s["n"] == len(report["faces"]) > 0
    for method in ("model", "bicubic", "path128"):
        assert all(s[method][k] is not None for k in ("psnr", "ssim", "psnr_hole", "ssim_hole"))
    # the tiny model paints its holes pure green
    assert s["model"]["psnr_hole"] < 12
    # the bicubic baseline, scored independently for the first face
    from trainer.data import FaceStore
    from trainer.evaluate_fcsr import bicubic

    first = report["faces"][0]
    clean = FaceStore(tiny_dataset).image(first["index"])
    small, _, hole = small_block_example(clean, 0, first["index"])
    err = (bicubic(small, 128).astype(float) - clean.astype(float))[hole > 0] ** 2
    assert first["bicubic"]["psnr_hole"] == pytest.approx(10 * np.log10(255.0**2 / err.mean()), abs=0.01)
    picture = cv2.imread(str(figure))
    assert picture.shape[1] == 5 * 128 + 4 * 2 and picture.shape[0] > 128 * min(s["n"], 8)
    with pytest.raises(UnveilError, match="completion_super_resolution"):
        evaluate_small(baseline, tiny_dataset, baseline=baseline, progress=False)


# -------------------------------------------------------------------------------------------------- runtime


def test_the_small_crop_is_the_area_downscale_of_the_aligned_crop(astronaut_bgr):
    from realtime.align import warp_to_crop

    matrix = np.array([[0.9, 0.1, -80.0], [-0.1, 0.9, -40.0]])   # a face ~ the crop's size: no area path either way
    big = warp_to_crop(astronaut_bgr, matrix * 1.0, 128)
    small = warp_to_crop(astronaut_bgr, small_matrix(matrix, 128, 32), 32)
    # sampled at the centres of the 4x4 blocks the area downscale averages: close to it, and to the pixel grid
    assert np.abs(small.astype(int) - area(big, 32).astype(int)).mean() < 6
    shifted = matrix.copy() / 4   # without the half-block shift the grid is off by 1.5 crop pixels
    naive = warp_to_crop(astronaut_bgr, shifted, 32)
    assert np.abs(small.astype(int) - area(big, 32).astype(int)).mean() < np.abs(naive.astype(int) - area(big, 32).astype(int)).mean()
    mask = np.zeros((128, 128), np.float32)
    mask[10:12, 100:128] = 1
    _, small_mask = small_inputs(astronaut_bgr, matrix, mask, 32)
    assert small_mask[2, 25:].all() and small_mask.sum() == 7   # every small pixel the mask touches


def distant(astronaut_bgr, scale: float) -> np.ndarray:
    """The astronaut made small and put into a 640x480 frame."""
    small = cv2.resize(astronaut_bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[100:100 + small.shape[0], 200:200 + small.shape[1]] = small
    return frame


def run_frames(config: PipelineConfig, images: list[np.ndarray]):
    pipeline = build_pipeline(config)
    frames = []
    try:
        for i, image in enumerate(images):
            frame = Frame(index=i, image=image, pts=i, time_base=Fraction(1, 25))
            for stage in pipeline.stages:
                frame = stage.process(frame)
            frames.append(frame)
    finally:
        pipeline.close()
    return pipeline, frames


def pipeline_config(models, order=("network", "inpaint"), **fill) -> PipelineConfig:
    config = PipelineConfig(models=tuple(models), provider="cpu")
    config = replace(config, detector=replace(config.detector, model_selection=1),
                     find=replace(config.find, hands=False, persist_frames=1),
                     fill=replace(FillConfig(order=order), **fill))
    return config


@pytest.mark.slow
def test_small_faces_go_to_the_small_network_and_other_faces_stay_bit_identical(astronaut_bgr, tmp_path):
    finder = str(build_blind_model(tmp_path / "finder.onnx", crop_size=128))
    sr = build_tiny_sr_model(tmp_path / "sr.onnx")
    small_frame = distant(astronaut_bgr, 0.5)
    cv2.rectangle(small_frame, (300, 165), (315, 175), OCCLUDER_BGR, -1)   # over the nose and the mouth
    large_frame = astronaut_bgr.copy()
    cv2.rectangle(large_frame, (205, 118), (240, 150), OCCLUDER_BGR, -1)
    pipeline, frames = run_frames(pipeline_config([finder, sr]), [small_frame, large_frame])
    assert pipeline.small is not None and "small faces: tiny-sr" in pipeline.mode
    small_face, large_face = frames[0].faces[0], frames[1].faces[0]
    assert eyes_distance(small_face.landmarks) < 30 <= eyes_distance(large_face.landmarks)
    # the small face's hole is painted by the small-face network (green), pasted at the face's own size
    fill = small_face.fill
    painted = fill.source == FILLER_CODE["network"]
    assert painted.sum() > 100
    x0, y0, _, _ = fill.box
    ys, xs = np.nonzero(painted & (fill.weight >= 1.0))
    pixels = frames[0].result()[ys + y0, xs + x0].astype(int)
    assert (pixels[:, 1] > 200).mean() > 0.8 and (pixels[:, [0, 2]] < 60).all(axis=1).mean() > 0.8
    assert small_face.completed.shape == (128, 128, 3)
    # the large face: exactly what the pipeline without the small-face model makes
    _, without = run_frames(pipeline_config([finder]), [large_frame])
    assert np.array_equal(frames[1].result(), without[0].result())
    assert not np.array_equal(frames[1].result(), large_frame)
    # below the threshold only: with a threshold of 0 the small face is filled as before too
    _, off = run_frames(pipeline_config([finder, sr], small_face_eyes=0.0), [small_frame])
    _, plain = run_frames(pipeline_config([finder]), [small_frame])
    assert np.array_equal(off[0].result(), plain[0].result())
    assert not np.array_equal(frames[0].result(), plain[0].result())


def test_a_small_face_model_must_return_the_finders_crop(tmp_path):
    finder = str(build_blind_model(tmp_path / "finder.onnx", crop_size=128))
    wrong = build_tiny_sr_model(tmp_path / "sr64.onnx", crop_size=16)   # 64 px out
    with pytest.raises(UnveilError, match="must return the finder's crop"):
        build_pipeline(pipeline_config([finder, wrong]))


@pytest.mark.slow
def test_process_exports_each_tracks_faces_at_the_output_size(astronaut_bgr, tmp_path):
    from realtime.process import process

    finder = str(build_blind_model(tmp_path / "finder.onnx", crop_size=128))
    sr = build_tiny_sr_model(tmp_path / "sr.onnx")
    folder = tmp_path / "in"
    folder.mkdir()
    small_frame = distant(astronaut_bgr, 0.5)
    cv2.rectangle(small_frame, (300, 165), (315, 175), OCCLUDER_BGR, -1)
    cv2.imwrite(str(folder / "a.png"), small_frame)
    cv2.imwrite(str(folder / "b.png"), distant(astronaut_bgr, 0.5))   # clean: super-resolution alone
    faces = tmp_path / "faces"
    summary = process(str(folder), str(tmp_path / "out"), pipeline_config([finder, sr]), export_faces=str(faces),
                      show_progress=False)
    written = sorted(p.relative_to(faces).as_posix() for p in faces.rglob("*.png"))
    assert sorted(w.split("/")[1] for w in written) == ["a.png", "b.png"]
    assert summary["exported_faces"] == 2
    for path in faces.rglob("*.png"):
        assert cv2.imread(str(path)).shape == (128, 128, 3)
    a = cv2.imread(str(next(faces.rglob("a.png"))))
    assert ((a[..., 1] > 200) & (a[..., 0] < 60) & (a[..., 2] < 60)).sum() > 50   # the painted hole


@pytest.mark.skipif(not {"occlusion-lite", "symmetry-lite"} <= set(__import__("realtime.models").models.available_models()),
                    reason="models not shipped")
def test_a_small_face_model_alone_joins_the_shipped_finder_and_filler(tmp_path):
    from realtime.pipeline import load_all_runners

    finder, network, small = load_all_runners(PipelineConfig(models=(build_tiny_sr_model(tmp_path / "sr.onnx"),),
                                                             provider="cpu"))
    assert (finder.contract.kind, network.contract.kind, small.contract.kind) == (
        "occlusion_mask", "symmetry_completion", "completion_super_resolution")
