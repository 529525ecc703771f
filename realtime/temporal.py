"""Per-track temporal smoothing of the predicted mask, in aligned (crop) coordinates.

Independent per-frame masks pop in and out; an exponential moving average with hysteresis (a pixel turns on
above `on`, stays on until it falls below `off`) keeps the replaced region stable while the face is tracked.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realtime.frame import Frame


@dataclass(frozen=True)
class TemporalConfig:
    enabled: bool = True
    mask_ema: float = 0.5      # weight of the newest mask in the running average (1 = no smoothing)
    on: float = 0.5            # hysteresis: a pixel becomes occluded above this smoothed probability
    off: float = 0.3           # ... and stays occluded until it drops below this one


@dataclass
class _TrackState:
    mask_avg: np.ndarray
    mask_on: np.ndarray
    last_index: int


class TemporalStage:
    name = "temporal"

    def __init__(self, config: TemporalConfig):
        self.config = config
        self._tracks: dict[int, _TrackState] = {}

    def reset(self) -> None:
        self._tracks.clear()

    def process(self, frame: Frame) -> Frame:
        cfg = self.config
        if not cfg.enabled:
            return frame
        seen = set()
        for face in frame.faces:
            if face.mask is None or face.track_id < 0:
                continue
            seen.add(face.track_id)
            state = self._tracks.get(face.track_id)
            if state is None or state.mask_avg.shape != face.mask.shape or frame.index - state.last_index > 1:
                state = _TrackState(face.mask.copy(), face.mask >= cfg.on, frame.index)
            else:
                state.mask_avg = cfg.mask_ema * face.mask + (1.0 - cfg.mask_ema) * state.mask_avg
                state.mask_on = np.where(state.mask_on, state.mask_avg >= cfg.off, state.mask_avg >= cfg.on)
                state.last_index = frame.index
            self._tracks[face.track_id] = state
            face.mask = state.mask_on.astype(np.float32)
        for track_id in list(self._tracks):
            if track_id not in seen:
                del self._tracks[track_id]
        return frame
