"""FCSR-GAN's generator (Cai et al., "FCSR-GAN: End-to-end Learning for Joint Face Completion and
Super-resolution"): a small occluded face in, the complete face at 4x its size out.

Two modules in one network:
- completion: an encoder-decoder at the input size (the paper: VGG-19 conv1..pool3, two more convs and a pool, a
  256-wide fully connected bottleneck, a decoder symmetric to the encoder). The hole is composed back into the
  input, so visible pixels pass through unchanged: `low = (1 - m) * x + m * fill`.
- super-resolution: SRResNet-like (the paper: "similar to [Ledig et al.]"): residual blocks at the input size, two
  pixel-shuffle x2 upsamplers, the result added to the bilinear upscale of `low`.

Deviations from the paper, all named:
- the occlusion mask is a fourth input channel (the runtime's finder already says where the face is covered; the
  paper feeds the occluded image alone), and hole pixels are zeroed before the network sees them;
- skip connections from encoder to decoder (U-Net style) beside the fully connected bottleneck, so the lite preset
  converges within a CPU budget; the bottleneck stays 256 wide as in the paper;
- the SR module also sees the completion decoder's last features (the two modules are trained end to end anyway).

Presets: `paper` (3.7M completion + 1.2M super-resolution parameters, for GPUs) and `lite` (trains and runs on a
CPU). Contract kind `completion_super_resolution`: inputs image + mask at `crop_size` (32), output image at
`crop_size * output_scale` (128), both aligned with the same template and margin, so the output is the runtime's
128 px face crop of the same face.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from realtime.errors import UnveilError
from trainer.registry import NETWORKS


@dataclass(frozen=True)
class FcsrPreset:
    widths: tuple[int, ...]      # encoder width per level (level 0 at the input size, each next one halved)
    convs: int                   # convs per encoder level
    bottleneck: int              # fully connected bottleneck width (the paper: 256)
    sr_width: int                # super-resolution trunk width
    sr_blocks: int               # residual blocks at the input size
    sr_up_width: int             # width after the first x2 upsampler


PRESETS: dict[str, FcsrPreset] = {
    # 3.7M completion + 1.2M super-resolution (the paper: 3.5M + 1.2M = 4.7M), ~2.7 GFLOPs per face
    "paper": FcsrPreset(widths=(64, 128, 192, 192), convs=2, bottleneck=256, sr_width=64, sr_blocks=13, sr_up_width=64),
    # CPU: 0.74M completion + 0.13M super-resolution, ~0.4 GFLOPs (0.2 GMAC) per face
    "lite": FcsrPreset(widths=(24, 48, 96, 96), convs=1, bottleneck=256, sr_width=32, sr_blocks=4, sr_up_width=32),
}


def conv_act(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.LeakyReLU(0.2, inplace=True))


class ResBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.PReLU(width),
                                  nn.Conv2d(width, width, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Completion(nn.Module):
    """Encoder-decoder at the input size with a fully connected bottleneck (and skips)."""

    def __init__(self, size: int, preset: FcsrPreset):
        super().__init__()
        w = preset.widths
        levels = len(w)
        if size % 2 ** levels:
            raise UnveilError(f"fcsr input size {size} must be divisible by {2 ** levels}")
        self.enc = nn.ModuleList()
        cin = 4
        for i, width in enumerate(w):
            layers = [conv_act(cin, width)] + [conv_act(width, width) for _ in range(preset.convs - 1)]
            self.enc.append(nn.Sequential(*layers))
            cin = width
        self.pool = nn.MaxPool2d(2)
        self.side = size // 2 ** levels
        flat = w[-1] * self.side * self.side
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(flat, preset.bottleneck), nn.LeakyReLU(0.2, inplace=True),
                                nn.Linear(preset.bottleneck, flat), nn.LeakyReLU(0.2, inplace=True))
        self.dec = nn.ModuleList()
        cin = w[-1]
        for i in reversed(range(levels)):
            self.dec.append(conv_act(cin + w[i], w[i]))
            cin = w[i]
        self.out_width = w[0]
        self.to_rgb = nn.Conv2d(w[0], 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skips = []
        y = x
        for enc in self.enc:
            y = enc(y)
            skips.append(y)
            y = self.pool(y)
        y = self.fc(y).view(y.shape)
        for dec, skip in zip(self.dec, reversed(skips)):
            y = dec(torch.cat([F.interpolate(y, scale_factor=2.0, mode="nearest"), skip], 1))
        return torch.sigmoid(self.to_rgb(y)), y


class SuperResolution(nn.Module):
    """SRResNet-like x4: residual blocks at the input size, two pixel-shuffle x2 upsamplers, added to the bilinear
    upscale of the completed low-resolution face."""

    def __init__(self, cin: int, preset: FcsrPreset):
        super().__init__()
        w = preset.sr_width
        self.head = nn.Sequential(nn.Conv2d(cin, w, 3, padding=1), nn.PReLU(w))
        self.blocks = nn.Sequential(*[ResBlock(w) for _ in range(preset.sr_blocks)], nn.Conv2d(w, w, 3, padding=1))
        self.up1 = nn.Sequential(nn.Conv2d(w, preset.sr_up_width * 4, 3, padding=1), nn.PixelShuffle(2),
                                 nn.PReLU(preset.sr_up_width))
        self.up2 = nn.Sequential(nn.Conv2d(preset.sr_up_width, 3 * 4, 3, padding=1), nn.PixelShuffle(2))

    def forward(self, low: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        h = self.head(features)
        h = h + self.blocks(h)
        base = F.interpolate(low, scale_factor=4.0, mode="bilinear", align_corners=False)
        return base + self.up2(self.up1(h))


@NETWORKS.register("fcsr")
class FCSRNet(nn.Module):
    """image (N,3,S,S) in [0, 1], mask (N,1,S,S) 1 = occluded -> {"image": (N,3,4S,4S), "low": (N,3,S,S)}."""

    contract_kind = "completion_super_resolution"
    input_roles = ("image", "mask")
    output_roles = ("image",)

    def __init__(self, preset: str = "lite", crop_size: int = 32, scale: int = 4):
        super().__init__()
        if preset not in PRESETS:
            raise UnveilError(f"unknown fcsr preset {preset!r}; choose {', '.join(PRESETS)}")
        if scale != 4:
            raise UnveilError("fcsr upsamples x4 (two pixel-shuffle x2 stages)")
        self.preset_name = preset
        self.crop_size = int(crop_size)
        self.output_scale = int(scale)
        p = PRESETS[preset]
        self.completion = Completion(self.crop_size, p)
        self.sr = SuperResolution(3 + 1 + self.completion.out_width, p)

    def complete(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the low-resolution face with its hole filled, the decoder's features)."""
        visible = image * (1.0 - mask)
        fill, features = self.completion(torch.cat([visible, mask], 1))
        return visible + mask * fill, features

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        low, features = self.complete(image, mask)
        high = self.sr(low, torch.cat([low, mask, features], 1))
        return {"image": high, "low": low}

    def parameter_counts(self) -> dict[str, int]:
        count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
        return {"completion": count(self.completion), "super_resolution": count(self.sr), "total": count(self)}
