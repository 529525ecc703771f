"""SymmetryVAE and its three-stage trainer (issue #17): symmetric output, stage targets, resume, export with the
`symmetrization` contract, and `unveil symmetrize --method vae` through onnxruntime."""
from __future__ import annotations

import argparse
import csv
import json

import cv2
import numpy as np
import pytest
import torch

from cli.main import main
from realtime.contract import ModelContract
from realtime.errors import ModelContractError
from realtime.runner import ModelRunner
from tests.tiny_datasets import face_crops, write_dataset
from trainer.networks.symmetry_vae import SymmetryVAE
from trainer.train_vae import add_arguments, stage_loss, stage_of, symmetric_targets

TINY = dict(crop_size=32, widths=(4, 8, 8), latent_channels=4)


@torch.no_grad()
def test_symmetric_output_is_exactly_mirror_symmetric_and_eval_is_deterministic():
    torch.manual_seed(0)
    network = SymmetryVAE(**TINY, symmetric=True).eval()
    x = torch.rand(2, 3, 32, 32)
    y = network(x)["image"]
    assert y.shape == x.shape and 0.0 <= float(y.min()) and float(y.max()) <= 1.0
    assert torch.equal(y, torch.flip(y, dims=[3])) or float((y - torch.flip(y, dims=[3])).abs().max()) < 1e-6
    assert torch.equal(network(x)["image"], y)                       # the mean, no sampling
    raw = network(x)["raw"]
    assert float((raw - torch.flip(raw, dims=[3])).abs().mean()) > 1e-4  # the decoder itself is not symmetric
    network.train()                                                  # training samples the latent
    a, b = network(x)["image"], network(x)["image"]
    assert not torch.equal(a, b)


def test_stage_targets_and_schedule():
    assert [stage_of(s, (3, 2, 4)) for s in (0, 2, 3, 4, 5, 8)] == [0, 0, 1, 1, 2, 2]
    image = torch.rand(2, 3, 8, 8)
    region = torch.zeros(2, 1, 8, 8)
    region[..., 2:6, 1:5] = 1.0                                      # off centre: made symmetric for the targets
    left, right = symmetric_targets(image, region)
    for target in (left, right):
        assert torch.equal(target, torch.flip(target, dims=[3]))
    both = torch.maximum(region, torch.flip(region, dims=[3]))
    assert torch.equal(left[..., :4], (image * both)[..., :4]) and torch.equal(right[..., 4:], (image * both)[..., 4:])
    # stage 3 takes the nearer target: predicting one of them exactly costs (almost) nothing
    out = {"image": left, "mu": torch.zeros(2, 4, 2, 2), "logvar": torch.zeros(2, 4, 2, 2)}
    loss, _ = stage_loss(out, image, region, 2, 0.0, 1.0)
    assert float(loss) < 1e-6
    loss_face, _ = stage_loss(out, image, region, 1, 0.0, 1.0)
    assert float(loss_face) > 0.01


def training_args(tmp_path, data, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(["--data", str(data), "--out", str(tmp_path / "run"), "--size", "32", "--widths", "4", "8",
                              "8", "--latent", "4", "--batch", "2", "--checkpoint-every", "2", *extra])


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory, astronaut_bgr):
    crops, points = face_crops(astronaut_bgr, 10, 64)
    return write_dataset(tmp_path_factory.mktemp("data") / "faces", crops, points, [f"p{i % 5}" for i in range(10)])


@pytest.mark.slow
def test_three_stages_resume_export_and_symmetrize_with_the_model(tmp_path, tiny_data, astronaut_bgr, capsys):
    from cli.train_vae import run

    assert run(training_args(tmp_path, tiny_data, "--stage-steps", "2", "2", "2", "--max-minutes", "0")) == 0
    first = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert first["step"] == 6 and first["stage_steps"] == [2, 2, 2]
    assert run(training_args(tmp_path, tiny_data, "--stage-steps", "2", "2", "4", "--resume")) == 0
    assert torch.load(tmp_path / "run" / "last.pt", weights_only=False)["step"] == 8
    stages = [json.loads(line)["stage"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert stages == [] or set(stages) <= {"reconstruct", "face", "symmetric"}
    model = tmp_path / "vae.onnx"
    assert run(training_args(tmp_path, tiny_data, "--export", str(model), "--validate", "3")) == 0
    report = json.loads((tmp_path / "run" / "export.json").read_text())
    assert report["validation"]["mirror_error"] < 1e-5 and report["parity_max_abs_diff"] < 1e-3
    runner = ModelRunner(str(model), provider="cpu")
    assert runner.contract.kind == "symmetrization" and runner.contract.crop_size == 32
    crop = cv2.resize(astronaut_bgr[30:330, 100:400], (32, 32), interpolation=cv2.INTER_AREA)
    out = runner.run([crop]).images[0]
    assert np.abs(out.astype(int) - out[:, ::-1]).max() <= 1
    # the command with the model: pasted back, scores written
    photo = tmp_path / "face.png"
    cv2.imwrite(str(photo), cv2.resize(astronaut_bgr[0:320, 80:400], (240, 240), interpolation=cv2.INTER_AREA))
    code = main(["symmetrize", str(photo), "-o", str(tmp_path / "crops"), "--crops", "--method", "vae", "--model",
                 str(model)])
    assert code == 0, capsys.readouterr().err
    with (tmp_path / "crops" / "asymmetry.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and rows[0]["method"] == "vae" and float(rows[0]["mirror_error"]) < 1.0
    assert cv2.imread(str(tmp_path / "crops" / "face_face0.png")).shape == (32, 32, 3)


def test_symmetrize_refuses_a_model_of_another_kind(tmp_path, capsys):
    from tests.tiny_models import build_blind_model

    model = build_blind_model(tmp_path / "blind.onnx", crop_size=32)
    photo = tmp_path / "p.png"
    cv2.imwrite(str(photo), np.full((64, 64, 3), 100, np.uint8))
    code = main(["symmetrize", str(photo), "-o", str(tmp_path / "o.png"), "--method", "vae", "--model", str(model)])
    err = capsys.readouterr().err
    assert code == 2 and "needs a symmetrization model" in err


def test_contract_rules_for_symmetrization():
    ModelContract("symmetrization", 64, {"image": "image"}, {"image": "completed"}).validate()
    with pytest.raises(ModelContractError, match="symmetrization"):
        ModelContract("symmetrization", 64, {"image": "image", "mask": "mask"}, {"image": "completed"}).validate()
