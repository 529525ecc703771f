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


CROP = 128  # the hand tests draw at the runtime's crop size


def upright_hand(cx: float = 64.0, wrist_y: float = 100.0, palm: float = 30.0) -> np.ndarray:
    """21 landmarks of an open right hand, fingers up: wrist, thumb chain to the left, four fingers."""
    points = np.zeros((21, 2), np.float32)
    points[0] = (cx, wrist_y)
    bases = [cx - 0.45 * palm, cx - 0.15 * palm, cx + 0.1 * palm, cx + 0.35 * palm]
    for k, chain in enumerate(((5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))):
        for j, index in enumerate(chain):
            points[index] = (bases[k], wrist_y - palm - j * 0.3 * palm)
    for j, index in enumerate((1, 2, 3, 4)):
        points[index] = (cx - 0.4 * palm - j * 0.2 * palm, wrist_y - 0.3 * palm - j * 0.2 * palm)
    points[9] = (bases[1] + 0.1 * palm, wrist_y - palm)  # the middle finger's base: palm length from the wrist
    return points


def test_hand_silhouette_covers_the_palm_edge_and_the_wrist():
    from realtime.find.hands import hand_silhouette

    hand = upright_hand()
    identity = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    without_arm = hand_silhouette([hand], identity, CROP, forearm=0.0)
    with_arm = hand_silhouette([hand], identity, CROP, forearm=0.5)
    below_wrist = (64, 110)  # (x, y): a third of a palm length down the arm
    assert with_arm[below_wrist[1], below_wrist[0]] and not without_arm[below_wrist[1], below_wrist[0]]
    # beside the little finger's base, within half a finger's width of the joint: palm, not background
    assert without_arm[int(hand[17][1]), int(hand[17][0] + 3)]
    assert not without_arm[5, 5]


def test_refinement_fits_the_silhouette_to_the_hand_pixels():
    from realtime.find.hands import refine_to_pixels

    rng = np.random.default_rng(0)
    image = np.clip(rng.normal((150, 120, 110), 6, (CROP, CROP, 3)), 0, 255).astype(np.uint8)  # a bluish-grey face
    truth = np.zeros((CROP, CROP), np.uint8)
    cv2.ellipse(truth, (64, 64), (22, 34), 0, 0, 360, 1, -1)
    truth = truth.astype(bool)
    image[truth] = np.clip(rng.normal((90, 140, 200), 6, (int(truth.sum()), 3)), 0, 255).astype(np.uint8)
    too_big = cv2.dilate(truth.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    refined = refine_to_pixels(image, too_big, band=6)

    def iou(a, b):
        return (a & b).sum() / (a | b).sum()

    assert iou(refined, truth) > iou(too_big, truth) + 0.05
    ring = cv2.dilate(too_big.astype(np.uint8), np.ones((13, 13), np.uint8)).astype(bool)
    assert not (refined & ~ring).any()  # never farther from the landmarks' shape than the band
    tiny = np.zeros((CROP, CROP), bool)
    tiny[10:14, 10:14] = True
    assert np.array_equal(refine_to_pixels(image, tiny, band=6), tiny)


def test_found_by_names_the_evidence_of_each_decided_pixel():
    from realtime.find.decide import EVIDENCE_CODE, found_by

    probability = np.zeros((S, S), np.float32)
    probability[0:20, 0:20] = 0.9                    # segmenter only
    probability[30:40, 30:40] = 0.9                  # segmenter and hands
    hands = square(30, 40, 30, 50) | square(50, 60, 0, 10)  # hands only at [30:40, 40:50] and [50:60, 0:10]
    mask = (square(0, 20, 0, 20) | square(30, 40, 30, 50) | square(50, 60, 0, 10) | square(0, 10, 50, 60)
            ).astype(np.float32)                     # [0:10, 50:60]: on only by persistence
    codes = found_by(mask, probability, hands, 0.5, grow=0)
    assert codes[5, 5] == EVIDENCE_CODE["segmenter"] and codes[35, 35] == EVIDENCE_CODE["both"]
    assert codes[35, 45] == EVIDENCE_CODE["hands"] and codes[55, 5] == EVIDENCE_CODE["hands"]
    assert codes[5, 55] == EVIDENCE_CODE["held"] and codes[25, 25] == 0
    grown = found_by(np.maximum(mask, square(20, 22, 0, 20).astype(np.float32)), probability, hands, 0.5, grow=2)
    assert grown[21, 5] == EVIDENCE_CODE["segmenter"]  # the fringe takes its neighbour's evidence


def test_evidence_in_frame_puts_each_face_code_at_its_pixels():
    from realtime.frame import Face
    from realtime.find.evidence_map import evidence_in_frame

    image = np.zeros((80, 100, 3), np.uint8)
    codes = np.zeros((S, S), np.uint8)
    codes[10:20, 10:20] = 3
    shift = np.array([[1.0, 0, -20], [0, 1.0, -5]])  # crop = frame shifted by (20, 5)
    face = Face(box=np.array([20, 5, 84, 69], np.float32), score=1.0, matrix=shift, found_by=codes)
    frame = Frame(index=0, image=image, faces=[face])
    out = evidence_in_frame(frame)
    assert out[15 + 5, 15 + 20] == 3 and out[0, 0] == 0 and out.shape == (80, 100)
    assert evidence_in_frame(Frame(index=0, image=image)) is None


def _face_on_a_circle(centre=(100.0, 100.0), radius=50.0) -> np.ndarray:
    """468 mesh points whose face-oval points lie on a circle (the rest at its centre)."""
    from realtime.regions import FACE_OVAL

    points = np.tile(np.array(centre, np.float32), (468, 1))
    angles = np.linspace(0, 2 * np.pi, len(FACE_OVAL), endpoint=False)
    points[list(FACE_OVAL)] = np.stack([centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles)], 1)
    return points


def _hand_from(wrist, length=60.0) -> np.ndarray:
    """21 hand landmarks: the wrist, then the joints spread upwards over `length` pixels."""
    hand = np.zeros((21, 2), np.float32)
    hand[0] = wrist
    for i in range(1, 21):
        hand[i] = (wrist[0] + (i % 5 - 2) * 6.0, wrist[1] - length * (1 + i // 5) / 5.0)
    return hand


def test_a_hand_counts_for_a_face_only_with_its_wrist_well_outside_the_face_oval_and_a_hand_sized_palm():
    from realtime.find.hands import in_front_of_face

    face = _face_on_a_circle()               # face width (cheek to cheek) about 100 px
    width = float(np.linalg.norm(face[234] - face[454]))
    from_below = _hand_from((100.0, 180.0), 90)  # wrist 0.3 face widths under the chin, fingers up over the mouth
    inside = _hand_from((100.0, 120.0), 30)   # the whole "hand" inside the oval: a mouth read as a hand
    at_edge = _hand_from((100.0, 155.0), 90)  # wrist just outside the chin line: a jaw read as one
    tiny = _hand_from((100.0, 180.0), 12)     # a "hand" with a palm a tenth of the face wide
    assert 0.3 < float(np.linalg.norm(from_below[9] - from_below[0])) / width
    kept = in_front_of_face([from_below, inside, at_edge, tiny], face)
    assert len(kept) == 1 and np.array_equal(kept[0], from_below)
    assert len(in_front_of_face([from_below, at_edge], face, wrist_beyond=0.0)) == 2
    assert len(in_front_of_face([tiny], face, min_palm=0.0)) == 1
    assert in_front_of_face([], face) == []


def test_a_small_region_only_the_segmenter_marks_is_dropped_unless_a_hand_or_overlay_is_in_it():
    probability = np.zeros((S, S), np.float32)
    probability[10:14, 10:18] = 0.99      # 32 px: the size of a glasses-frame corner the segmenter fires on
    probability[30:45, 30:45] = 0.99      # 225 px: an occluder
    region = np.ones((S, S), bool)
    config = FindConfig(video=False, min_area=0.001, min_area_alone=0.02)   # 82 px here
    _, on = decide(probability, np.zeros((S, S), bool), region, 0.5, None, config)
    assert not on[10:14, 10:18].any() and on[30:45, 30:45].all()
    hand = square(11, 12, 11, 12)         # a hand (or an overlay) pixel inside the small region keeps it
    _, on = decide(probability, hand, region, 0.5, None, config)
    assert on[10:14, 10:18].all()
    _, on = decide(probability, np.zeros((S, S), bool), region, 0.5, None, replace(config, min_area_alone=0.0))
    assert on[10:14, 10:18].all()
