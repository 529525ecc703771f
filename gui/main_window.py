"""The viewer's window: picture, control panel, playback bar, error banner and status bar.

It only displays and forwards the user's choices; the `ViewerEngine` does the work in its own threads.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import onnxruntime
from PyQt6.QtCore import QSettings, Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QAction, QCloseEvent, QKeySequence
from PyQt6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QFrame, QGroupBox, QHBoxLayout, QLabel,
                             QMainWindow, QMessageBox, QPushButton, QScrollArea, QSizePolicy, QSlider, QVBoxLayout,
                             QWidget)

from realtime.choices import NETWORK_FILLERS, PROVIDERS
from realtime.errors import UnveilError
from realtime.frame import Frame
from realtime.models import available_models
from realtime.pipeline import PipelineConfig
from realtime.sources import IMAGE_SUFFIXES

from gui.cameras import CameraInfo, find_cameras
from gui.engine import CameraRequest, PipelineState, ViewerEngine
from gui.feeds import FeedDescription
from gui.overlay import COMPARE_LABELS, COMPARE_MODES, ViewOptions, compose_view
from gui.recording import Recorder, save_snapshot, timestamped_path
from gui.settings import ViewerSettings, pipeline_config, save_settings
from gui.stats import DisplayStats, format_stage_times
from gui.view import FrameView
from gui.virtual_camera import VirtualCamera, virtual_camera_unavailable_reason

VIDEO_FILTER = "Videos (*.mp4 *.mov *.mkv *.avi *.webm *.m4v);;All files (*)"
IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES)) + ");;All files (*)"
SHORTCUTS_HELP = """
<b>Source</b>: O open video · I open image · Alt+0..9 camera N · F5 find cameras<br>
<b>Playback</b>: Space play/pause · → step one frame · ← back one second · Home restart<br>
<b>View</b>: C compare mode · M occlusion mask · B face boxes · L landmarks · Y symmetric faces · H asymmetry
heat-map · F11 full screen<br>
<b>Adjust</b>: [ ] mask threshold · ; ' temporal smoothing · - = feathering<br>
<b>Model</b>: Ctrl+L load model · Ctrl+1–4 network filler · P next provider · K remember this face<br>
<b>Output</b>: R record · S snapshot · V virtual camera · Ctrl+Shift+O output folder<br>
Esc dismiss the error banner · F1 this help · Ctrl+Q quit
"""


def slider(minimum: int, maximum: int, value: int) -> QSlider:
    s = QSlider(Qt.Orientation.Horizontal)
    s.setRange(minimum, maximum)
    s.setValue(value)
    s.setFocusPolicy(Qt.FocusPolicy.NoFocus)
    return s


def hint(text: str) -> QLabel:
    label = QLabel(text)
    label.setObjectName("hint")
    label.setWordWrap(True)
    return label


class MainWindow(QMainWindow):
    cameras_found = pyqtSignal(object)   # list[CameraInfo], from the probing thread

    def __init__(self, store: QSettings, base_config: PipelineConfig, initial: ViewerSettings,
                 camera: CameraRequest = CameraRequest(),
                 camera_finder: Callable[[], list[CameraInfo]] = find_cameras) -> None:
        super().__init__()
        self.setWindowTitle("Unveil — live occlusion removal")
        self.store = store
        self.base_config = base_config
        self.settings = initial
        self.camera_finder = camera_finder
        self.stats = DisplayStats()
        self.current_frame: Frame | None = None
        self.description: FeedDescription | None = None
        self.frames_shown = 0
        self.recorder: Recorder | None = None
        self.last_recording: Path | None = None
        self.last_snapshot: Path | None = None
        self.last_error = ""
        self.vcam_reason = virtual_camera_unavailable_reason()

        self.engine = ViewerEngine(pipeline_config(base_config, initial), camera)
        self._build_actions()
        self._build_ui()
        self._connect_engine()
        self._sync_controls_from_settings()
        self.engine.start()

        self.status_timer = QTimer(self)
        self.status_timer.timeout.connect(self._update_status)
        self.status_timer.start(500)
        self.cameras_found.connect(self._fill_cameras)
        self.find_cameras()
        if initial.source:
            self.open_source(initial.source)

    # --- construction ----------------------------------------------------------------------------------------------
    def _action(self, text: str, shortcuts: list[str], slot: Callable, checkable: bool = False) -> QAction:
        action = QAction(text, self)
        action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setCheckable(checkable)
        (action.toggled if checkable else action.triggered).connect(slot)
        self.addAction(action)  # shortcuts work even with the menu bar hidden (full screen)
        return action

    def _build_actions(self) -> None:
        a = self._action
        self.act_open_video = a("Open &video…", ["O", "Ctrl+O"], self.choose_video)
        self.act_open_image = a("Open &image…", ["I"], self.choose_image)
        self.act_find_cameras = a("Find &cameras", ["F5"], self.find_cameras)
        self.act_quit = a("&Quit", ["Ctrl+Q"], self.close)
        self.act_camera = [a(f"Camera {i}", [f"Alt+{i}"], lambda _=False, i=i: self.open_source(str(i)))
                           for i in range(10)]
        self.act_play = a("&Play / pause", ["Space"], self.toggle_play)
        self.act_step = a("&Step one frame", ["Right"], self.step)
        self.act_back = a("&Back one second", ["Left"], self.back_one_second)
        self.act_restart = a("&Restart", ["Home"], lambda: self.seek(0))
        self.act_compare = a("&Compare mode (cycle)", ["C"], self.cycle_compare)
        self.act_mask = a("Occlusion &mask", ["M"], lambda on: self.set_view(show_mask=on), checkable=True)
        self.act_faces = a("Face &boxes and ids", ["B"], lambda on: self.set_view(show_faces=on), checkable=True)
        self.act_landmarks = a("&Landmarks", ["L"], lambda on: self.set_view(show_landmarks=on), checkable=True)
        self.act_symmetrize = a("S&ymmetric faces", ["Y"], lambda on: self.set_view(symmetrize=on), checkable=True)
        self.act_asymmetry = a("Asymmetry &heat-map", ["H"], lambda on: self.set_view(show_asymmetry=on),
                               checkable=True)
        self.act_fullscreen = a("&Full screen", ["F11"], self.toggle_fullscreen)
        self.act_threshold = (a("Threshold down", ["["], lambda: self.nudge("threshold", -0.05)),
                              a("Threshold up", ["]"], lambda: self.nudge("threshold", 0.05)))
        self.act_smoothing = (a("Smoothing down", [";"], lambda: self.nudge("smoothing", -0.1)),
                              a("Smoothing up", ["'"], lambda: self.nudge("smoothing", 0.1)))
        self.act_feather = (a("Feather down", ["-"], lambda: self.nudge("feather", -0.01)),
                            a("Feather up", ["="], lambda: self.nudge("feather", 0.01)))
        self.act_load_model = a("&Load model…", ["Ctrl+L"], self.choose_model)
        self.act_remember = a("Re&member this face", ["K"], self.remember_face)
        self.act_modes = [a(f"Network: {m}", [f"Ctrl+{i + 1}"], lambda _=False, m=m: self.set_pipeline(mode=m))
                          for i, m in enumerate(NETWORK_FILLERS)]
        self.act_provider = a("Next execution &provider", ["P"], self.cycle_provider)
        self.act_record = a("&Record", ["R"], self.set_recording, checkable=True)
        self.act_snapshot = a("&Snapshot", ["S"], self.snapshot)
        self.act_vcam = a("&Virtual camera", ["V"], self.set_virtual_camera, checkable=True)
        self.act_output_dir = a("&Output folder…", ["Ctrl+Shift+O"], self.choose_output_dir)
        self.act_dismiss = a("Dismiss error", ["Esc"], self.dismiss_error)
        self.act_help = a("&Keyboard shortcuts", ["F1"], self.show_shortcuts)
        if self.vcam_reason:
            self.act_vcam.setEnabled(False)
            self.act_vcam.setToolTip(self.vcam_reason)

        menus = self.menuBar()
        file_menu = menus.addMenu("&File")
        for action in (self.act_open_video, self.act_open_image, self.act_find_cameras, self.act_load_model):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        play_menu = menus.addMenu("&Playback")
        for action in (self.act_play, self.act_step, self.act_back, self.act_restart):
            play_menu.addAction(action)
        view_menu = menus.addMenu("&View")
        for action in (self.act_compare, self.act_mask, self.act_faces, self.act_landmarks, self.act_symmetrize,
                       self.act_asymmetry, self.act_fullscreen):
            view_menu.addAction(action)
        model_menu = menus.addMenu("&Model")
        for action in (self.act_remember, *self.act_modes, self.act_provider, *self.act_threshold,
                       *self.act_smoothing, *self.act_feather):
            model_menu.addAction(action)
        output_menu = menus.addMenu("&Output")
        for action in (self.act_record, self.act_snapshot, self.act_vcam, self.act_output_dir):
            output_menu.addAction(action)
        menus.addMenu("&Help").addAction(self.act_help)

    def _build_ui(self) -> None:
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(8)
        layout.addLayout(self._build_picture_column(), stretch=1)
        layout.addWidget(self._build_panel())
        self.setCentralWidget(central)
        self._build_status_bar()

    def _build_picture_column(self) -> QVBoxLayout:
        column = QVBoxLayout()
        column.setSpacing(6)
        self.banner = QFrame()
        self.banner.setObjectName("errorBanner")
        banner_layout = QHBoxLayout(self.banner)
        banner_layout.setContentsMargins(10, 6, 6, 6)
        self.banner_label = QLabel()
        self.banner_label.setWordWrap(True)
        self.banner_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        dismiss = QPushButton("Dismiss (Esc)")
        dismiss.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        dismiss.clicked.connect(self.dismiss_error)
        banner_layout.addWidget(self.banner_label, stretch=1)
        banner_layout.addWidget(dismiss)
        self.banner.hide()
        column.addWidget(self.banner)

        self.view = FrameView()
        self.view.split_changed.connect(lambda value: self.set_view(split=value))
        column.addWidget(self.view, stretch=1)

        bar = QHBoxLayout()
        self.play_button = QPushButton("Pause")
        self.play_button.setToolTip("Play / pause (Space)")
        self.play_button.clicked.connect(self.toggle_play)
        self.step_button = QPushButton("Step ▸")
        self.step_button.setToolTip("Step one frame (→)")
        self.step_button.clicked.connect(self.step)
        self.seek_slider = QSlider(Qt.Orientation.Horizontal)
        self.seek_slider.setToolTip("Seek (← back one second, Home restart)")
        self.seek_slider.sliderMoved.connect(self.seek)
        self.seek_slider.actionTriggered.connect(lambda _: self.seek(self.seek_slider.sliderPosition()))
        self.position_label = QLabel("–")
        self.position_label.setObjectName("value")
        for widget in (self.play_button, self.step_button, self.seek_slider):
            widget.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        bar.addWidget(self.play_button)
        bar.addWidget(self.step_button)
        bar.addWidget(self.seek_slider, stretch=1)
        bar.addWidget(self.position_label)
        self.playback_bar = QWidget()
        self.playback_bar.setLayout(bar)
        self.playback_bar.setEnabled(False)
        column.addWidget(self.playback_bar)
        return column

    def _build_panel(self) -> QScrollArea:
        panel = QWidget()
        panel.setObjectName("panel")
        layout = QVBoxLayout(panel)
        layout.setContentsMargins(0, 0, 4, 0)
        for group in (self._source_group(), self._model_group(), self._adjust_group(), self._view_group(),
                      self._output_group()):
            layout.addWidget(group)
        layout.addStretch(1)
        layout.addWidget(hint("F1: keyboard shortcuts"))
        scroll = QScrollArea()
        scroll.setObjectName("panelScroll")
        scroll.setWidget(panel)
        scroll.setWidgetResizable(True)
        scroll.setFixedWidth(310)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        return scroll

    def _button(self, text: str, tooltip: str, slot: Callable, checkable: bool = False) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tooltip)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        button.setCheckable(checkable)
        (button.toggled if checkable else button.clicked).connect(slot)
        return button

    def _source_group(self) -> QGroupBox:
        box = QGroupBox("Source")
        layout = QVBoxLayout(box)
        row = QHBoxLayout()
        self.camera_combo = QComboBox()
        self.camera_combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.camera_combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.camera_combo.addItem("Looking for cameras…")
        self.camera_combo.activated.connect(self._camera_chosen)
        row.addWidget(self.camera_combo, stretch=1)
        row.addWidget(self._button("↻", "Find cameras again (F5)", self.find_cameras))
        layout.addLayout(row)
        row = QHBoxLayout()
        row.addWidget(self._button("Open video…", "Open a video file; it loops (O)", self.choose_video))
        row.addWidget(self._button("Open image…", "Open a still image (I)", self.choose_image))
        layout.addLayout(row)
        self.source_label = hint("No source open")
        layout.addWidget(self.source_label)
        return box

    def _model_group(self) -> QGroupBox:
        box = QGroupBox("Model")
        form = QFormLayout(box)
        row = QHBoxLayout()
        self.model_combo = QComboBox()
        self.model_combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.model_combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.model_combo.activated.connect(self._model_chosen)
        row.addWidget(self.model_combo, stretch=1)
        row.addWidget(self._button("…", "Load an .onnx model; pick two for blind + symmetry (Ctrl+L)",
                                   self.choose_model))
        form.addRow("Model", row)
        self.mode_combo = QComboBox()
        self.mode_combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.mode_combo.addItems(NETWORK_FILLERS)
        self.mode_combo.setToolTip("Which network paints what the face memory and the mirrored half cannot: auto "
                                   "(the symmetry model when loaded, else a blind model's own fill) · symmetry · "
                                   "blind · none (classical inpainting only) · Ctrl+1–4")
        self.mode_combo.activated.connect(lambda i: self.set_pipeline(mode=NETWORK_FILLERS[i]))
        form.addRow("Network", self.mode_combo)
        self.provider_combo = QComboBox()
        self.provider_combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.provider_combo.addItems(PROVIDERS)
        self.provider_combo.setToolTip("Execution provider (P). This onnxruntime has: "
                                       + ", ".join(onnxruntime.get_available_providers()))
        self.provider_combo.activated.connect(lambda i: self.set_pipeline(provider=PROVIDERS[i]))
        form.addRow("Provider", self.provider_combo)
        self.pipeline_label = hint("Loading model…")
        form.addRow(self._button("Remember this face", "Store the face as it is now in the face memory: occlusions "
                                 "that come later are filled with it (K)", self.remember_face))
        self.memory_label = hint("memory: empty")
        form.addRow(self.memory_label)
        form.addRow(self.pipeline_label)
        return box

    def _slider_row(self, form: QFormLayout, title: str, tooltip: str, control: QSlider) -> QLabel:
        value = QLabel()
        value.setObjectName("value")
        row = QHBoxLayout()
        row.addWidget(control, stretch=1)
        row.addWidget(value)
        control.setToolTip(tooltip)
        label = QLabel(title)
        label.setToolTip(tooltip)
        form.addRow(label, row)
        return value

    def _adjust_group(self) -> QGroupBox:
        box = QGroupBox("Adjust")
        form = QFormLayout(box)
        self.threshold_slider = slider(0, 99, 0)
        self.threshold_value = self._slider_row(form, "Mask threshold", "Occlusion probability above which a "
                                                "face pixel is replaced; 0 = the model's calibrated threshold "
                                                "([ and ])", self.threshold_slider)
        self.threshold_slider.valueChanged.connect(lambda v: self.set_tuning(threshold=v / 100))
        self.smoothing_slider = slider(0, 100, 50)
        self.smoothing_value = self._slider_row(form, "Persistence", "How an occlusion persists per tracked "
                                                "face: 0 = every frame decides alone; more holds it on longer "
                                                "(; and ')", self.smoothing_slider)
        self.smoothing_slider.valueChanged.connect(lambda v: self.set_tuning(smoothing=v / 100))
        self.feather_slider = slider(0, 100, 12)
        self.feather_value = self._slider_row(form, "Feathering", "Soft edge outside the filled region, as a "
                                              "share of the face crop; never beyond the face (- and =)",
                                              self.feather_slider)
        self.feather_slider.valueChanged.connect(lambda v: self.set_tuning(feather=v / 1000))
        return box

    def _view_group(self) -> QGroupBox:
        box = QGroupBox("View")
        layout = QVBoxLayout(box)
        self.compare_combo = QComboBox()
        self.compare_combo.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.compare_combo.addItems([COMPARE_LABELS[m] for m in COMPARE_MODES])
        self.compare_combo.setToolTip("Original and result side by side, a split you drag, or the result (C)")
        self.compare_combo.activated.connect(lambda i: self.set_view(compare=COMPARE_MODES[i]))
        layout.addWidget(self.compare_combo)
        self.overlay_boxes: dict[str, QCheckBox] = {}
        for key, text, action in (("show_mask", "Occlusion mask (M)", self.act_mask),
                                  ("show_faces", "Face boxes and track ids (B)", self.act_faces),
                                  ("show_landmarks", "Landmarks (L)", self.act_landmarks),
                                  ("symmetrize", "Symmetric faces (Y)", self.act_symmetrize),
                                  ("show_asymmetry", "Asymmetry heat-map (H)", self.act_asymmetry)):
            check = QCheckBox(text)
            check.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            check.toggled.connect(action.setChecked)
            action.toggled.connect(check.setChecked)
            self.overlay_boxes[key] = check
            layout.addWidget(check)
        return box

    def _output_group(self) -> QGroupBox:
        box = QGroupBox("Output")
        layout = QVBoxLayout(box)
        row = QHBoxLayout()
        self.record_button = self._button("● Record", "Record the result to a video file (R); a video file's "
                                          "audio is kept", self.act_record.setChecked, checkable=True)
        self.record_button.setObjectName("recordButton")
        self.act_record.toggled.connect(self.record_button.setChecked)
        row.addWidget(self.record_button)
        row.addWidget(self._button("Snapshot", "Save the result as PNG (S)", self.snapshot))
        layout.addLayout(row)
        self.vcam_button = self._button("Virtual camera", "Send the result to a virtual camera (V)",
                                        self.act_vcam.setChecked, checkable=True)
        self.act_vcam.toggled.connect(self.vcam_button.setChecked)
        layout.addWidget(self.vcam_button)
        if self.vcam_reason:
            self.vcam_button.setEnabled(False)
            self.vcam_button.setToolTip(self.vcam_reason)
        self.vcam_label = hint(self.vcam_reason.capitalize() if self.vcam_reason else "Virtual camera: off")
        layout.addWidget(self.vcam_label)
        row = QHBoxLayout()
        self.output_label = hint("")
        row.addWidget(self.output_label, stretch=1)
        row.addWidget(self._button("Folder…", "Where recordings and snapshots go (Ctrl+Shift+O)",
                                   self.choose_output_dir))
        layout.addLayout(row)
        return box

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.fps_label = QLabel("– fps")
        self.latency_label = QLabel("latency –")
        self.latency_label.setToolTip("Capture-to-display latency over the last 120 frames (p50 / p95)")
        self.stages_label = QLabel("")
        self.stages_label.setToolTip("Median time per pipeline stage")
        self.provider_label = QLabel("")
        self.provider_label.setWordWrap(False)
        for label in (self.fps_label, self.latency_label, self.stages_label, self.provider_label):
            bar.addPermanentWidget(label)

    def _connect_engine(self) -> None:
        self.engine.frame_ready.connect(self._on_frame_ready)
        self.engine.error.connect(self.show_error)
        self.engine.source_opened.connect(self._on_source_opened)
        self.engine.source_closed.connect(self._on_source_closed)
        self.engine.pipeline_ready.connect(self._on_pipeline_ready)
        self.engine.recording_stopped.connect(self._on_recording_stopped)

    def _sync_controls_from_settings(self) -> None:
        s = self.settings
        self._fill_models()
        self.mode_combo.setCurrentIndex(NETWORK_FILLERS.index(s.mode))
        self.provider_combo.setCurrentIndex(PROVIDERS.index(s.provider))
        for control, value in ((self.threshold_slider, s.threshold * 100), (self.smoothing_slider, s.smoothing * 100),
                               (self.feather_slider, s.feather * 1000)):
            control.blockSignals(True)
            control.setValue(int(round(value)))
            control.blockSignals(False)
        self.compare_combo.setCurrentIndex(COMPARE_MODES.index(s.compare) if s.compare in COMPARE_MODES else 0)
        self.act_mask.setChecked(s.show_mask)
        self.act_faces.setChecked(s.show_faces)
        self.act_landmarks.setChecked(s.show_landmarks)
        self.act_symmetrize.setChecked(s.symmetrize)
        self.act_asymmetry.setChecked(s.show_asymmetry)
        self._show_tuning_values()
        self.output_label.setText(f"Saving to {s.output_dir}")

    # --- settings ------------------------------------------------------------------------------------------------
    def _update_settings(self, **changes) -> None:
        self.settings = replace(self.settings, **changes)
        save_settings(self.store, self.settings)

    def set_tuning(self, **changes) -> None:
        """Threshold / smoothing / feathering: swapped into the running stages, applied on the next frame."""
        self._update_settings(**changes)
        self._show_tuning_values()
        self.engine.set_config(pipeline_config(self.base_config, self.settings))

    def set_pipeline(self, **changes) -> None:
        """Models / mode / provider: the worker rebuilds the pipeline; the window stays."""
        self._update_settings(**changes)
        self.mode_combo.setCurrentIndex(NETWORK_FILLERS.index(self.settings.mode))
        self.provider_combo.setCurrentIndex(PROVIDERS.index(self.settings.provider))
        self._fill_models()
        self.pipeline_label.setText("Loading model…")
        self.engine.set_config(pipeline_config(self.base_config, self.settings))

    def nudge(self, name: str, delta: float) -> None:
        control, scale = {"threshold": (self.threshold_slider, 100), "smoothing": (self.smoothing_slider, 100),
                          "feather": (self.feather_slider, 1000)}[name]
        control.setValue(control.value() + int(round(delta * scale)))

    def _show_tuning_values(self) -> None:
        s = self.settings
        self.threshold_value.setText(f"{s.threshold:.2f}" if s.threshold > 0 else "model")
        self.smoothing_value.setText("off" if s.smoothing <= 0 else f"{s.smoothing:.0%}")
        self.feather_value.setText(f"{s.feather:.3f}")

    def view_options(self) -> ViewOptions:
        s = self.settings
        return ViewOptions(s.compare, s.split, s.show_mask, s.show_faces, s.show_landmarks, s.symmetrize,
                           s.show_asymmetry)

    def set_view(self, **changes) -> None:
        self._update_settings(**changes)
        self.render()

    def cycle_compare(self) -> None:
        mode = COMPARE_MODES[(COMPARE_MODES.index(self.settings.compare) + 1) % len(COMPARE_MODES)]
        self.compare_combo.setCurrentIndex(COMPARE_MODES.index(mode))
        self.set_view(compare=mode)

    def cycle_provider(self) -> None:
        self.set_pipeline(provider=PROVIDERS[(PROVIDERS.index(self.settings.provider) + 1) % len(PROVIDERS)])

    # --- models --------------------------------------------------------------------------------------------------
    def _fill_models(self) -> None:
        """Shipped models by name, plus the user's own files; the current choice selected."""
        self.model_combo.clear()
        choices: list[tuple[str, tuple[str, ...]]] = []
        shipped = available_models()
        if shipped:
            choices.append(("Shipped default", ()))
            choices += [(name, (name,)) for name in shipped]
        current = tuple(self.settings.models)
        if current and current not in [c[1] for c in choices]:
            choices.append((" + ".join(Path(m).name for m in current), current))
        if not choices:
            choices.append(("No model: load one (Ctrl+L)", ()))
        for text, models in choices:
            self.model_combo.addItem(text, models)
            self.model_combo.setItemData(self.model_combo.count() - 1, "\n".join(models) or text,
                                         Qt.ItemDataRole.ToolTipRole)
        index = next((i for i, c in enumerate(choices) if c[1] == current), 0)
        self.model_combo.setCurrentIndex(index)

    def _model_chosen(self, index: int) -> None:
        self.set_pipeline(models=tuple(self.model_combo.itemData(index) or ()))

    def choose_model(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Load model (one blind; optionally one symmetry)",
                                                str(Path(self.settings.models[0]).parent) if self.settings.models
                                                else str(Path.home()), "ONNX models (*.onnx)")
        if paths:
            self.set_pipeline(models=tuple(paths))

    def _on_pipeline_ready(self, state: PipelineState | None) -> None:
        if state is None:
            self.pipeline_label.setText("No model running: showing the original picture")
            self.provider_label.setText("")
            return
        provider = state.providers[0].replace("ExecutionProvider", "")
        self.pipeline_label.setText(f"{' + '.join(state.models)} · {state.mode} · {provider}")
        if state.fallback_reason:
            self.provider_label.setObjectName("providerWarning")
            reason = state.fallback_reason
            short = reason if len(reason) <= 90 else reason[:89] + "…"   # full reason in the tooltip
            self.provider_label.setText(f"⚠ Running on CPU: {short}")
            self.provider_label.setToolTip(state.fallback_reason)
        else:
            self.provider_label.setObjectName("")
            self.provider_label.setText(provider)
            self.provider_label.setToolTip("")
        self.provider_label.style().unpolish(self.provider_label)  # re-apply the stylesheet for the new name
        self.provider_label.style().polish(self.provider_label)

    # --- sources -------------------------------------------------------------------------------------------------
    def open_source(self, spec: str) -> None:
        self.statusBar().showMessage(f"Opening {spec}…", 3000)
        self.engine.open_source(spec)

    def choose_video(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open video", self._last_folder(), VIDEO_FILTER)
        if path:
            self.open_source(path)

    def choose_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", self._last_folder(), IMAGE_FILTER)
        if path:
            self.open_source(path)

    def _last_folder(self) -> str:
        source = Path(self.settings.source) if self.settings.source else None
        return str(source.parent) if source is not None and source.parent.is_dir() else str(Path.home())

    def find_cameras(self) -> None:
        finder = self.camera_finder
        threading.Thread(target=lambda: self.cameras_found.emit(finder()), name="unveil-camera-probe",
                         daemon=True).start()

    def _fill_cameras(self, cameras: list[CameraInfo]) -> None:
        self.camera_combo.clear()
        if not cameras:
            self.camera_combo.addItem("No camera found", None)
            self.camera_combo.setToolTip("No camera answered on indices 0-9 (/dev/video*). Press F5 to look again.")
            return
        self.camera_combo.addItem("Choose a camera…", None)
        for camera in cameras:
            self.camera_combo.addItem(camera.label, str(camera.index))
        self.camera_combo.setToolTip("Cameras found on this system (Alt+N opens camera N)")

    def _camera_chosen(self, index: int) -> None:
        spec = self.camera_combo.itemData(index)
        if spec is not None:
            self.open_source(spec)

    def _on_source_opened(self, description: FeedDescription) -> None:
        if self.recorder is not None:  # a recording belongs to one source's timeline
            self.engine.stop_recording()
            self._finish_recording(self.recorder, "the source changed")
            self.act_record.setChecked(False)
        self.description = description
        self._update_settings(source=description.spec)
        self.source_label.setText(description.label + (" · audio" if description.has_audio else ""))
        is_video = description.kind == "video"
        self.playback_bar.setEnabled(is_video)
        self.seek_slider.setRange(0, max(0, description.frame_count - 1))
        self.play_button.setText("Pause")
        self.stats.reset()
        self.dismiss_error()

    def _on_source_closed(self) -> None:
        self.description = None
        self.playback_bar.setEnabled(False)
        self.source_label.setText("No source open")

    # --- playback ------------------------------------------------------------------------------------------------
    def _video_control(self):
        feed = self.engine.feed
        return feed.control if feed is not None and self.description is not None \
            and self.description.kind == "video" else None

    def set_playing(self, playing: bool) -> None:
        control = self._video_control()
        if control is not None:
            control.set_playing(playing)
            self.play_button.setText("Pause" if playing else "Play")

    def toggle_play(self) -> None:
        control = self._video_control()
        if control is not None:
            self.set_playing(not control.playing)

    def step(self) -> None:
        control = self._video_control()
        if control is not None:
            self.set_playing(False)
            control.step()

    def seek(self, index: int) -> None:
        control = self._video_control()
        if control is not None:
            control.seek(index)

    def back_one_second(self) -> None:
        if self.description is not None and self.current_frame is not None:
            self.seek(max(0, self.current_frame.index - round(self.description.fps or 25)))

    # --- display -------------------------------------------------------------------------------------------------
    def _on_frame_ready(self) -> None:
        frame = self.engine.slot.take()
        if frame is None:
            return
        self.current_frame = frame
        self.frames_shown += 1
        self.stats.on_display(frame, time.perf_counter())
        self.render()
        if self.description is not None and self.description.kind == "video" and not self.seek_slider.isSliderDown():
            self.seek_slider.blockSignals(True)
            self.seek_slider.setValue(frame.index)
            self.seek_slider.blockSignals(False)
            fps = self.description.fps or 25
            self.position_label.setText(f"{frame.index / fps:5.1f} s · {frame.index}")

    def render(self) -> None:
        """Compose the current frame with the view options (overlays are drawn here, on a copy)."""
        if self.current_frame is not None:
            options = self.view_options()
            self.view.show_image(compose_view(self.current_frame, options), options.compare, options.split)

    def _update_status(self) -> None:
        snap = self.stats.snapshot()
        if not snap.frames:
            return
        self.fps_label.setText(f"{snap.fps:.1f} fps")
        self.latency_label.setText(f"latency p50 {snap.latency_p50_ms:.0f} ms · p95 {snap.latency_p95_ms:.0f} ms")
        self.stages_label.setText(format_stage_times(snap.stage_ms))
        self.memory_label.setText(self.engine.memory_summary())

    def remember_face(self) -> None:
        if self.engine.remember_face():
            self.statusBar().showMessage("The face will be remembered from the next frame", 3000)
        else:
            self.statusBar().showMessage("No model is running: nothing to remember", 3000)

    def toggle_fullscreen(self) -> None:
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    # --- errors --------------------------------------------------------------------------------------------------
    def show_error(self, message: str) -> None:
        self.last_error = message
        self.banner_label.setText(f"⚠  {message}")
        self.banner.show()

    def dismiss_error(self) -> None:
        self.banner.hide()

    # --- output --------------------------------------------------------------------------------------------------
    def _output_folder(self) -> Path | None:
        folder = Path(self.settings.output_dir)
        if not folder.is_dir():
            self.show_error(f"output folder {folder} does not exist; choose one (Ctrl+Shift+O)")
            return None
        return folder

    def choose_output_dir(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for recordings and snapshots", self.settings.output_dir)
        if folder:
            self._update_settings(output_dir=folder)
            self.output_label.setText(f"Saving to {folder}")

    def set_recording(self, on: bool) -> None:
        if on and self.recorder is None:
            folder = self._output_folder()
            if folder is None or self.engine.feed is None:
                if folder is not None:
                    self.show_error("nothing to record: open a source first")
                self.act_record.setChecked(False)
                return
            rate, audio = self.engine.recording_rate()
            self.recorder = Recorder(timestamped_path(folder, "unveil", ".mp4"), rate, audio)
            self.engine.start_recording(self.recorder)
            self.statusBar().showMessage(f"Recording to {self.recorder.path}", 4000)
        elif not on and self.recorder is not None:
            self.engine.stop_recording()
            self._finish_recording(self.recorder, "")

    def _on_recording_stopped(self, recorder: Recorder, reason: str) -> None:
        if recorder is self.recorder:
            self._finish_recording(recorder, reason)
            self.act_record.setChecked(False)

    def _finish_recording(self, recorder: Recorder, reason: str) -> None:
        self.recorder = None
        try:
            path = recorder.close()
        except UnveilError as exc:
            self.show_error(str(exc))
            return
        if path is None:
            self.statusBar().showMessage("Nothing was recorded", 4000)
            return
        self.last_recording = path
        why = f" ({reason})" if reason else ""
        self.statusBar().showMessage(f"Saved {path} — {recorder.frames_written} frames{why}", 8000)

    def snapshot(self) -> None:
        folder = self._output_folder()
        if folder is None:
            return
        if self.current_frame is None:
            self.show_error("nothing to snapshot yet: no frame has been shown")
            return
        try:
            self.last_snapshot = save_snapshot(self.current_frame.result(), timestamped_path(folder, "unveil", ".png"))
        except UnveilError as exc:
            self.show_error(str(exc))
            return
        self.statusBar().showMessage(f"Saved {self.last_snapshot}", 6000)

    def set_virtual_camera(self, on: bool) -> None:
        if not on:
            self.engine.stop_virtual_camera()
            self.vcam_label.setText("Virtual camera: off")
            return
        try:
            camera = VirtualCamera(self.description.fps if self.description else 30.0)
        except UnveilError as exc:
            self.show_error(str(exc))
            self.act_vcam.setChecked(False)
            return
        self.engine.start_virtual_camera(camera)
        self.vcam_label.setText("Virtual camera: on")

    def show_shortcuts(self) -> None:
        QMessageBox.information(self, "Keyboard shortcuts", SHORTCUTS_HELP)

    # --- closing -------------------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self.status_timer.stop()
        self.store.setValue("geometry", self.saveGeometry())
        save_settings(self.store, self.settings)
        self.store.sync()  # written to disk now, not whenever Qt gets round to it
        if self.recorder is not None:
            self.engine.stop_recording()
            self._finish_recording(self.recorder, "")
        self.engine.shutdown()
        super().closeEvent(event)
