"""Small test clips made with PyAV, and readers that list what a file holds (for round-trip assertions).

A pure module other tests import: nothing here touches ../shared or the network.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

AUDIO_RATE = 16000
AUDIO_FRAME = 1024  # samples per AAC frame


def clip_image(index: int, width: int, height: int) -> np.ndarray:
    """A frame that differs from its neighbours (moving gradients) so decoders cannot skip it, uint8 BGR."""
    image = np.zeros((height, width, 3), np.uint8)
    image[:, :, 0] = (np.arange(width)[None, :] * 2 + index * 5) % 256
    image[:, :, 1] = (np.arange(height)[:, None] * 3 + index * 7) % 256
    image[:, :, 2] = (index * 11) % 256
    return image


def make_clip(path: str | Path, *, frames: int = 48, width: int = 96, height: int = 64,
              rate: Fraction = Fraction(25), audio: bool = True, codec: str = "libx264",
              pts_step: int = 1, first_pts: int = 0, faststart: bool = False, gop: int | None = None) -> Path:
    """Write a clip: `frames` frames at `rate` (pts = first_pts + i * pts_step in 1/rate units), plus a mono tone.

    A negative first_pts makes the MP4 muxer write an edit list that hides the frames before time 0.
    faststart=True puts the index (moov) before the data, so a truncated copy still says how many frames it had.
    gop: a keyframe every `gop` frames (default: the encoder's, one keyframe in a short clip).
    """
    path = Path(path)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", container_options=options) as container:
        video = container.add_stream(codec, rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.codec_context.time_base = 1 / Fraction(rate)
        if gop:
            video.codec_context.gop_size = gop
        sound = None
        if audio:
            sound = container.add_stream("aac", rate=AUDIO_RATE)
            sound.layout = "mono"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(clip_image(index, width, height), format="bgr24")
            frame.pts = first_pts + index * pts_step
            frame.time_base = 1 / Fraction(rate)
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if sound is not None:
            write_tone(container, sound, seconds=Fraction(first_pts + frames * pts_step) / Fraction(rate))
    return path


def write_tone(container: av.container.OutputContainer, stream: av.AudioStream, seconds: Fraction) -> None:
    total = int(AUDIO_RATE * seconds)
    t = np.arange(total) / AUDIO_RATE
    samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for start in range(0, total, AUDIO_FRAME):
        frame = av.AudioFrame.from_ndarray(samples[None, start:start + AUDIO_FRAME], format="flt", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        frame.time_base = Fraction(1, AUDIO_RATE)
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


@dataclass(frozen=True)
class PacketRecord:
    time: Fraction | None   # pts * time_base, exact
    data: bytes
    position: int           # byte offset in the file (-1 if unknown)


def stream_packets(path: str | Path, kind: str) -> list[PacketRecord]:
    """Every data packet of the first `kind` ('video' or 'audio') stream, in file order."""
    with av.open(str(path)) as container:
        stream = getattr(container.streams, kind)[0]
        records = []
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            time = None if packet.pts is None else packet.pts * Fraction(packet.time_base)
            records.append(PacketRecord(time=time, data=bytes(packet), position=packet.pos))
        return records


def video_frame_times(path: str | Path) -> list[Fraction]:
    """Presentation times of every decoded video frame, exact, in output order."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [frame.pts * Fraction(stream.time_base) for frame in container.decode(stream)]


def corrupt_packet(path: str | Path, packet: PacketRecord) -> None:
    """Overwrite one packet's bytes in place with garbage; the container's index still points at them."""
    garbage = bytes((index * 97 + 13) % 256 for index in range(len(packet.data)))
    with open(path, "r+b") as file:
        file.seek(packet.position)
        file.write(garbage)
