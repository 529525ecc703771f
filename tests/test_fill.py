"""Fill: the person's own pixels first (memory, mirrored half), classical inpainting for thin holes, a network for
the rest; the paste never leaves the face oval."""
from __future__ import annotations

from dataclasses import replace
from fractions import Fraction

import cv2
import numpy as np
import pytest

from realtime.fill import FILLER_CODE, FillConfig, agreeing_regions, colour_offset, thin_parts
from realtime.frame import Frame
from realtime.memory import FaceMemory, MemoryConfig, MemoryEntry
from realtime.mesh_topology import load_topology
from realtime.mesh_warp import mirrored_points, warp_mesh
from realtime.pipeline import PipelineConfig, build_pipeline
from tests.tiny_models import OCCLUDER_BGR, build_blind_model


def test_the_mesh_topology_is_a_mirror_involution_with_triangles_inside_the_face():
    mean, mirror, triangles = load_topology()
    assert mean.shape == (468, 2) and triangles.shape[1] == 3 and len(triangles) > 800
    assert np.array_equal(mirror[mirror], np.arange(468))
    assert mirror[33] == 263 and mirror[61] == 291 and mirror[1] == 1  # eye corners, mouth corners, nose tip
    # a mirrored mesh is the mesh reflected about the face's vertical mid-line
    reflected = mean[mirror].copy()
    reflected[:, 0] = 2 * mean[1, 0] - reflected[:, 0]
    assert np.abs(reflected - mean).mean() < 0.01


def test_a_mesh_warp_onto_the_same_mesh_is_the_identity():
    mean, _, _ = load_topology()
    points = mean * 200 + 20
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (240, 240, 3), np.uint8)
    warped, valid = warp_mesh(image, points, points, (0, 0, 240, 240))
    assert valid.mean() > 0.15
    assert np.abs(warped[valid].astype(int) - image[valid].astype(int)).max() <= 1


def test_a_warp_limited_to_a_hole_is_the_full_warp_there_and_touches_only_the_triangles_it_needs():
    from realtime.mesh_warp import triangles_touching

    mean, _, triangles = load_topology()
    points = mean * 200 + 20
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (240, 240, 3), np.uint8)
    moved = points + rng.normal(0, 1.5, points.shape).astype(np.float32)   # another face's mesh
    hole = np.zeros((240, 240), bool)
    hole[150:175, 95:140] = True                                           # about the mouth
    full, full_valid = warp_mesh(image, points, moved, (0, 0, 240, 240))
    part, part_valid = warp_mesh(image, points, moved, (0, 0, 240, 240), only=hole)
    assert part_valid.any() and not part_valid[~hole].any()
    assert np.array_equal(part_valid, full_valid & hole)
    assert np.array_equal(part[part_valid], full[part_valid])
    used = triangles_touching(moved, triangles, (0, 0, 240, 240), hole)
    assert 0 < len(used) < len(triangles) // 3
    assert len(triangles_touching(moved, triangles, (0, 0, 240, 240), np.zeros_like(hole))) == 0


def test_the_mirror_warp_copies_one_half_onto_the_other():
    mean, _, _ = load_topology()
    points = mean * 200 + 20
    # an image that is exactly symmetric about the mesh's mid-line except for a mark on one side
    axis = points[1, 0]
    xs = np.arange(240)
    row = (128 + 100 * np.cos((xs - axis) / 9.0)).astype(np.uint8)
    image = np.repeat(np.repeat(row[None, :, None], 240, 0), 3, 2).copy()
    symmetric_points = points.copy()
    _, mirror, _ = load_topology()
    symmetric_points[:, 0] = (points[:, 0] + (2 * axis - points[mirror, 0])) / 2   # make the mesh itself symmetric
    symmetric_points[:, 1] = (points[:, 1] + points[mirror, 1]) / 2
    warped, valid = warp_mesh(image, mirrored_points(symmetric_points), symmetric_points, (0, 0, 240, 240))
    assert valid.mean() > 0.15
    assert np.abs(warped[valid].astype(int) - image[valid].astype(int)).mean() < 4


def test_thin_parts_are_strokes_not_blobs():
    hole = np.zeros((100, 100), bool)
    hole[10:14, 10:90] = True      # a 4 px bar
    hole[40:80, 40:80] = True      # a 40 px square
    thin = thin_parts(hole, 3)
    assert thin[10:14, 10:90].all() and not thin[40:80, 40:80].any()


def test_colour_offset_matches_a_shifted_fill_on_the_ring():
    current = np.full((60, 60, 3), 120, np.uint8)
    fill = np.full((60, 60, 3), 100, np.uint8)
    ring = np.zeros((60, 60), bool)
    ring[5:55, 5:10] = True
    offset = colour_offset(current, fill, ring)
    assert np.allclose(offset, 20, atol=0.5)
    assert colour_offset(current, fill, np.zeros((60, 60), bool)) is None


def test_colour_offset_is_exact_on_the_ring_and_smooth_between():
    current = np.zeros((64, 64, 3), np.uint8)
    current[:, 32:] = 30                   # the light changes across the face
    fill = np.zeros((64, 64, 3), np.uint8)
    ring = np.zeros((64, 64), bool)
    ring[:, :4] = ring[:, -4:] = True
    offset = colour_offset(current, fill, ring)
    assert np.allclose(offset[:, :4], 0, atol=0.5) and np.allclose(offset[:, -4:], 30, atol=0.5)
    middle = offset[32, 4:-4, 0]
    assert np.all(np.diff(middle) >= -0.5) and 3 < middle.mean() < 27   # a ramp between, not a step


def test_memory_is_bounded_replaces_the_same_pose_and_keeps_what_knows_most():
    def entry(key, index, known=16):
        mask = np.zeros((4, 4), bool)
        mask.ravel()[:known] = True
        return MemoryEntry(np.zeros((4, 4, 3), np.uint8), np.zeros((468, 2), np.float32), mask,
                           np.array(key, np.float64), index)

    memory = FaceMemory(MemoryConfig(max_entries=3, key_radius=0.05))
    for i in range(3):
        memory.remember(entry([i * 0.1, 0, 0, 0, 0], i, known=16 - 2 * i))
    memory.remember(entry([0.5, 0, 0, 0, 0], 3, known=10))     # full, and it knows less than all: not kept
    assert [e.index for e in memory.entries] == [0, 1, 2]
    memory.remember(entry([0.101, 0, 0, 0, 0], 7, known=13))   # same pose, knows less than entry 1: ignored
    assert [e.index for e in memory.entries] == [0, 1, 2]
    memory.remember(entry([0.6, 0, 0, 0, 0], 4, known=16))     # knows more than the weakest (index 2): replaces it
    assert sorted(e.index for e in memory.entries) == [0, 1, 4]
    memory.remember(entry([0.101, 0, 0, 0, 0], 5, known=8))    # same pose, half hidden: the whole one stays
    assert sorted(e.index for e in memory.entries) == [0, 1, 4]
    memory.remember(entry([0.101, 0, 0, 0, 0], 6, known=14))   # same pose, as well known: newer wins
    assert sorted(e.index for e in memory.entries) == [0, 4, 6]
    assert memory.nearest(np.array([0.58, 0, 0, 0, 0]), 2) == [[e.index for e in memory.entries].index(4),
                                                                [e.index for e in memory.entries].index(6)]


@pytest.fixture(scope="module")
def tiny_finder(tmp_path_factory) -> str:
    return str(build_blind_model(tmp_path_factory.mktemp("fill") / "finder.onnx", crop_size=128))


def video_pipeline(model: str, order=("memory", "mirror", "network", "inpaint")):
    config = PipelineConfig(models=(model,), provider="cpu", network="none")
    config = replace(config, find=replace(config.find, hands=False, persist_frames=1),
                     fill=FillConfig(order=order, memory=MemoryConfig(every=1)))
    return build_pipeline(config)


def run(pipeline, image, index):
    frame = Frame(index=index, image=image, pts=index, time_base=Fraction(1, 25))  # landmark smoothing by pts
    for stage in pipeline.stages:
        frame = stage.process(frame)
    return frame


def covered(image, box=(205, 118, 240, 150)):
    """The astronaut with an occluder: by default over the nose and the cheek beside it."""
    out = image.copy()
    cv2.rectangle(out, box[:2], box[2:], OCCLUDER_BGR, -1)
    return out


ONE_SIDE = (236, 112, 260, 136)   # the image-right cheek only: its mirror twin (left cheek) is visible


def in_hole_psnr(a, b, hole):
    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2)[hole].mean()
    return 10 * np.log10(255.0**2 / mse)


def test_a_face_seen_clean_is_filled_from_memory_and_beats_inpainting(tiny_finder, astronaut_bgr):
    occluded = covered(astronaut_bgr)
    hole = (occluded != astronaut_bgr).any(axis=2)
    pipeline = video_pipeline(tiny_finder)
    try:
        for i in range(3):
            assert run(pipeline, astronaut_bgr, i).output is None   # clean: untouched, and remembered
        frame = run(pipeline, occluded, 3)
    finally:
        pipeline.close()
    fill = frame.faces[0].fill
    x0, y0, x1, y1 = fill.box
    used = np.bincount(fill.source[fill.weight > 0], minlength=5)
    assert used[FILLER_CODE["memory"]] > 0.8 * used[1:].sum()
    telea = cv2.inpaint(occluded, hole.astype(np.uint8), 3, cv2.INPAINT_TELEA)
    assert in_hole_psnr(frame.result(), astronaut_bgr, hole) > in_hole_psnr(telea, astronaut_bgr, hole) + 3


def test_while_the_pose_holds_the_fill_warps_only_its_chosen_entry_and_tries_the_others_every_recheck_frames(
        tiny_finder, astronaut_bgr, monkeypatch):
    from realtime.fill import FillStage

    occluded = covered(astronaut_bgr)
    pipeline = video_pipeline(tiny_finder)
    warps: list[int] = []
    original = FillStage._warped
    monkeypatch.setattr(FillStage, "_warped", lambda self, *a: warps.append(len(warps)) or original(self, *a))
    try:
        for i in range(3):
            run(pipeline, astronaut_bgr, i)
        fill_stage = pipeline.stage("fill")
        memory = next(iter(fill_stage.memories.values()))
        first = memory.entries[0]
        for shift in (0.05, 0.1):   # two more poses of the same face
            memory.entries.append(replace(first, key=first.key + shift))
        recheck = fill_stage.config.memory.recheck
        per_frame = []
        for i in range(3, 3 + recheck + 1):
            before = len(warps)
            frame = run(pipeline, occluded, i)
            per_frame.append(len(warps) - before)
            assert frame.faces[0].fill is not None
    finally:
        pipeline.close()
    assert per_frame[0] == 3 and per_frame[-1] == 3          # every candidate tried, then again after `recheck`
    assert set(per_frame[1:-1]) == {1}                        # in between only the chosen entry is warped


def test_without_memory_the_mirrored_half_fills_and_records_it(tiny_finder, astronaut_bgr):
    occluded = covered(astronaut_bgr, ONE_SIDE)
    pipeline = video_pipeline(tiny_finder, order=("mirror", "inpaint"))
    try:
        frame = run(pipeline, occluded, 0)
    finally:
        pipeline.close()
    fill = frame.faces[0].fill
    used = np.bincount(fill.source[fill.weight > 0], minlength=5)
    assert used[FILLER_CODE["mirror"]] > used[FILLER_CODE["inpaint"]]
    assert pipeline.stage("fill").filled_pixels()["mirror"] == used[FILLER_CODE["mirror"]]
    assert not (frame.result()[114:134, 238:258] == OCCLUDER_BGR).all(axis=2).any()


def test_a_reference_photo_seeds_the_memory(tiny_finder, astronaut_bgr, tmp_path):
    reference = tmp_path / "me.png"
    cv2.imwrite(str(reference), astronaut_bgr)
    config = PipelineConfig(models=(tiny_finder,), provider="cpu", network="none", reference=str(reference))
    config = replace(config, find=replace(config.find, hands=False, persist_frames=1))
    pipeline = build_pipeline(config)
    try:
        frame = run(pipeline, covered(astronaut_bgr), 0)   # the first frame: only the reference can know the face
        assert "reference photo" in pipeline.stage("fill").memory_summary()
    finally:
        pipeline.close()
    used = np.bincount(frame.faces[0].fill.source.ravel(), minlength=5)
    assert used[FILLER_CODE["memory"]] > 0


def test_hole_regions_that_look_as_remembered_are_not_covered():
    rng = np.random.default_rng(5)
    remembered = cv2.GaussianBlur(rng.integers(0, 256, (60, 80, 3), np.uint8), (0, 0), 1.5)
    current = np.roll(remembered, 1, axis=1)            # the same face, the warp one pixel off
    current[35:50, 45:70] = (40, 200, 60)               # something new over the second region
    hole = np.zeros((60, 80), bool)
    hole[10:25, 10:35] = True                           # looks as remembered
    hole[35:50, 45:70] = True                           # an occluder
    cleared = np.ones_like(hole)
    uncovered = agreeing_regions(current, remembered, hole, cleared, median_levels=8, p90_levels=20)
    assert uncovered[10:25, 10:35].all() and not uncovered[35:50, 45:70].any()
    never_doubted = cleared.copy()
    never_doubted[10:25, 10:35] = False                 # the finder never doubted that place before: not let through
    assert not agreeing_regions(current, remembered, hole, never_doubted, median_levels=8, p90_levels=20).any()


def test_memory_remembers_what_was_judged_covered_apart_from_what_is_unsure(astronaut_bgr):
    from realtime.memory import face_box, make_entry
    from realtime.mesh_topology import load_topology

    landmarks = (load_topology()[0] * 200 + 100).astype(np.float32)   # a face about 200 px wide
    x0, y0, x1, y1 = face_box(landmarks, astronaut_bgr.shape[:2])
    cy, cx = (y1 - y0) // 2, (x1 - x0) // 2
    unsure = np.zeros((y1 - y0, x1 - x0), bool)
    unsure[cy - 30:cy + 30, cx - 30:cx + 30] = True   # weak evidence: not to be filled from
    decided = np.zeros_like(unsure)
    decided[cy - 5:cy + 5, cx - 5:cx + 5] = True      # judged covered
    entry = make_entry(astronaut_bgr, landmarks, unsure, np.zeros(5), 0, decided=decided)
    assert entry.known.any() and not entry.known[cy - 30:cy + 30, cx - 30:cx + 30].any()
    assert not entry.cleared[cy - 5:cy + 5, cx - 5:cx + 5].any()          # judged covered
    assert entry.cleared[cy - 25:cy - 15, cx - 25:cx - 15].all()          # doubted, judged not covered: cleared
    assert not entry.cleared[entry.known].any()                           # never doubted: not "cleared" either


def test_an_entry_that_cleared_doubted_places_is_not_replaced_by_one_that_did_not():
    def entry(index, cleared):
        known = np.ones((4, 4), bool)
        doubted = np.zeros((4, 4), bool)
        doubted.ravel()[:cleared] = True
        return MemoryEntry(np.zeros((4, 4, 3), np.uint8), np.zeros((468, 2), np.float32), known,
                           np.zeros(5), index, doubted)

    memory = FaceMemory(MemoryConfig(max_entries=3, key_radius=0.05))
    memory.remember(entry(0, cleared=6))
    memory.remember(entry(1, cleared=2))     # same pose, but the finder's doubts there were judged covered this time
    assert [e.index for e in memory.entries] == [0]
    memory.remember(entry(2, cleared=6))     # same pose, as much evidence: the newer one wins
    assert [e.index for e in memory.entries] == [2]
