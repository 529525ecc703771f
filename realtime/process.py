"""Offline processing of video files, images and image folders (the `unveil process` command)."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from realtime.errors import UnveilError
from realtime.pipeline import PipelineConfig, build_pipeline
from realtime.scheduler import RunStats, run_stages
from realtime.sinks import ImageSink, MaskSink, VideoFileSink, check_writable
from realtime.sources import CameraSource, VideoFileSource, open_source


def process(input_spec: str, output: str, config: PipelineConfig, save_masks: str | None = None,
            stats_path: str | None = None, show_progress: bool = True, export_faces: str | None = None) -> dict:
    """Run the offline policy from INPUT to OUTPUT; returns the stats summary (also written to `stats_path`).
    `export_faces`: a folder for each track's completed face crops (realtime.face_export).

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
    try:
        pipeline = build_pipeline(config)
    except BaseException:
        sink.abort()
        source.close()
        raise
    faces_out = None
    if export_faces:
        from realtime.face_export import FaceExport

        faces_out = FaceExport(export_faces, pipeline.finder.contract.crop_size, pipeline.small,
                               pipeline.stage("fill").config.small_face_eyes)
    total = source.info.frame_count if is_video and source.info else len(getattr(source, "paths", ())) or None
    bar = tqdm(total=total, unit="frame" if is_video else "image", desc=Path(input_spec).name, disable=not show_progress, dynamic_ncols=True)

    def write(frame) -> None:
        sink.write(frame)
        if masks:
            masks.write(frame)
        if faces_out:
            faces_out.write(frame)
        bar.update(1)

    try:
        stats: RunStats = run_stages(source, pipeline.stages, write, policy="offline")
        sink.close()
    except BaseException:
        sink.abort()
        raise
    finally:
        bar.close()
        source.close()
        pipeline.close()
    summary = {"input": str(input_spec), "output": str(output), **stats.summary(),
               "filled_pixels": pipeline.stage("fill").filled_pixels()}
    if faces_out:
        summary["exported_faces"] = faces_out.written
    summary["frames_failed_to_decode"] = sorted(set(summary["frames_failed_to_decode"]) | set(source.failed_frames))
    summary["decoder_warnings"] = source.library_warnings  # FFmpeg's / libjpeg's own messages, counted, not shown
    if stats_path:
        Path(stats_path).write_text(json.dumps(summary, indent=2))
    return summary
