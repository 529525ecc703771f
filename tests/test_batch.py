"""`unveil batch`: many videos locally or on a (local, in-process) Ray, resumable through the manifest, one bad
video never stopping the others; and the pure helpers for finding inputs and reading the manifest."""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

from cli.main import main
from realtime.batch import (BatchSettings, LocalPool, Result, Task, discover_inputs, failed_attempts, list_file_lines,
                            read_manifest, run_batch)
from realtime.errors import UnveilError
from realtime.pipeline import PipelineConfig
from tests.test_cli import make_face_clip
from tests.tiny_models import build_blind_model
from tests.video_clips import video_frame_times

CLIP_NAMES = ("alpha.mp4", "beta.mp4", "gamma.mp4")
FAST = ["--provider", "cpu", "--no-hands"]  # hands add nothing to what is tested here and cost a model load


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return str(build_blind_model(tmp_path_factory.mktemp("model") / "tiny.onnx", crop_size=64))


@pytest.fixture(scope="module")
def clips(tmp_path_factory, astronaut_bgr) -> Path:
    """Three short face clips with audio (different lengths) and one corrupt file with a video suffix."""
    folder = tmp_path_factory.mktemp("clips")
    for index, name in enumerate(CLIP_NAMES):
        make_face_clip(folder / name, astronaut_bgr, frames=4 + 2 * index)
    (folder / "broken.mp4").write_bytes(os.urandom(4096))
    (folder / "notes.md").write_text("not a video")
    return folder


@pytest.fixture(scope="module")
def local_run(tmp_path_factory, clips, model):
    """One default (local worker pool) batch over the folder; its exit code, printed text and output folder."""
    out = tmp_path_factory.mktemp("out")
    capture = _Capture()
    with capture:
        code = main(["batch", str(clips), "-o", str(out), "--model", model, "--workers", "2", *FAST])
    return code, capture.text, out


class _Capture:
    """stdout + stderr of an in-process run, for a module-scoped fixture (capsys is function-scoped)."""

    def __enter__(self):
        import io
        self.buffer, self.saved = io.StringIO(), (sys.stdout, sys.stderr)
        sys.stdout = sys.stderr = self.buffer

    def __exit__(self, *exc):
        sys.stdout, sys.stderr = self.saved
        self.text = self.buffer.getvalue()


def manifest_lines(out: Path) -> list[dict]:
    """The manifest's records (a torn line left by a killed driver is not one)."""
    records = []
    for line in (out / "manifest.jsonl").read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def check_outputs_match_inputs(clips: Path, out: Path) -> None:
    for name in CLIP_NAMES:
        assert video_frame_times(out / name) == video_frame_times(clips / name), name
    assert not (out / "broken.mp4").exists()
    assert not list(out.glob(".*unveil-partial*"))


def check_records(out: Path, clips: Path) -> None:
    records = {Path(r["input"]).name: r for r in manifest_lines(out)}
    assert set(records) == {*CLIP_NAMES, "broken.mp4"}
    for index, name in enumerate(CLIP_NAMES):
        done = records[name]
        assert done["status"] == "done" and done["frames"] == 4 + 2 * index and done["attempt"] == 1
        assert done["seconds"] > 0 and done["fps"] > 0 and done["output"] == str(out.absolute() / name)
    assert records["broken.mp4"]["status"] == "failed" and records["broken.mp4"]["attempt"] == 1
    assert "not a readable video" in records["broken.mp4"]["error"]


@pytest.mark.slow
def test_local_batch_processes_every_good_video_and_isolates_the_corrupt_one(local_run, clips):
    code, text, out = local_run
    assert code == 1, text  # something failed
    check_outputs_match_inputs(clips, out)
    check_records(out, clips)
    table = text[text.index("video  "):]
    assert "alpha.mp4" in table and "broken.mp4  failed" in table and "not a readable video" in table
    assert "3 done, 0 already done, 1 failed" in table
    assert "videos 4/4 (1 failed)" in text  # the progress bar over the whole batch


@pytest.mark.slow
def test_rerun_redoes_only_the_unfinished_video(local_run, clips, model, tmp_path, capsys):
    """A worker 'killed' while writing beta: its output cut short, a partial file left, its done record lost."""
    out = tmp_path / "out"
    shutil.copytree(local_run[2], out)
    beta = out / "beta.mp4"
    beta.write_bytes(beta.read_bytes()[: beta.stat().st_size // 2])
    (out / ".beta.unveil-partial.mp4").write_bytes(b"half")
    kept = [r for r in manifest_lines(out) if not (r["input"].endswith("beta.mp4") and r["status"] == "done")]
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept) + '{"input": "torn')
    untouched = {name: (out / name).stat().st_mtime_ns for name in ("alpha.mp4", "gamma.mp4")}

    code = main(["batch", str(clips), "-o", str(out), "--model", model, "--workers", "1", *FAST])
    text = capsys.readouterr().out
    assert code == 1  # broken.mp4 failed again (its second and last attempt with --retries 1)
    new = manifest_lines(out)[len(kept):]
    assert sorted((Path(r["input"]).name, r["status"], r["attempt"]) for r in new) == [
        ("beta.mp4", "done", 1), ("broken.mp4", "failed", 2)]
    assert {name: (out / name).stat().st_mtime_ns for name in untouched} == untouched
    assert video_frame_times(beta) == video_frame_times(clips / "beta.mp4")
    assert "1 done, 2 already done, 1 failed" in text

    # a third run has nothing left to do: broken.mp4 is out of attempts, and is still reported as failed
    code = main(["batch", str(clips), "-o", str(out), "--model", model, *FAST])
    text = capsys.readouterr().out
    assert code == 1 and len(manifest_lines(out)) == len(kept) + 2
    assert "gave up after 2 attempts" in text and "0 done, 3 already done, 1 failed" in text


def die_on_first_attempt(task: Task) -> Result:
    """A stand-in for run_task whose worker is killed (SIGKILL) on a video's first attempt."""
    if task.attempt == 1 and Path(task.input).name == "victim.mp4":
        os.kill(os.getpid(), signal.SIGKILL)
    Path(task.output).write_bytes(b"")
    return Result(task.input, task.output, "done", task.attempt, frames=1, seconds=0.1, fps=10.0)


@pytest.mark.slow
def test_a_killed_worker_fails_only_its_video_which_is_retried(tmp_path):
    inputs = []
    for name in ("victim.mp4", "bystander.mp4"):
        inputs.append(tmp_path / name)
        inputs[-1].write_bytes(b"x")
    settings = BatchSettings(tmp_path / "out", PipelineConfig(), retries=1)
    results = run_batch(inputs, settings, lambda n: LocalPool(n, work=die_on_first_attempt), max_in_flight=2,
                        show_progress=False)
    assert [(Path(r.input).name, r.status, r.attempt) for r in results] == [("victim.mp4", "done", 2),
                                                                            ("bystander.mp4", "done", 1)]
    victim = [r for r in manifest_lines(tmp_path / "out") if r["input"].endswith("victim.mp4")]
    assert [(r["status"], r["attempt"]) for r in victim] == [("failed", 1), ("done", 2)]
    assert "worker process died (killed by signal 9" in victim[0]["error"]


@pytest.mark.slow
def test_ray_runs_the_same_tasks(clips, model, tmp_path, capsys, monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    out = tmp_path / "out"
    code = main(["batch", str(clips), "-o", str(out), "--model", model, "--ray", "local", "--workers", "2", *FAST])
    text = capsys.readouterr().out
    assert code == 1, text
    check_outputs_match_inputs(clips, out)
    check_records(out, clips)
    assert "3 done, 0 already done, 1 failed" in text


def test_ray_missing_is_one_line_with_the_extra_to_install(clips, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert main(["batch", str(clips), "-o", str(tmp_path / "out"), "--ray", "auto"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("unveil: error:") and "pip install 'unveil[cluster]'" in error and "\n" not in error


# ---------------------------------------------------------------------------------------------------------------
# Finding inputs, and bad command lines


@pytest.fixture()
def tree(tmp_path) -> Path:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "nested").mkdir()
    for name in ("a.mp4", "b.MOV", "c.txt.bak", ".a.unveil-partial.mp4", "nested/d.mp4", "e.mkv"):
        (tmp_path / "in" / name).write_bytes(b"x")
    return tmp_path


def names(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def test_a_folder_gives_its_videos_not_recursive_and_no_hidden_files(tree, monkeypatch):
    monkeypatch.chdir(tree)
    assert names(discover_inputs(["in"])) == ["a.mp4", "b.MOV", "e.mkv"]
    assert all(p.is_absolute() for p in discover_inputs(["in"]))


def test_globs_files_and_duplicates_keep_the_given_order_once(tree, monkeypatch):
    monkeypatch.chdir(tree)
    assert names(discover_inputs(["in/e.mkv", "in/*.mp4", "in/a.mp4", "in/*/*.mp4"])) == ["e.mkv", "a.mp4", "d.mp4"]


def test_list_files_by_suffix_or_at_sign_with_comments_relative_to_the_list(tree, monkeypatch):
    lists = tree / "lists"
    lists.mkdir()
    (lists / "videos.txt").write_text("# my videos\n../in/a.mp4\n\n  ../in/nested   # a folder\n../in/*.mkv\n")
    (lists / "more.list").write_text("../in/b.MOV\n")
    monkeypatch.chdir(tree)
    assert names(discover_inputs(["lists/videos.txt", "@lists/more.list"])) == ["a.mp4", "d.mp4", "e.mkv", "b.MOV"]


def test_list_file_lines_drop_blank_lines_and_comments():
    assert list_file_lines("a.mp4\n# all of it\n\n  b c.mp4  \nd.mp4 # trailing\n#e.mp4") == ["a.mp4", "b c.mp4",
                                                                                           "d.mp4"]


@pytest.mark.parametrize("spec, message", [
    ("missing.mp4", "input missing.mp4 does not exist"),
    ("in/*.avi", "input pattern in/*.avi matches no video file"),
    ("empty", "input folder empty has no video files"),
    ("@nolist.txt", "cannot read list file"),
    ("bad.txt", "bad.txt: input ../gone.mp4 does not exist"),
])
def test_inputs_that_name_nothing_are_errors(tree, monkeypatch, spec, message):
    (tree / "empty").mkdir()
    (tree / "bad.txt").write_text("in/a.mp4\n../gone.mp4\n")
    monkeypatch.chdir(tree)
    with pytest.raises(UnveilError, match=message.replace("*", r"\*").replace("(", r"\(")):
        discover_inputs([spec])


def test_the_manifest_reader_skips_a_torn_line_and_counts_failures_since_the_last_success(tmp_path):
    path = tmp_path / "manifest.jsonl"
    lines = [{"input": "/v/a.mp4", "status": "failed", "attempt": 1}, {"input": "/v/a.mp4", "status": "done"},
             {"input": "/v/b.mp4", "status": "failed"}, {"input": "/v/a.mp4", "status": "failed"}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"input": "/v/c.mp')
    records = read_manifest(path)
    assert sorted(records) == ["/v/a.mp4", "/v/b.mp4"] and len(records["/v/a.mp4"]) == 3
    assert len(failed_attempts(records["/v/a.mp4"])) == 1 and len(failed_attempts(records["/v/b.mp4"])) == 1
    assert read_manifest(tmp_path / "none.jsonl") == {}


@pytest.mark.parametrize("case", ["same stem", "out is a file", "out is the input folder", "no such input",
                                  "bad workers"])
def test_bad_command_lines_are_one_error_line_and_exit_2(case, tree, capsys, monkeypatch):
    monkeypatch.chdir(tree)
    (tree / "file").write_text("x")
    (tree / "other").mkdir()
    (tree / "other" / "a.mkv").write_bytes(b"x")
    args, expected = {
        "same stem": (["in/a.mp4", "other/a.mkv", "-o", "out"], "have the same name 'a'"),
        "out is a file": (["in", "-o", "file"], "output folder file is a file"),
        "out is the input folder": (["in", "-o", "in"], "holds the input"),
        "no such input": (["nope.mp4", "-o", "out"], "input nope.mp4 does not exist"),
        "bad workers": (["in", "-o", "out", "--workers", "0"], "--workers must be at least 1"),
    }[case]
    assert main(["batch", *args]) == 2
    captured = capsys.readouterr()
    error = captured.err.strip()
    assert error.startswith("unveil: error:") and expected in error and "\n" not in error, captured
    assert not (tree / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("flags, passes", [([], 2), (["--single-pass"], 1)])
def test_batch_reads_each_video_twice_unless_single_pass(clips, model, tmp_path, flags, passes):
    name = CLIP_NAMES[0]
    out = tmp_path / "out"
    with _Capture():
        code = main(["batch", str(clips / name), "-o", str(out), "--model", model, "--workers", "1", "--stats",
                     *flags, *FAST])
    assert code == 0
    stats = json.loads((out / f"{Path(name).stem}.stats.json").read_text())
    assert stats["passes"] == passes
    assert video_frame_times(out / name) == video_frame_times(clips / name)
