"""Where frames come from: video files and network streams (PyAV), cameras (OpenCV), images and image folders.

Every source yields `Frame` records in presentation order. Video files keep their timestamps exactly and never
lose a frame: a frame that cannot be decoded still comes out (the last good image, or black before the first one)
with `decode_failed=True`, and its index is listed in `failed_frames`, so the output keeps the input's frame count.
"""
from __future__ import annotations

import heapq
import logging
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import av
import cv2
import numpy as np

from realtime.errors import UnveilError
from realtime.frame import Frame
from realtime.native_stderr import native_stderr_lines

log = logging.getLogger("unveil")

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})

# Network streams must not hang forever: (seconds to open, seconds a single read may block).
NETWORK_TIMEOUT_S = (10.0, 10.0)
NETWORK_OPTIONS = {"rtsp_transport": "tcp"}

CAMERA_FIRST_FRAME_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: Fraction
    time_base: Fraction
    frame_count: int          # exact where the container stores it, else estimated from duration; 0 if unknown
    duration_s: float
    has_audio: bool
    codec: str


class Source(Protocol):
    failed_frames: list[int]
    info: VideoInfo | None
    is_live: bool
    library_warnings: int     # the decoding libraries' own warnings about damaged input (FFmpeg, libjpeg, ...)

    def __iter__(self) -> Iterator[Frame]: ...

    def close(self) -> None: ...


def is_url(spec: str) -> bool:
    return "://" in spec


def is_camera_spec(spec: str | int) -> bool:
    if isinstance(spec, int):
        return True
    return spec.isdigit() or spec.startswith("/dev/video")


def open_source(spec: str | int | os.PathLike, *, width: int | None = None, height: int | None = None,
                fps: float | None = None) -> Source:
    """Open a camera (index, digit string, /dev/videoN), a video file or URL, an image, or a folder of images.

    width/height/fps are requests to a camera; files are read as they are.
    """
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if is_camera_spec(spec):
        device: int | str = int(spec) if isinstance(spec, int) or spec.isdigit() else spec
        return CameraSource(device, width=width, height=height, fps=fps)
    if is_url(spec):
        return VideoFileSource(spec)
    path = Path(spec)
    if path.is_dir():
        return ImageSource(path)
    if not path.exists():
        raise UnveilError(f"input {spec} does not exist")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSource(path)
    return VideoFileSource(spec)


# ---------------------------------------------------------------------------------------------------------------
# Video files and network streams


# A container that declares more frames than its duration holds at this rate has a damaged header.
MAX_PLAUSIBLE_FPS = 1000


def declared_frame_count(container: av.container.InputContainer, stream: av.VideoStream) -> int:
    """The frame count the container declares, where it can be right; else what its index lists (0: unknown).

    A truncated file's missing tail is padded up to this count, so a damaged header that claims millions of frames
    must not be believed: not more than a per-sample index (MP4) lists, not more than the duration holds.
    """
    declared = stream.frames or 0
    indexed = len(stream.index_entries)
    if indexed and declared > indexed:
        declared = indexed
    duration_s = container.duration / av.time_base if container.duration and container.duration > 0 else None
    if duration_s is not None and declared > duration_s * MAX_PLAUSIBLE_FPS + 1:
        declared = indexed if indexed <= duration_s * MAX_PLAUSIBLE_FPS + 1 else 0
    return declared


def video_info_from_stream(container: av.container.InputContainer, stream: av.VideoStream) -> VideoInfo:
    """What the container says about its first video stream; estimates where it is silent."""
    fps = Fraction(stream.average_rate or stream.guessed_rate or stream.base_rate or 25)
    time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 90000)
    if stream.duration is not None:
        duration_s = float(stream.duration * time_base)
    elif container.duration is not None:
        duration_s = container.duration / av.time_base
    else:
        duration_s = 0.0
    frame_count = declared_frame_count(container, stream) or round(duration_s * fps)
    return VideoInfo(
        width=stream.codec_context.width,
        height=stream.codec_context.height,
        fps=fps,
        time_base=time_base,
        frame_count=int(frame_count),
        duration_s=duration_s,
        has_audio=len(container.streams.audio) > 0,
        codec=stream.codec_context.name,
    )


class FFmpegMessages(logging.Handler):
    """Counts FFmpeg's warnings and errors by the component that wrote them ("h264", "mov,mp4,m4a,3gp,3g2,mj2")
    and keeps them off the terminal: on a damaged input they come by the hundred, in FFmpeg's words, while Unveil
    reports their number once (the summary line, --stats)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[record.name.removeprefix("libav.")] += 1


_ffmpeg_messages: FFmpegMessages | None = None


def ffmpeg_message_counts() -> Counter[str]:
    """The running counts, installed on first use: PyAV passes FFmpeg's messages to the `libav` loggers, where they
    are counted and stop (PyAV's default is to drop them unseen)."""
    global _ffmpeg_messages
    if _ffmpeg_messages is None:
        _ffmpeg_messages = FFmpegMessages()
        logger = logging.getLogger("libav")
        logger.addHandler(_ffmpeg_messages)
        logger.propagate = False
        av.logging.set_skip_repeated(False)  # every damaged packet counts, not only the first of a run
        av.logging.set_level(av.logging.WARNING)
    return _ffmpeg_messages.counts


def open_container(spec: str) -> av.container.InputContainer:
    """av.open with a one-line UnveilError for everything the user can get wrong.

    metadata_errors="replace": a title or tag that is not valid UTF-8 says nothing about the frames, so it must not
    stop a file from being read (PyAV raises UnicodeDecodeError by default).
    """
    try:
        if is_url(spec):
            return av.open(spec, options=dict(NETWORK_OPTIONS), timeout=NETWORK_TIMEOUT_S, metadata_errors="replace")
        return av.open(spec, metadata_errors="replace")
    except FileNotFoundError:
        raise UnveilError(f"input {spec} does not exist") from None
    except IsADirectoryError:
        raise UnveilError(f"input {spec} is a folder, not a video") from None
    except PermissionError:
        raise UnveilError(f"input {spec} cannot be read (permission denied)") from None
    except (av.error.FFmpegError, OSError, ValueError) as error:  # ValueError: PyAV's own checks of what it read
        raise UnveilError(f"input {spec} is not a readable video ({error_reason(error)})") from None


def open_video_stream(spec: str) -> tuple[av.container.InputContainer, av.VideoStream, VideoInfo]:
    """The container, its first video stream and what it says about it; an UnveilError where no frame can be decoded
    from it (no video stream, a codec FFmpeg does not know, no frame size), with the container closed."""
    container = open_container(spec)
    try:
        if not container.streams.video:
            raise UnveilError(f"input {spec} has no video stream")
        stream = container.streams.video[0]
        if stream.codec_context is None:  # a damaged header can name a codec id FFmpeg has no decoder for
            raise UnveilError(f"input {spec} has a video stream in a codec that cannot be decoded")
        info = video_info_from_stream(container, stream)
        if info.width <= 0 or info.height <= 0:
            raise UnveilError(f"input {spec} has a video stream without a frame size")
    except UnveilError:
        container.close()
        raise
    except (av.error.FFmpegError, OSError, ValueError, ArithmeticError) as error:  # nonsense rates, sizes, durations
        container.close()
        raise UnveilError(f"input {spec} is not a readable video ({error_reason(error)})") from None
    return container, stream, info


def close_container(container: av.container.InputContainer, stream: av.VideoStream) -> None:
    """Close an input, first parking its decoder's frame threads while the GIL is free (flush_buffers releases it):
    a thread still decoding when the codec is freed (GIL held) and logging meanwhile (FFmpeg's messages go through
    Python, see ffmpeg_message_counts) would wait for the GIL forever."""
    try:
        stream.codec_context.flush_buffers()
    except (av.error.FFmpegError, ValueError, AttributeError):
        pass
    container.close()


def error_reason(error: Exception) -> str:
    """FFmpeg's short reason ('Invalid data found when processing input'), without errno noise."""
    return getattr(error, "strerror", None) or str(error)


class VideoFileSource:
    """Decodes the first video stream of a file or network stream, in presentation order, keeping pts exactly.

    Packets whose frame never comes out of the decoder (the decoder raised, or silently dropped it) are found by
    their timestamps: every demuxed packet's pts is expected once; when the decoder returns a later pts, the
    earlier ones it skipped become failed frames. Where the container knows the frame count and the file ends
    early (truncated), the missing tail is produced as failed frames too.
    """

    def __init__(self, spec: str | os.PathLike) -> None:
        spec = os.fspath(spec)
        self.spec = spec
        self.is_live = is_url(spec)
        self.failed_frames: list[int] = []
        self.ffmpeg_counts_before = Counter(ffmpeg_message_counts())  # the open itself may warn already
        self.container, self.stream, info = open_video_stream(spec)
        # components reading this input; the output's muxer and encoder ("mp4", "libx264") have other names
        self.reader_names = {self.container.format.name, "generic"} | {
            stream.codec_context.name for stream in self.container.streams if stream.codec_context is not None}
        if not self.is_live:
            self.stream.thread_type = "AUTO"  # frame threads decode faster; their delay only matters when live
        self.info: VideoInfo | None = info
        self.known_frame_count = declared_frame_count(self.container, self.stream) if not self.is_live else 0

    @property
    def library_warnings(self) -> int:
        """FFmpeg's warnings and errors about this input so far (damaged data it concealed or skipped)."""
        counts = ffmpeg_message_counts()
        return sum(counts[name] - self.ffmpeg_counts_before[name] for name in self.reader_names)

    def close(self) -> None:
        close_container(self.container, self.stream)

    def __iter__(self) -> Iterator[Frame]:
        assert self.info is not None
        timeline = PresentationTimeline(self.info, self.spec, self.failed_frames)
        discarded = 0  # packets an edit list cuts away: decoded for reference, never shown, yet in the count
        for packet in self.demux_packets():
            if packet.is_discard:
                discarded += 1
            elif packet.pts is not None and packet.size > 0:
                timeline.expect(packet.pts)
            for decoded in self.decode_packet(packet):
                yield from timeline.on_decoded(decoded)
        yield from timeline.finish(self.known_frame_count - discarded)
        if timeline.last_image is None:  # nothing but placeholders: an output of black frames would hide the problem
            raise UnveilError(f"input {self.spec} has no decodable video frame" +
                              (f" (none of its {timeline.index} frames)" if timeline.index else ""))
        if self.failed_frames:
            log.warning("%s: %d of %d frames could not be decoded; each repeats the last good frame",
                        self.spec, len(self.failed_frames), timeline.index)

    def demux_packets(self) -> Iterator[av.Packet]:
        """Packets of the video stream; a read error ends the stream (truncated file) instead of raising."""
        packets = self.container.demux(self.stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.error.FFmpegError, OSError) as error:
                log.warning("%s: stopped reading at a damaged or truncated part (%s)", self.spec, error_reason(error))
                yield av.Packet()  # an empty packet drains the decoder of the frames it still holds
                return
            yield packet

    def decode_packet(self, packet: av.Packet) -> list[av.VideoFrame]:
        try:
            return self.stream.decode(packet)
        except (av.error.FFmpegError, ValueError) as error:
            log.debug("%s: packet at pts %s failed to decode (%s)", self.spec, packet.pts, error_reason(error))
            return []


class PresentationTimeline:
    """Turns decoded frames into `Frame` records in order, filling frames the decoder lost with the last image."""

    def __init__(self, info: VideoInfo, source_name: str, failed_frames: list[int]) -> None:
        self.info = info
        self.source_name = source_name
        self.failed_frames = failed_frames
        self.pending: list[int] = []        # min-heap of pts of packets sent to the decoder, not yet produced
        self.pending_set: set[int] = set()
        self.index = 0
        self.last_pts: int | None = None
        self.last_image: np.ndarray | None = None
        # One frame's duration in time_base units, to extrapolate pts where none is known.
        self.frame_step = max(1, round(1 / (info.fps * info.time_base))) if info.fps else 1

    def expect(self, pts: int) -> None:
        if pts not in self.pending_set and (self.last_pts is None or pts > self.last_pts):
            heapq.heappush(self.pending, pts)
            self.pending_set.add(pts)

    def on_decoded(self, decoded: av.VideoFrame) -> Iterator[Frame]:
        pts = decoded.pts
        if pts is None:  # streams without timestamps: take the earliest expected one, or extrapolate
            pts = self.pending[0] if self.pending else self.next_pts()
        if self.last_pts is not None and pts <= self.last_pts:
            return  # a late frame already given out as failed; emitting it now would reorder the output
        while self.pending and self.pending[0] < pts:
            yield self.failed_frame(self.pop_pending())
        if self.pending and self.pending[0] == pts:
            self.pop_pending()
        try:
            image = decoded.to_ndarray(format="bgr24")
        except (av.error.FFmpegError, ValueError) as error:
            log.debug("%s: frame at pts %s could not be converted (%s)", self.source_name, pts, error_reason(error))
            yield self.failed_frame(pts)
            return
        self.last_image = image
        yield self.make_frame(image, pts, failed=False)

    def finish(self, known_frame_count: int) -> Iterator[Frame]:
        """Frames the decoder never produced; a truncated file's missing frames go on the nominal frame grid."""
        while self.pending or self.index < known_frame_count:
            missing = known_frame_count - self.index - len(self.pending)  # frames whose packets were never read
            expected = self.next_pts()
            if self.pending and (missing <= 0 or self.pending[0] <= expected):
                yield self.failed_frame(self.pop_pending())
            else:
                yield self.failed_frame(expected)

    def pop_pending(self) -> int:
        pts = heapq.heappop(self.pending)
        self.pending_set.discard(pts)
        return pts

    def next_pts(self) -> int:
        return 0 if self.last_pts is None else self.last_pts + self.frame_step

    def failed_frame(self, pts: int) -> Frame:
        if self.last_image is None:
            image = np.zeros((self.info.height, self.info.width, 3), np.uint8)
        else:
            image = self.last_image
        self.failed_frames.append(self.index)
        return self.make_frame(image, pts, failed=True)

    def make_frame(self, image: np.ndarray, pts: int, *, failed: bool) -> Frame:
        frame = Frame(index=self.index, image=image, pts=pts, time_base=self.info.time_base, decode_failed=failed)
        self.index += 1
        self.last_pts = pts
        return frame


# ---------------------------------------------------------------------------------------------------------------
# Cameras


def describe_camera(device: int | str) -> str:
    return f"camera {device}"


class CameraSource:
    """An OpenCV camera (index or device path). Frames carry pts=None; the first frame must arrive in time."""

    library_warnings = 0

    def __init__(self, device: int | str, *, width: int | None = None, height: int | None = None,
                 fps: float | None = None, first_frame_timeout_s: float = CAMERA_FIRST_FRAME_TIMEOUT_S,
                 open_capture: Callable[[int | str], cv2.VideoCapture] = cv2.VideoCapture) -> None:
        self.device = device
        self.is_live = True
        self.info: VideoInfo | None = None
        self.failed_frames: list[int] = []
        self.capture = open_capture_quietly(open_capture, device)
        if not self.capture.isOpened():
            self.capture.release()
            raise UnveilError(f"{describe_camera(device)} is not available")
        self.request_settings(width, height, fps)
        self.first_image = self.read_first_image(first_frame_timeout_s)

    def request_settings(self, width: int | None, height: int | None, fps: float | None) -> None:
        """Cameras pick the nearest mode they support; what they chose is logged, not enforced."""
        if width:
            self.capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            self.capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if fps:
            self.capture.set(cv2.CAP_PROP_FPS, fps)

    def read_first_image(self, timeout_s: float) -> np.ndarray:
        # read() can block forever on a device that opens but never streams; wait for it in a thread.
        result: list[tuple[bool, np.ndarray | None]] = []
        reader = threading.Thread(target=lambda: result.append(self.capture.read()), daemon=True)
        reader.start()
        reader.join(timeout_s)
        if not result or not result[0][0] or result[0][1] is None:
            if result:  # release only when no read is still running on the capture
                self.capture.release()
            raise UnveilError(f"{describe_camera(self.device)} opened but gave no frame within {timeout_s:g} s")
        image = result[0][1]
        log.info("%s: %dx%d at %.1f fps", describe_camera(self.device), image.shape[1], image.shape[0],
                 self.capture.get(cv2.CAP_PROP_FPS))
        return image

    def __iter__(self) -> Iterator[Frame]:
        index = 0
        image: np.ndarray | None = self.first_image
        while image is not None:
            yield Frame(index=index, image=as_bgr(image), pts=None, time_base=None, source_name=None)
            index += 1
            ok, image = self.capture.read()
            if not ok:
                image = None

    def close(self) -> None:
        self.capture.release()


def open_capture_quietly(open_capture: Callable[[int | str], cv2.VideoCapture], device: int | str
                         ) -> cv2.VideoCapture:
    """OpenCV logs every backend it tries on a missing camera; our one-line error says it better."""
    previous = cv2.getLogLevel()
    cv2.setLogLevel(0)  # 0 = silent
    try:
        return open_capture(device)
    finally:
        cv2.setLogLevel(previous)


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Some cameras deliver grey or BGRA frames; the pipeline works on 3-channel BGR."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


# ---------------------------------------------------------------------------------------------------------------
# Images


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_image(path: Path, messages: list[str] | None = None) -> np.ndarray | None:
    """Any 8/16-bit, grey or alpha image as uint8 BGR; None if it cannot be decoded.

    The decoders' own lines ("Corrupt JPEG data: ...", "libpng warning: ...") go to `messages`, not the terminal.
    """
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    with native_stderr_lines() as lines:
        try:
            image = cv2.imdecode(data, cv2.IMREAD_COLOR)
        except cv2.error:  # OpenCV refuses some headers (absurd sizes) by raising rather than returning None
            image = None
    if messages is not None:
        messages.extend(lines)
    return image


class ImageSource:
    """One image, or every image of a folder in name order. Frames carry the file name in `source_name`.

    An image of a folder that cannot be decoded is skipped with a warning and listed in `failed_frames` (its
    index is not reused), so one bad file does not stop a batch.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.is_live = False
        self.info: VideoInfo | None = None
        self.failed_frames: list[int] = []
        self.decoder_messages: list[str] = []  # what libjpeg / libpng said about damaged images, kept for the report
        self.is_folder = self.path.is_dir()
        if self.is_folder:
            self.paths = list_images(self.path)
            if not self.paths:
                raise UnveilError(f"folder {self.path} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        else:
            if not self.path.exists():
                raise UnveilError(f"input {self.path} does not exist")
            if read_image(self.path) is None:
                raise UnveilError(f"input {self.path} is not a readable image")
            self.paths = [self.path]

    def __iter__(self) -> Iterator[Frame]:
        for index, path in enumerate(self.paths):
            image = read_image(path, self.decoder_messages)
            if image is None:
                log.warning("%s is not a readable image; skipped", path)
                self.failed_frames.append(index)
                continue
            yield Frame(index=index, image=image, pts=None, time_base=None, source_name=path.name)

    @property
    def library_warnings(self) -> int:
        return len(self.decoder_messages)

    def close(self) -> None:
        pass
