"""`unveil live` with a window: start Qt, restore the saved settings, let the command line override them."""
from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass, replace
from typing import Mapping

from PyQt6.QtCore import QLibraryInfo, QSettings, QTimer
from PyQt6.QtWidgets import QApplication

from realtime.errors import UnveilError
from realtime.pipeline import PipelineConfig

from gui.engine import CameraRequest
from gui.main_window import MainWindow
from gui.settings import ViewerSettings, load_settings
from gui.theme import apply_dark_theme

ORGANIZATION = "Unveil"
APPLICATION = "viewer"
DEFAULT_SOURCE = "0"   # the first camera, when neither the command line nor the saved settings name a source
# Qt platforms that need no display server (any other QT_QPA_PLATFORM the user sets is trusted as is).
DISPLAYLESS_PLATFORMS = ("offscreen", "minimal", "minimalegl", "linuxfb", "eglfs", "vnc", "vkkhrdisplay")


def missing_display(env: Mapping[str, str] | None = None, platform: str | None = None) -> str | None:
    """Why a window cannot open here (Linux without X11 / Wayland display), or None; checked before Qt starts,
    because Qt aborts the process (SIGABRT) when its platform plugin finds no display."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if not platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return None
    wanted = [name.split(":")[0].strip() for name in env.get("QT_QPA_PLATFORM", "").split(";") if name.strip()]
    if any(name in DISPLAYLESS_PLATFORMS for name in wanted):
        return None
    x11, wayland = bool(env.get("DISPLAY")), bool(env.get("WAYLAND_DISPLAY"))
    if wanted:
        if any((name == "xcb" and x11) or (name.startswith("wayland") and wayland) for name in wanted):
            return None
        if not any(name == "xcb" or name.startswith("wayland") for name in wanted):
            return None  # a platform we do not know: let Qt judge
    elif x11 or wayland:
        return None
    return ("no display for the viewer window (DISPLAY / WAYLAND_DISPLAY not set); "
            "use `unveil live --headless` to run without a window")


def use_pyqt_plugins(env: dict | None = None) -> None:
    """Make Qt load PyQt6's own plugins: importing cv2 (opencv-python with its Qt 5 highgui) points
    QT_QPA_PLATFORM_PLUGIN_PATH / QT_QPA_FONTDIR at cv2/qt/..., whose plugins PyQt6's Qt 6 cannot load."""
    env = os.environ if env is None else env
    env["QT_QPA_PLATFORM_PLUGIN_PATH"] = os.path.join(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath), "platforms")
    for name in ("QT_PLUGIN_PATH", "QT_QPA_FONTDIR"):
        kept = [p for p in env.get(name, "").split(os.pathsep) if p and not _inside_cv2(p)]
        if kept:
            env[name] = os.pathsep.join(kept)
        else:
            env.pop(name, None)


def _inside_cv2(path: str) -> bool:
    parts = os.path.normpath(path).split(os.sep)
    return "cv2" in parts


@dataclass(frozen=True)
class ViewerRequest:
    """What the command line asks of the viewer. None (or empty) keeps the viewer's saved setting."""
    pipeline: PipelineConfig = PipelineConfig()
    source: str | None = None
    models: tuple[str, ...] = ()
    network: str | None = None
    threshold: float | None = None
    reference: str | None = None
    provider: str | None = None
    temporal: bool = True
    camera: CameraRequest = CameraRequest()


def initial_settings(saved: ViewerSettings, request: ViewerRequest) -> ViewerSettings:
    """Saved settings, overridden by what the command line gave."""
    changes: dict = {}
    if request.source:
        changes["source"] = request.source
    elif not saved.source:
        changes["source"] = DEFAULT_SOURCE
    if request.models:
        changes["models"] = request.models
    if request.network is not None:
        changes["mode"] = request.network
    if request.threshold is not None:
        changes["threshold"] = request.threshold
    if request.reference:
        changes["reference"] = request.reference
    if request.provider is not None:
        changes["provider"] = request.provider
    if not request.temporal:
        changes["smoothing"] = 0.0
    return replace(saved, **changes)


def run_viewer(request: ViewerRequest, store: QSettings | None = None) -> int:
    """Open the viewer window and run until it is closed; returns the exit status."""
    app = QApplication.instance()
    if app is None:
        problem = missing_display()
        if problem:
            raise UnveilError(problem)
        use_pyqt_plugins()
        app = QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    apply_dark_theme(app)
    store = store or QSettings(ORGANIZATION, APPLICATION)
    settings = initial_settings(load_settings(store), request)
    window = MainWindow(store, request.pipeline, settings, request.camera)
    geometry = store.value("geometry")
    if geometry is None or not window.restoreGeometry(geometry):
        window.resize(1400, 820)
    window.show()
    # Ctrl+C in the terminal closes the window cleanly (Qt's loop would otherwise hold Python's signal handling).
    signal.signal(signal.SIGINT, lambda *_: window.close())
    wake_python = QTimer()
    wake_python.timeout.connect(lambda: None)
    wake_python.start(200)
    return app.exec()
