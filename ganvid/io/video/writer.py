"""Writing H.264 with PyAV: `VideoWriter` keeps the source's frame times, rotation and sound;
`write_images_as_video` is the simple case; `VideoWriter.copy_video` joins encoded segments.

About 650 lines because the frame timing, rotation, padding, sound interleaving and segment
joins all act on one open output container and its muxing order; they are one writer.

Choices the writer makes (and why)
- Odd frame sizes: H.264 in 4:2:0 (yuv420p, what browsers, QuickTime, phones and hardware
  decoders play) can only crop the coded picture in steps of 2 pixels, so an odd width or
  height cannot be stored exactly. By default such frames are padded by one pixel on the
  right / bottom (of the stored picture), repeating the edge pixels: every source pixel is
  kept and the output plays everywhere, one pixel wider or taller than the source. With
  `exact_size=True` they are encoded as yuv444p (High 4:4:4) instead: exact size and full
  chroma, but many players refuse 4:4:4 H.264.
- MP4 / MOV outputs are written with `+faststart` (the index, moov, before the media data),
  so players and browsers start before the whole file has arrived.
- Sound: the source's audio packets are copied byte for byte, with their timestamps, when the
  output container can hold their codec (FFmpeg's `avformat_query_codec`; .mp4 holds aac, mp3,
  opus, flac, ac3 ...; PCM goes into .mov / .mkv but not .mp4, whose players refuse it).
  Otherwise (e.g. PCM from a .mov or .avi into an .mp4, or opus into a .mov, which FFmpeg
  lists but refuses at the header) the sound is decoded and re-encoded to AAC, with a
  warning. Audio packets are interleaved with the video as it is written, so memory stays
  flat. Two container rules FFmpeg applies on its own: AAC from MPEG-TS loses its 7-byte
  ADTS headers in .mp4/.mkv (same audio data), and Matroska shifts every stream together so
  none starts below 0 (AAC priming starts at -21 ms or so): sync is kept, absolute times
  move. For exact timestamps write .mp4 or .mov.
- Frame durations: a frame lasts until the next one; the last frame lasts until the source
  video's end, so a full copy ends exactly where the source does.
- Colour: RGB is converted to BT.709 limited-range YUV and the stream is tagged so, which is
  what players assume for video; the reader converts with whatever matrix a clip is tagged with.
- Output goes to a temporary file in the destination's folder and is renamed over the
  destination only when the whole video was written; on any error it is deleted.
"""

from __future__ import annotations

import collections
import itertools
import math
import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from ganvid.errors import InputError, VideoError
from ganvid.files import temp_path_beside
from ganvid.io.video.reader import (
    VideoInfo,
    cause,
    open_input,
    video_stream,
)
from ganvid.ui import warn

_BT709 = 1  # AVCOL_SPC_BT709 == AVCOL_PRI_BT709 == AVCOL_TRC_BT709 == SWS_CS_ITU709
_LIMITED_RANGE = 1  # AVCOL_RANGE_MPEG
_AAC_BIT_RATE = 192_000

# ---------------------------------------------------------------------------------------------
# writing


class VideoWriter:
    """Encode display-orientation RGB frames to an H.264 file that plays like its source.

    with VideoWriter("out.mp4", probe("in.mp4"), audio_from="in.mp4") as writer:
        for frame in read_frames("in.mp4"):
            writer.write(edit(frame.image), frame.pts)

    info: the source's description; the output gets its time_base, fps, rotation and (unless
        `width`/`height` say otherwise) its display size. `pts` given to `write` are in
        `info.time_base` and must increase; they are stored exactly.
    crf, preset, pix_fmt, codec: libx264 quality (0-51, lower is better), speed preset, pixel
        format and encoder.
    exact_size: how a 4:2:0 `pix_fmt` stores an odd width or height: False pads by one pixel
        (repeating the edge) to an even size, True switches to yuv444p at the exact size (see
        the module notes).
    audio_from: a file whose first audio stream is copied into the output (None: no sound).
    width, height: display size of the frames to write, when it differs from the source's
        (e.g. a crop or a field-of-view-expanded render).
    end_pts: where the last frame ends (None: at the source's end, see `_last_frame_duration`),
        for a segment of a longer video: the next segment's first pts.

    The output is written to a temporary file beside `path` and renamed onto `path` when the
    `with` block ends without error; on error the temporary file is deleted and `path` is
    left untouched. Writing onto the input (`info.path` or `audio_from`) raises InputError.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        info: VideoInfo,
        *,
        crf: int = 18,
        preset: str = "medium",
        pix_fmt: str = "yuv420p",
        audio_from: str | os.PathLike | None = None,
        codec: str = "libx264",
        width: int | None = None,
        height: int | None = None,
        exact_size: bool = False,
        end_pts: int | None = None,
    ) -> None:
        self.path = Path(path)
        self._end_pts = None if end_pts is None else int(end_pts)
        self.info = info
        self.width = int(width if width is not None else info.width)
        self.height = int(height if height is not None else info.height)
        self._quarter_turns = info.rotation_deg // 90
        self._audio_from = Path(audio_from) if audio_from is not None else None
        self._settings = {"crf": int(crf), "preset": preset, "pix_fmt": pix_fmt, "codec": codec}
        self._exact_size = bool(exact_size)
        self._pad = (0, 0)  # pixels added to the coded picture's (right, bottom), see _open
        self._check_paths()
        _check_encoder_settings(codec, int(crf), preset, pix_fmt)
        self._tmp_path: Path | None = None
        self._container: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None
        self._audio: _AudioCopy | None = None
        self._last_pts: int | None = None
        self._last_gap: int | None = None
        self._durations: dict[int, int] = {}  # pts -> duration of frames already written
        self._held: collections.deque[av.Packet] = collections.deque()
        self._reformatter = VideoReformatter()
        self._copied_end: int | None = None  # largest pts copied by copy_video
        self._copied_dts: Fraction | None = None  # time of the last dts it muxed
        self.frames_written = 0

    # -- context manager ----------------------------------------------------------------------

    def __enter__(self) -> VideoWriter:
        self._open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._finish()
        else:
            self._abort()

    # -- public -------------------------------------------------------------------------------

    def write(self, image: np.ndarray, pts: int | None = None) -> None:
        """Encode one frame. image: HxWx3 uint8 RGB in display orientation, of the writer's
        size. pts: in info.time_base, strictly increasing; None means one frame period (at
        info.fps) after the previous frame, or info.start_pts for the first."""
        if self._container is None:
            raise RuntimeError("VideoWriter.write() called outside its `with` block")
        pts = self._next_pts(pts)
        frame = self._to_video_frame(image)
        frame.pts = pts
        frame.time_base = self.info.time_base
        if self._last_pts is not None:
            self._last_gap = pts - self._last_pts
            self._durations[self._last_pts] = self._last_gap
        self._last_pts = pts
        self._held.extend(self._encode(frame))
        self._mux_ready()
        self.frames_written += 1

    def copy_video(self, part: str | os.PathLike) -> None:
        """Append the video packets of `part` byte for byte, with their timestamps (a stream
        copy, no re-encode): `part` is a segment of this video written by a VideoWriter with
        the same settings (so the same codec parameters), starting with a keyframe and
        carrying its frames' own pts, after the frames written so far. The sound of
        `audio_from` is interleaved as for encoded frames. VideoError if `part` was encoded
        with other settings or its timestamps do not follow the frames before it."""
        if self._container is None or self._stream is None:
            raise RuntimeError("VideoWriter.copy_video() called outside its `with` block")
        if self._held:
            raise RuntimeError("copy_video() after write(): the encoder still holds frames")
        part = Path(part)
        first = True
        with open_input(part) as container:
            source = video_stream(container, part)
            theirs = source.codec_context.extradata
            if _parameter_sets(theirs) != _parameter_sets(self._stream.codec_context.extradata):
                raise VideoError(f"{part}: encoded with other settings than {self.path}")
            # MP4 stores H.264 as length-prefixed units, the muxer wants what the encoder gives
            length_size = (theirs[4] & 3) + 1 if theirs and theirs[:1] == b"\x01" else None
            for packet in container.demux(source):
                if packet.size == 0:
                    continue
                pts = round(packet.pts * packet.time_base / self.info.time_base)
                if first and self._last_pts is not None and pts <= self._last_pts:
                    raise VideoError(f"{part}: its frames overlap the frames before it")
                first = False
                if self._audio is not None and packet.dts is not None:
                    self._audio.mux_until(packet.dts * packet.time_base)
                self._copied_end = pts if self._copied_end is None else max(self._copied_end, pts)
                if length_size is not None:
                    packet = _annex_b(packet, length_size)
                self._follow_dts(packet, part)
                packet.stream = self._stream
                self._mux(packet)
                self.frames_written += 1
        self._last_pts = self._copied_end

    def _follow_dts(self, packet: av.Packet, part: Path) -> None:
        """Decoding times must increase across parts. An encoder starts each part's dts
        below its first pts by its reordering delay, extrapolated from the part's own frame
        gaps, which can fall below the previous part's last dts when frame times are
        irregular: such dts are raised just past it (never past the packet's pts); display
        times (pts) are never changed."""
        if packet.dts is None:
            return
        time_base = packet.time_base
        if self._copied_dts is not None and packet.dts * time_base <= self._copied_dts:
            packet.dts = math.floor(self._copied_dts / time_base) + 1
            if packet.dts > packet.pts:
                raise VideoError(f"{part}: its frames cannot follow the frames before it")
        self._copied_dts = packet.dts * time_base

    # -- set-up -------------------------------------------------------------------------------

    def _check_paths(self) -> None:
        for source in (self.info.path, self._audio_from):
            if source is not None and _same_file(self.path, source):
                raise InputError(f"{self.path}: refusing to write the output onto its own input")
        if self._audio_from is not None and not self._audio_from.is_file():
            raise InputError(f"{self._audio_from}: no such file (given as the audio source)")
        if not _guess_format(self.path):
            kind = f"'{self.path.suffix}'" if self.path.suffix else "(no extension)"
            raise InputError(f"{self.path}: unknown video file type {kind}; use .mp4, .mov or .mkv")
        if self.width < 1 or self.height < 1:
            raise ValueError(f"frame size must be positive, got {self.width}x{self.height}")

    def _open(self) -> None:
        self._tmp_path = temp_path_beside(self.path)
        try:
            try:
                self._start(reencode_audio=False)
            except av.FFmpegError:
                if self._audio is None or self._audio.reencode:
                    raise
                # The container lists the codec yet refuses it at the header (e.g. opus in
                # .mov: "opus only supported in MP4"): start again with AAC.
                self._close_all(check=False)
                self._start(reencode_audio=True)
        except BaseException as error:
            self._abort()
            if isinstance(error, av.FFmpegError):
                raise VideoError(f"{self.path}: cannot start writing ({cause(error)})") from error
            raise

    def _start(self, reencode_audio: bool) -> None:
        assert self._tmp_path is not None
        # FFmpeg picks the container from the extension, which the temp name keeps.
        options = {"movflags": "+faststart"} if _is_mp4_family(self.path) else {}
        self._container = av.open(str(self._tmp_path), mode="w", options=options)
        self._stream = self._add_video_stream()
        if self._audio_from is not None:
            self._audio = _AudioCopy.open(
                self._audio_from, self._container, self.path, force_reencode=reencode_audio
            )
        self._container.start_encoding()

    def _add_video_stream(self) -> av.VideoStream:
        assert self._container is not None
        info, settings = self.info, self._settings
        coded_w, coded_h = self.width, self.height
        if self._quarter_turns % 2:
            coded_w, coded_h = coded_h, coded_w
        pix_fmt = settings["pix_fmt"]
        self._pad = (0, 0)
        if (coded_w % 2 or coded_h % 2) and _is_subsampled(pix_fmt):
            if self._exact_size:
                pix_fmt = "yuv444p"  # see the module notes on odd sizes
            else:
                self._pad = (coded_w % 2, coded_h % 2)
                coded_w, coded_h = coded_w + self._pad[0], coded_h + self._pad[1]
        self._pix_fmt = pix_fmt
        try:
            stream = self._container.add_stream(settings["codec"], rate=info.fps)
        except (av.FFmpegError, ValueError) as error:
            raise VideoError(
                f"{self.path}: cannot encode with '{settings['codec']}' into this file type "
                f"({cause(error)})"
            ) from error
        stream.width, stream.height = coded_w, coded_h
        stream.pix_fmt = pix_fmt
        # Both time bases must be the source's, or FFmpeg re-times frames to 1/fps and VFR
        # timestamps collide ("non monotonically increasing dts").
        stream.time_base = info.time_base
        stream.codec_context.time_base = info.time_base
        stream.codec_context.colorspace = _BT709
        stream.codec_context.color_primaries = _BT709
        stream.codec_context.color_trc = _BT709
        stream.codec_context.color_range = _LIMITED_RANGE
        if settings["codec"] in ("libx264", "libx265"):
            stream.options = {"crf": str(settings["crf"]), "preset": settings["preset"]}
        if info.rotation_deg:
            stream.set_display_rotation(info.rotation_deg)
        return stream

    # -- per frame ----------------------------------------------------------------------------

    def _next_pts(self, pts: int | None) -> int:
        if pts is None:
            if self._last_pts is None:
                return self.info.start_pts
            return self._last_pts + self._frame_period()
        pts = int(pts)
        if self._last_pts is not None and pts <= self._last_pts:
            raise ValueError(f"pts must increase: got {pts} after {self._last_pts}")
        return pts

    def _to_video_frame(self, image: np.ndarray) -> av.VideoFrame:
        expected = (self.height, self.width, 3)
        if image.shape != expected or image.dtype != np.uint8:
            raise ValueError(
                f"expected a {expected} uint8 RGB image, got {image.shape} {image.dtype}"
            )
        if self._quarter_turns:
            image = np.ascontiguousarray(np.rot90(image, k=-self._quarter_turns))
        if any(self._pad):
            image = np.pad(image, ((0, self._pad[1]), (0, self._pad[0]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        return self._reformatter.reformat(
            frame, format=self._pix_fmt, dst_colorspace=_BT709, dst_color_range=_LIMITED_RANGE
        )

    def _encode(self, frame: av.VideoFrame | None) -> list[av.Packet]:
        assert self._stream is not None
        try:
            return self._stream.encode(frame)
        except av.FFmpegError as error:
            raise VideoError(f"{self.path}: encoding failed ({cause(error)})") from error

    def _mux_ready(self) -> None:
        """Mux encoded packets, in order, once their frame's duration is known. The encoder
        leaves packet durations empty and a frame's duration is only known when the next
        frame arrives; without it the container would invent the last frame's length."""
        while self._held and self._held[0].pts in self._durations:
            packet = self._held.popleft()
            packet.duration = self._durations.pop(packet.pts)
            if self._audio is not None and packet.dts is not None:
                self._audio.mux_until(packet.dts * packet.time_base)
            self._mux(packet)

    def _last_frame_duration(self) -> int:
        """The last frame lasts until the source's end (so a full copy ends exactly where the
        source does, and a partial one holds its last frame while the copied sound plays);
        without a source: as long as the gap before it, or one frame period."""
        assert self._last_pts is not None
        if self._end_pts is not None and self._end_pts > self._last_pts:
            return self._end_pts - self._last_pts
        if self.info.path is not None:
            source_end = self.info.start_pts + round(self.info.duration_s / self.info.time_base)
            if source_end > self._last_pts:
                return source_end - self._last_pts
        return self._last_gap or self._frame_period()

    def _frame_period(self) -> int:
        """One frame at info.fps, in time_base units."""
        return max(1, round(1 / (self.info.fps * self.info.time_base)))

    def _mux(self, packet: av.Packet) -> None:
        assert self._container is not None
        try:
            self._container.mux(packet)
        except av.FFmpegError as error:
            raise VideoError(f"{self.path}: writing failed ({cause(error)})") from error

    # -- the end ------------------------------------------------------------------------------

    def _finish(self) -> None:
        try:
            if self.frames_written == 0:
                raise VideoError(f"{self.path}: no frames were written")
            self._held.extend(self._encode(None))
            assert self._last_pts is not None
            self._durations[self._last_pts] = self._last_frame_duration()
            self._mux_ready()
            if self._held:
                raise VideoError(f"{self.path}: the encoder returned frames that were not sent")
            if self._audio is not None:
                self._audio.mux_until(None)
            self._close_all()
            assert self._tmp_path is not None
            os.replace(self._tmp_path, self.path)
            self._tmp_path = None
        except BaseException:
            self._abort()
            raise

    def _abort(self) -> None:
        self._close_all(check=False)
        if self._tmp_path is not None:
            self._tmp_path.unlink(missing_ok=True)
            self._tmp_path = None

    def _close_all(self, check: bool = True) -> None:
        """Close the audio source and the output. check=False (clean-up after an error):
        ignore failures, the original error is the one to report."""
        audio, container = self._audio, self._container
        self._audio, self._container, self._stream = None, None, None
        failures = []
        for closable in (audio, container):
            try:
                if closable is not None:
                    closable.close()
            except Exception as error:
                failures.append(error)
        if failures and check:
            reason = cause(failures[0])
            raise VideoError(f"{self.path}: finishing the file failed ({reason})") from failures[0]


class _AudioCopy:
    """Feeds the first audio stream of a source file into an output container, in step with
    the video: packets copied unchanged, or re-encoded to AAC if the container cannot hold
    the codec. Reads lazily, so only a packet or two is held at a time."""

    def __init__(
        self,
        source: av.container.InputContainer,
        in_stream: av.AudioStream,
        container: av.container.OutputContainer,
        out_stream: av.AudioStream,
        reencode: bool,
        label: Path,
    ) -> None:
        self._source = source
        self._in_stream = in_stream
        self._container = container
        self._out_stream = out_stream
        self.reencode = reencode
        self._label = label
        self._packets = source.demux(in_stream)
        self._pending: av.Packet | None = None
        self._done = False

    @classmethod
    def open(
        cls,
        path: Path,
        container: av.container.OutputContainer,
        label: Path,
        force_reencode: bool = False,
    ) -> _AudioCopy | None:
        """Add the audio stream of `path` to `container`; None if `path` has no sound."""
        source = open_input(path)
        try:
            if not source.streams.audio:
                source.close()
                return None
            in_stream = source.streams.audio[0]
            name = in_stream.codec_context.name
            # PCM in .mp4 is valid for FFmpeg but browsers, QuickTime and phones refuse it
            pcm_in_mp4 = name.startswith("pcm_") and label.suffix.lower() in (".mp4", ".m4v")
            reencode = force_reencode or pcm_in_mp4 or name not in container.supported_codecs
            if reencode:
                warn(f"{label}: audio codec '{name}' cannot go into this container; using AAC")
                out_stream = container.add_stream("aac", rate=in_stream.codec_context.sample_rate)
                # AVI / WAV PCM often states only a channel count ("2 channels"): AAC needs
                # a named layout, the default one for that count
                channels = in_stream.codec_context.layout.nb_channels
                out_stream.layout = f"{channels}c"  # FFmpeg's default layout: mono, stereo...
                out_stream.bit_rate = _AAC_BIT_RATE
            else:
                out_stream = container.add_stream_from_template(in_stream)
        except BaseException:
            source.close()
            raise
        return cls(source, in_stream, container, out_stream, reencode, label)

    def mux_until(self, time_s: Fraction | None) -> None:
        """Mux source packets whose time is <= time_s (all remaining ones when None)."""
        while not self._done:
            packet = self._pending or self._next_packet()
            if packet is None:
                self._done = True
                self._flush_encoder()
                return
            if time_s is not None and _packet_time(packet) > time_s:
                self._pending = packet
                return
            self._pending = None
            self._write(packet)

    def _write(self, packet: av.Packet) -> None:
        try:
            if not self.reencode:
                packet.stream = self._out_stream
                self._container.mux(packet)
                return
            for frame in packet.decode():
                self._container.mux(self._out_stream.encode(frame))
        except av.FFmpegError as error:
            raise VideoError(f"{self._label}: copying audio failed ({cause(error)})") from error

    def _flush_encoder(self) -> None:
        if not self.reencode:
            return
        try:
            self._container.mux(self._out_stream.encode(None))
        except av.FFmpegError as error:
            raise VideoError(f"{self._label}: encoding audio failed ({cause(error)})") from error

    def close(self) -> None:
        self._source.close()

    def _next_packet(self) -> av.Packet | None:
        try:
            for packet in self._packets:
                if packet.dts is not None and packet.size > 0:
                    return packet
        except av.FFmpegError as error:
            raise VideoError(
                f"{self._label}: the source audio could not be read ({cause(error)})"
            ) from error
        return None


def write_images_as_video(
    path: str | os.PathLike,
    images: Iterable[np.ndarray],
    fps: Fraction | float = 25,
    *,
    crf: int = 18,
    preset: str = "medium",
) -> int:
    """Write same-sized HxWx3 uint8 RGB images as a silent constant-rate H.264 clip (e.g. a
    crop video for inspection). Returns the number of frames written; VideoError if none."""
    iterator = iter(images)
    first = next(iterator, None)
    if first is None:
        raise VideoError(f"{path}: no frames to write")
    rate = Fraction(fps).limit_denominator(1001)
    height, width = first.shape[:2]
    info = VideoInfo(
        path=None,
        width=width,
        height=height,
        coded_width=width,
        coded_height=height,
        fps=rate,
        frame_count=0,
        duration_s=0.0,
        rotation_deg=0,
        time_base=1 / rate,
        start_pts=0,
        codec="h264",
        pix_fmt="yuv420p",
        has_audio=False,
        audio_codec=None,
    )
    with VideoWriter(path, info, crf=crf, preset=preset) as writer:
        for index, image in enumerate(itertools.chain([first], iterator)):
            writer.write(image, index)
    return writer.frames_written


# ---------------------------------------------------------------------------------------------
# small helpers


_X264_PRESETS = (
    "ultrafast superfast veryfast faster fast medium slow slower veryslow placebo".split()
)


def _check_encoder_settings(codec: str, crf: int, preset: str, pix_fmt: str) -> None:
    """Refuse settings the encoder would reject later with a vague "Invalid argument"."""
    if codec not in av.codecs_available:
        raise InputError(f"video encoder '{codec}' is not in this FFmpeg build")
    if codec in ("libx264", "libx265"):
        if not 0 <= crf <= 51:
            raise InputError(f"crf must be 0-51 (lower is better quality), got {crf}")
        if preset not in _X264_PRESETS:
            raise InputError(f"unknown preset '{preset}'; choose one of {', '.join(_X264_PRESETS)}")
    try:
        av.VideoFormat(pix_fmt)
    except ValueError as error:
        raise InputError(f"unknown pixel format '{pix_fmt}' (e.g. yuv420p, yuv444p)") from error


def _guess_format(path: Path) -> bool:
    """Whether FFmpeg has an output container for this file's extension."""
    extension = path.suffix.lower().lstrip(".")
    for name in av.formats_available:
        try:
            if extension in av.ContainerFormat(name, "w").extensions:
                return True
        except ValueError:  # an input-only format
            continue
    return False


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def _is_mp4_family(path: Path) -> bool:
    """Whether FFmpeg writes `path` with its mov/mp4 muxer (which takes `movflags`)."""
    return path.suffix.lower() in (".mp4", ".m4v", ".mov", ".3gp")


def _is_subsampled(pix_fmt: str) -> bool:
    return pix_fmt.startswith(("yuv420", "yuvj420", "yuv422", "yuvj422", "nv12", "nv21"))


def _parameter_sets(extradata: bytes | None) -> list[bytes]:
    """The H.264 parameter sets (SPS, PPS) in a stream's extradata, in either of its forms:
    an MP4 `avcC` record (what a demuxer gives) or Annex-B start codes (what an encoder gives).
    Other codecs: the extradata itself."""
    data = bytes(extradata or b"")
    if data[:1] == b"\x01" and len(data) > 6:  # avcC: version 1
        sets, at = [], 5
        for count_mask in (0x1F, 0xFF):
            count, at = data[at] & count_mask, at + 1
            for _ in range(count):
                size = int.from_bytes(data[at : at + 2], "big")
                sets.append(data[at + 2 : at + 2 + size])
                at += 2 + size
        return sets
    if data.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")):
        units = data.replace(b"\x00\x00\x00\x01", b"\x00\x00\x01").split(b"\x00\x00\x01")
        return [unit for unit in units if unit]
    return [data]


def _annex_b(packet: av.Packet, length_size: int) -> av.Packet:
    """An H.264 packet of length-prefixed NAL units (MP4) -> the same units with start codes,
    as an encoder gives them (the MP4 muxer turns them back into exactly the same bytes)."""
    data, units, at = bytes(packet), [], 0
    while at < len(data):
        size = int.from_bytes(data[at : at + length_size], "big")
        units.append(data[at + length_size : at + length_size + size])
        at += length_size + size
    copy = av.Packet(b"".join(b"\x00\x00\x00\x01" + unit for unit in units))
    copy.pts, copy.dts, copy.duration = packet.pts, packet.dts, packet.duration
    copy.time_base = packet.time_base
    copy.is_keyframe = packet.is_keyframe
    return copy


def _packet_time(packet: av.Packet) -> Fraction:
    stamp = packet.dts if packet.dts is not None else packet.pts
    return stamp * packet.time_base
