"""Test clips made with PyAV in code: constant and variable frame rate, with and without sound,
odd sizes, rotation metadata, long clips, and broken files. Reused by every test that needs a
video.

Frames are smooth synthetic pictures (gradients that drift with time plus a bright square
marking the coded top-left corner), so H.264 at crf 18 reproduces them closely (PSNR > 40 dB)
and a wrong rotation is easy to detect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
        sound = add_audio(container, audio) if audio else None
        for index, stamp in enumerate(pts):
            frame = av.VideoFrame.from_ndarray(synthetic_image(index, width, height))
            frame.pts, frame.time_base = stamp, time_base
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if sound is not None:
            write_tone(container, sound, float(pts[-1] * time_base) + 0.1)
    return path


def make_long_clip(path: Path, n_frames: int, width: int = 16, height: int = 16) -> Path:
    """A long, tiny, silent constant-rate clip (for memory tests)."""
    return make_clip(path, width=width, height=height, n_frames=n_frames, fps=50)


def make_audio_only(path: Path, seconds: float = 0.5) -> Path:
    """An .m4a-style file with one AAC stream and no video."""
    with av.open(str(path), mode="w", format="mp4") as container:
        sound = add_audio(container, "aac")
        write_tone(container, sound, seconds)
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


def add_audio(container: av.container.OutputContainer, codec: str) -> av.AudioStream:
    """A mono audio stream of `codec` at `AUDIO_RATE` in `container` (fill it with `write_tone`)."""
    stream = container.add_stream(codec, rate=AUDIO_RATE)
    stream.layout = "mono"
    return stream


def write_tone(
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


# ---------------------------------------------------------------------------------------------
# the containers and codecs people have (tests/test_real_footage.py)


@dataclass(frozen=True)
class Footage:
    """How to write one kind of real-world file: container (by extension), video encoder and
    pixel format, sound encoder (None: silent), frame times and extras.

    pts: frame times in `time_base` units (None: constant 25 fps from 0). sound_extra_s: how
    much longer than the picture the sound lasts. b_frames: let libx264 / libx265 use B-frames,
    which MP4 stores with an edit list (the first shown frame is not the first decoded one).
    hdr: tag the stream BT.2020 / HLG as a phone's 10-bit HDR clip."""

    suffix: str
    codec: str
    pix_fmt: str = "yuv420p"
    audio: str | None = None
    pts: tuple[int, ...] | None = None
    time_base: Fraction = Fraction(1, 25)
    sound_extra_s: float = 0.1
    b_frames: bool = False
    hdr: bool = False
    size: tuple[int, int] | None = None  # (width, height) to use instead of the frames' own

    def stamps(self, n_frames: int) -> list[int]:
        """pts of the frames, in time_base units."""
        if self.pts is not None:
            return list(self.pts[:n_frames])
        return cfr_pts(n_frames, 25, self.time_base)

    def times(self, n_frames: int) -> list[Fraction]:
        """Display times in seconds of the frames this footage stores."""
        return [p * self.time_base for p in self.stamps(n_frames)]


FOOTAGE = {
    "h264_aac_mp4": Footage(".mp4", "libx264", audio="aac", b_frames=True),
    "h264_vfr_late_start_long_sound_mp4": Footage(
        ".mp4",
        "libx264",
        audio="aac",
        pts=tuple(1000 + p for p in VFR_PTS_MS),
        time_base=Fraction(1, 1000),
        sound_extra_s=1.5,
    ),
    "h264_pcm_mov": Footage(".mov", "libx264", audio="pcm_s16le"),
    "h264_odd_silent_mp4": Footage(".mp4", "libx264", pix_fmt="yuv444p", size=(159, 161)),
    "hevc_aac_mp4": Footage(".mp4", "libx265", audio="aac", b_frames=True),
    "hevc10_hdr_mov": Footage(".mov", "libx265", pix_fmt="yuv420p10le", audio="aac", hdr=True),
    "vp9_opus_webm": Footage(".webm", "libvpx-vp9", audio="libopus", time_base=Fraction(1, 1000)),
    "vp9_vfr_silent_mkv": Footage(
        ".mkv", "libvpx-vp9", pts=tuple(VFR_PTS_MS), time_base=Fraction(1, 1000)
    ),
    "av1_opus_mkv": Footage(".mkv", "libsvtav1", audio="libopus", time_base=Fraction(1, 1000)),
    "xvid_ac3_avi": Footage(".avi", "mpeg4", audio="ac3"),
    "xvid_mp3_avi": Footage(".avi", "mpeg4", audio="libmp3lame"),
    "mjpeg_pcm_avi": Footage(".avi", "mjpeg", pix_fmt="yuvj420p", audio="pcm_s16le"),
    "gif": Footage(".gif", "gif", pix_fmt="rgb8", time_base=Fraction(1, 100)),
}
"""One entry per container / codec case the bundled FFmpeg can write. AVI and GIF store a
constant rate (AVI counts frames, GIF keeps 1/100 s delays); the others keep any time."""

_AUDIO_RATES = {"ac3": 48_000, "libopus": 48_000}
_SAMPLE_TYPES = {"flt": np.float32, "s16": np.int16, "s32": np.int32, "dbl": np.float64}


def make_footage(path: Path, footage: Footage, frames: Sequence[np.ndarray]) -> Path:
    """Write RGB `frames` as `footage` describes (a 440 Hz tone for the sound) at `path`, whose
    extension must be the footage's."""
    if path.suffix != footage.suffix:
        raise ValueError(f"{path}: expected a {footage.suffix} file")
    times = footage.stamps(len(frames))
    height, width = frames[0].shape[:2]
    width, height = footage.size or (width, height)
    with av.open(str(path), mode="w") as container:
        video = container.add_stream(footage.codec, rate=25)
        video.width, video.height, video.pix_fmt = width, height, footage.pix_fmt
        video.time_base = video.codec_context.time_base = footage.time_base
        if footage.codec == "libx264":
            video.options = {"crf": "12", "preset": "fast" if footage.b_frames else "ultrafast"}
        elif footage.codec == "libx265":
            params = "log-level=error" + ("" if footage.b_frames else ":bframes=0")
            video.options = {"crf": "12", "preset": "ultrafast", "x265-params": params}
        elif footage.codec == "libsvtav1":
            video.options = {"preset": "12"}
        if footage.hdr:
            video.codec_context.color_primaries = 9  # BT.2020
            video.codec_context.color_trc = 18  # HLG
            video.codec_context.colorspace = 9  # BT.2020 non-constant
        sound = None
        if footage.audio:
            sound = container.add_stream(
                footage.audio, rate=_AUDIO_RATES.get(footage.audio, 16_000)
            )
            sound.layout = "stereo" if footage.audio == "ac3" else "mono"
        for image, stamp in zip(frames, times, strict=False):
            picture = np.ascontiguousarray(image[:height, :width])
            if picture.shape[:2] != (height, width):
                picture = np.pad(
                    picture,
                    ((0, height - picture.shape[0]), (0, width - picture.shape[1]), (0, 0)),
                    mode="edge",
                )
            frame = av.VideoFrame.from_ndarray(picture).reformat(format=footage.pix_fmt)
            frame.pts, frame.time_base = stamp, footage.time_base
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if sound is not None:
            seconds = float(footage.times(len(frames))[-1]) + footage.sound_extra_s
            _write_tone_any(container, sound, seconds)
    return path


def _write_tone_any(
    container: av.container.OutputContainer, stream: av.AudioStream, seconds: float
) -> None:
    """A 440 Hz tone in whatever sample format, layout and frame size the encoder wants."""
    rate = stream.codec_context.sample_rate
    chunk = stream.codec_context.frame_size or 1024
    fmt, channels = stream.format.name, stream.layout.nb_channels
    kind = fmt.rstrip("p")
    n = int(rate * seconds)
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)
    if kind != "flt" and kind != "dbl":
        tone = tone * np.iinfo(_SAMPLE_TYPES[kind]).max
    tone = tone.astype(_SAMPLE_TYPES[kind])
    for start in range(0, n, chunk):
        piece = tone[start : start + chunk]
        piece = np.pad(piece, (0, chunk - len(piece)))
        if fmt.endswith("p"):
            array = np.repeat(piece[None], channels, axis=0)
        else:
            array = np.repeat(piece[:, None], channels, axis=1).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(array), format=fmt, layout=stream.layout.name
        )
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def box_order(path: Path) -> list[str]:
    """The top-level box types of an MP4 / MOV file, in file order ('moov' before 'mdat' is
    what +faststart gives)."""
    data, boxes, offset = path.read_bytes(), [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        boxes.append(data[offset + 4 : offset + 8].decode("latin-1"))
        if size == 1:  # 64-bit size follows the type
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        offset += size if size else len(data)
    return boxes


def audio_seconds(path: Path) -> tuple[str, float, float] | None:
    """(codec, first time, end time) of the first audio stream, from its packets; None if
    the file has no sound."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        start, end = None, 0.0
        for packet in container.demux(stream):
            if packet.size == 0 or packet.pts is None:
                continue
            begin = float(packet.pts * packet.time_base)
            start = begin if start is None else min(start, begin)
            end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
        return stream.codec_context.name, start or 0.0, end


# ---------------------------------------------------------------------------------------------
# keyframes and timestamps, for seeking (tests/io/test_video_seek.py, tests/pipeline/test_crops.py)

GOP_CODECS = {
    # B-frames stored by decoding time with an edit list; open GOPs (leading B-frames)
    ".mp4": ("libx264", "yuv420p", {"crf": "12", "preset": "fast"}),
    ".mkv": ("libvpx-vp9", "yuv420p", {}),
    ".avi": ("mjpeg", "yuvj420p", {}),  # every frame a keyframe
}


def make_gop_clip(
    path: Path,
    n_frames: int = 60,
    gop: int = 12,
    rotation_deg: int = 0,
    size=(64, 48),
    images: Sequence[np.ndarray] | None = None,
) -> Path:
    """A 25 fps clip with a keyframe every `gop` frames, codec by the extension (GOP_CODECS),
    so a seek lands on a keyframe well after the clip's start. H.264 gets 3 B-frames and open
    GOPs: the frames just before each keyframe are decoded after it. Pictures: `images` (RGB,
    their size and count), else `synthetic_image`s."""
    codec, pix_fmt, options = GOP_CODECS[path.suffix]
    if images is not None:
        n_frames, size = len(images), (images[0].shape[1], images[0].shape[0])
    width, height = size
    time_base = Fraction(1, 25) if path.suffix == ".avi" else Fraction(1, 1000)
    with av.open(str(path), mode="w") as container:
        video = container.add_stream(codec, rate=25)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.time_base = video.codec_context.time_base = time_base
        video.options = dict(options)
        if codec == "libx264":
            video.options["x264-params"] = f"keyint={gop}:min-keyint={gop}:bframes=3:open-gop=1"
        else:
            video.codec_context.gop_size = gop
        if rotation_deg:
            video.set_display_rotation(rotation_deg)
        for index, stamp in enumerate(cfr_pts(n_frames, 25, time_base)):
            image = synthetic_image(index, width, height) if images is None else images[index]
            frame = av.VideoFrame.from_ndarray(image).reformat(format=pix_fmt)
            frame.pts, frame.time_base = stamp, time_base
            container.mux(video.encode(frame))
        container.mux(video.encode())
    return path


PACKED_ORDER = [1, 2, 3, 5, 4, 6, 8, 7]
"""How the frames of an AVI with packed B-frames arrive (in frames of 1/25 s)."""


def relabel_as_packed(monkeypatch) -> None:
    """Make every decoded frame of every clip arrive labelled like a packed B-frame AVI:
    pts 1,2,3,5,4,6,8,7,9,10,... (in 1/25 s of the stream's time base) and no dts. The
    bundled FFmpeg cannot write such a file; its decoder gives these labels."""
    from ganvid.io.video import reader

    real = reader._decode

    def relabelled(container, stream, path, *args):
        step = round(1 / (Fraction(25) * stream.time_base))
        for k, frame in enumerate(real(container, stream, path, *args)):
            frame.pts = (PACKED_ORDER[k] if k < len(PACKED_ORDER) else k + 1) * step
            frame.dts = None
            yield frame

    monkeypatch.setattr(reader, "_decode", relabelled)


def count_decoded(monkeypatch) -> list[int]:
    """Count the frames every clip read decodes from now on: a one-item list whose item
    grows (reset it to 0 between reads)."""
    from ganvid.io.video import reader

    real, count = reader._decode, [0]

    def counting(*args):
        for frame in real(*args):
            count[0] += 1
            yield frame

    monkeypatch.setattr(reader, "_decode", counting)
    return count
