"""Hands on the whole frame with mediapipe Hands (palm detection + 21 landmarks), rasterised as occlusion evidence.

A hand over the face is the commonest occluder on a webcam. The hands stage finds them (its own thread, so it runs
beside the segmenter); the find stage draws their silhouette in aligned-crop coordinates (palm, fingers of their
real width, wrist), refines it to the hand's pixels with GrabCut seeded by that shape, and `decide` combines it
with the other evidence. Hands runs at model complexity 0 and score 0.5 by default: complexity 1 at score 0.3 found
more hands but, on clean clips of the calibrate people, touched more clean frames (docs/find.md).
"""
from __future__ import annotations

import cv2
import numpy as np

from realtime.align import transform_points
from realtime.regions import FACE_OVAL

PALM = (0, 1, 5, 9, 13, 17)
FINGERS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))


class HandDetector:
    """(21, 2) frame-pixel landmarks of every hand in a BGR frame. Not thread-safe: one instance per thread."""

    def __init__(self, max_hands: int = 2, min_score: float = 0.5, video: bool = True, complexity: int = 0):
        import mediapipe as mp

        from realtime.detect import quiet_native_stderr

        with quiet_native_stderr():  # mediapipe's graph start-up lines are for its developers (see detect.py)
            self._hands = mp.solutions.hands.Hands(static_image_mode=not video, max_num_hands=max_hands,
                                                   model_complexity=complexity, min_detection_confidence=min_score,
                                                   min_tracking_confidence=min_score)
            self._hands.process(np.zeros((64, 64, 3), np.uint8))

    def detect(self, image_bgr: np.ndarray) -> list[np.ndarray]:
        rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
        result = self._hands.process(rgb)
        h, w = image_bgr.shape[:2]
        return [np.array([(p.x * w, p.y * h) for p in hand.landmark], np.float32)
                for hand in (result.multi_hand_landmarks or [])]

    def close(self) -> None:
        self._hands.close()


def in_front_of_face(hands: list[np.ndarray], face_landmarks: np.ndarray, wrist_beyond: float = 0.2,
                     min_palm: float = 0.22) -> list[np.ndarray]:
    """The hands that can be in front of this face: those whose wrist (landmark 0) lies at least `wrist_beyond`
    face widths outside its face oval, with a palm (wrist to middle-finger base) at least `min_palm` face widths
    long. Face width: cheek to cheek (mesh points 234 and 454).

    A hand in front of a face is nearer the camera than the face, so it looks at least life-size against it:
    from wrist to fingertips about as long as the face is wide, so its wrist is well beyond the face's outline
    (below the chin, beside the cheek, above the brow). A "hand" drawn inside the oval or just at its edge, or one
    far smaller than a hand, is Hands reading a brow, a mouth or a jaw as one (docs/find.md has the measurements
    on the train and calibrate clips that chose both numbers)."""
    points = np.asarray(face_landmarks, np.float32)
    oval = points[list(FACE_OVAL)]
    width = float(np.linalg.norm(points[234] - points[454]))
    kept = []
    for hand in hands:
        outside = -cv2.pointPolygonTest(oval, (float(hand[0, 0]), float(hand[0, 1])), True)
        palm = float(np.linalg.norm(hand[9] - hand[0]))
        if outside >= wrist_beyond * width and palm >= min_palm * width:
            kept.append(hand)
    return kept


def hand_silhouette(hands: list[np.ndarray], matrix: np.ndarray, size: int, finger_width: float = 0.3,
                    forearm: float = 0.5) -> np.ndarray:
    """(size, size) bool crop-space silhouette of the hands from their 21 landmarks: the palm (hull of the palm
    points, grown by half a finger's width, since the landmarks are joint centres), each finger as a capsule of its
    real width, and the wrist carried `forearm` palm lengths on down the arm (a hand in front of a face comes with
    its wrist).

    `finger_width` is a fraction of the palm's length (wrist to middle-finger base), the size that scales with
    the hand whatever its distance from the camera.
    """
    mask = np.zeros((size, size), np.uint8)
    for points in hands:
        crop = transform_points(points, matrix)
        palm_length = float(np.linalg.norm(crop[9] - crop[0]))
        width = max(int(round(finger_width * palm_length)), 1)
        hull = cv2.convexHull(crop[list(PALM)].astype(np.float32)).astype(np.int32)
        cv2.fillConvexPoly(mask, hull, 1)
        cv2.polylines(mask, [hull], True, 1, thickness=width)
        for finger in FINGERS:
            chain = np.round(crop[list(finger)]).astype(np.int32)
            cv2.polylines(mask, [chain], False, 1, thickness=width)
            for p in chain:
                cv2.circle(mask, (int(p[0]), int(p[1])), width // 2, 1, -1)
        if forearm > 0 and palm_length > 0:
            down = (crop[0] - crop[9]) / palm_length
            wrist_width = max(int(round(0.8 * float(np.linalg.norm(crop[5] - crop[17])))), width)
            end = crop[0] + down * forearm * palm_length
            cv2.line(mask, tuple(np.round(crop[0]).astype(int)), tuple(np.round(end).astype(int)), 1,
                     thickness=wrist_width)
    return mask.astype(bool)


def refine_to_pixels(crop_bgr: np.ndarray, silhouette: np.ndarray, band: int, iterations: int = 2) -> np.ndarray:
    """The silhouette fitted to the hand's own pixels: GrabCut (colour models + edges) seeded by the landmarks.
    The silhouette's core (eroded by `band`) is surely hand, the silhouette and a ring of `band` around it may go
    either way, everything farther is surely not hand; so the result never strays more than `band` from the
    landmarks' shape. Returns the silhouette itself when it is too small to seed a colour model."""
    if band <= 0 or silhouette.sum() < 50:
        return silhouette
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band + 1, 2 * band + 1))
    sil = silhouette.astype(np.uint8)
    core = cv2.erode(sil, kernel).astype(bool)
    ring = cv2.dilate(sil, kernel).astype(bool)
    if core.sum() < 20 or (~ring).sum() < 20:
        return silhouette
    seeds = np.full(silhouette.shape, cv2.GC_BGD, np.uint8)
    seeds[ring] = cv2.GC_PR_BGD
    seeds[silhouette] = cv2.GC_PR_FGD
    seeds[core] = cv2.GC_FGD
    ys, xs = np.nonzero(ring)
    pad = band + 2
    y0, y1 = max(ys.min() - pad, 0), min(ys.max() + pad + 1, silhouette.shape[0])
    x0, x1 = max(xs.min() - pad, 0), min(xs.max() + pad + 1, silhouette.shape[1])
    box_seeds = np.ascontiguousarray(seeds[y0:y1, x0:x1])
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(np.ascontiguousarray(crop_bgr[y0:y1, x0:x1]), box_seeds, None, background, foreground,
                    iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # a colour model that cannot be fitted (e.g. one flat colour): keep the landmarks' shape
        return silhouette
    out = np.zeros_like(silhouette)
    out[y0:y1, x0:x1] = (box_seeds == cv2.GC_FGD) | (box_seeds == cv2.GC_PR_FGD)
    return out


def hand_mask(hands: list[np.ndarray], matrix: np.ndarray, size: int, crop_bgr: np.ndarray | None = None,
              refine_band: float = 0.0, region: np.ndarray | None = None, finger_width: float = 0.3,
              forearm: float = 0.5) -> np.ndarray:
    """(size, size) bool crop-space mask of the hands: the landmark silhouette, refined to the crop's pixels when a
    crop and a band (a fraction of the crop size) are given and the silhouette reaches `region` (the face: a hand
    beside the face is not worth the refinement's time)."""
    silhouette = hand_silhouette(hands, matrix, size, finger_width, forearm)
    if crop_bgr is None or refine_band <= 0 or not silhouette.any():
        return silhouette
    if region is not None and not (silhouette & region).any():
        return silhouette
    return refine_to_pixels(crop_bgr, silhouette, int(round(refine_band * size)))


class HandsStage:
    """Puts the frame's hands on `frame.hands`; in video Hands runs on every `hands_every`-th frame and its hands
    are kept between. `config` is the find stage's (fields `hands`, `hands_every`, `video`)."""

    name = "hands"

    def __init__(self, config):
        self.config = config
        # built now, not on the first frame: its start-up would otherwise count as that frame's latency
        self._detector: HandDetector | None = self._new_detector() if config.hands else None
        self._last: tuple[int, list[np.ndarray]] | None = None  # (frame index, hands) of the last Hands run

    def process(self, frame):
        if not self.config.hands or frame.decode_failed:
            frame.hands = []
            return frame
        every = max(self.config.hands_every, 1) if self.config.video else 1
        if self._last is not None and 0 <= frame.index - self._last[0] < every:
            frame.hands = self._last[1]
            return frame
        if self._detector is None:
            self._detector = self._new_detector()
        frame.hands = self._detector.detect(frame.image)
        self._last = (frame.index, frame.hands)
        return frame

    def _new_detector(self) -> HandDetector:
        return HandDetector(min_score=self.config.hands_min_score, video=self.config.video,
                            complexity=self.config.hands_complexity)

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None
