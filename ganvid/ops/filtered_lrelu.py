"""filtered_lrelu: bias -> upsample -> FIR -> leaky ReLU -> clamp -> FIR -> downsample.

The alias-free non-linearity of StyleGAN3 (reference facts: nvidia-sg3.md §3.3):
  1. add bias b per channel,
  2. zero-stuff by `up`, pad by `padding` [x0, x1, y0, y1] (negative crops), convolve with fu
     (valid), with gain up_x * up_y to keep the DC gain through zero-stuffing,
  3. multiply by `gain`, leaky ReLU with `slope`, clamp to [-clamp, clamp],
  4. convolve with fd (valid), keep every `down`-th sample.
Output size per axis: (in * up + pad0 + pad1 - (fu_taps - 1) - (fd_taps - 1) + down - 1) // down.
"""

from __future__ import annotations

import numpy as np
import torch

from ganvid.errors import InputError
from ganvid.ops.bias_act import bias_act_ref
from ganvid.ops.upfirdn2d import (
    Padding,
    Scaling,
    filter_size,
    parse_padding,
    parse_scaling,
    upfirdn2d_ref,
)


def output_shape(
    x: torch.Tensor,
    fu: torch.Tensor | None,
    fd: torch.Tensor | None,
    up: Scaling,
    down: Scaling,
    padding: Padding,
) -> tuple[int, int]:
    """(H, W) of filtered_lrelu's output for input x [N, C, H, W]."""
    upx, upy = parse_scaling(up)
    downx, downy = parse_scaling(down)
    x0, x1, y0, y1 = parse_padding(padding)
    fuw, fuh = filter_size(fu)
    fdw, fdh = filter_size(fd)
    h = (x.shape[2] * upy + y0 + y1 - (fuh - 1) - (fdh - 1) + downy - 1) // downy
    w = (x.shape[3] * upx + x0 + x1 - (fuw - 1) - (fdw - 1) + downx - 1) // downx
    return h, w


def check_inputs(
    x: torch.Tensor, fu, fd, b, up, down, padding, clamp: float | None
) -> tuple[int, int]:
    if x.ndim != 4:
        raise InputError(f"filtered_lrelu expects x of shape [N, C, H, W], got {tuple(x.shape)}")
    if b is not None and (b.ndim != 1 or b.shape[0] != x.shape[1]):
        raise InputError(f"bias of shape {tuple(b.shape)} does not match {x.shape[1]} channels")
    if clamp is not None and clamp < 0:
        raise InputError(f"clamp must be >= 0 or None, got {clamp}")
    h, w = output_shape(x, fu, fd, up, down, padding)
    if h < 1 or w < 1:
        raise InputError(f"filtered_lrelu would produce an empty {h}x{w} image; check padding")
    return h, w


def filtered_lrelu_ref(
    x: torch.Tensor,
    fu: torch.Tensor | None = None,
    fd: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    up: Scaling = 1,
    down: Scaling = 1,
    padding: Padding = 0,
    gain: float = np.sqrt(2),
    slope: float = 0.2,
    clamp: float | None = None,
    flip_filter: bool = False,
) -> torch.Tensor:
    """Pure-PyTorch filtered_lrelu (differentiable to any order). x: [N, C, H, W]."""
    check_inputs(x, fu, fd, b, up, down, padding, clamp)
    upx, upy = parse_scaling(up)
    if b is not None:
        x = bias_act_ref(x, b)
    x = upfirdn2d_ref(x, fu, up=up, padding=padding, flip_filter=flip_filter, gain=upx * upy)
    x = bias_act_ref(x, act="lrelu", alpha=slope, gain=gain, clamp=clamp)
    return upfirdn2d_ref(x, fd, down=down, flip_filter=flip_filter)
