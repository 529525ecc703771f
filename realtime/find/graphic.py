"""Graphic overlays: subtitles, bars, stickers and other rendered shapes over a face, found by their flat colour.

A rendered overlay is painted in one colour (its fill, its outline); a face a camera saw does not repeat one colour
over many pixels without look-alikes elsewhere on it. So, among the pixels the segmenter suspects (probability at
least `low`, far below its threshold), a colour that fills many of them, has few look-alikes on the rest of the
face and meets the face at a sharp edge is an overlay's; all its pixels in the crop are marked. `decide` takes it
as it takes a hand: sure on its own. It finds what the segmenter only half sees (thin text strokes, a bar in a
skin-like colour); it finds nothing on a real hand or object, nor on an overlay that heavy compression has made
noisy (docs/find.md).
"""
from __future__ import annotations

import cv2
import numpy as np

from realtime.regions import dilate


def colour_keys(crop: np.ndarray) -> np.ndarray:
    """(S, S) int32: each pixel's exact colour as one number."""
    c = crop.astype(np.int32)
    return (c[..., 0] << 16) | (c[..., 1] << 8) | c[..., 2]


def graphic_mask(crop: np.ndarray, probability: np.ndarray, region: np.ndarray, low: float, min_px: int,
                 grow: int = 2, alike: float = 0.5, tolerance: int = 1, levels: int = 6, away_px: int = 4,
                 reach_px: int = 4, seed_px: int = 5, step: float = 20.0,
                 most: int = 16) -> np.ndarray:
    """(S, S) bool: the pixels of overlays found by their flat colour in `region` (the face), grown by `grow` px
    within it.

    A colour is a seed where it fills `seed_px` suspect pixels (`probability` >= `low`, inside `region`, the face).
    Its overlay is the suspect pixels within `tolerance` levels of it (resampling the crop moves a flat colour by a
    level or two); it counts when it holds `min_px` pixels and the face away from it (not suspect, `away_px` from it)
    has at most `alike` x as many pixels within `levels` of the colour: a flat patch of skin has look-alikes on the
    rest of the face, an overlay's colour has none. Pixels within `levels` of it among the suspects, within
    `reach_px` of the overlay, are its too (thin strokes). Last, the overlay must meet the face at a sharp edge:
    the median step to the pixels around it at least `step` levels. At most the `most` commonest colours are
    tried."""
    region = region.astype(bool)
    suspect = (probability >= low) & region
    marked = np.zeros(region.shape, bool)
    if int(suspect.sum()) < min_px:
        return marked
    keys = colour_keys(crop)
    colours, counts = np.unique(keys[suspect], return_counts=True)
    order = np.argsort(counts)[::-1][:most]
    seeds = colours[order][counts[order] >= seed_px]
    if not seeds.size:
        return marked
    channels = [np.ascontiguousarray(crop[..., i], dtype=np.int16) for i in range(3)]
    face_channels = [c[region] for c in channels]
    face_suspect = suspect[region]
    rest = region & ~suspect
    taken: list[np.ndarray] = []   # overlay colours found
    tried: list[np.ndarray] = []   # every colour judged
    for key in seeds:
        colour = np.array([(key >> 16) & 255, (key >> 8) & 255, key & 255], np.int16)
        if (any(int(np.abs(colour - t).max()) <= levels for t in taken)  # a shade of an overlay already found
                or any(int(np.abs(colour - t).max()) <= tolerance for t in tried)):
            continue
        tried.append(colour)
        near = chebyshev(face_channels, colour)  # first over the face's pixels only: most seeds end here, cheaply
        size = int(np.count_nonzero((face_suspect & (near <= tolerance)) | (near == 0)))
        if size < min_px:
            continue
        surely_alone = np.count_nonzero((near <= levels) & ~face_suspect) <= alike * size
        distance = chebyshev(channels, colour)
        overlay = (suspect & (distance <= tolerance)) | (region & (distance == 0))
        alikes = distance <= levels
        if not surely_alone and np.count_nonzero(alikes & rest & ~dilate(overlay, away_px)) > alike * size:
            continue
        overlay |= alikes & suspect & dilate(overlay, reach_px)
        ring = dilate(overlay, 2) & ~overlay & region
        if ring.any() and float(np.median(distance[ring])) < step:  # its edge fades into the face: skin, not paint
            continue
        marked |= overlay
        taken.append(colour)
    return dilate(marked, grow) & region


def graphic_mask_for_face(image: np.ndarray, crop: np.ndarray, matrix: np.ndarray, probability: np.ndarray,
                          region: np.ndarray, low: float, min_px: int, grow: int, finest: float = 1.5) -> np.ndarray:
    """`graphic_mask` for one face, in crop coordinates (`crop` cut from the frame `image` by `matrix`, frame ->
    crop; `min_px` and `grow` in crop pixels). A face larger in the frame than in its crop is looked at on a finer
    grid, up to `finest` x the crop's, sampled from the frame by nearest neighbour: resampling to the crop blends
    a thin stroke's exact colour away, sampling keeps it."""
    matrix = np.asarray(matrix, np.float64)
    size = crop.shape[0]
    scale = float(np.hypot(matrix[0, 0], matrix[0, 1]))  # crop pixels per frame pixel
    fine = min(1.0 / scale, finest) if scale > 0 else 1.0
    # where the crop leaves the frame its pixels are the frame's edge repeated: a flat run that no overlay made
    region = region.astype(bool) & inside_frame(matrix, size, image.shape[:2])
    if fine <= 1.0:
        return graphic_mask(crop, probability, region, low, min_px, grow)
    side = int(round(size * fine))
    k = side / size
    sampled = cv2.warpAffine(image, matrix * k, (side, side), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    found = graphic_mask(sampled, cv2.resize(probability.astype(np.float32), (side, side)),
                         cv2.resize(region.astype(np.uint8), (side, side), interpolation=cv2.INTER_NEAREST) > 0,
                         low, int(round(min_px * k * k)), int(round(grow * k)), away_px=int(round(4 * k)),
                         reach_px=int(round(4 * k)))
    if not found.any():
        return np.zeros(region.shape, bool)
    return (cv2.resize(found.astype(np.float32), (size, size), interpolation=cv2.INTER_AREA) >= 0.5) & region


def inside_frame(matrix: np.ndarray, size: int, frame_hw: tuple[int, int]) -> np.ndarray:
    """(size, size) bool: the crop pixels that lie on the frame (`matrix`: frame -> crop)."""
    h, w = frame_hw
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float64)  # the edge pixels' centres
    points = corners @ matrix[:, :2].T + matrix[:, 2]
    mask = np.zeros((size, size), np.uint8)
    cv2.fillConvexPoly(mask, np.round(points * 16).astype(np.int32), 1, cv2.LINE_8, 4)
    return mask.astype(bool)


def chebyshev(channels: list[np.ndarray], colour: np.ndarray) -> np.ndarray:
    """The largest per-channel difference of each pixel from `colour` (channels as separate int16 arrays)."""
    return np.maximum(np.maximum(np.abs(channels[0] - colour[0]), np.abs(channels[1] - colour[1])),
                      np.abs(channels[2] - colour[2]))
