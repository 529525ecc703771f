"""The occlusion segmenter: real cutouts, training with resume, threshold calibration, export with its contract."""
from __future__ import annotations

import argparse
import json

import cv2
import numpy as np
import pytest
import torch

from realtime.contract import ModelContract, read_contract
from realtime.errors import ModelContractError
from realtime.runner import ModelRunner
from tests.tiny_datasets import face_crops, write_dataset
from cli import train_segmenter as train_segmenter_command
from trainer import train_segmenter as ts
from trainer.data import FaceStore
from trainer.cutouts import load_cutouts, place_cutout, split_cutouts
from trainer.networks.segmenter import OcclusionSegmenter

torch.set_num_threads(1)
SIZE = 32


def make_occluders(root):
    """A folder laid out like ../shared/data/occluders: two hand photos with masks and an RGBA face mask."""
    for i in range(2):
        image = np.full((60, 80, 3), (40 + 60 * i, 120, 200), np.uint8)
        mask = np.zeros((60, 80), np.uint8)
        cv2.ellipse(mask, (40, 30), (30, 20), 0, 0, 360, 255, -1)
        (root / "hands_tabletop" / "images").mkdir(parents=True, exist_ok=True)
        (root / "hands_tabletop" / "masks").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "hands_tabletop" / "images" / f"{i}.jpg"), image)
        cv2.imwrite(str(root / "hands_tabletop" / "masks" / f"{i}.png"), mask)
    rgba = np.zeros((40, 70, 4), np.uint8)
    rgba[5:35, 5:65] = (230, 230, 230, 255)
    (root / "face_mask_templates").mkdir(parents=True)
    cv2.imwrite(str(root / "face_mask_templates" / "surgical.png"), rgba)
    return root


def test_cutouts_load_split_and_paste_with_exact_masks(tmp_path):
    cutouts = load_cutouts(make_occluders(tmp_path / "occ"))
    assert sorted(c.kind for c in cutouts) == ["face_mask", "hand", "hand"]
    train, held = split_cutouts(cutouts, every=3)
    assert len(held) == 1 and {c.source for c in train}.isdisjoint({c.source for c in held})
    face = np.full((64, 64, 3), 128, np.uint8)
    points5 = np.array([[21, 30], [43, 30], [32, 43], [23, 51], [41, 51]], np.float64)
    out, mask = place_cutout(face, cutouts[0], np.random.default_rng(0), points5)
    changed = (out != face).any(axis=2)
    assert mask.any() and changed[mask > 0].mean() > 0.95           # labelled pixels are visibly covered
    assert not (changed & (mask == 0)).sum() > 0.5 * mask.sum()    # only the soft edge changes beyond the label


def test_the_segmenter_outputs_a_probability_and_uncapped_logits():
    network = OcclusionSegmenter(SIZE, (4, 8, 16))
    out = network(torch.rand(2, 3, SIZE, SIZE))
    assert out["mask"].shape == (2, 1, SIZE, SIZE) and out["logits"].shape == (2, 1, SIZE, SIZE)
    assert torch.allclose(out["mask"], torch.sigmoid(out["logits"]))


def test_calibration_picks_the_lowest_threshold_that_keeps_clean_faces_untouched():
    region = np.ones((1, 16, 16), bool).repeat(4, 0)
    probs = np.zeros((4, 16, 16), np.float32)
    probs[0, 2:8, 2:8] = 0.62   # one clean face with a confident false blob
    probs[1, 2:8, 2:8] = 0.41
    assert ts.calibrate(probs, region, clean_target=0.75, min_area=4) == pytest.approx(0.42)
    assert ts.calibrate(probs, region, clean_target=1.0, min_area=4) == pytest.approx(0.63)


def test_a_masked_contract_needs_its_threshold():
    kwargs = dict(kind="occlusion_mask", crop_size=64, inputs={"image": "image"}, outputs={"mask": "mask"})
    with pytest.raises(ModelContractError, match="threshold"):
        ModelContract(**kwargs).validate()
    ModelContract(threshold=0.7, **kwargs).validate()


def test_train_resume_calibrate_and_export(tmp_path):
    rng = np.random.default_rng(0)
    astronaut = rng.integers(0, 256, (512, 512, 3), np.uint8)
    crops, points = face_crops(astronaut, 12, SIZE)
    data = write_dataset(tmp_path / "faces", crops, points, [f"id{i % 6}" for i in range(12)], val_fraction=0.4)
    occluders = make_occluders(tmp_path / "occ")
    parser = argparse.ArgumentParser()
    ts.add_arguments(parser)
    common = ["--data", str(data), "--occluders", str(occluders), "--out", str(tmp_path / "run"), "--batch", "4",
              "--widths", "4", "8", "16", "--workers", "0", "--checkpoint-every", "2"]
    assert ts.train(parser.parse_args(common + ["--steps", "2"])) == 0
    first = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert first["step"] == 2
    assert ts.train(parser.parse_args(common + ["--steps", "4", "--resume"])) == 0
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=False)["step"] == 4
    model = tmp_path / "seg.onnx"
    assert train_segmenter_command.run(parser.parse_args(common + ["--finish", "--export", str(model),
                                                                    "--val-size", "4"])) == 0
    report = json.loads((tmp_path / "run" / "calibration.json").read_text())
    contract = read_contract(model)
    assert contract.kind == "occlusion_mask" and contract.threshold == report["threshold"]
    assert set(report["scores"]) == {"clean", "rect", "text", "centre", "half", "realistic", "cutouts"}
    runner = ModelRunner(str(model), "cpu")
    out = runner.run([crops[0]])
    assert out.images == [] and out.masks[0].shape == (SIZE, SIZE)

    # `unveil eval` knows a segmenter by its contract and scores its masks at the contract's threshold
    from trainer import evaluate

    eval_parser = argparse.ArgumentParser()
    evaluate.add_arguments(eval_parser)
    scores = tmp_path / "scores.json"
    assert evaluate.run(eval_parser.parse_args([str(model), "--data", str(data), "--occluders", str(occluders),
                                                "--limit", "4", "--json", str(scores)])) == 0
    evaluated = json.loads(scores.read_text())
    assert evaluated["threshold"] == contract.threshold
    assert set(evaluated["scores"]) == set(report["scores"])
    assert all(0.0 <= v["precision"] <= 1.0 and 0.0 <= v["untouched"] <= 1.0 for v in evaluated["scores"].values())


def test_batchnorm_recalibration_makes_eval_mode_match_the_batch_statistics():
    torch.manual_seed(0)
    network = OcclusionSegmenter(SIZE, (4, 8, 16))
    images = torch.rand(16, 3, SIZE, SIZE) * 0.5 + 0.25
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.fill_(3.0)   # stale statistics, as after fast-moving training
    network.train()
    with torch.no_grad():
        reference = network(images)["mask"]
    network.eval()
    with torch.no_grad():
        stale = network(images)["mask"]
    data = torch.utils.data.TensorDataset(images, torch.zeros(16, 1, SIZE, SIZE))
    ts.recalibrate_batchnorm(network, data, batches=4, batch_size=16)
    with torch.no_grad():
        fresh = network(images)["mask"]
    assert (fresh - reference).abs().max() < 0.05 < (stale - reference).abs().max()


def test_clear_glasses_change_only_the_eye_band_and_are_not_labelled():
    face = np.full((64, 64, 3), 128, np.uint8)
    points5 = np.array([[21, 30], [43, 30], [32, 43], [23, 51], [41, 51]], np.float64)
    drawn = ts.clear_glasses(face, points5, np.random.default_rng(0))
    changed = (drawn != face).any(axis=2)
    assert changed.any() and not changed[45:].any() and not changed[:15].any()


def test_reference_segmenter_trains_on_pairs_of_one_person_and_exports_with_its_contract(tmp_path):
    from cli import train_reference as train_reference_command
    from trainer import train_reference as tr

    rng = np.random.default_rng(1)
    crops, points = face_crops(rng.integers(0, 256, (512, 512, 3), np.uint8), 12, SIZE)
    data = write_dataset(tmp_path / "faces", crops, points, [f"id{i % 3}" for i in range(12)], val_fraction=0.4)
    occluders = make_occluders(tmp_path / "occ")
    parser = argparse.ArgumentParser()
    tr.add_arguments(parser)
    common = ["--data", str(data), "--occluders", str(occluders), "--out", str(tmp_path / "run"), "--batch", "4",
              "--size", "16", "--widths", "4", "8", "--workers", "0", "--checkpoint-every", "2"]
    assert tr.train(parser.parse_args(common + ["--steps", "2"])) == 0
    assert tr.train(parser.parse_args(common + ["--steps", "4", "--resume"])) == 0
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=False)["step"] == 4
    model = tmp_path / "change.onnx"
    assert train_reference_command.run(parser.parse_args(
        common + ["--finish", "--export", str(model), "--val-size", "4", "--bn-batches", "2"])) == 0
    contract = read_contract(model)
    report = json.loads((tmp_path / "run" / "calibration.json").read_text())
    assert contract.kind == "occlusion_change" and contract.crop_size == 16 and contract.threshold == report["threshold"]
    assert set(contract.inputs) == {"image", "reference"} and set(report["scores"]) == {"clean", "occluded"}
    small = [cv2.resize(c, (16, 16)) for c in crops[:2]]
    out = ModelRunner(str(model), "cpu").run(small, references=small[::-1])
    assert len(out.masks) == 2 and out.masks[0].shape == (16, 16)
    with pytest.raises(Exception, match="reference"):
        ModelRunner(str(model), "cpu").run(small)


def test_a_pair_is_two_moments_of_one_person():
    from trainer.train_reference import PairData

    class Store:  # the parts of FaceStore that PairData reads
        crop_size = 32
        meta = {"template": "ffhq", "margin": 0.0}
        ids = ["a", "a", "b", "b", "b"]

        def indices(self, split):
            return np.arange(5)

        def identity(self, i):
            return self.ids[i]

        read: list[int] = []

        def image(self, i):
            self.read.append(i)
            return np.full((32, 32, 3), 40 * i, np.uint8)

        def landmarks(self, i):
            return np.zeros((69, 2), np.float32) + 16

    from realtime.align import TEMPLATES

    Store.meta["template"] = next(iter(TEMPLATES))
    store = Store()
    data = PairData(store, [], size=16, occluded=0.0, shared=0.0)
    for k in range(10):
        store.read.clear()
        current, reference, mask, _ = data.draw(k % 5, np.random.default_rng(k))
        assert current.shape == reference.shape == (16, 16, 3) and not mask.any()
        now, then = store.read
        assert now != then and store.ids[now] == store.ids[then]  # the same person, another moment


def test_a_warm_started_run_mixes_datasets_keeps_frozen_statistics_and_starts_from_the_file(tmp_path):
    rng = np.random.default_rng(1)
    face = rng.integers(0, 256, (512, 512, 3), np.uint8)
    crops, points = face_crops(face, 12, SIZE)
    first = write_dataset(tmp_path / "a", crops, points, [f"id{i % 6}" for i in range(12)], val_fraction=0.4)
    second = write_dataset(tmp_path / "b", crops[:6], points[:6], [f"p{i}" for i in range(6)], val_fraction=0.0)
    occluders = make_occluders(tmp_path / "occ")
    parser = argparse.ArgumentParser()
    ts.add_arguments(parser)
    widths = ["--widths", "4", "8", "16"]
    common = ["--data", str(first), "--occluders", str(occluders), "--batch", "4", "--workers", "0", *widths]

    # a shipped-style file: exported from a run, so its BatchNorm is folded into the convs
    assert ts.train(parser.parse_args(common + ["--out", str(tmp_path / "src"), "--steps", "2"])) == 0
    shipped = tmp_path / "shipped.onnx"
    assert train_segmenter_command.run(parser.parse_args(
        common + ["--out", str(tmp_path / "src"), "--finish", "--export", str(shipped), "--val-size", "4"])) == 0

    args = parser.parse_args(common + ["--out", str(tmp_path / "ft"), "--steps", "1", "--lr", "1e-12",
                                       "--warm-start", str(shipped), "--also-data", str(second)])
    data = ts.mixed_training_data([FaceStore(first), FaceStore(second)], [], args, seed=0)
    assert len(data) == len(FaceStore(first).indices("train")) + len(FaceStore(second).indices("train"))
    assert ts.train(args) == 0
    run = torch.load(tmp_path / "ft" / "last.pt", weights_only=False)
    assert run["frozen_batchnorm"] is True
    # with a vanishing learning rate the fine-tuned network is still the shipped file's function
    network = ts.load_network(tmp_path / "ft" / "last.pt", SIZE)
    import onnxruntime

    images = np.stack(crops[:2])
    ours = ts.predict(network, images)
    session = onnxruntime.InferenceSession(str(shipped), providers=["CPUExecutionProvider"])
    theirs = session.run(None, {"image": images.transpose(0, 3, 1, 2).astype(np.float32) / 255.0})[0][:, 0]
    assert np.abs(ours - theirs).max() < 1e-4
