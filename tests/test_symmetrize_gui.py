"""The viewer's symmetric-face view (Y) and asymmetry heat-map (H), issue #17: offscreen, a real photo, real mediapipe."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

pytest.importorskip("PyQt6.QtWidgets")
from PyQt6.QtCore import QSettings  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from gui.main_window import MainWindow  # noqa: E402
from gui.overlay import GAP_PX, ViewOptions, compose_view  # noqa: E402
from gui.settings import ViewerSettings, load_settings  # noqa: E402
from realtime.frame import Face, Frame  # noqa: E402
from realtime.pipeline import PipelineConfig  # noqa: E402
from tests.test_symmetrize import symmetric_mesh, textured_face  # noqa: E402
from tests.tiny_models import build_blind_model  # noqa: E402

pytestmark = pytest.mark.gui


def test_compose_view_symmetrizes_the_result_and_tints_the_original():
    rng = np.random.default_rng(4)
    points = (symmetric_mesh(angle_deg=4.0) + rng.normal(0, 2.0, (468, 2))).astype(np.float32)
    image = textured_face(points)
    frame = Frame(index=0, image=image, faces=[Face(box=np.array([0, 0, 1, 1], np.float32), score=1.0,
                                                    landmarks=points)])
    width = image.shape[1]
    plain = compose_view(frame, ViewOptions(show_faces=False))
    symmetric = compose_view(frame, ViewOptions(show_faces=False, symmetrize=True))
    heat = compose_view(frame, ViewOptions(show_faces=False, show_asymmetry=True))
    assert np.array_equal(symmetric[:, :width], plain[:, :width])              # the original pane as it was
    assert np.abs(symmetric[:, width + GAP_PX:].astype(int) - image).mean() > 1.0
    assert np.abs(heat[:, :width].astype(int) - image).mean() > 1.0            # the heat-map is on the original
    assert np.array_equal(heat[:, width + GAP_PX:], plain[:, width + GAP_PX:])
    only = compose_view(frame, ViewOptions(compare="result", show_faces=False, show_asymmetry=True))
    assert only.shape == image.shape and np.abs(only.astype(int) - image).mean() > 1.0
    faceless = Frame(index=1, image=image)
    assert np.array_equal(compose_view(faceless, ViewOptions(show_faces=False, symmetrize=True)),
                          compose_view(faceless, ViewOptions(show_faces=False)))


def wait_until(app: QApplication, predicate, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app.processEvents()
        if predicate():
            return True
        time.sleep(0.005)
    return bool(predicate())


def test_viewer_toggles_symmetric_faces_and_heat_map(tmp_path, astronaut_bgr):
    app = QApplication.instance() or QApplication([])
    photo = tmp_path / "face.png"
    cv2.imwrite(str(photo), cv2.resize(astronaut_bgr[0:320, 80:400], (240, 240), interpolation=cv2.INTER_AREA))
    store = QSettings(str(tmp_path / "viewer.ini"), QSettings.Format.IniFormat)
    settings = ViewerSettings(source=str(photo), models=(str(build_blind_model(tmp_path / "blind.onnx")),),
                              show_faces=False, output_dir=str(tmp_path))
    window = MainWindow(store, PipelineConfig(), settings, camera_finder=lambda: [])
    window.resize(900, 600)
    window.show()
    try:
        assert wait_until(app, lambda: window.current_frame is not None and window.current_frame.faces), \
            window.last_error
        width = window.current_frame.image.shape[1]
        before = window.view.displayed_pixels().copy()
        window.act_symmetrize.setChecked(True)
        symmetric = window.view.displayed_pixels().copy()
        assert np.array_equal(symmetric[:, :width], before[:, :width])
        assert np.abs(symmetric[:, width + GAP_PX:].astype(int) - before[:, width + GAP_PX:]).mean() > 0.5
        window.act_asymmetry.setChecked(True)
        heat = window.view.displayed_pixels().copy()
        assert np.abs(heat[:, :width].astype(int) - before[:, :width]).mean() > 0.5
        assert window.overlay_boxes["symmetrize"].isChecked() and window.overlay_boxes["show_asymmetry"].isChecked()
    finally:
        window.close()
    again = load_settings(QSettings(str(tmp_path / "viewer.ini"), QSettings.Format.IniFormat))
    assert again.symmetrize and again.show_asymmetry
