"""What the viewer plays: a camera, a video file (looping, with pause, step and seek) or a still image.

A feed outlives pipeline runs: `frames(stop)` may be called again after a run was stopped (model change) and
carries on from where the last one left off. Commands (pause, seek, step, refresh) come from the GUI thread and
are carried out in the source thread, so only that thread ever touches the decoder.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from realtime.errors import UnveilError
from realtime.frame import Frame
from realtime.sources import (IMAGE_SUFFIXES, CameraSource, Source, VideoFileSource, close_container, is_camera_spec,
                              is_url, open_video_stream, read_image)

_POLL_S = 0.05  # how often a waiting feed looks at its stop flag


@dataclass(frozen=True)
class FeedDescription:
    kind: str                 # camera | stream | video | image
    spec: str                 # what the user chose (index, device path or file path)
    width: int
    height: int
    fps: float                # 0 when unknown
    frame_count: int          # video files only; 0 otherwise
    has_audio: bool

    @property
    def label(self) -> str:
        name = Path(self.spec).name if self.kind in ("video", "image") else self.spec
        rate = f" @ {self.fps:.3g} fps" if self.fps else ""
        return f"{self.kind} {name}: {self.width}x{self.height}{rate}"


class FeedControl:
    """Play / pause / step / seek / refresh requests shared between the GUI thread and the source thread."""

    def __init__(self, playing: bool = True) -> None:
        self._cond = threading.Condition()
        self.playing = playing
        self._steps = 0
        self._seek_to: int | None = None
        self._refresh = False

    def set_playing(self, playing: bool) -> None:
        with self._cond:
            self.playing = playing
            self._cond.notify_all()

    def step(self) -> None:
        with self._cond:
            self._steps += 1
            self._cond.notify_all()

    def seek(self, index: int) -> None:
        with self._cond:
            self._seek_to = max(0, int(index))
            self._cond.notify_all()

    def refresh(self) -> None:
        """Show the current frame again (settings changed while paused); a playing feed shows new frames anyway."""
        with self._cond:
            if not self.playing:
                self._refresh = True
                self._cond.notify_all()

    def next_action(self, stop: threading.Event, can_play: bool = True) -> str | None:
        """Block until there is something to do: 'seek', 'refresh', 'step', 'play'; None once `stop` is set."""
        with self._cond:
            while not stop.is_set():
                if self._seek_to is not None:
                    return "seek"
                if self._refresh:
                    self._refresh = False
                    return "refresh"
                if self._steps:
                    self._steps -= 1
                    return "step"
                if self.playing and can_play:
                    return "play"
                self._cond.wait(_POLL_S)
            return None

    def take_seek(self) -> int | None:
        with self._cond:
            target, self._seek_to = self._seek_to, None
            return target


def sleep_until(deadline: float, stop: threading.Event) -> None:
    while not stop.is_set():
        delay = deadline - time.perf_counter()
        if delay <= 0:
            return
        stop.wait(min(delay, _POLL_S))


class VideoFeed:
    """A video file played at its own rate, looping at the end. Frame.index is the frame's position in the file.

    Frames carry no pts: the tracker then times them by wall clock, which stays monotonic across loops and seeks.
    """

    is_live = False

    def __init__(self, path: str) -> None:
        self.path = path
        self.control = FeedControl()
        self.container, self.stream, self.info = open_video_stream(path)
        self.stream.thread_type = "AUTO"
        self.start_pts = self.stream.start_time or 0
        self.position = -1                       # index of the last frame given out
        self.last_image: np.ndarray | None = None
        self._decoded: Iterator[tuple[int, np.ndarray]] = self._decode()

    @property
    def description(self) -> FeedDescription:
        return FeedDescription("video", self.path, self.info.width, self.info.height, float(self.info.fps),
                               self.info.frame_count, self.info.has_audio)

    def index_of(self, pts: int) -> int:
        return round(float((pts - self.start_pts) * self.info.time_base * self.info.fps))

    def _decode(self) -> Iterator[tuple[int, np.ndarray]]:
        try:
            for decoded in self.container.decode(self.stream):
                if decoded.pts is None:
                    continue
                yield self.index_of(decoded.pts), decoded.to_ndarray(format="bgr24")
        except (av.error.FFmpegError, ValueError):
            return  # a damaged tail ends this pass; the feed loops back to the start

    def _rewind(self, index: int) -> None:
        target = self.start_pts + round(index / (self.info.fps * self.info.time_base))
        self.container.seek(target, stream=self.stream, backward=True, any_frame=False)
        self._decoded = self._decode()

    def _read(self) -> tuple[int, np.ndarray]:
        """The next frame, looping to the start at the end of the file."""
        for attempt in range(2):
            item = next(self._decoded, None)
            if item is not None:
                return item
            self._rewind(0)
        raise UnveilError(f"input {self.path} has no decodable video frames")

    def _seek(self, index: int) -> tuple[int, np.ndarray]:
        if self.info.frame_count:
            index = min(index, self.info.frame_count - 1)
        self._rewind(index)
        item = self._read()
        while item[0] < index:
            following = next(self._decoded, None)
            if following is None:
                break
            item = following
        return item

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        period = 1.0 / float(self.info.fps or 25)
        next_t = time.perf_counter()
        while True:
            action = self.control.next_action(stop)
            if action is None:
                return
            if action == "refresh" and self.last_image is not None:
                yield Frame(index=self.position, image=self.last_image)
                continue
            if action == "seek":
                index, image = self._seek(self.control.take_seek())
            else:
                index, image = self._read()
            if action == "play":
                sleep_until(next_t, stop)
                next_t = max(next_t + period, time.perf_counter() - period)
            else:
                next_t = time.perf_counter() + period
            self.position, self.last_image = index, image
            yield Frame(index=index, image=image)  # captured_at: now, after pacing

    def close(self) -> None:
        close_container(self.container, self.stream)


class LiveFeed:
    """A camera or a network stream through realtime.sources; it always plays (pausing would only freeze it)."""

    is_live = True

    def __init__(self, source: Source, description: FeedDescription) -> None:
        self.source = source
        self.control = FeedControl()
        self._description = description
        self.position = -1
        self._iterator = iter(source)   # kept across runs, so a model change does not replay old frames

    @classmethod
    def camera(cls, device: int | str, width: int | None = None, height: int | None = None,
               fps: float | None = None) -> LiveFeed:
        source = CameraSource(device, width=width, height=height, fps=fps)
        height_px, width_px = source.first_image.shape[:2]
        rate = float(source.capture.get(cv2.CAP_PROP_FPS) or 0.0)
        return cls(source, FeedDescription("camera", str(device), width_px, height_px, rate, 0, False))

    @classmethod
    def stream(cls, url: str) -> LiveFeed:
        source = VideoFileSource(url)
        info = source.info
        return cls(source, FeedDescription("stream", url, info.width, info.height, float(info.fps), 0, False))

    @property
    def description(self) -> FeedDescription:
        return self._description

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        for frame in self._iterator:
            if stop.is_set():
                return
            frame.pts = None  # timed by capture clock, like a camera
            self.position = frame.index
            yield frame

    def close(self) -> None:
        self.source.close()


class ImageFeed:
    """A still image, shown once and again whenever settings change (refresh) — no busy re-processing."""

    is_live = False

    def __init__(self, path: str) -> None:
        self.path = path
        self.control = FeedControl(playing=False)
        image = read_image(Path(path)) if Path(path).is_file() else None
        if image is None:
            raise UnveilError(f"input {path} is not a readable image")
        self.image = image
        self.position = -1
        self.control.refresh()  # the first showing

    @property
    def description(self) -> FeedDescription:
        return FeedDescription("image", self.path, self.image.shape[1], self.image.shape[0], 0.0, 0, False)

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        while self.control.next_action(stop, can_play=False) is not None:
            self.position += 1  # consecutive indices: the temporal stage keeps its state between showings
            yield Frame(index=self.position, image=self.image, source_name=Path(self.path).name)

    def close(self) -> None:
        pass


Feed = VideoFeed | LiveFeed | ImageFeed


def open_feed(spec: str, width: int | None = None, height: int | None = None, fps: float | None = None) -> Feed:
    """Camera index / /dev/videoN, image file or video file; UnveilError with a one-line reason otherwise."""
    if is_camera_spec(spec):
        return LiveFeed.camera(int(spec) if spec.isdigit() else spec, width, height, fps)
    if is_url(spec):
        return LiveFeed.stream(spec)
    path = Path(spec)
    if not path.exists():
        raise UnveilError(f"input {spec} does not exist")
    if path.is_dir():
        raise UnveilError(f"input {spec} is a folder; open a video file, an image or a camera")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageFeed(spec)
    return VideoFeed(spec)

