"""Discriminators of the c2fdan paper: a global one on the whole crop, part discriminators on the eyes, nose and
mouth, and an eye-consistency one (left eye next to the horizontally flipped right eye, so eye colours match).

Paper design: four 3x3 convs with LeakyReLU, the first two with stride 2, no normalisation layers (we add spectral
norm, switchable); the global discriminator ends in a fully connected layer, the patch discriminators in a per-pixel
map whose mean is the patch probability. Conditional (paper): each input is the image concatenated with the
occluded input, both cropped the same way.

Every forward(image, condition=None) returns (logits, features): raw logits (no sigmoid; the trainer picks the GAN
loss) and the LeakyReLU activations of the first three convs, for feature-matching losses.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as apply_spectral_norm

from realtime.align import DEFAULT_MARGIN, DEFAULT_TEMPLATE, template_points
from trainer.registry import DISCRIMINATORS

PART_NAMES = ("left_eye", "right_eye", "nose", "mouth")
# Part box side as a fraction of the template's unit square (the paper: 28 px in a 112 px template crop = 0.25; a bit
# more here so a whole mouth, corner to corner, fits).
PART_FRACTION = 0.3

Box = tuple[int, int, int]  # (top, left, side) in crop pixels


def maybe_spectral(module: nn.Module, spectral: bool) -> nn.Module:
    return apply_spectral_norm(module) if spectral else module


class ConvTrunk(nn.Module):
    """Four 3x3 convs (the first two with stride 2): in -> width -> 2*width -> 4*width -> 1 channel, 1/4 resolution."""

    def __init__(self, in_channels: int, width: int, spectral: bool):
        super().__init__()
        plan = [(in_channels, width, 2), (width, 2 * width, 2), (2 * width, 4 * width, 1)]
        self.convs = nn.ModuleList(maybe_spectral(nn.Conv2d(a, b, 3, stride=s, padding=1), spectral) for a, b, s in plan)
        self.act = nn.LeakyReLU(0.2)
        self.head = maybe_spectral(nn.Conv2d(4 * width, 1, 3, padding=1), spectral)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for conv in self.convs:
            x = self.act(conv(x))
            features.append(x)
        return self.head(x), features


def with_condition(image: torch.Tensor, condition: torch.Tensor | None, conditional: bool) -> torch.Tensor:
    """The discriminator input: image, or image ‖ occluded input (channels) for a conditional discriminator."""
    if conditional != (condition is not None):
        raise ValueError("a conditional discriminator needs the occluded input as `condition`; others take none")
    return image if condition is None else torch.cat([image, condition], dim=1)


class GlobalDiscriminator(nn.Module):
    """Whole crop -> trunk (1 x S/4 x S/4) -> fully connected -> one logit per image (N x 1)."""

    def __init__(self, crop_size: int, width: int = 64, conditional: bool = True, spectral: bool = True):
        super().__init__()
        if crop_size % 4 != 0:
            raise ValueError(f"crop_size must be a multiple of 4, got {crop_size}")
        self.conditional = conditional
        self.trunk = ConvTrunk(6 if conditional else 3, width, spectral)
        self.fc = maybe_spectral(nn.Linear((crop_size // 4) ** 2, 1), spectral)

    def forward(self, image: torch.Tensor, condition: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        patch, features = self.trunk(with_condition(image, condition, self.conditional))
        return self.fc(patch.flatten(1)), features


def part_size(crop_size: int, margin: float = DEFAULT_MARGIN) -> int:
    """Side of a part box in crop pixels, a multiple of 4 (two stride-2 convs)."""
    side = crop_size * PART_FRACTION / (1.0 + 2.0 * margin)
    return max(8, 4 * round(side / 4))


def part_boxes(crop_size: int, template: str = DEFAULT_TEMPLATE, margin: float = DEFAULT_MARGIN) -> dict[str, Box]:
    """Square boxes centred on the template's eyes, nose tip and mouth (midpoint of its corners), inside the crop."""
    points = template_points(crop_size, template, margin)
    centres = {
        "left_eye": points[0],
        "right_eye": points[1],
        "nose": points[2],
        "mouth": (points[3] + points[4]) / 2.0,
    }
    side = part_size(crop_size, margin)
    boxes = {}
    for name in PART_NAMES:
        x, y = centres[name]
        left = int(min(max(round(x - side / 2.0), 0), crop_size - side))
        top = int(min(max(round(y - side / 2.0), 0), crop_size - side))
        boxes[name] = (top, left, side)
    return boxes


def crop_box(images: torch.Tensor, box: Box) -> torch.Tensor:
    top, left, side = box
    return images[:, :, top : top + side, left : left + side]


class PartsDiscriminator(nn.Module):
    """One patch discriminator per face part (left eye, right eye, nose, mouth) on fixed template boxes.

    Logits: N x 4 x side/4 x side/4 (one channel per part, PART_NAMES order); features: every part's, in that order.
    """

    def __init__(
        self, crop_size: int, width: int = 64, conditional: bool = True, spectral: bool = True,
        template: str = DEFAULT_TEMPLATE, margin: float = DEFAULT_MARGIN,
    ):
        super().__init__()
        self.conditional = conditional
        self.boxes = part_boxes(crop_size, template, margin)
        in_channels = 6 if conditional else 3
        self.parts = nn.ModuleDict({name: ConvTrunk(in_channels, width, spectral) for name in PART_NAMES})

    def crop_parts(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: crop_box(images, self.boxes[name]) for name in PART_NAMES}

    def forward(self, image: torch.Tensor, condition: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        crops = self.crop_parts(with_condition(image, condition, self.conditional))
        logits, features = [], []
        for name in PART_NAMES:
            part_logits, part_features = self.parts[name](crops[name])
            logits.append(part_logits)
            features.extend(part_features)
        return torch.cat(logits, dim=1), features


def eye_pair(images: torch.Tensor, boxes: dict[str, Box]) -> torch.Tensor:
    """Left eye ‖ horizontally flipped right eye along channels: matching eyes look alike channel for channel."""
    left = crop_box(images, boxes["left_eye"])
    right = torch.flip(crop_box(images, boxes["right_eye"]), dims=[3])
    return torch.cat([left, right], dim=1)


class EyeConsistencyDiscriminator(nn.Module):
    """Patch discriminator on (left eye, flipped right eye) stacked: N x 1 x side/4 x side/4 logits."""

    def __init__(
        self, crop_size: int, width: int = 64, conditional: bool = True, spectral: bool = True,
        template: str = DEFAULT_TEMPLATE, margin: float = DEFAULT_MARGIN,
    ):
        super().__init__()
        self.conditional = conditional
        self.boxes = part_boxes(crop_size, template, margin)
        self.trunk = ConvTrunk(12 if conditional else 6, width, spectral)

    def forward(self, image: torch.Tensor, condition: torch.Tensor | None = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        pairs = eye_pair(image, self.boxes)
        if self.conditional:
            if condition is None:
                raise ValueError("a conditional discriminator needs the occluded input as `condition`")
            pairs = torch.cat([pairs, eye_pair(condition, self.boxes)], dim=1)
        elif condition is not None:
            raise ValueError("an unconditional discriminator takes no `condition`")
        return self.trunk(pairs)


@DISCRIMINATORS.register("global")
def build_global(crop_size: int = 128, width: int = 64, conditional: bool = True, spectral_norm: bool = True) -> GlobalDiscriminator:
    return GlobalDiscriminator(crop_size, width, conditional, spectral_norm)


@DISCRIMINATORS.register("parts")
def build_parts(
    crop_size: int = 128, width: int = 64, conditional: bool = True, spectral_norm: bool = True,
    template: str = DEFAULT_TEMPLATE, margin: float = DEFAULT_MARGIN,
) -> PartsDiscriminator:
    return PartsDiscriminator(crop_size, width, conditional, spectral_norm, template, margin)


@DISCRIMINATORS.register("eye_consistency")
def build_eye_consistency(
    crop_size: int = 128, width: int = 64, conditional: bool = True, spectral_norm: bool = True,
    template: str = DEFAULT_TEMPLATE, margin: float = DEFAULT_MARGIN,
) -> EyeConsistencyDiscriminator:
    return EyeConsistencyDiscriminator(crop_size, width, conditional, spectral_norm, template, margin)
