"""A dark theme: Fusion style, a dark palette and a small stylesheet for the panels, banner and status bar."""
from __future__ import annotations

from PyQt6.QtGui import QColor, QPalette
from PyQt6.QtWidgets import QApplication

STYLESHEET = """
QMainWindow, QWidget#panel { background: #1b1d22; }
QScrollArea#panelScroll { border: none; background: #1b1d22; }
QGroupBox { border: 1px solid #2e323a; border-radius: 8px; margin-top: 14px; padding: 10px 8px 8px 8px;
            font-weight: 600; color: #d6d9df; }
QGroupBox::title { subcontrol-origin: margin; left: 10px; padding: 0 4px; color: #8fb8ff; }
QPushButton { background: #2a2e36; border: 1px solid #3a3f49; border-radius: 6px; padding: 5px 10px; color: #e6e8ec; }
QPushButton:hover { background: #333843; }
QPushButton:checked { background: #3b6fd1; border-color: #5b8ff1; }
QPushButton:disabled { color: #6b707a; background: #23262c; }
QPushButton#recordButton:checked { background: #c0392b; border-color: #e0594b; }
QComboBox, QLineEdit { background: #23262d; border: 1px solid #3a3f49; border-radius: 5px; padding: 3px 6px;
                       color: #e6e8ec; }
QSlider::groove:horizontal { height: 4px; background: #343843; border-radius: 2px; }
QSlider::sub-page:horizontal { background: #4f8ef7; border-radius: 2px; }
QSlider::handle:horizontal { background: #e6e8ec; width: 14px; margin: -6px 0; border-radius: 7px; }
QLabel#hint { color: #8a909b; font-size: 11px; }
QLabel#value { color: #c9ccd3; min-width: 38px; }
QFrame#errorBanner { background: #5a1f1f; border: 1px solid #a33; border-radius: 6px; }
QFrame#errorBanner QLabel { color: #ffd9d9; }
QLabel#providerWarning { color: #ffcc66; }
QStatusBar { background: #15171b; color: #b8bcc5; }
QStatusBar QLabel { padding: 0 8px; }
QMenuBar { background: #15171b; color: #d6d9df; }
QMenuBar::item:selected { background: #2a2e36; }
QMenu { background: #1f2228; color: #e6e8ec; border: 1px solid #333; }
QMenu::item:selected { background: #3b6fd1; }
QToolTip { background: #2a2e36; color: #e6e8ec; border: 1px solid #444; }
"""


def apply_dark_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    palette = QPalette()
    colours = {
        QPalette.ColorRole.Window: "#1b1d22", QPalette.ColorRole.WindowText: "#e6e8ec",
        QPalette.ColorRole.Base: "#23262d", QPalette.ColorRole.AlternateBase: "#2a2e36",
        QPalette.ColorRole.Text: "#e6e8ec", QPalette.ColorRole.Button: "#2a2e36",
        QPalette.ColorRole.ButtonText: "#e6e8ec", QPalette.ColorRole.Highlight: "#3b6fd1",
        QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.ToolTipBase: "#2a2e36",
        QPalette.ColorRole.ToolTipText: "#e6e8ec", QPalette.ColorRole.PlaceholderText: "#7a808b",
    }
    for role, colour in colours.items():
        palette.setColor(role, QColor(colour))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.ButtonText, QColor("#6b707a"))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text, QColor("#6b707a"))
    app.setPalette(palette)
    app.setStyleSheet(STYLESHEET)
