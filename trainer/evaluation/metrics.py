"""Image and video metrics for evaluation (numpy + OpenCV, never torch): PSNR, SSIM, temporal and flow-warped
temporal error. The training loop's differentiable, batched versions are in trainer/metrics.py."""
from __future__ import annotations

import math

import cv2
import numpy as np


def psnr(a: np.ndarray, b: np.ndarray, region: np.ndarray | None = None) -> float:
    """PSNR in dB of two uint8 images over `region` (bool HxW; None = everywhere); inf when identical."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    sq = diff**2 if diff.ndim == 2 else (diff**2).mean(axis=2)
    if region is not None:
        if not region.any():
            return float("nan")
        sq = sq[region]
    mse = float(sq.mean())
    return float("inf") if mse == 0.0 else 10.0 * math.log10(255.0**2 / mse)


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM of the grey levels of two uint8 images (Wang et al. 2004: 11x11 Gaussian, sigma 1.5)."""
    to_grey = (lambda x: cv2.cvtColor(x, cv2.COLOR_BGR2GRAY)) if a.ndim == 3 else (lambda x: x)
    x, y = to_grey(a).astype(np.float64), to_grey(b).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(z: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(z, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def ssim(a: np.ndarray, b: np.ndarray, region: np.ndarray | None = None) -> float:
    values = ssim_map(a, b)
    if region is None:
        return float(values.mean())
    return float(values[region].mean()) if region.any() else float("nan")


def temporal_error(out_t: np.ndarray, out_prev: np.ndarray, clean_t: np.ndarray, clean_prev: np.ndarray,
                   region: np.ndarray) -> float:
    """Mean |(out_t - out_t-1) - (clean_t - clean_t-1)| (grey levels, all channels) over `region` of frame t."""
    if not region.any():
        return float("nan")
    change = out_t.astype(np.float32) - out_prev.astype(np.float32)
    truth = clean_t.astype(np.float32) - clean_prev.astype(np.float32)
    return float(np.abs(change - truth)[region].mean())


def dis_flow(target_grey: np.ndarray, source_grey: np.ndarray) -> np.ndarray:
    """Dense flow (HxWx2) such that target(p) ~ source(p + flow(p)): what `warp_by_flow` needs to pull source onto target."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    return dis.calc(target_grey, source_grey, None)


def warp_by_flow(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """image(p + flow(p)) for every pixel p (bilinear, edges replicated)."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(image, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def consistent_flow(forward: np.ndarray, backward: np.ndarray, tolerance: float = 1.0) -> np.ndarray:
    """Pixels whose flow t->t-1 comes back (t-1->t) to within `tolerance` px + 5% of the motion (not disoccluded)."""
    back_at_target = warp_by_flow(backward, forward)
    loop = np.linalg.norm(forward + back_at_target, axis=2)
    return loop <= tolerance + 0.05 * np.linalg.norm(forward, axis=2)


def flow_warp_error(out_t: np.ndarray, out_prev: np.ndarray, clean_t: np.ndarray, clean_prev: np.ndarray,
                    flow: np.ndarray, region: np.ndarray) -> float:
    """temporal_error after warping both previous frames onto frame t with `flow` (computed on the clean frames)."""
    return temporal_error(out_t, warp_by_flow(out_prev, flow), clean_t, warp_by_flow(clean_prev, flow), region)
