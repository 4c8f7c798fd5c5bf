"""Paste a rendered face crop back into its source frame, changing only the face and hair.

The crop was cut from the frame through an affine quad (`ganvid.face.align`), so the render is
warped back through the same matrix. It is blended with a soft mask: the convex hull of the
jaw line and the eyebrows, grown up to the hairline, dilated and feathered, limited to the
crop's footprint with feathered edges, and smoothed over time. In the seam band the render's
mean colour is matched to the frame's, so the join does not show. Pixels where the mask is
zero are the input's, bit for bit; frames whose face was not detected pass through unchanged.

With `mask="parsing"` the face-and-hair region comes from a BiSeNet face-parsing network
(`ganvid.nn.face_parsing`, weights `styleganex-faceparsing`) instead of the landmark hull: it
follows the real hairline, ears and glasses, and leaves neck, clothes and background alone.
The network parses both the render and the source crop (one batch of two) and the union of the
two masks is used: parsing only the render would leave the original face showing where an edit
shrinks it (a younger face, shorter hair); parsing only the source would cut off what an edit
adds (longer hair, a wider face). The union is dilated and feathered in crop space with the
hull mask's `dilate` and `feather` (fractions of the landmark face size), then warped into the
frame like the render.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from ganvid.errors import InputError
from ganvid.face.align import quad_to_frame_matrix

if TYPE_CHECKING:
    from ganvid.nn.face_parsing import FaceParser

MaskMode = Literal["hull", "full", "parsing"]


MASK_CHOICES = ("hull", "parsing")
"""The masks a user can pick (`--mask`); "full" is for checks only."""


@dataclass(frozen=True)
class PasteConfig:
    mask: MaskMode = "hull"
    """hull: face + hair from landmarks; parsing: face + hair from the face-parsing network
    (needs weights `styleganex-faceparsing`); full: the whole crop footprint (for checks)."""
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


def paste_config(mask: str = "hull") -> PasteConfig:
    """The PasteConfig for a `--mask` choice, checked before any work is done: InputError for
    an unknown choice, WeightsError (one line naming the download) when parsing's weights are
    missing."""
    if mask not in MASK_CHOICES:
        raise InputError(f"--mask {mask!r}: use {' or '.join(MASK_CHOICES)}")
    if mask == "parsing":
        from ganvid.nn.face_parsing import WEIGHTS_NAME
        from ganvid.weights import resolve

        resolve(WEIGHTS_NAME)
    return PasteConfig(mask=mask)


def _hull_points(landmarks: np.ndarray, hairline: float) -> np.ndarray:
    """Jaw (0-16), brows (17-26) and the brows moved up to the hairline: [N,2]."""
    jaw, brows = landmarks[0:17], landmarks[17:27]
    chin = landmarks[8]
    up = brows.mean(axis=0) - chin
    height = np.linalg.norm(up)
    up = up / max(height, 1e-6)
    return np.concatenate([jaw, brows, brows + up * hairline * height])


def face_mask(shape: tuple[int, int], landmarks: np.ndarray, config: PasteConfig) -> np.ndarray:
    """Soft mask float32 [H,W] in [0,1] of the face and hair region in frame coordinates.

    The hull is grown geometrically (the convex hull of the points moved around a circle of
    the dilation radius: the exact dilation of a convex region, up to the circle's sampling),
    and, being smooth at the scale of the feather, filled and blurred on a grid up to sigma/4
    times coarser, then resized back: the cost follows neither the face's size nor the frame's.
    """
    import cv2

    points = _hull_points(np.asarray(landmarks, dtype=np.float64), config.hairline)
    size = float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))
    grow = config.dilate * size
    if grow > 0:
        angles = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        ring = grow * np.stack([np.cos(angles), np.sin(angles)], axis=1)
        points = (points[:, None, :] + ring[None]).reshape(-1, 2)
    sigma = config.feather * size
    step = max(1, int(sigma // 4))
    height, width = shape
    coarse = (-(-height // step), -(-width // step))
    # coarse pixel j is the centre of fine pixels j*step .. j*step+step-1
    hull = cv2.convexHull(np.round((points - (step - 1) / 2) / step * 16).astype(np.int32))
    mask = np.zeros(coarse, np.float32)
    cv2.fillConvexPoly(mask, hull, 1.0, lineType=cv2.LINE_AA, shift=4)
    if sigma / step > 0.3:
        mask = cv2.GaussianBlur(mask, (0, 0), sigma / step)
    if step > 1:
        size_up = (coarse[1] * step, coarse[0] * step)
        mask = cv2.resize(mask, size_up, interpolation=cv2.INTER_LINEAR)[:height, :width]
    return np.ascontiguousarray(mask)


def _face_size(landmarks: np.ndarray, hairline: float) -> float:
    """Diagonal of the face-and-hair hull's bounding box, in the landmarks' units."""
    points = _hull_points(np.asarray(landmarks, dtype=np.float64), hairline)
    return float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))


def parsing_mask(
    parser: FaceParser,
    frame: np.ndarray,
    render: np.ndarray,
    matrix: np.ndarray,
    landmarks: np.ndarray,
    config: PasteConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Face-and-hair mask on the parser's square grid over the crop, and the grid -> frame
    matrix: (float32 [N,N] in [0,1], [3,3]), N = parser.input_size.

    matrix: crop -> frame ([3,3], `quad_to_frame_matrix` for the render's side). The mask is the
    union of the parses of the render and of the source crop cut from the frame, dilated and
    feathered by config.dilate / config.feather times the face size.
    """
    import cv2

    n, side = parser.input_size, render.shape[0]
    step = side / n  # grid pixel j is centred on crop coordinate j * step + (step - 1) / 2
    grid_to_crop = np.array([[step, 0, (step - 1) / 2], [0, step, (step - 1) / 2], [0, 0, 1]])
    grid_to_frame = matrix @ grid_to_crop
    render_n = render if side == n else cv2.resize(render, (n, n), interpolation=cv2.INTER_AREA)
    source_n = cv2.warpAffine(
        frame,
        grid_to_frame[:2],
        (n, n),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REFLECT_101,
    )
    masks = parser.masks(np.stack([render_n, source_n]))
    mask = masks.max(dim=0).values.float().cpu().numpy()
    frame_px_per_grid = float(np.sqrt(abs(np.linalg.det(grid_to_frame[:2, :2]))))
    size = _face_size(landmarks, config.hairline) / max(frame_px_per_grid, 1e-6)
    radius = int(round(config.dilate * size))
    if radius > 0:
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        mask = cv2.dilate(mask, disc)
    sigma = config.feather * size
    if sigma > 0.3:
        mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    return np.ascontiguousarray(mask, dtype=np.float32), grid_to_frame


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


Box = tuple[int, int, int, int]
"""(x0, y0, x1, y1): a region of the frame, pixel-index columns x0..x1-1 and rows y0..y1-1."""


def _crop_box(matrix: np.ndarray, side: int, shape: tuple[int, int], margin: int = 2) -> Box | None:
    """The frame region the crop covers (its corners, plus `margin` px), clipped to the frame;
    None when the crop lies outside the frame."""
    edges = np.array([[-0.5, -0.5, 1.0], [side - 0.5, -0.5, 1.0], [-0.5, side - 0.5, 1.0],
                      [side - 0.5, side - 0.5, 1.0]])  # fmt: skip
    corners = edges @ matrix[:2].T
    x0, y0 = np.floor(corners.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int) + margin + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, shape[1]), min(y1, shape[0])
    return (int(x0), int(y0), int(x1), int(y1)) if x0 < x1 and y0 < y1 else None


def _union(a: Box, b: Box) -> Box:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


@dataclass
class _RegionMask:
    """A mask over a region `box` of the frame (zero elsewhere)."""

    box: Box
    mask: np.ndarray

    def within(self, box: Box) -> np.ndarray:
        """The mask over `box` (which contains self.box)."""
        x0, y0, x1, y1 = self.box
        out = np.zeros((box[3] - box[1], box[2] - box[0]), np.float32)
        out[y0 - box[1] : y1 - box[1], x0 - box[0] : x1 - box[0]] = self.mask
        return out


class PasteBack:
    """Pastes the renders of one clip, frame after frame (keeps only the previous mask).

    Only the frame region under the crop (and the previous frame's mask) is computed, so the
    cost follows the face's size, not the frame's.

    With config.mask == "parsing", `parser` is the face-parsing network to use; by default it
    is loaded here from the weights `styleganex-faceparsing` (on the GPU when there is one), so
    missing weights stop the job before its first frame (WeightsError naming the download).
    """

    def __init__(self, config: PasteConfig = PasteConfig(), parser: FaceParser | None = None):
        self.config = config
        self.parser = parser
        if config.mask == "parsing" and parser is None:
            self.parser = _default_parser()
        self._previous: _RegionMask | None = None
        self._last: _RegionMask | None = None
        self._shape: tuple[int, int] = (0, 0)

    @property
    def last_mask(self) -> np.ndarray | None:
        """The blend mask [H,W] of the last pasted frame (0 = input pixel kept exactly)."""
        if self._last is None:
            return None
        return self._last.within((0, 0, self._shape[1], self._shape[0]))

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

        self._shape = frame.shape[:2]
        self._last = None
        side = render.shape[0]
        matrix = quad_to_frame_matrix(quad, side)
        box = None if landmarks is None else _crop_box(matrix, side, self._shape)
        if box is None:
            self.reset()  # the next face starts a fresh mask
            return frame
        previous = self._previous if self.config.temporal > 0 else None
        if previous is not None:
            box = _union(box, previous.box)
        x0, y0, x1, y1 = box
        shape = (y1 - y0, x1 - x0)
        local = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0], [0.0, 0.0, 1.0]]) @ matrix
        warped = cv2.warpAffine(
            render, local[:2], (shape[1], shape[0]), flags=cv2.INTER_LINEAR
        ).astype(np.float32)
        mask = _footprint(shape, local, side, self.config.edge_feather_px)
        if self.config.mask == "hull":
            offset = np.array([x0, y0], dtype=np.float64)
            mask = mask * face_mask(shape, np.asarray(landmarks) - offset, self.config)
        elif self.config.mask == "parsing":
            grid, grid_to_frame = parsing_mask(
                self.parser, frame, render, matrix, landmarks, self.config
            )
            to_region = grid_to_frame[:2] - np.array([[0, 0, x0], [0, 0, y0]])
            region_mask = cv2.warpAffine(
                grid, to_region, (shape[1], shape[0]), flags=cv2.INTER_LINEAR
            )
            mask = mask * region_mask
        if previous is not None:
            t = self.config.temporal
            mask = (1 - t) * mask + t * previous.within(box)
        self._previous = _RegionMask(box, mask)
        mask = _quantise(mask)
        self._last = _RegionMask(box, mask)
        region = frame[y0:y1, x0:x1]
        original = region.astype(np.float32)
        if self.config.colour_match and self.config.mask != "full":
            warped = _match_colour(warped, original, mask)
        blended = original + mask[..., None] * (warped - original)
        pasted = np.clip(np.round(blended), 0, 255).astype(np.uint8)
        untouched = mask == 0
        pasted[untouched] = region[untouched]
        out = frame.copy()
        out[y0:y1, x0:x1] = pasted
        return out


def _default_parser() -> FaceParser:
    """The published face-parsing network, on the GPU when there is one."""
    import torch

    from ganvid.nn.face_parsing import WEIGHTS_NAME, FaceParser
    from ganvid.weights import resolve

    if not torch.cuda.is_available():
        from ganvid.ui import warn

        warn("--mask parsing runs the face-parsing network on the CPU: seconds per frame")
    return FaceParser.load(resolve(WEIGHTS_NAME), "cuda" if torch.cuda.is_available() else "cpu")
