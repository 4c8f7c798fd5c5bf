"""Landmark stage cost on CPU at 1080p: before and after issue 19, in one run.

    python benchmarks/bench_landmarks.py [--frames 24] [--repeats 3]

Clip: issue 19's astronaut path (roll +-12 deg, scale 0.80-0.95, noise, two blank frames, the
badge on the suit in view) drawn at 1920x1080 (face about 240 px).

- old: what `detect_clip` did per frame before issue 19: dlib HOG on the frame scaled to 640 px
  + the 68-point predictor on every box (no upright refit), and the 32x32 scene thumbnail (the
  per-frame tracker on top cost microseconds);
- new: `ganvid.face.geometry.track_clip`: the same detector, plus the picture facts, layout
  checks, second opinions on weak tracks, upright re-detection of missed faces, identities,
  settled landmarks (about 3 ms a frame here).

Old and new alternate per repeat (the machine's load hits both alike); medians are reported.
Memory: Python heap peak (tracemalloc) of the new pass over N and 2N frames, frames streamed
from a generator as the video reader does: growth per frame shows what the clip length costs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.face_clips import astronaut_path  # noqa: E402

from ganvid.face import landmarks  # noqa: E402
from ganvid.face.geometry import track_clip  # noqa: E402
from ganvid.face.landmarks import DetectorConfig, DlibDetector  # noqa: E402
from ganvid.face.tracks import picture  # noqa: E402


def frames_1080p(count: int):
    """Frames of the issue's clip scaled to 1920x1080 (generated one at a time)."""
    for frame, _ in astronaut_path(n_frames=count, blank=(count // 2, count // 2 + 1)):
        big = cv2.resize(frame, (1440, 1080), interpolation=cv2.INTER_CUBIC)
        canvas = np.zeros((1080, 1920, 3), np.uint8)
        canvas[:, 240:1680] = big
        yield canvas


def old_pass(detector: DlibDetector, frames) -> None:
    refit = landmarks.UPRIGHT_REFIT_DEG
    landmarks.UPRIGHT_REFIT_DEG = float("inf")  # before issue 19: no upright refit
    try:
        for frame in frames:
            detector.detect(frame)
            grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
            cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA)
    finally:
        landmarks.UPRIGHT_REFIT_DEG = refit


def new_pass(detector: DlibDetector, frames) -> None:
    track_clip(frames, detector)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    detector = DlibDetector(DetectorConfig())
    frames = list(frames_1080p(args.frames))
    picture(frames[0])  # warm-up of cv2 paths
    times: dict[str, list[float]] = {"old": [], "new": []}
    cpu: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(args.repeats):
        for name, run in (("old", old_pass), ("new", new_pass)):
            start, start_cpu = time.perf_counter(), time.process_time()
            run(detector, frames)
            times[name].append((time.perf_counter() - start) / len(frames))
            cpu[name].append((time.process_time() - start_cpu) / len(frames))
    old, new = statistics.median(times["old"]), statistics.median(times["new"])
    print(f"1080p, {args.frames} frames, {args.repeats} repeats (median s/frame)")
    print(f"  old {old:.3f} s/frame  {[round(t, 3) for t in times['old']]}")
    print(f"  new {new:.3f} s/frame  {[round(t, 3) for t in times['new']]}")
    print(f"  new / old = {new / old:.2f}")
    # CPU time: what a busy machine (other processes on the same cores) does not inflate
    old, new = statistics.median(cpu["old"]), statistics.median(cpu["new"])
    print(f"  CPU: old {old:.3f} s/frame, new {new:.3f} s/frame, new / old = {new / old:.2f}")
    del frames
    peaks = {}
    for count in (args.frames, 2 * args.frames):
        tracemalloc.start()
        new_pass(detector, frames_1080p(count))
        peaks[count] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    small, large = peaks[args.frames], peaks[2 * args.frames]
    print(
        f"  heap peak: {small / 2**20:.1f} MiB at {args.frames} frames, "
        f"{large / 2**20:.1f} MiB at {2 * args.frames}; "
        f"{(large - small) / args.frames / 1024:.1f} KiB per extra frame"
    )


if __name__ == "__main__":
    main()
