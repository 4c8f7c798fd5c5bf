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


# ----------------------------------------------------------------------------- real-footage clips
# Clips as a camera would give them: the whole photo (suit, badge, background) moving in a
# larger frame, sensor noise, blank frames, cuts, two people, distractors. Each comes with its
# truth: per frame, for every person shown, the photo -> frame matrix.

CAMERAMAN_FACE_CENTRE = (224.0, 152.0)
"""Roughly the middle of the cameraman's face in skimage.data.camera() (512x512)."""


def cameraman() -> np.ndarray:
    """uint8 [512,512,3]: skimage's grey cameraman as RGB (a detector's input)."""
    import skimage.data

    return np.ascontiguousarray(np.repeat(skimage.data.camera()[:, :, None], 3, axis=2))


def distractor() -> np.ndarray:
    """uint8 [300,451,3]: Chelsea the cat (skimage), a face-like thing that is not a person."""
    import skimage.data

    return np.ascontiguousarray(skimage.data.chelsea())


@dataclass
class Scene:
    """What one frame shows: for each person name, its photo -> frame matrix."""

    people: dict[str, np.ndarray] = field(default_factory=dict)
    shot: int = 0


@dataclass
class FootageClip:
    frames: list[np.ndarray]
    scenes: list[Scene]
    """One per frame (no people: a blank frame or no face)."""
    cuts: list[int]
    """First frames of shots 2, 3, ..."""


def grey_like(image: np.ndarray, mean: float = 110.0, std: float = 55.0) -> np.ndarray:
    """Grey version of an RGB photo with a given brightness and contrast ("similar light")."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey = (grey - grey.mean()) / max(grey.std(), 1e-6) * std + mean
    grey = np.clip(np.rint(grey), 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def paste_warp(canvas: np.ndarray, image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """`image` moved by `matrix` drawn over `canvas` (only where it lands)."""
    size = (canvas.shape[1], canvas.shape[0])
    moved = cv2.warpAffine(image, matrix[:2], size, flags=cv2.INTER_LINEAR)
    mask = cv2.warpAffine(np.ones(image.shape[:2], np.uint8), matrix[:2], size) > 0
    out = canvas.copy()
    out[mask] = moved[mask]
    return out


def place(photo: np.ndarray, matrix: np.ndarray, size: tuple[int, int] = (640, 480)) -> np.ndarray:
    """The photo moved by `matrix` onto a plain wall (no mirrored copies of the face)."""
    width, height = size
    wall = np.empty((height, width, 3), np.uint8)
    wall[:] = np.linspace(60, 100, width, dtype=np.uint8)[None, :, None]
    return paste_warp(wall, photo, matrix)


def astronaut_path(
    n_frames: int = 40,
    blank: tuple[int, ...] = (17, 18),
    seed: int = 0,
    occluded: tuple[int, ...] = (),
):
    """Issue 19's clip, one (frame, Scene) at a time: 640x480, the whole astronaut photo (badge
    included) moved along a known path: roll +-12 deg, scale 0.80-0.95, slow translation,
    noise, two blank frames; on `occluded` frames a hand-sized grey patch hides the face (it
    is still there: the geometry must be interpolated through)."""
    rng = np.random.default_rng(seed)
    base = astronaut()
    for k in range(n_frames):
        t = k / (n_frames - 1)
        matrix = similarity(
            12.0 * math.sin(2 * math.pi * t),
            0.80 + 0.15 * (0.5 - 0.5 * math.cos(math.pi * t)),
            (256.0, 256.0),
            (300 + 40 * t, 235 + 10 * math.sin(math.pi * t)),
        )
        if k in blank:
            yield np.full((480, 640, 3), 12, np.uint8), Scene()
            continue
        frame = place(base, matrix)
        if k in occluded:
            x, y = map_points(matrix, np.array(ASTRONAUT_FACE_CENTRE)).astype(int)
            frame[y - 45 : y + 35, x - 40 : x + 40] = (150, 120, 100)
        yield add_noise(frame, 4.0, rng), Scene({"astronaut": matrix})


def astronaut_path_clip(
    n_frames: int = 40, blank: tuple[int, ...] = (17, 18), seed: int = 0, occluded=()
):
    """`astronaut_path` as a FootageClip."""
    frames, scenes = zip(*astronaut_path(n_frames, blank, seed, occluded), strict=True)
    return FootageClip(list(frames), list(scenes), [])


def roll_scale_clip(n_frames: int = 36, seed: int = 1) -> FootageClip:
    """The astronaut rolling to +30 and -30 degrees while zooming 1.1 -> 0.55 (face ~100 -> 50
    px), noise, on a 640x480 frame (the rest of the photo around it)."""
    rng = np.random.default_rng(seed)
    base = astronaut()
    frames, scenes = [], []
    for k in range(n_frames):
        t = k / (n_frames - 1)
        matrix = similarity(
            30.0 * math.sin(2 * math.pi * t),
            1.1 - 0.55 * t,
            ASTRONAUT_FACE_CENTRE,
            (320 - 60 * t, 200 + 40 * t),
        )
        frames.append(add_noise(place(base, matrix), 3.0, rng))
        scenes.append(Scene({"astronaut": matrix}))
    return FootageClip(frames, scenes, [])


def small_face_clip(n_frames: int = 16, seed: int = 2) -> FootageClip:
    """A wide shot: the astronaut's face about 40 px (scale 0.45), drifting, with noise."""
    rng = np.random.default_rng(seed)
    base = astronaut()
    frames, scenes = [], []
    for k in range(n_frames):
        matrix = similarity(4.0 * math.sin(k / 3), 0.45, ASTRONAUT_FACE_CENTRE, (200 + 6 * k, 150))
        frames.append(add_noise(place(base, matrix), 3.0, rng))
        scenes.append(Scene({"astronaut": matrix}))
    return FootageClip(frames, scenes, [])


def two_people_clip(n_frames: int = 20, seed: int = 3) -> FootageClip:
    """The astronaut (left, larger, on screen the whole time) and the cameraman (right, smaller,
    leaves the frame to the right and comes back), with the cat as a distractor in between."""
    rng = np.random.default_rng(seed)
    astro, camera, cat = astronaut(), cameraman(), distractor()
    background = np.full((480, 640, 3), 90, np.uint8)
    frames, scenes = [], []
    for k in range(n_frames):
        m_astro = similarity(3.0 * math.sin(k / 4), 0.9, ASTRONAUT_FACE_CENTRE, (150 + k, 200))
        away = 0 if k < 6 or k >= 14 else 260  # frames 6-13: the cameraman is out of frame
        m_camera = similarity(-2.0, 1.3, CAMERAMAN_FACE_CENTRE, (500 + away - k, 190))
        m_cat = similarity(0.0, 0.35, (225.0, 150.0), (330.0, 400.0))
        frame = paste_warp(background, cat, m_cat)
        frame = paste_warp(
            frame,
            _crop(camera, CAMERAMAN_FACE_CENTRE, 200),
            _shifted(m_camera, CAMERAMAN_FACE_CENTRE, 200),
        )
        frame = paste_warp(
            frame,
            _crop(astro, ASTRONAUT_FACE_CENTRE, 220),
            _shifted(m_astro, ASTRONAUT_FACE_CENTRE, 220),
        )
        frames.append(add_noise(frame, 3.0, rng))
        people = {"astronaut": m_astro}
        if not away:
            people["cameraman"] = m_camera
        scenes.append(Scene(people))
    return FootageClip(frames, scenes, [])


def _crop(image: np.ndarray, centre: tuple[float, float], half: int) -> np.ndarray:
    """The square of side 2*half around `centre` (inside the photo)."""
    x, y = int(centre[0]), int(centre[1])
    return image[max(y - half, 0) : y + half, max(x - half, 0) : x + half]


def _shifted(matrix: np.ndarray, centre: tuple[float, float], half: int) -> np.ndarray:
    """`matrix` for the photo, re-expressed for `_crop(photo, centre, half)`."""
    x, y = int(centre[0]), int(centre[1])
    offset = np.eye(3)
    offset[:2, 2] = (max(x - half, 0), max(y - half, 0))
    return matrix @ offset


def cuts_clip(n_shot: int = 8, seed: int = 4) -> FootageClip:
    """Hard cuts and fast motion: astronaut (colour) -> cameraman -> astronaut in grey with the
    cameraman's light (two people in similar light) -> a black frame and the same shot going
    on -> the astronaut whipped across the frame (fast motion, not a cut)."""
    rng = np.random.default_rng(seed)
    astro, camera = astronaut(), cameraman()
    astro_grey = grey_like(astro, float(camera.mean()), float(camera.std()))
    frames, scenes, cuts = [], [], []

    def shot(photo, name, centre, start, step, scale, count):
        for k in range(count):
            matrix = similarity(1.5 * k / count, scale, centre, (start[0] + step * k, start[1]))
            frames.append(add_noise(place(photo, matrix), 3.0, rng))
            scenes.append(Scene({name: matrix}, shot=len(cuts)))

    shot(astro, "astronaut", ASTRONAUT_FACE_CENTRE, (260, 200), 2.0, 1.0, n_shot)
    cuts.append(len(frames))
    shot(camera, "cameraman", CAMERAMAN_FACE_CENTRE, (380, 220), -2.0, 1.3, n_shot)
    cuts.append(len(frames))
    shot(astro_grey, "astronaut", ASTRONAUT_FACE_CENTRE, (300, 230), 2.0, 1.0, n_shot // 2)
    frames.append(np.zeros((480, 640, 3), np.uint8))  # a black frame inside the shot
    scenes.append(Scene(shot=len(cuts)))
    shot(astro_grey, "astronaut", ASTRONAUT_FACE_CENTRE, (310, 230), 2.0, 1.0, n_shot // 2)
    cuts.append(len(frames))
    shot(astro, "astronaut", ASTRONAUT_FACE_CENTRE, (180, 220), 45.0, 0.9, n_shot)  # whip pan
    return FootageClip(frames, scenes, cuts)


CAMERAMAN_BOX = (189, 117, 257, 185)
"""dlib's MMOD CNN detector on skimage.data.camera() (upsample 1): the cameraman's face box."""


ASTRONAUT_BOX = (165, 73, 263, 171)
"""dlib's MMOD CNN detector on skimage.data.astronaut() (upsample 1): the astronaut's face box."""

PHOTOS = {
    "astronaut": (astronaut, ASTRONAUT_FACE_CENTRE, ASTRONAUT_BOX),
    "cameraman": (cameraman, CAMERAMAN_FACE_CENTRE, CAMERAMAN_BOX),
}


@functools.cache
def reference_landmarks(name: str) -> np.ndarray:
    """[68,2] the reference landmarks of person `name` in their photo, the truth the clip
    scores measure against. One rule for every person: dlib's 68-point fit in the CNN
    detector's box on the photo moved by 12 small known motions (turns of +-4 deg, scales
    0.9-1.4, sub-pixel shifts), each settled (`DlibDetector.settle`: refitted in the box the
    face's own brows, nose bridge and eyes give, until that box stops moving), mapped back and
    averaged (dlib rounds points to whole pixels).

    Why settled and not the fit in the detector's box: dlib's fit follows its box, and on a
    face looking down (the cameraman) a box 4 px (5 %) lower turns the fitted eye line by
    ~4.5 deg. A truth tied to one detector's box then measures how close the tracker's box
    comes to that box, not how well it finds the face. The settled fit is where the fit and
    its box agree, whichever sane box started it, so the tracker (which settles too) is
    measured on the face. Careful settling (the median of 3 x 3 nearby boxes per fit), which
    the tracker uses on weak faces, for both. For a clear face it is the fit in the detector's
    box: the astronaut's eyes lie within 0.35 px of `ASTRONAUT_EYES`.

    Limits, measured: the cameraman's settled roll turns about half as far as the picture
    (picture turned from -4 to +4 deg: his fitted roll goes from 7.4 to 3.2 deg, unevenly;
    the astronaut's from 6.7 to -1.0), so on a turned clip his roll is off by ~1 deg whatever
    the truth; and a start whose fit has collapsed (eye line 10+ deg off) settles elsewhere.
    """
    make_photo, centre, box = PHOTOS[name]
    detector = dlib_detector()
    rng = np.random.default_rng(2)
    photo = make_photo()
    corners = np.array([box[:2], box[2:]], dtype=np.float64)
    found = []
    for _ in range(12):
        matrix = similarity(
            rng.uniform(-4, 4),
            rng.uniform(0.9, 1.4),
            centre,
            (200 + rng.uniform(-1, 1), 200 + rng.uniform(-1, 1)),
        )
        image = warp(photo, matrix, (400, 400))
        moved = map_points(matrix, corners)
        side = float(np.abs(moved[1] - moved[0]).max())
        start = detector._fit_upright(image, moved.mean(axis=0), side, 0.0)
        settled = detector.settle(image, start, careful=True)
        found.append(map_points(np.linalg.inv(matrix), settled))
    return np.mean(found, axis=0)


def reference_eyes(name: str) -> np.ndarray:
    """[2,2] eye centres (means of landmarks 36-41 / 42-47) of `reference_landmarks`."""
    points = reference_landmarks(name)
    return np.stack([points[36:42].mean(axis=0), points[42:48].mean(axis=0)])


def score_geometry(clip: FootageClip, records: list, name: str) -> dict:
    """Compare per-frame geometry with the truth for person `name`.

    Returns eye-centre errors (px) on detected and on interpolated frames, the relative-roll
    error (deg) of the SG3 transform, frames put on something that is not that person
    (`wrong`: face elsewhere or absent in truth but geometry present), frames with the person
    but marked absent (`missed`), and the shots found vs the truth.
    """
    from ganvid.face.align import alignment_quad
    from ganvid.face.transforms import transform_from_quads

    eyes_ref = reference_eyes(name)
    points_ref = reference_landmarks(name)
    detected_err, interp_err, roll_err = [], [], []
    wrong = missed = 0
    for record, scene in zip(records, clip.scenes, strict=True):
        truth = scene.people.get(name)
        if truth is None:
            wrong += not record.absent
            continue
        if record.absent:
            missed += 1
            continue
        eyes = np.stack(
            [record.landmarks[36:42].mean(axis=0), record.landmarks[42:48].mean(axis=0)]
        )
        error = float(np.hypot(*(eyes - map_points(truth, eyes_ref)).T).max())
        if error > 20:  # on another face or a pattern
            wrong += 1
        (interp_err if record.interpolated else detected_err).append(error)
        true_quad = alignment_quad(map_points(truth, points_ref))
        expected = transform_from_quads(true_quad, record.unaligned_quad)
        roll_err.append(abs(record.transform.angle_deg - expected.angle_deg))
    shots = [r.shot for r in records]
    found_cuts = [k for k in range(1, len(shots)) if shots[k] != shots[k - 1]]
    return {
        "detected_median": float(np.median(detected_err)) if detected_err else float("nan"),
        "detected_p95": float(np.percentile(detected_err, 95)) if detected_err else float("nan"),
        "interpolated_max": max(interp_err, default=0.0),
        "interpolated": len(interp_err),
        "roll_median": float(np.median(roll_err)) if roll_err else float("nan"),
        "roll_max": max(roll_err, default=0.0),
        "wrong": wrong,
        "missed": missed,
        "false_cuts": sorted(set(found_cuts) - set(clip.cuts)),
        "missed_cuts": sorted(set(clip.cuts) - set(found_cuts)),
    }
