"""Damaged inputs, fuzzed: no mutated file makes Unveil crash, hang or leave litter (issue 25).

A tiny clip made here (never ../shared) is mutated with a fixed seed: byte flips, zeroed blocks, header damage,
truncation, splices. Every run of `unveil process` ends either with rc 0 and an output that decodes and has as many
frames as the input holds, or with rc 2 and one `unveil: error:` line and no output; never a traceback, never a
temporary file beside the output, never a library's own message on the terminal. Images get the same treatment.
The runs are in-process (a subprocess costs seconds of imports each); fd 1 and 2 are captured (capfd), so native
writes count too, and faulthandler ends the test run with every thread's stack if one of them hangs.
"""
from __future__ import annotations

import faulthandler
import json
import logging
import random
import re
import traceback
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from cli.main import main
from realtime.batch import expected_frames
from tests.tiny_models import build_blind_model
from tests.video_clips import make_clip, stream_packets

pytestmark = pytest.mark.slow

SEED = 25
MUTATIONS_PER_KIND = 16
KINDS = ("flip", "zero", "header", "truncate", "splice")
HANG_S = 30          # one run of a 64x48 clip takes a tenth of a second; this long means it hangs
FAST = ["--provider", "cpu", "--no-hands"]
PROGRESS_BAR = re.compile(r"%\||\d+(frame|image)s? \[")  # tqdm's redraws, on stderr between the messages


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return str(build_blind_model(tmp_path_factory.mktemp("model") / "tiny.onnx", crop_size=64))


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[bytes]:
    """Two tiny clips with audio: the index at the end (the MP4 default) and at the start (faststart, so a truncated
    copy still says how many frames it had)."""
    folder = tmp_path_factory.mktemp("clips")
    return [make_clip(folder / name, frames=8, width=64, height=48, faststart=faststart).read_bytes()
            for name, faststart in (("end.mp4", False), ("start.mp4", True))]


def mutate(data: bytes, kind: str, rng: random.Random) -> bytes:
    b, n = bytearray(data), len(data)
    if kind == "flip":
        for _ in range(rng.randint(1, 40)):
            b[rng.randrange(n)] ^= 1 << rng.randrange(8)
    elif kind == "zero":
        start, length = rng.randrange(n), rng.randint(8, 2048)
        b[start:start + length] = bytes(len(b[start:start + length]))
    elif kind == "header":  # the file type box, or the index (moov) wherever it is
        moov = data.find(b"moov")
        low, high = (0, 64) if rng.random() < 0.4 else (max(0, moov - 4), min(n, moov + 600))
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(low, high)] = rng.randrange(256)
    elif kind == "truncate":
        b = b[:rng.randrange(n)]
    elif kind == "splice":  # a stretch of the file copied elsewhere, or a stretch cut out
        i, j = sorted(rng.sample(range(n), 2))
        b = b[:i] + b[j:j + rng.randint(16, 4096)] + b[i:] if rng.random() < 0.5 else b[:i] + b[j:]
    return bytes(b)


def run(argv: list[str], capfd, caplog) -> tuple[int, str]:
    """rc and everything written (fd 1, fd 2, log records) of one in-process run; an escaping exception fails."""
    caplog.clear()
    faulthandler.dump_traceback_later(HANG_S, exit=True)
    try:
        code = main(argv)
    except BaseException:  # noqa: BLE001 - the user would have seen this traceback
        pytest.fail(f"unveil {' '.join(argv)} raised:\n{traceback.format_exc()}")
    finally:
        faulthandler.cancel_dump_traceback_later()
    captured = capfd.readouterr()
    return code, captured.out + captured.err + "".join(map(logged, caplog.records))


def logged(record: logging.LogRecord) -> str:
    """A log record as the terminal would show it. FFmpeg's records ("libav.*") never reach the terminal (Unveil
    counts them and stops them), but pytest attaches its capture to non-propagating loggers too: left out here."""
    if record.name.startswith("libav."):
        return ""
    text = f"log {record.name}: {record.getMessage()}\n"
    if record.exc_info:
        text += "".join(traceback.format_exception(*record.exc_info))
    return text


def check_outcome(code: int, text: str, source: Path, output: Path, what: str) -> None:
    """rc 0 with a complete output, or rc 2 with one error line and no output; only Unveil's own lines either way."""
    assert code in (0, 2), f"{what}: rc {code}\n{text}"
    assert "Traceback" not in text, f"{what}\n{text}"
    errors = [line for line in text.splitlines() if line.startswith("unveil: error:")]
    if code == 2:
        assert len(errors) == 1, f"{what}\n{text}"
        assert not output.exists(), what
    else:
        assert not errors, f"{what}\n{text}"
    litter = [p.name for p in output.parent.iterdir() if p.name.startswith(".") or "unveil-partial" in p.name]
    assert not litter, f"{what}: {litter}"
    for line in re.split(r"[\r\n]", text):  # what reached the terminal: Unveil's lines and its progress bar only
        line = line.strip()
        assert not line or line.startswith(("unveil:", "wrote ", "log unveil: ")) or PROGRESS_BAR.search(line), \
            f"{what}: not Unveil's words: {line!r}\n{text}"


def decoded_frames(path: Path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(container.streams.video[0]))


def test_mutated_videos_are_processed_or_refused_in_one_line(tmp_path, clips, model, capfd, caplog):
    rng = random.Random(SEED)
    outcomes = {0: 0, 2: 0}
    for number in range(MUTATIONS_PER_KIND * len(KINDS)):
        kind = KINDS[number % len(KINDS)]
        folder = tmp_path / f"{number:03d}"
        folder.mkdir()
        source, output, stats = folder / f"{kind}.mp4", folder / "out" / "out.mp4", folder / "stats.json"
        output.parent.mkdir()
        source.write_bytes(mutate(clips[number % 2], kind, rng))
        code, text = run(["process", str(source), "-o", str(output), "--model", model, "--stats", str(stats), *FAST],
                         capfd, caplog)
        what = f"mutation {number} ({kind}, {source})"
        check_outcome(code, text, source, output, what)
        if code == 0:
            frames = json.loads(stats.read_text())["frames"]
            assert decoded_frames(output) == frames == expected_frames(source), what
        outcomes[code] += 1
    # both outcomes occur, so the mutations neither all miss nor all destroy the file
    assert outcomes[0] >= 5 and outcomes[2] >= 5, outcomes


@pytest.fixture(scope="module")
def photo(tmp_path_factory, astronaut_bgr) -> tuple[bytes, bytes]:
    """The astronaut's face as a JPEG and a PNG, small."""
    face = cv2.resize(astronaut_bgr[20:260, 110:350], (120, 120), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", face)[1].tobytes(), cv2.imencode(".png", face)[1].tobytes()


def broken_images(jpeg: bytes, png: bytes) -> dict[str, bytes]:
    rng = random.Random(SEED)
    images = {}
    for index in range(4):
        for name, data in (("jpg", jpeg), ("png", png)):
            flipped = bytearray(data)
            for _ in range(1 + 4 * index):
                flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
            images[f"flip{index}.{name}"] = bytes(flipped)
    images["half.jpg"], images["half.png"] = jpeg[:len(jpeg) // 2], png[:len(png) // 2]
    images["header.jpg"] = jpeg[:2] + bytes(30) + jpeg[32:]
    images["empty.jpg"], images["text.png"] = b"", b"this is not an image at all\n"
    # bytes before the end marker: libjpeg decodes it and writes "Corrupt JPEG data: 3 extraneous bytes" to fd 2
    images["extraneous.jpg"] = jpeg[:-2] + b"\x00\x01\x02" + jpeg[-2:]
    return images


def test_broken_images_are_processed_or_refused_in_one_line(tmp_path, photo, model, capfd, caplog):
    for name, data in broken_images(*photo).items():
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        source, output = folder / name, folder / "out" / f"out{Path(name).suffix}"
        output.parent.mkdir()
        source.write_bytes(data)
        code, text = run(["process", str(source), "-o", str(output), "--model", model, *FAST], capfd, caplog)
        check_outcome(code, text, source, output, f"image {name}")
        if code == 0:
            assert cv2.imread(str(output)) is not None, name
        if name in ("empty.jpg", "text.png"):
            assert code == 2 and "not a readable image" in text, text


def test_a_folder_of_broken_images_reports_the_decoders_warnings_once(tmp_path, photo, model, capfd, caplog):
    jpeg, png = photo
    folder, output, stats = tmp_path / "in", tmp_path / "out", tmp_path / "stats.json"
    folder.mkdir()
    for name, data in {**broken_images(jpeg, png), "good.jpg": jpeg}.items():
        (folder / name).write_bytes(data)
    code, text = run(["process", str(folder), "-o", str(output), "--model", model, "--stats", str(stats), *FAST],
                     capfd, caplog)
    assert code == 0, text
    check_outcome(code, text, folder, output / "none", "folder")
    assert "Corrupt JPEG" not in text and "libpng" not in text
    report = json.loads(stats.read_text())
    assert report["decoder_warnings"] >= 1
    assert "the decoders warned" in text
    skipped = {sorted(folder.iterdir())[i].name for i in report["frames_failed_to_decode"]}
    assert {"empty.jpg", "text.png"} <= skipped and "good.jpg" not in skipped
    assert sorted(p.name for p in output.iterdir()) == sorted(set(p.name for p in folder.iterdir()) - skipped)


def clip_with_bad_metadata(path: Path) -> Path:
    """A clip whose title is not valid UTF-8 (same length, so the file's structure is untouched)."""
    mark = b"UNVEIL-TITLE-MARK"
    with av.open(str(path), "w") as container:  # PyAV writes only valid text: the title is damaged afterwards
        container.metadata["title"] = mark.decode()
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        for index in range(8):
            frame = np.full((48, 64, 3), 30 * index, np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")))
        container.mux(video.encode(None))
    data = path.read_bytes()
    assert data.count(mark) == 1
    path.write_bytes(data.replace(mark, b"\xff\xfe\xc3(" + mark[4:]))
    return path


def clip_without_a_decodable_frame(path: Path) -> Path:
    """A clip whose container is intact and whose every video packet is zeros: nothing can be decoded."""
    make_clip(path, frames=8, width=64, height=48)
    with open(path, "r+b") as file:
        for packet in stream_packets(path, "video"):
            file.seek(packet.position)
            file.write(bytes(len(packet.data)))
    return path


def test_damaged_metadata_alone_is_processed(tmp_path, model, capfd, caplog):
    clip = clip_with_bad_metadata(tmp_path / "title.mp4")
    with pytest.raises(UnicodeDecodeError):  # what PyAV does by default, and why the file used to be refused
        av.open(str(clip)).close()
    output, symmetric = tmp_path / "out.mp4", tmp_path / "sym.mp4"
    code, text = run(["process", str(clip), "-o", str(output), "--model", model, *FAST], capfd, caplog)
    assert code == 0, text
    assert decoded_frames(output) == 8
    code, text = run(["symmetrize", str(clip), "-o", str(symmetric), "--no-progress"], capfd, caplog)
    assert code == 0 and decoded_frames(symmetric) == 8, text
    code, text = run(["live", "--source", str(clip), "--headless", "--seconds", "1", "--model", model, *FAST],
                     capfd, caplog)
    assert code == 0 and "Traceback" not in text, text


@pytest.mark.parametrize("command", ["process", "symmetrize", "live"])
def test_a_clip_without_a_decodable_frame_is_one_error_line_in_every_command(command, tmp_path, model, capfd, caplog):
    clip = clip_without_a_decodable_frame(tmp_path / "zeros.mp4")
    output = tmp_path / "out.mp4"
    argv = {"process": ["process", str(clip), "-o", str(output), "--model", model, *FAST],
            "symmetrize": ["symmetrize", str(clip), "-o", str(output), "--no-progress"],
            "live": ["live", "--source", str(clip), "--headless", "--seconds", "5", "--model", model, *FAST]}[command]
    code, text = run(argv, capfd, caplog)
    assert code == 2, text
    check_outcome(code, text, clip, output, command)
    assert "no decodable video frame" in text, text


def test_batch_fails_the_damaged_clip_alone_and_says_why(tmp_path, model, capfd, caplog):
    inputs = tmp_path / "in"
    inputs.mkdir()
    clip_with_bad_metadata(inputs / "title.mp4")
    clip_without_a_decodable_frame(inputs / "zeros.mp4")
    out = tmp_path / "out"
    code, text = run(["batch", str(inputs), "-o", str(out), "--model", model, "--workers", "1", *FAST], capfd, caplog)
    assert "Traceback" not in text, text
    records = {Path(r["input"]).name: r for r in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())}
    assert records["title.mp4"]["status"] == "done" and records["title.mp4"]["frames"] == 8
    assert records["zeros.mp4"]["status"] == "failed" and "no decodable video frame" in records["zeros.mp4"]["error"]
    assert decoded_frames(out / "title.mp4") == 8 and not (out / "zeros.mp4").exists()
    assert not list(out.glob(".*unveil-partial*"))
    assert code != 0
