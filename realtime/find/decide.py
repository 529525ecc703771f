"""Decide: the one place where a face's evidence becomes its occlusion mask (see realtime.find for the rules)."""
from __future__ import annotations

import cv2
import numpy as np

from realtime.find.config import FindConfig
from realtime.regions import dilate, remove_specks


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


EVIDENCE = ("none", "held", "segmenter", "hands", "both")  # codes of `found_by`, weakest first
EVIDENCE_CODE = {name: code for code, name in enumerate(EVIDENCE)}


def found_by(mask: np.ndarray, probability: np.ndarray, hands: np.ndarray, threshold: float, grow: int) -> np.ndarray:
    """(S, S) uint8: which evidence made each decided pixel (EVIDENCE codes): the segmenter, hands, both, or
    `held` (on only because the track's occlusion persists). The grown fringe takes the code of the strongest
    evidence within `grow` pixels."""
    codes = np.where(probability >= threshold, EVIDENCE_CODE["segmenter"], EVIDENCE_CODE["held"]).astype(np.uint8)
    codes[hands & (probability >= threshold)] = EVIDENCE_CODE["both"]
    codes[hands & (probability < threshold)] = EVIDENCE_CODE["hands"]
    decided = mask > 0.5
    codes[~decided] = 0
    if grow > 0 and decided.any():
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        codes = np.where(decided, np.maximum(codes, cv2.dilate(codes, kernel)), 0).astype(np.uint8)
    return codes
