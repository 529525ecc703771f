"""Face memory: a track's own clean appearances, kept to fill its occlusions with the person's real pixels.

An entry is a patch of a frame around the face (full frame resolution), the face's 468 mesh points in that patch,
which of its pixels were seen clean (face region minus anything occluded, grown), the frame it came from and a
key of pose and expression. Filling warps the entry whose key is nearest the current face onto the current mesh
(realtime.mesh_warp). Entries are few and bounded; a track's memory is dropped when the track ends.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from realtime.align import transform_points
from realtime.regions import FACE_OVAL, dilate, face_oval

# mesh points of the expression key: inner lips (13 upper, 14 lower), eyelids (159/145 left, 386/374 right)
UPPER_LIP, LOWER_LIP = 13, 14
LEFT_LIDS, RIGHT_LIDS = (159, 145), (386, 374)
NOSE_TIP, LEFT_CHEEK, RIGHT_CHEEK, LEFT_EYE, RIGHT_EYE = 1, 234, 454, 33, 263


@dataclass(frozen=True)
class MemoryConfig:
    enabled: bool = True
    max_entries: int = 16         # per track
    key_radius: float = 0.015     # entries closer than this (key units) are the same pose/expression: replaced
    every: int = 3                # frames between two updates of a track's memory
    switch_margin: float = 0.008  # a track keeps its entry unless another is nearer by this much (no flicker)
    max_clean_mask: float = 0.05  # a face more than this share occluded teaches the memory nothing
    candidates: int = 3           # entries nearest in pose/expression tried per fill; the best match around the hole wins
    recheck: int = 10             # frames a fill keeps its entry without trying the others, while the pose holds


@dataclass
class MemoryEntry:
    patch: np.ndarray        # (h, w, 3) uint8 frame pixels around the face
    points: np.ndarray       # (468, 2) float32 mesh in patch pixels
    known: np.ndarray        # (h, w) bool pixels seen clean (no evidence of anything over them): fill from these
    key: np.ndarray          # pose / expression
    index: int               # frame it was taken from
    cleared: np.ndarray | None = None  # (h, w) bool pixels the finder doubted but that were judged not covered:
                                       # how the face looked there, to recognise it when the finder doubts again


def face_key(landmarks: np.ndarray, matrix: np.ndarray, crop_size: int) -> np.ndarray:
    """Pose and expression from the mesh in aligned units: yaw, pitch, mouth opening, each eye's opening."""
    p = transform_points(landmarks, matrix) / crop_size
    eyes = (p[LEFT_EYE] + p[RIGHT_EYE]) / 2
    cheeks = (p[LEFT_CHEEK] + p[RIGHT_CHEEK]) / 2
    return np.array([
        p[NOSE_TIP, 0] - cheeks[0],
        p[NOSE_TIP, 1] - eyes[1],
        np.linalg.norm(p[UPPER_LIP] - p[LOWER_LIP]),
        np.linalg.norm(p[LEFT_LIDS[0]] - p[LEFT_LIDS[1]]),
        np.linalg.norm(p[RIGHT_LIDS[0]] - p[RIGHT_LIDS[1]]),
    ], np.float64)


def face_box(landmarks: np.ndarray, frame_hw: tuple[int, int], pad: float = 0.08) -> tuple[int, int, int, int]:
    """Integer (x0, y0, x1, y1) around the face oval, padded by a fraction of its size, clipped to the frame."""
    oval = landmarks[list(FACE_OVAL)]
    lo, hi = oval.min(0), oval.max(0)
    margin = pad * float((hi - lo).max())
    h, w = frame_hw
    x0, y0 = np.floor(lo - margin).astype(int)
    x1, y1 = np.ceil(hi + margin).astype(int) + 1
    return max(int(x0), 0), max(int(y0), 0), min(int(x1), w), min(int(y1), h)


def make_entry(image: np.ndarray, landmarks: np.ndarray, occluded: np.ndarray | None, key: np.ndarray,
               index: int, grow: int = 3, decided: np.ndarray | None = None) -> MemoryEntry:
    """An entry from a frame: `occluded` is a bool map over face_box(landmarks) of pixels not to trust (None = all
    clean); `decided` the pixels of it that were judged covered (None = all of them)."""
    x0, y0, x1, y1 = face_box(landmarks, image.shape[:2])
    points = (landmarks - np.array([x0, y0], np.float32)).astype(np.float32)
    oval = face_oval(points, (y1 - y0, x1 - x0))
    doubted = dilate(occluded, grow) if occluded is not None else np.zeros_like(oval)
    cleared = oval & doubted & ~dilate(decided, grow) if decided is not None else np.zeros_like(oval)
    return MemoryEntry(image[y0:y1, x0:x1].copy(), points, oval & ~doubted, key, index, cleared)


def cleared_area(entry: MemoryEntry) -> int:
    return 0 if entry.cleared is None else int(entry.cleared.sum())


@dataclass
class FaceMemory:
    """The memory of one track (or the reference face, seeded from a photo)."""

    config: MemoryConfig = field(default_factory=MemoryConfig)
    entries: list[MemoryEntry] = field(default_factory=list)
    chosen: int | None = None
    last_update: int = -(10**9)
    checked_at: int = -(10**9)   # frame at which every candidate entry was last tried (realtime.fill)

    def remember(self, entry: MemoryEntry) -> None:
        """Replace the entry of the same pose/expression, else add one; when full, the entry that knows least of
        the face goes, unless the new one knows even less (a face half hidden never pushes out a whole one)."""
        self.last_update = entry.index
        known = int(entry.known.sum())
        distances = [float(np.linalg.norm(e.key - entry.key)) for e in self.entries]
        if distances and min(distances) < self.config.key_radius:
            nearest = int(np.argmin(distances))
            old = self.entries[nearest]
            # an entry that cleared places the finder doubts is the evidence that they are face: keep it
            keeps_evidence = cleared_area(entry) >= 0.9 * cleared_area(old)
            if known >= 0.98 * old.known.sum() and keeps_evidence:
                self.entries[nearest] = entry
            return
        if len(self.entries) >= self.config.max_entries:
            weakest = min(range(len(self.entries)), key=lambda i: (self.entries[i].known.sum(), self.entries[i].index))
            if known < self.entries[weakest].known.sum():
                return
            del self.entries[weakest]
            self.chosen = None
        self.entries.append(entry)

    def best(self, key: np.ndarray) -> MemoryEntry | None:
        """The entry nearest `key`; the previous choice stays unless another is clearly nearer (sticky)."""
        if not self.entries:
            return None
        distances = [float(np.linalg.norm(e.key - key)) for e in self.entries]
        nearest = int(np.argmin(distances))
        if self.chosen is not None and self.chosen < len(self.entries):
            if distances[self.chosen] <= distances[nearest] + self.config.switch_margin:
                nearest = self.chosen
        self.chosen = nearest
        return self.entries[nearest]

    def nearest(self, key: np.ndarray, count: int) -> list[int]:
        """Indices of the `count` entries nearest `key` (pose and expression), nearest first."""
        distances = [float(np.linalg.norm(e.key - key)) for e in self.entries]
        return [int(i) for i in np.argsort(distances)[:count]]

    def nbytes(self) -> int:
        return sum(e.patch.nbytes + e.known.nbytes + e.points.nbytes + (0 if e.cleared is None else e.cleared.nbytes)
                   for e in self.entries)
