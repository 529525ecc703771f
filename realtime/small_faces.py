"""Small and distant faces: a completion_super_resolution network paints their holes.

A face whose eyes are closer together than `FillConfig.small_face_eyes` frame pixels is aligned into the 128 px
crop by upsampling, so a 128 px network sees blur. When a completion_super_resolution model is loaded (issue #16,
FCSR-GAN), such a face is instead cut out at the model's own input size (32 px, the same template and margin:
an area downscale like the trainer's), given the finder's mask brought to that size (every small pixel the mask
touches counts), and the model's output -- the same face crop at 128 px -- is what the network filler pastes, at the
face's own size in the frame. Faces at or above the threshold never reach this module.
"""
from __future__ import annotations

import cv2
import numpy as np

from realtime.align import five_points_from_mesh, warp_to_crop
from realtime.runner import ModelRunner


def eyes_distance(landmarks: np.ndarray) -> float:
    """Inter-ocular distance (eye centre to eye centre) in frame pixels, from the face mesh."""
    five = five_points_from_mesh(landmarks)
    return float(np.linalg.norm(five[1] - five[0]))


def is_small(landmarks: np.ndarray | None, below: float) -> bool:
    return landmarks is not None and below > 0 and eyes_distance(landmarks) < below


def small_matrix(matrix: np.ndarray, crop_size: int, input_size: int) -> np.ndarray:
    """Frame -> small crop warp of the same alignment as `matrix` (frame -> crop_size crop), with the pixel grid of
    an area downscale of that crop: small pixel k covers crop pixels [f*k, f*(k+1)), f = crop_size / input_size."""
    factor = crop_size / input_size
    small = np.asarray(matrix, np.float64).copy()
    small[:, 2] -= (factor - 1.0) / 2.0
    return small / factor


def small_inputs(image: np.ndarray, matrix: np.ndarray, mask: np.ndarray, input_size: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(the face cut out at `input_size` from the frame, the crop-size mask at `input_size`)."""
    crop_size = mask.shape[0]
    crop = warp_to_crop(image, small_matrix(matrix, crop_size, input_size), input_size)
    small_mask = (cv2.resize(mask.astype(np.float32), (input_size, input_size), interpolation=cv2.INTER_AREA) > 0)
    return crop, small_mask.astype(np.float32)


def complete_small(runner: ModelRunner, image: np.ndarray, matrix: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The model's completed face (uint8 BGR) at its output size, in the coordinates of the crop `matrix` makes."""
    crop, small_mask = small_inputs(image, matrix, mask, runner.contract.crop_size)
    completed = runner.run([crop], [small_mask]).images[0]
    if completed.shape[0] != mask.shape[0]:  # an output size other than the pipeline's crop: bring it to the crop
        completed = cv2.resize(completed, mask.shape[::-1], interpolation=cv2.INTER_AREA)
    return completed
