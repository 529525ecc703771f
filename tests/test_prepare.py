"""`unveil prepare` on a tiny made-up folder: counts, skip report, resume, identity-disjoint split, round trip."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from realtime.align import template_points
from realtime.detect import DetectorConfig, FaceDetector
from realtime.errors import UnveilError
from trainer import prepare as prep
from trainer.prepare import LANDMARK_INDICES, PrepareConfig, align_face, landmark_mirror, prepare

FACE_FILES = ["a_face.jpg", "b_face.jpg", "c_face.png", "d_face.jpg", "e_face.jpg"]
IDENTITIES = {"a_face.jpg": "7", "b_face.jpg": "7", "c_face.png": "8", "d_face.jpg": "9", "e_face.jpg": "10"}
CONFIG = PrepareConfig(crop_size=64, val_fraction=0.4, seed=1)


def face_variants(astronaut_bgr: np.ndarray) -> list[np.ndarray]:
    """Five versions of one face: resized, re-cropped, brighter, rotated, mirrored."""
    base = cv2.resize(astronaut_bgr, (256, 256), interpolation=cv2.INTER_AREA)
    shifted = cv2.resize(astronaut_bgr[20:480, 10:470], (240, 240), interpolation=cv2.INTER_AREA)
    brighter = cv2.convertScaleAbs(base, alpha=1.0, beta=25)
    rotated = cv2.warpAffine(base, cv2.getRotationMatrix2D((128, 128), 6, 1.0), (256, 256), borderMode=cv2.BORDER_REFLECT)
    return [base, shifted, brighter, rotated, base[:, ::-1].copy()]


@pytest.fixture(scope="module")
def images_dir(tmp_path_factory, astronaut_bgr) -> Path:
    folder = tmp_path_factory.mktemp("images")
    for name, image in zip(FACE_FILES, face_variants(astronaut_bgr)):
        cv2.imwrite(str(folder / name), image)
    rng = np.random.default_rng(0)
    sky = cv2.GaussianBlur(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), (0, 0), 3)
    cv2.imwrite(str(folder / "f_sky.jpg"), cv2.resize(sky, (200, 200)))               # readable, no face
    (folder / "g_corrupt.jpg").write_bytes(b"this is not a jpeg" + rng.bytes(300))      # undecodable
    whole = cv2.imencode(".jpg", astronaut_bgr)[1].tobytes()
    (folder / "h_truncated.jpg").write_bytes(whole[: len(whole) // 2])                  # cut off mid-stream
    (folder / "notes.txt").write_text("not an image, not counted")
    return folder


@pytest.fixture(scope="module")
def identity_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ids") / "identity.csv"
    path.write_text("file,identity\n" + "".join(f"{f},{i}\n" for f, i in IDENTITIES.items()))
    return path


@pytest.fixture(scope="module")
def detector():
    d = FaceDetector(DetectorConfig(max_faces=1))
    yield d
    d.close()


class CountingDetector:
    """The real detector, counting calls; optionally interrupts after `stop_after` calls like a Ctrl-C would."""

    def __init__(self, inner: FaceDetector, stop_after: int | None = None):
        self.inner, self.calls, self.stop_after = inner, 0, stop_after

    def detect(self, image):
        if self.stop_after is not None and self.calls >= self.stop_after:
            raise KeyboardInterrupt
        self.calls += 1
        return self.inner.detect(image)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, images_dir, identity_csv, detector) -> tuple[Path, prep.PrepareReport, dict]:
    out = tmp_path_factory.mktemp("ds") / "faces"
    report, meta = prepare(images_dir, out, CONFIG, identity_csv, detector=detector, progress=False)
    return out, report, meta


def test_counts_and_skip_report(dataset):
    out, report, meta = dataset
    assert (report.images, report.faces, report.no_face, report.unreadable) == (8, 5, 1, 2)
    assert meta["counts"]["faces"] == 5 and meta["counts"]["no_face"] == 1 and meta["counts"]["unreadable"] == 2
    skipped = dict(report.skipped)
    assert set(skipped) == {"f_sky.jpg", "g_corrupt.jpg", "h_truncated.jpg"}
    assert skipped["f_sky.jpg"] == "no face found" and skipped["h_truncated.jpg"] == "not a decodable image"
    text = prep.format_report(report, meta, out)
    assert "5 faces, 1 without a usable face, 2 unreadable" in text and "g_corrupt.jpg" in text


def test_split_is_identity_disjoint_and_deterministic(dataset, tmp_path, images_dir, identity_csv, detector):
    out, _, meta = dataset
    index = np.load(out / "index.npz")
    val, ids = index["val"], index["identities"]
    assert val.any() and (~val).any()
    assert not set(ids[val]) & set(ids[~val])
    assert set(ids) == {"7", "8", "9", "10"}
    assert meta["counts"]["train"] + meta["counts"]["val"] == 5
    # Same seed again (a fresh folder): the same split.
    again = tmp_path / "again"
    prepare(images_dir, again, CONFIG, identity_csv, detector=detector, progress=False)
    assert np.array_equal(np.load(again / "index.npz")["val"], val)


def test_split_without_identity_file_is_by_file():
    files = [f"{i}.jpg" for i in range(50)]
    val = prep.split_validation(files, 0.2, seed=5)
    assert val.sum() == 10
    assert np.array_equal(val, prep.split_validation(files, 0.2, seed=5))
    assert not np.array_equal(val, prep.split_validation(files, 0.2, seed=6))


def test_round_trip_of_crops_and_landmarks(dataset, images_dir, detector):
    from trainer.data import FaceStore

    out, _, _ = dataset
    store = FaceStore(out)
    assert len(store) == 5
    for i in range(len(store)):
        image = cv2.imread(str(images_dir / store.file(i)))
        crop_bgr, points = align_face(image, detector.detect(image)[0].landmarks, CONFIG)
        stored = store.image(i)
        assert stored.shape == (64, 64, 3) and stored.dtype == np.uint8
        assert cv2.PSNR(cv2.cvtColor(stored, cv2.COLOR_RGB2BGR), crop_bgr) > 30  # JPEG q80, colour order kept
        assert cv2.PSNR(stored, crop_bgr) < cv2.PSNR(cv2.cvtColor(stored, cv2.COLOR_RGB2BGR), crop_bgr)
        np.testing.assert_allclose(store.landmarks(i), points, atol=0.05)
    # The alignment puts the five template points where the template says (here: the image-left eye).
    eye = store.landmarks(0)[[LANDMARK_INDICES.index(33), LANDMARK_INDICES.index(133)]].mean(0)
    assert np.linalg.norm(eye - template_points(64, "unveil5", 0.15)[0]) < 3.0


def test_resume_does_not_redo_done_files(tmp_path, images_dir, identity_csv, detector):
    out = tmp_path / "resumable"
    first = CountingDetector(detector, stop_after=3)
    with pytest.raises(KeyboardInterrupt):
        prepare(images_dir, out, CONFIG, identity_csv, detector=first, progress=False)
    assert not json.loads((out / "meta.json").read_text())["complete"]
    done_before = len((out / "journal.jsonl").read_text().splitlines())
    # A crash in the middle of a write: a torn face and a torn journal line must be cut back.
    with (out / "faces.bin").open("ab") as f:
        f.write(b"\xff\xd8 half a face")
    with (out / "journal.jsonl").open("ab") as f:
        f.write(b'{"f":"e_face.jpg","s":"o')
    second = CountingDetector(detector)
    report, meta = prepare(images_dir, out, CONFIG, identity_csv, detector=second, progress=False)
    readable = 6  # five faces + the sky; the detector never sees unreadable files
    assert second.calls == readable - first.calls
    assert report.resumed == done_before and report.processed == 8 - done_before
    assert report.faces == 5 and meta["complete"]
    index = np.load(out / "index.npz")
    assert (out / "faces.bin").stat().st_size == int(index["lengths"].sum())
    assert sorted(index["files"]) == sorted(FACE_FILES)
    # Finished: a third run finds nothing to do.
    third = CountingDetector(detector)
    report3, _ = prepare(images_dir, out, CONFIG, identity_csv, detector=third, progress=False)
    assert third.calls == 0 and report3.faces == 5 and report3.processed == 0


def test_limit_then_more(tmp_path, images_dir, detector):
    out = tmp_path / "limited"
    report, meta = prepare(images_dir, out, PrepareConfig(crop_size=64, limit=2), detector=detector, progress=False)
    assert report.faces == 2 and meta["split"]["by"] == "file"
    counting = CountingDetector(detector)
    report, _ = prepare(images_dir, out, PrepareConfig(crop_size=64, limit=4), detector=counting, progress=False)
    assert counting.calls == 2 and report.faces == 4


def test_other_settings_refuse_to_resume(dataset, images_dir, detector):
    out, _, _ = dataset
    with pytest.raises(UnveilError, match="other settings"):
        prepare(images_dir, out, PrepareConfig(crop_size=96), detector=detector, progress=False)


def test_bad_inputs_raise_clear_errors(tmp_path, detector):
    with pytest.raises(UnveilError, match="not found"):
        prepare(tmp_path / "missing", tmp_path / "out", CONFIG, detector=detector, progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnveilError, match="no image files"):
        prepare(tmp_path / "empty", tmp_path / "out", CONFIG, detector=detector, progress=False)
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("name,person\nx.jpg,1\n")
    with pytest.raises(UnveilError, match="file,identity"):
        prep.read_identities(bad_csv)


def test_mirror_pairs_match_the_face_mesh_on_a_flipped_face(astronaut_bgr, detector):
    mirror = landmark_mirror()
    assert np.array_equal(mirror[mirror], np.arange(len(LANDMARK_INDICES)))
    image = cv2.resize(astronaut_bgr, (256, 256), interpolation=cv2.INTER_AREA)
    points = detector.detect(image)[0].landmarks[list(LANDMARK_INDICES)]
    flipped = detector.detect(image[:, ::-1].copy())[0].landmarks[list(LANDMARK_INDICES)]
    from trainer.data import flip_face

    _, predicted = flip_face(image, points, mirror)   # where the mesh should put each point on the flipped face
    eye_distance = np.linalg.norm(points[LANDMARK_INDICES.index(33)] - points[LANDMARK_INDICES.index(263)])
    error = np.linalg.norm(predicted - flipped, axis=1) / eye_distance
    assert error.mean() < 0.04
    unpaired = np.linalg.norm(points - flipped, axis=1).mean() / eye_distance  # without the mirror permutation
    assert unpaired > 3 * error.mean()


def test_cli_run(tmp_path, images_dir, capsys):
    parser = argparse.ArgumentParser()
    prep.add_arguments(parser)
    code = prep.run(parser.parse_args([str(images_dir), "-o", str(tmp_path / "cli"), "--size", "48", "--limit", "3"]))
    assert code == 0
    assert "3 images: 3 faces" in capsys.readouterr().out
    assert json.loads((tmp_path / "cli" / "meta.json").read_text())["crop_size"] == 48


def test_faces_too_small_are_not_usable(tmp_path, images_dir, detector):
    out = tmp_path / "tiny"
    with pytest.raises(UnveilError, match="no usable face"):
        prepare(images_dir, out, PrepareConfig(crop_size=64, limit=2, min_eye_distance=1000), detector=detector,
                progress=False)
    reasons = [json.loads(line)["r"] for line in (out / "journal.jsonl").read_text().splitlines()]
    assert len(reasons) == 2 and all(r.startswith("face too small") for r in reasons)
