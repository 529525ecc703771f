"""Hands on the whole frame with mediapipe Hands (palm detection + 21 landmarks), rasterised as occlusion evidence.

A hand over the face is the commonest occluder on a webcam. The hands stage finds them (its own thread, so it runs
beside the segmenter); the find stage draws the palm polygon plus one capsule per finger in aligned-crop
coordinates and combines it with the other evidence there.
"""
from __future__ import annotations

import cv2
import numpy as np

from realtime.align import transform_points

PALM = (0, 1, 5, 9, 13, 17)
FINGERS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))


class HandDetector:
    """(21, 2) frame-pixel landmarks of every hand in a BGR frame. Not thread-safe: one instance per thread."""

    def __init__(self, max_hands: int = 2, min_score: float = 0.5, video: bool = True):
        import mediapipe as mp

        from realtime.detect import quiet_native_stderr

        with quiet_native_stderr():  # mediapipe's graph start-up lines are for its developers (see detect.py)
            self._hands = mp.solutions.hands.Hands(static_image_mode=not video, max_num_hands=max_hands,
                                                   model_complexity=0, min_detection_confidence=min_score,
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


def hand_mask(hands: list[np.ndarray], matrix: np.ndarray, size: int, finger_width: float = 0.22) -> np.ndarray:
    """(size, size) bool crop-space mask of the hands: palm polygon and finger capsules.

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
        for finger in FINGERS:
            chain = np.round(crop[list(finger)]).astype(np.int32)
            cv2.polylines(mask, [chain], False, 1, thickness=width)
            for p in chain:
                cv2.circle(mask, (int(p[0]), int(p[1])), width // 2, 1, -1)
    return mask.astype(bool)


class HandsStage:
    """Puts the frame's hands on `frame.hands`; in video Hands runs on every `hands_every`-th frame and its hands
    are kept between. `config` is the find stage's (fields `hands`, `hands_every`, `video`)."""

    name = "hands"

    def __init__(self, config):
        self.config = config
        # built now, not on the first frame: its start-up would otherwise count as that frame's latency
        self._detector: HandDetector | None = HandDetector(video=config.video) if config.hands else None
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
            self._detector = HandDetector(video=self.config.video)
        frame.hands = self._detector.detect(frame.image)
        self._last = (frame.index, frame.hands)
        return frame

    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None
