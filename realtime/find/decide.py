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


def decide(probability: np.ndarray, certain: np.ndarray, region: np.ndarray, threshold: float,
           history: tuple[np.ndarray, np.ndarray] | None, config: FindConfig,
           change: np.ndarray | None = None, change_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(candidate, on) for one face. `certain` is what evidence sure on its own marks (a hand's silhouette, a
    graphic overlay's flat colour): it reaches the output at once and is never vetoed. `history` is the previous
    frame's (candidate, on), already in this crop's coordinates, or None for a face seen for the first time.
    `change` is the surface evidence (the reference-conditioned segmenter's probability, realtime.find.surface)
    when the track has a clean reference, else None."""
    found = probability >= threshold
    if change is not None and config.surface_adds:  # a change the surface model is sure of, the segmenter unsure
        found |= (change >= change_threshold) & (probability >= config.off_ratio * threshold)
    candidate = big_enough((found | certain) & region, certain, config)
    confident = sure_level(config, threshold)
    if change is not None:
        candidate = surface_veto(candidate, change, probability, certain, config.surface_veto, confident)
    if config.persist_frames <= 1 or not config.video:
        return candidate, candidate
    sure = confident_regions(candidate, probability, certain, confident)
    if history is None:
        return candidate, sure
    prev_candidate, prev_on = history
    near_on = dilate(prev_on, 2)
    confirmed = connected_to(candidate, prev_candidate | near_on)
    held = prev_on & ((probability >= config.off_ratio * threshold) | certain) & region
    on = big_enough(sure | confirmed | held, certain, config)
    if change is not None:
        on = surface_veto(on, change, probability, certain, config.surface_veto, confident)
    return candidate, on


def big_enough(mask: np.ndarray, certain: np.ndarray, config: FindConfig) -> np.ndarray:
    """`mask` without its specks (below `min_area`) and without the small regions (below `min_area_alone`) that
    hold no `certain` pixel: those only the segmenter marks."""
    size = mask.size
    mask = remove_specks(mask, max(int(round(config.min_area * size)), 1))
    return remove_specks(mask, max(int(round(config.min_area_alone * size)), 1), spare=certain)


def sure_level(config: FindConfig, threshold: float) -> float:
    """The segmenter's mean probability over a region at which it is sure of it (at least halfway to 1)."""
    return max(config.confident, threshold + 0.5 * (1.0 - threshold))


def surface_veto(mask: np.ndarray, change: np.ndarray, probability: np.ndarray, certain: np.ndarray,
                 veto: float, confident: float) -> np.ndarray:
    """`mask` without its regions where the surface model sees no change (mean probability below `veto`): the
    segmenter fired on the person's own face, as it looked when clean. Regions that hold a `certain` pixel (a hand,
    an overlay), or that the segmenter is sure of (mean probability >= `confident`), are never vetoed."""
    if veto <= 0 or not mask.any():
        return mask
    count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    index = labels.ravel()
    pixels = np.maximum(np.bincount(index, None, count), 1)
    mean = np.bincount(index, change.ravel().astype(np.float64), count) / pixels
    keep = (mean >= veto) | (np.bincount(index, probability.ravel().astype(np.float64), count) / pixels >= confident)
    keep[np.unique(labels[certain & mask])] = True
    keep[0] = False
    return keep[labels]


def confident_regions(candidate: np.ndarray, probability: np.ndarray, certain: np.ndarray,
                      confident: float) -> np.ndarray:
    """The candidate regions the finder is sure of (mean probability >= `confident`) or that hold a `certain` pixel
    (a hand, an overlay)."""
    if not candidate.any():
        return candidate
    count, labels = cv2.connectedComponents(candidate.astype(np.uint8), connectivity=8)
    index = labels.ravel()
    mean = np.bincount(index, probability.ravel().astype(np.float64), count) / np.maximum(np.bincount(index, None, count), 1)
    sure = mean >= confident
    sure[np.unique(labels[certain & candidate])] = True
    sure[0] = False
    return sure[labels]


EVIDENCE = ("none", "held", "segmenter", "surface", "hands", "both", "graphic")  # codes of `found_by`
EVIDENCE_CODE = {name: code for code, name in enumerate(EVIDENCE)}


def found_by(mask: np.ndarray, probability: np.ndarray, hands: np.ndarray, threshold: float, grow: int,
             change: np.ndarray | None = None, change_threshold: float = 0.5,
             graphic: np.ndarray | None = None) -> np.ndarray:
    """(S, S) uint8: which evidence made each decided pixel (EVIDENCE codes): the segmenter, the surface change
    (where the segmenter alone was below its threshold), hands, segmenter and hands both, a graphic overlay's
    colour, or `held` (on only because the track's occlusion persists). The grown fringe takes the code of the
    strongest evidence within `grow` px (the higher code)."""
    segmenter = probability >= threshold
    codes = np.where(segmenter, EVIDENCE_CODE["segmenter"], EVIDENCE_CODE["held"]).astype(np.uint8)
    if change is not None:
        codes[~segmenter & (change >= change_threshold)] = EVIDENCE_CODE["surface"]
    codes[hands & segmenter] = EVIDENCE_CODE["both"]
    codes[hands & ~segmenter] = EVIDENCE_CODE["hands"]
    if graphic is not None:
        codes[graphic & ~hands] = EVIDENCE_CODE["graphic"]
    decided = mask > 0.5
    codes[~decided] = 0
    if grow > 0 and decided.any():
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        codes = np.where(decided, np.maximum(codes, cv2.dilate(codes, kernel)), 0).astype(np.uint8)
    return codes
