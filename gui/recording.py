"""Recording the result to a video file and taking PNG snapshots, never overwriting an existing file."""
from __future__ import annotations

import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from realtime.frame import Frame
from realtime.sinks import VideoFileSink, packet_time, write_image_atomically
from realtime.sources import VideoInfo


def free_path(path: Path) -> Path:
    """`path` if nothing is there yet, else the first of name-2.ext, name-3.ext, ... that is free."""
    if not path.exists():
        return path
    number = 2
    while True:
        candidate = path.with_name(f"{path.stem}-{number}{path.suffix}")
        if not candidate.exists():
            return candidate
        number += 1


def timestamped_path(folder: Path, prefix: str, suffix: str, now: float | None = None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return free_path(folder / f"{prefix}-{stamp}{suffix}")


def save_snapshot(image: np.ndarray, path: Path) -> Path:
    """Write `image` (BGR) as PNG at `path`, or beside it with a numeric suffix if taken; returns where."""
    target = free_path(path.with_suffix(".png"))
    write_image_atomically(target, image)
    return target


def skip_audio_before(sink: VideoFileSink, time_s: Fraction) -> None:
    """Drop the audio packets before the recording's first video frame, so sound and picture start together."""
    copier = sink.audio
    if copier is None:
        return
    while copier.waiting is not None:
        packet_t = packet_time(copier.waiting)
        if packet_t is not None and packet_t >= time_s:
            return
        copier.waiting = next(copier.packets, None)


class Recorder:
    """Writes delivered frames' results to a video file; thread-safe (the pipeline thread writes, the GUI stops).

    A video file source is recorded on its own frame grid (Frame.index / rate) with its audio copied; when the clip
    loops (or is sought backwards) the recording goes on after the last recorded frame, sound included, until it is
    stopped. Cameras and images are recorded by capture time (milliseconds).
    """

    def __init__(self, path: Path, video_rate: Fraction | None, audio_from: str | None) -> None:
        self.path = free_path(path)
        self.video_rate = video_rate
        self.audio_from = audio_from
        self.sink: VideoFileSink | None = None
        self.frames_written = 0
        self.finished = False
        self._last_pts: int | None = None
        self._offset = 0   # added to Frame.index: after a loop the file's timeline continues where it was
        self._clock_start = 0.0
        self._lock = threading.Lock()

    @property
    def time_base(self) -> Fraction:
        return 1 / self.video_rate if self.video_rate else Fraction(1, 1000)

    def _open(self, frame: Frame) -> VideoFileSink:
        height, width = frame.image.shape[:2]
        rate = self.video_rate or Fraction(30)
        info = VideoInfo(width=width, height=height, fps=rate, time_base=self.time_base, frame_count=0,
                         duration_s=0.0, has_audio=self.audio_from is not None, codec="h264")
        sink = VideoFileSink(self.path, info, self.audio_from if self.video_rate else None)
        if self.video_rate:
            skip_audio_before(sink, frame.index * self.time_base)
        self._clock_start = frame.captured_at
        return sink

    def _pts(self, frame: Frame) -> int:
        if self.video_rate:
            return frame.index + self._offset
        return round((frame.captured_at - self._clock_start) * 1000)

    def write(self, frame: Frame) -> bool:
        """Record one frame; False once the recording has been closed."""
        with self._lock:
            if self.finished:
                return False
            if self.sink is None:
                self.sink = self._open(frame)
            pts = self._pts(frame)
            if self._last_pts is not None and pts <= self._last_pts:
                if self.video_rate and pts < self._last_pts:  # looped or sought back: continue after the last frame
                    self._offset += self._last_pts + 1 - pts
                    pts = self._last_pts + 1
                    if self.sink.audio is not None:
                        self.sink.audio.continue_from(frame.index * self.time_base, pts * self.time_base)
                elif self.video_rate:
                    return True  # the same frame shown again (paused, settings changed): already recorded
                else:
                    pts = self._last_pts + 1
            self.sink.write(Frame(index=frame.index, image=frame.result(), pts=pts, time_base=self.time_base))
            self._last_pts = pts
            self.frames_written += 1
            return True

    def close(self) -> Path | None:
        """Finish the file; returns its path, or None when no frame was recorded (nothing is left behind)."""
        with self._lock:
            self.finished = True
            sink, self.sink = self.sink, None
            if sink is None:
                return None
            if sink.audio is not None and self._last_pts is not None:  # sound up to the last frame's end, no further
                sink.audio.copy_until((self._last_pts + 1) * self.time_base, before=True)
                sink.audio.waiting = None
            sink.close()
            return self.path

    def abort(self) -> None:
        with self._lock:
            self.finished = True
            if self.sink is not None:
                self.sink.abort()
                self.sink = None

