"""Test clips made with PyAV in code: constant and variable frame rate, with and without sound,
odd sizes, rotation metadata, long clips, and broken files. Reused by every test that needs a
video.

Frames are smooth synthetic pictures (gradients that drift with time plus a bright square
marking the coded top-left corner), so H.264 at crf 18 reproduces them closely (PSNR > 40 dB)
and a wrong rotation is easy to detect.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

AUDIO_RATE = 16_000  # Hz; small clips, short tests


def synthetic_image(index: int, width: int, height: int) -> np.ndarray:
    """HxWx3 uint8 RGB test picture for frame `index`, in coded orientation: smooth colour
    ramps moving with `index`, and a white 4x4 square at the top-left corner."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = 0.35 * index
    red = 128 + 100 * np.sin(2 * np.pi * x / max(width, 8) + phase)
    green = 128 + 100 * np.cos(2 * np.pi * y / max(height, 8) - phase)
    blue = 60 + 120 * (x + y) / (width + height)
    image = np.stack([red, green, blue], axis=-1).round().clip(0, 255).astype(np.uint8)
    image[:4, :4] = 255
    return image


def cfr_pts(n_frames: int, fps: int = 25, time_base: Fraction = Fraction(1, 1000)) -> list[int]:
    """pts of a constant-rate clip in `time_base` units."""
    step = 1 / (Fraction(fps) * time_base)
    return [round(i * step) for i in range(n_frames)]


VFR_PTS_MS = [0, 40, 100, 120, 200, 210, 400, 433, 500, 700, 740, 990]
"""Irregular frame times (ms) of the variable-frame-rate clips."""


def make_clip(
    path: Path,
    *,
    width: int = 64,
    height: int = 48,
    n_frames: int = 12,
    fps: int = 25,
    pts: Sequence[int] | None = None,
    time_base: Fraction = Fraction(1, 1000),
    audio: str | None = None,
    rotation_deg: int = 0,
    pix_fmt: str | None = None,
    preset: str = "ultrafast",
) -> Path:
    """Write an H.264 test clip and return its path.

    width, height: coded size (a rotation turns the display size). pts: frame times in
    `time_base` units (default: constant `fps`, `n_frames` frames). audio: None, or an audio
    encoder name ("aac", "pcm_mulaw", ...) for a 440 Hz mono tone lasting the clip plus 0.1 s.
    rotation_deg: counter-clockwise display rotation stored in the container. pix_fmt:
    default yuv420p, or yuv444p when a side is odd (libx264 cannot do odd 4:2:0).
    """
    pts = list(pts) if pts is not None else cfr_pts(n_frames, fps, time_base)
    if pix_fmt is None:
        pix_fmt = "yuv444p" if width % 2 or height % 2 else "yuv420p"
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.time_base = time_base
        video.codec_context.time_base = time_base
        video.options = {"crf": "12", "preset": preset}
        if rotation_deg:
            video.set_display_rotation(rotation_deg)
        sound = _add_audio(container, audio) if audio else None
        for index, stamp in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(synthetic_image(index, width, height))
            frame.pts, frame.time_base = stamp, time_base
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if sound is not None:
            _write_tone(container, sound, float(pts[-1] * time_base) + 0.1)
    return path


def make_long_clip(path: Path, n_frames: int, width: int = 16, height: int = 16) -> Path:
    """A long, tiny, silent constant-rate clip (for memory tests)."""
    return make_clip(path, width=width, height=height, n_frames=n_frames, fps=50)


def make_audio_only(path: Path, seconds: float = 0.5) -> Path:
    """An .m4a-style file with one AAC stream and no video."""
    with av.open(str(path), mode="w", format="mp4") as container:
        sound = _add_audio(container, "aac")
        _write_tone(container, sound, seconds)
    return path


def make_video_without_frames(path: Path) -> Path:
    """A container with a video stream header but no frames (an interrupted recording)."""
    with av.open(str(path), mode="w", format="matroska") as container:
        video = container.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 32, 32, "yuv420p"
        container.start_encoding()
    return path


def make_garbage(path: Path, n_bytes: int = 4096) -> Path:
    """Random bytes under a video name: not a media file at all."""
    path.write_bytes(np.random.default_rng(0).integers(0, 256, n_bytes, np.uint8).tobytes())
    return path


def make_truncated(source: Path, path: Path, keep: float = 0.5) -> Path:
    """The first `keep` fraction of a real clip: an .mp4 cut before its index (moov) is
    unreadable, as after a crash during recording."""
    data = source.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def make_empty(path: Path) -> Path:
    """A zero-byte file."""
    path.write_bytes(b"")
    return path


def audio_packets(path: Path) -> list[tuple[int, int, bytes]]:
    """(pts, dts, bytes) of every audio packet in the file's first audio stream, with pts
    in microseconds so files with different time bases compare."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return [
            (
                round(packet.pts * packet.time_base * 1_000_000),
                round(packet.dts * packet.time_base * 1_000_000),
                bytes(packet),
            )
            for packet in container.demux(stream)
            if packet.size > 0
        ]


def _add_audio(container: av.container.OutputContainer, codec: str) -> av.AudioStream:
    stream = container.add_stream(codec, rate=AUDIO_RATE)
    stream.layout = "mono"
    return stream


def _write_tone(
    container: av.container.OutputContainer, stream: av.AudioStream, seconds: float
) -> None:
    """Encode a 440 Hz tone of `seconds` into `stream` in 1024-sample frames."""
    n = int(AUDIO_RATE * seconds)
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / AUDIO_RATE)).astype(np.float32)
    for start in range(0, n, 1024):
        chunk = tone[None, start : start + 1024]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="flt", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts, frame.time_base = start, Fraction(1, AUDIO_RATE)
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def make_broken_midway(path: Path, n_frames: int = 10, broken: int = 6) -> Path:
    """A .mov of PNG frames whose frame `broken` is damaged inside its image header: the
    file opens and the first frames decode, then the decoder fails (H.264 would conceal it)."""
    if path.suffix != ".mov":
        raise ValueError("make_broken_midway writes a .mov")
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("png", rate=25)
        video.width, video.height, video.pix_fmt = 32, 32, "rgb24"
        for index in range(n_frames):
            frame = av.VideoFrame.from_ndarray(synthetic_image(index, 32, 32))
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode())
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data)) if data.startswith(b"\x89PNG", i)]
    header = starts[broken] + 8  # just past the PNG signature: the IHDR chunk
    data[header : header + 32] = bytes(32)
    path.write_bytes(bytes(data))
    return path
