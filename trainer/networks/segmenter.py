"""The occlusion segmenter: a small U-Net that answers one question per crop pixel, "is the face covered here?".

It only finds; it never paints. Training sees many clean faces (beards, lipstick, glasses, teeth, shadows are face),
so its logits are not capped the way a mask head shared with a painter is. `forward` returns the probability under
the role "mask" (what the runtime reads) and the raw "logits" for the training losses.
"""
from __future__ import annotations

import torch
from torch import nn

from realtime.errors import UnveilError
from trainer.registry import NETWORKS


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


def unet_pass(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits of a U-Net laid out as `down` blocks, `up` blocks (bilinear upsampling, skip concatenation), `head`."""
    skips = []
    for block in net.down:
        x = block(x)
        skips.append(x)
    for block, skip in zip(net.up, reversed(skips[:-1])):
        x = nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
        x = block(torch.cat([x, skip], dim=1))
    return net.head(x)


@NETWORKS.register("occlusion_segmenter")
class OcclusionSegmenter(nn.Module):
    contract_kind = "occlusion_mask"
    input_roles = ("image",)
    output_roles = ("mask",)

    def __init__(self, crop_size: int = 128, widths: tuple[int, ...] = (16, 32, 64, 128)):
        super().__init__()
        depth = len(widths) - 1
        if crop_size % (2**depth):
            raise UnveilError(f"segmenter crop_size {crop_size} must be divisible by {2**depth}")
        self.crop_size = int(crop_size)
        self.down = nn.ModuleList([_block(3, widths[0])] + [_block(widths[i - 1], widths[i], 2) for i in range(1, len(widths))])
        self.up = nn.ModuleList([_block(widths[i] + widths[i - 1], widths[i - 1]) for i in range(len(widths) - 1, 0, -1)])
        self.head = nn.Conv2d(widths[0], 1, 1)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = unet_pass(self, image * 2.0 - 1.0)
        return {"mask": torch.sigmoid(logits), "logits": logits}
