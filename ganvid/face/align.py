"""FFHQ alignment quads, crops from quads, and the per-shot unaligned crop window.

Coordinates (used everywhere in `ganvid.face`):

- *Frame coordinates* are pixel-index coordinates (x right, y down) in which the centre of
  pixel (row i, column j) is the point (x=j, y=i). Landmark detectors (dlib, face-alignment)
  report points in this system, and OpenCV's warps use it.
- A *quad* [4,2] is a parallelogram in frame coordinates, corners in the FFHQ order
  [c−x−y, c−x+y, c+x+y, c+x−y] = top-left, bottom-left, bottom-right, top-right of the crop.
- A crop of size S maps the quad onto the square [0, S]² of *continuous* crop coordinates, in
  which crop pixel j covers [j, j+1] and has its centre at j + 0.5. So the quad's corners are
  the outer corners of the crop's corner pixels (this is what FFHQ's PIL QUAD transform with
  `quad + 0.5` does). `quad_to_frame_matrix` turns that into a 3x3 matrix between crop and frame
  pixel-index coordinates, ready for `cv2.warpAffine`.

Out-of-frame areas of a crop are filled in one of three documented ways (`Fill`):

- "ffhq": FFHQ's own treatment: reflect-pad the frame, blur the padding progressively and blend
  it towards the image's median colour (what the FFHQ dataset and the GANs trained on it saw);
- "reflect": mirror the frame at its border (OpenCV BORDER_REFLECT_101, edge pixel not doubled);
- "constant": black (what stylegan3-editing's unaligned crops show).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

Rule = Literal["ffhq", "eyes"]
Fill = Literal["ffhq", "reflect", "constant"]

LEFT_EYE = slice(36, 42)
"""68-point indices of the eye on the image's left (the subject's right eye)."""
RIGHT_EYE = slice(42, 48)
MOUTH_LEFT, MOUTH_RIGHT = 48, 54


# ----------------------------------------------------------------------------- quads


def eye_centres(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) eye centres [2] from 68 landmarks [68,2]: means of points 36-41 and 42-47."""
    points = np.asarray(points, dtype=np.float64)
    return points[LEFT_EYE].mean(axis=0), points[RIGHT_EYE].mean(axis=0)


def alignment_quad(points: np.ndarray, rule: Rule = "ffhq") -> np.ndarray:
    """The FFHQ alignment quad [4,2] (frame coordinates) of a face's 68 landmarks [68,2].

    rule "ffhq": half-side = max(|eye-to-eye|·2, |eye-to-mouth|·1.8) (the FFHQ dataset rule);
    rule "eyes": half-side = |eye-to-eye|·2 (stylegan3-editing's video rule, steadier under
    expression changes but zooms in when the head turns).
    The quad is a square whose x axis follows the eye line tilted by the eye-to-mouth direction,
    centred 0.1·eye-to-mouth below the eyes' midpoint.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"expected 68 landmarks [68,2], got {points.shape}")
    eye_left, eye_right = eye_centres(points)
    eye_avg = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    mouth_avg = (points[MOUTH_LEFT] + points[MOUTH_RIGHT]) / 2
    eye_to_mouth = mouth_avg - eye_avg
    # x: the eye line, corrected by the eye-to-mouth direction turned by -90 degrees.
    x = eye_to_eye - np.array([-eye_to_mouth[1], eye_to_mouth[0]])
    x /= np.hypot(*x)
    if rule == "ffhq":
        half = max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    elif rule == "eyes":
        half = np.hypot(*eye_to_eye) * 2.0
    else:
        raise ValueError(f"unknown alignment rule {rule!r} (use 'ffhq' or 'eyes')")
    x *= half
    y = np.array([-x[1], x[0]])  # x turned by +90 degrees in y-down coordinates
    c = eye_avg + eye_to_mouth * 0.1
    return square_quad(c, x, y)


def square_quad(centre: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """[4,2] quad [c−x−y, c−x+y, c+x+y, c+x−y] from its centre and half-axis vectors."""
    return np.stack([centre - x - y, centre - x + y, centre + x + y, centre + x - y])


def quad_side(quad: np.ndarray) -> float:
    """Length of the quad's top edge (corner 0 to corner 3), in frame pixels."""
    quad = np.asarray(quad, dtype=np.float64)
    return float(np.hypot(*(quad[3] - quad[0])))


def quad_angle_deg(quad: np.ndarray) -> float:
    """Direction of the quad's x axis (top edge), degrees, measured in y-down frame coordinates."""
    quad = np.asarray(quad, dtype=np.float64)
    dx, dy = quad[3] - quad[0]
    return math.degrees(math.atan2(dy, dx))


def quad_centre(quad: np.ndarray) -> np.ndarray:
    return np.asarray(quad, dtype=np.float64).mean(axis=0)


def _check_parallelogram(quad: np.ndarray) -> np.ndarray:
    quad = np.asarray(quad, dtype=np.float64)
    if quad.shape != (4, 2):
        raise ValueError(f"a quad is [4,2], got {quad.shape}")
    scale = max(np.abs(quad[3] - quad[0]).max(), np.abs(quad[1] - quad[0]).max(), 1.0)
    if np.abs(quad[2] - (quad[1] + quad[3] - quad[0])).max() > 1e-6 * scale + 1e-9:
        raise ValueError("the quad is not a parallelogram; crops need an affine quad")
    return quad


def quad_to_frame_matrix(quad: np.ndarray, size: int) -> np.ndarray:
    """[3,3] affine matrix: crop pixel-index coords (x, y, 1) -> frame pixel-index coords.

    Crop pixel (row i, col j) has its centre at frame point M @ (j, i, 1). Use it with
    `cv2.warpAffine(frame, M[:2], (size, size), flags=INTER_LINEAR | WARP_INVERSE_MAP)` to cut
    the crop, or `cv2.warpAffine(crop, M[:2], (W, H))` to put a crop back into the frame.
    """
    quad = _check_parallelogram(quad)
    ex = (quad[3] - quad[0]) / size  # frame step per crop pixel along the crop's x
    ey = (quad[1] - quad[0]) / size
    origin = quad[0] + 0.5 * (ex + ey)  # centre of crop pixel (0, 0)
    return np.array(
        [[ex[0], ey[0], origin[0]], [ex[1], ey[1], origin[1]], [0.0, 0.0, 1.0]], dtype=np.float64
    )


def frame_to_quad_matrix(quad: np.ndarray, size: int) -> np.ndarray:
    """[3,3] inverse of `quad_to_frame_matrix`: frame pixel-index coords -> crop coords."""
    return np.linalg.inv(quad_to_frame_matrix(quad, size))


# ----------------------------------------------------------------------------- crops


def crop_from_quad(
    frame: np.ndarray, quad: np.ndarray, size: int, fill: Literal["reflect", "constant"] = "reflect"
) -> np.ndarray:
    """Bilinear crop [size,size,C] of `frame` [H,W,C] mapping `quad` exactly onto the square.

    No anti-aliasing: use `ffhq_crop` when the quad is much larger than `size`. Outside the frame:
    "reflect" mirrors the frame (BORDER_REFLECT_101), "constant" gives 0.
    """
    import cv2

    border = {"reflect": cv2.BORDER_REFLECT_101, "constant": cv2.BORDER_CONSTANT}[fill]
    matrix = quad_to_frame_matrix(quad, size)
    return cv2.warpAffine(
        np.ascontiguousarray(frame),
        matrix[:2],
        (size, size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=border,
        borderValue=0,
    )


@dataclass(frozen=True)
class CropConfig:
    """How `ffhq_crop` turns a quad into an image."""

    size: int = 1024
    """Output side in pixels."""
    fill: Fill = "ffhq"
    """What appears outside the frame (see the module docstring)."""
    supersample: int = 1
    """Sample at size·supersample and area-downsample (the FFHQ dataset used 4 at 1024)."""


def ffhq_crop(frame: np.ndarray, quad: np.ndarray, config: CropConfig = CropConfig()) -> np.ndarray:
    """Crop uint8 [size,size,3] of `frame` [H,W,3] uint8 over `quad`, with FFHQ's steps.

    1. shrink: if the quad is at least 4x the sampled size, area-downsample the frame by
       floor(qsize / sampled_size / 2) first (anti-aliasing);
    2. border: keep only the quad's bounding box plus max(rint(0.1·qsize), 3) pixels;
    3. pad (fill "ffhq"): where the quad comes within 4 pixels of leaving the frame, reflect-pad
       by at least rint(0.3·qsize), blur the padding (sigma 0.02·qsize) and blend it towards the
       median colour;
    4. bilinear warp of the quad onto the square.
    Every step keeps exact track of coordinates, so the output is the quad -> square mapping of
    `quad_to_frame_matrix(quad, config.size)` (pixel-centre convention in the module docstring).
    """
    import cv2

    quad = _check_parallelogram(quad)
    sampled = config.size * config.supersample
    qsize = quad_side(quad)
    image, quad = _cut_region(frame, quad, qsize, sampled)
    qsize = quad_side(quad)
    if config.fill == "ffhq":
        image, quad = _ffhq_pad(image, quad, qsize)
    fill = "constant" if config.fill == "constant" else "reflect"
    out = crop_from_quad(image, quad, sampled, fill=fill)
    if config.supersample > 1:
        out = cv2.resize(out, (config.size, config.size), interpolation=cv2.INTER_AREA)
    return out


def _bounds(quad: np.ndarray, border: int) -> tuple[int, int, int, int]:
    """Integer (x0, y0, x1, y1) of the quad's bounding box grown by `border`."""
    lo = np.floor(quad.min(axis=0)).astype(int) - border
    hi = np.ceil(quad.max(axis=0)).astype(int) + border
    return int(lo[0]), int(lo[1]), int(hi[0]) + 1, int(hi[1]) + 1


def _cut_region(
    frame: np.ndarray, quad: np.ndarray, qsize: float, sampled: int
) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1-2: crop to the quad's box (+border) and shrink; returns (image, quad in it)."""
    import cv2

    height, width = frame.shape[:2]
    shrink = int(math.floor(qsize / sampled * 0.5))
    border = max(int(np.rint(qsize * 0.1)), 3)
    x0, y0, x1, y1 = _bounds(quad, border)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 <= x0 or y1 <= y0:  # the quad lies wholly outside the frame: keep a 1-px sliver
        x0, y0 = min(max(x0, 0), width - 1), min(max(y0, 0), height - 1)
        x1, y1 = x0 + 1, y0 + 1
    image = frame[y0:y1, x0:x1]
    quad = quad - np.array([x0, y0], dtype=np.float64)
    if shrink > 1:
        h, w = image.shape[:2]
        new_w, new_h = max(int(np.rint(w / shrink)), 1), max(int(np.rint(h / shrink)), 1)
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
        # index -> continuous (+0.5), scale by the exact per-axis ratio, back to index (-0.5)
        quad = (quad + 0.5) * np.array([new_w / w, new_h / h]) - 0.5
    return np.ascontiguousarray(image), quad


def _ffhq_pad(image: np.ndarray, quad: np.ndarray, qsize: float) -> tuple[np.ndarray, np.ndarray]:
    """Step 3: FFHQ's reflect-pad, progressive blur and median blend where the quad leaves."""
    import cv2

    height, width = image.shape[:2]
    border = max(int(np.rint(qsize * 0.1)), 3)
    x0, y0, x1, y1 = _bounds(quad, 0)
    pad = np.array([-x0 + border, -y0 + border, x1 - 1 - width + border, y1 - 1 - height + border])
    pad = np.maximum(pad, 0)
    if pad.max() <= border - 4:
        return image, quad
    pad = np.maximum(pad, max(int(np.rint(qsize * 0.3)), 1))
    left, top, right, bottom = (int(p) for p in pad)
    padded = _reflect_pad(image, top, bottom, left, right).astype(np.float32)
    h, w = padded.shape[:2]
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]
    mask = np.maximum(
        1.0 - np.minimum(xs / left, (w - 1 - xs) / right),
        1.0 - np.minimum(ys / top, (h - 1 - ys) / bottom),
    )[:, :, None]
    sigma = qsize * 0.02
    blurred = cv2.GaussianBlur(padded, (0, 0), sigmaX=sigma, sigmaY=sigma)
    padded += (blurred - padded) * np.clip(mask * 3.0 + 1.0, 0.0, 1.0)
    median = np.median(padded.reshape(-1, padded.shape[2]), axis=0)
    padded += (median - padded) * np.clip(mask, 0.0, 1.0)
    out = np.clip(np.rint(padded), 0, 255).astype(np.uint8)
    return out, quad + np.array([left, top], dtype=np.float64)


def _reflect_pad(image: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Mirror padding (edge pixel not repeated), any amount, even larger than the image."""
    import cv2

    height, width = image.shape[:2]
    if height > 1 and width > 1 and max(top, bottom) < height and max(left, right) < width:
        return cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_REFLECT_101)
    mode = "reflect" if height > 1 and width > 1 else "edge"
    return np.pad(image, ((top, bottom), (left, right), (0, 0)), mode=mode)


@dataclass(frozen=True)
class AlignedFace:
    """An aligned crop and the exact quad (frame coordinates) it was cut from."""

    image: np.ndarray
    """uint8 [size,size,3] RGB."""
    quad: np.ndarray
    """[4,2] float64, FFHQ corner order."""


def align_face(
    frame: np.ndarray, points: np.ndarray, rule: Rule = "ffhq", config: CropConfig = CropConfig()
) -> AlignedFace:
    """FFHQ-aligned crop of the face with landmarks `points` [68,2] in `frame` [H,W,3]."""
    quad = alignment_quad(points, rule)
    return AlignedFace(ffhq_crop(frame, quad, config), quad)


# ----------------------------------------------------------------------------- unaligned window


@dataclass(frozen=True)
class WindowConfig:
    """The unaligned crop window of a shot (one fixed square for all its frames)."""

    scale: float = 1.0
    """Window side / median aligned-quad side when the face stays still (1.0 = the scale of
    stylegan3-editing's unaligned crops, so faces there match the aligned renders in size)."""
    cover: float = 0.5
    """Fraction of the aligned quad's side that stays inside the window in every frame: when the
    face travels farther, the window grows to span the motion plus `cover` of a face."""
    upright: bool = False
    """True: window axes parallel to the frame. False: turned by the shot's mean roll of the
    face (as stylegan3-editing turns its crop by the first frame's roll)."""


def unaligned_window(
    aligned_quads: np.ndarray, config: WindowConfig = WindowConfig()
) -> np.ndarray:
    """One square quad [4,2] (frame coordinates) covering a shot's aligned quads [n,4,2].

    Centre: the middle of the range the aligned-quad centres travel (in window axes), so the
    face's motion is centred rather than frame 0's position. Side:
    max(scale·median side, motion span + cover·median side). Orientation: the circular mean of
    the quads' roll (or upright).
    """
    quads = np.asarray(aligned_quads, dtype=np.float64).reshape(-1, 4, 2)
    if len(quads) == 0:
        raise ValueError("a shot needs at least one aligned quad")
    tops = quads[:, 3] - quads[:, 0]
    sides = np.hypot(tops[:, 0], tops[:, 1])
    if config.upright:
        axis = np.array([1.0, 0.0])
    else:
        mean = (tops / sides[:, None]).mean(axis=0)
        norm = np.hypot(*mean)
        axis = mean / norm if norm > 1e-9 else np.array([1.0, 0.0])
    normal = np.array([-axis[1], axis[0]])
    centres = quads.mean(axis=1)
    along = np.stack([centres @ axis, centres @ normal], axis=1)  # centres in window axes
    lo, hi = along.min(axis=0), along.max(axis=0)
    median_side = float(np.median(sides))
    span = float((hi - lo).max())
    side = max(config.scale * median_side, span + config.cover * median_side)
    mid = (lo + hi) / 2
    centre = mid[0] * axis + mid[1] * normal
    return square_quad(centre, axis * side / 2, normal * side / 2)
