"""Offline processing of video files, images and image folders (the `unveil process` command).

A video file is known from its first frame to its last, so by default it is read twice. Pass 1 (gather) runs
detect, track, align, hands and find and learns every track's clean appearances (the fill memory, keyed by pose
and expression) and clean references (the surface evidence); nothing is painted or written. Pass 2 (render) runs
the whole pipeline with both fixed: a frame is filled with the person's own face from whichever moment of the clip
is nearest in pose and expression, before or after it, and the surface evidence compares with references from the
whole clip. Both passes see the same frames in the same order with fresh detectors, so track ids agree. A source
that cannot be read twice (a stream, a pipe) runs one pass, and says so. Pass 2 does not detect again: it replays
pass 1's detections (faces and hands, as the detectors gave them, before tracking), which are the same frames'.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from tqdm import tqdm

from realtime.errors import UnveilError
from realtime.frame import Face, Frame
from realtime.pipeline import PipelineConfig, build_pipeline
from realtime.scheduler import RunStats, run_stages
from realtime.sinks import ImageSink, MaskSink, VideoFileSink, check_writable
from realtime.sources import CameraSource, VideoFileSource, is_url, open_source

log = logging.getLogger("unveil")


def can_read_twice(input_spec: str) -> bool:
    """A regular local file can be decoded twice; a URL, a pipe or a device cannot (or not the same way)."""
    if is_url(str(input_spec)):
        return False
    try:
        return Path(input_spec).is_file()
    except OSError:
        return False


@dataclass
class Detections:
    """What the detectors found in one frame: per face (box, score, landmarks), and the hands."""
    faces: list[tuple[np.ndarray, float, np.ndarray | None]]
    hands: list[np.ndarray] | None


class RecordDetections:
    """Runs the detect stage (with hands beside it) and keeps a copy of what it found, per frame index."""

    def __init__(self, detect, kept: dict[int, Detections]):
        self.detect, self.kept, self.name = detect, kept, detect.name

    def process(self, frame: Frame) -> Frame:
        frame = self.detect.process(frame)
        self.kept[frame.index] = Detections(
            [(f.box.copy(), f.score, None if f.landmarks is None else f.landmarks.copy()) for f in frame.faces],
            None if frame.hands is None else [h.copy() for h in frame.hands])
        return frame


class ReplayDetections:
    """Gives each frame the detections recorded for its index in pass 1 (the detect stage runs only for a frame
    that has none). Each pass starts fresh trackers, so tracking the same detections gives the same tracks."""

    def __init__(self, detect, kept: dict[int, Detections]):
        self.detect, self.kept, self.name = detect, kept, detect.name

    def process(self, frame: Frame) -> Frame:
        found = self.kept.get(frame.index)
        if found is None or frame.decode_failed:
            return self.detect.process(frame)
        frame.faces = [Face(box=box.copy(), score=score, landmarks=None if lm is None else lm.copy())
                       for box, score, lm in found.faces]
        frame.hands = None if found.hands is None else [h.copy() for h in found.hands]
        return frame


@dataclass
class Gathered:
    """What pass 1 learned of the whole clip, per track."""
    memories: dict            # track id -> FaceMemory (realtime.memory)
    surface: object | None    # the find stage's SurfaceEvidence, or None without an occlusion_change model
    seconds: float
    detections: dict[int, Detections] = field(default_factory=dict)   # frame index -> what the detectors found


def gather(frames: Iterable[Frame], config: PipelineConfig, on_frame: Callable[[Frame], None] = lambda f: None
           ) -> Gathered:
    """Pass 1 over `frames`: detect, track, align, hands, find and the fill stage's learning, nothing painted."""
    t0 = time.perf_counter()
    pipeline = build_pipeline(config)
    pipeline.stage("fill").paint = False
    detections: dict[int, Detections] = {}
    stages = [RecordDetections(s, detections) if s.name == "detect" else s for s in pipeline.stages if s.name != "blend"]
    try:
        run_stages(frames, stages, on_frame, policy="offline")
    finally:
        pipeline.close()
    return Gathered(pipeline.stage("fill").memories, pipeline.stage("find").surface, time.perf_counter() - t0,
                    detections)


def render_stages(pipeline, gathered: Gathered | None) -> list:
    """Pass 2's stages: the pipeline's, with pass 1's detections replayed instead of detecting again."""
    if gathered is None or not gathered.detections:
        return list(pipeline.stages)
    return [ReplayDetections(s, gathered.detections) if s.name == "detect" else s for s in pipeline.stages]


def use_gathered(pipeline, gathered: Gathered) -> None:
    """Pass 2: the pipeline fills from, and decides with, what pass 1 learned, fixed."""
    fill, surface = pipeline.stage("fill"), pipeline.stage("find").surface
    fill.memories, fill.learn = gathered.memories, False
    if gathered.surface is not None and surface is not None:
        surface.take_banks(gathered.surface)


def gather_file(input_spec: str, config: PipelineConfig, show_progress: bool = True) -> Gathered:
    source = VideoFileSource(input_spec)
    total = source.info.frame_count if source.info else None
    bar = tqdm(total=total, unit="frame", desc=f"pass 1/2 {Path(input_spec).name}", disable=not show_progress,
               dynamic_ncols=True)
    try:
        return gather(source, config, lambda frame: bar.update(1))
    finally:
        bar.close()
        source.close()


def process(input_spec: str, output: str, config: PipelineConfig, save_masks: str | None = None,
            stats_path: str | None = None, show_progress: bool = True, export_faces: str | None = None,
            two_pass: bool = True) -> dict:
    """Run the offline policy from INPUT to OUTPUT; returns the stats summary (also written to `stats_path`).
    `export_faces`: a folder for each track's completed face crops (realtime.face_export). `two_pass`: a video
    file is gathered first (see the module doc); False, or a source that cannot be read twice: one pass.

    Input and outputs are checked before the models load, so a typo costs no waiting.
    """
    if stats_path:
        check_writable(stats_path)
    if Path(output).resolve() == Path(input_spec).resolve():
        raise UnveilError(f"output {output} is the input; choose another name (the input is never overwritten)")
    source = open_source(input_spec)
    try:
        if isinstance(source, CameraSource):
            raise UnveilError(f"{input_spec} is a camera; use `unveil live --source {input_spec}`")
        is_video = isinstance(source, VideoFileSource)
        # the sinks check that their outputs can be written before any frame is processed
        sink = VideoFileSink(output, source.info, audio_from=input_spec) if is_video else ImageSink(output, to_folder=Path(input_spec).is_dir())
        masks = MaskSink(save_masks) if save_masks else None
    except BaseException:
        source.close()
        raise
    if not is_video:
        # unrelated still images: nothing to track or smooth across them
        config = replace(config, tracker=replace(config.tracker, smooth=False), find=replace(config.find, video=False),
                         fill=replace(config.fill, memory=replace(config.fill.memory, enabled=False)))
    passes = 2 if is_video and two_pass and config.fill.memory.enabled else 1
    if passes == 2 and not can_read_twice(input_spec):
        log.warning("%s cannot be read twice (a stream or a pipe): one pass, memory from the past only", input_spec)
        passes = 1
    gathered = None
    try:
        if passes == 2:
            gathered = gather_file(input_spec, config, show_progress)
        pipeline = build_pipeline(config)
    except BaseException:
        sink.abort()
        source.close()
        raise
    if gathered is not None:
        use_gathered(pipeline, gathered)
    faces_out = None
    if export_faces:
        from realtime.face_export import FaceExport

        faces_out = FaceExport(export_faces, pipeline.finder.contract.crop_size, pipeline.small,
                               pipeline.stage("fill").config.small_face_eyes)
    total = source.info.frame_count if is_video and source.info else len(getattr(source, "paths", ())) or None
    desc = f"pass 2/2 {Path(input_spec).name}" if passes == 2 else Path(input_spec).name
    bar = tqdm(total=total, unit="frame" if is_video else "image", desc=desc, disable=not show_progress, dynamic_ncols=True)

    def write(frame) -> None:
        sink.write(frame)
        if masks:
            masks.write(frame)
        if faces_out:
            faces_out.write(frame)
        bar.update(1)

    try:
        stats: RunStats = run_stages(source, render_stages(pipeline, gathered), write, policy="offline")
        sink.close()
    except BaseException:
        sink.abort()
        raise
    finally:
        bar.close()
        source.close()
        pipeline.close()
    summary = {"input": str(input_spec), "output": str(output), **stats.summary(),
               "filled_pixels": pipeline.stage("fill").filled_pixels(), "passes": passes}
    if gathered is not None:
        gather_s = gathered.seconds
        summary["pass_s"] = {"gather": round(gather_s, 3), "render": summary["wall_s"]}
        summary["fps_overall"] = round(summary["frames"] / max(gather_s + summary["wall_s"], 1e-9), 2)
    if faces_out:
        summary["exported_faces"] = faces_out.written
    summary["frames_failed_to_decode"] = sorted(set(summary["frames_failed_to_decode"]) | set(source.failed_frames))
    summary["decoder_warnings"] = source.library_warnings  # FFmpeg's / libjpeg's own messages, counted, not shown
    if stats_path:
        Path(stats_path).write_text(json.dumps(summary, indent=2))
    return summary
