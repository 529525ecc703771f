"""`unveil eval-symmetry` with tiny ONNX models on a tiny dataset: rows, runtime wiring, decision rule, Fig. 6 grid."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import cv2

from realtime.errors import UnveilError
from realtime.runner import ModelRunner
from tests.tiny_datasets import face_crops, write_dataset
from tests.tiny_models import build_blind_model, build_symmetry_model
from trainer import evaluate_symmetry as es
from trainer import metrics
from trainer.data import FaceStore, OccludedFaces
from trainer.networks.symmfcnet import build_symmfcnet

torch.set_num_threads(1)
SIZE = 64


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, astronaut_bgr) -> Path:
    crops, points = face_crops(astronaut_bgr, 10, SIZE, seed=3)
    out = tmp_path_factory.mktemp("evalsym") / "ds"
    return write_dataset(out, crops, points, identities=[str(i) for i in range(10)], val_fraction=0.5)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {"blind": build_blind_model(folder / "blind.onnx", SIZE),
            "symmetry": build_symmetry_model(folder / "symmetry.onnx", SIZE),  # fills the hole with the mirror image
            "recnet": build_symmetry_model(folder / "recnet.onnx", SIZE, name="tiny-recnet")}


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    es.add_arguments(parser)
    return es.run(parser.parse_args(argv))


def test_end_to_end_rows_tables_and_mirror_fill(dataset, models, tmp_path, capsys):
    out_json, out_md = tmp_path / "ab.json", tmp_path / "ab.md"
    argv = ["--data", str(dataset), "--blind", str(models["blind"]), "--symmetry", str(models["symmetry"]),
            "--recnet", str(models["recnet"]), "--protocol", "half,centre", "--limit", "4",
            "--json", str(out_json), "--markdown", str(out_md), "--per-face"]
    assert run_cli(argv) == 0
    assert "blind+symmetry as the default mode" in capsys.readouterr().out
    report = json.loads(out_json.read_text())
    assert set(report["protocols"]) == {"half", "centre"} and report["rows"] == list(es.ROWS)
    store = FaceStore(dataset)
    dataset_half = OccludedFaces(store, "val", "half", fixed=True, flip=False)
    faces = report["protocols"]["half"]["faces"]
    assert len(faces) == 4 and {f["kind"] for f in faces} == {"half"}
    for i, face in enumerate(faces):
        clean, occ, _, _ = dataset_half.example(i)
        # the tiny symmetry model fills the hole with the mirror image; a one-half hole's twin is visible and clean
        mirrored = occ.image * (1 - occ.mask[..., None]) + occ.image[:, ::-1] * occ.mask[..., None]
        expected = metrics.psnr(metrics.images_to_tensor([np.round(mirrored).astype(np.uint8)]),
                                metrics.images_to_tensor([clean]), metrics.masks_to_tensor([occ.mask]))
        assert face["symmfcnet"]["psnr_hole"] == pytest.approx(float(expected), abs=0.05)
        assert face["recnet"]["psnr_hole"] == pytest.approx(face["symmfcnet"]["psnr_hole"])
        assert set(face) >= set(es.ROWS) | {"ground_truth", "blind_mask_iou"}
    summary = report["protocols"]["half"]["summary"]["overall"]
    assert summary["symmfcnet"]["psnr_hole"] == pytest.approx(np.mean([f["symmfcnet"]["psnr_hole"] for f in faces]))
    text = out_md.read_text()
    assert "## Protocol `half`" in text and "## Protocol `centre`" in text and es.ROW_TITLES["blind+symmetry"] in text
    assert run_cli(argv[:-1]) == 0  # without --per-face the JSON keeps only the summaries
    assert "faces" not in json.loads(out_json.read_text())["protocols"]["half"]


def test_blind_symmetry_row_is_the_runtime_infer_stage(models):
    """blind+symmetry feeds the symmetry model the blind model's completion and the region the blend will paste."""
    blind, symmetry = ModelRunner(str(models["blind"]), "cpu"), ModelRunner(str(models["symmetry"]), "cpu")
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (SIZE, SIZE, 3)).astype(np.uint8) for _ in range(2)]
    crops[0][10:30, 5:25] = (255, 0, 255)  # magenta: the tiny blind model's occluder colour
    completed, masks = es.runtime_blind_symmetry(blind, symmetry, crops)
    found = blind.run(crops)
    grow = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))  # 2 % of a 64 px crop: one pixel
    holes = [cv2.dilate((m >= 0.5).astype(np.uint8), grow).astype(np.float32) for m in found.masks]
    expected = symmetry.run(found.images, holes)
    for got, want, mask, want_mask in zip(completed, expected.images, masks, found.masks):
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(mask, want_mask)
    assert masks[0][15, 10] > 0.5 and not np.array_equal(completed[0], crops[0])


def test_decision_rule_needs_a_clear_half_gain_without_a_centre_loss():
    def summaries(half_gain: float, centre_hole: float, centre_whole: float) -> dict:
        def entry(blind: tuple[float, float], both: tuple[float, float]) -> dict:
            return {"overall": {"blind": {"psnr": blind[0], "psnr_hole": blind[1]},
                                "blind+symmetry": {"psnr": both[0], "psnr_hole": both[1]}}}
        return {"half": entry((25, 15), (25, 15 + half_gain)), "centre": entry((22, 14), (22 + centre_whole, 14 + centre_hole))}

    assert es.recommend_default(summaries(1.0, 0.0, 0.0))[0]
    assert not es.recommend_default(summaries(0.2, 0.0, 0.0))[0]
    assert not es.recommend_default(summaries(2.0, -0.5, 0.0))[0]
    assert not es.recommend_default(summaries(2.0, 0.0, -0.3))[0]
    assert not es.recommend_default({"half": summaries(1.0, 0, 0)["half"]})[0]


def test_symmetry_score_is_zero_for_a_mirror_symmetric_fill():
    rng = np.random.default_rng(1)
    left = rng.integers(0, 256, (SIZE, SIZE // 2, 3)).astype(np.uint8)
    symmetric = np.ascontiguousarray(np.concatenate([left, left[:, ::-1]], axis=1))
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[20:40, 10:25] = 1
    from trainer.prepare import landmark_mirror
    mirror = landmark_mirror()
    points = rng.uniform(8, SIZE - 8, (len(mirror), 2)).astype(np.float32)
    for i, j in enumerate(mirror):  # an exactly mirror-symmetric landmark set: twin j sits at the flip of i
        if i < j:
            points[j] = (SIZE - 1 - points[i][0], points[i][1])
        elif i == j:
            points[i][0] = (SIZE - 1) / 2
    scores = es.symmetry_scores([symmetric, rng.integers(0, 256, (SIZE, SIZE, 3)).astype(np.uint8)], [mask, mask],
                                [points, points], mirror)
    assert scores[0] < 0.02 and scores[1] > 0.1


def test_figure_columns_show_the_stages(dataset, tmp_path):
    net = build_symmfcnet("lite", crop_size=SIZE, width=4)
    checkpoint = tmp_path / "last.pt"
    config = {"network": {"name": "symmfcnet", "args": {"preset": "lite", "crop_size": SIZE, "width": 4}}}
    torch.save({"model": net.state_dict(), "config": config}, checkpoint)
    out = es.figure(es.symmetry_network(checkpoint, ""), dataset, tmp_path / "fig6.png", count=3)
    grid = cv2.imread(str(out))
    tile = SIZE + 4
    assert grid.shape == (18 + 3 * tile, len(es.FIGURE_COLUMNS) * tile, 3)
    store = FaceStore(dataset)
    examples = OccludedFaces(store, "val", "half", fixed=True, flip=False)
    for row in range(3):
        clean, occ, _, _ = examples.example(row)
        y = 18 + row * tile + 2

        def cell(column: int) -> np.ndarray:
            return grid[y:y + SIZE, column * tile + 2:column * tile + 2 + SIZE]

        np.testing.assert_array_equal(cell(4), clean[..., ::-1])  # ground truth (the grid is BGR)
        np.testing.assert_array_equal(cell(0), occ.image[..., ::-1])
        visible = occ.mask == 0
        np.testing.assert_array_equal(cell(3)[visible], clean[..., ::-1][visible])  # final keeps visible pixels
    plain = tmp_path / "plain.pt"
    torch.save({"model": build_symmfcnet("lite", crop_size=SIZE, width=4, use_symmetry=False).state_dict(),
                "config": {"network": {"name": "symmfcnet", "args": {"preset": "lite", "crop_size": SIZE, "width": 4,
                                                                     "use_symmetry": False}}}}, plain)
    with pytest.raises(UnveilError, match="symmetry stage"):
        es.symmetry_network(plain, "")


def test_bad_inputs_raise_clear_errors(dataset, models):
    with pytest.raises(UnveilError, match="kind 'symmetry_completion'"):
        run_cli(["--data", str(dataset), "--blind", str(models["blind"]), "--symmetry", str(models["blind"])])
    with pytest.raises(UnveilError, match="does not hold symmfcnet weights"):  # the tiny model is no symmfcnet
        run_cli(["--data", str(dataset), "--blind", str(models["blind"]), "--symmetry", str(models["symmetry"]),
                 "--limit", "2", "--figure", "x.png"])
    with pytest.raises(UnveilError, match="unknown protocol"):
        run_cli(["--data", str(dataset), "--blind", str(models["blind"]), "--symmetry", str(models["symmetry"]),
                 "--protocol", "halves"])


@pytest.mark.slow
def test_the_torch_network_is_rebuilt_from_the_symmetry_onnx_file(dataset, tmp_path):
    from exporters.onnx_export import export_network

    torch.manual_seed(0)
    net = build_symmfcnet("lite", crop_size=SIZE, width=4).eval()
    path = tmp_path / "symm.onnx"
    export_network(net, path, exporter="torchscript")
    rebuilt = es.symmetry_network(None, str(path))
    image, mask = torch.rand(2, 3, SIZE, SIZE), (torch.rand(2, 1, SIZE, SIZE) > 0.8).float()
    with torch.no_grad():
        assert torch.allclose(rebuilt(image, mask)["image"], net(image, mask)["image"], atol=1e-5)


def test_stage_one_analysis_with_zero_flow_and_unit_light_is_the_plain_mirror(dataset):
    torch.manual_seed(0)
    net = build_symmfcnet("lite", crop_size=SIZE, width=4).eval()  # flow and light heads start at zero
    result = es.stage_one_analysis(net, dataset, count=5)
    assert result["faces"] > 0 and 0 < result["one-half share"] <= 1
    # the one-half part is where the mirror twin is visible: there the warped flip is the mirrored ground truth
    assert result["warped flip"] == pytest.approx(result["mirror, no flow"], abs=1e-3)
    assert all(result[row] is not None for row in es.STAGE_ONE_ROWS)
    assert "| final |" in es.format_stage_one(result)
