"""C2FDAN: coarse-to-fine dual attention network for blind face completion (Hörmann et al., c2fdan paper).

The coarse network (U-Net, LeakyReLU encoder, DMFB bottleneck, two ReLU decoders) predicts a rough face I_c and the
occlusion mask M. The coarse result (1 - M)·I + M·I_c, with M, goes into the fine network (ELU U-Net) that fuses
three branches: the encoder skip, a patch-wise cross-attention (keys from the non-occluded area only) and a
pixel-wise self-attention one level lower. Output: (1 - M)·I + M·I_f, so unoccluded pixels stay untouched.

Real-time adaptation (what differs from the paper, and why):
  - the cross-attention replaces the arg-max patch substitution by a softmax over cosine similarities
    (contextual attention, Yu et al. 2018): it is differentiable for Q and K (an arg-max gives them no gradient),
    exports to ONNX as two batched matmuls and approaches the arg-max as the softmax scale grows;
  - the attention levels are configurable: the paper's 112-px model attends at 1/2 and 1/4 resolution; our presets
    attend at 1/4 (cross) and 1/8 (self), because the cross-attention cost grows with the square of the pixel count;
  - the network works internally on [-1, 1]; inputs and outputs are RGB in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from realtime.errors import UnveilError
from trainer.registry import NETWORKS

Activation = Callable[[], nn.Module]


@dataclass(frozen=True)
class C2FDANConfig:
    crop_size: int
    width: int                    # channels at full resolution, doubled at every downsampling up to max_width
    max_width: int
    coarse_downs: int             # stride-2 steps of the coarse encoder (paper: 2, 112 -> 28)
    fine_downs: int               # stride-2 steps to the cross-attention level (paper: 1); self-attention one lower
    encoder_convs: int            # 3x3 convs per encoder level (paper: 2)
    decoder_convs: int            # 3x3 convs per decoder level after the skip concatenation (paper: 3)
    attention_channels: int       # Q/K/V channels of the cross-attention (paper: 64)
    key_pool: int                 # max-pool factor of the self-attention keys and values (paper: 2)
    dilations: tuple[int, ...]    # DMFB dilation rates (Hui et al.: 1, 2, 4, 8)
    upsample_first: bool = True   # paper: nearest x2 then conv; False: conv at the low resolution then nearest (4x cheaper)
    mask_width: float = 1.0       # mask decoder channels as a fraction of the image decoder's (paper: 1, "identical")
    softmax_scale: float = 10.0   # cross-attention sharpness (contextual attention uses 10)
    leaky_mask_decoder: bool = False  # paper: ReLU. Trained briefly, the ReLU decoder's last features can all die
                                      # on occluded pixels, leaving M there at sigmoid(head bias); LeakyReLU lets
                                      # the head push M towards 1

    def channels(self, levels: int) -> list[int]:
        """Channels of encoder levels 0..levels (level i is at crop_size / 2**i)."""
        return [min(self.width * 2**i, self.max_width) for i in range(levels + 1)]


PRESETS: dict[str, C2FDANConfig] = {
    # 128 px, the live pipeline's model (CPU, onnxruntime): channels 8-16-32-64 (multiples of 8 suit onnxruntime's
    # blocked conv kernels), one conv per level, cheap upsampling, a half-width mask decoder, attention at 32x32
    # (cross) and 16x16 (self).
    "lite": C2FDANConfig(
        crop_size=128, width=8, max_width=64, coarse_downs=3, fine_downs=2, encoder_convs=1, decoder_convs=1,
        attention_channels=16, key_pool=2, dilations=(1, 2, 4, 8), upsample_first=False, mask_width=0.5,
    ),
    # 256 px for GPUs, the paper's block structure (2 encoder convs, 64-channel attention, 256-channel latent).
    "full": C2FDANConfig(
        crop_size=256, width=32, max_width=256, coarse_downs=3, fine_downs=2, encoder_convs=2, decoder_convs=2,
        attention_channels=64, key_pool=2, dilations=(1, 2, 4, 8),
    ),
}


def resolve_config(preset: str, crop_size: int | None = None, width: int | None = None,
                   leaky_mask_decoder: bool | None = None) -> C2FDANConfig:
    """Preset plus overrides; a width override scales every channel count with it (tests build tiny instances)."""
    if preset not in PRESETS:
        raise UnveilError(f"unknown c2fdan preset {preset!r}; known: {', '.join(sorted(PRESETS))}")
    config = PRESETS[preset]
    if leaky_mask_decoder is not None:
        config = replace(config, leaky_mask_decoder=bool(leaky_mask_decoder))
    if width is not None:
        if width < 2:
            raise UnveilError(f"c2fdan width must be >= 2, got {width}")
        factor = width / config.width
        config = replace(
            config, width=width, max_width=max(width, round(config.max_width * factor)),
            attention_channels=max(2, round(config.attention_channels * factor)),
        )
    if crop_size is not None:
        config = replace(config, crop_size=crop_size)
    deepest = max(config.coarse_downs, config.fine_downs + 1)
    multiple = 2 ** deepest * max(2, config.key_pool)
    if config.crop_size % multiple != 0 or config.crop_size < multiple:
        raise UnveilError(f"c2fdan crop_size must be a positive multiple of {multiple}, got {config.crop_size}")
    return config


def compose(image: torch.Tensor, mask: torch.Tensor, generated: torch.Tensor) -> torch.Tensor:
    """Equation 2 of the paper: keep the input where M = 0, take the generated pixels where M = 1."""
    return (1.0 - mask) * image + mask * generated


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=dilation, dilation=dilation)


def conv_act(in_channels: int, out_channels: int, activation: Activation, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(conv3x3(in_channels, out_channels, stride), activation())


class DMFB(nn.Module):
    """Dense multi-scale fusion block (Hui et al. 2020): parallel dilated 3x3 convs, combined cumulatively so the
    sparse dilated kernels fill each other's gaps, fused by a 1x1 conv and added to the input."""

    def __init__(self, channels: int, dilations: tuple[int, ...], activation: Activation):
        super().__init__()
        branch = max(channels // 4, 2)
        self.reduce = conv_act(channels, branch, activation)
        self.branches = nn.ModuleList(conv3x3(branch, branch, dilation=d) for d in dilations)
        self.combine = nn.ModuleList(conv3x3(branch, branch) for _ in dilations[1:])
        self.act = activation()
        self.fuse = nn.Conv2d(branch * len(dilations), channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reduced = self.reduce(x)
        combined = [self.act(self.branches[0](reduced))]
        for branch, combine in zip(self.branches[1:], self.combine):
            combined.append(self.act(combine(self.act(branch(reduced)) + combined[-1])))
        return x + self.fuse(torch.cat(combined, dim=1))


class Encoder(nn.Module):
    """U-Net encoder: level 0 at full resolution, then one stride-2 conv per level; returns every level's features."""

    def __init__(self, in_channels: int, channels: list[int], convs_per_level: int, activation: Activation):
        super().__init__()
        levels = []
        previous = in_channels
        for level, width in enumerate(channels):
            layers = [conv_act(previous, width, activation, stride=1 if level == 0 else 2)]
            layers += [conv_act(width, width, activation) for _ in range(convs_per_level - 1)]
            levels.append(nn.Sequential(*layers))
            previous = width
        self.levels = nn.ModuleList(levels)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for level in self.levels:
            x = level(x)
            features.append(x)
        return features


class Upsample(nn.Module):
    """Nearest-neighbour x2 and a 3x3 conv (no transposed conv: no checkerboard artefacts).

    `upsample_first` (the paper) convolves at the high resolution; otherwise the conv runs before the upsampling,
    at a quarter of the cost (the following 3x3 conv smooths the 2x2 blocks).
    """

    def __init__(self, in_channels: int, out_channels: int, activation: Activation, upsample_first: bool = True):
        super().__init__()
        self.conv = conv_act(in_channels, out_channels, activation)
        self.upsample_first = upsample_first

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample_first:
            return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
        return F.interpolate(self.conv(x), scale_factor=2.0, mode="nearest")


class UpBlock(nn.Module):
    """Upsample, concatenate the encoder's skip features, then `convs` 3x3 convs."""

    def __init__(
        self, in_channels: int, skip_channels: int, out_channels: int, convs: int, activation: Activation,
        upsample_first: bool = True,
    ):
        super().__init__()
        self.up = Upsample(in_channels, out_channels, activation, upsample_first)
        layers = [conv_act(out_channels + skip_channels, out_channels, activation)]
        layers += [conv_act(out_channels, out_channels, activation) for _ in range(convs - 1)]
        self.convs = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.convs(torch.cat([self.up(x), skip], dim=1))


class Decoder(nn.Module):
    """From the deepest level back to full resolution with skips, then a 3x3 conv to `out_channels` (no activation).

    `channels` are the encoder's per level (the last one is the decoder's input); the decoder's own channels are
    `width` times those (at least 2).
    """

    def __init__(
        self, channels: list[int], out_channels: int, convs: int, activation: Activation,
        upsample_first: bool = True, width: float = 1.0,
    ):
        super().__init__()
        own = [max(2, round(c * width)) for c in channels[:-1]] + [channels[-1]]
        self.blocks = nn.ModuleList(
            UpBlock(own[level + 1], channels[level], own[level], convs, activation, upsample_first)
            for level in reversed(range(len(channels) - 1))
        )
        self.head = conv3x3(own[0], out_channels)

    def forward(self, x: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        for block, skip in zip(self.blocks, reversed(skips)):
            x = block(x, skip)
        return self.head(x)


def to_signed(image: torch.Tensor) -> torch.Tensor:
    return image * 2.0 - 1.0


def to_image(signed: torch.Tensor) -> torch.Tensor:
    """Last-layer output -> RGB in [0, 1], clipped as in the paper."""
    return torch.clamp(signed * 0.5 + 0.5, 0.0, 1.0)


class CoarseNetwork(nn.Module):
    """Encoder -> DMFB -> 3x3 conv (latent L) -> two parallel decoders: rough face I_c and mask M (sigmoid)."""

    def __init__(self, config: C2FDANConfig):
        super().__init__()
        channels = config.channels(config.coarse_downs)
        leaky: Activation = lambda: nn.LeakyReLU(0.2)
        self.encoder = Encoder(3, channels, config.encoder_convs, leaky)
        self.latent = nn.Sequential(DMFB(channels[-1], config.dilations, leaky), conv_act(channels[-1], channels[-1], leaky))
        self.image_decoder = Decoder(channels, 3, config.decoder_convs, nn.ReLU, config.upsample_first)
        mask_activation: Activation = (lambda: nn.LeakyReLU(0.2)) if config.leaky_mask_decoder else nn.ReLU
        self.mask_decoder = Decoder(channels, 1, config.decoder_convs, mask_activation, config.upsample_first,
                                    config.mask_width)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skips = self.encoder(to_signed(image))
        latent = self.latent(skips[-1])
        coarse = to_image(self.image_decoder(latent, skips[:-1]))
        mask = torch.sigmoid(self.mask_decoder(latent, skips[:-1]))
        return coarse, mask


def overlapping_patches(x: torch.Tensor) -> torch.Tensor:
    """All 2x2 patches at stride 1: N x C x H x W -> N x 4C x (H-1)(W-1), in pixel_unshuffle's (c, dy, dx) order."""
    n, c, h, w = x.shape
    corners = [x[:, :, :-1, :-1], x[:, :, :-1, 1:], x[:, :, 1:, :-1], x[:, :, 1:, 1:]]
    return torch.stack(corners, dim=2).reshape(n, c * 4, (h - 1) * (w - 1))


class PatchCrossAttention(nn.Module):
    """Patch-wise cross-attention: every 2x2 patch inside the occlusion is rebuilt from 2x2 value patches of the
    non-occluded area, chosen by the cosine similarity of L2-normalised query and key patches (keys masked by 1 - M).

    Softmax-weighted (contextual attention) instead of the paper's arg-max: differentiable and ONNX-friendly (two
    batched matmuls); key patches are weighted by their non-occluded fraction, so occluded keys get ~0 weight.
    Outside the mask the values pass through unchanged (Equation 2 applied to features).
    """

    def __init__(self, channels: int, attention_channels: int, softmax_scale: float):
        super().__init__()
        self.query = nn.Conv2d(channels, attention_channels, 1)
        self.key = nn.Conv2d(channels, attention_channels, 1)
        self.value = nn.Conv2d(channels, attention_channels, 1)
        self.softmax_scale = softmax_scale

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        known = 1.0 - mask
        value = self.value(x)
        n, c, h, w = value.shape
        queries = F.normalize(F.pixel_unshuffle(self.query(x), 2).flatten(2), dim=1)  # N x 4C x Q (stride-2 patches)
        keys = F.normalize(overlapping_patches(self.key(x) * known), dim=1)  # N x 4C x P
        values = overlapping_patches(value)  # N x 4C x P
        key_known = F.avg_pool2d(known, 2, stride=1).flatten(1).unsqueeze(1)  # N x 1 x P, fraction non-occluded
        similarity = torch.bmm(queries.transpose(1, 2), keys)  # N x Q x P cosine similarities
        weights = torch.softmax(self.softmax_scale * similarity + torch.log(key_known + 1e-6), dim=2)
        patches = torch.bmm(values, weights.transpose(1, 2))  # N x 4C x Q
        substituted = F.pixel_shuffle(patches.reshape(n, c * 4, h // 2, w // 2), 2)
        return compose(value, mask, substituted)


class PixelSelfAttention(nn.Module):
    """Global pixel-wise self-attention (SAGAN): keys and values max-pooled; output X + conv1x1(A·V)."""

    def __init__(self, channels: int, key_pool: int):
        super().__init__()
        self.key_channels = max(channels // 8, 2)
        value_channels = max(channels // 2, 2)
        self.query = nn.Conv2d(channels, self.key_channels, 1)
        self.key = nn.Conv2d(channels, self.key_channels, 1)
        self.value = nn.Conv2d(channels, value_channels, 1)
        self.out = nn.Conv2d(value_channels, channels, 1)
        self.key_pool = key_pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        queries = self.query(x).flatten(2)  # N x Ck x HW
        keys = F.max_pool2d(self.key(x), self.key_pool).flatten(2)  # N x Ck x M
        values = F.max_pool2d(self.value(x), self.key_pool).flatten(2)  # N x Cv x M
        # 1/sqrt(d) scaling (not in SAGAN) keeps the softmax from saturating at initialisation.
        attention = torch.softmax(torch.bmm(queries.transpose(1, 2), keys) * self.key_channels**-0.5, dim=2)
        attended = torch.bmm(values, attention.transpose(1, 2)).reshape(n, -1, h, w)
        return x + self.out(attended)


class FineNetwork(nn.Module):
    """ELU U-Net over (coarse result, M). At the cross level: skip ‖ cross-attention branch ‖ upsampled self-attention
    branch (self-attention one level lower), fused by a 3x3 conv + DMFB, then decoded to full resolution."""

    def __init__(self, config: C2FDANConfig):
        super().__init__()
        elu: Activation = nn.ELU
        cross = config.fine_downs
        channels = config.channels(cross + 1)
        self.cross_level = cross
        self.encoder = Encoder(4, channels, config.encoder_convs, elu)
        attention = config.attention_channels
        self.cross_attention = PatchCrossAttention(channels[cross], attention, config.softmax_scale)
        self.cross_branch = nn.Sequential(DMFB(attention, config.dilations, elu), conv_act(attention, channels[cross], elu))
        self.self_attention = PixelSelfAttention(channels[cross + 1], config.key_pool)
        self.self_branch = nn.Sequential(
            DMFB(channels[cross + 1], config.dilations, elu),
            conv_act(channels[cross + 1], channels[cross + 1], elu),
            Upsample(channels[cross + 1], channels[cross], elu, config.upsample_first),
        )
        self.fuse = nn.Sequential(conv_act(3 * channels[cross], channels[cross], elu), DMFB(channels[cross], config.dilations, elu))
        self.decoder = Decoder(channels[: cross + 1], 3, config.decoder_convs, elu, config.upsample_first)

    def forward(self, coarse_result: torch.Tensor, mask: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """`extra`: more RGB input channels for an encoder built wider (the recurrent variant's previous output)."""
        inputs = [to_signed(coarse_result), mask] + ([to_signed(extra)] if extra is not None else [])
        skips = self.encoder(torch.cat(inputs, dim=1))
        cross_features, self_features = skips[self.cross_level], skips[self.cross_level + 1]
        # A low-resolution cell counts as occluded if any of its pixels is.
        cell_mask = F.max_pool2d(mask, 2**self.cross_level)
        cross = self.cross_branch(self.cross_attention(cross_features, cell_mask))
        selfs = self.self_branch(self.self_attention(self_features))
        fused = self.fuse(torch.cat([cross_features, cross, selfs], dim=1))
        return to_image(self.decoder(fused, skips[: self.cross_level]))


@NETWORKS.register("c2fdan")
class C2FDAN(nn.Module):
    """Blind face completion: image (N x 3 x S x S, RGB [0, 1]) -> completed image and occlusion mask (1 = occluded).

    forward(image) -> {"image": (1-M)·I + M·I_f, "mask": M, "coarse": I_c, "fine": I_f, "coarse_image": (1-M)·I + M·I_c}
    forward_coarse(image) -> {"coarse": I_c, "mask": M, "image": (1-M)·I + M·I_c}  (training phase 1)
    """

    contract_kind = "blind_completion"
    input_roles = ("image",)
    output_roles = ("image", "mask")

    def __init__(self, preset: str = "lite", crop_size: int | None = None, width: int | None = None,
                 leaky_mask_decoder: bool | None = None):
        super().__init__()
        self.preset = preset
        self.config = resolve_config(preset, crop_size, width, leaky_mask_decoder)
        self.crop_size = self.config.crop_size
        self.coarse = CoarseNetwork(self.config)
        self.fine = FineNetwork(self.config)

    def forward_coarse(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        coarse, mask = self.coarse(image)
        return {"coarse": coarse, "mask": mask, "image": compose(image, mask, coarse)}

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        first = self.forward_coarse(image)
        return both_stages(image, first, self.fine(first["image"], first["mask"]))


def both_stages(image: torch.Tensor, first: dict[str, torch.Tensor], fine: torch.Tensor) -> dict[str, torch.Tensor]:
    """forward()'s outputs from the coarse stage's dict and the fine network's image."""
    return {
        "image": compose(image, first["mask"], fine),
        "mask": first["mask"],
        "coarse": first["coarse"],
        "fine": fine,
        "coarse_image": first["image"],
    }
