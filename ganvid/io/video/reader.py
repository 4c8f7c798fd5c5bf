"""Reading clips with PyAV: `probe` (frame count, pts, size, rotation, sound, in one packet scan)
and `read_frames` (display-orientation RGB frames with their pts, timestamps repaired when a
container labels them out of order). Conventions: `ganvid.io.video`.
"""

from __future__ import annotations

import collections
import functools
import heapq
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from ganvid.errors import InputError, VideoError
from ganvid.ui import warn

_DEFAULT_TIME_BASE = Fraction(1, 90_000)  # MPEG's clock, for streams that state none


@dataclass(frozen=True)
class VideoInfo:
    """What a clip is, read without decoding more than its first frame.

    width, height: display size in pixels (after rotation).
    coded_width, coded_height: size of the stored picture (before rotation).
    fps: average frame rate (frames per second); for VFR clips only an average.
    frame_count: exact number of video frames (packets counted, not taken from the header).
    duration_s: time from the first frame's start to the last frame's end, in seconds.
    rotation_deg: 0/90/180/270, counter-clockwise turn a player applies for display.
    time_base: unit of every `pts` of this clip, in seconds.
    start_pts: pts of the first frame.
    codec, pix_fmt: video codec name and decoded pixel format (e.g. "h264", "yuv420p").
    has_audio, audio_codec: whether there is a sound track and its codec name.
    path: the file (None for a description made up for writing images).
    """

    path: Path | None
    width: int
    height: int
    coded_width: int
    coded_height: int
    fps: Fraction
    frame_count: int
    duration_s: float
    rotation_deg: int
    time_base: Fraction
    start_pts: int
    codec: str
    pix_fmt: str
    has_audio: bool
    audio_codec: str | None


@dataclass(frozen=True)
class Frame:
    """One decoded frame: `image` HxWx3 uint8 RGB, `pts` in the clip's time_base,
    `time_s` = pts * time_base in seconds (not shifted to start at 0), `index` from 0.
    `rebuilt`: its pts is not the one the file stores (`TimestampRepair` made it)."""

    index: int
    pts: int
    time_s: float
    image: np.ndarray
    rebuilt: bool = False


# ---------------------------------------------------------------------------------------------
# reading


def probe(path: str | os.PathLike) -> VideoInfo:
    """Describe a video file. Decodes only the first frame (to learn the rotation and to check
    the stream is decodable), then reads the packets without decoding them to count frames
    and find the end time exactly (container headers can be wrong for VFR clips with
    B-frames). Cost: one pass over the file's bytes.

    Raises InputError (missing file) or VideoError (not a media file, corrupt, no video
    stream, no frames, no decoder for the codec), each one line naming the file.
    """
    path = _existing_file(path)
    with open_input(path) as container:
        stream = video_stream(container, path)
        first = _first_frame(container, stream, path)
        audio = container.streams.audio[0] if container.streams.audio else None
        audio_codec = audio.codec_context.name if audio is not None else None
        time_base = Fraction(stream.time_base or _DEFAULT_TIME_BASE)
        header_fps = stream.average_rate
        codec = stream.codec_context.name
        pix_fmt = first.format.name
        rotation = _rotation_deg(first)
        coded_w, coded_h = first.width, first.height
    scan = _scan_packets(path)
    if scan.count == 0:
        raise VideoError(f"{path}: the video stream has no frames")
    duration = (scan.end_pts - scan.start_pts) * time_base
    width, height = (coded_h, coded_w) if rotation in (90, 270) else (coded_w, coded_h)
    return VideoInfo(
        path=path,
        width=width,
        height=height,
        coded_width=coded_w,
        coded_height=coded_h,
        fps=_average_fps(scan.count, duration, header_fps),
        frame_count=scan.count,
        duration_s=float(duration),
        rotation_deg=rotation,
        time_base=time_base,
        start_pts=scan.start_pts,
        codec=codec,
        pix_fmt=pix_fmt,
        has_audio=audio_codec is not None,
        audio_codec=audio_codec,
    )


def read_frames(
    path: str | os.PathLike,
    upright: bool = True,
    start: int = 0,
    pts: Sequence[int] | None = None,
) -> Iterator[Frame]:
    """Yield the frames of the clip in display order from index `start` on, one at a time
    (memory does not grow with the clip's length: a few frames are held to put their
    timestamps in order). With `upright`, images are turned to display orientation (what a
    player shows, so faces are upright); otherwise they are the coded pictures.

    Timestamps strictly increase whatever the file stores (see `TimestampRepair`); when some
    had to be rebuilt, one warning line says so (once per file and process). HDR video (PQ,
    HLG or BT.2020, e.g. a phone's 10-bit HEVC) is converted to 8-bit RGB without tone
    mapping, which one warning line says.

    Frames before `start` are decoded from the clip's first frame but not converted, unless
    `pts` is given: the pts of every frame as a read from the start gave them, none rebuilt
    (`Frame.rebuilt`). Then the reader seeks to the keyframe shown at or before frame `start`
    and knows each later frame by its pts (`_frames_after_seek`); where a decoded pts is not
    the next one of `pts` (or decoding fails), it goes on from the clip's first frame instead,
    so it yields the same frames, bit for bit, as a read from the start.

    Raises InputError / VideoError like `probe`, and VideoError when decoding fails midway.
    """
    path = _existing_file(path)
    if pts is not None and 0 < start < len(pts):
        seek = functools.partial(_frames_after_seek, start=start, known=pts)
        try:
            for frame in _converted(path, upright, start, seek):
                yield frame
                start = frame.index + 1
            if start == len(pts):  # the clip ended after its last known frame
                return
        except (_LostTrack, VideoError):  # a real decoding error comes again from the start
            pass
    yield from _converted(path, upright, start, _frames_in_order)


_Decoded = tuple[av.VideoFrame, int, int, bool]
"""(decoded frame, index, pts, pts rebuilt) from a source of `_converted`."""


def _converted(
    path: Path,
    upright: bool,
    start: int,
    source: Callable[[av.container.InputContainer, av.VideoStream, Path], Iterator[_Decoded]],
) -> Iterator[Frame]:
    """`Frame`s of the decoded frames `source` gives, from index `start` on: the one place
    that opens the clip for decoding, turns pictures upright and converts them to RGB."""
    with open_input(path) as container:
        stream = video_stream(container, path)
        stream.thread_type = "AUTO"
        time_base = stream.time_base or _DEFAULT_TIME_BASE
        reformatter = VideoReformatter()
        quarter_turns = None
        for frame, index, pts, rebuilt in source(container, stream, path):
            if quarter_turns is None:
                quarter_turns = _rotation_deg(frame) // 90 if upright else 0
                _note_hdr(frame, path)
            if index < start:
                continue
            image = _to_rgb(frame, reformatter)
            del frame
            if quarter_turns:
                image = np.ascontiguousarray(np.rot90(image, k=quarter_turns))
            time_s = float(pts * time_base)
            yield Frame(index=index, pts=pts, time_s=time_s, image=image, rebuilt=rebuilt)
        if quarter_turns is None:
            raise VideoError(f"{path}: the video stream has no frames")


def _frames_in_order(
    container: av.container.InputContainer, stream: av.VideoStream, path: Path
) -> Iterator[_Decoded]:
    """Every frame from the first, with repaired timestamps (`TimestampRepair`)."""
    time_base = stream.time_base or _DEFAULT_TIME_BASE
    repair = TimestampRepair(_frame_step(stream, time_base))
    decoded = ((frame, frame.pts, frame.dts) for frame in _decode(container, stream, path))
    changed = 0
    for index, (frame, pts) in enumerate(repair.run(decoded)):
        rebuilt, changed = repair.changed > changed, repair.changed
        if repair.changed:
            _warn_once(path, "timestamps", _REBUILT_MESSAGE)
        yield frame, index, pts, rebuilt


class _LostTrack(Exception):
    """After a seek, a decoded frame is not the one a read from the start gives next."""


def _frames_after_seek(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    path: Path,
    start: int,
    known: Sequence[int],
) -> Iterator[_Decoded]:
    """Frames `start`, `start + 1`, ... decoded from the keyframe shown at or before frame
    `start`. A frame shown at or after a keyframe decodes to the same bits as in a read from
    the start; those shown before it (the leading pictures of an open GOP, which refer to
    the previous GOP) are dropped. Frame k must carry `known[k]`, else `_LostTrack`."""
    packets = _packets_from_keyframe(container, stream, known[start])
    if packets is None:
        raise _LostTrack
    index = start
    for frame in _decode(container, stream, path, packets):
        if frame.pts is None:
            raise _LostTrack
        if frame.pts < known[start]:
            continue
        if index >= len(known) or frame.pts != known[index]:
            raise _LostTrack
        yield frame, index, frame.pts, False
        index += 1


def _packets_from_keyframe(
    container: av.container.InputContainer, stream: av.VideoStream, target: int
) -> Iterator[av.Packet] | None:
    """The video packets from the keyframe shown at or before pts `target` on, or None if
    the container does not seek there. Containers that index by decoding time (MP4, AVI)
    land on the next keyframe when the target is shown after that keyframe is decoded but
    before it is shown (B-frames); seeking again to just before its decoding time lands on
    the keyframe before it."""
    position = target
    for _ in range(2):
        try:
            container.seek(position, stream=stream, backward=True, any_frame=False)
            packets = container.demux(stream)  # ends with an empty packet: flush
            first = next(packets, None)
        except av.FFmpegError:
            return None
        if first is None or first.pts is None or not first.size or not first.is_keyframe:
            return None
        if first.pts <= target:
            return itertools.chain([first], packets)
        if first.dts is None or first.dts > position:
            return None
        position = first.dts - 1
    return None


_REBUILT_MESSAGE = (
    "frame timestamps are out of order, repeated or missing (e.g. packed B-frames in an AVI); "
    "rebuilt them in display order, as FFmpeg plays the file"
)


class TimestampRepair:
    """Strictly increasing display timestamps for decoded frames, in the order the decoder
    gives them (which is display order: a decoder reorders pictures itself; only their
    timestamps can be wrong).

    Each frame's own stamp is its best-effort timestamp as FFmpeg starts it: the pts, or the
    dts when the pts is missing. The stamps of `depth` consecutive frames are then sorted
    (as libavformat sorts a window of pts to derive dts): an AVI with packed B-frames gives
    the decoded pictures in display order but labels them 1,2,3,5,4,6,8,7,..., and sorting
    the labels (not the pictures) gives 1,2,3,4,5,6,7,8. A stamp that is still missing, or
    not above the previous frame's, is rebuilt as the previous one plus `step` (one frame at
    the stream's average rate). Every frame is kept; correct files come out unchanged.

    `changed` counts frames whose timestamp differs from the stamp they arrived with.
    """

    def __init__(self, step: int, depth: int = 4, start: int = 0) -> None:
        self.step, self.depth, self.start = max(1, int(step)), max(1, int(depth)), int(start)
        self.changed = 0

    def run(self, items: Iterable[tuple[object, int | None, int | None]]) -> Iterator[tuple]:
        """items: (frame, pts, dts) in decoding output order -> (frame, timestamp)."""
        window: collections.deque[tuple[object, int | None]] = collections.deque()
        stamps: list[int] = []  # a heap of the window's known stamps
        last: int | None = None
        try:
            for frame, pts, dts in items:
                stamp = pts if pts is not None else dts
                window.append((frame, None if stamp is None else int(stamp)))
                if stamp is not None:
                    heapq.heappush(stamps, int(stamp))
                if len(window) > self.depth:
                    last = yield from self._emit(window, stamps, last)
        except Exception:  # e.g. a decoding error: the frames decoded before it still count
            while window:
                last = yield from self._emit(window, stamps, last)
            raise
        while window:
            last = yield from self._emit(window, stamps, last)

    def _emit(self, window: collections.deque, stamps: list[int], last: int | None):
        frame, own = window.popleft()
        stamp = heapq.heappop(stamps) if own is not None else None
        if stamp is None or (last is not None and stamp <= last):
            stamp = self.start if last is None else last + self.step
        if stamp != own:
            self.changed += 1
        yield frame, stamp
        return stamp


_HDR_TRANSFERS = {16, 18}  # AVCOL_TRC_SMPTE2084 (PQ), AVCOL_TRC_ARIB_STD_B67 (HLG)
_BT2020_PRIMARIES = 9  # AVCOL_PRI_BT2020
_warned: set[tuple[str, str]] = set()


def _warn_once(path: Path, kind: str, message: str) -> None:
    """One warning line per file, kind and process (a job reads its clip several times)."""
    key = (str(path.absolute()), kind)
    if key not in _warned:
        _warned.add(key)
        warn(f"{path}: {message}")


def _note_hdr(frame: av.VideoFrame, path: Path) -> None:
    """Say once that HDR (PQ / HLG / BT.2020) video becomes 8-bit RGB without tone mapping."""
    if frame.color_trc in _HDR_TRANSFERS or frame.color_primaries == _BT2020_PRIMARIES:
        _warn_once(
            path,
            "hdr",
            f"HDR video ({frame.format.name}) is converted to 8-bit RGB without tone mapping; "
            "colours may look washed out or clipped",
        )


def _existing_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: the file is empty")
    return path


def open_input(path: Path) -> av.container.InputContainer:
    try:
        return av.open(str(path), mode="r")
    except av.error.EOFError as error:
        raise VideoError(f"{path}: the file ends before any video (cut short?)") from error
    except av.FFmpegError as error:
        raise VideoError(f"{path}: not a readable video file ({cause(error)})") from error


def video_stream(container: av.container.InputContainer, path: Path) -> av.VideoStream:
    if not container.streams.video:
        kinds = ", ".join(sorted({s.type for s in container.streams})) or "no streams at all"
        raise VideoError(f"{path}: has no video stream (it contains: {kinds})")
    stream = container.streams.video[0]
    if stream.codec_context is None:
        raise VideoError(
            f"{path}: video codec '{stream.codec.name if stream.codec else 'unknown'}' "
            "cannot be decoded by this FFmpeg build (see `ganvid doctor`)"
        )
    return stream


def _decode(
    container: av.container.InputContainer,
    stream: av.VideoStream,
    path: Path,
    packets: Iterable[av.Packet] | None = None,
) -> Iterator[av.VideoFrame]:
    """Decoded frames of `stream` (of its `packets` when given, as `container.demux` gives
    them: ending with the empty packet that flushes the decoder); FFmpeg errors become
    one-line VideoErrors."""
    try:
        if packets is None:
            yield from container.decode(stream)
        else:
            for packet in packets:
                yield from packet.decode()
    except av.FFmpegError as error:
        raise VideoError(f"{path}: video could not be decoded ({cause(error)})") from error


def _first_frame(
    container: av.container.InputContainer, stream: av.VideoStream, path: Path
) -> av.VideoFrame:
    for frame in _decode(container, stream, path):
        return frame
    raise VideoError(f"{path}: the video stream has no frames")


@dataclass(frozen=True)
class _PacketScan:
    count: int  # packets that decode to a shown frame
    start_pts: int  # smallest pts
    end_pts: int  # largest pts + that packet's duration


def _scan_packets(path: Path) -> _PacketScan:
    """Read the video packets (no decoding): count them and find the presented time span.
    Packets an edit list marks as discarded are not shown, so they are not counted. Where a
    packet has no duration (MPEG-TS stores none), the last frame is taken to last the
    average gap between frames."""
    count, first, last, end = 0, None, None, None
    missing_duration = False
    with open_input(path) as container:
        stream = video_stream(container, path)
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.is_discard:  # flush packet / cut by an edit list
                    continue
                count += 1
                if packet.pts is None:
                    continue
                first = packet.pts if first is None else min(first, packet.pts)
                last = packet.pts if last is None else max(last, packet.pts)
                if packet.duration:
                    stop = packet.pts + packet.duration
                    end = stop if end is None else max(end, stop)
                else:
                    missing_duration = True
        except av.FFmpegError as error:
            raise VideoError(f"{path}: video could not be read ({cause(error)})") from error
    if first is None or last is None:
        return _PacketScan(count=count, start_pts=0, end_pts=0)
    if missing_duration or end is None:
        gap = round((last - first) / (count - 1)) if count > 1 else 0
        end = last + gap if end is None else max(end, last + gap)
    return _PacketScan(count=count, start_pts=first, end_pts=end)


def _average_fps(count: int, duration: Fraction, header_fps: Fraction | None) -> Fraction:
    """Frames per second over the clip. The header's rate is kept when it agrees within 1 %
    (it is the round number, e.g. 30000/1001); VFR clips get their true average."""
    if duration <= 0:
        return Fraction(header_fps or 25)
    measured = count / duration
    if header_fps and abs(header_fps / measured - 1) < 0.01:
        return Fraction(header_fps)
    return measured.limit_denominator(1001)


def _frame_step(stream: av.VideoStream, time_base: Fraction) -> int:
    """pts units per frame at the average rate, used only when a frame has no pts."""
    rate = stream.average_rate or stream.guessed_rate or Fraction(25)
    return max(1, round(1 / (Fraction(rate) * time_base)))


def _rotation_deg(frame: av.VideoFrame) -> int:
    """Display rotation of a decoded frame, snapped to 0/90/180/270 (counter-clockwise)."""
    return (round(frame.rotation / 90) * 90) % 360


def _to_rgb(frame: av.VideoFrame, reformatter: VideoReformatter) -> np.ndarray:
    """HxWx3 uint8 RGB of a decoded frame, honouring its tagged matrix and range. One
    reformatter per clip reuses its scaler (4x faster than a new one per frame)."""
    rgb = reformatter.reformat(frame, format="rgb24", src_color_range=frame.color_range)
    return rgb.to_ndarray()


def cause(error: Exception) -> str:
    """FFmpeg's message without the file name PyAV appends (we name the file ourselves)."""
    strerror = getattr(error, "strerror", None)
    return " ".join(str(strerror or error).split())
