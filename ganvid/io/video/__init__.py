"""Streaming video I/O with PyAV: probe a clip, read its frames with timestamps, write H.264
with the source's timing, rotation and sound.

Conventions
- Images are HxWx3 uint8 RGB numpy arrays, in display orientation (upright, as a player shows
  them) unless a name says `coded`.
- `pts` are integers in the video stream's `time_base` (a Fraction of a second). The writer
  stores them unchanged, so variable-frame-rate clips keep every frame time and stay in sync
  with their sound.
- `rotation_deg` is the counter-clockwise angle (0, 90, 180 or 270) by which a player turns the
  coded picture for display: FFmpeg's display-matrix convention (PyAV's `VideoFrame.rotation`,
  taken mod 360). A phone held upright usually records 270 (a quarter turn clockwise).
  Mirroring in the display matrix is ignored.

Reading lives in `reader`, writing (and the choices it makes) in `writer`; both are used
through this package:

    from ganvid.io.video import probe, read_frames, VideoWriter
"""

from ganvid.io.video.reader import Frame, TimestampRepair, VideoInfo, probe, read_frames
from ganvid.io.video.writer import VideoWriter, write_images_as_video

__all__ = [
    "Frame",
    "TimestampRepair",
    "VideoInfo",
    "VideoWriter",
    "probe",
    "read_frames",
    "write_images_as_video",
]
