"""The pipeline's stages. Each has a `name` and one job: `process(frame) -> frame`, adding its own part.

detect, track, align and blend live here; find (realtime/find/) decides the occlusion mask, fill
(realtime/fill.py) makes the face behind it. They are wired together in one place, realtime/pipeline.py. A stage's settings live in a frozen config that the
viewer may swap between frames (`stage.config = replace(stage.config, ...)`): changes apply on the next frame.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
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


class Beside:
    """Two stages on the same frame at once: `main` in the calling thread, `side` in a worker thread of its own.
    For stages that need nothing from each other and write different fields (detect: the faces; hands: the hands,
    both from the whole frame): the frame waits for the slower of the two, not for one after the other. Named as
    `main` (so its wall time includes any wait for `side`); `side`'s own times are recorded under its name."""

    def __init__(self, main, side):
        self.main, self.side = main, side
        self.name = main.name
        self.parts = (main, side)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"unveil-{side.name}")

    def process(self, frame: Frame) -> Frame:
        pending = self._worker.submit(self._run_side, frame)
        try:
            frame = self.main.process(frame)
        finally:
            pending.result()   # the side's exception, if any, is raised here
        return frame

    def _run_side(self, frame: Frame) -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        self.side.process(frame)
        frame.timings[self.side.name] = (time.perf_counter() - t0) * 1000.0
        frame.cpu_timings[self.side.name] = (time.thread_time() - c0) * 1000.0

    def close(self) -> None:
        self._worker.shutdown(wait=True)
        close = getattr(self.side, "close", None)
        if close is not None:
            close()


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
