"""Blend: paste back only the pixels the model marks as occluded (dilated and feathered); nothing else changes."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from realtime.align import paste_back
from realtime.frame import Frame


@dataclass(frozen=True)
class BlendConfig:
    threshold: float = 0.5   # mask probability above which a crop pixel counts as occluded
    dilate: float = 0.02     # grow the occluded region by this fraction of the crop size (catches occluder fringes)
    feather: float = 0.03    # soft edge width as a fraction of the crop size (hides the seam)


def occluded_region(mask: np.ndarray, config: BlendConfig) -> np.ndarray:
    """Crop-space uint8 0/1: the mask thresholded and grown by `dilate`. The pixels that get replaced (before
    feathering), and the hole a symmetry model is asked to fill, so it fills exactly what is pasted."""
    occluded = (mask >= config.threshold).astype(np.uint8)
    grow = int(round(config.dilate * mask.shape[0]))
    if grow > 0 and occluded.any():
        occluded = cv2.dilate(occluded, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    return occluded


def blend_weight(mask: np.ndarray, config: BlendConfig) -> np.ndarray:
    """Crop-space paste weight in [0, 1]: 1 on the (dilated) occlusion, falling to 0 over the feather width."""
    occluded = occluded_region(mask, config)
    if not occluded.any():
        return np.zeros(mask.shape, np.float32)
    size = mask.shape[0]
    weight = occluded.astype(np.float32)
    sigma = config.feather * size / 2.0
    if sigma > 0:
        weight = np.maximum(cv2.GaussianBlur(weight, (0, 0), sigma), weight)
    weight[weight < 1.0 / 255.0] = 0.0  # a weight that rounds to no change must not mark the pixel as replaced
    return weight


def blend_frame(frame: Frame, config: BlendConfig) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(output, replaced) for a frame whose faces carry `completed` and `mask`; (None, None) when nothing changes."""
    out = None
    replaced = None
    for face in frame.faces:
        if face.completed is None or face.mask is None:
            continue
        weight = blend_weight(face.mask, config)
        if not weight.any():
            continue
        completed = face.completed
        if completed.shape[0] != weight.shape[0]:  # super-resolution models return a larger crop
            weight = cv2.resize(weight, completed.shape[:2][::-1], interpolation=cv2.INTER_LINEAR)
            matrix = face.matrix * (completed.shape[0] / face.mask.shape[0])
        else:
            matrix = face.matrix
        out, frame_weight = paste_back(frame.image if out is None else out, completed, weight, matrix)
        replaced = np.zeros(frame.image.shape[:2], np.uint8) if replaced is None else replaced
        replaced[frame_weight > 0] = 255
    return out, replaced
