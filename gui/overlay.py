"""What the view shows for a frame: original and result side by side, a split, or the result alone, with
optional overlays (replaced pixels tinted by filler, and on the original by the evidence that found them; face boxes
and track ids, landmarks). Pure functions of their inputs."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from realtime.find.evidence_map import EVIDENCE_BGR, evidence_in_frame
from realtime.frame import Frame

COMPARE_MODES = ("side_by_side", "split", "result")
COMPARE_LABELS = {"side_by_side": "Side by side", "split": "Split slider", "result": "Result only"}
MASK_TINT_BGR = np.array([255, 80, 200], np.float32)   # violet: reads well over skin and most occluders
# which filler made a pixel (realtime.fill.FILLERS order): memory green, mirror blue, network violet, inpaint yellow
FILLER_TINT_BGR = np.array([[0, 0, 0], [90, 200, 60], [230, 150, 40], [255, 80, 200], [40, 210, 240]], np.float32)
BOX_BGR = (80, 220, 120)
LANDMARK_BGR = (255, 200, 0)
GAP_PX = 6
GAP_BGR = (32, 28, 26)


@dataclass(frozen=True)
class ViewOptions:
    compare: str = "side_by_side"
    split: float = 0.5            # split mode: fraction of the width that shows the original
    show_mask: bool = False
    show_faces: bool = True
    show_landmarks: bool = False
    symmetrize: bool = False      # the result with every face made symmetric (landmark method, realtime.symmetrize)
    show_asymmetry: bool = False  # the asymmetry heat-map over each face of the original


def symmetry_views(frame: Frame, original: np.ndarray, result: np.ndarray, options: ViewOptions
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(original, result) with the symmetrize view and the asymmetry heat-map applied, as chosen."""
    points = [face.landmarks for face in frame.faces if face.landmarks is not None]
    if not points or not (options.symmetrize or options.show_asymmetry):
        return original, result
    from realtime.symmetrize import asymmetry_heatmap, symmetrize_frame

    try:
        symmetric, analyses = symmetrize_frame(result, points)
    except Exception:  # noqa: BLE001 - a face half out of the picture: show the frame as it is
        return original, result
    if options.symmetrize:
        result = symmetric
    if options.show_asymmetry:
        if options.compare == "result":
            result = asymmetry_heatmap(result if not options.symmetrize else frame.result(), analyses)
        else:
            original = asymmetry_heatmap(original, analyses)
    return original, result


def tint_mask(canvas: np.ndarray, replaced: np.ndarray | None, strength: float = 0.55) -> None:
    """Tint the replaced pixels of `canvas` in place; only the mask's bounding box is touched."""
    if replaced is None:
        return
    x, y, w, h = cv2.boundingRect(replaced)
    if w == 0 or h == 0:
        return
    roi = canvas[y:y + h, x:x + w]
    where = replaced[y:y + h, x:x + w] > 0
    roi[where] = (roi[where].astype(np.float32) * (1 - strength) + MASK_TINT_BGR * strength).astype(np.uint8)


def tint_fillers(canvas: np.ndarray, frame: Frame, strength: float = 0.5) -> None:
    """Tint each replaced pixel by the filler that made it (memory, mirror, network, inpaint)."""
    for face in frame.faces:
        fill = face.fill
        if fill is None:
            continue
        x0, y0, x1, y1 = fill.box
        roi = canvas[y0:y1, x0:x1]
        where = (fill.weight > 0) & (fill.source > 0)
        if frame.replaced is not None:
            where &= frame.replaced[y0:y1, x0:x1] > 0
        tint = FILLER_TINT_BGR[fill.source[where]]
        roi[where] = (roi[where].astype(np.float32) * (1 - strength) + tint * strength).astype(np.uint8)


def tint_evidence(canvas: np.ndarray, frame: Frame, strength: float = 0.5) -> None:
    """Tint each decided pixel of the original by the evidence that decided it (segmenter orange, surface green, hands cyan,
    both white, graphic overlay magenta, held by persistence grey)."""
    codes = evidence_in_frame(frame)
    if codes is None:
        return
    where = codes > 0
    canvas[where] = (canvas[where].astype(np.float32) * (1 - strength)
                     + EVIDENCE_BGR[codes[where]].astype(np.float32) * strength).astype(np.uint8)


def draw_faces(canvas: np.ndarray, frame: Frame) -> None:
    scale = max(1, round(max(canvas.shape[:2]) / 640))
    for face in frame.faces:
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        cv2.rectangle(canvas, (x0, y0), (x1, y1), BOX_BGR, scale, cv2.LINE_AA)
        label = f"#{face.track_id}" if face.track_id >= 0 else f"{face.score:.2f}"
        cv2.putText(canvas, label, (x0 + 2, max(12 * scale, y0 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * scale,
                    BOX_BGR, scale, cv2.LINE_AA)


def draw_landmarks(canvas: np.ndarray, frame: Frame) -> None:
    height, width = canvas.shape[:2]
    for face in frame.faces:
        if face.landmarks is None:
            continue
        points = np.rint(face.landmarks).astype(np.int64)
        inside = (points[:, 0] >= 0) & (points[:, 0] < width - 1) & (points[:, 1] >= 0) & (points[:, 1] < height - 1)
        xs, ys = points[inside, 0], points[inside, 1]
        for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):  # 2x2 dots, vectorised
            canvas[ys + dy, xs + dx] = LANDMARK_BGR


def decorate(pane: np.ndarray, frame: Frame, options: ViewOptions, with_mask: bool) -> None:
    """Draw the chosen overlays into `pane` (a view into the output canvas) in place."""
    if with_mask and options.show_mask:
        if any(face.fill is not None for face in frame.faces):
            tint_fillers(pane, frame)
        else:
            tint_mask(pane, frame.replaced)
    elif options.show_mask:  # the original's pane: which evidence found what the result's pane shows replaced
        tint_evidence(pane, frame)
    if options.show_faces:
        draw_faces(pane, frame)
    if options.show_landmarks:
        draw_landmarks(pane, frame)


def compose_view(frame: Frame, options: ViewOptions) -> np.ndarray:
    """The BGR picture to display, in one new canvas (the frame's own images are never modified)."""
    original, result = symmetry_views(frame, frame.image, frame.result(), options)
    height, width = original.shape[:2]
    if options.compare == "result":
        canvas = result.copy()
        decorate(canvas, frame, options, with_mask=True)
        return canvas
    if options.compare == "split":
        # Both panes are drawn full-size, then cut, so overlays stay continuous across the divider.
        cut = int(round(np.clip(options.split, 0.0, 1.0) * width))
        left, right = original.copy(), result.copy()
        decorate(left, frame, options, with_mask=False)
        decorate(right, frame, options, with_mask=True)
        right[:, :cut] = left[:, :cut]
        return right
    canvas = np.empty((height, 2 * width + GAP_PX, 3), np.uint8)
    canvas[:, :width] = original
    canvas[:, width:width + GAP_PX] = GAP_BGR
    canvas[:, width + GAP_PX:] = result
    decorate(canvas[:, :width], frame, options, with_mask=False)
    decorate(canvas[:, width + GAP_PX:], frame, options, with_mask=True)
    return canvas
