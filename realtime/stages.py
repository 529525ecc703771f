"""The pipeline's stages. Each has a `name` and one job: `process(frame) -> frame`, adding its own part.

They are wired together in one place, realtime/pipeline.py. A stage's settings live in a frozen config that the
viewer may swap between frames (`stage.config = replace(stage.config, ...)`): changes apply on the next frame.
"""
from __future__ import annotations

from typing import Protocol

import numpy as np

from realtime.align import align_to_template, five_points_from_mesh, warp_to_crop
from realtime.blend import BlendConfig, blend_frame, occluded_region
from realtime.errors import UnveilError
from realtime.frame import Frame
from realtime.runner import ModelRunner
from realtime.temporal import RecurrentStates

MODES = ("blind", "symmetry", "blind+symmetry")


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


class InferStage:
    """All faces of a frame go through the model(s) in one batch.

    Modes: `blind` — the blind model finds and fills; `symmetry` — the blind model finds, the symmetry model fills
    from the original crop; `blind+symmetry` — the symmetry model refines the blind model's completion.
    """

    name = "infer"

    def __init__(self, blind: ModelRunner, symmetry: ModelRunner | None = None, mode: str = "blind",
                 region: BlendConfig = BlendConfig()):
        if mode not in MODES:
            raise UnveilError(f"unknown mode {mode!r} (choose {', '.join(MODES)})")
        if mode != "blind" and symmetry is None:
            raise UnveilError(f"mode {mode!r} needs a symmetry model (--model PATH of kind symmetry_completion)")
        self.blind, self.symmetry, self.mode = blind, symmetry, mode
        # the symmetry model fills the binary region the blend stage will paste (threshold + dilation): handed the
        # blind model's soft mask it kept half-transparent occluder remnants (-1.7 dB in-hole on one-half holes)
        self.region = region
        # a recurrent blind model gets its previous output per track, moved to the current alignment
        self.states = RecurrentStates() if blind.contract.recurrent else None

    def process(self, frame: Frame) -> Frame:
        faces = [f for f in frame.faces if f.crop is not None]
        if not faces:
            return frame
        states = self.states.states_for(faces, frame.index) if self.states else None
        found = self.blind.run([f.crop for f in faces], states=states)
        if self.states:
            self.states.remember(faces, found.states, frame.index)
        fills = list(found.images)
        if self.mode != "blind":
            holes = [occluded_region(m, self.region).astype(np.float32) for m in found.masks]
            sources = [f.crop for f in faces] if self.mode == "symmetry" else found.images
            todo = [i for i, hole in enumerate(holes) if hole.any()]  # nothing to fill: nothing will be pasted
            if todo:
                filled = self.symmetry.run([sources[i] for i in todo], [holes[i] for i in todo]).images
                for i, image in zip(todo, filled):
                    fills[i] = image
        for face, mask, fill in zip(faces, found.masks, fills):
            face.mask, face.completed = mask, fill
        return frame


class BlendStage:
    name = "blend"

    def __init__(self, config: BlendConfig):
        self.config = config

    def process(self, frame: Frame) -> Frame:
        frame.output, frame.replaced = blend_frame(frame, self.config)
        return frame
