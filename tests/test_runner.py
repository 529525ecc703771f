import json

import numpy as np
import pytest

from realtime.contract import METADATA_KEY, ModelContract, read_contract
from realtime.errors import ModelContractError, UnveilError
from realtime.runner import ModelRunner, choose_providers
from tests.tiny_models import OCCLUDER_BGR, build_blind_model, build_model_without_contract, build_symmetry_model


def test_contract_round_trip_and_validation():
    c = ModelContract(kind="blind_completion", crop_size=128, inputs={"image": "x"}, outputs={"image": "y", "mask": "m"})
    assert ModelContract.from_json(c.to_json()) == c
    bad = json.loads(c.to_json()) | {"kind": "colourise"}
    with pytest.raises(ModelContractError, match="unknown model kind"):
        ModelContract.from_json(json.dumps(bad))
    no_mask = json.loads(c.to_json()) | {"outputs": {"image": "y"}}
    with pytest.raises(ModelContractError, match="must output its predicted 'mask'"):
        ModelContract.from_json(json.dumps(no_mask))
    with pytest.raises(ModelContractError, match="not valid JSON"):
        ModelContract.from_json("{oops")


def test_blind_runner_batches_faces_and_finds_occluder(tmp_path):
    runner = ModelRunner(str(build_blind_model(tmp_path / "m.onnx", crop_size=32)), provider="cpu")
    assert runner.contract.crop_size == 32
    clean = np.full((32, 32, 3), (90, 120, 180), np.uint8)  # skin-like BGR
    occluded = clean.copy()
    occluded[8:16, 8:24] = OCCLUDER_BGR
    out = runner.run([clean, occluded])
    assert len(out.images) == 2 and out.images[0].dtype == np.uint8
    assert out.masks[0].max() < 0.01
    assert out.masks[1][8:16, 8:24].min() > 0.99 and out.masks[1][20:, :].max() < 0.01
    # the fill replaces magenta with the crop's mean colour: green channel rises, the untouched region stays the same
    assert out.images[1][10, 10, 1] > 20
    assert np.abs(out.images[1][20:].astype(int) - clean[20:].astype(int)).max() <= 1


def test_symmetry_runner_needs_mask_and_mirrors(tmp_path):
    runner = ModelRunner(str(build_symmetry_model(tmp_path / "s.onnx", crop_size=16)), provider="cpu")
    crop = np.zeros((16, 16, 3), np.uint8)
    crop[:, :8] = 200
    with pytest.raises(UnveilError, match="needs an occlusion mask"):
        runner.run([crop])
    mask = np.zeros((16, 16), np.float32)
    mask[:, 8:] = 1
    out = runner.run([crop], [mask])
    assert (out.images[0][:, 8:] == 200).all()


def test_model_without_contract_is_refused(tmp_path):
    path = build_model_without_contract(tmp_path / "plain.onnx")
    with pytest.raises(ModelContractError, match="no Unveil model contract"):
        read_contract(path)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model at all")
    with pytest.raises(ModelContractError, match="not a loadable ONNX model"):
        ModelRunner(str(garbage))
    with pytest.raises(ModelContractError, match="not found"):
        ModelRunner(str(tmp_path / "missing.onnx"))


def test_contract_naming_missing_tensor_is_refused(tmp_path):
    path = build_blind_model(tmp_path / "m.onnx", outputs={"image": "completed", "mask": "no_such_output"})
    with pytest.raises(ModelContractError, match="no_such_output"):
        ModelRunner(str(path))


def test_a_provider_fallback_is_told_once_for_all_models(tmp_path, caplog):
    import logging

    import onnxruntime as ort

    from realtime import runner as runner_module

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime build has CUDA: there is no fallback to report")
    runner_module._warned.clear()
    first, second = build_blind_model(tmp_path / "a.onnx"), build_blind_model(tmp_path / "b.onnx", crop_size=64)
    with caplog.at_level(logging.WARNING, logger="unveil"):
        ModelRunner(str(first), "cuda")
        ModelRunner(str(second), "cuda")
    warnings = [r for r in caplog.records if "cuda provider is not in this onnxruntime build" in r.getMessage()]
    assert len(warnings) == 1


def test_provider_fallback_explains_itself():
    providers, reason = choose_providers("cuda", ["CPUExecutionProvider"])
    assert providers == ["CPUExecutionProvider"] and "not in this onnxruntime build" in reason
    providers, reason = choose_providers("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"], device_id=1)
    assert providers[0] == ("CUDAExecutionProvider", {"device_id": 1}) and reason is None
    with pytest.raises(UnveilError, match="unknown provider"):
        choose_providers("npu", ["CPUExecutionProvider"])
