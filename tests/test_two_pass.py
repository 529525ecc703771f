"""Video files use the whole clip: pass 1 gathers every track's clean appearances, pass 2 fills from any moment."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import av
import numpy as np
import pytest

from cli.main import main
from realtime.process import can_read_twice
from tests.test_cli import RATE, face_frame
from tests.tiny_models import build_blind_model
from tests.video_clips import video_frame_times


def covered_then_clean_clip(path: Path, face_bgr: np.ndarray, covered: int = 8, clean: int = 12) -> Path:
    """A bar over the mouth for the first `covered` frames, then the face clean: its mouth is seen only at the end."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=RATE)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        video.options = {"crf": "12"}
        for i in range(covered + clean):
            image = face_frame(face_bgr, i, occluded=i < covered)
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(video.encode(None))
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return str(build_blind_model(tmp_path_factory.mktemp("model") / "tiny.onnx", crop_size=64))


def process_stats(tmp_path: Path, clip: Path, model: str, *extra: str) -> dict:
    out, stats = tmp_path / f"out{len(extra)}.mp4", tmp_path / f"stats{len(extra)}.json"
    assert main(["process", str(clip), "-o", str(out), "--model", model, "--provider", "cpu", "--stats", str(stats),
                 *extra]) == 0
    assert video_frame_times(out) == video_frame_times(clip)  # exact output either way
    return json.loads(stats.read_text())


def test_a_face_seen_clean_only_at_the_end_is_filled_from_the_end(tmp_path, astronaut_bgr, model):
    clip = covered_then_clean_clip(tmp_path / "late.mp4", astronaut_bgr)
    single = process_stats(tmp_path, clip, model, "--single-pass")
    double = process_stats(tmp_path, clip, model)
    assert single["passes"] == 1 and single["filled_pixels"]["memory"] == 0   # the past never saw the mouth
    assert double["passes"] == 2 and double["filled_pixels"]["memory"] > 0    # the end of the clip did
    assert set(double["pass_s"]) == {"gather", "render"} and double["fps_overall"] > 0


def test_only_a_regular_file_is_read_twice(tmp_path):
    regular = tmp_path / "clip.mp4"
    regular.write_bytes(b"x")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert can_read_twice(str(regular))
    assert not can_read_twice(str(fifo)) and not can_read_twice("rtsp://camera/stream")
    assert not can_read_twice(str(tmp_path / "missing.mp4"))


def test_a_source_that_cannot_be_read_twice_runs_one_pass_and_says_so(tmp_path, astronaut_bgr, model, monkeypatch,
                                                                      caplog):
    import realtime.process as process_module

    clip = covered_then_clean_clip(tmp_path / "late.mp4", astronaut_bgr, covered=3, clean=3)
    monkeypatch.setattr(process_module, "can_read_twice", lambda spec: False)
    with caplog.at_level(logging.WARNING, logger="unveil"):
        stats = process_stats(tmp_path, clip, model)
    assert stats["passes"] == 1 and "pass_s" not in stats
    assert sum("cannot be read twice" in r.getMessage() for r in caplog.records) == 1


def test_pass_two_replays_pass_one_detections_instead_of_detecting_again(tmp_path, astronaut_bgr, model, monkeypatch):
    from realtime.detect import FaceDetector

    clip = covered_then_clean_clip(tmp_path / "late.mp4", astronaut_bgr, covered=4, clean=6)
    calls = []
    detect = FaceDetector.detect
    monkeypatch.setattr(FaceDetector, "detect", lambda self, image: calls.append(1) or detect(self, image))
    double = process_stats(tmp_path, clip, model)
    assert double["passes"] == 2 and double["faces"] == 10
    assert len(calls) == 10                                  # pass 1 only: pass 2 replayed its 10 frames
    assert double["filled_pixels"]["memory"] > 0             # and still fills from the clip's end


def test_a_frame_without_recorded_detections_is_detected_again():
    from realtime.frame import Frame
    from realtime.process import Detections, ReplayDetections

    class CountingDetect:
        name = "detect"
        runs = 0

        def process(self, frame):
            self.runs += 1
            frame.faces = []
            return frame

    detect = CountingDetect()
    box, points = np.array([1, 2, 30, 40], np.float32), np.ones((468, 2), np.float32)
    replay = ReplayDetections(detect, {0: Detections([(box, 0.9, points)], [np.zeros((21, 2), np.float32)])})
    first = replay.process(Frame(index=0, image=np.zeros((8, 8, 3), np.uint8)))
    assert detect.runs == 0 and len(first.faces) == 1 and first.faces[0].score == 0.9 and len(first.hands) == 1
    first.faces[0].landmarks += 5                            # the stages after it change their copy only
    again = replay.process(Frame(index=0, image=np.zeros((8, 8, 3), np.uint8)))
    assert np.array_equal(again.faces[0].landmarks, points)
    replay.process(Frame(index=1, image=np.zeros((8, 8, 3), np.uint8)))
    assert detect.runs == 1
