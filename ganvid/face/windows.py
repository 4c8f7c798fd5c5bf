"""StyleGANEX crop windows: the frame region around the face that the encoder sees.

The official rule scales the frame by s = 64 / eye distance and
cuts the eye centre ±256 px at that scale (a 512x512 encoder input, so a 2048x2048 render), clipped
to the frame, each bound floored to a multiple of 8. Here, per shot, s = eye_px / d with d the
median distance between the eye centres (Euclidean, so head roll does not change it; detected
frames only); the encoder input is W_in x H_in = min(floor8(eye_px * window_eyes), floor8(frame
side * s)) for the whole clip (the smallest over its shots), so every frame batches with every
other and the output size is constant. A frame's window is W_in/s x H_in/s frame pixels centred
on its (smoothed) eye midpoint and shifted, never shrunk, to stay inside the frame; it is cut with
sub-pixel accuracy (area pre-filter when shrinking by 2x or more, then bilinear). Defaults
eye_px = 64, window_eyes = 8 are the official ±256 px at 64 px between the eyes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ganvid.errors import InputError
from ganvid.face.align import LEFT_EYE, RIGHT_EYE
from ganvid.face.track import shot_ranges

SIZE_MULTIPLE = 8
"""Encoder input sides are multiples of 8 (f is 1/8 of the input)."""


@dataclass(frozen=True)
class CropRule:
    """How big the crop around a face is (see the module docstring)."""

    eye_px: float = 64.0
    """Distance between the eye centres in the encoder input, px (64 as the models were run)."""
    window_eyes: float = 8.0
    """Largest window side, in eye distances (8: the official eye centre ±256 px at 64 px)."""

    def max_input(self) -> int:
        """Largest encoder input side: floor8(eye_px * window_eyes) (512 by default)."""
        side = int(math.floor(self.eye_px * self.window_eyes + 1e-6))
        return max(SIZE_MULTIPLE, side // SIZE_MULTIPLE * SIZE_MULTIPLE)


@dataclass
class CropWindows:
    """One crop window per frame, all cut to the same encoder input size."""

    boxes: np.ndarray
    """[N,4] (x0, y0, w, h) in continuous frame coordinates: pixel column j spans [j, j+1]."""
    scales: np.ndarray
    """[N] encoder-input pixels per frame pixel (constant within a shot)."""
    input_size: tuple[int, int]
    """(height, width) of every crop fed to the encoder, multiples of 8."""
    frame_size: tuple[int, int]
    """(width, height) of the frames."""
    active: np.ndarray
    """[N] bool: the face is in this frame (detected, or missed inside its track) and its shot
    has a detected face; else paste-back passes the frame."""

    def centres(self) -> np.ndarray:
        """[N,2] window centres (continuous frame coordinates)."""
        return self.boxes[:, :2] + self.boxes[:, 2:] / 2

    def to_json(self) -> dict[str, Any]:
        return {
            "input_size": list(self.input_size),
            "frame_size": list(self.frame_size),
            "boxes": np.round(self.boxes, 6).tolist(),
            "scales": self.scales.tolist(),
            "active": self.active.astype(bool).tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CropWindows:
        return cls(
            boxes=np.asarray(data["boxes"], dtype=np.float64).reshape(-1, 4),
            scales=np.asarray(data["scales"], dtype=np.float64),
            input_size=(int(data["input_size"][0]), int(data["input_size"][1])),
            frame_size=(int(data["frame_size"][0]), int(data["frame_size"][1])),
            active=np.asarray(data["active"], dtype=bool),
        )


def shot_segments(shot_ids: np.ndarray) -> list[tuple[int, int]]:
    """[(start, stop)) of each shot, in order, from one shot id per frame."""
    return shot_ranges(len(shot_ids), shot_ids)


def _floor8(value: float) -> int:
    return int(math.floor(value + 1e-6)) // SIZE_MULTIPLE * SIZE_MULTIPLE


def crop_windows(
    landmarks: np.ndarray,
    shot_ids: np.ndarray,
    detected: np.ndarray,
    frame_size: tuple[int, int],
    rule: CropRule = CropRule(),
    present: np.ndarray | None = None,
) -> CropWindows:
    """Crop windows that follow the face: landmarks [N,68,2] (smoothed, gap-filled, pixel-index
    frame coordinates), shot ids [N], detected [N] bool, frame (width, height), present [N]
    bool (the face is in the frame; None = every frame of a shot with the face)."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    shot_ids = np.asarray(shot_ids).reshape(-1)
    detected = np.asarray(detected, dtype=bool).reshape(-1)
    left, right = landmarks[:, LEFT_EYE].mean(axis=1), landmarks[:, RIGHT_EYE].mean(axis=1)
    distance = np.hypot(*(right - left).T)
    scales = np.empty(len(landmarks))
    active = np.zeros(len(landmarks), dtype=bool)
    for start, stop in shot_segments(shot_ids):
        found = detected[start:stop]
        use = found if found.any() else np.ones_like(found)
        eye_distance = float(np.median(distance[start:stop][use]))
        if not eye_distance > 0:
            raise InputError(f"frames {start}-{stop - 1}: the eyes coincide; cannot size the crop")
        scales[start:stop] = rule.eye_px / eye_distance
        active[start:stop] = found.any()
    if present is not None:
        active &= np.asarray(present, dtype=bool).reshape(-1)
    width, height = frame_size
    input_w = min(rule.max_input(), _floor8(width * scales.min()))
    input_h = min(rule.max_input(), _floor8(height * scales.min()))
    if input_w < SIZE_MULTIPLE or input_h < SIZE_MULTIPLE:
        raise InputError(
            f"the face is too large for the {width}x{height} frame to give a crop of at least "
            f"{SIZE_MULTIPLE} px at {rule.eye_px:g} px between the eyes"
        )
    sizes = np.minimum(np.stack([input_w / scales, input_h / scales], axis=1), [width, height])
    centres = (left + right) / 2 + 0.5  # pixel-index -> continuous coordinates
    corner = np.clip(centres - sizes / 2, 0.0, np.array([width, height]) - sizes)
    return CropWindows(
        boxes=np.concatenate([corner, sizes], axis=1),
        scales=scales,
        input_size=(input_h, input_w),
        frame_size=(int(width), int(height)),
        active=active,
    )


def cut_window(frame: np.ndarray, box: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """uint8 [H_in,W_in,3] crop of frame [H,W,3] over box (x0, y0, w, h), sub-pixel exact.

    Shrinking by r >= 2 first area-averages the region by floor(r) (no aliasing), then a bilinear
    warp maps the window exactly onto the output pixels.
    """
    import cv2

    in_h, in_w = input_size
    x0, y0, w, h = (float(v) for v in box)
    height, width = frame.shape[:2]
    rx0, ry0 = max(0, math.floor(x0) - 1), max(0, math.floor(y0) - 1)
    rx1, ry1 = min(width, math.ceil(x0 + w) + 1), min(height, math.ceil(y0 + h) + 1)
    region = frame[ry0:ry1, rx0:rx1]
    shrink = int(min(w / in_w, h / in_h))
    fx = fy = 1.0
    if shrink >= 2:
        small = (max(1, round(region.shape[1] / shrink)), max(1, round(region.shape[0] / shrink)))
        fx, fy = small[0] / region.shape[1], small[1] / region.shape[0]
        region = cv2.resize(region, small, interpolation=cv2.INTER_AREA)
    # output pixel-index (j, i) -> region pixel-index, through continuous coordinates
    step_x, step_y = w * fx / in_w, h * fy / in_h
    matrix = np.array(
        [
            [step_x, 0.0, (x0 - rx0) * fx + 0.5 * step_x - 0.5],
            [0.0, step_y, (y0 - ry0) * fy + 0.5 * step_y - 0.5],
        ]
    )
    return cv2.warpAffine(
        np.ascontiguousarray(region),
        matrix,
        (in_w, in_h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT_101,
    )
