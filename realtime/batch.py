"""Many videos, one task each (`unveil batch`): run locally in a pool of worker processes or as Ray tasks on a
cluster, resumably.

The driver (the process that runs `run_batch`) is the only writer of OUT_DIR/manifest.jsonl: workers return a
`Result` and the driver appends one JSON line per attempt. Whether a video is finished is decided by its output
file, never by the manifest alone: an output counts as done when it exists and holds as many video frames as its
input (`process()` writes under a hidden partial name and renames, so a killed worker leaves no output at all).
Ray is imported only on the Ray code path; it is an optional extra (`unveil[cluster]`).
"""
from __future__ import annotations

import glob
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import av
from tqdm import tqdm

from realtime.errors import UnveilError
from realtime.sources import declared_frame_count, open_video_stream

if TYPE_CHECKING:  # the pipeline's imports (mediapipe, onnxruntime) load only where a video is processed
    from realtime.pipeline import PipelineConfig

log = logging.getLogger("unveil")

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts",
                            ".flv", ".wmv", ".3gp", ".ogv"})
LIST_SUFFIX = ".txt"      # a .txt input is a list of paths (a text file is never a video); `@FILE` is one too
MANIFEST_NAME = "manifest.jsonl"
GLOB_CHARACTERS = "*?["


# ---------------------------------------------------------------------------------------------------------------
# Input discovery (pure apart from reading the file system)


def discover_inputs(specs: Sequence[str]) -> list[Path]:
    """Every video the specs name, absolute, in the order given, each once.

    A spec is a video file, a folder (its video files by suffix, not recursive), a glob, or a list file (`@FILE` or
    a name ending in .txt: one path, folder or glob per line, `#` starts a comment, relative paths are relative to
    the list's folder). Anything that names nothing is an UnveilError, so a typo never silently shrinks a batch.
    """
    found: dict[Path, None] = {}  # an ordered set
    for spec in specs:
        for path in expand_spec(spec, base=Path.cwd(), allow_list=True):
            found.setdefault(path.absolute(), None)
    if not found:
        raise UnveilError("no input videos found")
    return list(found)


def expand_spec(spec: str, base: Path, allow_list: bool) -> list[Path]:
    if allow_list and (spec.startswith("@") or spec.lower().endswith(LIST_SUFFIX)):
        return read_list_file(base / spec.removeprefix("@"))
    path = base / spec
    if any(c in spec for c in GLOB_CHARACTERS) and not path.exists():
        matches = [Path(p) for p in sorted(glob.glob(str(path)))]
        videos = [p for p in matches if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES]
        if not videos:
            raise UnveilError(f"input pattern {spec} matches no video file")
        return videos
    if path.is_dir():
        videos = videos_in_folder(path)
        if not videos:
            raise UnveilError(f"input folder {spec} has no video files ({', '.join(sorted(VIDEO_SUFFIXES))})")
        return videos
    if path.is_file():
        return [path]  # named explicitly: taken whatever its suffix (a bad one fails as that video's task)
    raise UnveilError(f"input {spec} does not exist")


def videos_in_folder(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                  and not p.name.startswith("."))  # hidden names are partial outputs and editor litter


def read_list_file(path: Path) -> list[Path]:
    """The videos a list file names; its lines are specs like the command line's, except lists."""
    try:
        text = path.read_text()
    except OSError as error:
        raise UnveilError(f"cannot read list file {path} ({error.strerror or error})") from None
    videos: list[Path] = []
    for line in list_file_lines(text):
        try:
            videos += expand_spec(line, base=path.absolute().parent, allow_list=False)
        except UnveilError as error:
            raise UnveilError(f"{path}: {error}") from None
    return videos


def list_file_lines(text: str) -> list[str]:
    """The entries of a list file: stripped lines, without blank lines and `#` comments (whole-line or trailing)."""
    entries = []
    for line in text.splitlines():
        entry = line.split(" #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if entry:
            entries.append(entry)
    return entries


def plan_outputs(inputs: Sequence[Path], out_dir: Path) -> dict[Path, Path]:
    """input -> OUT_DIR/<stem><suffix>. Two inputs with one stem would share the output (and its masks and stats),
    so they are refused up front rather than renamed behind the user's back."""
    by_stem: dict[str, Path] = {}
    outputs = {}
    for video in inputs:
        key = video.stem.casefold()  # case-insensitive file systems (macOS, Windows shares) would collide too
        if key in by_stem:
            raise UnveilError(f"{by_stem[key]} and {video} have the same name {video.stem!r} and would be written to "
                              f"one output in {out_dir}; rename one or run them in separate batches")
        by_stem[key] = video
        output = out_dir.absolute() / video.name
        if output == video:
            raise UnveilError(f"output folder {out_dir} holds the input {video}; choose another folder "
                              "(inputs are never overwritten)")
        outputs[video] = output
    return outputs


# ---------------------------------------------------------------------------------------------------------------
# Manifest: one JSON line per attempt, appended by the driver


def read_manifest(path: Path) -> dict[str, list[dict]]:
    """input path -> its records in order. A torn last line (the driver was killed mid-write) is skipped."""
    records: dict[str, list[dict]] = {}
    if not path.exists():
        return records
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("input"), str):
            records.setdefault(record["input"], []).append(record)
    return records


def failed_attempts(history: Sequence[dict]) -> list[dict]:
    """Failed records since the last success: a video redone after a success starts its count afresh."""
    failed: list[dict] = []
    for record in history:
        failed = [] if record.get("status") == "done" else failed + [record]
    return failed


def append_record(path: Path, record: dict) -> None:
    """One line, flushed at once: a driver killed mid-batch keeps every record written before it. After a torn last
    line (killed mid-write) the record starts on a line of its own, so the torn one does not swallow it."""
    with path.open("a+b") as file:
        torn = file.tell() > 0 and file.seek(-1, os.SEEK_END) >= 0 and file.read(1) != b"\n"
        file.write((b"\n" if torn else b"") + json.dumps(record).encode() + b"\n")
        file.flush()


# ---------------------------------------------------------------------------------------------------------------
# Frame counts: what makes an output complete


def count_frames(path: Path) -> tuple[int, int] | None:
    """(frames the container declares, frames demuxed) of the first video stream, both without the packets an edit
    list discards; None where the file cannot be read as a video. Demuxing reads no pixels, so it is cheap."""
    try:
        with av.open(str(path), metadata_errors="replace") as container:  # a bad title is no reason to redo a video
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            shown, discarded = 0, 0
            for packet in container.demux(stream):
                if packet.is_discard:
                    discarded += 1
                elif packet.size > 0:
                    shown += 1
            return max(0, declared_frame_count(container, stream) - discarded), shown
    except (av.error.FFmpegError, OSError, ValueError):
        return None


def expected_frames(video: Path) -> int | None:
    """Frames `process()` writes for this input: a truncated input's missing tail is written too (failed frames)."""
    counts = count_frames(video)
    return None if counts is None else max(counts)


def output_is_complete(video: Path, output: Path) -> bool:
    """The output exists and every frame of it can be read (a truncated copy whose index survived counts short)."""
    if not output.is_file():
        return False
    counts, expected = count_frames(output), expected_frames(video)
    return counts is not None and bool(expected) and counts[1] == expected


def estimated_frames(video: Path) -> int:
    """A quick frame count from the header (for the progress bar's total); 0 when unknown or unreadable."""
    try:
        container, _, info = open_video_stream(str(video))
    except UnveilError:
        return 0
    container.close()
    return info.frame_count


# ---------------------------------------------------------------------------------------------------------------
# Tasks and results


@dataclass(frozen=True)
class Task:
    input: str
    output: str
    config: PipelineConfig
    attempt: int = 1
    save_masks: str | None = None
    stats: str | None = None
    estimated_frames: int = 0
    two_pass: bool = True          # False: read the video once (`--single-pass`)


@dataclass(frozen=True)
class Result:
    input: str
    output: str
    status: str                    # done | failed | skipped (complete from an earlier run)
    attempt: int = 0
    frames: int = 0
    seconds: float = 0.0           # wall time of the task, model loading included
    fps: float = 0.0               # frames / seconds
    error: str = ""
    retryable: bool = False        # worth another attempt in this run (a crash, not a bad input)
    extra: dict = field(default_factory=dict)

    def record(self) -> dict:
        """The manifest line: what was attempted, when, and how it ended."""
        fields = asdict(self)
        del fields["retryable"], fields["extra"]
        if self.status == "done":
            del fields["error"]
        else:
            for name in ("frames", "seconds", "fps"):
                del fields[name]
        return {**fields, **self.extra, "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def run_task(task: Task) -> Result:
    """Process one video; never raises, so a bad video is one failed result and the others go on."""
    from realtime.process import process  # the heavy imports happen in the worker, not in the driver

    start = time.perf_counter()
    try:
        summary = process(task.input, task.output, task.config, save_masks=task.save_masks, stats_path=task.stats,
                          show_progress=False, two_pass=task.two_pass)
    except UnveilError as error:  # a bad input or unwritable output: the same error again on a retry
        return failed(task, str(error), retryable=False)
    except Exception as error:  # noqa: BLE001 - anything else is reported with the video it happened on
        return failed(task, f"{type(error).__name__}: {error}", retryable=True)
    seconds = time.perf_counter() - start
    frames = int(summary["frames"])
    extra = {"faces": summary.get("faces", 0),
             "frames_failed_to_decode": len(summary.get("frames_failed_to_decode", [])),
             "decoder_warnings": summary.get("decoder_warnings", 0)}
    return Result(task.input, task.output, "done", task.attempt, frames, round(seconds, 3),
                  round(frames / seconds, 2) if seconds > 0 else 0.0, extra=extra)


def failed(task: Task, error: str, retryable: bool) -> Result:
    lines = error.strip().splitlines()  # one line for the table and the manifest: the last says what happened
    return Result(task.input, task.output, "failed", task.attempt, error=lines[-1] if lines else "unknown error",
                  retryable=retryable)


# ---------------------------------------------------------------------------------------------------------------
# Executors: where tasks run. The driver loop below is the same for both.


class Executor(Protocol):
    def submit(self, task: Task) -> None: ...

    def next_result(self) -> Result: ...  # blocks until one submitted task has finished, in whatever order

    def close(self) -> None: ...


def worker_main(connection: multiprocessing.connection.Connection, work: Callable[[Task], Result]) -> None:
    """A local worker: tasks in, results out, until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the driver's; it stops the workers itself

    def terminate(signum: int, _frame) -> None:
        raise SystemExit(128 + signum)  # unwinds through process(), which removes its partial output

    signal.signal(signal.SIGTERM, terminate)
    while True:
        try:
            task = connection.recv()
        except EOFError:
            return
        if task is None:
            return
        connection.send(work(task))


@dataclass
class LocalWorker:
    process: multiprocessing.process.BaseProcess
    connection: multiprocessing.connection.Connection
    task: Task | None = None


class LocalPool:
    """N worker processes, one task each at a time. A worker that dies (killed, out of memory, a crash in native
    code) fails only the task it held, and a new worker takes its place: unlike concurrent.futures, whose pool
    breaks as a whole and cannot say which task broke it."""

    def __init__(self, workers: int, work: Callable[[Task], Result] = run_task) -> None:
        # spawn: the driver may hold threads (tqdm, PyAV) that a forked child would inherit half-locked
        self.context = multiprocessing.get_context("spawn")
        self.size = workers
        self.work = work
        self.workers: list[LocalWorker] = []

    def submit(self, task: Task) -> None:
        worker = next((w for w in self.workers if w.task is None), None) or self.start_worker()
        worker.connection.send(task)
        worker.task = task

    def start_worker(self) -> LocalWorker:
        if len(self.workers) >= self.size:
            raise RuntimeError("every local worker is busy")  # the driver submits at most `size` at a time
        parent, child = self.context.Pipe()
        process = self.context.Process(target=worker_main, args=(child, self.work), daemon=True)
        process.start()
        child.close()
        worker = LocalWorker(process, parent)
        self.workers.append(worker)
        return worker

    def next_result(self) -> Result:
        busy = [w for w in self.workers if w.task is not None]
        if not busy:
            raise RuntimeError("next_result() with no task submitted")
        ready = set(multiprocessing.connection.wait([w.connection for w in busy] + [w.process.sentinel for w in busy]))
        for worker in busy:
            if worker.connection in ready:
                try:
                    result: Result = worker.connection.recv()
                except EOFError:  # died while answering
                    return self.lost(worker)
                worker.task = None
                return result
        return self.lost(next(w for w in busy if w.process.sentinel in ready))

    def lost(self, worker: LocalWorker) -> Result:
        """The worker died holding a task: that task failed (retryable), and the worker is replaced when needed."""
        worker.process.join(timeout=5)
        code = worker.process.exitcode
        worker.connection.close()
        self.workers.remove(worker)
        assert worker.task is not None
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return failed(worker.task, f"worker process died ({how}; killed, out of memory or crashed)", retryable=True)

    def close(self) -> None:
        for worker in self.workers:
            if worker.task is None:
                try:
                    worker.connection.send(None)
                except OSError:
                    pass
            else:
                worker.process.terminate()  # SIGTERM: process() removes its partial output on the way out
        for worker in self.workers:
            worker.process.join(timeout=10)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.connection.close()
        self.workers = []


def import_ray():
    try:
        import ray
    except ImportError:
        raise UnveilError("--ray needs Ray, which is not installed: pip install 'unveil[cluster]'") from None
    return ray


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail at once on a HOST:PORT that nothing listens on: ray.init would wait there for minutes, deaf to Ctrl+C."""
    host, _, port = address.rpartition(":")
    if address == "auto" or "://" in address or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as error:
        raise UnveilError(f"cannot reach the Ray head at {address} ({error.strerror or error}); start it there with "
                          "`ray start --head`") from None


class RayExecutor:
    """The same `run_task` as Ray remote tasks. Inputs, outputs and models must be at the same paths on every node
    (a shared file system); the manifest is written by the driver only."""

    def __init__(self, address: str, local_cpus: int, gpus_per_task: float) -> None:
        ray = self.ray = import_ray()
        if address == "local":
            # a private single-machine Ray inside this process; it does not report usage statistics
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            ray.init(num_cpus=local_cpus, include_dashboard=False, log_to_driver=False)
        else:
            check_reachable(address)
            try:
                ray.init(address=address, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as error:
                if address == "auto":
                    raise UnveilError("--ray auto found no running Ray cluster on this machine (start one with "
                                      "`ray start --head`, or use --ray local)") from None
                raise UnveilError(f"cannot connect to the Ray cluster at {address} ({error})") from None
        # max_retries=0: the driver retries itself, so every attempt is in the manifest
        self.remote = ray.remote(run_task).options(num_cpus=1, num_gpus=gpus_per_task, max_retries=0)
        self.pending: dict = {}  # object ref -> task

    def submit(self, task: Task) -> None:
        self.pending[self.remote.remote(task)] = task

    def next_result(self) -> Result:
        [ref], _ = self.ray.wait(list(self.pending), num_returns=1)
        task = self.pending.pop(ref)
        try:
            return self.ray.get(ref)
        except Exception as error:  # noqa: BLE001 - the worker died or Ray lost the task: retryable
            return failed(task, f"Ray task failed: {type(error).__name__}: {error}", retryable=True)

    def close(self) -> None:
        for ref in self.pending:
            self.ray.cancel(ref, force=True)
        self.pending = {}
        self.ray.shutdown()


# ---------------------------------------------------------------------------------------------------------------
# Planning and the driver loop


@dataclass(frozen=True)
class BatchSettings:
    out_dir: Path
    config: PipelineConfig
    retries: int = 1               # extra attempts a failed video gets, counted across runs (from the manifest)
    save_masks: bool = False       # OUT_DIR/<stem>.masks/
    stats: bool = False            # OUT_DIR/<stem>.stats.json
    two_pass: bool = True          # each video read twice (the whole clip); False: `--single-pass`

    @property
    def manifest(self) -> Path:
        return self.out_dir / MANIFEST_NAME

    @property
    def max_attempts(self) -> int:
        return 1 + self.retries


@dataclass
class Plan:
    todo: list[Task]
    finished: list[Result]         # complete from an earlier run, or out of attempts


def plan_batch(inputs: Sequence[Path], settings: BatchSettings) -> Plan:
    """What this run has to do, from the outputs on disk and the manifest's attempt counts."""
    outputs = plan_outputs(inputs, settings.out_dir)
    history = read_manifest(settings.manifest)
    plan = Plan([], [])
    for video, output in outputs.items():
        records = history.get(str(video), [])
        if output_is_complete(video, output):
            done = [r for r in records if r.get("status") == "done"]
            frames = done[-1].get("frames", 0) if done else expected_frames(video) or 0
            plan.finished.append(Result(str(video), str(output), "skipped", frames=frames, error="done earlier"))
            continue
        failures = failed_attempts(records)
        if len(failures) >= settings.max_attempts:
            plan.finished.append(Result(str(video), str(output), "failed", len(failures),
                                        error=f"{failures[-1].get('error', '')} (gave up after {len(failures)} "
                                              "attempts; raise --retries to try again)"))
            continue
        if output.exists():
            log.info("%s: the output exists but is incomplete; it is redone", output)
        plan.todo.append(task_for(video, output, settings, attempt=len(failures) + 1))
    return plan


def task_for(video: Path, output: Path, settings: BatchSettings, attempt: int) -> Task:
    side = settings.out_dir.absolute() / video.stem
    return Task(str(video), str(output), settings.config, attempt,
                save_masks=f"{side}.masks" if settings.save_masks else None,
                stats=f"{side}.stats.json" if settings.stats else None,
                estimated_frames=estimated_frames(video), two_pass=settings.two_pass)


def absolute_config(config: PipelineConfig) -> PipelineConfig:
    """Model and reference paths made absolute, so a worker with another working folder finds them."""
    models = tuple(str(Path(m).absolute()) if Path(m).is_file() else m for m in config.models)
    reference = str(Path(config.reference).absolute()) if config.reference else None
    return replace(config, models=models, reference=reference)


def prepare_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UnveilError(f"cannot create output folder {out_dir} ({error.strerror or error})") from None
    if not os.access(out_dir, os.W_OK):
        raise UnveilError(f"cannot write to output folder {out_dir}")


class BatchProgress:
    """One bar for the whole batch, in frames (rate and ETA) with videos done/total in front. Workers report only
    finished videos, so it moves a whole video at a time; a video's estimate is corrected when it finishes."""

    def __init__(self, tasks: Sequence[Task], show: bool) -> None:
        self.videos, self.finished, self.failed = len(tasks), 0, 0
        self.bar = tqdm(total=sum(t.estimated_frames for t in tasks), unit="frame", disable=not show,
                        dynamic_ncols=True, desc=self.describe())

    def describe(self) -> str:
        return f"videos {self.finished}/{self.videos}" + (f" ({self.failed} failed)" if self.failed else "")

    def finish(self, task: Task, result: Result) -> None:
        self.finished += 1
        self.failed += result.status != "done"
        self.bar.total += result.frames - task.estimated_frames  # the estimate out, the real count in
        self.bar.set_description_str(self.describe(), refresh=False)
        self.bar.update(result.frames)

    def close(self) -> None:
        self.bar.close()


def run_batch(inputs: Sequence[Path], settings: BatchSettings, executor_factory: Callable[[int], Executor], *,
              max_in_flight: int, show_progress: bool = True) -> list[Result]:
    """Run every unfinished video; returns one final result per input, in input order."""
    if settings.out_dir.exists() and not settings.out_dir.is_dir():
        raise UnveilError(f"output folder {settings.out_dir} is a file")
    settings = replace(settings, config=absolute_config(settings.config))
    plan = plan_batch(inputs, settings)  # refuses clashing names before anything is created
    finals = {r.input: r for r in plan.finished}
    if plan.todo:
        executor = executor_factory(min(max_in_flight, len(plan.todo)))  # a cluster that is not there fails here
        try:
            prepare_out_dir(settings.out_dir)
            progress = BatchProgress(plan.todo, show_progress)
            try:
                for result in drive(executor, plan.todo, settings, max_in_flight, progress):
                    finals[result.input] = result
            finally:
                progress.close()
        finally:
            executor.close()
    return [finals[str(video)] for video in inputs]


def drive(executor: Executor, tasks: Sequence[Task], settings: BatchSettings, max_in_flight: int,
          progress: BatchProgress) -> Iterable[Result]:
    """Keep up to max_in_flight tasks running; record every attempt; retry crashes while attempts are left."""
    queue, in_flight = list(reversed(tasks)), {}
    while queue or in_flight:
        while queue and len(in_flight) < max_in_flight:
            task = queue.pop()
            executor.submit(task)
            in_flight[task.input] = task
        result = executor.next_result()
        task = in_flight.pop(result.input)
        append_record(settings.manifest, result.record())
        if result.status == "failed" and result.retryable and result.attempt < settings.max_attempts:
            log.warning("%s: attempt %d failed (%s); trying again", Path(task.input).name, result.attempt, result.error)
            queue.append(replace(task, attempt=result.attempt + 1))
            continue
        progress.finish(task, result)
        yield result


def summary_table(results: Sequence[Result]) -> str:
    """video, status, frames, seconds, fps or error: one row per input, then the totals."""
    rows = [("video", "status", "frames", "seconds", "fps / error")]
    for r in results:
        ran = r.status == "done"
        rows.append((Path(r.input).name, r.status, str(r.frames) if r.frames else "-",
                     f"{r.seconds:.1f}" if ran else "-", f"{r.fps:.1f}" if ran else r.error))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].rjust(widths[2]),
                        row[3].rjust(widths[3]), row[4]]) for row in rows]
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
    lines.append(f"{counts['done']} done, {counts['skipped']} already done, {counts['failed']} failed")
    return "\n".join(lines)
