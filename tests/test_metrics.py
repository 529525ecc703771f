"""Metrics against hand-computed values and scikit-image's SSIM."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from trainer.metrics import PSNR_MAX_DB, images_to_tensor, mask_iou, masks_to_tensor, psnr, ssim

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def face_rgb(astronaut_bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(cv2.resize(astronaut_bgr[0:256, 128:384], (64, 64), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)


def test_psnr_of_a_known_mse():
    target = torch.full((2, 3, 8, 8), 0.5)
    pred = target.clone()
    pred[0] += 0.1                       # MSE 0.01 -> 20 dB
    pred[1, :, :4] += 0.2                # half the pixels off by 0.2: MSE 0.02 -> 16.99 dB
    values = psnr(pred, target)
    assert values[0].item() == pytest.approx(20.0, abs=1e-4)
    assert values[1].item() == pytest.approx(10 * math.log10(1 / 0.02), abs=1e-4)


def test_psnr_inside_the_hole_ignores_the_rest():
    target = torch.zeros(1, 3, 8, 8)
    pred = target.clone()
    pred[..., :4, :] = 0.1               # error only in the top half
    pred[..., 4:, :] = 0.5               # large error outside the hole must not count
    top = torch.zeros(1, 1, 8, 8)
    top[..., :4, :] = 1.0
    assert psnr(pred, target, top).item() == pytest.approx(20.0, abs=1e-4)
    assert psnr(pred, target).item() < 10.0


def test_psnr_of_identical_images_is_capped_and_empty_hole_is_nan():
    x = torch.rand(2, 3, 8, 8)
    assert torch.all(psnr(x, x) == PSNR_MAX_DB)
    assert torch.isnan(psnr(x, x, torch.zeros(2, 1, 8, 8))).all()


def test_ssim_identical_is_one_and_shift_is_lower(face_rgb):
    x = images_to_tensor(face_rgb)
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-6)
    shifted = images_to_tensor(np.roll(face_rgb, 2, axis=1))
    assert ssim(shifted, x).item() < 0.95


@pytest.mark.parametrize("noise", [0.02, 0.1])
def test_ssim_matches_skimage(face_rgb, noise):
    rng = np.random.default_rng(3)
    noisy = np.clip(face_rgb / 255.0 + rng.normal(0, noise, face_rgb.shape), 0, 1)
    reference = structural_similarity(noisy, face_rgb / 255.0, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False, data_range=1.0)
    ours = ssim(torch.from_numpy(noisy.transpose(2, 0, 1))[None].float(), images_to_tensor(face_rgb)).item()
    assert ours == pytest.approx(reference, abs=1e-4)
    assert reference < 0.99  # the noise is visible to the metric


def test_masked_ssim_averages_the_map_over_the_hole(face_rgb):
    rng = np.random.default_rng(4)
    clean = images_to_tensor(face_rgb)
    damaged = clean.clone()
    damaged[..., 40:60, 40:60] = torch.from_numpy(rng.random((3, 20, 20))).float()
    hole = torch.zeros(1, 1, 64, 64)
    hole[..., 40:60, 40:60] = 1.0
    away = torch.zeros(1, 1, 64, 64)
    away[..., 5:20, 5:20] = 1.0          # far (> window radius) from the damage
    assert ssim(damaged, clean, hole).item() < 0.3
    assert ssim(damaged, clean, away).item() == pytest.approx(1.0, abs=1e-6)
    assert ssim(damaged, clean, hole).item() < ssim(damaged, clean).item() < 1.0


def test_mask_iou_hand_counted():
    true = np.zeros((2, 10, 10), np.float32)
    pred = np.zeros((2, 10, 10), np.float32)
    true[0, :4, :5] = 1                  # 20 px
    pred[0, 2:6, :5] = 0.7               # 20 px, 10 shared -> 10 / 30
    pred[0, 9, 9] = 0.4                  # under the threshold: not predicted
    iou = mask_iou(masks_to_tensor(pred), masks_to_tensor(true))
    assert iou[0].item() == pytest.approx(1 / 3)
    assert iou[1].item() == 1.0          # both empty: nothing to find, nothing found
    assert mask_iou(masks_to_tensor(pred), masks_to_tensor(true), threshold=0.8)[0].item() == 0.0


def test_numpy_conversion_keeps_values_and_layout():
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    t = images_to_tensor([image, image])
    assert t.shape == (2, 3, 4, 5)
    assert t[1, 2, 3, 4].item() == pytest.approx(image[3, 4, 2] / 255.0)
    assert masks_to_tensor(np.ones((4, 5))).shape == (1, 1, 4, 5)


def test_the_training_and_evaluation_psnr_agree():
    """trainer.metrics (torch, batched, for the training loop) and trainer.evaluation.metrics (numpy, for evaluation
    and benchmarks) must give the same PSNR, over the whole image and over a hole."""
    from trainer.evaluation import metrics as evaluation

    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, (32, 32, 3)).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    hole = np.zeros((32, 32), bool)
    hole[8:20, 4:30] = True
    whole = psnr(images_to_tensor([a]), images_to_tensor([b])).item()
    inside = psnr(images_to_tensor([a]), images_to_tensor([b]), masks_to_tensor([hole.astype(np.float32)])).item()
    assert whole == pytest.approx(evaluation.psnr(a, b), abs=1e-4)
    assert inside == pytest.approx(evaluation.psnr(a, b, hole), abs=1e-4)
