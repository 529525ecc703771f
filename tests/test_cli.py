"""The `unveil` command end to end on real video (PyAV), a real face (mediapipe) and a real ONNX model."""
from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from cli.main import COMMANDS, main, parse_command
from tests.tiny_models import OCCLUDER_BGR, build_blind_model, build_model_without_contract
from tests.video_clips import AUDIO_RATE, corrupt_packet, stream_packets, video_frame_times, write_tone

RATE = Fraction(30000, 1001)


def face_frame(face_bgr: np.ndarray, index: int, occluded: bool = True) -> np.ndarray:
    """320x240 frame with the astronaut's face, moving a little, and a magenta bar over the mouth."""
    face = cv2.resize(face_bgr[20:260, 110:350], (200, 200), interpolation=cv2.INTER_AREA)
    frame = np.full((240, 320, 3), 50, np.uint8)
    x = 60 + index % 4
    frame[20:220, x:x + 200] = face
    if occluded:
        cv2.rectangle(frame, (x + 65, 112), (x + 115, 132), OCCLUDER_BGR, -1)
    return frame


def make_face_clip(path: Path, face_bgr: np.ndarray, frames: int = 10) -> Path:
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=RATE)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        video.options = {"crf": "12"}
        sound = container.add_stream("aac", rate=AUDIO_RATE)
        sound.layout = "mono"
        for i in range(frames):
            container.mux(video.encode(av.VideoFrame.from_ndarray(face_frame(face_bgr, i), format="bgr24")))
        container.mux(video.encode(None))
        write_tone(container, sound, seconds=Fraction(frames) / RATE)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return str(build_blind_model(tmp_path_factory.mktemp("model") / "tiny.onnx", crop_size=64))


@pytest.fixture(scope="module")
def face_clip(tmp_path_factory, astronaut_bgr) -> Path:
    return make_face_clip(tmp_path_factory.mktemp("clip") / "face.mp4", astronaut_bgr)


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_process_video_keeps_frames_timestamps_and_audio(tmp_path, face_clip, model, capsys):
    out, masks, stats = tmp_path / "out.mp4", tmp_path / "masks", tmp_path / "stats.json"
    code, text = run_cli(["process", str(face_clip), "-o", str(out), "--model", model, "--provider", "cpu",
                          "--save-masks", str(masks), "--stats", str(stats)], capsys)
    assert code == 0, text
    assert video_frame_times(out) == video_frame_times(face_clip)
    with av.open(str(out)) as c:
        assert c.streams.video[0].average_rate == RATE
    src_audio, out_audio = stream_packets(face_clip, "audio"), stream_packets(out, "audio")
    assert [(p.time, p.data) for p in out_audio] == [(p.time, p.data) for p in src_audio]
    report = json.loads(stats.read_text())
    assert report["frames"] == 10 and report["faces"] == 10 and report["frames_failed_to_decode"] == []
    assert set(report["stage_ms"]) >= {"detect", "align", "find", "fill", "blend"}
    mask_files = sorted(masks.glob("*.png"))
    assert len(mask_files) == 10
    mask = cv2.imread(str(mask_files[0]), cv2.IMREAD_GRAYSCALE)
    assert mask[118:126, 130:170].min() == 255  # the magenta bar was replaced
    assert mask[5, 5] == 0 and mask[100, 300] == 0  # the background was not
    evidence = cv2.imread(str(masks / "evidence" / mask_files[0].name), cv2.IMREAD_COLOR)
    assert evidence is not None and evidence[118:126, 130:170].max() > 0  # which evidence found the bar
    assert evidence[5, 5].max() == 0
    with av.open(str(out)) as c:
        first = next(c.decode(video=0)).to_ndarray(format="bgr24")
    magenta_left = np.mean((first[112:133, 125:176, 0].astype(int) > 200) & (first[112:133, 125:176, 1].astype(int) < 60))
    assert magenta_left < 0.05


def test_process_image_folder_keeps_names_and_passes_faceless_images(tmp_path, astronaut_bgr, model, capsys):
    src, dst, masks = tmp_path / "in", tmp_path / "out", tmp_path / "masks"
    src.mkdir()
    cv2.imwrite(str(src / "face.png"), face_frame(astronaut_bgr, 0))
    flat = np.random.default_rng(0).integers(0, 256, (120, 160, 3), np.uint8)
    cv2.imwrite(str(src / "no_face.png"), flat)
    code, text = run_cli(["process", str(src), "-o", str(dst), "--model", model, "--save-masks", str(masks)], capsys)
    assert code == 0, text
    assert sorted(p.name for p in dst.iterdir()) == ["face.png", "no_face.png"]
    assert np.array_equal(cv2.imread(str(dst / "no_face.png")), flat)  # no face: pixel for pixel
    assert "2/2" in text  # the progress bar counts the folder's images
    assert cv2.imread(str(masks / "no_face.png"), cv2.IMREAD_GRAYSCALE).max() == 0
    face_mask = cv2.imread(str(masks / "face.png"), cv2.IMREAD_GRAYSCALE)
    before, after = cv2.imread(str(src / "face.png")), cv2.imread(str(dst / "face.png"))
    changed = (before != after).any(axis=2)
    assert changed.any() and np.array_equal(changed, face_mask > 0)


def test_corrupt_frames_are_reported_and_frame_count_kept(tmp_path, face_clip, model, capsys):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(face_clip.read_bytes())
    packets = stream_packets(broken, "video")
    corrupt_packet(broken, packets[5])
    out, stats = tmp_path / "out.mp4", tmp_path / "stats.json"
    code, text = run_cli(["process", str(broken), "-o", str(out), "--model", model, "--stats", str(stats)], capsys)
    assert code == 0, text
    report = json.loads(stats.read_text())
    assert report["frames"] == 10
    assert len(video_frame_times(out)) == 10
    assert report["frames_failed_to_decode"] and "failed to decode" in text


@pytest.mark.parametrize("case", ["missing", "not_video", "no_contract", "bad_output_dir", "output_is_dir", "missing_camera",
                                  "video_to_image"])
def test_bad_input_gives_one_line_error_and_no_output(case, tmp_path, face_clip, model, capsys):
    out = tmp_path / "out.mp4"
    args = ["process", str(face_clip), "-o", str(out), "--model", model]
    expected = ""
    if case == "missing":
        args[1], expected = str(tmp_path / "nope.mp4"), "nope.mp4"
    elif case == "not_video":
        fake = tmp_path / "fake.mp4"
        fake.write_text("this is not a video")
        args[1], expected = str(fake), "fake.mp4"
    elif case == "no_contract":
        args[-1], expected = str(build_model_without_contract(tmp_path / "plain.onnx")), "no Unveil model contract"
    elif case == "bad_output_dir":
        out = tmp_path / "missing_dir" / "out.mp4"
        args[3], expected = str(out), "does not exist"
    elif case == "output_is_dir":
        out = tmp_path
        args[3], expected = str(out), "is a folder"
    elif case == "video_to_image":
        out = tmp_path / "out.png"
        args[3], expected = str(out), "a video goes to a video file"
    elif case == "missing_camera":
        args, expected = ["live", "--source", "57", "--headless", "--seconds", "1", "--model", model], "camera 57"
    code, text = run_cli(args, capsys)
    assert code == 2
    assert "Traceback" not in text
    error_lines = [line for line in text.splitlines() if line.startswith("unveil: error:")]
    assert len(error_lines) == 1 and expected in error_lines[0], text
    if case != "output_is_dir":
        assert not out.exists()
    assert not list(tmp_path.glob(".*partial*"))


@pytest.mark.slow
def test_console_command_runs_as_a_program(tmp_path):
    result = subprocess.run([sys.executable, "-m", "cli", "process", str(tmp_path / "missing.mp4"), "-o",
                             str(tmp_path / "o.mp4")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr and "missing.mp4" in result.stderr


def test_live_headless_on_a_file_reports_fps_and_latency(face_clip, model, capsys):
    code, text = run_cli(["live", "--source", str(face_clip), "--headless", "--seconds", "3", "--model", model], capsys)
    assert code == 0, text
    report = json.loads(text[text.index("{"):text.rindex("}") + 1])
    assert 0 < report["frames"] <= 10
    assert report["latency_ms"]["p95"] >= report["latency_ms"]["p50"] > 0
    assert report["fps"] > 0
    assert report["mode"] and report["models"]  # what ran, besides how fast


def test_live_headless_prints_a_status_line_while_it_runs(face_clip, model):
    from realtime.contract import read_contract
    from realtime.live import run_live
    from realtime.options import pipeline_config_from_args

    _, args = parse_command(["live", "--source", str(face_clip), "--headless", "--model", model])
    lines: list[str] = []
    summary = run_live(str(face_clip), pipeline_config_from_args(args), seconds=5, status=lines.append,
                       status_every_s=0.1)
    assert len(lines) >= 2, lines  # the 10-frame clip plays for a third of a second
    assert summary["mode"] and summary["models"] == [read_contract(model).name or Path(model).stem]
    for line in lines:
        assert len(line.splitlines()) == 1
        assert "fps" in line and "latency p50" in line and "dropped" in line
        assert summary["mode"] in line and summary["models"][0] in line


TORCH_COMMANDS = [name for name, command in COMMANDS.items() if command.extra == "train" and name != "prepare"]


def option_strings(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(s for action in parser._actions for s in (action.option_strings or [action.dest]))


@pytest.mark.slow
def test_help_of_the_training_commands_works_without_torch():
    """A runtime-only install (no torch, onnx, onnxscript) still shows each command's real arguments; running one
    says which extra is missing."""
    import importlib

    expected = {}
    for command in TORCH_COMMANDS:
        real = argparse.ArgumentParser()
        importlib.import_module(COMMANDS[command].module).add_arguments(real)
        expected[command] = option_strings(real)
    code = (
        "import sys\n"
        "sys.modules.update(dict.fromkeys(['torch', 'onnx', 'onnxscript']))\n"
        "from cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    for command in TORCH_COMMANDS:
        shown = subprocess.run([sys.executable, "-c", code, command, "--help"], capture_output=True, text=True, timeout=120)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith(f"usage: unveil {command}") and "Traceback" not in shown.stderr
        for option in expected[command]:
            if option.startswith("-"):
                assert option in shown.stdout, (command, option)
        words = " ".join(shown.stdout.split())  # argparse wraps the note
        assert "pip install 'unveil[train," in words and "torch is missing" in words
    ran = subprocess.run([sys.executable, "-c", code, "train", "some-config.json"], capture_output=True, text=True,
                         timeout=120)
    assert ran.returncode == 2 and "Traceback" not in ran.stderr
    assert ran.stderr.startswith("unveil: error:") and "torch is missing" in ran.stderr


def test_every_runtime_argument_has_a_help_text():
    import importlib

    from cli.main import command_parser

    for name in ("process", "live", "bench", "demo"):
        parser = command_parser(name)
        importlib.import_module(COMMANDS[name].module).add_arguments(parser)
        for action in parser._actions:
            assert action.help, f"unveil {name}: {action.option_strings or action.dest} has no help"


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_run_leaves_no_partial_file(signum, tmp_path, astronaut_bgr, model):
    clip = make_face_clip(tmp_path / "long.mp4", astronaut_bgr, frames=300)
    out = tmp_path / "out.mp4"
    run = subprocess.Popen([sys.executable, "-m", "cli", "process", str(clip), "-o", str(out), "--model", model],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".out.unveil-partial*")) and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert run.poll() is None, "the run ended before it could be stopped"
    time.sleep(0.5)  # well into the work
    run.send_signal(signum)
    _, err = run.communicate(timeout=60)
    assert run.returncode != 0 and "Traceback" not in err, err
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))
