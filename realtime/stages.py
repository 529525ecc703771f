"""The pipeline's stages. Each has a `name` and one job: `process(frame) -> frame`, adding its own part.

detect, track, align and blend live here; find (realtime/find/) decides the occlusion mask, fill
(realtime/fill.py) makes the face behind it. They are wired together in one place, realtime/pipeline.py. A stage's settings live in a frozen config that the
viewer may swap between frames (`stage.config = replace(stage.config, ...)`): changes apply on the next frame.
"""
from __future__ import annotations

from typing import Protocol

from realtime.align import align_to_template, five_points_from_mesh, warp_to_crop
from realtime.blend import blend_frame
from realtime.frame import Frame


class Stage(Protocol):
    name: str

    def process(self, frame: Frame) -> Frame: ...


class DetectStage:
    name = "detect"

    def __init__(self, detector):
        self.detector = detector

    def process(self, frame: Frame) -> Frame:
        if not frame.decode_failed:
            frame.faces = self.detector.detect(frame.image)
        return frame


class TrackStage:
    name = "track"

    def __init__(self, tracker):
        self.tracker = tracker

    def process(self, frame: Frame) -> Frame:
        t = frame.pts * frame.time_base if frame.pts is not None and frame.time_base else frame.captured_at
        frame.faces = self.tracker.update(frame.faces, float(t))
        return frame


class AlignStage:
    name = "align"

    def __init__(self, crop_size: int, template: str, margin: float):
        self.crop_size, self.template, self.margin = crop_size, template, margin

    def process(self, frame: Frame) -> Frame:
        for face in frame.faces:
            face.matrix = align_to_template(five_points_from_mesh(face.landmarks), self.crop_size, self.template, self.margin)
            face.crop = warp_to_crop(frame.image, face.matrix, self.crop_size)
        return frame


class BlendStage:
    """Paste each face's fill with its weight; every other pixel stays the input's, bit for bit."""

    name = "blend"

    def process(self, frame: Frame) -> Frame:
        frame.output, frame.replaced = blend_frame(frame)
        return frame
