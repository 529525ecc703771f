"""Reconstruction metrics, one implementation for the training loop's validation and for `unveil eval`.

All functions take batches: images N x C x H x W in [0, 1] (data range 1), masks N x 1 x H x W (1 = occluded, the
hole), and return one value per image (a tensor of N). Masked variants average over the hole only and give NaN for an
image whose hole is empty (nothing to measure); aggregate with nanmean.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch

PSNR_MAX_DB = 100.0      # identical images: MSE is clamped to 10^-10, so PSNR is finite and averages stay finite
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def images_to_tensor(images: np.ndarray | list[np.ndarray]) -> torch.Tensor:
    """uint8 (N,)HxWx3 array or list of HxWx3 -> float32 N x 3 x H x W in [0, 1] (channel order unchanged)."""
    batch = np.stack(images) if isinstance(images, list) else np.asarray(images)
    if batch.ndim == 3:
        batch = batch[None]
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise ValueError(f"expected HxWx3 images, got shape {batch.shape}")
    return torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2))).float().div_(255.0)


def masks_to_tensor(masks: np.ndarray | list[np.ndarray]) -> torch.Tensor:
    """float (N,)HxW masks in [0, 1] -> float32 N x 1 x H x W."""
    batch = np.stack(masks) if isinstance(masks, list) else np.asarray(masks)
    if batch.ndim == 2:
        batch = batch[None]
    if batch.ndim != 3:
        raise ValueError(f"expected HxW masks, got shape {batch.shape}")
    return torch.from_numpy(np.ascontiguousarray(batch[:, None], dtype=np.float32))


def _hole(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Binary hole (mask > 0.5) broadcast to `like`'s shape."""
    if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[2:] != like.shape[2:] or mask.shape[0] != like.shape[0]:
        raise ValueError(f"mask must be N x 1 x H x W matching {tuple(like.shape)}, got {tuple(mask.shape)}")
    return (mask > 0.5).to(like.dtype).expand_as(like)


def psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image PSNR in dB over the whole image, or over the hole only when `mask` is given (NaN if empty)."""
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(f"pred and target must be equal N x C x H x W, got {tuple(pred.shape)} and {tuple(target.shape)}")
    err = (pred.float() - target.float()) ** 2
    if mask is None:
        mse = err.flatten(1).mean(1)
    else:
        hole = _hole(mask, err)
        count = hole.flatten(1).sum(1)
        mse = (err * hole).flatten(1).sum(1) / count.clamp(min=1)
        mse = torch.where(count > 0, mse, torch.full_like(mse, math.nan))
    return 10.0 * torch.log10(1.0 / mse.clamp(min=10 ** (-PSNR_MAX_DB / 10)))


def _gaussian_1d(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    coords = torch.arange(SSIM_WINDOW, dtype=torch.float64) - (SSIM_WINDOW - 1) / 2
    g = torch.exp(-(coords**2) / (2 * SSIM_SIGMA**2))
    return (g / g.sum()).to(dtype=dtype, device=device)


@functools.lru_cache(maxsize=16)
def _blur_matrix(size: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(size, size) matrix B with x @ B = 1-D gaussian blur of x along its last axis, borders reflected (cached)."""
    g = _gaussian_1d(torch.float64, torch.device("cpu"))
    pad = SSIM_WINDOW // 2
    matrix = torch.zeros(size, size, dtype=torch.float64)
    for i in range(size):
        for k in range(-pad, pad + 1):
            j = abs(i + k)                                  # reflect about the first pixel ...
            j = 2 * (size - 1) - j if j > size - 1 else j   # ... and about the last one (torch's 'reflect')
            matrix[j, i] += g[k + pad]
    return matrix.to(dtype=dtype, device=device)


def _gaussian_blur(t: torch.Tensor) -> torch.Tensor:
    """Separable 11x11 gaussian with reflected borders, as two matrix products (much faster than a depthwise conv
    on CPU, and just as fast on a GPU)."""
    h, w = t.shape[-2:]
    rows = _blur_matrix(w, t.dtype, t.device)
    cols = _blur_matrix(h, t.dtype, t.device)
    return torch.matmul(cols.T, torch.matmul(t, rows))


def ssim_map(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """N x C x H x W SSIM map (Wang et al.: 11x11 gaussian window, sigma 1.5, K1 0.01, K2 0.03, data range 1).

    Borders are reflect-padded so the map covers every pixel (a hole may touch the crop's edge).
    """
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(f"pred and target must be equal N x C x H x W, got {tuple(pred.shape)} and {tuple(target.shape)}")
    if min(pred.shape[2:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW}, got {tuple(pred.shape[2:])}")
    x, y = pred.float(), target.float()
    # One blur call for all five moments.
    mu_x, mu_y, xx, yy, xy = _gaussian_blur(torch.cat([x, y, x * x, y * y, x * y], 1)).chunk(5, dim=1)
    var_x = xx - mu_x**2
    var_y = yy - mu_y**2
    cov = xy - mu_x * mu_y
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def mean_ssim(smap: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image mean of an SSIM map (channels averaged).

    Whole image: the mean over pixels at least 5 px from the border, i.e. where the window lies inside the image
    (what skimage.metrics.structural_similarity reports with gaussian_weights=True, use_sample_covariance=False).
    With `mask`: the mean of the map over the hole's pixels (NaN if the hole is empty).
    """
    if mask is None:
        pad = SSIM_WINDOW // 2
        return smap[:, :, pad:-pad, pad:-pad].flatten(1).mean(1)
    hole = _hole(mask, smap)
    count = hole.flatten(1).sum(1)
    value = (smap * hole).flatten(1).sum(1) / count.clamp(min=1)
    return torch.where(count > 0, value, torch.full_like(value, math.nan))


def ssim(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-image SSIM over the whole image, or over the hole when `mask` is given (see mean_ssim)."""
    return mean_ssim(ssim_map(pred, target), mask)


def mask_iou(pred_mask: torch.Tensor, true_mask: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Per-image intersection over union of the predicted (> threshold) and true (> 0.5) holes; 1 when both are empty."""
    if pred_mask.shape != true_mask.shape:
        raise ValueError(f"mask shapes differ: {tuple(pred_mask.shape)} and {tuple(true_mask.shape)}")
    p = (pred_mask > threshold).flatten(1)
    t = (true_mask > 0.5).flatten(1)
    inter = (p & t).sum(1).float()
    union = (p | t).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
