"""A demo clip made from a public-domain face image that scikit-image ships.

`skimage.data.astronaut()` (Eileen Collins, NASA, public domain) is moved by a slow similarity
motion (drift, turn, zoom) with a 440 Hz tone, so the demo exercises the whole geometry stage
and audio passthrough on a machine with no downloads.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np

from ganvid.files import atomic_path


def demo_frame(t: float, size: int) -> np.ndarray:
    """uint8 [size,size,3]: the astronaut's face region at time t (seconds)."""
    import cv2
    from skimage.data import astronaut

    image = astronaut()
    angle = 6.0 * math.sin(2 * math.pi * t / 3.0)
    scale = size / 300 * (1.0 + 0.08 * math.sin(2 * math.pi * t / 4.0))
    centre = (220 + 12 * math.sin(2 * math.pi * t / 2.5), 150.0)
    matrix = cv2.getRotationMatrix2D(centre, angle, scale)
    matrix[:, 2] += np.array([size / 2, size / 2]) - centre
    return cv2.warpAffine(image, matrix, (size, size), borderMode=cv2.BORDER_REFLECT_101)


def make_demo_clip(path: Path, seconds: float = 2.0, fps: int = 25, size: int = 384) -> Path:
    """Write an H.264 + AAC mp4 of the moving astronaut with a 440 Hz tone."""
    import av

    rate = 48000
    with atomic_path(path) as tmp, av.open(str(tmp), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width = video.height = size
        video.pix_fmt = "yuv420p"
        audio = container.add_stream("aac", rate=rate)
        audio.layout = "mono"
        frames = int(round(seconds * fps))
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(demo_frame(i / fps, size), format="rgb24")
            container.mux(video.encode(frame))
        samples = np.arange(int(seconds * rate))
        tone = (0.2 * np.sin(2 * np.pi * 440 * samples / rate)).astype(np.float32)
        chunk = 1024
        for start in range(0, len(tone), chunk):
            piece = tone[None, start : start + chunk]
            sound = av.AudioFrame.from_ndarray(piece, format="flt", layout="mono")
            sound.sample_rate = rate
            sound.pts = start
            sound.time_base = Fraction(1, rate)
            container.mux(audio.encode(sound))
        container.mux(video.encode())
        container.mux(audio.encode())
    return path
