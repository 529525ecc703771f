"""Runs stages in threads joined by queues, under one of two policies (docs/ARCHITECTURE.md).

- live: one-slot queues where the newest frame wins, so a slow stage costs dropped frames, never growing latency;
- offline: bounded blocking queues, so nothing is dropped or reordered and memory stays bounded.
ONNX Runtime, OpenCV, mediapipe and PyAV release the GIL, so the stage threads overlap on several cores.
"""
from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from realtime.frame import Frame

POLICIES = ("live", "offline")
_END = object()      # end of stream marker; never dropped
_POLL_S = 0.05       # how often blocked threads look at the stop flag


class NewestWinsSlot:
    """A one-item mailbox: a new item replaces one that was not yet taken (counted as dropped)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item = None
        self._full = False
        self.dropped = 0

    def put(self, item, stop: threading.Event) -> None:
        with self._cond:
            if self._full:
                if self._item is _END:
                    return
                self.dropped += 1
            self._item, self._full = item, True
            self._cond.notify()

    def get(self, stop: threading.Event):
        with self._cond:
            while not self._full:
                if stop.is_set():
                    return _END
                self._cond.wait(_POLL_S)
            item, self._item, self._full = self._item, None, False
            return item


class BoundedQueue:
    """Blocking FIFO of fixed capacity: back-pressure instead of drops."""

    def __init__(self, size: int) -> None:
        self._q: queue.Queue = queue.Queue(maxsize=size)
        self.dropped = 0

    def put(self, item, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue

    def get(self, stop: threading.Event):
        while not stop.is_set():
            try:
                return self._q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
        return _END


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else 0.0


@dataclass
class RunStats:
    frames: int = 0
    faces: int = 0
    dropped: int = 0
    decode_failed: list[int] = field(default_factory=list)
    stage_ms: dict[str, list[float]] = field(default_factory=dict)
    stage_cpu_ms: dict[str, list[float]] = field(default_factory=dict)  # CPU time of the stage's own thread
    cpu_s: float = 0.0                  # CPU time of the whole process over the run (every thread, libraries' too)
    latency_ms: list[float] = field(default_factory=list)  # source -> sink, per delivered frame
    wall_s: float = 0.0

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> dict:
        return {
            "frames": self.frames,
            "faces": self.faces,
            "frames_dropped": self.dropped,
            "frames_failed_to_decode": self.decode_failed,
            "fps": round(self.fps, 2),
            "wall_s": round(self.wall_s, 3),
            "latency_ms": {"p50": round(percentile(self.latency_ms, 50), 2), "p95": round(percentile(self.latency_ms, 95), 2)},
            "stage_ms": {
                name: {"p50": round(percentile(v, 50), 2), "p95": round(percentile(v, 95), 2)} for name, v in self.stage_ms.items()
            },
            "stage_cpu_ms": {name: round(float(np.mean(v)), 2) for name, v in self.stage_cpu_ms.items() if v},
            "cpu_ms_per_frame": round(1000.0 * self.cpu_s / self.frames, 2) if self.frames else 0.0,
        }


def run_stages(
    frames: Iterable[Frame],
    stages: Sequence,
    sink: Callable[[Frame], None],
    policy: str = "offline",
    queue_size: int = 2,
    stop: threading.Event | None = None,
    progress: Callable[[RunStats], None] | None = None,
    progress_every_s: float = 1.0,
) -> RunStats:
    """Pull frames from `frames`, pass each through every stage (one thread per stage), hand results to `sink`.

    Returns when the source is exhausted or `stop` is set. An exception in any thread (source, stage or sink)
    stops the run and is re-raised here, so the caller can clean up (e.g. remove a half-written output).
    `progress`, if given, is called from the calling thread every `progress_every_s` with the stats so far
    (wall_s and dropped up to date; the lists still grow while the run goes on).
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}")
    stop = stop or threading.Event()
    links = [NewestWinsSlot() if policy == "live" else BoundedQueue(queue_size) for _ in range(len(stages) + 1)]
    stats = RunStats(stage_ms={s.name: [] for s in stages})
    errors: list[BaseException] = []
    lock = threading.Lock()

    def fail(exc: BaseException) -> None:
        with lock:
            errors.append(exc)
        stop.set()

    def read_source() -> None:
        try:
            for frame in frames:
                if stop.is_set():
                    break
                links[0].put(frame, stop)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            fail(exc)
        finally:
            links[0].put(_END, stop)

    def run_stage(i: int) -> None:
        stage, inbox, outbox = stages[i], links[i], links[i + 1]
        try:
            while True:
                frame = inbox.get(stop)
                if frame is _END:
                    break
                t0, c0 = time.perf_counter(), time.thread_time()
                frame = stage.process(frame)
                frame.timings[stage.name] = (time.perf_counter() - t0) * 1000.0
                frame.cpu_timings[stage.name] = (time.thread_time() - c0) * 1000.0
                outbox.put(frame, stop)
        except BaseException as exc:  # noqa: BLE001
            fail(exc)
        finally:
            outbox.put(_END, stop)

    def deliver() -> None:
        try:
            while True:
                frame = links[-1].get(stop)
                if frame is _END:
                    break
                sink(frame)
                stats.frames += 1
                stats.faces += len(frame.faces)
                if frame.decode_failed:
                    stats.decode_failed.append(frame.index)
                stats.latency_ms.append((time.perf_counter() - frame.captured_at) * 1000.0)
                for name, ms in frame.timings.items():
                    stats.stage_ms.setdefault(name, []).append(ms)
                for name, ms in frame.cpu_timings.items():
                    stats.stage_cpu_ms.setdefault(name, []).append(ms)
        except BaseException as exc:  # noqa: BLE001
            fail(exc)

    t_start, cpu_start = time.perf_counter(), time.process_time()
    threads = [threading.Thread(target=read_source, name="unveil-source", daemon=True)]
    threads += [threading.Thread(target=run_stage, args=(i,), name=f"unveil-{s.name}", daemon=True) for i, s in enumerate(stages)]
    threads.append(threading.Thread(target=deliver, name="unveil-sink", daemon=True))
    for t in threads:
        t.start()
    next_report = t_start + progress_every_s
    try:
        for t in threads:
            while t.is_alive():
                t.join(min(0.1, progress_every_s))
                if progress is not None and time.perf_counter() >= next_report:
                    stats.wall_s = time.perf_counter() - t_start
                    stats.dropped = sum(link.dropped for link in links)
                    try:
                        progress(stats)
                    except Exception as exc:  # noqa: BLE001 - stops the run like a stage error would
                        fail(exc)
                    next_report = max(next_report + progress_every_s, time.perf_counter() + progress_every_s / 2)
    except (KeyboardInterrupt, SystemExit):  # Ctrl+C, or SIGTERM unwinding (cli.main): stop the stage threads first
        stop.set()
        for t in threads:
            t.join(2.0)
        raise
    stats.wall_s = time.perf_counter() - t_start
    stats.cpu_s = time.process_time() - cpu_start
    stats.dropped = sum(link.dropped for link in links)
    if errors:
        raise errors[0]
    return stats


def paced(frames: Iterable[Frame], fps: float, stop: threading.Event | None = None) -> Iterable[Frame]:
    """Release frames at `fps` in wall-clock time (a video file played as if it were a camera)."""
    period = 1.0 / fps
    next_t = time.perf_counter()
    for frame in frames:
        if stop is not None and stop.is_set():
            return
        delay = next_t - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        frame.captured_at = time.perf_counter()
        yield frame
        next_t = max(next_t + period, time.perf_counter() - period)
