"""Shared test fixtures. Tests make their own data; none needs ../shared."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(scope="session")
def astronaut_bgr() -> np.ndarray:
    """A real public-domain face (NASA portrait of Eileen Collins) shipped by scikit-image, 512x512 BGR."""
    import skimage.data

    return cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
