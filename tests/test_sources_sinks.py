"""Sources and sinks: offline video keeps every frame, timestamp and audio packet; bad inputs/outputs fail clearly."""
from __future__ import annotations

import functools
import http.server
import shutil
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from realtime.errors import UnveilError
from realtime.frame import Frame
from realtime.sinks import (ImageSink, MaskSink, VideoFileSink, check_writable, partial_path,
                            video_stream_settings)
from realtime.sources import CameraSource, ImageSource, VideoFileSource, VideoInfo, open_source
from tests.video_clips import clip_image, corrupt_packet, make_clip, stream_packets, video_frame_times


def copy_through(source_path: Path, output_path: Path) -> VideoFileSource:
    """source -> sink with the frames untouched, as the offline pipeline does when nothing is occluded."""
    source = open_source(str(source_path))
    with VideoFileSink(output_path, source.info, str(source_path)) as sink:
        for frame in source:
            sink.write(frame)
    source.close()
    return source


def info_for(width: int, height: int, fps: Fraction = Fraction(25)) -> VideoInfo:
    return VideoInfo(width=width, height=height, fps=fps, time_base=1 / fps, frame_count=0, duration_s=0.0,
                     has_audio=False, codec="rawvideo")


# ---------------------------------------------------------------------------------------------------------------
# Video round trip


@pytest.mark.parametrize("rate", [Fraction(25), Fraction(30000, 1001)])
def test_round_trip_keeps_frame_count_rate_timestamps_and_audio_packets(tmp_path, rate):
    clip = make_clip(tmp_path / "in.mp4", frames=48, rate=rate)
    output = tmp_path / "out.mp4"
    source = copy_through(clip, output)

    assert source.failed_frames == []
    assert video_frame_times(output) == video_frame_times(clip)          # every pts, exactly, same count
    assert len(video_frame_times(output)) == 48
    with av.open(str(output)) as container:
        video = container.streams.video[0]
        assert video.average_rate == rate
        assert video.codec_context.name == "h264"
        assert video.codec_context.pix_fmt == "yuv420p"
    audio_in, audio_out = stream_packets(clip, "audio"), stream_packets(output, "audio")
    assert len(audio_out) == len(audio_in) > 20
    assert [p.time for p in audio_out] == [p.time for p in audio_in]
    assert [p.data for p in audio_out] == [p.data for p in audio_in]    # copied, not re-encoded
    assert [p.data for p in stream_packets(output, "video")] != [p.data for p in stream_packets(clip, "video")]


def test_source_reports_video_info(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=30, width=80, height=48, rate=Fraction(30000, 1001))
    source = open_source(str(clip))
    assert isinstance(source, VideoFileSource) and not source.is_live
    info = source.info
    assert (info.width, info.height, info.fps, info.frame_count) == (80, 48, Fraction(30000, 1001), 30)
    assert info.has_audio and info.codec == "h264"
    assert info.duration_s == pytest.approx(30 * 1001 / 30000, abs=0.01)
    frames = list(source)
    assert [f.index for f in frames] == list(range(30))
    assert all(f.image.shape == (48, 80, 3) and f.image.dtype == np.uint8 for f in frames)
    assert all(f.time_base == info.time_base and not f.decode_failed for f in frames)
    source.close()


def test_sink_writes_frame_result_not_input(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=12, audio=False)
    output = tmp_path / "out.mp4"
    source = open_source(str(clip))
    with VideoFileSink(output, source.info, None) as sink:
        for frame in source:
            frame.output = np.full_like(frame.image, 40 + 10 * frame.index)
            sink.write(frame)
    with av.open(str(output)) as container:
        assert not container.streams.audio
        means = [frame.to_ndarray(format="bgr24").mean() for frame in container.decode(video=0)]
    assert means == pytest.approx([40 + 10 * i for i in range(12)], abs=5)  # steps of 10: each frame is told apart


def test_audio_is_interleaved_with_video_not_appended(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=48)
    output = tmp_path / "out.mp4"
    copy_through(clip, output)
    audio_positions = [p.position for p in stream_packets(output, "audio")]
    video_positions = [p.position for p in stream_packets(output, "video")]
    # Audio written as video advances lies between video packets in the file, not in one block after them.
    assert min(audio_positions) < max(video_positions)
    assert max(audio_positions) > min(video_positions)


def test_odd_frame_size_is_padded_to_even_for_yuv420p(tmp_path):
    output = tmp_path / "odd.mkv"
    images = [clip_image(i, 95, 63) for i in range(5)]
    with VideoFileSink(output, info_for(95, 63), None) as sink:
        for index, image in enumerate(images):
            sink.write(Frame(index=index, image=image, pts=index, time_base=Fraction(1, 25)))
    with av.open(str(output)) as container:
        decoded = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert len(decoded) == 5 and decoded[0].shape == (64, 96, 3)
    # The original pixels are kept (up to compression); the extra column repeats the edge.
    assert np.abs(decoded[2][:63, :95].astype(int) - images[2]).mean() < 6
    assert np.abs(decoded[2][:63, 95].astype(int) - decoded[2][:63, 94]).mean() < 6


def test_frames_without_pts_get_the_nominal_frame_grid(tmp_path):
    output = tmp_path / "camera.mp4"
    with VideoFileSink(output, info_for(64, 48, Fraction(30)), None) as sink:
        for index in range(6):
            sink.write(Frame(index=index, image=clip_image(index, 64, 48)))
    assert video_frame_times(output) == [Fraction(i, 30) for i in range(6)]


def test_frames_hidden_by_an_edit_list_are_not_counted_as_failed(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=12, first_pts=-3, audio=False)  # 3 frames before time 0
    shown = video_frame_times(clip)
    assert len(shown) == 9  # what FFmpeg itself shows
    source = open_source(str(clip))
    frames = list(source)
    assert source.failed_frames == []
    assert [f.pts * f.time_base for f in frames] == shown


# ---------------------------------------------------------------------------------------------------------------
# Damaged input


def test_corrupt_packet_mid_stream_keeps_frame_count_and_reports_the_frame(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=48)
    good_times = video_frame_times(clip)
    packet = stream_packets(clip, "video")[20]
    corrupt_packet(clip, packet)
    broken_index = int(packet.time * 25)  # the clip's frame i is shown at i/25 s

    source = open_source(str(clip))
    frames = list(source)
    assert len(frames) == 48
    assert broken_index in source.failed_frames
    assert [f.index for f in frames if f.decode_failed] == source.failed_frames
    assert [f.pts * f.time_base for f in frames] == good_times
    # A failed frame repeats the last good image.
    assert np.array_equal(frames[broken_index].image, frames[broken_index - 1].image)

    output = tmp_path / "out.mp4"
    copy_through(clip, output)
    assert video_frame_times(output) == good_times
    assert len(stream_packets(output, "audio")) == len(stream_packets(clip, "audio"))


def test_truncated_file_fills_the_missing_tail(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=48, faststart=True)  # index first: the count survives truncation
    good_times = video_frame_times(clip)
    cut_at = stream_packets(clip, "video")[24].position + 3
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[:cut_at])

    source = open_source(str(truncated))
    frames = list(source)
    assert len(frames) == 48
    assert [f.pts * f.time_base for f in frames] == good_times
    failed = source.failed_frames
    assert failed and failed == list(range(failed[0], 48))  # the tail, nothing before the cut
    assert 10 < failed[0] < 30
    assert not frames[0].decode_failed


def test_unreadable_first_keyframe_gives_black_frames_until_the_next(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=10, audio=False, gop=5)
    corrupt_packet(clip, stream_packets(clip, "video")[0])
    source = open_source(str(clip))
    frames = list(source)
    assert len(frames) == 10
    assert 0 in source.failed_frames and frames[0].image.max() == 0
    assert not frames[-1].decode_failed


def test_a_clip_without_one_decodable_frame_is_an_error(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=10, audio=False)  # one keyframe: every frame depends on it
    corrupt_packet(clip, stream_packets(clip, "video")[0])
    with pytest.raises(UnveilError, match="no decodable video frame"):
        list(open_source(str(clip)))


# ---------------------------------------------------------------------------------------------------------------
# Bad inputs


def test_missing_input(tmp_path):
    with pytest.raises(UnveilError, match="does not exist"):
        open_source(str(tmp_path / "nope.mp4"))


def test_text_file_named_mp4(tmp_path):
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video\n")
    with pytest.raises(UnveilError, match="fake.mp4 is not a readable video"):
        open_source(str(fake))


def test_audio_only_file_has_no_video(tmp_path):
    audio_only = tmp_path / "tone.m4a"
    with av.open(str(audio_only), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(UnveilError, match="has no video stream"):
        open_source(str(audio_only))


@pytest.mark.parametrize("spec", [57, "57", "/dev/video57"])
def test_camera_that_does_not_exist(spec):
    with pytest.raises(UnveilError, match=r"^camera (/dev/video)?57 is not available$"):
        open_source(spec)


def test_folder_without_images(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UnveilError, match="has no images"):
        open_source(str(tmp_path))


def test_unreachable_network_stream():
    with pytest.raises(UnveilError, match="not a readable video"):
        open_source("http://127.0.0.1:9/clip.mp4")  # port 9 (discard) refuses connections


def test_network_stream_is_live_and_decodes(tmp_path):
    clip = make_clip(tmp_path / "served.mp4", frames=20, audio=False)
    handler = functools.partial(QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        source = open_source(f"http://127.0.0.1:{server.server_address[1]}/served.mp4")
        assert isinstance(source, VideoFileSource) and source.is_live
        times = [f.pts * f.time_base for f in source]
        source.close()
    finally:
        server.shutdown()
    assert times == video_frame_times(clip)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


# ---------------------------------------------------------------------------------------------------------------
# Cameras (OpenCV VideoCapture; a clip stands in for the device, it goes through the same capture API)


def test_camera_source_reads_through_opencv(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=12, audio=False)
    camera = CameraSource(str(clip), width=96, height=64, fps=25)
    frames = list(camera)
    camera.close()
    assert camera.is_live and camera.info is None
    assert len(frames) == 12 and [f.index for f in frames] == list(range(12))
    assert all(f.pts is None and f.image.shape == (64, 96, 3) for f in frames)


class SilentCapture:
    """A device that opens but never delivers a frame (read fails, or blocks for `block_s`)."""

    def __init__(self, block_s: float) -> None:
        self.block_s = block_s

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return True

    def set(self, prop: int, value: float) -> bool:
        return True

    def get(self, prop: int) -> float:
        return 0.0

    def read(self) -> tuple[bool, None]:
        time.sleep(self.block_s)
        return False, None

    def release(self) -> None:
        pass


@pytest.mark.parametrize("block_s", [0.0, 2.0])
def test_camera_that_opens_but_gives_no_frame(block_s):
    with pytest.raises(UnveilError, match="camera 3 opened but gave no frame"):
        CameraSource(3, first_frame_timeout_s=0.2, open_capture=lambda device: SilentCapture(block_s))


# ---------------------------------------------------------------------------------------------------------------
# Unwritable outputs: one-line error, nothing left behind


def unwritable_outputs(tmp_path: Path) -> list[tuple[Path, str]]:
    a_file = tmp_path / "a_file.txt"
    a_file.write_text("x")
    (tmp_path / "a_folder.mp4").mkdir()
    cases = [(tmp_path / "missing" / "out.mp4", "does not exist"),
             (tmp_path / "a_folder.mp4", "is a folder"),
             (a_file / "out.mp4", "is not a folder")]
    if Path("/proc/self").exists():  # procfs refuses new files even to root
        cases.append((Path("/proc/unveil-out.mp4"), "cannot write to /proc"))
    return cases


def test_unwritable_outputs_are_refused_before_work(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=4)
    info = open_source(str(clip)).info
    for output, reason in unwritable_outputs(tmp_path):
        with pytest.raises(UnveilError, match=reason):
            check_writable(output)
        with pytest.raises(UnveilError, match=reason):
            VideoFileSink(output, info, str(clip))
        assert not output.is_file() and not partial_path(output).exists()


def test_output_appears_only_when_complete_and_abort_leaves_nothing(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=24)
    output = tmp_path / "out.mp4"
    source = open_source(str(clip))
    sink = VideoFileSink(output, source.info, str(clip))
    for frame in source:
        sink.write(frame)
        assert not output.exists()          # work in progress lives under a temporary name
    assert partial_path(output).exists()
    sink.abort()
    assert not output.exists() and not partial_path(output).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_exception_inside_with_block_removes_the_partial_output(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=8)
    output = tmp_path / "out.mp4"
    source = open_source(str(clip))
    with pytest.raises(RuntimeError):
        with VideoFileSink(output, source.info, str(clip)) as sink:
            for frame in source:
                sink.write(frame)
            raise RuntimeError("a stage failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_output_format_that_cannot_hold_the_streams_is_refused_early(tmp_path):
    clip = make_clip(tmp_path / "in.mp4", frames=4)
    output = tmp_path / "out.h264"  # a raw H.264 stream has no place for the AAC audio
    with pytest.raises(UnveilError, match="cannot write video .*out.h264 .*does not support 'aac'"):
        VideoFileSink(output, open_source(str(clip)).info, str(clip))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


# ---------------------------------------------------------------------------------------------------------------
# Images and masks


def test_image_folder_round_trip_keeps_names(tmp_path, astronaut_bgr):
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    small = cv2.resize(astronaut_bgr, (64, 64))
    cv2.imwrite(str(inputs / "b_face.png"), small)
    cv2.imwrite(str(inputs / "a_face.jpg"), small)
    cv2.imwrite(str(inputs / "c_grey.png"), cv2.cvtColor(small, cv2.COLOR_BGR2GRAY))
    (inputs / "d_broken.png").write_bytes(b"not a png")
    (inputs / "notes.txt").write_text("ignored")

    source = open_source(str(inputs))
    assert isinstance(source, ImageSource) and source.info is None and not source.is_live
    sink = ImageSink(outputs, to_folder=True)
    frames = list(source)
    for frame in frames:
        sink.write(frame)
    sink.close()

    assert [f.source_name for f in frames] == ["a_face.jpg", "b_face.png", "c_grey.png"]
    assert all(f.image.shape == (64, 64, 3) for f in frames)
    assert source.failed_frames == [3]
    assert sorted(p.name for p in outputs.iterdir()) == ["a_face.jpg", "b_face.png", "c_grey.png"]
    assert np.array_equal(cv2.imread(str(outputs / "b_face.png")), small)  # png is lossless


def test_single_image_to_file(tmp_path, astronaut_bgr):
    image_path = tmp_path / "face.png"
    cv2.imwrite(str(image_path), astronaut_bgr[:80, :90])
    source = open_source(str(image_path))
    (frame,) = list(source)
    frame.output = 255 - frame.image
    sink = ImageSink(tmp_path / "result.png", to_folder=False)
    sink.write(frame)
    assert np.array_equal(cv2.imread(str(tmp_path / "result.png")), 255 - astronaut_bgr[:80, :90])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face.png", "result.png"]


def test_unreadable_single_image(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(UnveilError, match="not a readable image"):
        open_source(str(broken))


def test_image_sink_refuses_non_image_suffix_and_file_as_folder(tmp_path):
    with pytest.raises(UnveilError, match="image suffix"):
        ImageSink(tmp_path / "out.mp4", to_folder=False)
    (tmp_path / "taken").write_text("x")
    with pytest.raises(UnveilError, match="is a file, not a folder"):
        ImageSink(tmp_path / "taken", to_folder=True)


def test_mask_sink_names_and_values(tmp_path):
    sink = MaskSink(tmp_path / "masks")
    image = np.zeros((6, 8, 3), np.uint8)
    replaced = np.zeros((6, 8), np.uint8)
    replaced[2:4, 3:6] = 255
    sink.write(Frame(index=123, image=image, replaced=replaced))
    sink.write(Frame(index=7, image=image, source_name="face.01.jpg", replaced=replaced))
    sink.write(Frame(index=8, image=image))  # nothing replaced: an all-zero mask
    names = sorted(p.name for p in (tmp_path / "masks").iterdir())
    assert names == ["000008.png", "000123.png", "face.01.png"]
    written = cv2.imread(str(tmp_path / "masks" / "000123.png"), cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint8 and written.ndim == 2 and np.array_equal(written, replaced)
    assert not cv2.imread(str(tmp_path / "masks" / "000008.png"), cv2.IMREAD_UNCHANGED).any()


# ---------------------------------------------------------------------------------------------------------------
# Encoder settings (pure)


def test_video_stream_settings_even_size_libx264():
    info = info_for(96, 64, Fraction(30000, 1001))
    settings = video_stream_settings(info, "libx264", 18)
    assert settings == {"codec": "libx264", "pix_fmt": "yuv420p", "rate": Fraction(30000, 1001),
                        "time_base": Fraction(1001, 30000), "width": 96, "height": 64, "pad_right": 0,
                        "pad_bottom": 0, "options": {"crf": "18", "preset": "faster"}}
    assert video_stream_settings(info, "libx264", 18) == settings  # pure: same input, same output


def test_video_stream_settings_pads_odd_sizes_and_keeps_time_base():
    info = VideoInfo(width=101, height=57, fps=Fraction(25), time_base=Fraction(1, 12800), frame_count=3,
                     duration_s=0.12, has_audio=True, codec="h264")
    settings = video_stream_settings(info, "libx264", 23)
    assert (settings["width"], settings["height"]) == (102, 58)
    assert (settings["pad_right"], settings["pad_bottom"]) == (1, 1)
    assert settings["time_base"] == Fraction(1, 12800) and settings["options"]["crf"] == "23"


def test_video_stream_settings_crf_only_where_the_encoder_has_it():
    info = info_for(64, 64)
    assert video_stream_settings(info, "mpeg4", 18)["options"] == {}
    assert video_stream_settings(info, "libvpx-vp9", 30)["options"] == {"crf": "30", "b": "0"}


def test_video_stream_settings_preset_only_for_x264_and_x265():
    info = info_for(64, 64)
    assert video_stream_settings(info, "libx265", 28, "slow")["options"] == {"crf": "28", "preset": "slow"}
    assert "preset" not in video_stream_settings(info, "libvpx-vp9", 30, "slow")["options"]
    assert video_stream_settings(info, "libx264", 18, "")["options"] == {"crf": "18"}  # none: the encoder's own
