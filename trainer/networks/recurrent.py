"""Recurrent blind completion: the blind U-Net that also sees its own previous output for the same face.

The previous completed crop of the track, warped into the current crop by the change of alignment (the runtime's
realtime.temporal.RecurrentStates does this), is three more input channels; on a track's first frame it is zeros.
Completing a hole that was completed a frame ago then starts from that completion, which makes the output
consistent over time by construction instead of by smoothing afterwards. The state is an explicit ONNX input and
output (`previous` -> `completed`, declared in the contract's `recurrent` field), as RobustVideoMatting does.

Training: short synthetic sequences from still faces (`synthetic_sequence`: small random similarity motion per
frame and a moving occluder), unrolled with the warped output fed back (`sequence_losses`: L1, mask BCE and a
temporal term on the known warps). Not trained or wired into the runtime yet; see docs/temporal/README.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

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
    from trainer.occlusion import composite, move_layer, paint_hand, paint_rect

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
        covered, mask = composite(frame, c, a)
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


def sequence_losses(network: RecurrentUNet, clean: torch.Tensor, occluded: torch.Tensor, masks: torch.Tensor,
                    changes: torch.Tensor, temporal_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """Unroll the network over N x T sequences (images N x T x 3 x S x S in [0, 1], masks N x T x 1 x S x S, changes
    N x T x 2 x 3), feeding back its warped output; mean L1 (hole weighted x6, as in the papers' hole/valid split),
    mask BCE, and the temporal term |(out_t - W out_t-1) - (clean_t - W clean_t-1)| inside the hole."""
    previous = None
    l1 = bce = temporal = clean.new_zeros(())
    steps = clean.shape[1]
    for t in range(steps):
        out = network(occluded[:, t], previous)
        hole = masks[:, t]
        l1 = l1 + ((out["image"] - clean[:, t]).abs() * (1.0 + 5.0 * hole)).mean()
        bce = bce + F.binary_cross_entropy_with_logits(out["mask_logits"], hole)
        if t > 0:
            moved_clean = warp_batch(clean[:, t - 1], changes[:, t])
            diff = (out["image"] - previous) - (clean[:, t] - moved_clean)  # previous = W out_t-1
            temporal = temporal + (diff.abs() * hole).sum() / (hole.sum() * 3.0 + 1.0)
        last_out = out["image"]
        if t + 1 < steps:
            previous = warp_batch(last_out, changes[:, t + 1])
    total = (l1 + bce + temporal_weight * temporal) / steps
    return {"total": total, "l1": l1 / steps, "mask_bce": bce / steps, "temporal": temporal / max(steps - 1, 1)}
