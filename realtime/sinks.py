"""Where results go: video files (re-encoded video, audio copied packet for packet), images, mask images.

Nothing half-written is ever left under an output's name: videos are written to a hidden temporary name beside
the output and renamed when complete (removed on abort); images are written to a temporary file and renamed.
"""
from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import cv2
import numpy as np

from realtime.errors import UnveilError
from realtime.find.evidence_map import evidence_in_frame, evidence_picture
from realtime.frame import Frame
from realtime.sources import IMAGE_SUFFIXES, VideoInfo, error_reason

log = logging.getLogger("unveil")

# Encoders that understand a constant-rate-factor quality setting.
CRF_CODECS = frozenset({"libx264", "libx264rgb", "libx265", "libvpx-vp9", "libaom-av1", "libsvtav1"})
X26X_CODECS = frozenset({"libx264", "libx264rgb", "libx265"})
# x264 at "faster" and crf 16 keeps a clean frame as close to its input as the default (medium, crf 18) does, for
# about 60 % of its CPU and 30 % larger files; "veryfast" moved 7x as many pixels by more than 12 levels
# (docs/realtime_budget.md)
ENCODER_PRESET = "faster"
ENCODER_CRF = 16


def partial_path(path: Path) -> Path:
    """Hidden name beside the output that keeps its suffix (the muxer picks the format from it)."""
    return path.with_name(f".{path.stem}.unveil-partial{path.suffix}")


OUTPUT_KINDS = "a video goes to a video file (.mp4, .mkv, .mov), an image to an image file, a folder of images to a folder"


def check_writable(path: str | Path, *, folder: bool = False) -> None:
    """Raise UnveilError naming the problem if `path` (a file, or a folder when folder=True) cannot be written.

    Call it before any work starts. A missing output folder is fine when folder=True (the sink creates it) as
    long as its parent can be written.
    """
    path = Path(path)
    if folder:
        if path.exists() and not path.is_dir():
            raise UnveilError(f"output {path} is a file, not a folder")
        probe_folder = path if path.is_dir() else path.absolute().parent
    else:
        if path.is_dir():
            raise UnveilError(f"output {path} is a folder, not a file")
        probe_folder = path.absolute().parent
    if not probe_folder.exists():
        raise UnveilError(f"output folder {probe_folder} does not exist")
    if not probe_folder.is_dir():
        raise UnveilError(f"output folder {probe_folder} is not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=probe_folder, prefix=".unveil-probe-"):
            pass
    except OSError as error:
        raise UnveilError(f"cannot write to {probe_folder} ({error.strerror or error})") from None


def remove_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as error:
        log.warning("could not remove %s (%s)", path, error)


# ---------------------------------------------------------------------------------------------------------------
# Video


def video_stream_settings(info: VideoInfo, codec: str, crf: int, preset: str = ENCODER_PRESET) -> dict:
    """Encoder settings for re-encoding `info`'s video: a pure function of its inputs.

    yuv420p needs even sizes: an odd width or height is padded by one pixel (edge replicated) rather than cropped,
    so no input pixel is lost. The stream keeps the input's time base so every pts is stored exactly.
    """
    width = info.width + info.width % 2
    height = info.height + info.height % 2
    options = {"crf": str(crf)} if codec in CRF_CODECS else {}
    if codec == "libvpx-vp9":
        options["b"] = "0"  # constant quality mode needs the bitrate cap off
    if codec in X26X_CODECS and preset:
        options["preset"] = preset
    return {
        "codec": codec,
        "pix_fmt": "yuv420p",
        "rate": info.fps,
        "time_base": info.time_base,
        "width": width,
        "height": height,
        "pad_right": width - info.width,
        "pad_bottom": height - info.height,
        "options": options,
    }


def pad_to(image: np.ndarray, pad_right: int, pad_bottom: int) -> np.ndarray:
    if not pad_right and not pad_bottom:
        return image
    return cv2.copyMakeBorder(image, 0, pad_bottom, 0, pad_right, cv2.BORDER_REPLICATE)


def packet_time(packet: av.Packet) -> Fraction | None:
    timestamp = packet.pts if packet.pts is not None else packet.dts
    if timestamp is None or packet.time_base is None:
        return None
    return timestamp * Fraction(packet.time_base)


class AudioCopier:
    """Copies the first audio stream of a file into an output container, packet for packet, as video advances.

    A second demuxer reads only audio, so memory stays bounded: `copy_until(t)` muxes the packets up to time t.
    """

    def __init__(self, source: str, output: av.container.OutputContainer) -> None:
        self.input = av.open(source, metadata_errors="replace")  # the video side read it the same way
        template = self.input.streams.audio[0]
        self.stream = output.add_stream_from_template(template)
        self.output = output
        self.shift = Fraction(0)   # output time - source time (non-zero once a looped source starts again)
        self.packets: Iterator[av.Packet] = self.demux(template)
        self.waiting: av.Packet | None = next(self.packets, None)

    def demux(self, stream: av.AudioStream) -> Iterator[av.Packet]:
        packets = self.input.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                return
            except (av.error.FFmpegError, OSError) as error:  # damaged or truncated audio: keep what was read
                log.warning("audio copy stopped early (%s)", error_reason(error))
                return
            if packet.dts is None and packet.pts is None:
                continue  # the demuxer's end-of-stream marker, not data
            yield packet

    def waiting_time(self) -> Fraction | None:
        packet_t = packet_time(self.waiting) if self.waiting is not None else None
        return None if packet_t is None else packet_t + self.shift

    def copy_until(self, time_s: Fraction | None, *, before: bool = False) -> None:
        """Mux every waiting packet whose output time is <= time_s (< time_s with before=True; all when None)."""
        while self.waiting is not None:
            packet_t = self.waiting_time()
            if time_s is not None and packet_t is not None and (packet_t > time_s or (before and packet_t == time_s)):
                return
            packet = self.waiting
            if self.shift:
                ticks = round(self.shift / Fraction(packet.time_base))
                packet.pts = None if packet.pts is None else packet.pts + ticks
                packet.dts = None if packet.dts is None else packet.dts + ticks
            packet.stream = self.stream
            self.output.mux(packet)
            self.waiting = next(self.packets, None)

    def continue_from(self, source_time_s: Fraction, output_time_s: Fraction) -> None:
        """The source jumped back (a looped clip): end the current stretch at `output_time_s` and go on with the
        source's audio from `source_time_s`, placed at `output_time_s`."""
        self.copy_until(output_time_s, before=True)
        stream = self.input.streams.audio[0]
        self.input.seek(0, stream=stream) if source_time_s <= 0 else self.input.seek(
            int(source_time_s / Fraction(stream.time_base)), stream=stream, backward=True)
        self.shift = output_time_s - source_time_s
        self.packets = self.demux(stream)
        self.waiting = next(self.packets, None)
        while self.waiting is not None and (packet_time(self.waiting) or 0) < source_time_s:
            self.waiting = next(self.packets, None)

    def close(self) -> None:
        self.input.close()


class VideoFileSink:
    """Writes frames to a video file: video re-encoded (pts kept exactly), audio of `audio_from` copied as is.

    The file is written under a hidden temporary name beside `path` and renamed on `close()`; `abort()` (or
    an exception inside a `with` block) removes it, so nothing half-written is left under the output's name.
    """

    def __init__(self, path: str | Path, info: VideoInfo, audio_from: str | Path | None, *,
                 codec: str = "libx264", crf: int = ENCODER_CRF, preset: str = ENCODER_PRESET) -> None:
        self.path = Path(path)
        self.info = info
        if self.path.suffix.lower() in IMAGE_SUFFIXES:
            raise UnveilError(f"output {self.path} is an image file but the input is a video; {OUTPUT_KINDS}")
        check_writable(self.path)
        self.partial = partial_path(self.path)
        self.settings = video_stream_settings(info, codec, crf, preset)
        self.frames_written = 0
        self.audio: AudioCopier | None = None
        self.output: av.container.OutputContainer | None = None
        try:
            self.output = av.open(str(self.partial), "w")
            self.video = self.add_video_stream(self.output)
            if audio_from is not None and has_audio_stream(str(audio_from)):
                self.audio = AudioCopier(str(audio_from), self.output)
            self.output.start_encoding()  # fail now, not after the first minute of work, on bad codec/audio combos
        except (av.error.FFmpegError, ValueError, OSError) as error:
            self.abort()
            raise UnveilError(f"cannot write video {self.path} ({error_reason(error)})") from None

    def add_video_stream(self, output: av.container.OutputContainer) -> av.VideoStream:
        settings = self.settings
        stream = output.add_stream(settings["codec"], rate=settings["rate"], options=settings["options"])
        stream.width = settings["width"]
        stream.height = settings["height"]
        stream.pix_fmt = settings["pix_fmt"]
        stream.time_base = settings["time_base"]
        stream.codec_context.time_base = settings["time_base"]
        return stream

    def __enter__(self) -> VideoFileSink:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()

    def write(self, frame: Frame) -> None:
        """Encode frame.result() at frame.pts (in frame.time_base); frames without pts get the next frame slot."""
        assert self.output is not None, "write() after close() or abort()"
        time_base = frame.time_base or self.info.time_base
        pts = frame.pts if frame.pts is not None else self.slot_pts(self.frames_written)
        video_frame = av.VideoFrame.from_ndarray(self.prepare_image(frame.result()), format="bgr24")
        video_frame.pts = pts
        video_frame.time_base = time_base
        try:
            if self.audio is not None:
                self.audio.copy_until(pts * Fraction(time_base))
            for packet in self.video.encode(video_frame):
                self.output.mux(packet)
        except (av.error.FFmpegError, ValueError, OSError) as error:  # disk full, timestamps out of order, ...
            self.abort()
            raise UnveilError(f"cannot write video {self.path} ({error_reason(error)})") from None
        self.frames_written += 1

    def slot_pts(self, index: int) -> int:
        """Timestamp of frame `index` at the nominal rate, for frames that came without one (cameras)."""
        return round(index / (self.info.fps * self.info.time_base))

    def prepare_image(self, image: np.ndarray) -> np.ndarray:
        if image.shape[:2] != (self.info.height, self.info.width):
            image = cv2.resize(image, (self.info.width, self.info.height), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(pad_to(image, self.settings["pad_right"], self.settings["pad_bottom"]))

    def close(self) -> None:
        """Flush the encoder, copy the rest of the audio, and move the file to its final name."""
        if self.output is None:
            return
        try:
            for packet in self.video.encode(None):
                self.output.mux(packet)
            if self.audio is not None:
                self.audio.copy_until(None)
                self.audio.close()
            self.output.close()
            self.output = None
            os.replace(self.partial, self.path)
        except (av.error.FFmpegError, ValueError, OSError) as error:
            self.abort()
            raise UnveilError(f"cannot finish video {self.path} ({error_reason(error)})") from None

    def abort(self) -> None:
        """Stop writing and remove the temporary file; the output's name is left untouched."""
        for closable in (self.output, self.audio.input if self.audio else None):
            if closable is not None:
                try:
                    closable.close()
                except (av.error.FFmpegError, ValueError, OSError):
                    pass  # the file is being thrown away; a failed trailer does not matter
        self.output = None
        remove_quietly(self.partial)


def has_audio_stream(source: str) -> bool:
    """Whether `source` has audio that can be copied. A damaged header can leave the audio stream without a codec:
    the video is still worth having, so the output goes without that audio (and says so)."""
    try:
        with av.open(source, metadata_errors="replace") as container:
            if not container.streams.audio:
                return False
            if container.streams.audio[0].codec_context is None:
                log.warning("%s: its audio stream is damaged (no known codec); the output has no audio", source)
                return False
            return True
    except (av.error.FFmpegError, OSError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------------------------
# Images


def write_image_atomically(path: Path, image: np.ndarray) -> None:
    """Encode by the file's suffix, write to a hidden temporary file, rename over the final name."""
    ok, encoded = cv2.imencode(path.suffix.lower(), image)
    if not ok:
        raise UnveilError(f"cannot encode an image as {path.suffix} for {path}")
    temporary = path.with_name(f".{path.name}.unveil-partial")
    try:
        temporary.write_bytes(encoded.tobytes())
        os.replace(temporary, path)
    except OSError as error:
        remove_quietly(temporary)
        raise UnveilError(f"cannot write {path} ({error.strerror or error})") from None


def frame_file_stem(frame: Frame) -> str:
    """Images keep their file's stem; video frames are named after their index (000123)."""
    return Path(frame.source_name).stem if frame.source_name else f"{frame.index:06d}"


class ImageSink:
    """One image to a file (to_folder=False), or each frame into a folder under its source file name."""

    def __init__(self, path: str | Path, *, to_folder: bool) -> None:
        self.path = Path(path)
        self.to_folder = to_folder
        check_writable(self.path, folder=to_folder)
        if to_folder:
            self.path.mkdir(exist_ok=True)
        elif self.path.suffix.lower() not in IMAGE_SUFFIXES:
            raise UnveilError(f"output {self.path} needs an image suffix ({', '.join(sorted(IMAGE_SUFFIXES))}); "
                              f"{OUTPUT_KINDS}")

    def target(self, frame: Frame) -> Path:
        if not self.to_folder:
            return self.path
        name = frame.source_name and Path(frame.source_name).name  # never a path outside the folder
        return self.path / (name or f"{frame.index:06d}.png")

    def write(self, frame: Frame) -> None:
        write_image_atomically(self.target(frame), frame.result())

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass  # every write is complete or absent; nothing to undo


class MaskSink:
    """--save-masks: frame.replaced (255 = replaced, zeros when nothing was) as an 8-bit PNG per frame, and for
    frames where an occlusion was decided, which evidence decided it as a colour PNG in `evidence/` (segmenter
    orange, surface change green, hands cyan, both white, held by persistence grey: realtime.find.evidence_map)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        check_writable(self.folder, folder=True)
        self.folder.mkdir(exist_ok=True)

    def target(self, frame: Frame) -> Path:
        return self.folder / f"{frame_file_stem(frame)}.png"

    def write(self, frame: Frame) -> None:
        mask = frame.replaced
        if mask is None:
            mask = np.zeros(frame.image.shape[:2], np.uint8)
        write_image_atomically(self.target(frame), np.ascontiguousarray(mask, dtype=np.uint8))
        codes = evidence_in_frame(frame)
        if codes is not None:
            (self.folder / "evidence").mkdir(exist_ok=True)
            write_image_atomically(self.folder / "evidence" / self.target(frame).name, evidence_picture(codes))

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass
