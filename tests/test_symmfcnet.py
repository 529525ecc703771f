"""SymmFCNet: shapes, warping, the one-half / both-half mask algebra, composition, ONNX parity, losses, metric."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from realtime.align import MESH_FIVE_POINTS
from realtime.errors import UnveilError
from trainer.losses.symmetry import (
    face_region_loss,
    flow_tv_loss,
    illumination_loss,
    landmark_flow_loss,
    perceptual_symmetry_loss,
)
from trainer.networks.symmfcnet import (
    TRAINING_PHASES,
    build_symmfcnet,
    flip_horizontal,
    mirror_landmark_index,
    mirror_landmark_pairs,
    phase_parameters,
    symmetry_consistency,
    symmetry_masks,
    warp_by_flow,
)
from trainer.registry import NETWORKS

torch.set_num_threads(1)
SIZE = 32  # the smallest crop the lite layout accepts (analysis / 4, then three halvings)


def tiny(size: int = SIZE, use_symmetry: bool = True) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_symmfcnet("lite", crop_size=size, width=4, use_symmetry=use_symmetry)


def square_mask(size: int, y0: int, y1: int, x0: int, x1: int, batch: int = 1) -> torch.Tensor:
    mask = torch.zeros(batch, 1, size, size)
    mask[:, :, y0:y1, x0:x1] = 1
    return mask


def symmetric_face(astronaut_bgr: np.ndarray, size: int) -> torch.Tensor:
    """A perfectly mirror-symmetric face: the astronaut's face crop with its left half mirrored onto the right."""
    rgb = cv2.cvtColor(astronaut_bgr[30:230, 140:340], cv2.COLOR_BGR2RGB)
    rgb = cv2.resize(rgb, (size, size), interpolation=cv2.INTER_AREA)
    rgb[:, size // 2:] = rgb[:, : size // 2][:, ::-1]
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255


def symmetric_landmarks(size: int, shift: float = 0.0, seed: int = 0) -> torch.Tensor:
    """(1, 468, 2) random face-mesh points, mirror-symmetric about the vertical line x = (size - 1) / 2 + shift."""
    rng = np.random.default_rng(seed)
    mirror = mirror_landmark_index()
    axis = (size - 1) / 2 + shift
    points = np.zeros((468, 2))
    for i in range(468):
        j = mirror[i]
        if i < j:
            points[i] = [rng.uniform(size * 0.2, axis - 1), rng.uniform(size * 0.2, size * 0.8)]
            points[j] = [2 * axis - points[i, 0], points[i, 1]]
        elif i == j:
            points[i] = [axis, rng.uniform(size * 0.2, size * 0.8)]
    return torch.from_numpy(points).float()[None]


def test_registered_builder_and_interface():
    network = NETWORKS.build("symmfcnet", preset="lite", crop_size=SIZE, width=4)
    assert network.contract_kind == "symmetry_completion"
    assert network.input_roles == ("image", "mask") and network.output_roles == ("image",)
    assert network.crop_size == SIZE
    assert build_symmfcnet("full", width=4).crop_size == 256
    with pytest.raises(UnveilError):
        build_symmfcnet("huge")
    with pytest.raises(UnveilError):
        build_symmfcnet("lite", crop_size=40)


def test_output_shapes_in_eval_and_training():
    network = tiny().eval()
    image, mask = torch.rand(2, 3, SIZE, SIZE), square_mask(SIZE, 4, 12, 4, 12, batch=2)
    with torch.no_grad():
        out = network(image, mask)
    shapes = {"image": 3, "warped_flip": 3, "stage1": 3, "flow": 2, "light": 3, "face_mask": 1, "confidence": 1}
    for key, channels in shapes.items():
        assert out[key].shape == (2, channels, SIZE, SIZE), key
    for key in ("face_mask", "confidence", "image"):
        assert out[key].min() >= 0 and out[key].max() <= 1, key
    assert "rec_features" not in out  # the flipped RecNet pass is training-only
    out = tiny().train()(image, mask)
    assert out["rec_features"].shape == out["rec_features_flip"].shape
    assert out["rec_features"].shape[-1] == SIZE // 4  # half of RecNet's working size (lite: unshuffled /2)


def test_zero_flow_warps_to_the_flipped_image():
    image = torch.rand(2, 3, SIZE, SIZE)
    flipped = flip_horizontal(image)
    assert torch.allclose(warp_by_flow(flipped, torch.zeros(2, 2, SIZE, SIZE)), flipped, atol=1e-6)
    # A fresh network starts at zero flow: its warped flip is the flipped occluded face.
    mask = square_mask(SIZE, 8, 16, 2, 10, batch=2)
    with torch.no_grad():
        out = tiny().eval()(image, mask)
    assert torch.count_nonzero(out["flow"]) == 0
    assert torch.allclose(out["warped_flip"], flip_horizontal(image * (1 - mask)), atol=1e-6)


def test_flow_is_in_normalised_units():
    image = torch.rand(1, 3, SIZE, SIZE)
    flow = torch.zeros(1, 2, SIZE, SIZE)
    flow[:, 0] = 2 * 3 / SIZE  # three pixels to the right
    warped = warp_by_flow(image, flow)
    assert torch.allclose(warped[..., : SIZE - 3], image[..., 3:], atol=1e-5)
    assert torch.all(warped[..., SIZE - 2:] == 0)  # sampled outside the image: zeros (paper Eqn. 4)


def test_mask_algebra_one_half_and_both_half(astronaut_bgr):
    face = symmetric_face(astronaut_bgr, SIZE)
    assert torch.equal(face, flip_horizontal(face))
    region = torch.ones(1, 1, SIZE, SIZE)
    no_flow = torch.zeros(1, 2, SIZE, SIZE)
    one_side = square_mask(SIZE, 8, 14, 4, 12)  # left eye only
    masks = symmetry_masks(one_side, region, no_flow)
    assert torch.equal(masks["one_half"], one_side)
    assert torch.count_nonzero(masks["both_half"]) == 0
    both_sides = square_mask(SIZE, 8, 14, 4, 28)  # both eyes
    masks = symmetry_masks(both_sides, region, no_flow)
    assert torch.equal(masks["both_half"], both_sides)
    assert torch.count_nonzero(masks["one_half"]) == 0
    outside = symmetry_masks(one_side, torch.zeros_like(region), no_flow)
    assert torch.equal(outside["background_hole"], one_side) and torch.count_nonzero(outside["one_half"]) == 0


def test_stage1_fills_a_one_half_hole_from_the_mirror(astronaut_bgr):
    face = symmetric_face(astronaut_bgr, SIZE)
    network = tiny().eval()
    with torch.no_grad():
        network.mask_net.head.bias.fill_(30.0)  # face region = everything
        out = network(face, square_mask(SIZE, 8, 14, 4, 12))
    assert torch.allclose(out["stage1"], face, atol=1e-5)  # zero flow, unit light: an exact mirror fill
    with torch.no_grad():
        out = network(face, square_mask(SIZE, 8, 14, 4, 28))
    hole = square_mask(SIZE, 8, 14, 4, 28).bool().expand_as(face)
    assert torch.all(out["stage1"][hole] == 0)  # both-half: nothing to copy, left to RecNet
    assert torch.all(out["s2_mask"][:, :, 8:14, 4:28] == 1)


def test_composition_leaves_unmasked_pixels_untouched():
    image = torch.rand(2, 3, SIZE, SIZE)
    mask = (torch.rand(2, 1, SIZE, SIZE) > 0.6).float()
    for network in (tiny(), tiny(use_symmetry=False)):
        with torch.no_grad():
            out = network.eval()(image, mask)
        keep = (mask == 0).expand_as(image)
        assert torch.equal(out["image"][keep], image[keep])
        assert not torch.equal(out["image"], image)  # the hole was filled with something else


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the TorchScript exporter (fast, opset 17) is deprecated
def test_onnx_export_matches_torch(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    network = tiny()
    with torch.no_grad():  # a non-trivial flow and light so warping is exercised
        network.flow_net.head.weight.normal_(0, 0.3)
        network.light_net.head.weight.normal_(0, 0.3)

    class ImageOnly(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.inner(image, mask)
            return out["image"], out["flow"]

    wrapped = ImageOnly(network).eval()
    path = tmp_path / "symmfcnet.onnx"
    names = ["input_image", "input_mask", "output_image", "output_flow"]
    torch.onnx.export(wrapped, (torch.rand(1, 3, SIZE, SIZE), square_mask(SIZE, 4, 12, 4, 12)), str(path),
                      input_names=names[:2], output_names=names[2:], opset_version=17, dynamo=False,
                      dynamic_axes={name: {0: "batch"} for name in names})
    wrapped.eval()  # export restores the wrapper's (training) mode
    assert "GridSample" in {node.op_type for node in onnx.load(str(path)).graph.node}
    image, mask = torch.rand(3, 3, SIZE, SIZE), (torch.rand(3, 1, SIZE, SIZE) > 0.7).float()
    with torch.no_grad():
        expected_image, expected_flow = wrapped(image, mask)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got_image, got_flow = session.run(None, {"input_image": image.numpy(), "input_mask": mask.numpy()})
    assert np.abs(expected_flow.numpy()).max() > 1e-3
    assert np.abs(got_image - expected_image.numpy()).max() < 1e-4
    assert np.abs(got_flow - expected_flow.numpy()).max() < 1e-4


def test_mirror_map_matches_mediapipe_topology():
    from mediapipe.python.solutions import face_mesh_connections as mesh

    mirror = mirror_landmark_index()
    assert np.array_equal(mirror[mirror], np.arange(468))
    left_eye = {i for edge in mesh.FACEMESH_LEFT_EYE for i in edge}
    right_eye = {i for edge in mesh.FACEMESH_RIGHT_EYE for i in edge}
    assert {int(mirror[i]) for i in left_eye} == right_eye
    (eye_a, eye_b), (eye_c, eye_d) = MESH_FIVE_POINTS[0], MESH_FIVE_POINTS[1]
    assert {int(mirror[eye_a]), int(mirror[eye_b])} == {eye_c, eye_d}
    assert mirror[MESH_FIVE_POINTS[3][0]] == MESH_FIVE_POINTS[4][0] and mirror[1] == 1
    assert len(mirror_landmark_pairs()) == 220


def test_landmark_loss_zero_only_for_a_mirrored_configuration():
    flow = torch.zeros(1, 2, SIZE, SIZE)
    symmetric = {"landmarks": symmetric_landmarks(SIZE)}
    assert landmark_flow_loss({"flow": flow}, symmetric).item() < 1e-10
    shifted_flow = flow.clone()
    shifted_flow[:, 0] = 0.1
    assert landmark_flow_loss({"flow": shifted_flow}, symmetric).item() > 1e-3
    asymmetric = {"landmarks": symmetric["landmarks"] + torch.randn(1, 468, 2)}
    assert landmark_flow_loss({"flow": flow}, asymmetric).item() > 1e-4
    # A face off-centre by d pixels: its flip lands 2d pixels to the left, and the matching flow zeroes the loss.
    off_centre = {"landmarks": symmetric_landmarks(SIZE, shift=2.0)}
    assert landmark_flow_loss({"flow": flow}, off_centre).item() > 1e-3
    matching = flow.clone()
    matching[:, 0] = -2 * 4.0 / SIZE
    assert landmark_flow_loss({"flow": matching}, off_centre).item() < 1e-10


def test_landmark_loss_on_the_prepared_69_point_subset():
    from trainer.prepare import LANDMARK_INDICES

    subset = {"landmarks": symmetric_landmarks(SIZE)[:, list(LANDMARK_INDICES)]}  # mirror taken from trainer.prepare
    flow = torch.zeros(1, 2, SIZE, SIZE)
    assert landmark_flow_loss({"flow": flow}, subset).item() < 1e-10
    flow[:, 1] = 0.05
    assert landmark_flow_loss({"flow": flow}, subset).item() > 1e-4
    with pytest.raises(UnveilError):
        landmark_flow_loss({"flow": flow}, {"landmarks": torch.zeros(1, 7, 2)})


def test_training_losses_are_finite_and_reach_their_modules():
    network = tiny().train()
    target = torch.rand(2, 3, SIZE, SIZE)
    mask = square_mask(SIZE, 4, 14, 4, 12, batch=2)
    batch = {"input": target * (1 - mask), "target": target, "mask": mask,
             "landmarks": symmetric_landmarks(SIZE).expand(2, -1, -1)}
    out = network(batch["input"], mask)
    losses = {fn.__name__: fn(out, batch) for fn in (face_region_loss, landmark_flow_loss, flow_tv_loss,
                                                      illumination_loss, perceptual_symmetry_loss)}
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    assert losses["face_region_loss"] > 0 and losses["illumination_loss"] > 0
    losses["perceptual_symmetry_loss"].backward(retain_graph=True)
    assert network.rec_net.enc1[0].weight.grad.abs().sum() > 0
    losses["face_region_loss"].backward()
    assert network.mask_net.head.weight.grad.abs().sum() > 0
    plain = tiny(use_symmetry=False).train()
    plain_out = plain(batch["input"], mask)
    assert landmark_flow_loss(plain_out, batch).item() == 0 and perceptual_symmetry_loss(plain_out, batch).item() == 0


def test_phase_parameters_freeze_stage1_in_the_reconstruction_phase():
    network = tiny()
    trained = phase_parameters(network, "reconstruction")
    assert set(TRAINING_PHASES) == {"symmetry", "reconstruction", "end_to_end"}
    assert all(not p.requires_grad for p in network.flow_net.parameters())
    assert all(p.requires_grad for p in network.rec_net.parameters())
    assert len(trained) == len(list(network.rec_net.parameters())) + len(list(network.confidence_net.parameters()))
    with pytest.raises(UnveilError):
        phase_parameters(network, "warmup")


def test_symmetry_consistency_metric(astronaut_bgr):
    size = 64
    face = symmetric_face(astronaut_bgr, size)[0]
    mask = square_mask(size, 20, 30, 10, 26)[0]
    assert symmetry_consistency(face, mask) < 1e-6
    broken = face.clone()
    broken[:, 20:30, 10:26] = 1.0 - broken[:, 20:30, 10:26]
    assert symmetry_consistency(broken, mask) > 0.1
    # An off-centre symmetric face: the plain flip sees asymmetry, landmark alignment does not.
    shift = 4
    moved = torch.roll(face, shifts=shift, dims=2)
    moved_mask = torch.roll(mask, shifts=shift, dims=2)
    landmarks = symmetric_landmarks(size, shift=shift)[0]
    assert symmetry_consistency(moved, moved_mask, landmarks) < 0.02
    assert symmetry_consistency(moved, moved_mask) > 2 * symmetry_consistency(moved, moved_mask, landmarks)


@pytest.mark.parametrize("name", ["symmfcnet_lite_cpu", "symmfcnet_lite_recnet_cpu"])
def test_shipped_cpu_configs_train_what_their_phases_name(name, tmp_path):
    """Every phase's trainable prefixes exist in the network; the symmetry phase trains only Stage I; the ablation
    twin gives RecNet as many steps (phases 2 + 3) and the same reconstruction losses."""
    from pathlib import Path

    from trainer.config import load_config

    folder = Path(__file__).resolve().parents[1] / "trainer" / "configs"
    config = load_config(folder / f"{name}.json", data_path=tmp_path)
    assert config.data.protocol == "symmetry" and not config.discriminators
    args = {**config.network.args, "crop_size": SIZE, "width": 4}
    names = [n for n, _ in build_symmfcnet(**args).named_parameters()]
    for phase in config.phases:
        for prefix in phase.trainable:
            assert any(n.startswith(prefix) for n in names), (phase.name, prefix)
    if name == "symmfcnet_lite_cpu":
        first = config.phases[0]
        assert first.name == "symmetry" and not any(p.startswith("rec_net") for p in first.trainable)
        assert {item.name for item in first.losses} == set(TRAINING_PHASES["symmetry"]["losses"])
    else:
        twin = load_config(folder / "symmfcnet_lite_cpu.json", data_path=tmp_path)
        assert config.network.args["use_symmetry"] is False
        assert config.total_steps == sum(p.steps for p in twin.phases[1:])
        reconstruction = {(i.name, i.weight) for i in twin.phases[1].losses if not i.name.startswith("symm_")}
        assert all({(i.name, i.weight) for i in p.losses} == reconstruction for p in config.phases)


def test_a_guided_recnet_warm_started_from_a_plain_one_starts_as_that_network():
    from trainer.networks.recurrent import load_matching_weights

    torch.manual_seed(0)
    plain = tiny().eval()
    with torch.no_grad():  # a non-trivial flow and light, so the guide is not just the flipped image
        plain.flow_net.head.weight.normal_(0, 0.3)
        plain.light_net.head.weight.normal_(0, 0.3)
    guided = build_symmfcnet("lite", crop_size=SIZE, width=4, rec_guide=True).eval()
    report = load_matching_weights(guided, plain.state_dict())
    assert report["widened"] == ["rec_net.enc1.0.weight"]
    image, mask = torch.rand(2, 3, SIZE, SIZE), (torch.rand(2, 1, SIZE, SIZE) > 0.7).float()
    with torch.no_grad():
        assert torch.allclose(guided(image, mask)["image"], plain(image, mask)["image"], atol=1e-6)
        guided.rec_net.enc1[0].weight[:, -8:].normal_(0, 0.3)  # the guide's channels do reach the output
        assert not torch.allclose(guided(image, mask)["image"], plain(image, mask)["image"], atol=1e-3)
    with pytest.raises(UnveilError, match="rec_guide needs the symmetry stage"):
        build_symmfcnet("lite", crop_size=SIZE, width=4, use_symmetry=False, rec_guide=True)
