"""Change on the face surface: the track's clean references and the reference-conditioned segmenter.

Per track, a small bank of clean appearances (aligned crops at the change model's size, keyed by where the mesh puts
the face's points in the crop, so pose and expression pick the nearest). A face joins the bank only when it was
judged clean: nothing decided, no segmenter pixel above its threshold, no hand on it; never simply "the first
frames". Each frame, a face with a reference gets a map of "covered now, given how this face looked clean" from the
`occlusion_change` model (input: the current crop and the nearest reference); `decide` uses it as a veto (the
segmenter fires on the person's own, unchanged surface) and as positive evidence (a change where the segmenter is
unsure). Faces without a reference (a new track, photos) get None: the segmenter decides alone.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from realtime.align import transform_points
from realtime.frame import Face
from realtime.runner import ModelRunner

KEY_POINTS = np.arange(0, 468, 6)  # a spread subset of the mesh: enough to tell pose and mouth/eye openness apart


@dataclass
class Reference:
    crop: np.ndarray    # (s, s, 3) uint8 BGR at the change model's crop size
    key: np.ndarray     # (len(KEY_POINTS), 2) float32 mesh points in crop coordinates / crop size
    index: int          # frame it was taken in


@dataclass
class TrackBank:
    references: list[Reference] = field(default_factory=list)
    last_added: int = -10**9


def face_key(face: Face) -> np.ndarray:
    size = face.crop.shape[0]
    return (transform_points(face.landmarks[KEY_POINTS], face.matrix) / size).astype(np.float32)


class SurfaceEvidence:
    def __init__(self, runner: ModelRunner, bank_size: int = 6, every: int = 5):
        self.runner = runner
        self.size = runner.contract.crop_size
        self.threshold = float(runner.contract.threshold)
        self.bank_size, self.every = bank_size, every
        self._banks: dict[int, TrackBank] = {}
        self.frozen = False  # True: the banks hold the whole clip (a file's second pass): nothing added or forgotten

    def reset(self) -> None:
        self._banks.clear()

    def take_banks(self, other: "SurfaceEvidence") -> None:
        """Use another pass's banks (every track's references from the whole clip), frozen."""
        self._banks = other._banks
        self.frozen = True

    def forget(self, keep: set[int]) -> None:
        if self.frozen:
            return
        for track_id in [t for t in self._banks if t not in keep]:
            del self._banks[track_id]

    def _small(self, crop: np.ndarray) -> np.ndarray:
        if crop.shape[0] == self.size:
            return crop
        return cv2.resize(crop, (self.size, self.size), interpolation=cv2.INTER_AREA)

    def nearest(self, face: Face) -> Reference | None:
        bank = self._banks.get(face.track_id)
        if bank is None or not bank.references or face.track_id < 0:
            return None
        key = face_key(face)
        return min(bank.references, key=lambda r: float(np.abs(r.key - key).mean()))

    def change_maps(self, faces: list[Face]) -> list[np.ndarray | None]:
        """(S, S) float32 change probability per face at the crop's own size, None where there is no reference."""
        pairs = [(i, self.nearest(f)) for i, f in enumerate(faces)]
        pairs = [(i, r) for i, r in pairs if r is not None]
        out: list[np.ndarray | None] = [None] * len(faces)
        if not pairs:
            return out
        found = self.runner.run([self._small(faces[i].crop) for i, _ in pairs], references=[r.crop for _, r in pairs])
        for (i, _), probability in zip(pairs, found.masks):
            size = faces[i].crop.shape[0]
            out[i] = probability if probability.shape[0] == size else cv2.resize(
                probability, (size, size), interpolation=cv2.INTER_LINEAR)
        return out

    def remember(self, face: Face, index: int) -> bool:
        """Add a face judged clean to its track's bank (at most every `every` frames); a full bank gives up the
        reference nearest to the new one, so the bank keeps its spread of poses and expressions and follows the
        light. Returns whether it was added."""
        if face.track_id < 0 or face.score <= 0 or self.frozen:
            return False
        bank = self._banks.setdefault(face.track_id, TrackBank())
        if index - bank.last_added < self.every:
            return False
        reference = Reference(self._small(face.crop).copy(), face_key(face), index)
        if len(bank.references) >= self.bank_size:
            nearest = min(range(len(bank.references)),
                          key=lambda k: float(np.abs(bank.references[k].key - reference.key).mean()))
            bank.references[nearest] = reference
        else:
            bank.references.append(reference)
        bank.last_added = index
        return True
