"""Paste a rendered face crop back into its source frame, changing only the face and hair.

The crop was cut from the frame through an affine quad (`ganvid.face.align`), so the render is
warped back through the same matrix. It is blended with a soft mask: the convex hull of the
jaw line and the eyebrows, grown up to the hairline, dilated and feathered, limited to the
crop's footprint with feathered edges, and smoothed over time. In the seam band the render's
mean colour is matched to the frame's, so the join does not show. Pixels where the mask is
zero are the input's, bit for bit; frames whose face was not detected pass through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ganvid.face.align import quad_to_frame_matrix

MaskMode = Literal["hull", "full"]


@dataclass(frozen=True)
class PasteConfig:
    mask: MaskMode = "hull"
    """hull: face + hair from landmarks; full: the whole crop footprint (for checks)."""
    hairline: float = 0.55
    """How far above the brows the mask reaches, in units of the brow-to-chin distance."""
    dilate: float = 0.06
    """Extra margin around the hull, as a fraction of the face size."""
    feather: float = 0.07
    """Gaussian feather of the mask edge (sigma), as a fraction of the face size."""
    edge_feather_px: float = 0.04
    """Feather of the crop's own border, as a fraction of the crop side."""
    colour_match: bool = True
    temporal: float = 0.4
    """Weight of the previous frame's mask (0 = no temporal smoothing)."""


def _hull_points(landmarks: np.ndarray, hairline: float) -> np.ndarray:
    """Jaw (0-16), brows (17-26) and the brows moved up to the hairline: [N,2]."""
    jaw, brows = landmarks[0:17], landmarks[17:27]
    chin = landmarks[8]
    up = brows.mean(axis=0) - chin
    height = np.linalg.norm(up)
    up = up / max(height, 1e-6)
    return np.concatenate([jaw, brows, brows + up * hairline * height])


def face_mask(shape: tuple[int, int], landmarks: np.ndarray, config: PasteConfig) -> np.ndarray:
    """Soft mask float32 [H,W] in [0,1] of the face and hair region in frame coordinates."""
    import cv2

    points = _hull_points(np.asarray(landmarks, dtype=np.float64), config.hairline)
    size = float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))
    hull = cv2.convexHull(np.round(points * 16).astype(np.int32))
    mask = np.zeros(shape, np.float32)
    cv2.fillConvexPoly(mask, hull, 1.0, lineType=cv2.LINE_AA, shift=4)
    grow = int(round(config.dilate * size))
    if grow > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        mask = cv2.dilate(mask, kernel)
    sigma = config.feather * size
    if sigma > 0.3:
        mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    return mask


def _footprint(shape: tuple[int, int], matrix: np.ndarray, side: int, feather: float) -> np.ndarray:
    """Where the crop lands in the frame, with feathered edges: float32 [H,W]."""
    import cv2

    ramp = max(1, int(round(feather * side)))
    axis = np.minimum(np.arange(side) + 0.5, side - np.arange(side) - 0.5) / ramp
    square = np.clip(np.minimum.outer(axis, axis), 0, 1).astype(np.float32)
    return cv2.warpAffine(square, matrix[:2], (shape[1], shape[0]), flags=cv2.INTER_LINEAR)


def _quantise(mask: np.ndarray) -> np.ndarray:
    """Exact 0 and 1 where the blend would not change an 8-bit pixel anyway."""
    mask = mask.copy()
    mask[mask < 0.5 / 255] = 0.0
    mask[mask > 1 - 0.5 / 255] = 1.0
    return mask


def _match_colour(render: np.ndarray, frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shift the render's mean colour to the frame's over the seam band (0.1 < mask < 0.9)."""
    band = (mask > 0.1) & (mask < 0.9)
    if band.sum() < 16:
        return render
    offset = frame[band].mean(axis=0) - render[band].mean(axis=0)
    return render + np.clip(offset, -40.0, 40.0)


class PasteBack:
    """Pastes the renders of one clip, frame after frame (keeps only the previous mask)."""

    def __init__(self, config: PasteConfig = PasteConfig()) -> None:
        self.config = config
        self._previous: np.ndarray | None = None
        self.last_mask: np.ndarray | None = None
        """The blend mask [H,W] of the last pasted frame (0 = input pixel kept exactly)."""

    def reset(self) -> None:
        """Forget the previous mask (at a cut, or after frames without a face), so a mask never
        leaks from one shot into the next."""
        self._previous = None

    def __call__(
        self,
        frame: np.ndarray,
        render: np.ndarray,
        quad: np.ndarray,
        landmarks: np.ndarray | None,
    ) -> np.ndarray:
        """frame uint8 [H,W,3], render uint8 [R,R,3] of the crop `quad` [4,2] (frame coords),
        landmarks [68,2] or None (no face: the frame is returned unchanged) -> uint8 [H,W,3]."""
        import cv2

        if landmarks is None:
            self.reset()  # the next face starts a fresh mask
            return frame
        shape = frame.shape[:2]
        side = render.shape[0]
        matrix = quad_to_frame_matrix(quad, side)
        warped = cv2.warpAffine(
            render, matrix[:2], (shape[1], shape[0]), flags=cv2.INTER_LINEAR
        ).astype(np.float32)
        mask = _footprint(shape, matrix, side, self.config.edge_feather_px)
        if self.config.mask == "hull":
            mask = mask * face_mask(shape, landmarks, self.config)
        if self._previous is not None and self.config.temporal > 0:
            mask = (1 - self.config.temporal) * mask + self.config.temporal * self._previous
        self._previous = mask
        mask = self.last_mask = _quantise(mask)
        original = frame.astype(np.float32)
        if self.config.colour_match and self.config.mask == "hull":
            warped = _match_colour(warped, original, mask)
        blended = original + mask[..., None] * (warped - original)
        out = np.clip(np.round(blended), 0, 255).astype(np.uint8)
        untouched = mask == 0
        out[untouched] = frame[untouched]
        return out
