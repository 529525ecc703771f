"""The graphic-overlay evidence (realtime.find.graphic) on small synthetic crops: its rule, and how decide uses it."""
from __future__ import annotations

import cv2
import numpy as np

from realtime.find import FindConfig, decide
from realtime.find.decide import EVIDENCE_CODE, found_by
from realtime.find.graphic import graphic_mask

S = 128
REGION = np.zeros((S, S), bool)
REGION[10:118, 8:120] = True


def skin(seed: int = 0, noise: float = 3.0) -> np.ndarray:
    """A shaded, noisy skin-toned crop: no colour repeats over a patch."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:S, 0:S].astype(np.float32)
    base = np.stack([110 + 0.3 * x, 140 + 0.25 * y, 190 + 0.1 * (x - y)], -1)
    return np.clip(base + rng.normal(0, noise, (S, S, 3)), 0, 255).astype(np.uint8)


def suspecting(mask: np.ndarray, level: float = 0.3) -> np.ndarray:
    """A segmenter that only half sees `mask`: well below any threshold there, 0 elsewhere."""
    return np.where(mask, level, 0.0).astype(np.float32)


def test_a_flat_coloured_text_the_segmenter_only_suspects_is_marked_on_its_strokes():
    crop = skin()
    cv2.putText(crop, "LOREM", (24, 80), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (40, 220, 250), 3, cv2.LINE_AA)
    strokes = (crop == (40, 220, 250)).all(-1)
    probability = suspecting(cv2.dilate(strokes.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0)
    mask = graphic_mask(crop, probability, REGION, 0.05, 15)
    assert mask[strokes].all()
    assert not mask[:50].any() and not mask[100:].any()   # nothing far from the text


def test_nothing_is_marked_where_the_segmenter_suspects_nothing():
    crop = skin()
    crop[40:70, 40:80] = (200, 30, 30)
    assert not graphic_mask(crop, np.zeros((S, S), np.float32), REGION, 0.05, 15).any()


def test_a_noisy_or_shaded_patch_of_skin_is_not_an_overlay():
    crop = skin(noise=3.0)
    patch = np.zeros((S, S), bool)
    patch[40:70, 40:80] = True
    assert not graphic_mask(crop, suspecting(patch), REGION, 0.05, 15).any()


def test_a_flat_patch_that_fades_into_the_face_or_has_look_alikes_on_it_is_not_an_overlay():
    crop = skin(noise=0.0)
    flat = crop.copy()
    flat[40:70, 40:80] = flat[55, 60]  # compressed skin: flat, but the colour of the face around it
    patch = np.zeros((S, S), bool)
    patch[40:70, 40:80] = True
    assert not graphic_mask(flat, suspecting(patch), REGION, 0.05, 15).any()
    painted = crop.copy()
    painted[40:70, 40:80] = (20, 200, 60)  # the same shape in a colour the face does not have
    assert graphic_mask(painted, suspecting(patch), REGION, 0.05, 15)[patch].all()


def test_a_colour_shown_too_few_times_is_not_an_overlay():
    crop = skin()
    crop[50:53, 50:53] = (20, 200, 60)   # 9 px
    patch = np.zeros((S, S), bool)
    patch[45:58, 45:58] = True
    assert not graphic_mask(crop, suspecting(patch), REGION, 0.05, 15).any()
    assert graphic_mask(crop, suspecting(patch), REGION, 0.05, 9)[50:53, 50:53].all()


def test_decide_takes_a_graphic_overlay_at_once_and_found_by_names_it():
    crop = skin()
    crop[40:70, 40:80] = (20, 200, 60)
    patch = np.zeros((S, S), bool)
    patch[40:70, 40:80] = True
    probability = suspecting(patch)  # far below the threshold of 0.9
    overlay = graphic_mask(crop, probability, REGION, 0.05, 15) & REGION
    config = FindConfig()  # video: an unsure region would need two frames
    assert not decide(probability, np.zeros((S, S), bool), REGION, 0.9, None, config)[1].any()
    _, on = decide(probability, overlay, REGION, 0.9, None, config)
    assert on[patch].all()
    codes = found_by(on.astype(np.float32), probability, np.zeros((S, S), bool), 0.9, 0, graphic=overlay)
    assert (codes[patch] == EVIDENCE_CODE["graphic"]).all()


def test_thin_strokes_of_a_face_larger_than_its_crop_are_found_on_the_frame_grid():
    from realtime.align import warp_to_crop
    from realtime.find.graphic import graphic_mask_for_face

    rng = np.random.default_rng(1)
    frame = np.clip(cv2.resize(skin(noise=0.0), (256, 256)) + rng.normal(0, 3, (256, 256, 3)), 0, 255).astype(np.uint8)
    cv2.putText(frame, "LOREM IPSUM", (30, 140), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (40, 220, 250), 2, cv2.LINE_AA)
    matrix = np.array([[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]])  # the face is twice as large in the frame as in the crop
    crop = warp_to_crop(frame, matrix, S)
    painted = (frame == (40, 220, 250)).all(-1).astype(np.float32)
    strokes = cv2.resize(painted, (S, S), interpolation=cv2.INTER_AREA) > 0.25
    probability = suspecting(cv2.dilate(strokes.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0)
    assert (crop == (40, 220, 250)).all(-1).sum() < 0.05 * strokes.sum()  # the crop has blended the colour away
    found = graphic_mask_for_face(frame, crop, matrix, probability, REGION, 0.05, 15, 1)
    assert found[strokes].mean() > 0.9
    assert not found[:50].any() and not found[100:].any()


def test_the_repeated_edge_of_a_face_at_the_frame_border_is_not_an_overlay():
    from realtime.align import warp_to_crop
    from realtime.find.graphic import graphic_mask_for_face, inside_frame

    frame = skin(seed=2)[:, :80].copy()          # the face's right part lies beyond the frame's right edge
    frame[:, 79] = np.random.default_rng(3).integers(0, 256, (S, 3))  # an edge column of unrelated colours
    matrix = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    crop = warp_to_crop(frame, matrix, S)          # beyond the edge: that column repeated, a flat run per row
    assert (inside_frame(matrix, S, frame.shape[:2]).sum(axis=0) > 0).sum() == 80
    probability = suspecting(np.ones((S, S), bool))  # the segmenter unsure everywhere
    assert graphic_mask(crop, probability, REGION, 0.05, 15)[:, 80:].any()  # the crop alone takes the runs
    found = graphic_mask_for_face(frame, crop, matrix, probability, REGION, 0.05, 15, 1)
    assert not found.any()
    frame[40:70, 30:60] = (20, 200, 60)            # a real overlay on the frame is still found
    found = graphic_mask_for_face(frame, warp_to_crop(frame, matrix, S), matrix, probability, REGION, 0.05, 15, 1)
    assert found[40:70, 30:60].all() and not found[:, 80:].any()
