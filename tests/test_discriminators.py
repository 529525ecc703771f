"""c2fdan discriminators: logits + features, part boxes on the template, flipped eye pairs, conditioning."""
from __future__ import annotations

import pytest
import torch

from realtime.align import template_points
from trainer.networks.discriminators import PART_NAMES, PartsDiscriminator, eye_pair, part_boxes, part_size
from trainer.registry import DISCRIMINATORS

torch.set_num_threads(1)

CROP = 64


@pytest.mark.parametrize(
    ("name", "logit_shape"),
    [
        ("global", (2, 1)),
        ("parts", (2, 4, part_size(CROP) // 4, part_size(CROP) // 4)),
        ("eye_consistency", (2, 1, part_size(CROP) // 4, part_size(CROP) // 4)),
    ],
)
def test_discriminators_return_logits_and_features_with_gradients(name: str, logit_shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    discriminator = DISCRIMINATORS.build(name, crop_size=CROP, width=4)
    image = torch.rand(2, 3, CROP, CROP, requires_grad=True)
    occluded = torch.rand(2, 3, CROP, CROP)
    logits, features = discriminator(image, occluded)
    assert logits.shape == logit_shape
    parts = len(PART_NAMES) if name == "parts" else 1
    assert len(features) == 3 * parts
    assert all(f.shape[0] == 2 and f.ndim == 4 for f in features)
    (logits.mean() + sum(f.mean() for f in features)).backward()
    assert float(image.grad.abs().sum()) > 0.0


def test_conditional_discriminator_requires_the_occluded_input() -> None:
    discriminator = DISCRIMINATORS.build("global", crop_size=CROP, width=4)
    with pytest.raises(ValueError, match="condition"):
        discriminator(torch.rand(1, 3, CROP, CROP))
    plain = DISCRIMINATORS.build("eye_consistency", crop_size=CROP, width=4, conditional=False, spectral_norm=False)
    logits, _ = plain(torch.rand(1, 3, CROP, CROP))
    assert logits.shape[:2] == (1, 1)


@pytest.mark.parametrize("crop_size", [64, 128, 256])
def test_part_crops_land_on_the_template_parts(crop_size: int) -> None:
    points = template_points(crop_size, "unveil5", 0.15)
    centres = {
        "left_eye": points[0], "right_eye": points[1], "nose": points[2], "mouth": (points[3] + points[4]) / 2,
    }
    # One marker pixel per part, each with its own value, at the template position.
    image = torch.zeros(1, 3, crop_size, crop_size)
    for index, name in enumerate(PART_NAMES):
        x, y = centres[name]
        image[0, :, int(y), int(x)] = float(index + 1)
    discriminator = PartsDiscriminator(crop_size, width=4, conditional=False, spectral=False)
    crops = discriminator.crop_parts(image)
    side = part_size(crop_size)
    for index, name in enumerate(PART_NAMES):
        crop = crops[name][0, 0]
        assert crop.shape == (side, side)
        found = torch.nonzero(crop == index + 1)
        assert len(found) == 1, f"{name} marker not in its crop"
        y, x = found[0].tolist()
        assert abs(y - side / 2) <= 1.5 and abs(x - side / 2) <= 1.5, f"{name} marker off centre: {(y, x)}"


def test_eye_boxes_are_mirror_images_of_each_other() -> None:
    boxes = part_boxes(128)
    (top_l, left_l, side), (top_r, left_r, _) = boxes["left_eye"], boxes["right_eye"]
    assert abs(top_l - top_r) <= 1
    assert abs((left_l + side / 2) + (left_r + side / 2) - 128) <= 2  # symmetric about the vertical centre line


def test_eye_pair_stacks_left_eye_with_the_flipped_right_eye() -> None:
    boxes = part_boxes(128)
    torch.manual_seed(0)
    left = torch.rand(1, 3, boxes["left_eye"][2], boxes["left_eye"][2])
    image = torch.zeros(1, 3, 128, 128)
    top, x0, side = boxes["left_eye"]
    image[..., top : top + side, x0 : x0 + side] = left
    top, x0, side = boxes["right_eye"]
    image[..., top : top + side, x0 : x0 + side] = torch.flip(left, dims=[3])  # a mirrored right eye
    pair = eye_pair(image, boxes)
    assert pair.shape == (1, 6, side, side)
    assert torch.equal(pair[:, :3], pair[:, 3:])
