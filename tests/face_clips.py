"""Synthetic face clips for the face tests: skimage's astronaut moved by known similarity motions.

Every clip comes with its ground truth: for each frame the 3x3 matrix taking astronaut-image
pixel-index coordinates to frame pixel-index coordinates (None for blank frames).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

ASTRONAUT_EYES = ((203.2, 101.5), (246.5, 104.2))
"""Eye centres (means of landmarks 36-41 / 42-47) in skimage.data.astronaut(), 512x512: dlib's
68-point model gives (203.2, 101.5), (246.5, 104.2); mediapipe's iris centres (203.5, 101.1),
(246.6, 103.5) (dependencies.md §4)."""

ASTRONAUT_FACE_CENTRE = (224.0, 120.0)
"""Roughly the middle of the astronaut's face (between eyes and mouth)."""


def astronaut() -> np.ndarray:
    """uint8 [512,512,3] RGB."""
    import skimage.data

    return np.ascontiguousarray(skimage.data.astronaut())


def similarity(
    angle_deg: float, scale: float, centre_from: tuple[float, float], centre_to: tuple[float, float]
) -> np.ndarray:
    """[3,3] map: turn by angle_deg (counter-clockwise on screen) and scale about `centre_from`,
    then move that point to `centre_to`. Pixel-index coordinates, y down."""
    a = math.radians(angle_deg)
    c, s = scale * math.cos(a), scale * math.sin(a)
    linear = np.array([[c, s], [-s, c]])  # y-down: a positive angle turns counter-clockwise
    offset = np.asarray(centre_to, float) - linear @ np.asarray(centre_from, float)
    matrix = np.eye(3)
    matrix[:2, :2], matrix[:2, 2] = linear, offset
    return matrix


def warp(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """image moved by `matrix` (source -> destination) onto a (width, height) canvas."""
    return cv2.warpAffine(
        image, matrix[:2], size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )


def add_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    noisy = image.astype(np.float32) + rng.normal(0.0, sigma, image.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


@dataclass
class Clip:
    frames: list[np.ndarray]
    truth: list[np.ndarray | None]
    """Per frame: [3,3] astronaut -> frame matrix of the followed face (None: blank frame)."""
    extra: dict = field(default_factory=dict)


def moving_clip(
    n_frames: int = 24,
    size: tuple[int, int] = (256, 256),
    blank: tuple[int, ...] = (5, 6, 15),
    noise: float = 3.0,
    seed: int = 0,
) -> Clip:
    """The astronaut's face turning (±8°), drifting (~30 px) and zooming (0.9 -> 1.1), with
    noise and some blank grey frames. `extra["motion"]`: the motion of every frame, blank or
    not (where the face would be)."""
    rng = np.random.default_rng(seed)
    base = astronaut()
    width, height = size
    frames, truth, motion = [], [], []
    for k in range(n_frames):
        t = k / max(n_frames - 1, 1)
        matrix = similarity(
            angle_deg=8.0 * math.sin(2 * math.pi * t),
            scale=0.9 + 0.2 * t,
            centre_from=ASTRONAUT_FACE_CENTRE,
            centre_to=(width / 2 - 15 + 30 * t, height / 2 + 10 * math.sin(math.pi * t)),
        )
        motion.append(matrix)
        if k in blank:
            frames.append(np.full((height, width, 3), 128, np.uint8))
            truth.append(None)
        else:
            frames.append(add_noise(warp(base, matrix, size), noise, rng))
            truth.append(matrix)
    return Clip(frames, truth, {"motion": motion})


def two_face_clip(n_frames: int = 12, face_size: tuple[int, int] = (192, 256)) -> Clip:
    """Two astronauts side by side. The left one starts larger and shrinks, the right one
    starts smaller and grows, so their size order swaps half-way. `truth` follows the left
    face; `extra["right"]` holds the right face's matrices."""
    base = astronaut()
    width, height = face_size
    frames, left, right = [], [], []
    for k in range(n_frames):
        t = k / max(n_frames - 1, 1)
        half = (width / 2, height / 2)
        m_left = similarity(3.0 * t, 1.0 - 0.3 * t, ASTRONAUT_FACE_CENTRE, half)
        m_right = similarity(-3.0 * t, 0.7 + 0.3 * t, ASTRONAUT_FACE_CENTRE, half)
        frame = np.concatenate(
            [warp(base, m_left, face_size), warp(base, m_right, face_size)], axis=1
        )
        frames.append(frame)
        left.append(m_left)
        shifted = m_right.copy()
        shifted[0, 2] += width
        right.append(shifted)
    return Clip(frames, left, {"right": right})


def two_shot_clip(n_each: int = 6, size: tuple[int, int] = (256, 256)) -> Clip:
    """A cut: the astronaut left-of-centre on the original picture, then mirrored, smaller and
    right-of-centre on a darker picture. `extra["cut"]` is the first frame of shot 2."""
    base = astronaut()
    width, height = size
    frames, truth = [], []
    for k in range(n_each):
        matrix = similarity(2.0 * k / n_each, 1.0, ASTRONAUT_FACE_CENTRE, (100 + k, 120))
        frames.append(warp(base, matrix, size))
        truth.append(matrix)
    mirrored = np.ascontiguousarray(base[:, ::-1] // 2 + 20)
    mirror = np.array([[-1.0, 0, base.shape[1] - 1], [0, 1, 0], [0, 0, 1]])
    for k in range(n_each):
        matrix = similarity(-2.0 * k / n_each, 0.8, ASTRONAUT_FACE_CENTRE, (170 - k, 140))
        frames.append(warp(mirrored, matrix, size))
        truth.append(matrix @ mirror)
    return Clip(frames, truth, {"cut": n_each})


def map_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a [3,3] affine to points [..., 2]."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:2, :2].T + matrix[:2, 2]


def blank_clip(n_frames: int = 5, size: tuple[int, int] = (64, 48), seed: int = 0) -> list:
    """Frames with no face at all (smooth noise)."""
    rng = np.random.default_rng(seed)
    width, height = size
    frames = []
    for _ in range(n_frames):
        small = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
        frames.append(cv2.resize(small, size, interpolation=cv2.INTER_CUBIC))
    return frames


@functools.cache
def dlib_detector():
    """One DlibDetector for the whole test session (loading the model takes ~0.5 s)."""
    from ganvid.face.landmarks import DetectorConfig, DlibDetector

    return DlibDetector(DetectorConfig())


@functools.cache
def astronaut_landmarks() -> np.ndarray:
    """[68,2] dlib's landmarks of the astronaut, averaged over 12 detections of the picture
    moved by small known turns, zooms and sub-pixel shifts (mapped back): dlib rounds points to
    whole pixels, so a single detection is off by up to half a pixel per point. This is the
    reference the clip tests compare against."""
    rng = np.random.default_rng(1)
    base = astronaut()
    found = []
    for _ in range(12):
        matrix = similarity(
            rng.uniform(-6, 6),
            rng.uniform(0.9, 1.1),
            ASTRONAUT_FACE_CENTRE,
            (128 + rng.uniform(-1, 1), 128 + rng.uniform(-1, 1)),
        )
        faces = dlib_detector().detect(warp(base, matrix, (256, 256)))
        face = max(faces, key=lambda f: f.area)
        found.append(map_points(np.linalg.inv(matrix), face.points))
    return np.mean(found, axis=0)
