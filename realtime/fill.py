"""Fill: the face behind the occlusion, from the person's own pixels first, at the frame's own resolution.

Per face, over a box around the face oval in frame pixels, every occluded face pixel gets exactly one filler:
- inpaint  thin holes (every pixel within `thin` of visible face: text strokes, thin bars) -- OpenCV Telea is
           near-exact there;
- memory   the track's (or the reference photo's) remembered clean face, warped onto the current mesh;
- mirror   the visible other half of the face, warped through the mesh's mirrored triangles;
- network  a completion network (a symmetry-completion model given the mask, or the blind finder's own fill);
- inpaint  whatever is left.
Memory and mirror fills are colour-matched to the face around the hole by a smooth offset field estimated on a
ring of visible face pixels that keeps clear of the occluder's fringe. The paste weight is 1 on the hole, feathered
outside it, and 0 outside the face oval, so hair, clothes and background never change. Which filler made each
pixel is recorded (`FaceFill.source`) for the overlay and `--stats`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from realtime.align import warp_to_frame
from realtime.errors import UnveilError
from realtime.frame import Face, FaceFill, Frame
from realtime.memory import FaceMemory, MemoryConfig, face_box, face_key, make_entry
from realtime.mesh_warp import complete_hidden, hidden_points, mirrored_points, warp_mesh
from realtime.regions import dilate, face_oval
from realtime.runner import ModelRunner
from realtime.small_faces import complete_small, is_small

FILLERS = ("none", "memory", "mirror", "network", "inpaint")
FILLER_CODE = {name: code for code, name in enumerate(FILLERS)}
ORDERS = ("memory", "mirror", "network", "inpaint")
CLEARED_SHARE = 0.8   # a hole region is compared with memory only where memory cleared this much of it


@dataclass(frozen=True)
class FillConfig:
    order: tuple[str, ...] = ("memory", "mirror", "network", "inpaint")  # thick holes: first filler that can
    thin: float = 0.045        # a hole is thin when all its pixels lie within this crop fraction of visible face
    ring: float = 0.025        # width of the colour-matching ring, crop fraction
    ring_gap: float = 0.012    # the ring starts this far from the hole (clear of the occluder's fringe)
    feather: float = 0.012     # paste feather outside the hole, crop fraction
    min_cover: float = 0.6     # a filler takes a hole region only if it can fill this share of it
    # faces whose eyes are closer than this (frame pixels) are painted by a completion_super_resolution model, when
    # one is loaded (realtime.small_faces); every other face is filled exactly as without it
    small_face_eyes: float = 30.0
    # A hole region the finder doubted before, where it was judged clean, and whose pixels look as remembered then
    # (median and 90th percentile of the difference at or below these levels) is not covered: it is left as it is.
    agree: float = 8.0         # 0 = off
    agree_p90: float = 50.0
    memory: MemoryConfig = field(default_factory=MemoryConfig)

    def __post_init__(self) -> None:
        unknown = [o for o in self.order if o not in ORDERS]
        if unknown:
            raise UnveilError(f"unknown filler(s) {unknown}; choose from {', '.join(ORDERS)}")


def frame_px(crop_fraction: float, matrix: np.ndarray, crop_size: int) -> int:
    """A crop-size fraction in frame pixels for this face."""
    scale = float(np.hypot(matrix[0, 0], matrix[0, 1]))  # crop pixels per frame pixel
    return max(int(round(crop_fraction * crop_size / scale)), 1)


def crop_to_box(crop_image: np.ndarray, matrix: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """A crop-space image (or mask) warped into frame pixels over `box`."""
    x0, y0, x1, y1 = box
    shifted = np.asarray(matrix, np.float64).copy()
    shifted[:, 2] += shifted[:, :2] @ np.array([x0, y0], np.float64)
    return warp_to_frame(crop_image, shifted, (y1 - y0, x1 - x0))


def thin_parts(hole: np.ndarray, thin_px: int) -> np.ndarray:
    """The connected parts of `hole` whose every pixel lies within `thin_px` of a pixel outside it."""
    if not hole.any():
        return hole
    distance = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 3)
    count, labels = cv2.connectedComponents(hole.astype(np.uint8), connectivity=8)
    deepest = np.zeros(count, np.float32)
    np.maximum.at(deepest, labels.ravel(), distance.ravel())
    thin = deepest <= thin_px
    thin[0] = False
    return thin[labels]


def push_pull(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Smooth interpolation of (h, w, c) `values` known where `weight` (in [0, 1]) is 1: exact there, a
    membrane-like surface between (pull down a Gaussian pyramid, push back up)."""
    h, w = weight.shape
    if min(h, w) <= 4 or weight.sum() < 1e-3:
        total = max(float(weight.sum()), 1e-6)
        mean = (values * weight[..., None]).reshape(-1, values.shape[2]).sum(0) / total
        return np.broadcast_to(mean.astype(np.float32), values.shape).copy()
    small_w = cv2.pyrDown(weight)
    small_v = cv2.pyrDown(values * weight[..., None]) / np.maximum(small_w, 1e-6)[..., None]
    coarse = push_pull(small_v.reshape(small_w.shape + (values.shape[2],)), np.clip(4.0 * small_w, 0.0, 1.0))
    up = cv2.pyrUp(coarse, dstsize=(w, h)).reshape(values.shape)
    return weight[..., None] * values + (1.0 - weight[..., None]) * up


def colour_offset(current: np.ndarray, fill: np.ndarray, ring: np.ndarray, limit: float = 40.0) -> np.ndarray | None:
    """(h, w, 3) offset that makes `fill` match `current` on the ring around the hole, smooth inside it (push-pull
    interpolation: exact on the ring, so no step at the hole's edge); None when the ring is empty.

    Robust: ring pixels whose difference is far from the ring's median (an occluder edge the finder missed, a
    shadow: more than 40 levels and 3 robust deviations away) are left out, and the offset is clipped to +-`limit`."""
    if ring.sum() < 8:
        return None
    diff = current.astype(np.float32) - fill.astype(np.float32)
    samples = diff[ring]
    median = np.median(samples, axis=0)
    spread = np.median(np.abs(samples - median), axis=0) * 1.4826
    ring = ring & (np.abs(diff - median) <= np.maximum(3.0 * spread, 40.0)).all(axis=2)
    if ring.sum() < 8:
        return None
    return np.clip(push_pull(diff, ring.astype(np.float32)), -limit, limit)


def matched(patch: np.ndarray, warped: np.ndarray, valid: np.ndarray, ring: np.ndarray
            ) -> tuple[np.ndarray | None, np.ndarray]:
    """A warped fill colour-matched to the face around the hole; not trusted (nothing valid) without a ring.
    The offset is estimated over the box of the fill and its ring only: the rest of the face patch plays no part."""
    ys, xs = np.nonzero(valid | ring)
    if not len(ys):
        return None, np.zeros_like(valid)
    window = np.s_[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    offset = colour_offset(patch[window], warped[window], (ring & valid)[window])
    if offset is None:
        return None, np.zeros_like(valid)
    out = warped.copy()
    out[window] = np.clip(np.rint(warped[window].astype(np.float32) + offset), 0, 255).astype(np.uint8)
    return out, valid


def ring_mismatch(current: np.ndarray, fill: np.ndarray, ring: np.ndarray) -> float:
    """How unlike the face around the hole a fill is, its overall colour shift aside (mean absolute deviation)."""
    if ring.sum() < 8:
        return float("inf")
    diff = current[ring].astype(np.float32) - fill[ring].astype(np.float32)
    return float(np.abs(diff - np.median(diff, axis=0)).mean())


def covered_parts(todo: np.ndarray, valid: np.ndarray, min_cover: float) -> np.ndarray:
    """The valid pixels of the connected parts of `todo` that a filler covers at least `min_cover` of: one filler
    per region where possible, so no patchwork of sources (and seams between them) inside one hole."""
    hit = todo & valid
    if not hit.any():
        return hit
    count, labels = cv2.connectedComponents(todo.astype(np.uint8), connectivity=8)
    size = np.bincount(labels.ravel(), minlength=count)
    covered = np.bincount(labels.ravel(), weights=hit.ravel().astype(np.float64), minlength=count)
    keep = covered >= min_cover * np.maximum(size, 1)
    keep[0] = False
    return hit & keep[labels]


def agreeing_regions(patch: np.ndarray, fill: np.ndarray, hole: np.ndarray, cleared: np.ndarray,
                     median_levels: float, p90_levels: float) -> np.ndarray:
    """The hole's regions that the finder doubted before, where they were judged not covered, and that look now as
    they looked then (`fill`: the remembered face): nothing covers the face there (glasses, a nose, lips the finder
    misreads again and again). A new occluder over a place the finder never doubted is never let through."""
    uncovered = np.zeros_like(hole)
    if not cleared[hole].any():
        return uncovered   # the usual case: no evidence, nothing to compare
    count, labels = cv2.connectedComponents(hole.astype(np.uint8), connectivity=8)
    # A pixel is explained by the remembered face when its colour lies within the range of the remembered pixels
    # around it: the warp is off by a pixel or two on thin, sharp structures (glasses' rims, lashes, lip edges).
    near = np.ones((5, 5), np.uint8)
    current = patch.astype(np.int16)
    above = current - cv2.dilate(fill, near).astype(np.int16)
    below = cv2.erode(fill, near).astype(np.int16) - current
    difference = np.maximum(np.maximum(above, below), 0).max(axis=2)
    for label in range(1, count):
        region = labels == label
        if cleared[region].mean() < CLEARED_SHARE:
            continue
        levels = difference[region]
        if np.median(levels) <= median_levels and np.percentile(levels, 90) <= p90_levels:
            uncovered |= region
    return uncovered


@dataclass
class Remembered:
    """The remembered face over the current one: `image` where `valid` to fill with; `look` where `cleared` to
    recognise the face by (pixels the finder doubted then too, but that were judged not covered)."""
    image: np.ndarray | None
    valid: np.ndarray
    look: np.ndarray | None
    cleared: np.ndarray


@dataclass
class Warped:
    """One memory entry warped onto the current face."""
    image: np.ndarray
    valid: np.ndarray        # known to the entry (to fill from)
    cleared: np.ndarray      # doubted by the finder then, and judged not covered
    mismatch: float          # against the visible ring, over `valid` (inf: the entry does not know the hole)
    look_mismatch: float     # against the visible ring, over all of it


def oval_area(entry) -> int:
    """Pixels of the face oval in a memory entry's patch."""
    h, w = entry.known.shape
    return int(face_oval(entry.points, (h, w)).sum())


def inpaint(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    return cv2.inpaint(image, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)


class FillStage:
    name = "fill"

    def __init__(self, network: ModelRunner | None = None, config: FillConfig = FillConfig(),
                 small: ModelRunner | None = None):
        if small is not None and small.contract.kind != "completion_super_resolution":
            raise UnveilError(f"{small.path.name}: the small-face network must be a completion_super_resolution model")
        self.small = small
        if network is not None and "mask" not in network.contract.inputs:
            raise UnveilError(f"{network.path.name}: the fill network must take a mask (kind symmetry_completion)")
        self.network = network
        self.config = config
        self.memories: dict[int, FaceMemory] = {}
        self.reference: FaceMemory | None = None
        self.counts = np.zeros(len(FILLERS), np.int64)   # frame pixels filled by each filler so far
        self._remember_next = False
        self.paint = True   # False: only learn the faces (a file's first pass gathers every track's memory)
        self.learn = True   # False: the memory is fixed (a file's second pass fills from the memory of the whole clip)

    def request_remember(self) -> None:
        """Store the faces of the next frame in their tracks' memories (the viewer's "remember this face"); done in
        the stage's own thread, so it never races with a fill."""
        self._remember_next = True

    def memory_summary(self) -> str:
        """E.g. 'memory: track 1: 3 poses, 94 % of the face known' for the viewer's status bar."""
        parts = []
        for track_id, memory in sorted(self.memories.items()):
            share = max((e.known.sum() / max(oval_area(e), 1) for e in memory.entries), default=0.0)
            parts.append(f"track {track_id}: {len(memory.entries)} poses, {min(share, 1.0):.0%} of the face known")
        if self.reference is not None and self.reference.entries:
            parts.append("reference photo")
        return "memory: " + ("; ".join(parts) if parts else "empty")

    def filled_pixels(self) -> dict[str, int]:
        """Frame pixels each filler has made so far (for --stats and the viewer)."""
        return {name: int(n) for name, n in zip(FILLERS[1:], self.counts[1:])}

    def memory_bytes(self) -> int:
        return sum(m.nbytes() for m in self.memories.values()) + (self.reference.nbytes() if self.reference else 0)

    def reset(self) -> None:
        self.memories.clear()

    def remember_reference(self, image: np.ndarray, landmarks: np.ndarray, matrix: np.ndarray, crop_size: int) -> None:
        """Seed every track's memory with a clean photo of the person (`--reference`)."""
        if self.reference is None:
            self.reference = FaceMemory(self.config.memory)
        self.reference.remember(make_entry(image, landmarks, None, face_key(landmarks, matrix, crop_size), -1))

    def remember_face(self, frame: Frame, face: Face) -> bool:
        """Store this face's clean pixels in its track's memory now (the viewer's "remember this face")."""
        if face.landmarks is None or face.matrix is None or face.crop is None:
            return False
        box = face_box(face.landmarks, frame.image.shape[:2])
        memory = self.memories.setdefault(face.track_id, FaceMemory(self.config.memory))
        decided = crop_to_box(face.mask.astype(np.float32), face.matrix, box) > 0.5
        memory.remember(make_entry(frame.image, face.landmarks, self._unsure(face, box),
                                   face_key(face.landmarks, face.matrix, face.crop.shape[0]), frame.index,
                                   decided=decided))
        return True

    def process(self, frame: Frame) -> Frame:
        seen = set()
        remember, self._remember_next = self._remember_next, False
        for face in frame.faces:
            if remember and face.mask is not None:
                self.remember_face(frame, face)
            if face.mask is None or face.landmarks is None or face.matrix is None or face.crop is None:
                continue
            seen.add(face.track_id)
            if face.mask.any() and self.paint:
                face.fill = self._fill_face(frame, face)
            if self.learn:
                self._update_memory(frame, face)
        for track_id in [t for t in self.memories if t not in seen and t >= 0]:
            memory = self.memories[track_id]
            if frame.index - memory.last_update > 10 * max(self.config.memory.every, 1) + 30:
                del self.memories[track_id]  # the track ended: forget the face
        return frame

    # ------------------------------------------------------------------------------------------------------ fill

    def _fill_face(self, frame: Frame, face: Face) -> FaceFill | None:
        cfg = self.config
        size = face.crop.shape[0]
        box = face_box(face.landmarks, frame.image.shape[:2])
        x0, y0, x1, y1 = box
        if x1 - x0 < 4 or y1 - y0 < 4:
            return None
        points = (face.landmarks - np.array([x0, y0], np.float32)).astype(np.float32)
        region = face_oval(points, (y1 - y0, x1 - x0))
        hole = (crop_to_box(face.mask.astype(np.float32), face.matrix, box) > 0.5) & region
        beyond = face.evidence.get("beyond")
        # occluder pixels beyond the face: not filled, but no colour is taken from them either
        unknown = hole | ((crop_to_box(beyond.astype(np.float32), face.matrix, box) > 0.5) & ~region
                          if beyond is not None and beyond.any() else np.zeros_like(hole))
        if not hole.any():
            return None
        patch = frame.image[y0:y1, x0:x1]
        fill = patch.copy()
        source = np.zeros(hole.shape, np.uint8)
        thin_px = frame_px(cfg.thin, face.matrix, size)
        thin = thin_parts(hole, thin_px)
        todo = hole & ~thin
        ring_px, gap_px = frame_px(cfg.ring, face.matrix, size), frame_px(cfg.ring_gap, face.matrix, size)
        outside = cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, 3)
        ring = (outside > gap_px) & (outside <= gap_px + ring_px) & region
        key = face_key(face.landmarks, face.matrix, size)
        remembered = (self._remembered(face, key, patch, points, hole, todo, ring, ring_px, frame.index)
                      if "memory" in cfg.order else None)
        if remembered is not None and cfg.agree > 0 and remembered.look is not None:
            uncovered = agreeing_regions(patch, remembered.look, hole, remembered.cleared, cfg.agree, cfg.agree_p90)
            if uncovered.any():
                hole &= ~uncovered
                todo &= ~uncovered
                thin &= ~uncovered
                if not hole.any():
                    return None
        for filler in cfg.order:
            if not todo.any():
                break
            if filler == "network":
                # slivers the face's own pixels left (every pixel near a filled or visible one) are inpainted from
                # them, as thin holes are: a network run for a sliver costs a whole crop's inference
                thin |= thin_parts(todo, thin_px)
                todo &= ~thin
                if not todo.any():
                    break
            if filler == "inpaint":  # the thick rest and the thin parts together
                done = todo | thin
                fill[done] = inpaint(fill, done | (unknown & ~hole))[done]
                thin = np.zeros_like(thin)
            else:
                if filler == "memory":
                    image, valid = (remembered.image, remembered.valid) if remembered else (None, np.zeros_like(todo))
                elif filler == "mirror":
                    image, valid = self._from_mirror(patch, points, hole, region, todo, ring, ring_px)
                else:
                    image, valid = self._from_network(face, box, todo, frame.image)
                done = covered_parts(todo, valid, cfg.min_cover) if image is not None else np.zeros_like(todo)
                fill[done] = image[done] if image is not None else fill[done]
            source[done] = FILLER_CODE[filler]
            todo &= ~done
        if thin.any():
            fill[thin] = inpaint(fill, thin | todo | (unknown & ~hole))[thin]
            source[thin] = FILLER_CODE["inpaint"]
        weight = self._weight(hole, region, frame_px(cfg.feather, face.matrix, size))
        self.counts += np.bincount(source[hole], minlength=len(FILLERS))
        return FaceFill(box, fill, weight, source)

    def _remembered(self, face: Face, key: np.ndarray, patch: np.ndarray, points: np.ndarray, hole: np.ndarray,
                    todo: np.ndarray, ring: np.ndarray, ring_px: int, frame_index: int) -> Remembered | None:
        """The remembered face warped onto the current mesh and colour-matched. To fill with: among the few entries
        nearest in pose and expression that know the hole, the one that best matches the visible face around it
        (the mesh guesses the expression under an occluder; the pixels around it do not). To recognise the face by:
        the best-matching entry that cleared the hole's place."""
        hidden = hidden_points(points, todo)
        look = look_cleared = None
        for pool in (self.memories.get(face.track_id), self.reference):  # the track's own memory first
            if pool is None or not pool.entries:
                continue
            nearest = pool.nearest(key, self.config.memory.candidates)
            # while the pose holds (the chosen entry is still among the nearest), warp only the chosen entry and
            # try the others again every `recheck` frames, or at once when it does not know the hole
            quick = pool.chosen in nearest and frame_index - pool.checked_at < self.config.memory.recheck
            tried = {i: self._warped(pool.entries[i], patch, points, hidden, hole, todo, ring, ring_px)
                     for i in ([pool.chosen] if quick else nearest)}
            if quick and not np.isfinite(tried[pool.chosen].mismatch):
                tried.update({i: self._warped(pool.entries[i], patch, points, hidden, hole, todo, ring, ring_px)
                              for i in nearest if i not in tried})
                quick = False
            if not quick:
                pool.checked_at = frame_index
            if look is None and self.config.agree > 0:
                clearing = [i for i in tried if (tried[i].cleared & hole).sum() >= CLEARED_SHARE * hole.sum()]
                if clearing:
                    best_look = min(clearing, key=lambda i: tried[i].look_mismatch)
                    look, look_cleared = matched(patch, tried[best_look].image, tried[best_look].cleared, ring)
            best = min(tried, key=lambda i: tried[i].mismatch)
            if not np.isfinite(tried[best].mismatch):
                continue   # no entry of this pool knows the hole
            if pool.chosen in tried and tried[pool.chosen].mismatch <= 1.15 * tried[best].mismatch:
                best = pool.chosen   # sticky: switching entries every frame would flicker
            pool.chosen = best
            image, valid = matched(patch, tried[best].image, tried[best].valid, ring)
            return Remembered(image, valid, look, look_cleared if look is not None else np.zeros_like(todo))
        if look is None:
            return None
        return Remembered(None, np.zeros_like(todo), look, look_cleared)

    def _warped(self, entry, patch: np.ndarray, points: np.ndarray, hidden: np.ndarray, hole: np.ndarray,
                todo: np.ndarray, ring: np.ndarray, ring_px: int) -> Warped:
        """One memory entry warped onto the current mesh over the hole and its ring, with how well it matches."""
        h, w = todo.shape
        cleared = np.zeros_like(entry.known) if entry.cleared is None else entry.cleared
        layers = np.dstack([entry.patch, entry.known.astype(np.uint8) * 255, cleared.astype(np.uint8) * 255])
        target = complete_hidden(entry.points, points, hidden, sigma=8.0 * ring_px)
        warped, inside = warp_mesh(layers, entry.points, target, (0, 0, w, h), only=hole | ring)
        valid, cleared = inside & (warped[..., 3] > 250), inside & (warped[..., 4] > 250)
        knows = (valid & todo).sum() >= self.config.min_cover * todo.sum()
        return Warped(warped[..., :3], valid, cleared,
                      ring_mismatch(patch, warped[..., :3], ring & valid) if knows else float("inf"),
                      ring_mismatch(patch, warped[..., :3], ring & inside))

    def _from_mirror(self, patch: np.ndarray, points: np.ndarray, hole: np.ndarray, region: np.ndarray,
                     todo: np.ndarray, ring: np.ndarray, ring_px: int) -> tuple[np.ndarray | None, np.ndarray]:
        h, w = todo.shape
        usable = region & ~dilate(hole, 2)
        layers = np.dstack([patch, usable.astype(np.uint8) * 255])
        reflected = mirrored_points(points).astype(np.float64)
        reflected[:, 0] = -reflected[:, 0]  # the face seen in a mirror: its twin points, left and right swapped
        target = complete_hidden(reflected, points, hidden_points(points, hole), sigma=8.0 * ring_px)
        warped, valid = warp_mesh(layers, mirrored_points(target), target, (0, 0, w, h), only=todo | ring)
        valid &= warped[..., 3] > 250
        return matched(patch, warped[..., :3], valid, ring)

    def _from_network(self, face: Face, box: tuple[int, int, int, int], todo: np.ndarray,
                      frame_image: np.ndarray | None = None) -> tuple[np.ndarray | None, np.ndarray]:
        completed = face.completed
        if self.small is not None and frame_image is not None and is_small(face.landmarks, self.config.small_face_eyes):
            completed = complete_small(self.small, frame_image, face.matrix, face.mask)
            face.completed = completed
        elif self.network is not None:
            completed = self.network.run([face.crop], [face.mask.astype(np.float32)]).images[0]
            face.completed = completed
        if completed is None:
            return None, np.zeros_like(todo)
        inside = crop_to_box(np.ones(completed.shape[:2], np.float32), face.matrix, box) > 0.99
        return crop_to_box(completed, face.matrix, box), inside

    @staticmethod
    def _weight(hole: np.ndarray, region: np.ndarray, feather_px: int) -> np.ndarray:
        """1 on the hole, falling to 0 over `feather_px` outside it, and 0 outside the face oval."""
        weight = hole.astype(np.float32)
        if feather_px > 0:
            weight = np.maximum(cv2.GaussianBlur(weight, (0, 0), feather_px / 2.0), weight)
        weight[~region] = 0.0
        weight[weight < 1.0 / 255.0] = 0.0
        return weight

    # ---------------------------------------------------------------------------------------------------- memory

    def _unsure(self, face: Face, box: tuple[int, int, int, int]) -> np.ndarray:
        """Box-space bool map of pixels that may be occluded: the decision and any weaker evidence."""
        unsure = face.mask > 0
        evidence = getattr(face, "evidence", None) or {}
        if "finder" in evidence:
            unsure = unsure | (evidence["finder"] >= 0.2)
        if "hands" in evidence:
            unsure = unsure | evidence["hands"]
        return crop_to_box(unsure.astype(np.float32), face.matrix, box) > 0.01

    def _update_memory(self, frame: Frame, face: Face) -> None:
        cfg = self.config.memory
        if not cfg.enabled or face.track_id < 0 or face.score <= 0:
            return
        memory = self.memories.get(face.track_id)
        if memory is not None and frame.index - memory.last_update < cfg.every:
            return
        if float(face.mask.mean()) > cfg.max_clean_mask:
            return
        self.remember_face(frame, face)
