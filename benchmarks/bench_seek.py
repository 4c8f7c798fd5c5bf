"""Benchmark seeking into a clip (`ganvid.pipeline.crops.ClipFrames` with the work dir's pts):
the time a `--part K/N` worker takes to reach its share at the end of a long clip, decoding
forward from frame 0 (before issue 18's seek) vs seeking to the keyframe before it.

    python benchmarks/bench_seek.py                       # 1080p, 30 fps, 30 s: the last 10 %
    python benchmarks/bench_seek.py --seconds 60 --gop 60 --share 0.25

The clip is H.264 (libx264 --preset, B-frames, keyframe every --gop frames: 250 is libx264's
default, phones use 30-60) of the astronaut photo drifting across a 1920x1080 frame, written
once into --clip (kept for reruns). Each timing is a fresh ClipFrames in this process, best of
--repeat: "reach" is the time to the first frame of the share (what seeking saves), "share" the
time to decode the whole share after it. Frames are compared bit for bit (np.array_equal).
Three ways: ClipFrames before this change (every frame from 0 converted to RGB), forward from
0 converting only the share (what ClipFrames does now without trusted pts), and seeking.
"""

from __future__ import annotations

import argparse
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def make_clip(path: Path, seconds: float, fps: int, gop: int, preset: str) -> Path:
    import cv2
    import skimage.data

    width, height = 1920, 1080
    photo = cv2.resize(skimage.data.astronaut(), (height, height), interpolation=cv2.INTER_AREA)
    time_base = Fraction(1, fps)
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = video.codec_context.time_base = time_base
        video.options = {"crf": "20", "preset": preset, "g": str(gop)}
        for index in range(round(seconds * fps)):
            image = np.zeros((height, width, 3), np.uint8)
            left = int((width - height) * (0.5 + 0.5 * np.sin(index / fps)))
            image[:, left : left + height] = np.roll(photo, index, axis=0)
            frame = av.VideoFrame.from_ndarray(image)
            frame.pts, frame.time_base = index, time_base
            container.mux(video.encode(frame))
        container.mux(video.encode())
    return path


class ConvertingEveryFrame:
    """`ClipFrames.get` before issue 18: forward from frame 0, every frame converted to RGB."""

    def __init__(self, clip: Path) -> None:
        from ganvid.io.video import read_frames

        self.reader = read_frames(clip)

    def get(self, index: int):
        for frame in self.reader:
            if frame.index == index:
                return frame
        raise IndexError(index)


def timed(frames, share: range) -> tuple[float, float, list]:
    """(s to the share's first frame, s for the rest of the share, a few of its images)."""
    begin = time.perf_counter()
    images = [frames.get(share.start).image]
    reached = time.perf_counter()
    for index in share[1:]:
        image = frames.get(index).image
        if index % 20 == 0 or index == share[-1]:
            images.append(image)
    return reached - begin, time.perf_counter() - reached, images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=Path("/tmp/ganvid_bench_seek.mp4"))
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--gop", type=int, default=250)
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--share", type=float, default=0.1, help="fraction at the clip's end")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from ganvid.io.video import read_frames
    from ganvid.pipeline.crops import ClipFrames

    clip = args.clip
    if not clip.exists():
        start = time.perf_counter()
        make_clip(clip, args.seconds, args.fps, args.gop, args.preset)
        print(f"wrote {clip} in {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    pts, rebuilt = [], 0
    for frame in read_frames(clip):  # what the decode stage stores
        pts.append(frame.pts)
        rebuilt += frame.rebuilt
    whole = time.perf_counter() - start
    count = len(pts)
    share = range(count - max(1, round(args.share * count)), count)
    print(
        f"{count} frames, {clip.stat().st_size / 1e6:.1f} MB, gop {args.gop}, rebuilt pts "
        f"{rebuilt}; a whole decode (RGB) {whole:.2f} s; share frames {share.start}..{share[-1]}"
    )
    ways = {
        "forward, converting every frame (before)": lambda: ConvertingEveryFrame(clip),
        "forward, converting the share only": lambda: ClipFrames(clip),
        "seek": lambda: ClipFrames(clip, pts),
    }
    best: dict[str, tuple[float, float]] = {}
    images: dict[str, list] = {}
    for _ in range(args.repeat):
        for name, frames in ways.items():
            reach, rest, images[name] = timed(frames(), share)
            old = best.get(name, (float("inf"), float("inf")))
            best[name] = (min(old[0], reach), min(old[1], rest))
    reference = images[next(iter(ways))]
    same = all(
        np.array_equal(a, b) for name in ways for a, b in zip(reference, images[name], strict=True)
    )
    seek = best["seek"]
    for name, (reach, rest) in best.items():
        print(
            f"{name:42s} reach {reach:7.3f} s ({reach / seek[0]:5.1f}x seek)  "
            f"share {rest:6.3f} s  total {reach + rest:7.3f} s ({(reach + rest) / sum(seek):4.1f}x)"
        )
    print(f"frames identical: {same}")


if __name__ == "__main__":
    main()
