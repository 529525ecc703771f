"""The recurrent blind network: it uses its previous output, exports with the state as ONNX input/output, and the
runtime feeds zeros on a track's first frame, then the state warped by the change of alignment."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from exporters.onnx_export import export_graph, write_contract
from realtime.contract import ModelContract
from realtime.frame import Face
from realtime.runner import ModelRunner
from realtime.temporal import RecurrentStates, TemporalConfig
from trainer.networks.recurrent import STATE_INPUT, RecurrentExportWrapper, RecurrentUNet
from trainer.registry import NETWORKS

torch.set_num_threads(1)
S = 32


def small_network() -> RecurrentUNet:
    torch.manual_seed(0)
    return NETWORKS.build("recurrent_unet", crop_size=S, width=4, depth=2).eval()


def test_output_depends_on_the_previous_completion() -> None:
    net = small_network()
    image = torch.rand(2, 3, S, S)
    with torch.no_grad():
        first = net(image)
        again = net(image, torch.zeros_like(image))
        other = net(image, torch.rand_like(image))
    assert first["image"].shape == (2, 3, S, S) and first["mask"].shape == (2, 1, S, S)
    torch.testing.assert_close(first["image"], again["image"])          # no state = zeros
    assert (other["fill"] - first["fill"]).abs().max() > 1e-4             # the state reaches the fill


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> str:
    net = small_network()
    path = tmp_path_factory.mktemp("recurrent") / "recurrent.onnx"
    inputs = (torch.rand(2, 3, S, S), torch.rand(2, 3, S, S))
    export_graph(RecurrentExportWrapper(net), inputs, path, ["image", STATE_INPUT], ["completed", "mask"], 17, "torchscript")
    write_contract(path, ModelContract(kind="blind_completion", crop_size=S, inputs={"image": "image"},
                                       outputs={"image": "completed", "mask": "mask"},
                                       recurrent={STATE_INPUT: "completed"}, name="recurrent-test"))
    return str(path)


def face(track_id: int, dx: float, crop: np.ndarray) -> Face:
    return Face(box=np.zeros(4, np.float32), score=1.0, track_id=track_id,
                matrix=np.array([[1.0, 0.0, dx], [0.0, 1.0, 0.0]]), crop=crop)


def test_runtime_feeds_zeros_first_then_the_warped_state(exported: str) -> None:
    runner = ModelRunner(exported, provider="cpu")
    assert runner.contract.recurrent == {STATE_INPUT: "completed"}
    crop = np.random.default_rng(0).integers(0, 256, (S, S, 3), dtype=np.uint8)
    states = RecurrentStates(TemporalConfig())
    faces = [face(0, 0.0, crop)]
    assert states.states_for(faces, 0) == [None]                   # first frame: the runner feeds zeros
    out = runner.run([crop], states=states.states_for(faces, 0))
    assert out.states is not None and out.states[0][STATE_INPUT].shape == (1, 3, S, S)
    states.remember(faces, out.states, 0)

    moved = [face(0, 2.0, crop)]                                    # the alignment moved 2 px right
    (fed,) = states.states_for(moved, 1)
    previous = out.states[0][STATE_INPUT]
    np.testing.assert_allclose(fed[STATE_INPUT][..., 4:], previous[..., 2:-2], atol=1e-5)
    assert states.states_for([face(1, 0.0, crop)], 1) == [None]     # another track starts from zeros
    assert states.states_for(moved, 9) == [None]                    # too long a gap: start again
    with_state = runner.run([crop], states=[fed]).images[0]
    without = runner.run([crop]).images[0]
    assert np.abs(with_state.astype(int) - without.astype(int)).max() > 0  # the fed-back state is used


def test_warp_batch_matches_opencv() -> None:
    from trainer.networks.recurrent import warp_batch

    image = np.random.default_rng(3).random((S, S, 3)).astype(np.float32)
    change = cv2.getRotationMatrix2D((10.0, 12.0), 7.0, 1.05)
    change[:, 2] += (1.5, -2.0)
    expected = cv2.warpAffine(image, change, (S, S), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    got = warp_batch(torch.from_numpy(image).permute(2, 0, 1)[None], torch.from_numpy(change).float()[None])
    # OpenCV interpolates with 1/32-step fixed-point weights: up to ~0.02 off on this noise, ~0.005 on average
    diff = np.abs(got[0].permute(1, 2, 0).numpy()[4:-4, 4:-4] - expected[4:-4, 4:-4])
    assert diff.max() < 0.03 and diff.mean() < 0.006


def smooth_face(size: int) -> np.ndarray:
    rng = np.random.default_rng(4)
    return cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (0, 0), 3.0)


def test_synthetic_sequence_moves_face_and_occluder_with_known_warps() -> None:
    from trainer.networks.recurrent import synthetic_sequence

    seq = synthetic_sequence(smooth_face(S), np.random.default_rng(5), length=4)
    assert seq.clean.shape == (4, S, S, 3) and seq.masks.shape == (4, S, S) and seq.changes.shape == (4, 2, 3)
    np.testing.assert_array_equal(seq.masks > 0, (seq.occluded != seq.clean).any(axis=3))
    for t in range(1, 4):
        predicted = cv2.warpAffine(seq.clean[t - 1], seq.changes[t], (S, S), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        inner = (slice(6, -6), slice(6, -6))
        assert np.abs(predicted[inner].astype(float) - seq.clean[t][inner]).mean() < 4.0
    assert not np.array_equal(seq.masks[0], seq.masks[-1])  # the occluder moves


def test_a_few_training_steps_lower_the_sequence_loss() -> None:
    from trainer.networks.recurrent import sequence_losses, synthetic_sequence

    rng = np.random.default_rng(6)
    seqs = [synthetic_sequence(smooth_face(S), rng, length=3) for _ in range(2)]
    to_tensor = lambda key: torch.from_numpy(np.stack([getattr(s, key) for s in seqs]))
    clean = to_tensor("clean").permute(0, 1, 4, 2, 3).float() / 255.0
    occluded = to_tensor("occluded").permute(0, 1, 4, 2, 3).float() / 255.0
    masks = to_tensor("masks")[:, :, None]
    changes = to_tensor("changes").float()
    net = small_network().train()
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        parts = sequence_losses(net, clean, occluded, masks, changes)
        assert set(parts) == {"total", "l1", "mask_bce", "temporal"}
        optimiser.zero_grad()
        parts["total"].backward()
        optimiser.step()
        losses.append(parts["total"].item())
    assert losses[-1] < losses[0]


def tiny_c2fdans():
    from trainer.networks.c2fdan import C2FDAN
    from trainer.networks.recurrent import RecurrentC2FDAN

    torch.manual_seed(2)
    return C2FDAN("lite", crop_size=S, width=4).eval(), NETWORKS.build("recurrent_c2fdan", crop_size=S, width=4).eval()


def test_recurrent_c2fdan_warm_started_from_a_blind_one_is_that_blind_network() -> None:
    from trainer.networks.recurrent import load_matching_weights

    blind, recurrent = tiny_c2fdans()
    image, state = torch.rand(2, 3, S, S), torch.rand(2, 3, S, S)
    with torch.no_grad():
        before = recurrent(image, state)["image"]
        report = load_matching_weights(recurrent, blind.state_dict())
        expected, got = blind(image), recurrent(image, state)
    assert report["widened"] == ["coarse.encoder.levels.0.0.0.weight", "fine.encoder.levels.0.0.0.weight"]
    assert report["kept"] == [] and len(report["copied"]) == len(blind.state_dict()) - 2
    assert (before - expected["image"]).abs().max() > 1e-3                 # a random init was not already equal
    for key in ("image", "mask", "coarse", "fine", "coarse_image"):
        torch.testing.assert_close(got[key], expected[key])              # whatever the state holds
    with torch.no_grad():  # once the state's weights move off zero, the state changes the output
        recurrent.coarse.encoder.levels[0][0][0].weight[:, 3:] += 0.3
        assert (recurrent(image, state)["image"] - expected["image"]).abs().max() > 1e-3


def test_sequence_unroll_feeds_back_the_warped_output_and_flattens_time() -> None:
    from trainer.networks.recurrent import SequenceUnroll, warp_batch

    _, recurrent = tiny_c2fdans()
    images = torch.rand(2, 3, 3, S, S)
    changes = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).repeat(2, 3, 1, 1)
    changes[:, 1:, 0, 2] = 2.0                                            # 2 px right per frame
    with torch.no_grad():
        out = SequenceUnroll(recurrent)(images, changes)
        direct = recurrent(images[1:2, 2], out["previous"][5:6])         # sequence 1, frame 2
    assert out["image"].shape == (6, 3, S, S) and out["mask"].shape == (6, 1, S, S)
    assert out["previous"][0].abs().max() == 0 and out["previous"][3].abs().max() == 0   # t = 0: zeros
    torch.testing.assert_close(out["previous"][1], warp_batch(out["image"][0:1], changes[0, 1:2])[0])
    torch.testing.assert_close(out["image"][5:6], direct["image"])


@pytest.mark.parametrize("kind", ["bar", "subtitle", "hand", "rect", "static"])
def test_sequence_occluders_move_with_known_face_warps(kind: str) -> None:
    from trainer.occlusion import OcclusionSynth
    from trainer.sequence_data import SequenceConfig, flatten_sequences, make_sequence

    size = 64
    synth = OcclusionSynth("mix", size, colour_order="rgb")
    config = SequenceConfig(length=4, speed=(0.04, 0.06))
    rng = np.random.default_rng(8)
    seq = None
    for _ in range(20):  # a "static" draw of the mix protocol may be a clean face; take one with an occluder
        seq = make_sequence(smooth_face(size), rng, config, kind=kind, static_synth=synth)
        if seq.masks[0].mean() > 0.01:
            break
    assert seq.kind == kind and seq.occluded.shape == (4, size, size, 3)
    np.testing.assert_array_equal(seq.masks > 0, (seq.occluded != seq.clean).any(axis=3))
    assert all(m.mean() > 0.005 for m in seq.masks)
    moved = np.abs(seq.masks[0] - seq.masks[-1]).sum()
    assert moved > 20.0                                                   # every kind moves, with the face or alone
    batch = {"input": torch.from_numpy(seq.occluded).permute(0, 3, 1, 2)[None].float() / 255,
             "target": torch.from_numpy(seq.clean).permute(0, 3, 1, 2)[None].float() / 255,
             "mask": torch.from_numpy(seq.masks)[None, :, None], "changes": torch.from_numpy(seq.changes)[None]}
    flat = flatten_sequences(batch)
    assert flat["input"].shape == (4, 3, size, size) and flat["has_previous"].flatten().tolist() == [0, 1, 1, 1]
    inner = (slice(None), slice(None), slice(8, -8), slice(8, -8))
    assert (flat["target_previous"][1:] - flat["target"][1:])[inner].abs().mean() < 4.0 / 255  # W clean_t-1 ~ clean_t


def test_sequence_losses_take_c2fdan_outputs_and_reach_the_zero_state_weights() -> None:
    from trainer.networks.recurrent import sequence_losses, synthetic_sequence

    _, recurrent = tiny_c2fdans()
    with torch.no_grad():
        recurrent.coarse.encoder.levels[0][0][0].weight[:, 3:] = 0.0   # as after a warm start
    seq = synthetic_sequence(smooth_face(S), np.random.default_rng(9), length=3)
    tensor = lambda a: torch.from_numpy(a)[None]
    parts = sequence_losses(recurrent.train(), tensor(seq.clean).permute(0, 1, 4, 2, 3).float() / 255,
                            tensor(seq.occluded).permute(0, 1, 4, 2, 3).float() / 255, tensor(seq.masks)[:, :, None],
                            tensor(seq.changes).float())
    assert all(torch.isfinite(v) for v in parts.values())
    parts["total"].backward()
    grad = recurrent.coarse.encoder.levels[0][0][0].weight.grad
    assert grad[:, 3:].abs().sum() > 0          # the state's weights start at zero but do learn
