"""SymmFCNet's losses (symmfcnet paper, Sec. III): face region, landmark flow, flow smoothness, illumination and
perceptual symmetry. fn(out, batch) -> scalar; batch: "input", "target", "mask" (N x 1 x S x S, 1 = occluded),
"landmarks" (N x K x 2 crop pixels of the clean face), optional "mirror_index" / "mirror_pairs", "face_region".
Each is 0 when the network runs without the symmetry stage (Table III's plain RecNet)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from trainer.networks.symmfcnet import (
    face_region_from_landmarks, flip_horizontal, mirror_index_for_batch, pixels_to_grid, warp_by_flow,
)
from trainer.registry import LOSSES


def zero_loss(out: dict) -> torch.Tensor:
    return out["image"].new_zeros(())


@LOSSES.register("symm_face_region")
def face_region_loss(out: dict, batch: dict) -> torch.Tensor:
    """L_fr = || F - F_gt ||^2 (mean), F_gt the landmarks' convex hull or batch["face_region"]."""
    if "face_mask" not in out:
        return zero_loss(out)
    face = out["face_mask"]
    target = batch.get("face_region")
    if target is None:
        target = face_region_from_landmarks(batch["landmarks"], face.shape[2], face.shape[3])
    return F.mse_loss(face, target.to(face))


@LOSSES.register("symm_landmark_flow")
def landmark_flow_loss(out: dict, batch: dict) -> torch.Tensor:
    """L_lm: the flow at face landmark k must point at the flipped position of its mirror twin.

    Pixel p_k of the face shows landmark k; in the flipped face landmark k (as a semantic point) sits at
    flip(p_mirror(k)). So identity + flow(p_k) = flip(p_mirror(k)). Mean squared error in normalised units.
    It is 0 for a mirror-symmetric landmark set with zero flow.
    """
    if "flow" not in out:
        return zero_loss(out)
    flow = out["flow"]
    height, width = flow.shape[2], flow.shape[3]
    points = pixels_to_grid(batch["landmarks"].to(flow), height, width)  # N x K x 2
    mirror = mirror_index_for_batch(batch, points.shape[1]).to(flow.device)
    target = points[:, mirror] * points.new_tensor([-1.0, 1.0])
    flow_at_points = F.grid_sample(flow, points.unsqueeze(1), mode="bilinear", align_corners=False)  # N x 2 x 1 x K
    moved = points + flow_at_points[:, :, 0].permute(0, 2, 1)
    return ((moved - target) ** 2).sum(-1).mean()


@LOSSES.register("symm_flow_tv")
def flow_tv_loss(out: dict, batch: dict) -> torch.Tensor:
    """L_TV: squared horizontal and vertical gradients of the flow (paper Eqn. 7), mean over pixels."""
    if "flow" not in out:
        return zero_loss(out)
    flow = out["flow"]
    dx = flow[:, :, :, 1:] - flow[:, :, :, :-1]
    dy = flow[:, :, 1:, :] - flow[:, :, :-1, :]
    return (dx ** 2).mean() + (dy ** 2).mean()


@LOSSES.register("symm_illumination")
def illumination_loss(out: dict, batch: dict) -> torch.Tensor:
    """L_l = ||(warp(flip(I)) * R - I) * F||^2 on the clean target I (paper Eqn. 10); F detached, mean per face pixel."""
    if "light" not in out:
        return zero_loss(out)
    target = batch["target"]
    warped_target = warp_by_flow(flip_horizontal(target), out["flow"])
    face = out["face_mask"].detach()
    error = ((warped_target * out["light"] - target) * face) ** 2
    return error.sum() / (face.sum() * target.shape[1] + 1e-6)


@LOSSES.register("symm_perceptual_symmetry")
def perceptual_symmetry_loss(out: dict, batch: dict) -> torch.Tensor:
    """L_s (paper Eqn. 13): RecNet's half-resolution decoder feature must match the flipped pass's feature
    warped by the (down-sampled) flow, on the face where RecNet generates (face * s2_mask). Training mode only."""
    if "rec_features" not in out or "flow" not in out:
        return zero_loss(out)
    features, features_flip = out["rec_features"], out["rec_features_flip"]
    size = features.shape[2:]
    flow = F.interpolate(out["flow"], size=size, mode="bilinear", align_corners=False)  # normalised units: no rescale
    weight = (F.interpolate(out["face_mask"], size=size, mode="bilinear", align_corners=False)
              * F.interpolate(out["s2_mask"], size=size, mode="bilinear", align_corners=False)).detach()
    error = ((features - warp_by_flow(features_flip, flow)) * weight) ** 2
    return error.sum() / (features.shape[1] * weight.sum() + 1e-6)
