import threading
import time

import numpy as np
import pytest

from realtime.frame import Frame
from realtime.scheduler import run_stages


class SlowStage:
    def __init__(self, name: str, seconds: float):
        self.name, self.seconds = name, seconds

    def process(self, frame: Frame) -> Frame:
        time.sleep(self.seconds)
        frame.timings["seen_by_" + self.name] = 0.0
        return frame


class FailingStage:
    name = "fails"

    def process(self, frame: Frame) -> Frame:
        if frame.index == 3:
            raise RuntimeError("stage broke on frame 3")
        return frame


def frames(n: int, delay: float = 0.0):
    for i in range(n):
        if delay:
            time.sleep(delay)
        yield Frame(index=i, image=np.zeros((2, 2, 3), np.uint8))


def test_offline_never_drops_or_reorders_under_a_slow_stage():
    out = []
    stats = run_stages(frames(40), [SlowStage("a", 0.0), SlowStage("slow", 0.005), SlowStage("b", 0.0)], out.append, policy="offline")
    assert [f.index for f in out] == list(range(40))
    assert stats.frames == 40 and stats.dropped == 0
    assert set(stats.stage_ms) >= {"a", "slow", "b"} and len(stats.stage_ms["slow"]) == 40


def test_offline_memory_is_bounded_by_queue_size():
    in_flight, peak = 0, 0
    lock = threading.Lock()

    def produced():
        nonlocal in_flight, peak
        for f in frames(30):
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            yield f

    def consume(frame):
        nonlocal in_flight
        time.sleep(0.01)
        with lock:
            in_flight -= 1

    run_stages(produced(), [SlowStage("x", 0.0), SlowStage("y", 0.0)], consume, policy="offline", queue_size=2)
    # source slot + 2 stages + sink, each holding at most one, plus 3 queues of 2
    assert peak <= 4 + 3 * 2


def test_live_keeps_latency_bounded_under_a_slow_stage():
    out = []
    # the camera delivers every 5 ms; the slow stage needs 40 ms: most frames must be dropped, latency must not grow
    stats = run_stages(frames(200, delay=0.005), [SlowStage("slow", 0.04)], out.append, policy="live")
    assert stats.dropped > 100
    indices = [f.index for f in out]
    assert indices == sorted(indices)  # newest wins, but never out of order
    late = stats.latency_ms[len(stats.latency_ms) // 2:]
    # a queue that grew with the run would hold ~150 frames x 40 ms = 6 s by the end; newest-wins stays a few stage times
    assert max(late) < 1000


def test_stage_error_stops_the_run_and_is_raised():
    with pytest.raises(RuntimeError, match="frame 3"):
        run_stages(frames(50), [FailingStage()], lambda f: None, policy="offline")


def test_stop_event_ends_a_live_run():
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    t0 = time.perf_counter()

    def endless():
        i = 0
        while True:
            time.sleep(0.002)
            yield Frame(index=i, image=np.zeros((2, 2, 3), np.uint8))
            i += 1

    stats = run_stages(endless(), [SlowStage("s", 0.001)], lambda f: None, policy="live", stop=stop)
    assert time.perf_counter() - t0 < 2.0 and stats.frames > 0


def test_progress_reports_the_running_stats_from_the_calling_thread():
    reports: list[tuple[int, float, int, str]] = []

    def progress(stats):
        reports.append((stats.frames, stats.wall_s, stats.dropped, threading.current_thread().name))

    # 60 frames every 5 ms through a 20 ms stage under the live policy: ~0.3 s, frames dropped on the way
    stats = run_stages(frames(60, delay=0.005), [SlowStage("slow", 0.02)], lambda f: None, policy="live",
                       progress=progress, progress_every_s=0.05)
    assert len(reports) >= 3
    assert {name for *_, name in reports} == {threading.current_thread().name}
    counts, walls, drops = [r[0] for r in reports], [r[1] for r in reports], [r[2] for r in reports]
    assert counts == sorted(counts) and walls == sorted(walls) and drops == sorted(drops)
    assert counts[-1] <= stats.frames and drops[-1] <= stats.dropped and max(drops) > 0


def test_a_failing_progress_callback_stops_the_run_and_is_raised():
    def progress(stats):
        raise RuntimeError("progress broke")

    with pytest.raises(RuntimeError, match="progress broke"):
        run_stages(frames(200, delay=0.005), [SlowStage("s", 0.0)], lambda f: None, policy="live",
                   progress=progress, progress_every_s=0.05)


class BusyStage:
    """Burns CPU in its own thread for `seconds` per frame."""

    def __init__(self, name: str, seconds: float):
        self.name, self.seconds = name, seconds

    def process(self, frame: Frame) -> Frame:
        end = time.thread_time() + self.seconds
        while time.thread_time() < end:
            pass
        return frame


def test_cpu_time_per_stage_tells_a_busy_stage_from_a_waiting_one():
    stats = run_stages(frames(10), [SlowStage("waits", 0.01), BusyStage("works", 0.01)], lambda f: None)
    summary = stats.summary()
    assert summary["stage_cpu_ms"]["works"] >= 8.0 and summary["stage_cpu_ms"]["waits"] < 3.0
    assert summary["stage_ms"]["waits"]["p50"] >= 8.0                # both take the same wall time
    assert summary["cpu_ms_per_frame"] >= summary["stage_cpu_ms"]["works"]


def test_the_budget_names_the_stages_over_it():
    from realtime.bench import BUDGET_CPU_MS, budget_report

    wall = {"p50": 1.0, "p95": 2.0}
    summary = {"stage_ms": {"find": wall, "blend": wall, "extra": wall},
               "stage_cpu_ms": {"find": BUDGET_CPU_MS["find"] + 1, "blend": BUDGET_CPU_MS["blend"] - 1, "extra": 50.0},
               "cpu_ms_per_frame": 70.0}
    report = budget_report(summary)
    assert report["over_budget"] == ["find"] and report["frame_over_budget"]
    assert report["stages"]["extra"]["budget_cpu_ms"] is None and not report["stages"]["extra"]["over"]


class _Signal:
    """A stage that sets one event and waits for another: two of them finish only if they run at the same time."""

    def __init__(self, name: str, mine: threading.Event, theirs: threading.Event, fail: bool = False):
        self.name, self.mine, self.theirs, self.fail = name, mine, theirs, fail
        self.met = False

    def process(self, frame):
        self.mine.set()
        self.met = self.theirs.wait(5.0)
        if self.fail:
            raise RuntimeError(f"{self.name} failed")
        setattr(frame, "hands" if self.name == "hands" else "faces", [self.name])
        return frame


def test_a_stage_beside_another_runs_on_the_same_frame_at_the_same_time_and_its_errors_are_raised():
    from realtime.stages import Beside

    a, b = threading.Event(), threading.Event()
    main, side = _Signal("detect", a, b), _Signal("hands", b, a)
    both = Beside(main, side)
    frame = both.process(Frame(index=0, image=np.zeros((4, 4, 3), np.uint8)))
    assert main.met and side.met                      # each saw the other running
    assert frame.faces == ["detect"] and frame.hands == ["hands"]
    assert both.name == "detect" and "hands" in frame.timings and "hands" in frame.cpu_timings
    both.close()
    failing = Beside(_Signal("detect", threading.Event(), threading.Event()),
                     _Signal("hands", threading.Event(), threading.Event(), fail=True))
    failing.main.theirs.set()
    failing.side.theirs.set()
    with pytest.raises(RuntimeError, match="hands failed"):
        failing.process(Frame(index=1, image=np.zeros((4, 4, 3), np.uint8)))
    failing.close()
