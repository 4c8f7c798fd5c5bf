"""Field-of-view expansion: render beyond the crop by shifting StyleGAN3's Fourier input.

The expanded canvas is (top + R + bottom) x (left + R + right) for an R-pixel generator. It is
split, per axis, into up to three segments (before, centre, after). Each needed pair of
segments is one *view*: a full R x R render whose input transform is the frame's transform
composed with a pure pixel shift of the output, so the view shows the canvas window it covers.
Only views whose segments are non-empty are rendered (1 to 9 per frame, in one batch).

Joins are feathered: per axis the centre's weight ramps from 0 to 1 over `band` pixels inside
its edge and the outer view takes the complement, so weights form a partition of unity. Away
from the bands the centre view is used alone, i.e. equals the plain render exactly. (The
stylegan3-editing anchor pastes hard strips, which leaves visible seams.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ganvid.errors import InputError
from ganvid.nn.sg3_transforms import user_matrix

#: The output moves by +d pixels along x when the user matrix translates by +d/R (see test).
_SHIFT_SIGN = 1.0


@dataclass(frozen=True)
class Expansion:
    """Pixels added on each side, at the generator's resolution."""

    left: int = 0
    right: int = 0
    top: int = 0
    bottom: int = 0

    def __post_init__(self) -> None:
        if min(self.left, self.right, self.top, self.bottom) < 0:
            raise InputError("FoV expansion amounts must be >= 0 pixels")

    @property
    def is_zero(self) -> bool:
        return not (self.left or self.right or self.top or self.bottom)

    def canvas(self, resolution: int) -> tuple[int, int]:
        """(height, width) of the expanded image."""
        return self.top + resolution + self.bottom, self.left + resolution + self.right


@dataclass(frozen=True)
class View:
    """One render: its window's top-left corner on the canvas and its segment per axis."""

    x0: int
    y0: int
    col: int  # -1 before, 0 centre, +1 after
    row: int


def default_band(resolution: int) -> int:
    return max(2, resolution // 32)


def _axis_segments(before: int, after: int, resolution: int) -> list[tuple[int, int]]:
    """[(segment, window start on the canvas)] for one axis."""
    segments = [(0, before)]
    if before:
        segments.insert(0, (-1, 0))
    if after:
        segments.append((1, before + after))
    return segments


def plan_views(expansion: Expansion, resolution: int, band: int) -> list[View]:
    """The views a frame needs (the centre first)."""
    for amount in (expansion.left, expansion.right, expansion.top, expansion.bottom):
        if amount and amount + band > resolution:
            raise InputError(
                f"FoV expansion of {amount} px is too large for a {resolution}-px generator "
                f"(at most {resolution - band} px per side with a {band}-px blend band)"
            )
    cols = _axis_segments(expansion.left, expansion.right, resolution)
    rows = _axis_segments(expansion.top, expansion.bottom, resolution)
    views = [View(x0, y0, c, r) for r, y0 in rows for c, x0 in cols]
    return sorted(views, key=lambda v: v.col != 0 or v.row != 0)


def _axis_weights(segment: int, before: int, after: int, resolution: int, band: int) -> np.ndarray:
    """Blend weight of a view along one axis, over its own window [R]."""
    ramp = (np.arange(band) + 0.5) / band  # never exactly 0 or 1 at a pixel centre
    centre = np.ones(resolution)
    if before:
        centre[:band] = ramp
    if after:
        centre[resolution - band :] = ramp[::-1]
    if segment == 0:
        return centre
    weights = np.zeros(resolution)
    if segment < 0:  # window [0, R) on the canvas; the centre starts at `before`
        weights[:before] = 1.0
        weights[before : before + band] = 1.0 - centre[:band]
    else:  # window starts at before + after; the centre ends at before + R
        end = resolution - after  # the centre's end, in this window's coordinates
        weights[end - band : end] = 1.0 - centre[resolution - band :]
        weights[end:] = 1.0
    return weights


def view_transforms(
    transforms: torch.Tensor, views: list[View], expansion: Expansion, resolution: int
) -> torch.Tensor:
    """Frame input transforms [B,3,3] -> [B*V,3,3] (frame-major) for the views."""
    shifts = []
    for view in views:
        dx = (expansion.left - view.x0) / resolution * _SHIFT_SIGN
        dy = (expansion.top - view.y0) / resolution * _SHIFT_SIGN
        shifts.append(np.linalg.inv(user_matrix(0.0, dx, dy)))
    shift = torch.from_numpy(np.stack(shifts).astype(np.float32)).to(transforms)
    return (transforms[:, None] @ shift[None]).reshape(-1, 3, 3)


def blend_views(
    images: torch.Tensor, views: list[View], expansion: Expansion, resolution: int, band: int
) -> torch.Tensor:
    """images [B,V,C,R,R] -> canvas [B,C,H',W'] with feathered joins."""
    batch, _, channels = images.shape[:3]
    height, width = expansion.canvas(resolution)
    canvas = images.new_zeros(batch, channels, height, width)
    for i, view in enumerate(views):
        wx = _axis_weights(view.col, expansion.left, expansion.right, resolution, band)
        wy = _axis_weights(view.row, expansion.top, expansion.bottom, resolution, band)
        weight = torch.from_numpy(np.outer(wy, wx).astype(np.float32)).to(images)
        window = canvas[..., view.y0 : view.y0 + resolution, view.x0 : view.x0 + resolution]
        window += images[:, i] * weight
    return canvas


def synthesize_fov(
    generator: torch.nn.Module,
    ws: torch.Tensor,
    transforms: torch.Tensor,
    expansion: Expansion,
    band: int | None = None,
    styles: dict[str, torch.Tensor] | None = None,
    force_fp32: bool = True,
) -> torch.Tensor:
    """ws [B,num_ws,w_dim], transforms [B,3,3] -> expanded images [B,C,H',W'] in about [-1,1].

    styles: optional (edited) StyleSpace {layer: [B,C]} for `generator.synthesis`; every view
    of a frame uses its frame's styles. force_fp32 as in `ganvid.pipeline.render.synthesize`.
    With zero expansion this is exactly `generator.synthesis(ws, transform=transforms, ...)`.
    """
    resolution = generator.img_resolution
    if expansion.is_zero:
        return generator.synthesis(ws, transform=transforms, styles=styles, force_fp32=force_fp32)
    band = default_band(resolution) if band is None else band
    views = plan_views(expansion, resolution, band)
    batch = ws.shape[0]
    all_ws = ws.repeat_interleave(len(views), dim=0)
    all_transforms = view_transforms(transforms, views, expansion, resolution)
    all_styles = None
    if styles is not None:
        all_styles = {k: v.repeat_interleave(len(views), dim=0) for k, v in styles.items()}
    images = generator.synthesis(
        all_ws, transform=all_transforms, styles=all_styles, force_fp32=force_fp32
    )
    images = images.reshape(batch, len(views), *images.shape[1:])
    return blend_views(images, views, expansion, resolution, band)
