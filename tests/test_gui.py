"""The viewer window driven offscreen with a real clip (a face with a moving magenta occluder, plus audio), the
tiny blind model, real mediapipe and real onnxruntime. No camera is needed: a missing camera is one of the cases."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

pytest.importorskip("PyQt6.QtWidgets")
from PyQt6.QtCore import QLibraryInfo, QSettings, Qt  # noqa: E402
from PyQt6.QtTest import QTest  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402

from gui.app import initial_settings, missing_display, use_pyqt_plugins  # noqa: E402
from gui.cameras import candidate_indices  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402
from gui.overlay import GAP_PX, ViewOptions, compose_view  # noqa: E402
from gui.recording import Recorder, free_path  # noqa: E402
from gui.settings import ViewerSettings, load_settings  # noqa: E402
from gui.virtual_camera import VirtualCamera, virtual_camera_unavailable_reason  # noqa: E402
from realtime.errors import UnveilError  # noqa: E402
from realtime.frame import Frame  # noqa: E402
from realtime.pipeline import PipelineConfig  # noqa: E402
from tests.tiny_models import OCCLUDER_BGR, build_blind_model  # noqa: E402
from tests.video_clips import AUDIO_FRAME, AUDIO_RATE, make_clip, stream_packets, write_tone  # noqa: E402

pytestmark = pytest.mark.gui

SIZE = 160          # the astronaut's face is found by mediapipe at this size (box about 30 px)
CLIP_FRAMES = 40
TIMEOUT_S = 15.0


@pytest.fixture(scope="module")
def qapp() -> QApplication:
    return QApplication.instance() or QApplication([])


def occluded_face(face: np.ndarray, index: int) -> np.ndarray:
    """The face with a magenta bar over the mouth that moves one pixel per frame (so frames differ)."""
    image = face.copy()
    x0 = 58 + index % 12
    image[44:52, x0:x0 + 12] = OCCLUDER_BGR
    return image


@pytest.fixture(scope="module")
def media(tmp_path_factory, astronaut_bgr) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("gui-media")
    face = cv2.resize(astronaut_bgr, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    clip = folder / "face.mp4"
    with av.open(str(clip), "w") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = SIZE, SIZE, "yuv420p"
        video.options = {"crf": "12"}
        sound = container.add_stream("aac", rate=AUDIO_RATE)
        sound.layout = "mono"
        for index in range(CLIP_FRAMES):
            frame = av.VideoFrame.from_ndarray(occluded_face(face, index), format="bgr24")
            frame.pts, frame.time_base = index, Fraction(1, 25)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        write_tone(container, sound, Fraction(CLIP_FRAMES, 25))
    image = folder / "still.png"
    cv2.imwrite(str(image), cv2.resize(occluded_face(face, 0), (SIZE * 2, SIZE * 2)))
    garbage = folder / "garbage.onnx"
    garbage.write_bytes(b"this is not an onnx model")
    return {"clip": clip, "image": image, "model": build_blind_model(folder / "blind.onnx"), "garbage": garbage}


def wait_until(app: QApplication, predicate, timeout_s: float = TIMEOUT_S) -> bool:
    """Run the event loop until `predicate()` holds; False on timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        app.processEvents()
        if predicate():
            return True
        time.sleep(0.002)
    app.processEvents()
    return bool(predicate())


def wait_until_steady(app: QApplication, read, hold_s: float, timeout_s: float = TIMEOUT_S) -> bool:
    """Run the event loop until `read()` has returned the same value for `hold_s` seconds; False on timeout."""
    deadline = time.monotonic() + timeout_s
    value, since = read(), time.monotonic()
    while time.monotonic() < deadline:
        app.processEvents()
        now, current = time.monotonic(), read()
        if current != value:
            value, since = current, now
        elif now - since >= hold_s:
            return True
        time.sleep(0.002)
    return False


@pytest.fixture
def make_window(qapp, media, tmp_path):
    windows = []
    store = QSettings(str(tmp_path / "viewer.ini"), QSettings.Format.IniFormat)

    def make(**overrides) -> MainWindow:
        settings = ViewerSettings(source=str(media["clip"]), models=(str(media["model"]),), show_faces=False,
                                  output_dir=str(tmp_path))
        settings = load_settings(store, settings) if overrides.pop("restore", False) else settings
        for key, value in overrides.items():
            settings = settings.__class__(**{**settings.__dict__, key: value})
        window = MainWindow(store, PipelineConfig(), settings, camera_finder=lambda: [])
        window.resize(900, 600)
        window.show()
        windows.append(window)
        return window

    make.store = store
    yield make
    for window in windows:
        window.close()


def paused_on_a_replaced_face(app: QApplication, window: MainWindow) -> None:
    """Wait for a displayed frame whose occluder was replaced, then pause and let in-flight frames land."""
    assert wait_until(app, lambda: window.current_frame is not None and window.current_frame.replaced is not None
                      and window.current_frame.replaced.any()), window.last_error
    window.set_playing(False)
    feed = window.engine.feed
    # A frame the feed took just before the pause may still be on its way; settled means no change for 0.5 s.
    assert wait_until_steady(app, lambda: (window.current_frame.index, feed.position), hold_s=0.5)
    assert window.current_frame.index == feed.position


def test_frames_reach_the_display_and_change(qapp, make_window):
    window = make_window()
    seen: dict[int, np.ndarray] = {}

    def collect() -> bool:
        frame = window.current_frame
        if frame is not None and frame.index not in seen:
            seen[frame.index] = window.view.displayed_pixels().copy()
        return len(seen) >= 3

    assert wait_until(qapp, collect), window.last_error
    first, *_, last = seen.values()
    assert not np.array_equal(first, last)
    frame = window.current_frame
    shown = window.view.displayed_pixels()
    width = frame.image.shape[1]
    assert shown.shape[1] == 2 * width + GAP_PX        # original | gap | result
    assert np.array_equal(shown[:, :width], frame.image)
    assert np.array_equal(shown[:, width + GAP_PX:], frame.result())


def test_the_occluder_is_replaced_and_overlays_change_the_picture(qapp, make_window):
    window = make_window()
    paused_on_a_replaced_face(qapp, window)
    frame = window.current_frame
    magenta = (frame.image == OCCLUDER_BGR).all(axis=2)
    assert frame.replaced[magenta].mean() > 0.5          # the result pane no longer shows the occluder
    before = window.view.displayed_pixels().copy()
    for action in (window.act_mask, window.act_faces, window.act_landmarks):
        action.setChecked(True)
        after = window.view.displayed_pixels().copy()
        assert not np.array_equal(before, after), action.text()
        before = after
    window.act_mask.setChecked(False)
    assert not np.array_equal(before, window.view.displayed_pixels())


def test_switching_source_from_video_to_image(qapp, make_window, media):
    window = make_window()
    assert wait_until(qapp, lambda: window.frames_shown > 0), window.last_error
    window.open_source(str(media["image"]))
    assert wait_until(qapp, lambda: window.description is not None and window.description.kind == "image"
                      and window.current_frame is not None and window.current_frame.image.shape[0] == 2 * SIZE)
    assert window.view.displayed_pixels().shape[1] == 2 * (2 * SIZE) + GAP_PX
    assert not window.playback_bar.isEnabled()          # no play/seek for a still image


def test_a_missing_camera_shows_an_error_and_the_app_keeps_running(qapp, make_window, media):
    window = make_window(source="")
    window.open_source("7")
    assert wait_until(qapp, lambda: "camera 7 is not available" in window.last_error)
    assert window.banner.isVisible()
    window.open_source(str(media["garbage"]))                      # not a video either
    assert wait_until(qapp, lambda: "is not a readable video" in window.last_error)
    window.open_source(str(media["clip"]))
    assert wait_until(qapp, lambda: window.frames_shown >= 2), window.last_error


def test_a_refused_model_is_reported_and_the_original_is_shown(qapp, make_window, media):
    window = make_window(models=(str(media["garbage"]),))
    assert wait_until(qapp, lambda: "not a loadable ONNX model" in window.last_error)
    assert wait_until(qapp, lambda: window.frames_shown >= 2)
    assert window.current_frame.output is None and not window.current_frame.timings   # passed through
    window.set_pipeline(models=(str(media["model"]),))                                 # no restart needed
    assert wait_until(qapp, lambda: window.engine.pipeline is not None and window.current_frame.timings)
    assert wait_until(qapp, lambda: "auto → " in window.pipeline_label.text())         # what auto resolved to
    assert "memory/mirror" in window.pipeline_label.text()


def test_sliders_swap_the_running_stage_configs(qapp, make_window):
    window = make_window()
    assert wait_until(qapp, lambda: window.engine.pipeline is not None and window.frames_shown > 0)
    pipeline = window.engine.pipeline
    window.threshold_slider.setValue(80)
    window.feather_slider.setValue(60)
    window.smoothing_slider.setValue(0)
    assert pipeline.stage("find").config.threshold == pytest.approx(0.8)
    assert pipeline.stage("fill").config.feather == pytest.approx(0.06)
    assert pipeline.stage("find").config.persist_frames == 1
    window.threshold_slider.setValue(0)                                                # 0 = the model's own
    assert pipeline.stage("find").config.threshold is None
    assert window.engine.pipeline is pipeline                                          # swapped, not rebuilt


def test_recording_writes_the_frames_shown_with_audio(qapp, make_window):
    window = make_window()
    paused_on_a_replaced_face(qapp, window)
    window.act_record.setChecked(True)
    recorder = window.recorder
    shown = []
    for _ in range(5):
        previous = window.current_frame.index
        window.step()
        assert wait_until(qapp, lambda: window.current_frame.index != previous)
        shown.append(window.current_frame.index)
    window.act_record.setChecked(False)
    path = window.last_recording
    assert path is not None and path.exists() and recorder.frames_written == len(set(shown)) == 5
    with av.open(str(path)) as container:
        assert len(container.streams.audio) == 1
        decoded = sum(1 for _ in container.decode(video=0))
    assert decoded == 5


def test_snapshots_never_overwrite(qapp, make_window, tmp_path):
    window = make_window()
    paused_on_a_replaced_face(qapp, window)
    window.snapshot()
    first = window.last_snapshot
    window.snapshot()
    second = window.last_snapshot
    assert first != second and first.exists() and second.exists() and first.parent == tmp_path
    saved = cv2.imread(str(second))
    assert np.array_equal(saved, window.current_frame.result())


def test_settings_are_remembered_between_runs(qapp, make_window):
    window = make_window()
    window.threshold_slider.setValue(70)
    window.act_landmarks.setChecked(True)
    window.cycle_compare()
    window.close()
    again = make_window(restore=True)
    assert again.threshold_slider.value() == 70
    assert again.settings.show_landmarks and again.act_landmarks.isChecked()
    assert again.settings.compare == "split" and again.compare_combo.currentIndex() == 1
    from_disk = load_settings(QSettings(make_window.store.fileName(), QSettings.Format.IniFormat))
    assert from_disk.threshold == pytest.approx(0.7) and from_disk.models == again.settings.models


def test_virtual_camera_explains_why_it_is_unavailable(qapp, make_window):
    reason = virtual_camera_unavailable_reason()
    if reason is None:
        pytest.skip("pyvirtualcam is installed here")
    window = make_window(source="")
    assert not window.act_vcam.isEnabled() and not window.vcam_button.isEnabled()
    assert "pyvirtualcam" in window.vcam_label.text() and "pyvirtualcam" in window.vcam_button.toolTip()


def test_split_view_shows_the_original_left_of_the_divider_and_the_result_right():
    image = np.full((10, 20, 3), 50, np.uint8)
    frame = Frame(index=0, image=image)
    frame.output = np.full_like(image, 200)
    shown = compose_view(frame, ViewOptions(compare="split", split=0.25, show_faces=False))
    assert (shown[:, :5] == 50).all() and (shown[:, 5:] == 200).all()
    assert np.array_equal(compose_view(frame, ViewOptions(compare="result", show_faces=False)), frame.output)


def test_free_path_adds_a_numeric_suffix(tmp_path):
    target = tmp_path / "shot.png"
    assert free_path(target) == target
    target.write_bytes(b"x")
    (tmp_path / "shot-2.png").write_bytes(b"x")
    assert free_path(target) == tmp_path / "shot-3.png"


def test_command_line_overrides_saved_settings():
    from cli.live import viewer_request
    from cli.main import parse_command

    def request(*argv: str):
        return viewer_request(parse_command(["live", *argv])[1])

    saved = ViewerSettings(source="/videos/a.mp4", models=("old.onnx",), threshold=0.7)
    settings = initial_settings(saved, request("--model", "new.onnx", "--network", "blind", "--provider", "cpu",
                                               "--no-temporal"))
    assert settings.source == "/videos/a.mp4"          # no --source: the saved source stays
    assert settings.models == ("new.onnx",) and settings.provider == "cpu" and settings.smoothing == 0.0
    assert settings.mode == "blind"
    assert settings.threshold == 0.7
    assert initial_settings(saved, request("--source", "0")).source == "0"
    assert initial_settings(ViewerSettings(), request()).source == "0"   # nothing saved: the first camera
    assert initial_settings(saved, request("--threshold", "0.5")).threshold == 0.5


def test_a_camera_recording_is_timed_by_capture_clock(tmp_path):
    recorder = Recorder(tmp_path / "camera.mp4", video_rate=None, audio_from=None)
    start = time.perf_counter()
    for index, offset_s in enumerate((0.0, 0.04, 0.12)):     # uneven arrival, as live frames come
        image = np.full((48, 64, 3), 40 * index, np.uint8)
        assert recorder.write(Frame(index=index, image=image, captured_at=start + offset_s))
    path = recorder.close()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [float(f.pts * stream.time_base) for f in container.decode(stream)]
    assert times == pytest.approx([0.0, 0.04, 0.12], abs=1e-3)


def test_a_looping_clip_is_recorded_across_loops_with_its_sound(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=25, rate=Fraction(25))   # one second, with a tone
    recorder = Recorder(tmp_path / "loops.mp4", video_rate=Fraction(25), audio_from=str(clip))
    shown = [*range(15, 25), *range(25), *range(5)]                          # from frame 15, twice round the loop
    for index in shown:
        assert recorder.write(Frame(index=index, image=np.full((64, 96, 3), 4 * index, np.uint8)))
    path = recorder.close()
    assert recorder.frames_written == len(shown)
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        times = [f.pts * video.time_base for f in container.decode(video)]
    assert times == [Fraction(15 + i, 25) for i in range(len(shown))]         # one timeline, no jump back
    audio = stream_packets(path, "audio")
    audio_times = [p.time for p in audio]
    assert audio_times == sorted(audio_times)
    span = audio_times[-1] - audio_times[0]
    assert abs(span - (times[-1] - times[0])) < Fraction(2 * AUDIO_FRAME, AUDIO_RATE)  # sound for all of it


def test_keyboard_shortcuts_drive_the_window(qapp, make_window):
    window = make_window()
    paused_on_a_replaced_face(qapp, window)
    window.activateWindow()
    assert wait_until(qapp, window.isActiveWindow, timeout_s=5.0)
    index = window.current_frame.index
    threshold = window.threshold_slider.value()
    QTest.keyClick(window, Qt.Key.Key_M)
    QTest.keyClick(window, Qt.Key.Key_BracketRight)
    QTest.keyClick(window, Qt.Key.Key_Right)
    assert window.settings.show_mask and window.threshold_slider.value() == threshold + 5
    assert wait_until(qapp, lambda: window.current_frame.index == index + 1)


def test_a_gpu_provider_that_cannot_load_is_explained_in_the_status_bar(qapp, make_window):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: no fallback to show")
    window = make_window(provider="cuda")
    assert wait_until(qapp, lambda: "Running on CPU" in window.provider_label.text())
    assert "cuda" in window.provider_label.text()      # the reason, in words
    assert wait_until(qapp, lambda: window.frames_shown > 0 and window.current_frame.timings)   # still works


def test_virtual_camera_sends_rgb_frames_of_one_size(monkeypatch):
    import importlib.machinery
    import types

    sent = []

    class FakeCamera:
        def __init__(self, width, height, fps):
            if width > 1000:
                raise RuntimeError("no v4l2loopback device found")
            self.size, self.device = (width, height), "/dev/video9"

        def send(self, rgb):
            sent.append(rgb)

        def close(self):
            pass

    fake = types.ModuleType("pyvirtualcam")
    fake.__spec__ = importlib.machinery.ModuleSpec("pyvirtualcam", None)
    fake.Camera = FakeCamera
    monkeypatch.setitem(sys.modules, "pyvirtualcam", fake)
    camera = VirtualCamera(fps=25)
    bgr = np.zeros((40, 60, 3), np.uint8)
    bgr[..., 0] = 255                                       # blue in BGR
    camera.send(bgr)
    camera.send(np.zeros((80, 120, 3), np.uint8))           # a new source size is scaled to the device's
    assert [s.shape for s in sent] == [(40, 60, 3), (40, 60, 3)] and (sent[0][..., 2] == 255).all()
    with pytest.raises(UnveilError, match="v4l2loopback"):
        VirtualCamera(fps=25).send(np.zeros((10, 1200, 3), np.uint8))


def test_camera_probing_opens_only_existing_video_devices_on_linux(tmp_path):
    (tmp_path / "video0").touch()
    (tmp_path / "video2").touch()
    (tmp_path / "video12").touch()                          # beyond the probed range
    assert candidate_indices(10, tmp_path, "linux") == [0, 2]
    assert candidate_indices(3, tmp_path, "win32") == [0, 1, 2]


@pytest.mark.parametrize("env, reason_expected", [
    ({}, True),
    ({"DISPLAY": ":0"}, False),
    ({"WAYLAND_DISPLAY": "wayland-0"}, False),
    ({"QT_QPA_PLATFORM": "offscreen"}, False),
    ({"QT_QPA_PLATFORM": "minimal"}, False),
    ({"QT_QPA_PLATFORM": "xcb"}, True),
    ({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":1"}, False),
    ({"QT_QPA_PLATFORM": "wayland", "DISPLAY": ":1"}, True),
    ({"QT_QPA_PLATFORM": "wayland;xcb", "DISPLAY": ":1"}, False),
])
def test_missing_display_is_found_before_qt_starts(env, reason_expected):
    reason = missing_display(env, platform="linux")
    assert bool(reason) == reason_expected
    if reason:
        assert "--headless" in reason and "\n" not in reason
    assert missing_display({}, platform="darwin") is None and missing_display({}, platform="win32") is None


def test_live_without_a_display_says_headless_instead_of_aborting():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    result = subprocess.run([sys.executable, "-m", "cli", "live", "--source", "57"], capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 2, result.stderr  # not 134 (SIGABRT from Qt's platform plugin)
    errors = [line for line in result.stderr.splitlines() if line.startswith("unveil: error:")]
    assert len(errors) == 1 and "--headless" in errors[0], result.stderr
    assert "Traceback" not in result.stderr and "qt.qpa" not in result.stderr


def test_the_viewer_loads_pyqt_plugins_not_opencvs():
    cv2_plugins = str(Path(cv2.__file__).parent / "qt" / "plugins")
    env = {"QT_QPA_PLATFORM_PLUGIN_PATH": cv2_plugins, "QT_QPA_FONTDIR": str(Path(cv2.__file__).parent / "qt" / "fonts"),
           "QT_PLUGIN_PATH": os.pathsep.join([cv2_plugins, "/opt/my-qt6-plugins"])}
    use_pyqt_plugins(env)
    pyqt_plugins = QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)
    platforms = Path(env["QT_QPA_PLATFORM_PLUGIN_PATH"])
    assert platforms == Path(pyqt_plugins) / "platforms" and any(platforms.glob("*offscreen*"))
    assert env["QT_PLUGIN_PATH"] == "/opt/my-qt6-plugins" and "QT_QPA_FONTDIR" not in env
    assert not any("cv2" in value for value in env.values())
