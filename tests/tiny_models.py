"""Tiny ONNX models that honour the Unveil model contract, built with onnx.helper (no torch, no training).

- blind: finds magenta pixels (R + B - 2G high) as the occlusion and fills them with the crop's mean colour.
- symmetry: takes a mask and fills it from the horizontally mirrored crop.
They let runtime tests exercise contract reading, batching, blending and the CLI with real onnxruntime sessions.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from realtime.contract import METADATA_KEY, ModelContract

OCCLUDER_BGR = (255, 0, 255)  # what the tiny blind model treats as an occluder


def _const(name: str, value) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, np.float32), name)


def _save(graph: onnx.GraphProto, contract: ModelContract, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="unveil-tests")
    model.ir_version = 8
    helper.set_model_props(model, {METADATA_KEY: contract.to_json()})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _image_info(name: str, size: int, channels: int = 3) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", channels, size, size])


def build_blind_model(path: Path, crop_size: int = 64, name: str = "tiny-blind", **contract_overrides) -> Path:
    nodes = [
        helper.make_node("Split", ["image", "split3"], ["r", "g", "b"], axis=1),
        helper.make_node("Add", ["r", "b"], ["rb"]),
        helper.make_node("Mul", ["g", "two"], ["g2"]),
        helper.make_node("Sub", ["rb", "g2"], ["score"]),
        helper.make_node("Sub", ["score", "threshold"], ["centred"]),
        helper.make_node("Mul", ["centred", "sharpness"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["mask"]),
        helper.make_node("ReduceMean", ["image"], ["fill"], axes=[2, 3], keepdims=1),
        helper.make_node("Sub", ["one", "mask"], ["keep"]),
        helper.make_node("Mul", ["image", "keep"], ["kept"]),
        helper.make_node("Mul", ["fill", "mask"], ["filled"]),
        helper.make_node("Add", ["kept", "filled"], ["completed"]),
    ]
    inits = [
        numpy_helper.from_array(np.array([1, 1, 1], np.int64), "split3"),
        _const("two", 2.0), _const("threshold", 1.2), _const("sharpness", 40.0), _const("one", 1.0),
    ]
    graph = helper.make_graph(
        nodes, "tiny_blind", [_image_info("image", crop_size)],
        [_image_info("completed", crop_size), _image_info("mask", crop_size, 1)], inits,
    )
    fields = dict(kind="blind_completion", crop_size=crop_size, inputs={"image": "image"},
                  outputs={"image": "completed", "mask": "mask"}, name=name)
    fields.update(contract_overrides)
    return _save(graph, ModelContract(**fields), path)


def build_symmetry_model(path: Path, crop_size: int = 64, name: str = "tiny-symmetry") -> Path:
    nodes = [
        helper.make_node("Slice", ["image", "starts", "ends", "axes", "steps"], ["flipped"]),
        helper.make_node("Sub", ["one", "mask"], ["keep"]),
        helper.make_node("Mul", ["image", "keep"], ["kept"]),
        helper.make_node("Mul", ["flipped", "mask"], ["filled"]),
        helper.make_node("Add", ["kept", "filled"], ["completed"]),
    ]
    big = np.iinfo(np.int64).max
    inits = [
        numpy_helper.from_array(np.array([-1], np.int64), "starts"),
        numpy_helper.from_array(np.array([-big], np.int64), "ends"),
        numpy_helper.from_array(np.array([3], np.int64), "axes"),
        numpy_helper.from_array(np.array([-1], np.int64), "steps"),
        _const("one", 1.0),
    ]
    graph = helper.make_graph(
        nodes, "tiny_symmetry", [_image_info("image", crop_size), _image_info("mask", crop_size, 1)],
        [_image_info("completed", crop_size)], inits,
    )
    contract = ModelContract(kind="symmetry_completion", crop_size=crop_size, inputs={"image": "image", "mask": "mask"},
                             outputs={"image": "completed"}, name=name)
    return _save(graph, contract, path)


def build_model_without_contract(path: Path, crop_size: int = 64) -> Path:
    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["out"])], "no_contract",
                              [_image_info("image", crop_size)], [_image_info("out", crop_size)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def build_change_model(path: Path, crop_size: int = 32, name: str = "tiny-change", threshold: float = 0.5) -> Path:
    """occlusion_change: "covered" where the crop differs from the reference (mean absolute channel difference
    above 0.15, a sharp sigmoid)."""
    nodes = [
        helper.make_node("Sub", ["image", "reference"], ["diff"]),
        helper.make_node("Abs", ["diff"], ["absdiff"]),
        helper.make_node("ReduceMean", ["absdiff"], ["change"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["change", "level"], ["centred"]),
        helper.make_node("Mul", ["centred", "sharpness"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["mask"]),
    ]
    graph = helper.make_graph(nodes, "tiny_change", [_image_info("image", crop_size), _image_info("reference", crop_size)],
                              [_image_info("mask", crop_size, 1)], [_const("level", 0.15), _const("sharpness", 60.0)])
    contract = ModelContract(kind="occlusion_change", crop_size=crop_size,
                             inputs={"image": "image", "reference": "reference"}, outputs={"mask": "mask"},
                             threshold=threshold, name=name)
    return _save(graph, contract, path)


def build_mask_model(path: Path, crop_size: int = 32, name: str = "tiny-mask") -> Path:
    """occlusion_mask: the tiny blind model's "covered" score (magenta-ish pixels), without the fill."""
    nodes = [
        helper.make_node("Split", ["image", "split3"], ["r", "g", "b"], axis=1),
        helper.make_node("Add", ["r", "b"], ["rb"]),
        helper.make_node("Mul", ["g", "two"], ["g2"]),
        helper.make_node("Sub", ["rb", "g2"], ["score"]),
        helper.make_node("Sub", ["score", "threshold"], ["centred"]),
        helper.make_node("Mul", ["centred", "sharpness"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["mask"]),
    ]
    inits = [numpy_helper.from_array(np.array([1, 1, 1], np.int64), "split3"),
             _const("two", 2.0), _const("threshold", 1.2), _const("sharpness", 40.0)]
    graph = helper.make_graph(nodes, "tiny_mask", [_image_info("image", crop_size)],
                              [_image_info("mask", crop_size, 1)], inits)
    contract = ModelContract(kind="occlusion_mask", crop_size=crop_size, inputs={"image": "image"},
                             outputs={"mask": "mask"}, threshold=0.5, name=name)
    return _save(graph, contract, path)
