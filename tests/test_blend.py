"""Blend: the fill is pasted with its weight; every pixel with weight 0 stays the input's, bit for bit."""
import numpy as np

from realtime.blend import blend_frame, paste_fill
from realtime.frame import Face, FaceFill, Frame


def face_with_fill(box, weight, value=7):
    h, w = weight.shape
    fill = FaceFill(box, np.full((h, w, 3), value, np.uint8), weight.astype(np.float32), np.ones((h, w), np.uint8))
    return Face(box=np.array(box, np.float32), score=1.0, fill=fill)


def test_a_frame_without_fills_passes_through_bit_identical():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (240, 320, 3), np.uint8)
    frame = Frame(index=0, image=image, faces=[Face(box=np.zeros(4, np.float32), score=1.0)])
    out, replaced = blend_frame(frame)
    assert out is None and replaced is None and frame.result() is image


def test_only_weighted_pixels_change_and_the_replaced_map_matches():
    rng = np.random.default_rng(1)
    image = rng.integers(10, 246, (240, 320, 3), np.uint8)
    weight = np.zeros((64, 64))
    weight[20:30, 20:40] = 1.0
    weight[30:34, 20:40] = 0.5    # a feathered edge
    frame = Frame(index=0, image=image, faces=[face_with_fill((100, 50, 164, 114), weight)])
    out, replaced = blend_frame(frame)
    changed = (out != image).any(axis=2)
    assert changed[70:80, 120:140].all() and (out[70:80, 120:140] == 7).all()
    half = out[80:84, 120:140].astype(int)
    assert np.all(np.abs(half - (image[80:84, 120:140].astype(int) + 7) / 2) <= 1)
    outside = np.ones(changed.shape, bool)
    outside[50:114, 100:164] = weight == 0
    assert not changed[outside].any()
    assert np.array_equal(replaced > 0, changed)


def test_a_blend_that_rounds_to_the_old_value_is_not_reported_as_replaced():
    image = np.full((20, 20, 3), 100, np.uint8)
    weight = np.full((10, 10), 0.001, np.float32)   # far too weak to move a grey level
    changed = paste_fill(image, np.full((10, 10, 3), 200, np.uint8), weight, (0, 0, 10, 10))
    assert not changed.any() and (image == 100).all()
