"""The records that travel through the pipeline.

A `Frame` goes the whole way from source to sink. Each stage reads what earlier stages wrote and adds
its own part; only the temporal stage keeps per-track state of its own.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np


@dataclass
class FaceFill:
    """What the fill stage made for one face, in frame pixels over `box`; the blend pastes it."""

    box: tuple[int, int, int, int]       # x0, y0, x1, y1 in the frame
    image: np.ndarray                    # (h, w, 3) uint8 the face with its occlusion filled
    weight: np.ndarray                   # (h, w) float32 paste weight in [0, 1]; 0 outside the face oval
    source: np.ndarray                   # (h, w) uint8 which filler made each pixel (realtime.fill.FILLERS)


@dataclass
class Face:
    """One face in one frame. Images are uint8 BGR (OpenCV order); masks are float32 in [0, 1], 1 = occluded."""

    box: np.ndarray                      # (4,) float32 x0, y0, x1, y1 in frame pixels
    score: float
    landmarks: np.ndarray | None = None  # (468, 2) float32 face-mesh points in frame pixels
    track_id: int = -1
    matrix: np.ndarray | None = None     # (2, 3) float64 similarity warp frame -> aligned crop
    crop: np.ndarray | None = None       # (S, S, 3) uint8 aligned crop
    region: np.ndarray | None = None     # (S, S) bool face oval in crop coordinates: the only pixels that may change
    evidence: dict = field(default_factory=dict)  # name -> (S, S) crop map: "finder" probability, "hands" bool
    mask: np.ndarray | None = None       # (S, S) float32 the decided occlusion (find stage), 1 = occluded
    found_by: np.ndarray | None = None   # (S, S) uint8 which evidence decided each mask pixel (find.decide.EVIDENCE)
    completed: np.ndarray | None = None  # (S, S, 3) uint8 a network's completion in crop coordinates, if one ran
    fill: FaceFill | None = None         # the fill stage's result, pasted by the blend stage


@dataclass
class Frame:
    index: int
    image: np.ndarray                    # (H, W, 3) uint8 BGR, never modified in place
    pts: int | None = None               # presentation timestamp in `time_base` units (video files)
    time_base: Fraction | None = None
    captured_at: float = field(default_factory=time.perf_counter)
    faces: list[Face] = field(default_factory=list)
    hands: list[np.ndarray] | None = None  # (21, 2) float32 frame-pixel landmarks per hand (hands stage)
    output: np.ndarray | None = None     # (H, W, 3) uint8 result; None until the blend stage ran
    replaced: np.ndarray | None = None   # (H, W) uint8, 255 where output differs from image by design
    timings: dict[str, float] = field(default_factory=dict)  # stage name -> wall milliseconds
    cpu_timings: dict[str, float] = field(default_factory=dict)  # stage name -> CPU ms of the stage's own thread
    decode_failed: bool = False          # the source could not decode this frame; it passes through as-is
    source_name: str | None = None       # file name for image sources (outputs keep it)

    def result(self) -> np.ndarray:
        """The image to show or write: the blended output, or the untouched input."""
        return self.image if self.output is None else self.output
