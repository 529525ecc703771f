"""The viewer's worker: owns the feed and the pipeline, runs them under the live policy in its own threads.

The GUI thread never waits on it. Results go into a one-slot buffer (newest wins) and a `frame_ready` signal is
emitted only when the slot goes from empty to full, so a slow display drops frames instead of queueing them.
Source switches and model/provider changes stop the current run and are carried out by the worker thread;
blend/temporal/track settings are swapped into the running stages and apply on the next frame.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from fractions import Fraction

from PyQt6.QtCore import QObject, pyqtSignal

from realtime.errors import UnveilError
from realtime.frame import Frame
from realtime.pipeline import Pipeline, PipelineConfig, build_pipeline
from realtime.scheduler import run_stages

from gui.feeds import Feed, VideoFeed, open_feed
from gui.recording import Recorder
from gui.settings import needs_rebuild
from gui.virtual_camera import VirtualCamera

log = logging.getLogger("unveil")


class FrameSlot:
    """One frame, newest wins. `put` returns True when the slot was empty (the reader must be woken)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frame: Frame | None = None

    def put(self, frame: Frame) -> bool:
        with self._lock:
            was_empty = self._frame is None
            self._frame = frame
            return was_empty

    def take(self) -> Frame | None:
        with self._lock:
            frame, self._frame = self._frame, None
            return frame


def apply_tuning(pipeline: Pipeline, config: PipelineConfig) -> None:
    """Find and fill settings that apply on the next frame without rebuilding (threshold, persistence, feather).
    The fill order stays the pipeline's own (it knows whether a network can paint)."""
    pipeline.stage("find").config = config.find
    pipeline.stage("hands").config = config.find
    fill = pipeline.stage("fill")
    fill.config = replace(config.fill, order=fill.config.order)


@dataclass(frozen=True)
class PipelineState:
    """What the status bar says about the models: which providers run, and why not the GPU if it fell back."""
    models: tuple[str, ...]
    mode: str
    providers: tuple[str, ...]
    fallback_reason: str | None


@dataclass(frozen=True)
class CameraRequest:
    width: int | None = None
    height: int | None = None
    fps: float | None = None


class ViewerEngine(QObject):
    frame_ready = pyqtSignal()
    error = pyqtSignal(str)                 # something failed; the banner shows it, the app keeps running
    source_opened = pyqtSignal(object)      # FeedDescription
    source_closed = pyqtSignal()
    pipeline_ready = pyqtSignal(object)     # PipelineState, or None when no model could be loaded
    recording_stopped = pyqtSignal(object, str)  # the Recorder to close, and why it stopped (failed)

    def __init__(self, config: PipelineConfig, camera: CameraRequest = CameraRequest()) -> None:
        super().__init__()
        self.slot = FrameSlot()
        self.camera = camera
        self.config = config                      # what the user wants; the worker builds it
        self.feed: Feed | None = None
        self.pipeline: Pipeline | None = None
        self.recorder: Recorder | None = None
        self.virtual_camera: VirtualCamera | None = None
        self.frames_delivered = 0
        self._lock = threading.Lock()
        self._pending_source: str | None = None
        self._pending_rebuild = True
        self._run_stop = threading.Event()
        self._wake = threading.Event()
        self._quit = threading.Event()
        self._source_error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="unveil-viewer-worker", daemon=True)

    def start(self) -> None:
        """Start the worker; connect the signals first (a signal emitted before connecting is lost)."""
        self._thread.start()

    # --- requests from the GUI thread ----------------------------------------------------------------------------
    def open_source(self, spec: str) -> None:
        with self._lock:
            self._pending_source = spec
            self._interrupt()

    def set_config(self, config: PipelineConfig) -> None:
        """Swap find/fill/track settings into the running stages now; rebuild for model/provider changes."""
        with self._lock:
            rebuild = needs_rebuild(self.config, config)
            self.config = config
            if rebuild:
                self._pending_rebuild = True
                self._interrupt()
                return
            pipeline = self.pipeline
        if pipeline is not None:
            apply_tuning(pipeline, config)
            tracker = pipeline.stage("track").tracker
            tracker.config = config.tracker
        self.refresh()

    def remember_face(self) -> bool:
        """Store the faces of the next frame in the face memory; False when no pipeline is running."""
        pipeline = self.pipeline
        if pipeline is None:
            return False
        pipeline.stage("fill").request_remember()
        self.refresh()
        return True

    def memory_summary(self) -> str:
        pipeline = self.pipeline
        return pipeline.stage("fill").memory_summary() if pipeline is not None else "memory: no model loaded"

    def refresh(self) -> None:
        """Process the current frame again where the feed is paused or still (image), so changes show."""
        feed = self.feed
        if feed is not None:
            feed.control.refresh()

    def start_recording(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def stop_recording(self) -> Recorder | None:
        recorder, self.recorder = self.recorder, None
        return recorder

    def start_virtual_camera(self, camera: VirtualCamera) -> None:
        self.virtual_camera = camera

    def stop_virtual_camera(self) -> None:
        camera, self.virtual_camera = self.virtual_camera, None
        if camera is not None:
            camera.close()

    def recording_rate(self) -> tuple[Fraction | None, str | None]:
        """(frame rate, audio source) for a recording of the current feed: file grid + audio for video files."""
        feed = self.feed
        if isinstance(feed, VideoFeed):
            return feed.info.fps, feed.path if feed.info.has_audio else None
        return None, None

    def shutdown(self, timeout_s: float = 5.0) -> None:
        self._quit.set()
        with self._lock:
            self._interrupt()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        recorder = self.stop_recording()
        if recorder is not None:
            try:
                recorder.close()
            except UnveilError as exc:
                log.warning("%s", exc)
        self.stop_virtual_camera()

    def _interrupt(self) -> None:
        self._run_stop.set()
        self._wake.set()

    # --- the worker thread ---------------------------------------------------------------------------------------
    def _take_requests(self) -> tuple[str | None, PipelineConfig | None, threading.Event]:
        """Pending source / rebuild, and a fresh stop flag for the next run (created under the lock, so a request
        that arrives after this point always stops that run)."""
        with self._lock:
            source, self._pending_source = self._pending_source, None
            config = self.config if self._pending_rebuild else None
            self._pending_rebuild = False
            self._run_stop = threading.Event()
            self._wake.clear()
            return source, config, self._run_stop

    def _work(self) -> None:
        try:
            while not self._quit.is_set():
                source, config, stop = self._take_requests()
                if source is not None:
                    self._switch_feed(source)
                if config is not None:
                    self._rebuild(config)
                if self.feed is None:
                    self._wake.wait(0.5)
                    continue
                self._run(stop)
        finally:
            self._close_feed()
            if self.pipeline is not None:
                self.pipeline.close()

    def _close_feed(self) -> None:
        feed, self.feed = self.feed, None
        if feed is not None:
            feed.close()
            self.source_closed.emit()

    def _switch_feed(self, spec: str) -> None:
        self._close_feed()
        try:
            self.feed = open_feed(spec, self.camera.width, self.camera.height, self.camera.fps)
        except UnveilError as exc:
            self.error.emit(str(exc))
            return
        self.source_opened.emit(self.feed.description)

    def _rebuild(self, config: PipelineConfig) -> None:
        if self.pipeline is not None:
            self.pipeline.close()
            self.pipeline = None
        try:
            pipeline = build_pipeline(config, live=True)
        except UnveilError as exc:
            self.error.emit(f"{exc} — showing the original picture")
            self.pipeline_ready.emit(None)
            return
        reasons = [r.provider.fallback_reason for r in pipeline.runners]
        state = PipelineState(
            models=tuple(str(r.path.name) for r in pipeline.runners),
            mode=f"{config.network} → {pipeline.mode}",
            providers=tuple(pipeline.finder.provider.providers),
            fallback_reason=next((r for r in reasons if r), None),
        )
        with self._lock:
            self.pipeline = pipeline
            latest = self.config   # tuning that changed while building applies now
        apply_tuning(pipeline, latest)
        self.pipeline_ready.emit(state)
        self.refresh()

    def _frames(self, feed: Feed, stop: threading.Event):
        """The feed's frames; an exception here is remembered as the source's fault (not the model's)."""
        try:
            yield from feed.frames(stop)
        except BaseException as exc:
            self._source_error = exc
            raise

    def _run(self, stop: threading.Event) -> None:
        feed = self.feed
        stages = self.pipeline.stages if self.pipeline is not None else []
        self._source_error = None
        try:
            run_stages(self._frames(feed, stop), stages, self._deliver, policy="live", stop=stop)
        except Exception as exc:  # noqa: BLE001 - shown in the window; the app keeps running
            message = str(exc) if isinstance(exc, UnveilError) else f"{type(exc).__name__}: {exc}"
            if self._source_error is not None:
                self.error.emit(f"the source stopped: {message}")
                self._close_feed()
            else:
                self.error.emit(f"processing failed: {message} — showing the original picture")
                if self.pipeline is not None:
                    self.pipeline.close()
                    self.pipeline = None
                self.pipeline_ready.emit(None)
            return
        if not stop.is_set():  # the source ended by itself: a camera unplugged or stopped streaming
            self.error.emit(f"{feed.description.label} stopped delivering frames")
            self._close_feed()

    def _deliver(self, frame: Frame) -> None:
        """Runs in the pipeline's sink thread: display slot first, then recording and virtual camera."""
        self.frames_delivered += 1
        if self.slot.put(frame):
            self.frame_ready.emit()
        recorder = self.recorder
        if recorder is not None:
            try:
                if not recorder.write(frame):
                    self.recorder = None
                    self.recording_stopped.emit(recorder, "the recording was closed")
            except UnveilError as exc:
                self.recorder = None
                recorder.abort()
                self.recording_stopped.emit(recorder, f"recording failed: {exc}")
        camera = self.virtual_camera
        if camera is not None:
            try:
                camera.send(frame.result())
            except UnveilError as exc:
                self.virtual_camera = None
                camera.close()
                self.error.emit(str(exc))

