"""`unveil live` with a window: start Qt, restore the saved settings, let the command line override them."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from dataclasses import replace
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
DEFAULT_SOURCE = "0"   # the CLI's --source default
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


def initial_settings(saved: ViewerSettings, args: argparse.Namespace) -> ViewerSettings:
    """Saved settings, overridden by command-line options that differ from their defaults."""
    changes = {}
    source = str(getattr(args, "source", "") or "")
    if source and (source != DEFAULT_SOURCE or not saved.source):
        changes["source"] = source
    if getattr(args, "model", None):
        changes["models"] = tuple(args.model)
    if getattr(args, "network", "auto") != "auto":  # the CLI default leaves the viewer's own setting
        changes["mode"] = args.network
    if getattr(args, "threshold", None) is not None:
        changes["threshold"] = args.threshold
    if getattr(args, "reference", None):
        changes["reference"] = args.reference
    if getattr(args, "provider", "auto") != "auto":
        changes["provider"] = args.provider
    if getattr(args, "no_temporal", False):
        changes["smoothing"] = 0.0
    return replace(saved, **changes)


def base_pipeline_config(args: argparse.Namespace) -> PipelineConfig:
    from realtime.cli import pipeline_config

    return pipeline_config(args)


def run_viewer(args: argparse.Namespace, store: QSettings | None = None) -> int:
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
    settings = initial_settings(load_settings(store), args)
    camera = CameraRequest(getattr(args, "width", None), getattr(args, "height", None), getattr(args, "fps", None))
    window = MainWindow(store, base_pipeline_config(args), settings, camera)
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
