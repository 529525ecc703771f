"""Recurrent blind completion: the blind U-Net that also sees its own previous output for the same face.

The previous completed crop of the track, warped into the current crop by the change of alignment (the runtime's
realtime.temporal.RecurrentStates does this), is three more input channels; on a track's first frame it is zeros.
Completing a hole that was completed a frame ago then starts from that completion, which makes the output
consistent over time by construction instead of by smoothing afterwards. The state is an explicit ONNX input and
output (`previous` -> `completed`, declared in the contract's `recurrent` field), as RobustVideoMatting does.

Training: short synthetic sequences from still faces (`synthetic_sequence`: small random similarity motion per
frame and a moving occluder), unrolled with the warped output fed back (`sequence_losses`: L1, mask BCE and a
temporal term on the known warps). `recurrent_c2fdan` is the same idea on the shipped blind model (C2FDAN lite),
warm-started from a blind checkpoint (`load_matching_weights`): the state's input channels start at zero, so at step
0 it is exactly the blind model. Sequence training: trainer/sequence_data.py and a config's `data.sequence`.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from realtime.errors import UnveilError

from trainer.networks.c2fdan import C2FDAN, both_stages, compose
from trainer.networks.unet import UNet, _down, _Up
from trainer.registry import NETWORKS

STATE_INPUT = "previous"      # ONNX input name of the state
STATE_OUTPUT_ROLE = "image"   # the output role fed back as the state on the next frame


@NETWORKS.register("recurrent_unet")
class RecurrentUNet(UNet):
    """UNet(blind=True) whose first layer and full-resolution skip also take the previous completion (3 channels)."""

    def __init__(self, crop_size: int = 128, width: int = 32, depth: int = 4):
        super().__init__(blind=True, crop_size=crop_size, width=width, depth=depth)
        self.state_inputs = (STATE_INPUT,)
        self.recurrent = {STATE_INPUT: STATE_OUTPUT_ROLE}  # state input -> output role it is fed back from
        in_channels = 6
        first_out = self.downs[0][0].out_channels
        self.downs[0] = _down(in_channels, first_out)
        head = self.to_mask.in_channels
        self.last = _Up(self.last.fuse[0].in_channels - 3, in_channels, head)

    def forward(self, image: torch.Tensor, previous: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if previous is None:
            previous = torch.zeros_like(image)  # a track's first frame
        x = torch.cat([image, previous], dim=1)
        y = self.decode(x)
        fill = (self.to_fill(y) + 1.0) * 0.5
        mask_logits = self.to_mask(y)
        mask = torch.sigmoid(mask_logits)
        out = (1.0 - mask) * image + mask * fill
        return {"image": out, "fill": fill, "mask": mask, "mask_logits": mask_logits}


def widen_input(conv: nn.Conv2d, extra: int) -> nn.Conv2d:
    """A copy of `conv` with `extra` more input channels appended, their weights zero: same output as before
    whatever the extra channels hold."""
    wide = nn.Conv2d(conv.in_channels + extra, conv.out_channels, conv.kernel_size, stride=conv.stride,
                     padding=conv.padding, dilation=conv.dilation, bias=conv.bias is not None)
    with torch.no_grad():
        wide.weight.zero_()
        wide.weight[:, : conv.in_channels] = conv.weight
        if conv.bias is not None:
            wide.bias.copy_(conv.bias)
    return wide


@NETWORKS.register("recurrent_c2fdan")
class RecurrentC2FDAN(C2FDAN):
    """C2FDAN whose coarse network (and, with fine_state, the fine network) also sees the previous completion.

    The state is appended as the last input channels of the first conv of each encoder (coarse: image ‖ previous;
    fine: coarse result ‖ mask ‖ previous), so a blind C2FDAN checkpoint loads with `load_matching_weights` and the
    new channels at zero: the same network, which sequence training then teaches to use the state.
    """

    def __init__(self, preset: str = "lite", crop_size: int | None = None, width: int | None = None,
                 fine_state: bool = True):
        super().__init__(preset, crop_size, width)
        self.state_inputs = (STATE_INPUT,)
        self.recurrent = {STATE_INPUT: STATE_OUTPUT_ROLE}  # state input -> output role it is fed back from
        self.fine_state = fine_state
        first = self.coarse.encoder.levels[0][0]       # conv_act: Sequential(conv, activation)
        first[0] = widen_input(first[0], 3)
        if fine_state:
            first = self.fine.encoder.levels[0][0]
            first[0] = widen_input(first[0], 3)

    def _state(self, image: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor:
        return torch.zeros_like(image) if previous is None else previous  # zeros: a track's first frame

    def forward_coarse(self, image: torch.Tensor, previous: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        previous = self._state(image, previous)
        coarse, mask = self.coarse(torch.cat([image, previous], dim=1))  # the coarse net signs every channel
        return {"coarse": coarse, "mask": mask, "image": compose(image, mask, coarse)}

    def forward(self, image: torch.Tensor, previous: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        previous = self._state(image, previous)
        first = self.forward_coarse(image, previous)
        fine = self.fine(first["image"], first["mask"], previous if self.fine_state else None)
        return both_stages(image, first, fine)


def load_matching_weights(network: nn.Module, source: dict[str, torch.Tensor]) -> dict[str, list[str]]:
    """Warm start from another network's state dict: every tensor of the same name and shape is copied; a conv
    weight that only has more input channels here gets the source's in its first channels and zeros in the rest
    (the recurrent state's). Returns the names copied, widened and left as initialised (not in the source or
    of another shape)."""
    own = network.state_dict()
    report: dict[str, list[str]] = {"copied": [], "widened": [], "kept": []}
    with torch.no_grad():
        for name, tensor in own.items():
            theirs = source.get(name)
            if theirs is not None and theirs.shape == tensor.shape:
                tensor.copy_(theirs)
                report["copied"].append(name)
            elif (theirs is not None and tensor.dim() == 4 and theirs.dim() == 4 and theirs.shape[0] == tensor.shape[0]
                  and theirs.shape[2:] == tensor.shape[2:] and theirs.shape[1] < tensor.shape[1]):
                tensor.zero_()
                tensor[:, : theirs.shape[1]] = theirs
                report["widened"].append(name)
            else:
                report["kept"].append(name)
    return report


class RecurrentExportWrapper(nn.Module):
    """Positional (image, previous) -> (completed, mask) for ONNX export; `completed` is also the next state."""

    def __init__(self, network: RecurrentUNet):
        super().__init__()
        self.network = network

    def forward(self, image: torch.Tensor, previous: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.network(image, previous)
        return out["image"], out["mask"]


# --- training on short synthetic sequences from still faces -------------------------------------------------------
@dataclass
class SyntheticSequence:
    """T frames of one aligned face moving a little, with an occluder moving over it (all crop-space, RGB)."""

    clean: np.ndarray      # (T, S, S, 3) uint8
    occluded: np.ndarray   # (T, S, S, 3) uint8
    masks: np.ndarray      # (T, S, S) float32, 1 = occluded
    changes: np.ndarray    # (T, 2, 3) warp from frame t-1's crop to frame t's (identity for t = 0)


def _similarity(shift: np.ndarray, angle_deg: float, zoom: float, size: int) -> np.ndarray:
    """2x3 similarity about the crop centre."""
    centre = (size - 1) / 2.0
    m = cv2.getRotationMatrix2D((centre, centre), angle_deg, 1.0 + zoom)
    m[:, 2] += shift
    return m


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a after b, both 2x3."""
    return (np.vstack([a, [0, 0, 1]]) @ np.vstack([b, [0, 0, 1]]))[:2]


def synthetic_sequence(face: np.ndarray, rng: np.random.Generator, length: int = 6, motion: float = 0.01,
                       occluder_speed: float = 0.04) -> SyntheticSequence:
    """A still aligned face (S x S x 3 uint8) turned into a short clip: the face drifts by a random walk of small
    similarities (what alignment leaves of real head motion, ~`motion` of the crop per frame) while a hand or a
    rectangle slides across it at ~`occluder_speed` of the crop per frame."""
    from trainer.occluders.layers import composite, move_layer
    from trainer.occluders.painters import paint_hand, paint_rect

    size = face.shape[0]
    alpha, colour = (paint_hand if rng.random() < 0.5 else paint_rect)(size, rng)
    velocity = rng.normal(0.0, 1.0, 2)
    velocity *= occluder_speed * size / max(np.linalg.norm(velocity), 1e-6)
    pose = _similarity(np.zeros(2), 0.0, 0.0, size)
    clean, occluded, masks, changes = [], [], [], []
    for t in range(length):
        change = np.array([[1.0, 0, 0], [0, 1.0, 0]]) if t == 0 else _similarity(
            rng.normal(0.0, motion * size, 2), rng.normal(0.0, 1.0), rng.normal(0.0, motion / 2), size)
        pose = _compose(change, pose)
        frame = cv2.warpAffine(face, pose, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        a, c = move_layer(alpha, colour, np.array([[1.0, 0, velocity[0] * t], [0, 1.0, velocity[1] * t]]))
        covered, mask = composite(frame, a, c)
        clean.append(frame)
        occluded.append(covered)
        masks.append(mask)
        changes.append(change)
    return SyntheticSequence(np.stack(clean), np.stack(occluded), np.stack(masks).astype(np.float32), np.stack(changes))


def warp_batch(images: torch.Tensor, changes: torch.Tensor) -> torch.Tensor:
    """Warp N x C x S x S crops of frame t-1 into frame t with N x 2 x 3 pixel-space warps (as cv2.warpAffine
    with border replication: output pixel p samples the input at change^-1 p)."""
    n, _, h, w = images.shape
    full = torch.cat([changes, torch.tensor([0.0, 0.0, 1.0]).expand(n, 1, 3).to(changes)], dim=1)
    inverse = torch.linalg.inv(full)[:, :2]
    ys, xs = torch.meshgrid(torch.arange(h, dtype=images.dtype), torch.arange(w, dtype=images.dtype), indexing="ij")
    points = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).reshape(1, -1, 3)          # 1 x HW x 3
    source = points @ inverse.to(images.dtype).transpose(1, 2)                               # N x HW x 2
    grid = torch.stack([2.0 * source[..., 0] / (w - 1) - 1.0, 2.0 * source[..., 1] / (h - 1) - 1.0], dim=-1)
    return F.grid_sample(images, grid.reshape(n, h, w, 2), mode="bilinear", padding_mode="border", align_corners=True)


def sequence_losses(network: nn.Module, clean: torch.Tensor, occluded: torch.Tensor, masks: torch.Tensor,
                    changes: torch.Tensor, temporal_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """A self-contained version of what trainer/train.py does with `data.sequence` (SequenceUnroll + registry losses).
    Unroll the network over N x T sequences (images N x T x 3 x S x S in [0, 1], masks N x T x 1 x S x S, changes
    N x T x 2 x 3), feeding back its warped output; mean L1 (hole weighted x6, as in the papers' hole/valid split),
    mask BCE, and the temporal term |(out_t - W out_t-1) - (clean_t - W clean_t-1)| inside the hole."""
    previous = None
    l1 = bce = temporal = clean.new_zeros(())
    steps = clean.shape[1]
    for t in range(steps):
        out = network(occluded[:, t], previous)
        hole = masks[:, t]
        l1 = l1 + ((out["image"] - clean[:, t]).abs() * (1.0 + 5.0 * hole)).mean()
        if "mask_logits" in out:
            bce = bce + F.binary_cross_entropy_with_logits(out["mask_logits"], hole)
        else:  # C2FDAN returns probabilities only
            bce = bce + F.binary_cross_entropy(out["mask"].clamp(1e-6, 1 - 1e-6), hole)
        if t > 0:
            moved_clean = warp_batch(clean[:, t - 1], changes[:, t])
            diff = (out["image"] - previous) - (clean[:, t] - moved_clean)  # previous = W out_t-1
            temporal = temporal + (diff.abs() * hole).sum() / (hole.sum() * 3.0 + 1.0)
        last_out = out["image"]
        if t + 1 < steps:
            previous = warp_batch(last_out, changes[:, t + 1])
    total = (l1 + bce + temporal_weight * temporal) / steps
    return {"total": total, "l1": l1 / steps, "mask_bce": bce / steps, "temporal": temporal / max(steps - 1, 1)}


# --- the sequence unroll, for trainer/train.py (its loss: trainer/losses/temporal.py) ------------------------------
class SequenceUnroll(nn.Module):
    """Runs a recurrent network over N x T sequences, feeding back its warped output, and returns every output
    flattened to (N*T) x ... in (sequence, time) order -- so the ordinary per-image losses and metrics apply -- plus
    "previous": the state it was fed at each step (zeros at t = 0)."""

    def __init__(self, network: nn.Module, method: str = "forward"):
        super().__init__()
        if not hasattr(network, "recurrent"):
            raise UnveilError(f"network {type(network).__name__} is not recurrent: sequence training needs one")
        self.network = network
        self.method = method
        (self.fed_back,) = network.recurrent.values()   # one state, fed back from this output role

    def forward(self, images: torch.Tensor, changes: torch.Tensor) -> dict[str, torch.Tensor]:
        steps = images.shape[1]
        previous = torch.zeros_like(images[:, 0])
        outputs: list[dict[str, torch.Tensor]] = []
        for t in range(steps):
            if t > 0:
                previous = warp_batch(outputs[-1][self.fed_back], changes[:, t])
            out = getattr(self.network, self.method)(images[:, t], previous)
            outputs.append({**out, "previous": previous})
        return {key: torch.stack([o[key] for o in outputs], dim=1).flatten(0, 1) for key in outputs[0]}
