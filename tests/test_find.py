"""Find: one occlusion mask per face, decided from evidence, precision first."""
from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import cv2
import numpy as np
import pytest

from realtime.find import FindConfig, connected_to, decide
from realtime.frame import Frame
from realtime.find.hands import hand_mask
from realtime.pipeline import PipelineConfig, build_pipeline
from realtime.regions import face_region, remove_specks
from tests.tiny_models import OCCLUDER_BGR, build_blind_model

S = 64


def square(y0, y1, x0, x1, size=S):
    m = np.zeros((size, size), bool)
    m[y0:y1, x0:x1] = True
    return m


def test_nothing_outside_the_face_region_is_ever_marked():
    probability = np.ones((S, S), np.float32)
    region = square(10, 50, 12, 52)
    _, on = decide(probability, np.zeros((S, S), bool), region, 0.5, None, FindConfig(video=False))
    assert on.any() and not on[~region].any()


def test_specks_are_dropped_and_real_regions_kept():
    probability = np.zeros((S, S), np.float32)
    probability[5, 5] = 1.0            # one pixel
    probability[20:30, 20:30] = 0.9    # a real occluder
    region = np.ones((S, S), bool)
    _, on = decide(probability, np.zeros((S, S), bool), region, 0.5, None, FindConfig(video=False, min_area=0.01))
    assert not on[5, 5] and on[20:30, 20:30].all()


def test_in_video_an_unsure_region_seen_once_never_reaches_the_output():
    config = FindConfig(video=True, persist_frames=2, confident=0.97)
    region = np.ones((S, S), bool)
    blob = np.zeros((S, S), np.float32)
    blob[20:30, 20:30] = 0.9
    none = np.zeros((S, S), bool)
    candidate, on = decide(blob, none, region, 0.5, None, config)           # first frame of the track
    assert candidate.any() and not on.any()
    candidate, on = decide(np.zeros((S, S), np.float32), none, region, 0.5, (candidate, on), config)  # gone
    assert not on.any()
    candidate, on = decide(blob, none, region, 0.5, (candidate, on), config)  # back: seen once again
    assert not on.any()
    _, on = decide(blob, none, region, 0.5, (candidate, on), config)          # seen twice in a row: on
    assert on[20:30, 20:30].all()


def test_a_sure_region_or_a_hand_shows_at_once():
    config = FindConfig(video=True, persist_frames=2, confident=0.97)
    region = np.ones((S, S), bool)
    probability = np.zeros((S, S), np.float32)
    probability[20:30, 20:30] = 0.99
    probability[40:50, 40:50] = 0.8
    hands = square(40, 50, 40, 50)
    _, on = decide(probability, np.zeros((S, S), bool), region, 0.5, None, config)
    assert on[20:30, 20:30].all() and not on[40:50, 40:50].any()
    _, on = decide(probability, hands, region, 0.5, None, config)
    assert on[40:50, 40:50].all()


def test_an_occlusion_stays_on_with_hysteresis_and_grows_at_once():
    config = FindConfig(video=True, off_ratio=0.6)
    region = np.ones((S, S), bool)
    none = np.zeros((S, S), bool)
    prev_on = square(20, 30, 20, 30)
    weaker = np.zeros((S, S), np.float32)
    weaker[20:30, 20:30] = 0.4         # below the threshold, above off_ratio x threshold
    _, on = decide(weaker, none, region, 0.5, (none, prev_on), config)
    assert on[20:30, 20:30].all()
    moved = np.zeros((S, S), np.float32)
    moved[20:30, 24:36] = 0.9          # the occluder slid right: its leading edge shows at once
    _, on = decide(moved, none, region, 0.5, (prev_on, prev_on), config)
    assert on[20:30, 24:36].all()
    gone = np.zeros((S, S), np.float32)
    _, on = decide(gone, none, region, 0.5, (prev_on, prev_on), config)
    assert not on.any()


def test_hands_count_as_occlusion_without_the_finder():
    hand = np.zeros((21, 2), np.float32)
    hand[:, 0] = np.linspace(20, 40, 21)
    hand[:, 1] = np.linspace(30, 10, 21)
    hand[0] = (30, 50)
    mask = hand_mask([hand], np.array([[1.0, 0, 0], [0, 1.0, 0]]), S)
    assert mask.any() and mask[50, 30]
    _, on = decide(np.zeros((S, S), np.float32), mask, np.ones((S, S), bool), 0.5, None, FindConfig(video=False))
    assert np.array_equal(on, remove_specks(mask, int(0.0015 * S * S)))


def test_connected_to_keeps_whole_regions_that_touch_the_seeds():
    mask = square(0, 10, 0, 10) | square(30, 40, 30, 40)
    seeds = np.zeros((S, S), bool)
    seeds[5, 5] = True
    kept = connected_to(mask, seeds)
    assert kept[0:10, 0:10].all() and not kept[30:40, 30:40].any()


def test_face_region_follows_the_mesh_oval(astronaut_bgr):
    from realtime.align import align_to_template, five_points_from_mesh, transform_points
    from realtime.detect import FaceDetector

    with FaceDetector() as detector:
        face = detector.detect(astronaut_bgr)[0]
    matrix = align_to_template(five_points_from_mesh(face.landmarks), 128)
    region = face_region(transform_points(face.landmarks, matrix), 128)
    assert 0.25 < region.mean() < 0.75
    assert region[64, 64] and not region[2, 2] and not region[125, 64]  # the centre is face; corners and neck not


@pytest.fixture(scope="module")
def tiny_finder(tmp_path_factory) -> str:
    return str(build_blind_model(tmp_path_factory.mktemp("find") / "finder.onnx", crop_size=128))


def run_photo(pipeline, image):
    frame = Frame(index=0, image=image)
    for stage in pipeline.stages:
        frame = stage.process(frame)
    return frame


def photo_config(model: str, **find) -> PipelineConfig:
    config = PipelineConfig(models=(model,), provider="cpu", network="none")
    return replace(config, find=replace(config.find, video=False, hands=False, **find),
                   fill=replace(config.fill, memory=replace(config.fill.memory, enabled=False)))


def test_a_clean_face_comes_out_bit_identical_and_a_covered_one_changes_only_on_the_face(tiny_finder, astronaut_bgr):
    pipeline = build_pipeline(photo_config(tiny_finder))
    try:
        clean = run_photo(pipeline, astronaut_bgr)
        assert clean.faces and clean.output is None and np.array_equal(clean.result(), astronaut_bgr)
        covered = astronaut_bgr.copy()
        cv2.rectangle(covered, (205, 120), (245, 150), OCCLUDER_BGR, -1)  # over the face's right cheek and nose
        frame = run_photo(pipeline, covered)
        changed = (frame.result() != covered).any(axis=2)
        assert changed[125:145, 210:240].mean() > 0.9
        face = frame.faces[0]
        x0, y0, x1, y1 = face.fill.box
        outside_oval = np.ones(changed.shape, bool)
        outside_oval[y0:y1, x0:x1] = face.fill.weight == 0
        assert not changed[outside_oval].any()   # hair, clothes, background: never repainted
    finally:
        pipeline.close()


def test_the_threshold_setting_changes_the_output_pixels(tiny_finder, astronaut_bgr):
    """The finder's threshold is decided in one place: moving it changes what is replaced."""
    covered = astronaut_bgr.copy()
    faint = np.array(OCCLUDER_BGR, np.float32) * 0.55 + covered[120:150, 205:245].astype(np.float32) * 0.45
    covered[120:150, 205:245] = faint.astype(np.uint8)  # a half-transparent occluder: the finder is unsure
    replaced = []
    for threshold in (0.02, 0.98):
        pipeline = build_pipeline(photo_config(tiny_finder, threshold=threshold))
        try:
            frame = run_photo(pipeline, covered)
            replaced.append(0 if frame.replaced is None else int((frame.replaced > 0).sum()))
        finally:
            pipeline.close()
    assert replaced[0] > replaced[1]


def run_without_detection(pipeline, image, index):
    """A frame in which the detector found no face."""
    frame = Frame(index=index, image=image, pts=index, time_base=Fraction(1, 25))
    for stage in pipeline.stages:
        if stage.name != "detect":
            frame = stage.process(frame)
    return frame


def test_an_occluded_face_the_detector_loses_is_carried_but_not_across_a_cut(tiny_finder, astronaut_bgr):
    config = PipelineConfig(models=(tiny_finder,), provider="cpu", network="none")
    config = replace(config, find=replace(config.find, hands=False, max_coast=3))
    covered = astronaut_bgr.copy()
    cv2.rectangle(covered, (205, 120), (245, 150), OCCLUDER_BGR, -1)
    pipeline = build_pipeline(config)
    try:
        frame = Frame(index=0, image=covered, pts=0, time_base=Fraction(1, 25))
        for stage in pipeline.stages:
            frame = stage.process(frame)
        assert frame.replaced is not None
        lost = run_without_detection(pipeline, covered, 1)
        assert lost.faces and lost.faces[0].score == 0.0            # carried, not detected
        assert (lost.result()[125:145, 210:240] != OCCLUDER_BGR).any(axis=2).mean() > 0.9
        cut = run_without_detection(pipeline, np.full_like(covered, 90), 2)
        assert not cut.faces and cut.output is None                 # another picture: nothing is painted
    finally:
        pipeline.close()


def test_hands_run_on_every_other_video_frame_and_their_result_is_kept_between():
    from realtime.find.hands import HandsStage

    class CountingHands:
        calls = 0

        def detect(self, image):
            self.calls += 1
            return [np.full((21, 2), float(self.calls), np.float32)]

        def close(self):
            pass

    stage = HandsStage(FindConfig(hands=False, hands_every=2))
    stage.config = FindConfig(hands=True, hands_every=2)
    stage._detector = counting = CountingHands()
    image = np.zeros((32, 32, 3), np.uint8)
    seen = [stage.process(Frame(index=i, image=image)).hands[0][0, 0] for i in range(4)]
    assert counting.calls == 2 and seen == [1.0, 1.0, 2.0, 2.0]
    stage.config = FindConfig(hands=False)
    assert stage.process(Frame(index=4, image=image)).hands == []   # switched off: no hands, no call
    assert counting.calls == 2
