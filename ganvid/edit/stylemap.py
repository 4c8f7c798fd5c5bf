"""StyleMapGAN latent maths: blending stylemaps and layer codes under masks, as the official
scripts (naver-ai/StyleMapGAN generate.py, demo.py, semantic_manipulation.py) do it.

Shapes: a stylemap is [N, C, S, S] (64 x 8 x 8 at 256 px); layer codes are the list the
generator's resizer makes from it, one per modulated layer, of sides S, S, 2S, 2S, ..., size,
size. Masks are image-sized [N, 1, size, size]. Every blend is a hard per-position select,
the same for all channels; what differs between the variants is how an image mask becomes a
mask over a code's cells:

    max rule      (CelebA-HQ 'w_plus', AFHQ 'w'): signed masks (+1 inside the part, -1 outside)
                  of the source and the reference are SUMMED (values -2, 0, 2: the union), then
                  max-pooled with kernel = stride = size / H; a cell takes the reference's code
                  where the pooled value is > -1, i.e. where any pixel of it is in the union.
    average rule  (web demo): a binary mask (1 = region) is average-pooled by size / H and a
                  cell is selected where the mean is > 0.5 (strictly: half coverage is not
                  enough). The selection can be shifted by whole cells (the pixel shift divided
                  by size / H, truncated toward zero); cells moved off the map are dropped.

This module knows nothing of networks or images on disk: it takes and returns tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: Face parts by name -> the face-parsing (CelebAMask-HQ) classes they cover, the groups the
#: official CelebA-HQ local editing uses (its label numbers: nose 2; eye 3-5; eyebrow 6, 7;
#: lip 10-12; hair 13, 14; ear 8, 9, 15; neck 16, 17; skin 1; cloth 18; background 0).
PARTS: dict[str, tuple[str, ...]] = {
    "hair": ("hair", "hat"),
    "nose": ("nose",),
    "eyes": ("l_eye", "r_eye", "eye_g"),
    "eyebrows": ("l_brow", "r_brow"),
    "lips": ("mouth", "u_lip", "l_lip"),
    "ears": ("l_ear", "r_ear", "ear_r"),
    "neck": ("neck", "neck_l"),
    "skin": ("skin",),
    "cloth": ("cloth",),
    "background": ("background",),
}

Codes = list[torch.Tensor]


# ----------------------------------------------------------------------------- mask rules


def signed_mask(binary: torch.Tensor) -> torch.Tensor:
    """A {0, 1} (or bool) mask -> +1 inside, -1 outside (float32)."""
    return binary.to(torch.float32) * 2.0 - 1.0


def union_mask(source: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """The official CelebA-HQ mask: signed(source) + signed(reference), values -2 / 0 / +2
    (> -1 exactly on the union of the part in both images). Inputs: {0, 1} masks."""
    return signed_mask(source) + signed_mask(reference)


def _ratio(mask: torch.Tensor, resolution: int) -> int:
    size = mask.shape[-1]
    if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[-2] != size:
        raise ValueError(f"masks must be [N, 1, size, size], got {list(mask.shape)}")
    if resolution < 1 or size % resolution:
        raise ValueError(f"a {size} px mask does not pool to {resolution} cells")
    return size // resolution


def max_pool_select(mask: torch.Tensor, resolution: int) -> torch.Tensor:
    """The max rule: signed / union mask [N, 1, size, size] -> bool cells [N, 1, r, r], True
    where the max over the cell is > -1 (any pixel in the region)."""
    ratio = _ratio(mask, resolution)
    return F.max_pool2d(mask.float(), ratio, ratio) > -1.0


def average_pool_select(mask: torch.Tensor, resolution: int) -> torch.Tensor:
    """The demo's rule: binary mask [N, 1, size, size] -> bool cells [N, 1, r, r], True where
    the mean over the cell is > 0.5 (strict)."""
    ratio = _ratio(mask, resolution)
    return F.avg_pool2d(mask.float(), ratio, ratio) > 0.5


def _weights(strength: float | torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """strength (a number or [N]) -> [N, 1, 1, 1] on like's device and dtype."""
    weight = torch.as_tensor(strength, dtype=like.dtype, device=like.device)
    return weight.reshape(-1, 1, 1, 1)


def masked_lerp(
    source: torch.Tensor,
    reference: torch.Tensor,
    cells: torch.Tensor,
    strength: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """source where `cells` is False; inside, the reference (strength None) or
    lerp(source, reference, strength) with strength a number or [N] (0 gives the source and 1
    the reference exactly)."""
    if strength is None:
        return torch.where(cells, reference, source)
    return torch.where(cells, torch.lerp(source, reference, _weights(strength, source)), source)


# ----------------------------------------------------------------------------- local editing


def blend_layer_codes(
    source: Sequence[torch.Tensor],
    reference: Sequence[torch.Tensor],
    mask: torch.Tensor,
    strength: float | torch.Tensor | None = None,
) -> Codes:
    """CelebA-HQ local editing ('w_plus'): EVERY layer code is taken from the reference on the
    cells the max rule selects from `mask` (a union mask, see `union_mask`), from the source
    elsewhere. Both code lists come from their own stylemaps through the whole resizer; a
    blended code is used by its own layer only. strength: see `masked_lerp`."""
    if len(source) != len(reference):
        raise ValueError(f"{len(source)} source codes but {len(reference)} reference codes")
    return [
        masked_lerp(s, r, max_pool_select(mask, s.shape[-1]), strength)
        for s, r in zip(source, reference, strict=True)
    ]


def blend_stylemap(
    source: torch.Tensor,
    reference: torch.Tensor,
    mask: torch.Tensor,
    strength: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """AFHQ local editing ('w'): the stylemap itself blended once under the max rule (then the
    generator's resizer runs on the blend)."""
    return masked_lerp(source, reference, max_pool_select(mask, source.shape[-1]), strength)


def half_mask(size: int, side: str, batch: int = 1) -> torch.Tensor:
    """The AFHQ example's mask: -2 everywhere, +2 on the right (columns >= size/2) or bottom
    (rows >= size/2) half -> [batch, 1, size, size]."""
    mask = torch.full((batch, 1, size, size), -2.0)
    if side == "right":
        mask[..., size // 2 :] = 2.0
    elif side == "bottom":
        mask[..., size // 2 :, :] = 2.0
    else:
        raise ValueError(f"side must be right or bottom, got {side!r}")
    return mask


@dataclass(frozen=True)
class ShiftedCells:
    """Where one reference's region goes at one code resolution: reference cells (src_y,
    src_x) are written to (dst_y, dst_x); all four are 1-D index tensors of equal length."""

    src_y: torch.Tensor
    src_x: torch.Tensor
    dst_y: torch.Tensor
    dst_x: torch.Tensor


def shifted_cells(mask: torch.Tensor, resolution: int, shift_px: tuple[int, int]) -> ShiftedCells:
    """The demo's cells of one binary mask [1, 1, size, size] at `resolution`: the average
    rule, then the shift (dx, dy) px (+x right, +y down) in whole cells truncated toward zero
    (int(-21 / 32) = 0); cells that land outside the map are dropped with their sources."""
    ratio = _ratio(mask, resolution)
    ys, xs = torch.nonzero(average_pool_select(mask, resolution)[0, 0], as_tuple=True)
    dx, dy = (int(d / ratio) for d in shift_px)
    dst_y, dst_x = ys + dy, xs + dx
    keep = (dst_y >= 0) & (dst_y < resolution) & (dst_x >= 0) & (dst_x < resolution)
    return ShiftedCells(ys[keep], xs[keep], dst_y[keep], dst_x[keep])


def demo_transition(
    original: Sequence[torch.Tensor],
    references: Sequence[Sequence[torch.Tensor]],
    masks: torch.Tensor,
    shifts_px: Sequence[tuple[int, int]],
    steps: int = 16,
) -> Codes:
    """The web demo's real-time edit: layer codes of `steps` frames [T, ...] going from the
    original (frame 0, the plain reconstruction) to the full paste (frame T-1).

    original: the original's codes (batch 1); references: R code lists (batch 1 each); masks:
    [R, 1, size, size] binary (1 = the region taken from that reference); shifts_px: R (dx, dy)
    in pixels. Frame t has w = t / (T - 1); for each reference in order, the destination cells
    become dest + w (reference code at the source cells - dest), so later references win where
    regions overlap.
    """
    if steps < 2:
        raise ValueError("the transition needs at least 2 steps (frame 0 and the full paste)")
    if len(references) != masks.shape[0] or len(shifts_px) != masks.shape[0]:
        raise ValueError(
            f"{len(references)} references, {masks.shape[0]} masks, {len(shifts_px)} shifts"
        )
    codes = []
    for i, code in enumerate(original):
        frames = code.expand(steps, *code.shape[1:]).clone()
        weight = torch.arange(steps, dtype=code.dtype, device=code.device) / (steps - 1)
        weight = weight[:, None, None]
        for r, reference in enumerate(references):
            cells = shifted_cells(masks[r : r + 1], code.shape[-1], shifts_px[r])
            dest = frames[:, :, cells.dst_y, cells.dst_x]
            taken = reference[i][0][:, cells.src_y, cells.src_x]
            frames[:, :, cells.dst_y, cells.dst_x] = dest + weight * (taken[None] - dest)
        codes.append(frames)
    return codes


@dataclass(frozen=True)
class Box:
    """A transplanted block of stylemap cells: the reference's h x w cells at (ref_y, ref_x)
    are copied to (src_y, src_x) in the source."""

    src_y: int
    src_x: int
    ref_y: int
    ref_x: int
    height: int
    width: int


def transplant_boxes(
    source: torch.Tensor, reference: torch.Tensor, boxes: Sequence[Box]
) -> torch.Tensor:
    """Copy blocks of the reference stylemap (all channels) into a copy of the source
    stylemap, box after box (later boxes overwrite earlier ones)."""
    out = source.clone()
    side = source.shape[-1]
    for box in boxes:
        for y, x in ((box.src_y, box.src_x), (box.ref_y, box.ref_x)):
            if min(y, x, box.height, box.width) < 0 or max(y + box.height, x + box.width) > side:
                raise ValueError(f"{box} does not fit a {side}x{side} stylemap")
        h, w = box.height, box.width
        out[..., box.src_y : box.src_y + h, box.src_x : box.src_x + w] = reference[
            ..., box.ref_y : box.ref_y + h, box.ref_x : box.ref_x + w
        ]
    return out


# ----------------------------------------------------------------------------- global operations


def truncate(stylemap: torch.Tensor, mean: torch.Tensor, psi: float) -> torch.Tensor:
    """mean + psi (stylemap - mean): psi 1 leaves it, 0 gives the mean (official psi 0.7)."""
    return mean + psi * (stylemap - mean)


def interpolate(first: torch.Tensor, second: torch.Tensor, weight: float) -> torch.Tensor:
    """first * weight + second * (1 - weight) (the official weight multiplies the FIRST)."""
    return first * weight + second * (1.0 - weight)


def style_mix(first: Sequence[torch.Tensor], second: Sequence[torch.Tensor], mode: str) -> Codes:
    """'coarse': codes 0-1 (the S x S ones) from the first, the rest from the second;
    'fine': codes 0-1 from the second, the rest from the first."""
    if mode == "coarse":
        return [*first[:2], *second[2:]]
    if mode == "fine":
        return [*second[:2], *first[2:]]
    raise ValueError(f"style mixing mode must be coarse or fine, got {mode!r}")


def semantic_edit(
    stylemap: torch.Tensor,
    direction: torch.Tensor,
    distance: float,
    box: tuple[int, int, int, int] | None = None,
) -> torch.Tensor:
    """stylemap + distance * direction. direction: [C*S*S] or [1, C*S*S] (a flattened-stylemap
    SVM normal, channel-major, used as stored) or [C, S, S]. box (y, x, height, width) in cells
    zeroes the direction outside it (the local version)."""
    shape = tuple(stylemap.shape[1:])
    if direction.numel() != stylemap[0].numel():
        raise ValueError(
            f"the direction has {direction.numel()} values; this stylemap needs "
            f"{stylemap[0].numel()} ({' x '.join(map(str, shape))})"
        )
    direction = direction.reshape(1, *shape).to(stylemap)
    if box is not None:
        y, x, h, w = box
        inside = torch.zeros_like(direction)
        inside[..., y : y + h, x : x + w] = 1.0
        direction = direction * inside
    return stylemap + distance * direction
