"""The training loop: learning, exact resume, phases, logs, bad configs, the command."""
from __future__ import annotations

import argparse
import copy
import json

import cv2
import numpy as np
import pytest
import torch

from face_dataset import make_face_dataset
from realtime.errors import UnveilError
from trainer import train as training
from trainer.batches import open_datasets
from trainer.builders import build_network
from trainer.checkpoints import load_checkpoint, warm_start
from trainer.config import load_config, parse_config
from trainer.distributed import seed_everything
from trainer.train import train

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def faces(tmp_path_factory, astronaut_bgr):
    return make_face_dataset(tmp_path_factory.mktemp("train_faces"), astronaut_bgr, crop_size=32, count=8)


def tiny_config(faces, **changes) -> dict:
    config = {
        "name": "tiny",
        "seed": 0,
        "network": {"name": "unet", "args": {"blind": True, "crop_size": 32, "width": 8, "depth": 3}},
        "data": {"path": str(faces), "protocol": "rect", "batch_size": 4, "workers": 0, "val_size": 2},
        "phases": [{"name": "main", "steps": 20, "lr": 3e-3, "losses": [
            {"name": "l1_hole", "weight": 3, "args": {"output": "fill"}}, {"name": "l1_valid"}, {"name": "mask_bce"}]}],
        "log": {"log_every": 1, "val_every": 10, "sample_every": 20, "checkpoint_every": 10},
    }
    config.update(changes)
    return config


def test_a_few_steps_lower_the_loss_and_write_metrics_plot_samples_and_checkpoints(faces, tmp_path):
    result = train(parse_config(tiny_config(faces)), tmp_path, progress=False)
    losses = [result.losses[s] for s in sorted(result.losses)]
    assert result.step == 20 and len(losses) == 20
    assert np.mean(losses[-4:]) < 0.9 * np.mean(losses[:4])

    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in records if r["kind"] == "val"]
    assert [r["step"] for r in val] == [10, 20]
    for key in ("psnr", "ssim", "psnr_hole", "ssim_hole", "mask_iou"):
        assert np.isfinite(val[-1][key])
    assert [r["step"] for r in records if r["kind"] == "train"] == list(range(1, 21))
    plot = cv2.imread(str(tmp_path / "metrics.png"))
    assert plot is not None and plot.shape[1] == 900
    grid = cv2.imread(str(tmp_path / "samples" / "step_0000020.png"))
    assert grid is not None and grid.shape[1] == 4 * grid.shape[0] // 2  # 2 validation rows, 4 columns
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step_0000010.pt", "step_0000020.pt"]
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 20


def gan_two_phase_config(faces) -> dict:
    """c2fdan-shaped: phase 1 trains part of the generator with pixel losses, phase 2 everything with GAN terms."""
    return tiny_config(
        faces,
        seed=3,
        data={"path": str(faces), "protocol": "mix", "batch_size": 3, "workers": 0, "val_size": 2},
        discriminators={"global": {"width": 4}, "parts": {"width": 4}},
        phases=[
            {"name": "coarse", "steps": 2, "lr": 1e-3, "trainable": ["downs."],
             "losses": [{"name": "l1_hole", "weight": 6, "args": {"output": "fill"}}, {"name": "mask_bce"}]},
            {"name": "gan", "steps": 3, "lr": 1e-3, "discriminators": True, "lr_groups": {"downs.": 5e-4},
             "losses": [{"name": "l1_hole", "args": {"output": "fill"}}, {"name": "adversarial", "weight": 0.1},
                        {"name": "feature_matching"}]},
        ],
        schedule={"name": "step", "args": {"every": 2, "gamma": 0.5}},
        log={"log_every": 1, "val_every": 100, "sample_every": 100, "checkpoint_every": 2},
    )


def test_resume_continues_exactly_like_an_uninterrupted_run_across_phases(faces, tmp_path):
    config = parse_config(gan_two_phase_config(faces))
    whole = train(config, tmp_path / "whole", progress=False)
    first = train(config, tmp_path / "split", progress=False, max_steps=3)  # stops inside the GAN phase
    rest = train(config, tmp_path / "split", progress=False, resume=True)
    assert sorted(first.losses) == [1, 2, 3] and sorted(rest.losses) == [4, 5]
    assert all(first.losses[s] == whole.losses[s] for s in first.losses)
    assert all(rest.losses[s] == whole.losses[s] for s in rest.losses)  # bit-exact
    records = [json.loads(line) for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2, 3, 4, 5]
    assert "disc_loss" in [r for r in records if r["kind"] == "train"][-1]


def test_a_phase_trains_only_its_prefixes(faces, tmp_path):
    raw = gan_two_phase_config(faces)
    config = parse_config(raw)
    train(config, tmp_path, progress=False, max_steps=2)  # phase 1 only
    trained = load_checkpoint(tmp_path / "last.pt")["model"]
    seed_everything(config.seed)
    initial = build_network(config.network).state_dict()  # the same seeded initialisation the run started from
    weights = [k for k in initial if k.endswith("weight") and "bn" not in k and initial[k].dim() == 4]
    changed = {k for k in weights if not torch.equal(initial[k], trained[k])}
    assert changed and all(k.startswith("downs.") for k in changed)
    assert any(not k.startswith("downs.") for k in weights)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c["network"].update(name="no_such_net"), "unknown network 'no_such_net'"),
        (lambda c: c["phases"][0]["losses"].append({"name": "perceptual"}), "unknown loss 'perceptual'"),
        (lambda c: c["data"].update(path="/no/such/folder"), "is not a folder"),
        (lambda c: c["data"].update(batch_size="8"), "data.batch_size must be int"),
        (lambda c: c["phases"][0].update(steps=0), "steps must be positive"),
        (lambda c: c["phases"][0]["losses"].append({"name": "adversarial"}), "has no discriminators"),
        (lambda c: c.update(discriminators={"huge": {}}), "unknown discriminator 'huge'"),
        (lambda c: c.update(schedule={"name": "sawtooth"}), "unknown schedule 'sawtooth'"),
        (lambda c: c.update(optimiser="sgd"), "unknown keys: optimiser"),
        (lambda c: c.pop("phases"), "phases is missing"),
        (lambda c: c["data"].update(occlusion={"weights": {}}), "data.occlusion has unknown keys: weights"),
        (lambda c: c["data"].update(occlusion={"realistic_weights": {"ladder": 1.0}}), "unknown entries"),
        (lambda c: c["data"].update(occlusion={"clean_fraction": 1.5}), "clean_fraction"),
    ],
)
def test_bad_configs_are_refused_with_a_clear_message(faces, change, message):
    raw = copy.deepcopy(tiny_config(faces))
    change(raw)
    with pytest.raises(UnveilError, match=message):
        parse_config(raw)


def test_bad_network_args_and_mismatched_crop_size_are_refused(faces, tmp_path):
    raw = tiny_config(faces)
    raw["network"]["args"]["colour"] = "blue"
    with pytest.raises(UnveilError, match="rejects its args"):
        train(parse_config(raw), tmp_path, progress=False)
    raw = tiny_config(faces)
    raw["network"]["args"]["crop_size"] = 64
    with pytest.raises(UnveilError, match="does not match the dataset"):
        train(parse_config(raw), tmp_path, progress=False)


def test_the_train_command_runs_a_config_file_and_resumes(faces, tmp_path, capsys):
    config_path = tmp_path / "tiny.json"
    config_path.write_text(json.dumps(tiny_config(faces)))
    parser = argparse.ArgumentParser()
    training.add_arguments(parser)
    out = tmp_path / "run"
    assert training.run(parser.parse_args([str(config_path), "--out", str(out), "--max-steps", "2", "--device", "cpu"])) == 0
    assert load_checkpoint(out / "last.pt")["step"] == 2
    assert training.run(parser.parse_args([str(config_path), "--out", str(out), "--max-steps", "3", "--resume"])) == 0
    assert load_checkpoint(out / "last.pt")["step"] == 3
    assert "trained to step 3" in capsys.readouterr().out
    with pytest.raises(UnveilError, match="no checkpoint"):
        training.run(parser.parse_args([str(config_path), "--out", str(tmp_path / "empty"), "--resume"]))


def sequence_config(faces, blind_checkpoint) -> dict:
    """A tiny recurrent C2FDAN warm-started from a blind C2FDAN, trained on 3-frame synthetic sequences."""
    return tiny_config(
        faces,
        init={"checkpoint": str(blind_checkpoint)},
        network={"name": "recurrent_c2fdan", "args": {"preset": "lite", "crop_size": 32, "width": 4}},
        data={"path": str(faces), "protocol": "mix", "batch_size": 2, "workers": 0, "val_size": 2,
              "sequence": {"length": 3, "motion": 0.01, "speed": [0.03, 0.06]}},
        phases=[{"name": "sequences", "steps": 4, "lr": 1e-3, "losses": [
            {"name": "l1_hole", "weight": 3, "args": {"output": "fine"}}, {"name": "mask_bce"},
            {"name": "temporal_hole", "weight": 2}]}],
        log={"log_every": 1, "val_every": 4, "sample_every": 4, "checkpoint_every": 2, "samples": 6},
    )


@pytest.fixture(scope="module")
def blind_c2fdan(tmp_path_factory):
    from trainer.networks.c2fdan import C2FDAN

    torch.manual_seed(1)
    path = tmp_path_factory.mktemp("blind") / "blind.pt"
    torch.save({"model": C2FDAN("lite", crop_size=32, width=4).state_dict()}, path)
    return path


def test_sequence_training_warm_starts_validates_over_time_and_resumes_exactly(faces, blind_c2fdan, tmp_path):
    config = parse_config(sequence_config(faces, blind_c2fdan))
    whole = train(config, tmp_path / "whole", progress=False)
    records = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in records if r["kind"] == "val"]
    assert [r["step"] for r in val] == [0, 4]       # the warm start's own scores, then the trained ones
    for key in ("psnr", "psnr_hole", "mask_iou", "temporal", "temporal_frozen"):
        assert np.isfinite(val[-1][key])
    assert "temporal_hole" in [r for r in records if r["kind"] == "train"][-1]["terms"]
    grid = cv2.imread(str(tmp_path / "whole" / "samples" / "step_0000004.png"))
    assert grid is not None and grid.shape[0] == 6 * grid.shape[1] // 4   # a row per frame of two 3-frame sequences

    # step 0 is the blind network: the state's new input channels start at zero
    from trainer.networks.c2fdan import C2FDAN

    seed_everything(config.seed)
    recurrent = build_network(config.network)
    warm_start(recurrent, blind_c2fdan)
    blind = C2FDAN("lite", crop_size=32, width=4)
    blind.load_state_dict(torch.load(blind_c2fdan)["model"])
    image = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(recurrent.eval()(image, torch.rand_like(image))["image"], blind.eval()(image)["image"])

    first = train(config, tmp_path / "split", progress=False, max_steps=2)
    rest = train(config, tmp_path / "split", progress=False, resume=True)
    assert sorted(first.losses) == [1, 2] and sorted(rest.losses) == [3, 4]
    assert all(first.losses[s] == whole.losses[s] for s in first.losses)
    assert all(rest.losses[s] == whole.losses[s] for s in rest.losses)


def test_sequence_configs_are_checked(faces, blind_c2fdan):
    raw = sequence_config(faces, blind_c2fdan)
    raw["data"]["sequence"]["length"] = 1
    with pytest.raises(UnveilError, match="length must be an integer >= 2"):
        parse_config(raw)
    raw = sequence_config(faces, blind_c2fdan)
    raw["data"]["sequence"]["kinds"] = {"tornado": 1.0}
    with pytest.raises(UnveilError, match="kinds must map"):
        parse_config(raw)
    raw = sequence_config(faces, blind_c2fdan)
    raw["init"] = {"weights": "x.pt"}
    with pytest.raises(UnveilError, match="init has unknown keys"):
        parse_config(raw)


def test_a_shipped_config_is_found_by_bare_name_or_file_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs here: only the shipped ones can be found
    (tmp_path / "data").mkdir()
    by_name = load_config("c2fdan_lite_cpu", data_path="data")
    assert by_name.name == "c2fdan_lite_cpu"
    assert by_name.total_steps == load_config("c2fdan_lite_cpu.json", data_path="data").total_steps
    with pytest.raises(UnveilError, match="shipped configs: .*c2fdan_lite_cpu"):
        load_config("no_such_config")


def test_data_occlusion_weights_reach_the_datasets(faces):
    raw = tiny_config(faces)
    raw["data"].update(protocol="mix", occlusion={"mix_weights": {"realistic": 1.0},
                                                  "realistic_weights": {"pole": 1.0}, "clean_fraction": 0.0})
    _, train_set, _ = open_datasets(parse_config(raw))
    assert {train_set.example(i)[1].kind for i in range(6)} == {"pole"}
    _, default_set, _ = open_datasets(parse_config(tiny_config(faces)))
    assert {default_set.example(i)[1].kind for i in range(6)} == {"rect"}


def test_a_config_base_is_merged_under_it_and_bases_chain(faces, tmp_path):
    root = tiny_config(faces)
    root["data"]["occlusion"] = {"mix_weights": {"rect": 1.0, "text": 2.0}}
    (tmp_path / "root.json").write_text(json.dumps(root))
    (tmp_path / "variants").mkdir()
    (tmp_path / "variants" / "middle.json").write_text(json.dumps(
        {"base": "../root.json", "name": "middle", "data": {"batch_size": 2, "occlusion": {"mix_weights": {"text": 5.0}}},
         "phases": [{"name": "short", "steps": 3, "losses": ["l2"]}]}))
    (tmp_path / "variants" / "leaf.json").write_text(json.dumps(
        {"base": "middle.json", "seed": 7, "log": {"val_every": 5}, "init": {"checkpoint": "x.pt"}}))
    config = load_config(tmp_path / "variants" / "leaf.json")
    expected = copy.deepcopy(root)
    expected.update(name="middle", seed=7, phases=[{"name": "short", "steps": 3, "losses": ["l2"]}],
                    init={"checkpoint": "x.pt"})
    expected["data"]["batch_size"] = 2
    expected["data"]["occlusion"]["mix_weights"]["text"] = 5.0  # dicts merged key by key, keeping the base's order
    expected["log"]["val_every"] = 5
    assert json.dumps(config.raw) == json.dumps(expected)  # the resolved dict, order included, is what a run saves
    assert (config.name, config.seed, config.data.batch_size, config.total_steps) == ("middle", 7, 2, 3)
    assert config.data.occlusion["mix_weights"] == {"rect": 1.0, "text": 5.0}


def test_config_bases_that_loop_or_are_missing_are_refused(faces, tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"base": "b.json", "seed": 1}))
    (tmp_path / "b.json").write_text(json.dumps({"base": "a.json", "seed": 2}))
    with pytest.raises(UnveilError, match=r"'base' chain comes back to itself \(a.json -> b.json -> a.json\)"):
        load_config(tmp_path / "a.json")
    (tmp_path / "self.json").write_text(json.dumps({"base": "self.json"}))
    with pytest.raises(UnveilError, match="comes back to itself"):
        load_config(tmp_path / "self.json")
    (tmp_path / "orphan.json").write_text(json.dumps({"base": "gone.json"}))
    with pytest.raises(UnveilError, match="its base 'gone.json' is not a file"):
        load_config(tmp_path / "orphan.json")
    with pytest.raises(UnveilError, match="'base' names a file"):
        parse_config({**tiny_config(faces), "base": "a.json"})
