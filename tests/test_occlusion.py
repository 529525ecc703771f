"""Occlusion synthesis: protocol statistics, placement, mask truthfulness, determinism (small crops, fast)."""
from __future__ import annotations

import numpy as np
import pytest

from realtime.errors import UnveilError
from trainer.occluders.layers import composite, face_layout, move_layer
from trainer.occluders.painters import (
    paint_face_mask, paint_hand, paint_microphone, paint_pole, paint_subtitle, paint_sunglasses, paint_texture,
    paint_watermark,
)
from trainer.occlusion import KINDS, PROTOCOLS, REALISTIC_KINDS, RECT_AREA_BUCKETS, TEXT_HEIGHT_BUCKETS, OcclusionSynth

S = 96


def noise_crop(seed: int = 0, size: int = S) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3)).astype(np.uint8)


def grey_crop(size: int = S) -> np.ndarray:
    return np.full((size, size, 3), 128, np.uint8)


def bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask)
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def changed(occluded: np.ndarray, original: np.ndarray) -> np.ndarray:
    return (occluded != original).any(axis=-1)


# ------------------------------------------------------------------------------------------------- paper statistics


def test_rect_statistics_match_c2fdan_ranges() -> None:
    synth = OcclusionSynth("rect", S, seed=1)
    image = grey_crop()
    areas, aspects = [], []
    for i in range(300):
        occ = synth(image, i)
        x0, y0, x1, y1 = bbox(occ.mask)
        w, h = x1 - x0, y1 - y0
        assert occ.mask.sum() == w * h, "a rectangle's mask is its whole box"
        assert 0.5 * h - 1 <= w <= 2.0 * h + 1  # aspect in [0.5, 2] up to pixel rounding
        area = w * h / S**2
        slack = (w + h + 1) / S**2
        lo, hi = RECT_AREA_BUCKETS[occ.size]
        assert lo - slack <= area <= hi + slack, (occ.size, area)
        areas.append(area)
        aspects.append(w / h)
    assert min(areas) < 0.025 and max(areas) > 0.135  # the whole range [0.01, 0.15] is used
    assert min(aspects) < 0.65 and max(aspects) > 1.6
    assert 0.06 < np.mean(areas) < 0.10  # uniform over [0.01, 0.15] has mean 0.08


def test_text_height_statistics_match_c2fdan_range() -> None:
    synth = OcclusionSynth("text", S, seed=2)
    image = grey_crop()
    heights = []
    for i in range(150):
        occ = synth(image, i)
        x0, y0, x1, y1 = bbox(occ.mask)
        if x0 == 0 or x1 == S:
            continue  # long words cut by the crop's sides may lose their tallest letter
        h = (y1 - y0) / S
        lo, hi = TEXT_HEIGHT_BUCKETS[occ.size]
        assert lo - 1.5 / S <= h <= hi + 1.5 / S, (occ.size, h)
        assert occ.mask.mean() < 0.9 * (x1 - x0) * (y1 - y0) / S**2, "text has holes, unlike a rectangle"
        heights.append(h)
    assert len(heights) > 50
    assert min(heights) < 0.1 and max(heights) > 0.4


@pytest.mark.parametrize("size", ["small", "medium", "large"])
def test_requested_rect_size_bucket_is_honoured(size: str) -> None:
    synth = OcclusionSynth("rect", S, seed=3)
    rng = np.random.default_rng(0)
    lo, hi = RECT_AREA_BUCKETS[size]
    for _ in range(30):
        occ = synth.sample(grey_crop(), rng, size=size)
        assert occ.size == size
        x0, y0, x1, y1 = bbox(occ.mask)
        assert lo - (x1 - x0 + y1 - y0 + 1) / S**2 <= occ.mask.mean() <= hi + (x1 - x0 + y1 - y0 + 1) / S**2


# --------------------------------------------------------------------------------------------------------- placement


@pytest.mark.parametrize("kind", ["rect", "text"])
@pytest.mark.parametrize("position", ["eyes", "nose", "mouth"])
def test_paper_occluders_land_on_the_requested_face_region(kind: str, position: str) -> None:
    synth = OcclusionSynth(kind, S, seed=4)
    lay = synth.layout
    anchors_y = {"eyes": (lay.left_eye[1] + lay.right_eye[1]) / 2, "nose": lay.nose[1], "mouth": lay.mouth[1]}
    rng = np.random.default_rng(1)
    for _ in range(40):
        occ = synth.sample(grey_crop(), rng, position=position)
        assert occ.position == position
        x0, y0, x1, y1 = bbox(occ.mask)
        if x0 == 0 or x1 == S:
            continue  # a long word cut by the sides may have lost the letters that set its vertical extent
        cy = (y0 + y1) / 2
        nearest = min(anchors_y, key=lambda k: abs(anchors_y[k] - cy))
        assert nearest == position, (occ.size, cy, anchors_y)


def test_outside_rectangles_are_centred_off_the_face() -> None:
    synth = OcclusionSynth("rect", S, seed=5)
    lay = synth.layout
    rng = np.random.default_rng(2)
    inner = (slice(int(lay.left_eye[1]), int(lay.mouth[1])), slice(int(lay.left_eye[0]), int(lay.right_eye[0])))
    outside_cover, nose_cover = [], []
    for _ in range(40):
        occ = synth.sample(grey_crop(), rng, position="outside", size="small")
        x0, y0, x1, y1 = bbox(occ.mask)
        assert not lay.inside_face(np.array([(x0 + x1) / 2, (y0 + y1) / 2]))
        outside_cover.append(occ.mask[inner].mean())
        nose_cover.append(synth.sample(grey_crop(), rng, position="nose", size="small").mask[inner].mean())
    assert np.mean(outside_cover) < 0.2 * np.mean(nose_cover)


@pytest.mark.parametrize("kind", ["hand", "texture"])
@pytest.mark.parametrize("position", ["eyes", "nose", "mouth"])
def test_realistic_occluders_cover_the_requested_part(kind: str, position: str) -> None:
    synth = OcclusionSynth("realistic", S, seed=6)
    lay = synth.layout
    parts = {"eyes": [lay.left_eye, lay.right_eye], "nose": [lay.nose], "mouth": [lay.mouth]}[position]
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(12):
        occ = synth.sample(grey_crop(), rng, position=position, kind=kind)
        hits += any(occ.mask[int(p[1]), int(p[0])] == 1.0 for p in parts)
    assert hits >= 10


def test_face_mask_sunglasses_and_subtitles_sit_where_they_belong() -> None:
    synth = OcclusionSynth("realistic", S, seed=7)
    lay = synth.layout
    at = lambda m, p: m[int(round(p[1])), int(round(p[0]))]  # noqa: E731
    rng = np.random.default_rng(4)
    for _ in range(6):
        mask = synth.sample(grey_crop(), rng, kind="face_mask").mask
        assert at(mask, lay.mouth) == 1 and at(mask, lay.nose) == 1 and at(mask, lay.left_eye) == 0
        glasses = synth.sample(grey_crop(), rng, kind="sunglasses").mask
        assert at(glasses, lay.left_eye) == 1 and at(glasses, lay.right_eye) == 1 and at(glasses, lay.mouth) == 0
        subtitle = synth.sample(grey_crop(), rng, kind="subtitle").mask
        assert np.nonzero(subtitle)[0].mean() > 0.6 * S


# ------------------------------------------------------------------------------------------------ mask truthfulness


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_mask_is_exactly_the_changed_pixels_for_every_protocol(protocol: str) -> None:
    synth = OcclusionSynth(protocol, S, seed=8)
    for image in (noise_crop(1), grey_crop()):
        for index in range(8):
            occ = synth(image, index)
            assert occ.image.dtype == np.uint8 and occ.image.shape == image.shape
            assert occ.mask.dtype == np.float32 and occ.mask.shape == (S, S)
            assert set(np.unique(occ.mask)) <= {0.0, 1.0}
            np.testing.assert_array_equal(occ.mask.astype(bool), changed(occ.image, image))


@pytest.mark.parametrize("kind", KINDS)
def test_mask_is_exactly_the_changed_pixels_for_every_kind(kind: str) -> None:
    synth = OcclusionSynth("mix", S, seed=9)
    rng = np.random.default_rng(5)
    for image in (noise_crop(2), grey_crop()):
        for _ in range(3):
            occ = synth.sample(image, rng, kind=kind)
            assert occ.kind == kind
            np.testing.assert_array_equal(occ.mask.astype(bool), changed(occ.image, image))
            assert (occ.mask.sum() > 0) == (kind != "none")


def test_composite_keeps_faint_alpha_untouched_and_marks_same_colour_occluders() -> None:
    image = grey_crop(16)
    alpha = np.zeros((16, 16), np.float32)
    alpha[2:6, 2:6] = 0.03  # at or below the threshold: left bit-identical
    alpha[8:12, 8:12] = 1.0  # an occluder of exactly the image's colour
    out, mask = composite(image, alpha, np.full((16, 16, 3), 128, np.float32))
    np.testing.assert_array_equal(out[2:6, 2:6], image[2:6, 2:6])
    assert mask[8:12, 8:12].min() == 1.0 and mask.sum() == 16
    np.testing.assert_array_equal(mask.astype(bool), changed(out, image))
    assert np.abs(out.astype(int) - image).max() == 1  # the marking change is one level


# --------------------------------------------------------------------------------------------- determinism and mixes


def test_same_seed_and_index_give_identical_results() -> None:
    image = noise_crop(3)
    a, b = OcclusionSynth("mix", S, seed=11), OcclusionSynth("mix", S, seed=11)
    for index in range(10):
        first, second = a(image, index), b(image, index)
        np.testing.assert_array_equal(first.image, second.image)
        np.testing.assert_array_equal(first.mask, second.mask)
        assert (first.kind, first.position, first.size) == (second.kind, second.position, second.size)
    masks = [a(image, i).mask for i in range(6)]
    assert any(not np.array_equal(masks[0], m) for m in masks[1:])
    other = OcclusionSynth("rect", S, seed=12)
    assert not np.array_equal(OcclusionSynth("rect", S, seed=11)(image, 0).mask, other(image, 0).mask)


def test_none_protocol_leaves_the_face_alone() -> None:
    image = noise_crop(4)
    occ = OcclusionSynth("none", S)(image, 0)
    np.testing.assert_array_equal(occ.image, image)
    assert occ.mask.sum() == 0 and occ.kind == "none"
    assert occ.image is not image


def test_realistic_protocol_covers_every_realistic_kind() -> None:
    synth = OcclusionSynth("realistic", 48, seed=13)
    kinds = {synth(grey_crop(48), i).kind for i in range(120)}
    assert kinds == set(REALISTIC_KINDS) - {"pole"}  # poles are opt-in (realistic_weights)
    poles = OcclusionSynth("realistic", 48, seed=13, realistic_weights={"pole": 1.0})
    assert {poles(grey_crop(48), i).kind for i in range(10)} == {"pole"}


def test_mix_follows_its_weights_and_clean_fraction() -> None:
    image = grey_crop(48)
    synth = OcclusionSynth("mix", 48, seed=14, clean_fraction=0.25)
    kinds = [synth(image, i).kind for i in range(200)]
    assert 0.15 < kinds.count("none") / len(kinds) < 0.35
    assert {"rect", "text"} <= set(kinds) and set(kinds) & set(REALISTIC_KINDS)
    only_rect = OcclusionSynth("mix", 48, seed=14, mix_weights={"rect": 1.0}, clean_fraction=0.0)
    assert {only_rect(image, i).kind for i in range(30)} == {"rect"}


def test_colour_order_is_the_inputs() -> None:
    image = grey_crop()
    rng_b, rng_r = np.random.default_rng(6), np.random.default_rng(6)
    bgr = OcclusionSynth("realistic", S, colour_order="bgr").sample(image, rng_b, kind="hand", position="nose")
    rgb = OcclusionSynth("realistic", S, colour_order="rgb").sample(image, rng_r, kind="hand", position="nose")
    skin_bgr = bgr.image[bgr.mask == 1].astype(float).mean(0)
    skin_rgb = rgb.image[rgb.mask == 1].astype(float).mean(0)
    assert skin_bgr[2] > skin_bgr[0] and skin_rgb[0] > skin_rgb[2]  # skin is redder than it is blue


# ----------------------------------------------------------------------------------------------- painters and errors


@pytest.mark.parametrize("painter", [paint_hand, paint_microphone, paint_face_mask, paint_sunglasses, paint_subtitle,
                                     paint_watermark, paint_texture, paint_pole])
def test_painters_return_layers_that_move_with_the_occluder(painter) -> None:
    alpha, colour = painter(64, np.random.default_rng(7))
    assert alpha.shape == (64, 64) and alpha.dtype == np.float32 and colour.shape == (64, 64, 3)
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0 and alpha.max() > 0.2
    assert 0.0 <= colour.min() and colour.max() <= 255.0
    moved, _ = move_layer(alpha, colour, np.array([[1.0, 0.0, 5.0], [0.0, 1.0, 0.0]]))
    np.testing.assert_allclose(moved[:, 10:50], alpha[:, 5:45], atol=1e-5)


def test_a_pole_crosses_the_whole_crop_at_its_angle() -> None:
    alpha, _ = paint_pole(64, np.random.default_rng(3), centre=(32, 32), width=0.1, angle=0.0)
    assert alpha[0, 32] > 0.9 and alpha[63, 32] > 0.9          # top to bottom through the centre
    assert alpha[32, :20].max() == 0 and alpha[32, 44:].max() == 0  # about 6 px wide, nothing beside it
    flat, _ = paint_pole(64, np.random.default_rng(3), centre=(32, 32), width=0.1, angle=90.0)
    assert flat[32, 0] > 0.9 and flat[32, 63] > 0.9 and flat[0, 32] == 0


def test_face_layout_orders_the_face_top_to_bottom() -> None:
    lay = face_layout(OcclusionSynth("none", S).points5)
    assert lay.left_eye[1] < lay.nose[1] < lay.mouth[1] < lay.chin_y <= S
    assert lay.inside_face(lay.nose) and not lay.inside_face(np.array([1.0, 1.0]))


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(UnveilError, match="protocol"):
        OcclusionSynth("blobs", S)
    synth = OcclusionSynth("rect", S)
    with pytest.raises(UnveilError, match="uint8"):
        synth(np.zeros((S, S, 3), np.float32), 0)
    with pytest.raises(UnveilError, match=f"{S}x{S}x3"):
        synth(grey_crop(S + 1), 0)
    with pytest.raises(UnveilError, match="position"):
        synth.sample(grey_crop(), np.random.default_rng(0), position="forehead")
    with pytest.raises(UnveilError, match="size"):
        synth.sample(grey_crop(), np.random.default_rng(0), size="huge")
    with pytest.raises(UnveilError, match="mix_weights"):
        OcclusionSynth("mix", S, mix_weights={"hands": 1.0})


# ------------------------------------------------------------------------------------------ one-half (symmfcnet) masks


@pytest.mark.parametrize("size", [S, 64, 65, 128])
@pytest.mark.parametrize("position", ["eye", "cheek", "side"])
def test_half_masks_stay_on_one_side_of_the_mid_line(size: int, position: str) -> None:
    synth = OcclusionSynth("half", size, seed=21)
    rng = np.random.default_rng(3)
    sides = set()
    for _ in range(12):
        occ = synth.sample(noise_crop(1, size), rng, position=position)
        assert occ.kind == "half" and occ.position == position and occ.mask.sum() > 0
        cols = np.flatnonzero(occ.mask.any(axis=0))
        assert cols.max() < (size - 1) / 2 or cols.min() > (size - 1) / 2  # all on one side of the flip axis
        assert not (occ.mask.astype(bool) & occ.mask[:, ::-1].astype(bool)).any()  # the mirror twin stays visible
        sides.add("left" if cols.max() < size / 2 else "right")
    assert sides == {"left", "right"}


def test_half_masks_cover_the_requested_part() -> None:
    synth = OcclusionSynth("half", S, seed=22)
    lay = synth.layout
    rng = np.random.default_rng(4)
    for _ in range(10):
        eye = synth.sample(grey_crop(), rng, position="eye").mask
        ex, ey = (lay.left_eye if eye[:, : S // 2].any() else lay.right_eye).round().astype(int)
        assert eye[ey, ex] == 1.0
        cheek = synth.sample(grey_crop(), rng, position="cheek").mask
        rows = np.nonzero(cheek)[0]
        assert rows.mean() > lay.left_eye[1]  # below the eyes
    covered = {p: np.mean([synth.sample(grey_crop(), rng, position=p).mask.mean() for _ in range(20)])
               for p in ("eye", "side")}
    assert covered["side"] > 1.5 * covered["eye"]


def test_half_size_labels_are_the_coverage_and_requests_are_honoured() -> None:
    synth = OcclusionSynth("half", S, seed=23)
    rng = np.random.default_rng(5)
    from trainer.occlusion import coverage_bucket
    for _ in range(20):
        occ = synth.sample(grey_crop(), rng)
        assert occ.size == coverage_bucket(float(occ.mask.mean()))
    assert synth.sample(grey_crop(), rng, position="side", size="medium").size == "medium"
    assert synth.sample(grey_crop(), rng, position="eye", size="small").size == "small"


def test_symmetry_protocol_mixes_half_centre_and_irregular_without_clean_faces() -> None:
    image = grey_crop(48)
    kinds = [OcclusionSynth("symmetry", 48, seed=24)(image, i).kind for i in range(200)]
    assert set(kinds) == {"half", "centre", "irregular"}
    assert 0.38 < kinds.count("half") / len(kinds) < 0.62  # SYMMETRY_MIX_WEIGHTS: half 0.5
    only_half = OcclusionSynth("symmetry", 48, seed=24, mix_weights={"half": 1.0})
    assert {only_half(image, i).kind for i in range(20)} == {"half"}
    with_half = OcclusionSynth("mix", 48, seed=24, mix_weights={"half": 1.0, "rect": 1.0}, clean_fraction=0.0)
    assert {with_half(image, i).kind for i in range(40)} == {"half", "rect"}
    with pytest.raises(UnveilError, match="position"):
        OcclusionSynth("half", 48).sample(image, np.random.default_rng(0), position="mouth")


def test_composite_changes_exactly_the_pixels_above_its_threshold():
    image = np.random.default_rng(2).integers(0, 256, (30, 30, 3)).astype(np.uint8)
    alpha = np.zeros((30, 30), np.float32)
    alpha[5:10, 5:10] = 1.0
    alpha[20, 20] = 0.01
    alpha[25, 3] = 0.03
    colour = np.full((30, 30, 3), 200, np.float32)
    out, mask = composite(image, alpha, colour, threshold=0.02)
    assert (out[5:10, 5:10] == 200).all()
    keep = alpha <= 0.02
    assert np.array_equal(out[keep], image[keep])
    assert np.array_equal(mask > 0, (out != image).any(axis=2)) and mask[25, 3] == 1.0
