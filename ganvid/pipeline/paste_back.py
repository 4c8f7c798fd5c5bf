"""Paste a rendered face crop back into its source frame, changing only the face and hair.

One paste-back for every job. Two placements: a square render of an affine crop quad
(`ganvid.face.align`; invert, edit, expand-fov) is warped back through the same matrix; a
render of an axis-aligned window of any aspect (`ganvid.face.windows`; the StyleGANEX jobs) is
resized to the window's size (area filter when shrinking) and placed with its sub-pixel offset.
Either is blended with one soft mask (`MaskMode`): "hull", the convex hull of the jaw line and
the eyebrows grown up to the hairline, dilated and feathered; "parsing" (below); or "full",
the whole crop. The mask is limited to the crop's footprint with feathered edges and smoothed
over time within a shot. In the seam band the render's mean colour is matched to the frame's,
so the join does not show (not for "full", nor for a restyled render: `paste_config`). Pixels
where the mask is zero are the input's, bit for bit; frames without a face pass through.

With `mask="parsing"` the face-and-hair region comes from a BiSeNet face-parsing network
(`ganvid.nn.face_parsing`, weights `styleganex-faceparsing`) instead of the landmark hull: it
follows the real hairline, ears and glasses, and leaves neck, clothes and background alone.
The network parses both the render and the source crop (one batch of two) and the union of the
two masks is used: parsing only the render would leave the original face showing where an edit
shrinks it (a younger face, shorter hair); parsing only the source would cut off what an edit
adds (longer hair, a wider face). The union is dilated and feathered in crop space with the
hull mask's `dilate` and `feather` (fractions of the landmark face size), then warped into the
frame like the render.

About 500 lines because both placements share every mask, the colour match and the blend, which
is the point of having one paste-back.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ganvid.errors import InputError
from ganvid.face.align import quad_to_frame_matrix

if TYPE_CHECKING:
    from ganvid.nn.face_parsing import FaceParser

MaskMode = Literal["hull", "full", "parsing"]


MASK_CHOICES = ("hull", "parsing")
"""The masks a user can pick (`--mask`); "full" is for checks only."""

RESTYLE_MASK_CHOICES = ("full", "hull", "parsing")
"""The masks of a render that restyles its whole crop on purpose (`ganvid toonify --mask`):
"full" (the whole crop, the default there) besides face and hair."""


@dataclass(frozen=True)
class PasteConfig:
    mask: MaskMode = "hull"
    """hull: face + hair from landmarks; parsing: face + hair from the face-parsing network
    (needs weights `styleganex-faceparsing`); full: the whole crop footprint."""
    hairline: float = 0.55
    """How far above the brows the mask reaches, in units of the brow-to-chin distance."""
    dilate: float = 0.06
    """Extra margin around the hull, as a fraction of the face size."""
    feather: float = 0.07
    """Gaussian feather of the mask edge (sigma), as a fraction of the face size."""
    edge_feather_px: float = 0.04
    """Feather of the crop's own border, as a fraction of the crop side (of a window's shorter
    side)."""
    colour_match: bool = True
    """Shift the render's mean colour to the frame's in the seam band (never with "full")."""
    temporal: float = 0.4
    """Weight of the previous frame's mask (0 = no temporal smoothing)."""


def require_mask(mask: str, choices: tuple[str, ...] = MASK_CHOICES) -> None:
    """Check a `--mask` choice before any work is done: InputError for an unknown choice,
    WeightsError (one line naming the download) when parsing's weights are missing."""
    if mask not in choices:
        raise InputError(f"--mask {mask!r}: use {', '.join(choices[:-1])} or {choices[-1]}")
    if mask == "parsing":
        from ganvid.nn.face_parsing import WEIGHTS_NAME
        from ganvid.weights import resolve

        resolve(WEIGHTS_NAME)


def paste_config(mask: str = "hull", restyle: bool = False, **fields: Any) -> PasteConfig:
    """The PasteConfig for a `--mask` choice, checked first (`require_mask`).

    restyle: the render restyles its whole crop on purpose (a toon), so "full" may be chosen,
    the colour is never matched (matching the render's mean to the source's in the seam would
    pull the whole style back toward the source's colours), and "full" is not smoothed over
    time (its footprint is the crop's, which follows the smoothed face track already). Edits
    keep the defaults: colour matched in the seam, mask smoothed over time.
    fields: other PasteConfig fields (e.g. edge_feather_px).
    """
    require_mask(mask, RESTYLE_MASK_CHOICES if restyle else MASK_CHOICES)
    if restyle:
        fields = {"colour_match": False, **({"temporal": 0.0} if mask == "full" else {}), **fields}
    return PasteConfig(mask=mask, **fields)


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
    """Face-and-hair mask on the parser's square grid over the render, and the grid -> frame
    matrix: (float32 [N,N] in [0,1], [3,3]), N = parser.input_size.

    matrix: render pixel -> frame ([3,3]; `quad_to_frame_matrix` for a square crop). A render
    that is not square is scaled (area filter) to fit the grid along its longer side and
    centred on it, the rest of the grid reflected; the source under the whole grid is cut from
    the frame. The mask is the union of the parses of the render and of that source, dilated
    and feathered by config.dilate / config.feather times the face size.
    """
    import cv2

    n = parser.input_size
    height, width = render.shape[:2]
    side = max(height, width)
    fit_w, fit_h = max(1, round(width * n / side)), max(1, round(height * n / side))
    left, top = (n - fit_w) // 2, (n - fit_h) // 2
    sx, sy = width / fit_w, height / fit_h
    # grid pixel j is centred on render coordinate (j - left) * sx + (sx - 1) / 2 (same for y)
    grid_to_crop = np.array(
        [[sx, 0, (sx - 1) / 2 - left * sx], [0, sy, (sy - 1) / 2 - top * sy], [0, 0, 1]]
    )
    grid_to_frame = matrix @ grid_to_crop
    render_n = render
    if (height, width) != (fit_h, fit_w):
        render_n = cv2.resize(render, (fit_w, fit_h), interpolation=cv2.INTER_AREA)
    if (fit_h, fit_w) != (n, n):
        render_n = cv2.copyMakeBorder(
            render_n, top, n - fit_h - top, left, n - fit_w - left, cv2.BORDER_REFLECT_101
        )
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


def _edge_ramp(
    lo: int, hi: int, start: float, length: float, limit: int, ramp: float
) -> np.ndarray:
    """Per pixel lo..hi-1: 0 outside [start, start+length], rising to 1 over `ramp` px inside;
    an edge lying on the frame border (0 or `limit`) is not feathered."""
    centres = np.arange(lo, hi, dtype=np.float64) + 0.5
    before = centres - start if start > 1e-6 else np.full_like(centres, np.inf)
    end = start + length
    after = end - centres if end < limit - 1e-6 else np.full_like(centres, np.inf)
    return np.clip(np.minimum(before, after) / max(ramp, 1e-6), 0.0, 1.0)


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


def _shift(box: Box) -> np.ndarray:
    """[3,3] frame -> region coordinates of `box`."""
    return np.array([[1.0, 0.0, -box[0]], [0.0, 1.0, -box[1]], [0.0, 0.0, 1.0]])


@dataclass
class _Placement:
    """How one render lands in the frame: `image` (the render, or the render resized for a
    box) warped through `to_frame` ([3,3] image pixel -> frame) with `border`, over the frame
    region `box`; `render_to_frame` maps the render's own pixels (the parsing grid's base);
    `footprint(region)` is the soft [h,w] area it covers in a region of the frame."""

    image: np.ndarray
    to_frame: np.ndarray
    render_to_frame: np.ndarray
    box: Box | None
    border: int
    footprint: Callable[[Box], np.ndarray]


def _quad_placement(
    render: np.ndarray, quad: np.ndarray, shape: tuple[int, int], config: PasteConfig
) -> _Placement:
    """A square render of the affine crop `quad` [4,2]: warped through the alignment matrix,
    its border feathered over config.edge_feather_px of its side (also along the frame's
    border: the crop may reach beyond it)."""
    import cv2

    side = render.shape[0]
    matrix = quad_to_frame_matrix(quad, side)

    def footprint(region: Box) -> np.ndarray:
        size = (region[3] - region[1], region[2] - region[0])
        return _footprint(size, _shift(region) @ matrix, side, config.edge_feather_px)

    box = _crop_box(matrix, side, shape)
    return _Placement(render, matrix, matrix, box, cv2.BORDER_CONSTANT, footprint)


def _box_placement(
    render: np.ndarray, window: np.ndarray, shape: tuple[int, int], config: PasteConfig
) -> _Placement:
    """A render [R_h,R_w,3] of the axis-aligned window (x0, y0, w, h) (frame px, sub-pixel):
    first resized to about the window's size (area filter when shrinking), then placed with the
    window's sub-pixel offset; its edges feathered over config.edge_feather_px of the window's
    shorter side, except an edge lying on the frame's border (the window is kept inside the
    frame: feathering there would show the source along the border)."""
    import cv2

    height, width = shape
    x0, y0, w, h = (float(v) for v in window)
    size = (max(1, round(w)), max(1, round(h)))
    shrinking = size[0] < render.shape[1]
    resized = cv2.resize(
        render, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    )

    def pixel_to_frame(scale_x: float, scale_y: float) -> np.ndarray:
        """[3,3] for pixels of scale (scale_x, scale_y) frame px tiling the window."""
        return np.array(
            [[scale_x, 0.0, x0 + 0.5 * scale_x - 0.5], [0.0, scale_y, y0 + 0.5 * scale_y - 0.5],
             [0.0, 0.0, 1.0]]
        )  # fmt: skip

    def footprint(region: Box) -> np.ndarray:
        ramp = config.edge_feather_px * min(w, h)
        rows = _edge_ramp(region[1], region[3], y0, h, height, ramp)
        columns = _edge_ramp(region[0], region[2], x0, w, width, ramp)
        return np.outer(rows, columns).astype(np.float32)

    box = (max(0, math.floor(x0)), max(0, math.floor(y0)))
    box += (min(width, math.ceil(x0 + w)), min(height, math.ceil(y0 + h)))
    return _Placement(
        resized,
        pixel_to_frame(w / size[0], h / size[1]),
        pixel_to_frame(w / render.shape[1], h / render.shape[0]),
        box if box[0] < box[2] and box[1] < box[3] else None,
        cv2.BORDER_REPLICATE,
        footprint,
    )


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

    Two placements share the masks, the temporal smoothing, the colour match and the blend:
    `__call__` (a square render of an affine crop quad: invert, edit, expand-fov) and `window`
    (a render of an axis-aligned window, any aspect: the StyleGANEX jobs).

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
        self._shot: int | None = None

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
        self._shot = None

    def __call__(
        self,
        frame: np.ndarray,
        render: np.ndarray,
        quad: np.ndarray,
        landmarks: np.ndarray | None,
    ) -> np.ndarray:
        """frame uint8 [H,W,3], render uint8 [R,R,3] of the crop `quad` [4,2] (frame coords),
        landmarks [68,2] or None (no face: the frame is returned unchanged) -> uint8 [H,W,3]."""
        placement = _quad_placement(render, quad, frame.shape[:2], self.config)
        return self._paste(placement, frame, render, landmarks)

    def window(
        self,
        frame: np.ndarray,
        render: np.ndarray,
        window: np.ndarray,
        landmarks: np.ndarray | None,
        shot: int | None = None,
    ) -> np.ndarray:
        """frame uint8 [H,W,3], render uint8 [R_h,R_w,3] (any size) of the window (x0, y0, w, h)
        in frame px, landmarks [68,2] or None (no face: the frame is returned unchanged), the
        frame's shot id (a change starts a fresh temporal mask; None: one shot) -> uint8
        [H,W,3]."""
        if shot != self._shot:
            self.reset()
            self._shot = shot
        placement = _box_placement(render, window, frame.shape[:2], self.config)
        return self._paste(placement, frame, render, landmarks)

    def _paste(
        self,
        placement: _Placement,
        frame: np.ndarray,
        render: np.ndarray,
        landmarks: np.ndarray | None,
    ) -> np.ndarray:
        """Blend `render`, placed by `placement`, into `frame` (see `__call__`)."""
        import cv2

        self._shape = frame.shape[:2]
        self._last = None
        box = None if landmarks is None else placement.box
        if box is None:
            self.reset()  # the next face starts a fresh mask
            return frame
        previous = self._previous if self.config.temporal > 0 else None
        if previous is not None:
            box = _union(box, previous.box)
        x0, y0, x1, y1 = box
        shape = (y1 - y0, x1 - x0)
        warped = cv2.warpAffine(
            placement.image,
            (_shift(box) @ placement.to_frame)[:2],
            (shape[1], shape[0]),
            flags=cv2.INTER_LINEAR,
            borderMode=placement.border,
        ).astype(np.float32)
        footprint = mask = placement.footprint(box)
        if self.config.mask == "hull":
            offset = np.array([x0, y0], dtype=np.float64)
            mask = mask * face_mask(shape, np.asarray(landmarks) - offset, self.config)
        elif self.config.mask == "parsing":
            grid, grid_to_frame = parsing_mask(
                self.parser, frame, render, placement.render_to_frame, landmarks, self.config
            )
            region_mask = cv2.warpAffine(
                grid, (_shift(box) @ grid_to_frame)[:2], (shape[1], shape[0]),
                flags=cv2.INTER_LINEAR,
            )  # fmt: skip
            mask = mask * region_mask
        if previous is not None:
            t = self.config.temporal
            blended = (1 - t) * mask + t * previous.within(box)
            # the last mask never reaches past the crop: there is no render to blend there
            mask = np.where(footprint > 0, blended, np.float32(0))
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
