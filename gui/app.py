"""`unveil live` with a window: start Qt, restore the saved settings, let the command line override them."""
from __future__ import annotations

import argparse
import signal
import sys
from dataclasses import replace

from PyQt6.QtCore import QSettings, QTimer
from PyQt6.QtWidgets import QApplication

from realtime.pipeline import PipelineConfig

from gui.engine import CameraRequest
from gui.main_window import MainWindow
from gui.settings import ViewerSettings, load_settings
from gui.theme import apply_dark_theme

ORGANIZATION = "Unveil"
APPLICATION = "viewer"
DEFAULT_SOURCE = "0"   # the CLI's --source default


def initial_settings(saved: ViewerSettings, args: argparse.Namespace) -> ViewerSettings:
    """Saved settings, overridden by command-line options that differ from their defaults."""
    changes = {}
    source = str(getattr(args, "source", "") or "")
    if source and (source != DEFAULT_SOURCE or not saved.source):
        changes["source"] = source
    if getattr(args, "model", None):
        changes["models"] = tuple(args.model)
    if getattr(args, "mode", "auto") != "auto":  # the CLI default leaves the viewer's own setting
        changes["mode"] = args.mode
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
    app = QApplication.instance() or QApplication(sys.argv[:1])
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
