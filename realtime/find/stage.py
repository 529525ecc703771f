"""The find stage: runs the segmenter, draws each evidence source in crop space, keeps each track's mask history
and hands it all to `decide`; carries occluded tracks the detector lost."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from realtime.align import transform_points, warp_to_crop
from realtime.frame import Face, Frame
from realtime.find.config import FindConfig
from realtime.find.decide import confident_regions, decide, found_by, sure_level
from realtime.find.graphic import graphic_mask_for_face
from realtime.find.hands import hand_mask, in_front_of_face
from realtime.find.segmenter import SegmenterEvidence
from realtime.find.surface import SurfaceEvidence
from realtime.regions import dilate, face_region, remove_specks
from realtime.runner import ModelRunner
from realtime.temporal import alignment_change, is_scene_cut, motion_of, warp_crop_image


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


def judged_clean(candidate: np.ndarray, probability: np.ndarray, certain: np.ndarray, region: np.ndarray,
                 confident: float) -> bool:
    """Whether a face may become its track's reference: no hand or overlay on it (`certain`) and nothing the
    segmenter is sure of. What the segmenter only suspects (a frame of glasses, a beard's edge) is kept in the
    reference: if it stays the same, it is the person's own, and the surface evidence vetoes it from then on."""
    return not (certain & region).any() and not confident_regions(candidate, probability, certain, confident).any()


class FindStage:
    name = "find"

    def __init__(self, finder: ModelRunner, config: FindConfig = FindConfig(), change: ModelRunner | None = None):
        self.finder = finder
        self.config = config
        self._tracks: dict[int, MaskHistory] = {}
        self.segmenter = SegmenterEvidence(finder, config.segmenter_every, config.segmenter_still, config.video)
        # the surface evidence needs tracks (video) and an occlusion_change model
        self.surface = SurfaceEvidence(change) if change is not None and config.surface and config.video else None

    @property
    def threshold(self) -> float:
        return finder_threshold(self.finder, self.config)

    def reset(self) -> None:
        self._tracks.clear()
        self.segmenter.reset()
        if self.surface is not None:
            self.surface.reset()

    def process(self, frame: Frame) -> Frame:
        frame.faces.extend(self._coasting_faces(frame))
        faces = [f for f in frame.faces if f.crop is not None and f.landmarks is not None]
        if not faces:
            self._forget(frame.index, set())
            return frame
        probabilities, completed = self.segmenter.probabilities(faces, frame.index)
        hands = (frame.hands or []) if self.config.hands else []
        size = faces[0].crop.shape[0]
        threshold = self.threshold
        changes = self.surface.change_maps(faces) if self.surface is not None else [None] * len(faces)
        change_threshold = self.surface.threshold if self.surface is not None else 0.5
        for i, face in enumerate(faces):
            face.region = face_region(transform_points(face.landmarks, face.matrix), size)
            probability = probabilities[i]
            near = (hands if self.config.hands_wrist_beyond is None else
                    in_front_of_face(hands, face.landmarks, self.config.hands_wrist_beyond, self.config.hands_min_palm))
            hand = (hand_mask(near, face.matrix, size, face.crop, self.config.hands_refine, face.region) if near
                    else np.zeros((size, size), bool))
            overlay = self._graphic(frame.image, face, probability)
            face.evidence = {"finder": probability, "hands": hand, "graphic": overlay}
            if changes[i] is not None:
                face.evidence["surface"] = changes[i]
            if completed:  # a blind-completion finder also paints: its fill is the network filler
                face.completed = completed[i]
            history = self._history(face, frame.index)
            certain = hand | overlay
            candidate, on = decide(probability, certain, face.region, threshold, history, self.config, changes[i],
                                   change_threshold)
            if face.track_id >= 0:
                coasted = self._tracks[face.track_id].coasted + 1 if face.score <= 0 else 0
                self._tracks[face.track_id] = MaskHistory(np.asarray(face.matrix, np.float64).copy(), face.crop,
                                                          candidate, on, frame.index, history,
                                                          np.asarray(face.landmarks, np.float32).copy(),
                                                          np.asarray(face.box, np.float32).copy(), coasted)
            grow = int(round(self.config.dilate * size))
            face.mask = (dilate(on, grow) & face.region).astype(np.float32)
            face.found_by = found_by(face.mask, probability, hand, threshold, grow, changes[i], change_threshold,
                                     overlay)
            if self.surface is not None and judged_clean(candidate, probability, certain, face.region,
                                                         sure_level(self.config, threshold)):
                self.surface.remember(face, frame.index)  # a reference for the frames to come
            # the occluder's part beyond the face is never repainted, but inpainting must not take colour from it
            face.evidence["beyond"] = (dilate(((probability >= threshold) | hand) & ~face.region, grow)
                                       if on.any() else np.zeros((size, size), bool))
        self._forget(frame.index, {f.track_id for f in faces})
        if self.surface is not None:
            self.surface.forget(set(self._tracks))
        return frame

    def _graphic(self, image: np.ndarray, face: Face, probability: np.ndarray) -> np.ndarray:
        size = face.crop.shape[0]
        c = self.config
        if not c.graphic:
            return np.zeros((size, size), bool)
        return graphic_mask_for_face(image, face.crop, face.matrix, probability, face.region, c.graphic_low,
                                     max(int(round(c.graphic_min_area * size * size)), 1),
                                     int(round(c.graphic_grow * size)))

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
