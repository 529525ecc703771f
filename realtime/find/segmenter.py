"""The single-image segmenter as evidence: its "covered" probability per face, at its own pace in video.

The segmenter is the find stage's largest cost. In video a face that looks as it did when the segmenter last saw
it (its aligned crop, warped to the current alignment, differs by at most `still_levels` levels, averaged over
the colour channels, in every block) and was seen at most `every - 1` frames ago reuses that probability, warped the same way. A hand coming in,
a bar moving or a fast head turn changes blocks of the crop, so the segmenter runs again on that very frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from realtime.frame import Face
from realtime.runner import ModelRunner
from realtime.temporal import alignment_change, motion_of, warp_crop_image

BLOCK = 16          # crop pixels per side of a compared block
MAX_MOTION = 0.05   # alignment change (crop fraction) beyond which the segmenter runs again


@dataclass
class LastRun:
    index: int
    matrix: np.ndarray       # (2, 3) frame -> crop of the frame the segmenter ran on
    crop: np.ndarray         # (S, S, 3) float32 that crop
    probability: np.ndarray  # (S, S) what it said


def block_change(now: np.ndarray, then: np.ndarray, block: int = BLOCK) -> float:
    """The largest mean absolute difference over the blocks of two crops, averaged over their channels (colour:
    an occluder as bright as the skin it covers still differs in hue); a partial last block counts."""
    diff = np.abs(now - then)
    if diff.ndim == 3:
        diff = diff.mean(axis=2)
    h, w = diff.shape
    rows, cols = -(-h // block), -(-w // block)
    padded = np.zeros((rows * block, cols * block), np.float32)
    counts = np.zeros_like(padded)
    padded[:h, :w], counts[:h, :w] = diff, 1.0
    sums = padded.reshape(rows, block, cols, block).sum(axis=(1, 3))
    return float((sums / counts.reshape(rows, block, cols, block).sum(axis=(1, 3))).max())


class SegmenterEvidence:
    """`probabilities(faces, index)`: per face (S, S) float32 in [0, 1], and the blind finder's completed crops
    (empty unless the model paints). `every` 1 runs the network on every face of every frame."""

    def __init__(self, runner: ModelRunner, every: int = 2, still_levels: float = 12.0, video: bool = True):
        self.runner = runner
        self.every = every if video else 1
        self.still_levels = still_levels
        self.runs = 0                      # faces the network ran on (for tests and benchmarks)
        self._last: dict[int, LastRun] = {}

    def probabilities(self, faces: list[Face], index: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        crops = [f.crop.astype(np.float32) for f in faces]
        out: list[np.ndarray | None] = [self._reused(f, c, index) for f, c in zip(faces, crops)]
        todo = [i for i, p in enumerate(out) if p is None]
        images: list[np.ndarray] = []
        if todo:
            found = self.runner.run([faces[i].crop for i in todo])
            self.runs += len(todo)
            if found.images:          # a blind-completion finder also paints: nothing is reused
                self.every = 1    # (so from then on every face runs, and images line up with faces)
                images = found.images
            for i, probability in zip(todo, found.masks):
                out[i] = probability
                if faces[i].track_id >= 0 and self.every > 1:
                    self._last[faces[i].track_id] = LastRun(index, np.asarray(faces[i].matrix, np.float64).copy(),
                                                            crops[i], probability)
        seen = {f.track_id for f in faces}
        for track_id in [t for t, r in self._last.items() if t not in seen and index - r.index >= self.every]:
            del self._last[track_id]
        return out, images

    def _reused(self, face: Face, crop: np.ndarray, index: int) -> np.ndarray | None:
        last = self._last.get(face.track_id) if face.track_id >= 0 else None
        if last is None or not 0 < index - last.index < self.every:
            return None
        size = crop.shape[0]
        change = alignment_change(last.matrix, face.matrix)
        if motion_of(change, size) > MAX_MOTION:
            return None
        if block_change(crop, warp_crop_image(last.crop, change, size)) > self.still_levels:
            return None
        return np.clip(warp_crop_image(last.probability, change, size), 0.0, 1.0)

    def reset(self) -> None:
        self._last.clear()
