"""The skip-connection U-Net baseline (Jiang & Zhang, "An End-to-end Facial Image Inpainting with Skip Connection").

Encoder: stride-2 3x3 convolutions with batch norm and ReLU. Decoder: upsampling, concatenation with the encoder
feature of the same level (the skip connection), a 3x3 convolution back to the level's width, batch norm and leaky
ReLU; the last layer is tanh (mapped to [0, 1] here). No channel-wise fully connected layer (the paper removes it).

Two variants:
  - blind (image -> image, mask): an extra sigmoid head predicts the occlusion mask M and the output is
    (1 - M) * I + M * fill, so unoccluded pixels stay untouched (the same composition as the c2fdan paper);
  - non-blind (image, mask -> image): the mask is a fourth input channel and the output is composed with it.
The non-blind variant takes the kind "symmetry_completion" because it is the only kind in realtime.contract with an
(image, mask) -> image interface.
"""
from __future__ import annotations

import torch
from torch import nn

from realtime.errors import UnveilError
from trainer.registry import NETWORKS


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class _Up(nn.Module):
    """Upsample x2, concatenate the skip feature, fuse back to `cout` channels."""

    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.fuse = nn.Sequential(
            nn.Conv2d(cin + cskip, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, inplace=True)
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.fuse(torch.cat([self.up(x), skip], dim=1))


@NETWORKS.register("unet")
class UNet(nn.Module):
    """Encoder of `depth` stride-2 levels (width, 2*width, ... capped at 8*width); decoder back up with a skip
    concatenation at every level, the last one with the input itself, so full resolution costs only two thin convs
    (~0.5 GMAC at 128 px, width 32: live on two CPU cores)."""

    def __init__(self, blind: bool = True, crop_size: int = 128, width: int = 32, depth: int = 4):
        super().__init__()
        if crop_size % (2**depth):
            raise UnveilError(f"unet crop_size {crop_size} must be divisible by 2**depth = {2**depth}")
        if width < 2 or depth < 1:
            raise UnveilError(f"unet width must be >= 2 and depth >= 1, got width {width}, depth {depth}")
        self.blind = bool(blind)
        self.crop_size = int(crop_size)
        self.contract_kind = "blind_completion" if self.blind else "symmetry_completion"
        self.input_roles = ("image",) if self.blind else ("image", "mask")
        self.output_roles = ("image", "mask") if self.blind else ("image",)
        in_channels = 3 if self.blind else 4
        widths = [min(width * 2**i, width * 8) for i in range(depth)]  # level i is at crop_size / 2**(i+1)
        self.downs = nn.ModuleList(_down(in_channels if i == 0 else widths[i - 1], widths[i]) for i in range(depth))
        self.ups = nn.ModuleList(_Up(widths[i + 1], widths[i], widths[i]) for i in reversed(range(depth - 1)))
        head = max(width // 2, 2)
        self.last = _Up(widths[0], in_channels, head)  # back to full resolution, skip = the input itself
        self.to_fill = nn.Sequential(nn.Conv2d(head, 3, 3, padding=1), nn.Tanh())
        self.to_mask = nn.Conv2d(head, 1, 3, padding=1) if self.blind else None

    def decode(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder-decoder pass with a skip at every level: input tensor -> full-resolution head features."""
        feats = []
        y = x
        for down in self.downs:
            y = down(y)
            feats.append(y)
        for up, skip in zip(self.ups, reversed(feats[:-1])):
            y = up(y, skip)
        y = self.last(y, x)
        return y

    def forward(self, image: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        x = image if self.blind else torch.cat([image, mask], dim=1)
        y = self.decode(x)
        fill = (self.to_fill(y) + 1.0) * 0.5  # tanh -> [0, 1]
        if self.blind:
            mask_logits = self.to_mask(y)
            mask = torch.sigmoid(mask_logits)
        out = (1.0 - mask) * image + mask * fill
        result = {"image": out, "fill": fill}
        if self.blind:
            result["mask"] = mask
            result["mask_logits"] = mask_logits
        return result
