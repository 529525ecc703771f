"""Per-track alignment helpers for state kept in aligned (crop) coordinates, and a recurrent model's state.

A face's crop moves with the face; state kept from the previous frame in crop coordinates (a mask history, a
recurrent model's output) is moved onto the current crop by the change of alignment M_t . M_{t-1}^-1 before it is
used (`alignment_change`, `warp_crop_image`). `motion_of` says how far the face moved, `is_scene_cut` whether the
visible face is still the same. The find stage (realtime/find/) keeps its mask history with these.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from realtime.frame import Face


@dataclass(frozen=True)
class TemporalConfig:
    """When per-track state is dropped instead of carried over."""

    fast_motion: float = 0.15      # alignment change (crop-size fraction) at which the state starts again
    max_gap: int = 3               # frames between two sightings of a track beyond which its state is dropped


def alignment_change(matrix_prev: np.ndarray, matrix_now: np.ndarray) -> np.ndarray:
    """(2, 3) warp taking previous-crop pixels to current-crop pixels: M_now . M_prev^-1 (a closed-form affine
    inverse: np.linalg.inv on a 3x3 costs 0.15-0.9 ms a call here, in BLAS)."""
    back = cv2.invertAffineTransform(np.asarray(matrix_prev, np.float64))
    now = np.asarray(matrix_now, np.float64)
    return np.hstack([now[:, :2] @ back[:, :2], now[:, :2] @ back[:, 2:] + now[:, 2:]])


def motion_of(change: np.ndarray, crop_size: int) -> float:
    """How far the alignment change moves the crop's corners, at most, as a fraction of the crop size."""
    corners = np.array([[0, 0], [crop_size, 0], [0, crop_size], [crop_size, crop_size]], np.float64)
    moved = corners @ change[:, :2].T + change[:, 2]
    return float(np.linalg.norm(moved - corners, axis=1).max() / crop_size)


def warp_crop_image(image: np.ndarray, change: np.ndarray, size: int, scale: float = 1.0) -> np.ndarray:
    """Warp a crop-space image of the previous frame into the current crop (`scale` for super-resolved crops)."""
    m = np.asarray(change, np.float64).copy()
    m[:, 2] *= scale
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def is_scene_cut(crop: np.ndarray, warped_prev_crop: np.ndarray, visible: np.ndarray, threshold: float) -> bool:
    """The visible part of the face changed more than a face moving between two frames does."""
    if visible.sum() < 0.05 * visible.size:
        return False  # almost all covered: nothing to compare, keep the history
    now = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float32)
    before = cv2.cvtColor(warped_prev_crop, cv2.COLOR_BGR2GRAY).astype(np.float32)
    return float(np.abs(now - before)[visible].mean()) > threshold


class RecurrentStates:
    """Per-track recurrent state of a model whose contract declares `recurrent` inputs (state input -> output).

    A state is a (1, C, S, S) model-space tensor in the crop coordinates of the frame it came from; before it is fed
    back it is warped by the change of alignment, like the mask and completion histories above. Tracks that are
    not seen for more than `max_gap` frames, or that jump by more than `fast_motion`, start again from zeros (None).
    To be wired into the infer stage: `runner.run(crops, states=states.states_for(faces, index))`, then
    `states.remember(faces, output.states, index)`.
    """

    def __init__(self, config: TemporalConfig = TemporalConfig()):
        self.config = config
        self._tracks: dict[int, tuple[np.ndarray, dict[str, np.ndarray], int]] = {}  # id -> (matrix, state, index)

    def states_for(self, faces: list[Face], index: int) -> list[dict[str, np.ndarray] | None]:
        out: list[dict[str, np.ndarray] | None] = []
        for face in faces:
            kept = self._tracks.get(face.track_id)
            if kept is None or face.matrix is None or not 0 < index - kept[2] <= self.config.max_gap:
                out.append(None)
                continue
            matrix, state, _ = kept
            change = alignment_change(matrix, face.matrix)
            crop_size = face.crop.shape[0] if face.crop is not None else next(iter(state.values())).shape[-1]
            if motion_of(change, crop_size) >= self.config.fast_motion:
                out.append(None)
                continue
            out.append({name: warp_state(tensor, change, crop_size) for name, tensor in state.items()})
        return out

    def remember(self, faces: list[Face], states: list[dict[str, np.ndarray]] | None, index: int) -> None:
        if not states:
            return
        for face, state in zip(faces, states):
            if face.track_id >= 0 and face.matrix is not None:
                self._tracks[face.track_id] = (np.asarray(face.matrix, np.float64).copy(), state, index)
        for track_id in [t for t, kept in self._tracks.items() if index - kept[2] > self.config.max_gap]:
            del self._tracks[track_id]


def warp_state(tensor: np.ndarray, change: np.ndarray, crop_size: int) -> np.ndarray:
    """Warp a (1, C, S', S') state (S' = crop_size * scale) into the current crop's coordinates."""
    size = tensor.shape[-1]
    # one channel at a time: OpenCV warps at most 4 channels per call, a state may have more
    channels = [warp_crop_image(np.ascontiguousarray(c, np.float32), change, size, size / crop_size) for c in tensor[0]]
    return np.stack(channels)[None].astype(tensor.dtype)
