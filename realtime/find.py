"""Find: the one place where a face's occlusion mask is decided, from evidence, precision first.

Evidence per face, in aligned-crop coordinates:
- the face region: the mesh's face oval. Nothing outside it is ever marked, so hair, clothes and background
  never change;
- the finder network: an `occlusion_mask` segmenter (its contract carries the calibrated threshold), or a
  blind-completion network's mask head;
- hands: mediapipe Hands on the whole frame (the hands stage, realtime.hands), palm and finger capsules.

Decision: a pixel is a candidate where the finder is above the threshold or a hand covers it, inside the face;
regions smaller than `min_area` are dropped. In video the mask belongs to the track: a candidate region reaches the
output at once only when the finder is sure of it (mean probability >= `confident`) or a hand covers it; otherwise
once it was also a candidate in the previous frame or touches an occlusion already on (so an unsure speckle seen in
one frame never does). An occlusion stays on while the finder stays above `off_ratio` x threshold (hysteresis).
The decision is grown by `dilate` (occluder fringes) and handed to fill and blend as `face.mask`.
A track that was occluded and that the detector loses is carried at its last place for up to `max_coast` frames
while the visible face there stays the same: an occluder over the nose and eyes often hides the face from the
detector exactly when it most needs filling.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from realtime.align import transform_points, warp_to_crop
from realtime.frame import Face, Frame
from realtime.hands import hand_mask
from realtime.regions import dilate, face_region, remove_specks
from realtime.runner import ModelRunner
from realtime.temporal import alignment_change, is_scene_cut, motion_of, warp_crop_image


@dataclass(frozen=True)
class FindConfig:
    threshold: float | None = None   # finder probability for "covered"; None = the model contract's (or 0.5)
    min_area: float = 0.0015         # smallest region kept, as a fraction of the crop's area
    video: bool = True               # frames are a sequence: masks persist per track (False: unrelated photos)
    persist_frames: int = 2          # in video, a new region must be seen in 2 consecutive frames (1 = at once)...
    confident: float = 0.97          # ...unless the finder's mean probability over it is at least this (and at
                                     # least halfway from the threshold to 1)
    off_ratio: float = 0.6           # an occlusion stays on while the finder is above off_ratio x threshold
    dilate: float = 0.015            # the decision grows by this crop fraction (occluder fringes)
    hands: bool = True               # mediapipe Hands evidence (the hands stage finds them, realtime/hands.py)
    hands_every: int = 2             # the hands stage runs Hands on every n-th frame of a video, keeps hands between
    max_gap: int = 3                 # frames a track may be unseen before its mask history is dropped
    max_coast: int = 6               # an occluded track the detector lost is carried this many frames at its place
    fast_motion: float = 0.25        # alignment change (crop fraction) beyond which history is dropped
    scene_cut: float = 30.0          # mean grey change of the visible face that drops the history


@dataclass
class MaskHistory:
    matrix: np.ndarray       # (2, 3) frame -> crop warp of the frame it was decided in
    crop: np.ndarray         # that frame's crop (scene-cut test)
    candidate: np.ndarray    # (S, S) bool: the candidate pixels of that frame
    on: np.ndarray           # (S, S) bool: the decision of that frame, before growing
    index: int
    prior: tuple[np.ndarray, np.ndarray] | None  # the history that decision used (a re-shown frame reuses it)
    landmarks: np.ndarray | None = None         # (468, 2) that frame's mesh, for coasting
    box: np.ndarray | None = None
    coasted: int = 0                            # frames in a row this track was carried without a detection


def finder_threshold(runner: ModelRunner, config: FindConfig) -> float:
    if config.threshold is not None:
        return float(config.threshold)
    return float(runner.contract.threshold) if runner.contract.threshold is not None else 0.5


def connected_to(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The connected regions of `mask` that contain at least one `seeds` pixel."""
    if not mask.any() or not seeds.any():
        return np.zeros_like(mask, bool)
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    hit = np.zeros(count, bool)
    hit[np.unique(labels[seeds & mask])] = True
    hit[0] = False
    return hit[labels]


def decide(probability: np.ndarray, hands: np.ndarray, region: np.ndarray, threshold: float,
           history: tuple[np.ndarray, np.ndarray] | None, config: FindConfig) -> tuple[np.ndarray, np.ndarray]:
    """(candidate, on) for one face. `history` is the previous frame's (candidate, on), already in this crop's
    coordinates, or None for a face seen for the first time."""
    min_area = max(int(round(config.min_area * region.size)), 1)
    candidate = remove_specks(((probability >= threshold) | hands) & region, min_area)
    if config.persist_frames <= 1 or not config.video:
        return candidate, candidate
    sure = confident_regions(candidate, probability, hands, max(config.confident, threshold + 0.5 * (1.0 - threshold)))
    if history is None:
        return candidate, sure
    prev_candidate, prev_on = history
    near_on = dilate(prev_on, 2)
    confirmed = connected_to(candidate, prev_candidate | near_on)
    held = prev_on & ((probability >= config.off_ratio * threshold) | hands) & region
    return candidate, remove_specks(sure | confirmed | held, min_area)


def confident_regions(candidate: np.ndarray, probability: np.ndarray, hands: np.ndarray, confident: float) -> np.ndarray:
    """The candidate regions the finder is sure of (mean probability >= `confident`) or that hold a hand."""
    if not candidate.any():
        return candidate
    count, labels = cv2.connectedComponents(candidate.astype(np.uint8), connectivity=8)
    index = labels.ravel()
    mean = np.bincount(index, probability.ravel().astype(np.float64), count) / np.maximum(np.bincount(index, None, count), 1)
    sure = mean >= confident
    sure[np.unique(labels[hands & candidate])] = True
    sure[0] = False
    return sure[labels]


class FindStage:
    name = "find"

    def __init__(self, finder: ModelRunner, config: FindConfig = FindConfig()):
        self.finder = finder
        self.config = config
        self._tracks: dict[int, MaskHistory] = {}

    @property
    def threshold(self) -> float:
        return finder_threshold(self.finder, self.config)

    def reset(self) -> None:
        self._tracks.clear()

    def process(self, frame: Frame) -> Frame:
        frame.faces.extend(self._coasting_faces(frame))
        faces = [f for f in frame.faces if f.crop is not None and f.landmarks is not None]
        if not faces:
            self._forget(frame.index, set())
            return frame
        found = self.finder.run([f.crop for f in faces])
        hands = (frame.hands or []) if self.config.hands else []
        size = faces[0].crop.shape[0]
        threshold = self.threshold
        for i, face in enumerate(faces):
            face.region = face_region(transform_points(face.landmarks, face.matrix), size)
            probability = found.masks[i]
            hand = hand_mask(hands, face.matrix, size) if hands else np.zeros((size, size), bool)
            face.evidence = {"finder": probability, "hands": hand}
            if found.images:  # a blind-completion finder also paints: its fill is the network filler
                face.completed = found.images[i]
            history = self._history(face, frame.index)
            candidate, on = decide(probability, hand, face.region, threshold, history, self.config)
            if face.track_id >= 0:
                coasted = self._tracks[face.track_id].coasted + 1 if face.score <= 0 else 0
                self._tracks[face.track_id] = MaskHistory(np.asarray(face.matrix, np.float64).copy(), face.crop,
                                                          candidate, on, frame.index, history,
                                                          np.asarray(face.landmarks, np.float32).copy(),
                                                          np.asarray(face.box, np.float32).copy(), coasted)
            grow = int(round(self.config.dilate * size))
            face.mask = (dilate(on, grow) & face.region).astype(np.float32)
            # the occluder's part beyond the face is never repainted, but inpainting must not take colour from it
            face.evidence["beyond"] = dilate(((probability >= threshold) | hand) & ~face.region, grow) if on.any() \
                else np.zeros((size, size), bool)
        self._forget(frame.index, {f.track_id for f in faces})
        return frame

    def _coasting_faces(self, frame: Frame) -> list[Face]:
        """Tracks that were occluded last frame and that the detector lost now (a hand or a bar over the nose and
        eyes often hides the face from it) are carried at their last place, if the visible face there is still
        the same (no cut, no move); they are decided and filled like detected faces, but never remembered."""
        if frame.decode_failed or self.config.max_coast <= 0:
            return []
        present = {f.track_id for f in frame.faces}
        carried = []
        for track_id, kept in self._tracks.items():
            if (track_id in present or kept.landmarks is None or not kept.on.any()
                    or frame.index - kept.index != 1 or kept.coasted >= self.config.max_coast):
                continue
            size = kept.crop.shape[0]
            crop = warp_to_crop(frame.image, kept.matrix, size)
            if is_scene_cut(crop, kept.crop, ~dilate(kept.on | kept.candidate, 3), self.config.scene_cut):
                continue
            carried.append(Face(box=kept.box.copy(), score=0.0, landmarks=kept.landmarks.copy(), track_id=track_id,
                                matrix=kept.matrix.copy(), crop=crop))
        return carried

    def _history(self, face: Face, index: int) -> tuple[np.ndarray, np.ndarray] | None:
        kept = self._tracks.get(face.track_id)
        if kept is not None and index == kept.index:  # the same frame again (a paused viewer): the same decision
            return kept.prior
        if kept is None or face.track_id < 0 or not 0 < index - kept.index <= self.config.max_gap:
            return None
        size = face.crop.shape[0]
        change = alignment_change(kept.matrix, face.matrix)
        if motion_of(change, size) > self.config.fast_motion:
            return None
        candidate = warp_crop_image(kept.candidate.astype(np.float32), change, size) >= 0.5
        on = warp_crop_image(kept.on.astype(np.float32), change, size) >= 0.5
        visible = ~dilate(on | candidate, 3)
        if is_scene_cut(face.crop, warp_crop_image(kept.crop, change, size), visible, self.config.scene_cut):
            return None
        return candidate, on

    def _forget(self, index: int, seen: set[int]) -> None:
        for track_id in [t for t, h in self._tracks.items() if t not in seen and index - h.index > self.config.max_gap]:
            del self._tracks[track_id]
