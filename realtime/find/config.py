"""The find stage's settings (one record, passed in; realtime.options builds it from the command line)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FindConfig:
    threshold: float | None = None   # finder probability for "covered"; None = the model contract's (or 0.5)
    min_area: float = 0.0015         # smallest region kept, as a fraction of the crop's area...
    min_area_alone: float = 0.008    # ...and of one that only the segmenter marks (no hand, no overlay in it): a
                                     # glasses frame or brow it fires on is smaller (docs/find.md)
    video: bool = True               # frames are a sequence: masks persist per track (False: unrelated photos)
    persist_frames: int = 2          # in video, a new region must be seen in 2 consecutive frames (1 = at once)...
    confident: float = 0.97          # ...unless the finder's mean probability over it is at least this (and at
                                     # least halfway from the threshold to 1)
    off_ratio: float = 0.6           # an occlusion stays on while the finder is above off_ratio x threshold
    dilate: float = 0.015            # the decision grows by this crop fraction (occluder fringes)
    segmenter_every: int = 2         # in video the segmenter runs at least every n-th frame of a track...
    segmenter_still: float = 30.0    # ...and again whenever a block of the crop changed by more levels
                                     # (find/segmenter.py)
    surface: bool = True             # the surface-change evidence, when an occlusion_change model is loaded
    surface_veto: float = 0.3        # a region without a hand whose mean change probability is below this is dropped
    surface_adds: bool = False       # also take a sure change where the segmenter is unsure (off: precision first;
                                     # docs/find.md has what it did on clean clips)
    hands: bool = True               # mediapipe Hands evidence (the hands stage finds them, find/hands.py)
    hands_complexity: int = 0        # mediapipe Hands model (0 light, 1 full; 1 with score 0.3 touched more clean frames)
    hands_min_score: float = 0.5     # its palm-detection score (docs/find.md)
    hands_refine: float = 0.03       # GrabCut band around the hand silhouette, crop fraction (0 = the shape as drawn)
    hands_wrist_beyond: float | None = 0.2  # a hand counts for a face only with its wrist this many face widths
                                     # outside the face oval (None: every hand counts; find/hands.py)...
    hands_min_palm: float = 0.22     # ...and a palm at least this many face widths long
    graphic: bool = True             # graphic overlays by their flat colour (find/graphic.py)...
    graphic_low: float = 0.05        # ...among pixels the finder suspects this much...
    graphic_min_area: float = 0.0009  # ...an exact colour over at least this fraction of the crop is an overlay's
    graphic_grow: float = 0.008      # its pixels grow by this crop fraction (1 px at 128: a resampled edge's rim)
    hands_every: int = 2             # the hands stage runs Hands on every n-th frame of a video, keeps hands between
    max_gap: int = 3                 # frames a track may be unseen before its mask history is dropped
    max_coast: int = 6               # an occluded track the detector lost is carried this many frames at its place
    fast_motion: float = 0.25        # alignment change (crop fraction) beyond which history is dropped
    scene_cut: float = 30.0          # mean grey change of the visible face that drops the history
