"""Per-track temporal smoothing of the predicted mask and of the completed pixels, in aligned (crop) coordinates.

Per-frame completion flickers: the mask pops in and out at its edges and the filled pixels change from frame to
frame although the face behind barely moved. For every tracked face this stage keeps the previous frame's state in
crop coordinates and, before using it, warps it by the change of alignment M_t . M_{t-1}^-1 so it lies on the same
face pixels as the current crop. Then:
- mask: an exponential moving average with hysteresis. A pixel turns on when the current mask or the average is
  above `on` (a confident new detection shows at once, so a moving occluder's leading edge never leaks), and stays
  on until the average falls below `off` (so a pixel flickering around the threshold stays on).
- completed pixels, inside the (slightly grown) mask: an average of the newest completion and the previous result,
  whose weight falls from `1 - completion_ema` to 0 as the face moves faster (no ghosting on fast motion). Pixels
  that were visible last frame and are covered now thus start from the real face seen a moment ago.
- history is dropped on a new track, a gap of more than `max_gap` frames, fast motion (completion only) and a scene
  cut (the visible part of the crop changed too much after compensating the alignment change).
- a track whose face is not detected for up to `max_coast` frames keeps being pasted with its last mask and
  completion, so a one-frame detector miss does not make the occluder flash back; not after a cut (the place
  where the face was must still look like it).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from realtime.align import warp_to_crop
from realtime.frame import Face, Frame


@dataclass(frozen=True)
class TemporalConfig:
    enabled: bool = True
    mask_ema: float = 0.5          # weight of the newest mask in the running average (1 = no smoothing)
    on: float = 0.5                # hysteresis: a pixel becomes occluded above this (current or smoothed) probability
    off: float = 0.3               # ... and stays occluded until the smoothed probability drops below this one
    completion_ema: float = 0.15   # weight of the newest completion when the face is still (1 = no smoothing)
    fast_motion: float = 0.15      # alignment change (crop-size fraction) at which the previous completion gets no weight
    blend_grow: float = 0.06       # completion smoothing covers the mask grown by this crop fraction (blend dilate+feather)
    scene_cut: float = 25.0        # mean |grey change| of the visible crop (0..255) above which history is dropped
    max_gap: int = 3               # frames between two sightings of a track beyond which its history is dropped
    max_coast: int = 2             # frames an undetected track keeps its last mask and completion (0 = never)


@dataclass
class TrackHistory:
    """What the stage remembers of one track, in the crop coordinates of the frame it was last seen in."""

    matrix: np.ndarray             # (2, 3) frame -> crop warp of that frame
    crop: np.ndarray               # (S, S, 3) uint8 aligned crop, for scene-cut detection
    mask_avg: np.ndarray           # (S, S) float32 running average of the mask
    mask_on: np.ndarray            # (S, S) bool hysteresis state
    completed: np.ndarray | None   # (S', S', 3) float32 smoothed completion (S' = S * output scale), None without one
    box: np.ndarray
    last_index: int


def alignment_change(matrix_prev: np.ndarray, matrix_now: np.ndarray) -> np.ndarray:
    """(2, 3) warp taking previous-crop pixels to current-crop pixels: M_now . M_prev^-1."""
    prev = np.vstack([np.asarray(matrix_prev, np.float64), [0.0, 0.0, 1.0]])
    now = np.vstack([np.asarray(matrix_now, np.float64), [0.0, 0.0, 1.0]])
    return (now @ np.linalg.inv(prev))[:2]


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


def smooth_mask(mask: np.ndarray, avg_prev: np.ndarray | None, on_prev: np.ndarray | None,
                config: TemporalConfig) -> tuple[np.ndarray, np.ndarray]:
    """(running average, hysteresis state) after the newest mask; previous state already in current coordinates."""
    if avg_prev is None or on_prev is None:
        return mask.astype(np.float32).copy(), mask >= config.on
    avg = (config.mask_ema * mask + (1.0 - config.mask_ema) * avg_prev).astype(np.float32)
    on = (mask >= config.on) | (avg >= config.on) | (on_prev & (avg >= config.off))
    return avg, on


def completion_weight(motion: float, config: TemporalConfig) -> float:
    """Weight of the newest completion: `completion_ema` when still, rising linearly to 1 at `fast_motion`."""
    if config.fast_motion <= 0:
        return 1.0
    return float(min(1.0, config.completion_ema + (1.0 - config.completion_ema) * motion / config.fast_motion))


def grown(mask_on: np.ndarray, fraction: float) -> np.ndarray:
    px = int(round(fraction * mask_on.shape[0]))
    if px <= 0 or not mask_on.any():
        return mask_on
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask_on.astype(np.uint8), kernel).astype(bool)


class TemporalStage:
    name = "temporal"

    def __init__(self, config: TemporalConfig):
        self.config = config
        self._tracks: dict[int, TrackHistory] = {}

    def reset(self) -> None:
        self._tracks.clear()

    def process(self, frame: Frame) -> Frame:
        cfg = self.config
        if not cfg.enabled:
            self._tracks.clear()
            return frame
        seen = set()
        for face in frame.faces:
            if face.mask is None or face.crop is None or face.matrix is None or face.track_id < 0:
                continue
            seen.add(face.track_id)
            self._tracks[face.track_id] = self._smooth_face(face, self._tracks.get(face.track_id), frame.index)
        for track_id, history in list(self._tracks.items()):
            if track_id in seen:
                continue
            missed = frame.index - history.last_index
            if missed > cfg.max_gap:
                del self._tracks[track_id]
            elif missed <= cfg.max_coast and not frame.decode_failed and history.completed is not None:
                if self._still_there(frame, history):
                    frame.faces.append(coasting_face(track_id, history))
                else:
                    del self._tracks[track_id]  # the view changed (a cut): a face found later starts afresh
        return frame

    def _still_there(self, frame: Frame, history: TrackHistory) -> bool:
        """The detector missed the face, but the frame where it was still looks like it (no cut)."""
        crop_now = warp_to_crop(frame.image, history.matrix, history.crop.shape[0])
        visible = ~history.mask_on
        if visible.sum() < 0.05 * visible.size:
            return True
        return not is_scene_cut(crop_now, history.crop, visible, self.config.scene_cut)

    def _smooth_face(self, face: Face, history: TrackHistory | None, index: int) -> TrackHistory:
        cfg = self.config
        size = face.mask.shape[0]
        usable = history is not None and history.mask_avg.shape == face.mask.shape and 0 < index - history.last_index <= cfg.max_gap
        avg_prev = on_prev = completed_prev = None
        motion = 0.0
        if usable:
            change = alignment_change(history.matrix, face.matrix)
            motion = motion_of(change, size)
            on_prev = warp_crop_image(history.mask_on.astype(np.float32), change, size) >= 0.5
            visible = ~on_prev & (face.mask < cfg.on)
            if is_scene_cut(face.crop, warp_crop_image(history.crop, change, size), visible, cfg.scene_cut):
                on_prev = None
            else:
                avg_prev = warp_crop_image(history.mask_avg, change, size)
                if history.completed is not None and face.completed is not None and history.completed.shape == face.completed.shape:
                    out_size = face.completed.shape[0]
                    completed_prev = warp_crop_image(history.completed, change, out_size, out_size / size)
        mask_avg, mask_on = smooth_mask(face.mask, avg_prev, on_prev, cfg)
        completed = None if face.completed is None else face.completed.astype(np.float32)
        if completed is not None and completed_prev is not None:
            weight = completion_weight(motion, cfg)
            if weight < 1.0:
                region = grown(mask_on, cfg.blend_grow)
                if completed.shape[0] != size:
                    region = cv2.resize(region.astype(np.uint8), completed.shape[:2][::-1], interpolation=cv2.INTER_NEAREST).astype(bool)
                completed[region] = weight * completed[region] + (1.0 - weight) * completed_prev[region]
        face.mask = mask_on.astype(np.float32)
        if completed is not None:
            face.completed = np.clip(np.rint(completed), 0, 255).astype(np.uint8)
        return TrackHistory(np.asarray(face.matrix, np.float64).copy(), face.crop, mask_avg, mask_on, completed,
                            np.asarray(face.box, np.float64).copy(), index)


def coasting_face(track_id: int, history: TrackHistory) -> Face:
    """A stand-in for a face the detector missed this frame: last frame's place, mask and completion."""
    return Face(box=history.box.astype(np.float32), score=0.0, landmarks=None, track_id=track_id,
                matrix=history.matrix.copy(), crop=None, mask=history.mask_on.astype(np.float32),
                completed=np.clip(np.rint(history.completed), 0, 255).astype(np.uint8))


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
