import numpy as np

from realtime.blend import BlendConfig, blend_frame, blend_weight
from realtime.frame import Face, Frame


def face_at(frame_hw, crop=64):
    # a face whose crop covers the frame region [100, 164) x [50, 114) at scale 1
    m = np.array([[1.0, 0, -100.0], [0, 1.0, -50.0]])
    return Face(box=np.array([100, 50, 164, 114], np.float32), score=1.0, matrix=m)


def test_no_occlusion_passes_through_bit_identical():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (240, 320, 3), np.uint8)
    face = face_at(image.shape[:2])
    face.mask = np.full((64, 64), 0.2, np.float32)  # below threshold everywhere
    face.completed = np.zeros((64, 64, 3), np.uint8)
    frame = Frame(index=0, image=image, faces=[face])
    out, replaced = blend_frame(frame, BlendConfig())
    assert out is None and replaced is None
    assert np.array_equal(frame.result(), image)


def test_only_masked_pixels_change_and_replaced_mask_matches():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (240, 320, 3), np.uint8)
    face = face_at(image.shape[:2])
    mask = np.zeros((64, 64), np.float32)
    mask[20:30, 20:40] = 1.0
    face.mask = mask
    face.completed = np.full((64, 64, 3), 7, np.uint8)
    frame = Frame(index=0, image=image, faces=[face])
    out, replaced = blend_frame(frame, BlendConfig(dilate=0.0, feather=0.0))
    changed = (out != image).any(axis=2)
    assert changed[50 + 20:50 + 30, 100 + 20:100 + 40].all()
    assert not changed[:, :100].any() and not changed[:50].any() and not changed[50 + 31:].any()
    assert np.array_equal(replaced > 0, changed)
    assert (out[50 + 21:50 + 29, 100 + 21:100 + 39] == 7).all()


def test_feather_is_soft_and_dilation_grows():
    mask = np.zeros((128, 128), np.float32)
    mask[60:70, 60:70] = 1
    w = blend_weight(mask, BlendConfig(dilate=0.02, feather=0.03))
    assert w[65, 65] == 1.0 and w[0, 0] == 0.0
    grown = blend_weight(mask, BlendConfig(dilate=0.02, feather=0.0))
    assert grown.sum() > mask.sum()
    edge = w[65, 75]
    assert 0 < edge < 1
