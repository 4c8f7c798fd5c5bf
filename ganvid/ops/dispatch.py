"""The public ops: each call takes the CUDA kernel or the reference path, and nothing else does.

Imports run one way: the reference modules (`bias_act`, `upfirdn2d`, `filtered_lrelu`) know
nothing of CUDA; `cuda_functions` builds on their parameter types and reference paths; this
module chooses between the two. CUDA tensors use the kernels when the ops backend allows it
(`GANVID_OPS`, see `loader`); a kernel that fails to run falls back to the reference path once
with a warning in auto mode.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ganvid.ops import cuda_functions, loader
from ganvid.ops.bias_act import bias_act_ref, check_bias, resolve
from ganvid.ops.filtered_lrelu import check_inputs, filtered_lrelu_ref
from ganvid.ops.upfirdn2d import (
    Padding,
    Scaling,
    check_input,
    filter_size,
    parse_padding,
    parse_scaling,
    upfirdn2d_ref,
)


def _run(
    x: torch.Tensor, kernel: Callable[[], torch.Tensor], reference: Callable[[], torch.Tensor]
) -> torch.Tensor:
    """kernel() for tensors the backend sends to CUDA, else (or after a failure) reference()."""
    if loader.use_cuda(x):
        try:
            return kernel()
        except RuntimeError as error:
            loader.kernel_failed(error)  # re-raises unless auto mode can fall back
    return reference()


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """Add bias b along `dim`, apply `act`, multiply by `gain`, clamp to [-clamp, clamp].

    x: any shape; b: None or 1-D with x.shape[dim] entries. alpha/gain default to the
    activation's (lrelu: 0.2 and sqrt(2)); clamp None disables clamping. Same shape and dtype
    as x.
    """
    check_bias(x, b, dim)
    return _run(
        x,
        lambda: cuda_functions.bias_act_cuda(x, b, dim, resolve(act, alpha, gain, clamp)),
        lambda: bias_act_ref(x, b, dim, act, alpha, gain, clamp),
    )


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: Scaling = 1,
    down: Scaling = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """Upsample, pad, FIR-filter and downsample every channel of x [N, C, H, W].

    Returns [N, C, H', W'] with H', W' from `upfirdn2d.output_size`; differentiable on both paths.
    """
    check_input(x, f, up, down, padding)
    return _run(
        x,
        lambda: cuda_functions.upfirdn2d_cuda(x, f, up, down, padding, flip_filter, gain),
        lambda: upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain),
    )


def filter2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """FIR filter keeping the size (padding on top of the "same" padding)."""
    x0, x1, y0, y1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pads = [x0 + fw // 2, x1 + (fw - 1) // 2, y0 + fh // 2, y1 + (fh - 1) // 2]
    return upfirdn2d(x, f, padding=pads, flip_filter=flip_filter, gain=gain)


def upsample2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: Scaling = 2,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """Upsample by `up` with FIR filter f; output is exactly in * up (plus padding).

    The filter is scaled by upx * upy to keep the DC gain through zero-stuffing.
    """
    upx, upy = parse_scaling(up)
    x0, x1, y0, y1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pads = [
        x0 + (fw + upx - 1) // 2,
        x1 + (fw - upx) // 2,
        y0 + (fh + upy - 1) // 2,
        y1 + (fh - upy) // 2,
    ]
    return upfirdn2d(
        x, f, up=(upx, upy), padding=pads, flip_filter=flip_filter, gain=gain * upx * upy
    )


def downsample2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    down: Scaling = 2,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """Low-pass with FIR filter f, then keep every `down`-th sample: output is in / down."""
    downx, downy = parse_scaling(down)
    x0, x1, y0, y1 = parse_padding(padding)
    fw, fh = filter_size(f)
    pads = [
        x0 + (fw - downx + 1) // 2,
        x1 + (fw - downx) // 2,
        y0 + (fh - downy + 1) // 2,
        y1 + (fh - downy) // 2,
    ]
    return upfirdn2d(x, f, down=(downx, downy), padding=pads, flip_filter=flip_filter, gain=gain)


def filtered_lrelu(
    x: torch.Tensor,
    fu: torch.Tensor | None = None,
    fd: torch.Tensor | None = None,
    b: torch.Tensor | None = None,
    up: Scaling = 1,
    down: Scaling = 1,
    padding: Padding = 0,
    gain: float = 2**0.5,
    slope: float = 0.2,
    clamp: float | None = None,
    flip_filter: bool = False,
) -> torch.Tensor:
    """StyleGAN3's filtered leaky ReLU of x [N, C, H, W] -> [N, C, H', W'] (see filtered_lrelu).

    fu, fd: None (identity), 1-D separable or 2-D filters (from `setup_filter`); b: [C] or None;
    up/down: int or (x, y); padding: int, [px, py] or [x0, x1, y0, y1]; clamp None = no clamp.
    """
    check_inputs(x, fu, fd, b, up, down, padding, clamp)
    args = (x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter)
    return _run(
        x, lambda: cuda_functions.filtered_lrelu_cuda(*args), lambda: filtered_lrelu_ref(*args)
    )
