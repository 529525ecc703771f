"""SymmFCNet: symmetry-consistent face completion (symmfcnet paper), filling a hole given by an external mask.

At runtime the blind network finds the occlusion and this network fills it from the face's other half: Stage I warps
the flipped face onto the face with an illumination correction (paper Eqn. 4-10), Stage II (RecNet) generates what
neither half shows. Here too: the face mesh's mirror map, the warping and mask algebra (shared with the losses in
trainer/losses/symmetry.py), the paper's training phases and the symmetry metric.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from realtime.errors import UnveilError
from trainer.registry import NETWORKS


# ----------------------------------------------------------------------------------------------------------------
# Presets
# ----------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SymmFCNetConfig:
    crop_size: int
    width: int            # RecNet base channels
    sub_width: int        # MaskNet / FlowNet / LightNet base channels
    rec_blocks: int       # multi-dilated residual blocks in RecNet's bottleneck
    sub_levels: int       # down-sampling levels of the Stage-I sub-networks
    analysis_scale: int   # Stage-I sub-networks run at crop_size / analysis_scale (flow, light, face are smooth)
    rec_unshuffle: int = 1   # RecNet works on pixel-unshuffled input (space-to-depth) by this factor: the CPU preset's
                             # way to keep full-resolution output at a quarter of the convolution cost
    flow_limit: float = 0.5  # largest displacement, normalised units (0.5 = a quarter of the crop)
    rec_guide: bool = False  # beyond the paper: RecNet also sees the illumination-corrected warped flip and the flow
                             # confidence everywhere, not only where Stage I composited it (one-half holes)


PRESETS: dict[str, SymmFCNetConfig] = {
    # 128 x 128, CPU real time.
    "lite": SymmFCNetConfig(crop_size=128, width=16, sub_width=8, rec_blocks=4, sub_levels=3, analysis_scale=4,
                            rec_unshuffle=2),
    # 256 x 256, GPU.
    "full": SymmFCNetConfig(crop_size=256, width=48, sub_width=32, rec_blocks=8, sub_levels=4, analysis_scale=2),
}


# ----------------------------------------------------------------------------------------------------------------
# Mirror map of the mediapipe face mesh (468 points)
# ----------------------------------------------------------------------------------------------------------------

# Mesh points on the face's mid-line (their own mirror). In mediapipe's canonical face model
# (modules/face_geometry/data/canonical_face_model.obj) vertices 0..247 are the mid-line and one half (x < 0),
# and vertices 248..467 are the other half (x > 0) listed in the same order as the x < 0 ones.
MESH_MIDLINE: tuple[int, ...] = (
    0, 1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 94, 151, 152, 164, 168, 175, 195, 197, 199, 200,
)
MESH_POINTS = 468
MESH_FIRST_SECOND_HALF = 248


def mirror_landmark_index(num_points: int = MESH_POINTS) -> np.ndarray:
    """(468,) int array: index of each face-mesh point's mirror twin (an involution; mid-line points map to themselves)."""
    if num_points != MESH_POINTS:
        raise UnveilError(f"the face-mesh mirror map is defined for {MESH_POINTS} points, not {num_points}")
    index = np.arange(MESH_POINTS)
    midline = set(MESH_MIDLINE)
    first_half = [i for i in range(MESH_FIRST_SECOND_HALF) if i not in midline]
    for k, i in enumerate(first_half):
        index[i] = MESH_FIRST_SECOND_HALF + k
        index[MESH_FIRST_SECOND_HALF + k] = i
    return index


def mirror_landmark_pairs() -> list[tuple[int, int]]:
    """The 220 (i, j) mirror pairs of the face mesh, i < j (mid-line points are not listed)."""
    index = mirror_landmark_index()
    return [(int(i), int(j)) for i, j in enumerate(index) if i < j]


def mirror_index_from_pairs(pairs: list[tuple[int, int]] | np.ndarray, num_points: int) -> np.ndarray:
    """Mirror pairs -> (num_points,) mirror index; points in no pair are their own mirror."""
    index = np.arange(num_points)
    for i, j in np.asarray(pairs, dtype=np.int64).reshape(-1, 2):
        index[i], index[j] = j, i
    return index


def mirror_index_for_batch(batch: dict, num_points: int) -> torch.Tensor:
    """The batch's mirror map ("mirror_index" or "mirror_pairs"), else the full face mesh's (468 points) or
    the prepared datasets' (trainer.prepare.LANDMARK_INDICES, 69 points)."""
    if "mirror_index" in batch:
        index = torch.as_tensor(batch["mirror_index"], dtype=torch.long)
        return index[0] if index.dim() == 2 else index  # a collated batch repeats it per sample
    if "mirror_pairs" in batch:
        pairs = torch.as_tensor(batch["mirror_pairs"]).reshape(-1, 2).cpu().numpy()
        return torch.from_numpy(mirror_index_from_pairs(pairs, num_points))
    if num_points == MESH_POINTS:
        return torch.from_numpy(mirror_landmark_index())
    from trainer.prepare import LANDMARK_INDICES, landmark_mirror  # the prepared datasets' 69-point subset

    if num_points == len(LANDMARK_INDICES):
        return torch.from_numpy(landmark_mirror())
    raise UnveilError(f"batch has {num_points} landmarks and no 'mirror_index' / 'mirror_pairs' to mirror them")


# ----------------------------------------------------------------------------------------------------------------
# Warping and the mask algebra (pure functions, shared by the network, the losses and the tests)
# ----------------------------------------------------------------------------------------------------------------

def flip_horizontal(x: torch.Tensor) -> torch.Tensor:
    return torch.flip(x, dims=[3])


def identity_grid(height: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """(1, H, W, 2) grid of pixel centres in normalised coordinates (align_corners=False)."""
    xs = (torch.arange(width, device=like.device, dtype=like.dtype) * 2 + 1) / width - 1
    ys = (torch.arange(height, device=like.device, dtype=like.dtype) * 2 + 1) / height - 1
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y], dim=-1).unsqueeze(0)


def warp_by_flow(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample `image` (N, C, H, W) at identity + flow (N, 2, H, W, normalised units); zeros outside (paper Eqn. 4)."""
    grid = identity_grid(flow.shape[2], flow.shape[3], flow) + flow.permute(0, 2, 3, 1)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def symmetry_masks(hole: torch.Tensor, face: torch.Tensor, flow: torch.Tensor) -> dict[str, torch.Tensor]:
    """The paper's one-half / both-half algebra. hole: 1 = occluded; face: 1 = face region; all N x 1 x H x W.

    Returns warped_visible (the mirror-twin pixel is visible), one_half (fill from the other half),
    both_half (missing on both halves: generate), background_hole (missing outside the face).
    """
    return symmetry_masks_from_visibility(hole, face, warp_by_flow(flip_horizontal(1 - hole), flow))


def symmetry_masks_from_visibility(hole: torch.Tensor, face: torch.Tensor, warped_visible: torch.Tensor) -> dict[str, torch.Tensor]:
    """symmetry_masks() given the already warped visibility of the flipped face (1 - flipped hole)."""
    one_half = hole * warped_visible * face
    both_half = hole * face * (1 - one_half)
    background_hole = hole * (1 - face)
    return {"warped_visible": warped_visible, "one_half": one_half, "both_half": both_half,
            "background_hole": background_hole}


def pixels_to_grid(points: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(..., 2) crop pixel coordinates (pixel centres at integers) -> normalised coordinates (align_corners=False)."""
    scale = points.new_tensor([width, height])
    return (points * 2 + 1) / scale - 1


# ----------------------------------------------------------------------------------------------------------------
# Building blocks
# ----------------------------------------------------------------------------------------------------------------

def conv_lrelu(in_ch: int, out_ch: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_ch, out_ch, 3, stride, padding=dilation, dilation=dilation),
                         nn.LeakyReLU(0.2, inplace=True))


def upsample2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class SymmetryUNet(nn.Module):
    """Small U-Net shared by MaskNet, FlowNet and LightNet (paper Table V, narrowed): strided encoder,
    a dilated bottleneck (dilations 1..4 concatenated as in the paper), bilinear-upsampling decoder with skips."""

    def __init__(self, in_ch: int, out_ch: int, width: int, levels: int):
        super().__init__()
        channels = [width * min(2 ** i, 8) for i in range(levels + 1)]
        self.stem = conv_lrelu(in_ch, channels[0])
        self.down = nn.ModuleList(
            nn.Sequential(conv_lrelu(channels[i], channels[i + 1], stride=2), conv_lrelu(channels[i + 1], channels[i + 1]))
            for i in range(levels)
        )
        deep = channels[-1]
        self.dilated = nn.ModuleList(conv_lrelu(deep, deep // 4, dilation=d) for d in (1, 2, 3, 4))
        self.fuse = conv_lrelu(deep, deep)
        self.up = nn.ModuleList(conv_lrelu(channels[i + 1] + channels[i], channels[i]) for i in reversed(range(levels)))
        self.head = nn.Conv2d(channels[0], out_ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = skips.pop()
        y = self.fuse(torch.cat([branch(y) for branch in self.dilated], dim=1))
        for up in self.up:
            y = up(torch.cat([upsample2(y), skips.pop()], dim=1))
        return self.head(y)


def zero_init(conv: nn.Conv2d) -> nn.Conv2d:
    """Start a head at zero output: identity flow, unit illumination ratio."""
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class SpectralNormConv2d(nn.Conv2d):
    """Conv2d with spectral normalisation (weight / largest singular value, one power iteration per training step).

    Unlike torch's parametrization (whose eval path uses aten::vdot, which ONNX cannot export), sigma is kept
    in a buffer: training updates it, eval divides by it, so the exported graph is a plain Conv.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, dilation: int = 1):
        super().__init__(in_ch, out_ch, kernel, stride, padding=dilation * (kernel // 2), dilation=dilation)
        self.register_buffer("u", F.normalize(torch.randn(out_ch), dim=0))
        self.register_buffer("sigma", torch.ones(()))
        with torch.no_grad():
            for _ in range(10):  # a sensible sigma before the first training step
                self.power_iteration()

    def power_iteration(self) -> torch.Tensor:
        """One power-iteration step; returns sigma (differentiable w.r.t. the weight) and stores it."""
        matrix = self.weight.flatten(1)
        with torch.no_grad():
            v = F.normalize(matrix.T @ self.u, dim=0)
            u = F.normalize(matrix @ v, dim=0)
            self.u.copy_(u)
        sigma = (u * (matrix @ v)).sum()  # u, v are constants here, as in torch's spectral_norm
        self.sigma.copy_(sigma.detach())
        return sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sigma = self.power_iteration() if self.training else self.sigma
        return self._conv_forward(x, self.weight / sigma, self.bias)


def sn_conv(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, dilation: int = 1) -> nn.Module:
    return SpectralNormConv2d(in_ch, out_ch, kernel, stride, dilation)


class MultiDilatedResBlock(nn.Module):
    """Residual block whose 3x3 conv is split into parallel dilations 1, 2, 4, 8 (multi-dilated conv), then fused."""

    DILATIONS = (1, 2, 4, 8)

    def __init__(self, channels: int):
        super().__init__()
        branch = channels // len(self.DILATIONS)
        self.branches = nn.ModuleList(sn_conv(channels, branch, dilation=d) for d in self.DILATIONS)
        self.fuse = sn_conv(branch * len(self.DILATIONS), channels, kernel=1)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act(torch.cat([b(x) for b in self.branches], dim=1))
        return x + self.fuse(y)


class RecNet(nn.Module):
    """Generative reconstruction: encoder (/4), multi-dilated residual blocks, decoder with skips; spectral norm
    on every conv. Input: stage1 RGB, s2_mask, hole mask. Returns (completion, the decoder feature one level
    above the output: the paper's Omega_1, half the working resolution).

    unshuffle > 1: the input is pixel-unshuffled (space-to-depth) and the output pixel-shuffled back, so every
    layer runs at 1/unshuffle resolution while the output keeps full resolution."""

    GUIDE_CHANNELS = 4  # warped flip x light (RGB) + flow confidence

    def __init__(self, width: int, blocks: int, unshuffle: int = 1, guide: bool = False):
        super().__init__()
        w1, w2, w4 = width, width * 2, width * 4
        self.unshuffle = unshuffle
        # guide channels come last, so a guided RecNet warm-starts from a plain one (widened input, zeros)
        inputs = 5 + (self.GUIDE_CHANNELS if guide else 0)
        self.enc1 = nn.Sequential(sn_conv(inputs * unshuffle ** 2, w1), nn.LeakyReLU(0.2))
        self.enc2 = nn.Sequential(sn_conv(w1, w2, stride=2), nn.LeakyReLU(0.2))
        self.enc3 = nn.Sequential(sn_conv(w2, w4, stride=2), nn.LeakyReLU(0.2))
        self.blocks = nn.Sequential(*[MultiDilatedResBlock(w4) for _ in range(blocks)])
        # Decoder: narrow with a 1x1 conv before up-sampling and add the skip (cheaper than concatenating).
        self.reduce2 = sn_conv(w4, w2, kernel=1)
        self.dec2 = nn.Sequential(sn_conv(w2, w2), nn.LeakyReLU(0.2))
        self.reduce1 = sn_conv(w2, w1, kernel=1)
        self.dec1 = nn.Sequential(sn_conv(w1, w1), nn.LeakyReLU(0.2))
        self.out = sn_conv(w1, 3 * unshuffle ** 2)

    def forward(self, stage1: torch.Tensor, s2_mask: torch.Tensor, hole: torch.Tensor,
                guide: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        parts = [stage1 * 2 - 1, s2_mask, hole] + ([guide * 2 - 1] if guide is not None else [])
        x = torch.cat(parts, dim=1)
        e1 = self.enc1(F.pixel_unshuffle(x, self.unshuffle) if self.unshuffle > 1 else x)
        e2 = self.enc2(e1)
        y = self.blocks(self.enc3(e2))
        features = self.dec2(upsample2(self.reduce2(y)) + e2)  # the paper's Omega_1 (half resolution)
        y = self.dec1(upsample2(self.reduce1(features)) + e1)
        y = self.out(y)
        return torch.sigmoid(F.pixel_shuffle(y, self.unshuffle) if self.unshuffle > 1 else y), features


class ConfidenceNet(nn.Module):
    """C = Fc(dx, dy): three convs on the flow's motion vectors, sigmoid to [0, 1] (paper Eqn. 11)."""

    def __init__(self, width: int):
        super().__init__()
        self.layers = nn.Sequential(conv_lrelu(2, width), conv_lrelu(width, width), nn.Conv2d(width, 1, 3, padding=1))

    def forward(self, flow: torch.Tensor) -> torch.Tensor:
        """Logits; the caller applies the sigmoid (after up-sampling)."""
        return self.layers(flow)


# ----------------------------------------------------------------------------------------------------------------
# The network
# ----------------------------------------------------------------------------------------------------------------

class SymmFCNet(nn.Module):
    """On the aligned crop I and hole mask H (1 = occluded), with I_o = I * (1 - H):

    Stage I: MaskNet -> face region F; FlowNet -> flow Phi, where each face pixel's mirror twin lies in the flipped
    face; LightNet -> per-pixel RGB illumination ratio R; ConfidenceNet -> confidence C from Phi.
    stage1 = (warp(flip(I_o)) * R) * one_half + I_o * (1 - one_half), one_half from symmetry_masks (paper Table I).
    Stage II: RecNet completes stage1 where s2_mask = both_half + one_half * (1 - C) + background_hole says it must
    generate (the stated meaning of the paper's M_s2, whose formula's conventions do not close); the output keeps the
    unoccluded pixels, (1 - H) * I + H * completion. In training RecNet also runs on the flipped inputs, for the
    perceptual symmetry loss. use_symmetry=False is Table III's plain RecNet on (I_o, H).

    Deviations from the paper, for a real-time runtime: Stage I runs at 1/analysis_scale of the crop, narrower than
    Table V and without BatchNorm; FlowNet also sees H and its flip; LightNet sees the warped flip; RecNet also sees H
    (the lite preset's on a pixel-unshuffled input); the landmark loss is written with the mirror map. The flow is in
    grid_sample's normalised units (the image spans [-1, 1]), whatever resolution it is predicted at.
    """

    contract_kind = "symmetry_completion"
    input_roles = ("image", "mask")
    output_roles = ("image",)

    def __init__(self, config: SymmFCNetConfig, use_symmetry: bool = True):
        super().__init__()
        multiple = math.lcm(config.analysis_scale * 2 ** config.sub_levels, 4 * config.rec_unshuffle)
        if config.crop_size % multiple:
            raise UnveilError(f"crop_size {config.crop_size} must be a multiple of {multiple} for this preset")
        self.config = config
        self.crop_size = config.crop_size
        self.use_symmetry = use_symmetry
        if config.rec_guide and not use_symmetry:
            raise UnveilError("symmfcnet rec_guide needs the symmetry stage (use_symmetry=true)")
        self.rec_net = RecNet(config.width, config.rec_blocks, config.rec_unshuffle, guide=config.rec_guide)
        if use_symmetry:
            self.mask_net = SymmetryUNet(4, 1, config.sub_width, config.sub_levels)
            self.flow_net = SymmetryUNet(8, 2, config.sub_width, config.sub_levels)
            self.light_net = SymmetryUNet(8, 3, config.sub_width, config.sub_levels)
            zero_init(self.flow_net.head)
            zero_init(self.light_net.head)
            self.confidence_net = ConfidenceNet(config.sub_width)

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        """Down-sample to the Stage-I sub-networks' resolution."""
        s = self.config.analysis_scale
        return x if s == 1 else F.avg_pool2d(x, s)

    def synthesis(self, x: torch.Tensor) -> torch.Tensor:
        s = self.config.analysis_scale
        return x if s == 1 else F.interpolate(x, scale_factor=float(s), mode="bilinear", align_corners=False)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        hole = mask
        occluded = image * (1 - hole)
        if not self.use_symmetry:
            return self.reconstruct(image, hole, stage1=occluded, s2_mask=hole, extras={})

        occluded_flip = flip_horizontal(occluded)
        hole_flip = flip_horizontal(hole)
        # Ops are merged where they can be (one resize for face + flow, one grid_sample for image + visibility,
        # one resize for light + confidence): on a CPU the lite preset's cost is as much op count as FLOPs.
        face_logit = self.mask_net(self.analysis(torch.cat([occluded, hole], 1)))
        flow_small = self.config.flow_limit * torch.tanh(
            self.flow_net(self.analysis(torch.cat([occluded, occluded_flip, hole, hole_flip], 1))))
        face_flow = self.synthesis(torch.cat([face_logit, flow_small], 1))
        face, flow = torch.sigmoid(face_flow[:, :1]), face_flow[:, 1:]
        warped = warp_by_flow(torch.cat([occluded_flip, 1 - hole_flip], 1), flow)
        warped_flip = warped[:, :3]
        masks = symmetry_masks_from_visibility(hole, face, warped[:, 3:])
        light_in = torch.cat([occluded, warped_flip, hole, masks["warped_visible"]], 1)
        light_confidence = self.synthesis(torch.cat([self.light_net(self.analysis(light_in)),
                                                     self.confidence_net(flow_small)], 1))
        light = 2 * torch.sigmoid(light_confidence[:, :3])  # ratio in (0, 2), 1 at init
        confidence = torch.sigmoid(light_confidence[:, 3:])

        one_half = masks["one_half"]
        stage1 = (warped_flip * light).clamp(0, 1) * one_half + occluded * (1 - one_half)
        s2_mask = (masks["both_half"] + one_half * (1 - confidence) + masks["background_hole"]).clamp(0, 1)
        extras = {"warped_flip": warped_flip, "flow": flow, "light": light, "face_mask": face,
                  "confidence": confidence, "one_half": one_half, "both_half": masks["both_half"]}
        guide = torch.cat([(warped_flip * light).clamp(0, 1), confidence], 1) if self.config.rec_guide else None
        return self.reconstruct(image, hole, stage1, s2_mask, extras, guide)

    def reconstruct(self, image: torch.Tensor, hole: torch.Tensor, stage1: torch.Tensor, s2_mask: torch.Tensor,
                    extras: dict[str, torch.Tensor], guide: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Stage II. In training, RecNet also sees the flipped inputs (one batched call) for the symmetry loss."""
        if self.training:
            both = self.rec_net(torch.cat([stage1, flip_horizontal(stage1)]),
                                torch.cat([s2_mask, flip_horizontal(s2_mask)]),
                                torch.cat([hole, flip_horizontal(hole)]),
                                None if guide is None else torch.cat([guide, flip_horizontal(guide)]))
            n = image.shape[0]
            completion, features, features_flip = both[0][:n], both[1][:n], both[1][n:]
            extras = {**extras, "rec_features": features, "rec_features_flip": features_flip}
        else:
            completion, _ = self.rec_net(stage1, s2_mask, hole, guide)
        final = (1 - hole) * image + hole * completion
        return {"image": final, "completion": completion, "stage1": stage1, "s2_mask": s2_mask, **extras}


@NETWORKS.register("symmfcnet")
def build_symmfcnet(preset: str = "lite", crop_size: int | None = None, width: int | None = None,
                    use_symmetry: bool = True, rec_guide: bool = False) -> SymmFCNet:
    """The registered builder. `width` scales RecNet and, proportionally, the Stage-I sub-networks."""
    if preset not in PRESETS:
        raise UnveilError(f"unknown symmfcnet preset {preset!r} (expected one of {', '.join(PRESETS)})")
    base = PRESETS[preset]
    sub_width = base.sub_width if width is None else max(2, width * base.sub_width // base.width)
    config = SymmFCNetConfig(
        crop_size=crop_size or base.crop_size, width=width or base.width, sub_width=sub_width,
        rec_blocks=base.rec_blocks, sub_levels=base.sub_levels, analysis_scale=base.analysis_scale,
        flow_limit=base.flow_limit, rec_unshuffle=base.rec_unshuffle, rec_guide=rec_guide,
    )
    if config.width % 2:
        raise UnveilError(f"symmfcnet width must be even, got {config.width}")
    return SymmFCNet(config, use_symmetry=use_symmetry)


# ----------------------------------------------------------------------------------------------------------------
# Training schedule
# ----------------------------------------------------------------------------------------------------------------

# The paper's trade-off weights (Sec. IV-A) for the symmetry losses (trainer/losses/symmetry.py).
PAPER_LOSS_WEIGHTS: dict[str, float] = {
    "symm_face_region": 5.0, "symm_landmark_flow": 10.0, "symm_flow_tv": 1.0,
    "symm_illumination": 10.0, "symm_perceptual_symmetry": 100.0,
}

# The paper's phases (Sec. IV-A: Adam lr 2e-4, beta1 0.5, batch 4, lr x0.1 when the validation reconstruction loss
# stops decreasing); "end_to_end" is Eqn. 19. Its perceptual terms need a pretrained VGG-Face, not available here:
# the shipped configs use SSIM instead.
TRAINING_PHASES: dict[str, dict] = {
    "symmetry": {"epochs": 10, "train": ("mask_net", "flow_net", "light_net", "confidence_net"),
                 "losses": ("symm_face_region", "symm_landmark_flow", "symm_flow_tv", "symm_illumination")},
    "reconstruction": {"epochs": 20, "train": ("rec_net", "confidence_net"),
                       "losses": ("reconstruction", "adversarial", "symm_perceptual_symmetry")},
    "end_to_end": {"epochs": None, "train": ("mask_net", "flow_net", "light_net", "confidence_net", "rec_net"),
                   "losses": ("symm_face_region", "symm_landmark_flow", "symm_flow_tv", "symm_illumination",
                              "reconstruction", "adversarial", "symm_perceptual_symmetry")},
}


def phase_parameters(model: SymmFCNet, phase: str) -> list[nn.Parameter]:
    """Parameters trained in `phase`; the others get requires_grad=False (frozen, as the paper's phase 2)."""
    if phase not in TRAINING_PHASES:
        raise UnveilError(f"unknown training phase {phase!r} (expected one of {', '.join(TRAINING_PHASES)})")
    trained = set(TRAINING_PHASES[phase]["train"])
    params = []
    for name, module in model.named_children():
        on = name in trained
        for p in module.parameters():
            p.requires_grad_(on)
        if on:
            params.extend(module.parameters())
    return params


# ----------------------------------------------------------------------------------------------------------------
# The face region and the symmetry metric
# ----------------------------------------------------------------------------------------------------------------

def face_region_from_landmarks(landmarks: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Ground-truth face region: filled convex hull of the landmarks (paper Sec. III-A1). -> N x 1 x H x W."""
    regions = np.zeros((landmarks.shape[0], 1, height, width), np.float32)
    for n, points in enumerate(landmarks.detach().cpu().numpy()):
        hull = cv2.convexHull(np.round(points).astype(np.int32))
        cv2.fillConvexPoly(regions[n, 0], hull, 1.0)
    return torch.from_numpy(regions).to(landmarks.device)


def mirror_affine(landmarks: torch.Tensor, mirror: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Least-squares 2x3 affine (normalised units) taking each landmark to the flipped position of its twin:
    the model-free face-to-flipped-face correspondence used by the metric."""
    points = pixels_to_grid(landmarks.to(torch.float64), height, width)
    target = points[mirror] * points.new_tensor([-1.0, 1.0])
    design = torch.cat([points, torch.ones_like(points[:, :1])], dim=1)  # K x 3
    solution = torch.linalg.lstsq(design, target).solution  # 3 x 2
    return solution.T


def symmetry_consistency(image: torch.Tensor, mask: torch.Tensor, landmarks: torch.Tensor | None = None,
                         mirror: torch.Tensor | None = None) -> float:
    """Symmetry error of a completed face, inside the hole (lower is better, 0 = the filled pixels equal their
    mirror twins). image 3 x S x S or N x 3 x S x S in [0, 1], mask (N x) 1 x S x S (1 = was occluded),
    landmarks (N x) K x 2 crop pixels of the face or None.

    Mirror correspondence: with landmarks, an affine fitted to landmark -> flipped mirror twin (robust to a
    face that is not centred or slightly turned; the filled-in region is restricted to the landmarks' convex
    hull, where symmetry holds); without, a plain horizontal flip of the aligned crop. The score is the mean
    absolute RGB difference between each filled pixel and its twin, averaged over the batch.
    """
    if image.dim() == 3:
        image, mask = image.unsqueeze(0), mask.unsqueeze(0)
        landmarks = None if landmarks is None else landmarks.unsqueeze(0)
    image, mask = image.float(), mask.float()
    n, _, height, width = image.shape
    flipped = flip_horizontal(image)
    if landmarks is None:
        twin, region = flipped, mask
    else:
        mirror = mirror_index_for_batch({}, landmarks.shape[1]) if mirror is None else mirror
        theta = torch.stack([mirror_affine(lm, mirror, height, width) for lm in landmarks]).float()
        grid = F.affine_grid(theta, list(image.shape), align_corners=False)
        twin = F.grid_sample(flipped, grid, mode="bilinear", padding_mode="border", align_corners=False)
        region = mask * face_region_from_landmarks(landmarks, height, width)
    per_image = ((image - twin).abs().mean(1, keepdim=True) * region).flatten(1).sum(1) / region.flatten(1).sum(1).clamp_min(1.0)
    return float(per_image.mean())
