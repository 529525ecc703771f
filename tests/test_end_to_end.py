"""prepare -> train -> export -> parity -> the runtime completes a face in a frame with the exported model."""
from __future__ import annotations

import cv2
import numpy as np
import torch

from exporters.onnx_export import export_with_report
from face_dataset import make_face_dataset
from realtime.contract import read_contract
from realtime.frame import Frame
from realtime.pipeline import PipelineConfig, build_pipeline
from trainer.checkpoints import load_generator
from trainer.config import parse_config
from trainer.train import train

torch.set_num_threads(1)


def test_prepare_train_export_and_complete_a_face_in_a_frame(tmp_path, astronaut_bgr):
    faces = make_face_dataset(tmp_path, astronaut_bgr, crop_size=32, count=6)
    config = parse_config({
        "name": "e2e",
        "network": {"name": "unet", "args": {"blind": True, "crop_size": 32, "width": 8, "depth": 3}},
        "data": {"path": str(faces), "protocol": "rect", "batch_size": 2, "workers": 0, "val_size": 2},
        "phases": [{"name": "main", "steps": 4, "losses": [{"name": "l1_hole", "args": {"output": "fill"}}, {"name": "mask_bce"}]}],
        "log": {"checkpoint_every": 4, "val_every": 4, "sample_every": 4},
    })
    result = train(config, tmp_path / "run", progress=False)
    network, checkpoint = load_generator(result.checkpoint)
    model_path = tmp_path / "e2e.onnx"
    export = export_with_report(network, model_path, name="e2e", margin=checkpoint["data_meta"]["margin"],
                                exporter="torchscript")
    assert export.max_abs_diff < 1e-3
    assert read_contract(model_path).margin == checkpoint["data_meta"]["margin"]

    # The runtime, unchanged: detect -> track -> align -> find -> fill -> blend, on a frame with an occluder.
    image = astronaut_bgr.copy()
    cv2.rectangle(image, (170, 150), (260, 200), (255, 0, 255), -1)
    pipeline = build_pipeline(PipelineConfig(models=(str(model_path),), network="blind", provider="cpu", threads=1))
    try:
        frame = Frame(index=0, image=image)
        for stage in pipeline.stages:
            frame = stage.process(frame)
    finally:
        pipeline.close()
    assert len(frame.faces) == 1
    face = frame.faces[0]
    assert face.crop.shape == (32, 32, 3) and face.completed.shape == (32, 32, 3) and face.mask.shape == (32, 32)
    assert not face.mask[~face.region].any()   # the decision never leaves the face oval

    # What the runtime computed is what the trained torch network computes on the same aligned crop.
    rgb = torch.from_numpy(face.crop[..., ::-1].copy()).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        out = network(rgb)
    expected_bgr = (out["image"][0].permute(1, 2, 0).numpy()[..., ::-1] * 255.0).round().clip(0, 255)
    completed = pipeline.finder.run([face.crop]).images[0]
    assert np.abs(completed.astype(np.float32) - expected_bgr).max() <= 1.0
    assert np.abs(pipeline.finder.run([face.crop]).masks[0] - out["mask"][0, 0].numpy()).max() < 1e-3

    # Pixels the blend did not mean to replace are the input's, bit for bit.
    result = frame.result()
    assert result.shape == image.shape
    untouched = frame.replaced == 0 if frame.replaced is not None else np.ones(image.shape[:2], bool)
    assert np.array_equal(result[untouched], image[untouched])
