"""`unveil symmetrize` (issue #17) with the landmark method: photos, folders, videos, crops, scores, bad input."""
from __future__ import annotations

import csv
import json
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from cli.main import main
from realtime.symmetrize import mirror_error
from tests.video_clips import stream_packets, video_frame_times, write_tone

RATE = Fraction(25)


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def read_rows(path: Path) -> list[dict]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def face_photo(tmp_path_factory, astronaut_bgr) -> Path:
    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    cv2.imwrite(str(path), cv2.resize(astronaut_bgr[0:320, 80:400], (240, 240), interpolation=cv2.INTER_AREA))
    return path


def test_photo_gets_a_symmetric_face_and_a_score(tmp_path, face_photo, capsys):
    out = tmp_path / "sym.png"
    code, text = run_cli(["symmetrize", str(face_photo), "-o", str(out)], capsys)
    assert code == 0, text
    rows = read_rows(tmp_path / "sym.png.asymmetry.csv")
    assert len(rows) == 1 and rows[0]["source"] == "astronaut.png" and rows[0]["method"] == "landmark"
    assert 0.0 < float(rows[0]["asymmetry"]) < 30.0
    source, result = cv2.imread(str(face_photo)), cv2.imread(str(out))
    assert result.shape == source.shape
    assert float(rows[0]["change"]) > 1.0                       # the face changed
    assert np.array_equal(result[:6, :6], source[:6, :6])      # far from the face nothing did


def test_crops_are_symmetric_and_json_scores(tmp_path, face_photo, capsys):
    crops, scores = tmp_path / "crops", tmp_path / "scores.json"
    code, text = run_cli(["symmetrize", str(face_photo), "-o", str(crops), "--crops", "--scores", str(scores)], capsys)
    assert code == 0, text
    crop = cv2.imread(str(crops / "astronaut_face0.png"))
    assert crop.shape == (128, 128, 3)
    report = json.loads(scores.read_text())
    assert report["summary"]["faces"] == 1 and len(report["faces"]) == 1
    assert report["faces"][0]["mirror_error"] < 2.0            # grey levels, on the face
    centre = np.zeros((128, 128), bool)
    centre[45:95, 44:84] = True                                 # eyes, nose and mouth
    assert mirror_error(crop, centre) * 255.0 < 3.0


def test_folder_with_a_faceless_and_a_broken_image(tmp_path, face_photo, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), cv2.imread(str(face_photo)))
    cv2.imwrite(str(folder / "b.png"), np.full((80, 80, 3), 120, np.uint8))
    (folder / "c.png").write_bytes(b"not an image")
    out, heat = tmp_path / "out", tmp_path / "heat"
    code, text = run_cli(["symmetrize", str(folder), "-o", str(out), "--heatmap", str(heat), "--no-progress"], capsys)
    assert code == 0, text
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "asymmetry.csv", "b.png"]
    assert np.array_equal(cv2.imread(str(out / "b.png")), cv2.imread(str(folder / "b.png")))
    rows = read_rows(out / "asymmetry.csv")
    assert [r["source"] for r in rows] == ["a.png"]
    heat_image = cv2.imread(str(heat / "a.png"))
    assert np.abs(heat_image.astype(int) - cv2.imread(str(folder / "a.png"))).mean() > 1.0


@pytest.mark.slow
def test_video_keeps_frames_timestamps_and_audio(tmp_path, face_photo, capsys):
    clip = tmp_path / "face.mp4"
    face = cv2.imread(str(face_photo))
    with av.open(str(clip), "w") as container:
        video = container.add_stream("libx264", rate=RATE)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        sound = container.add_stream("aac", rate=16000)
        sound.layout = "mono"
        for i in range(5):
            frame = np.full((240, 320, 3), 90, np.uint8)
            frame[:, 40 + i * 2:280 + i * 2] = face
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")))
        container.mux(video.encode(None))
        write_tone(container, sound, seconds=Fraction(5) / RATE)
    out = tmp_path / "out.mp4"
    code, text = run_cli(["symmetrize", str(clip), "-o", str(out), "--scores", str(tmp_path / "s.csv")], capsys)
    assert code == 0, text
    assert video_frame_times(out) == video_frame_times(clip)
    assert [p.data for p in stream_packets(out, "audio")] == [p.data for p in stream_packets(clip, "audio")]
    rows = read_rows(tmp_path / "s.csv")
    assert [int(r["frame"]) for r in rows] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("extra, message", [
    (["--scores", "x.txt"], "must end in .csv or .json"),
    (["--method", "vae", "--model", "missing.onnx"], "neither a file nor a shipped model"),
])
def test_bad_options_give_one_error_line(tmp_path, face_photo, capsys, extra, message):
    code, text = run_cli(["symmetrize", str(face_photo), "-o", str(tmp_path / "o.png")] + extra, capsys)
    assert code == 2 and text.strip().startswith("unveil: error:") and message in text
    assert "Traceback" not in text and len(text.strip().splitlines()) == 1
    assert not (tmp_path / "o.png").exists()


def test_missing_input_and_unwritable_output(tmp_path, face_photo, capsys):
    code, text = run_cli(["symmetrize", str(tmp_path / "nope.jpg"), "-o", str(tmp_path / "o.jpg")], capsys)
    assert code == 2 and "does not exist" in text
    code, text = run_cli(["symmetrize", str(face_photo), "-o", str(tmp_path / "no" / "dir" / "o.png")], capsys)
    assert code == 2 and text.startswith("unveil: error:")


@pytest.mark.slow
def test_symmetrize_runs_without_torch():
    import subprocess
    import sys

    code = ("import sys\nsys.modules['torch'] = None\nfrom cli.main import main\nimport cli.symmetrize, "
            "realtime.symmetrize, gui.overlay\nprint(sorted(k for k in sys.modules if k.split('.')[0] in "
            "('torch', 'trainer', 'exporters') and sys.modules[k] is not None))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
