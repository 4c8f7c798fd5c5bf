"""upfirdn2d: upsample (zero-stuffing), pad, FIR filter, downsample — per channel, in 2-D.

Semantics follow NVIDIA's StyleGAN2/3 op (reference facts: nvidia-sg3.md §3.2):
  1. insert `up - 1` zeros after every sample (x and y may use different factors),
  2. pad by [x0, x1, y0, y1] w.r.t. the upsampled image (negative values crop),
  3. convolve with `f` keeping only the fully overlapping ("valid") outputs,
  4. keep every `down`-th sample starting at index 0.
`f` is None (identity), 1-D (separable: applied along x, then along y) or 2-D [fh, fw].
`flip_filter=False` is a true convolution; `gain` multiplies the filter by gain ** (f.ndim / 2)
so that a separable filter carries sqrt(gain) per pass.
Output size per axis: ceil((in * up + pad0 + pad1 - (taps - 1)) / down).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ganvid.errors import InputError

Scaling = int | Sequence[int]
Padding = int | Sequence[int]


def parse_scaling(scaling: Scaling) -> tuple[int, int]:
    """`up`/`down` as (x, y): an int applies to both axes, a pair is [x, y]."""
    if isinstance(scaling, int | np.integer):
        sx = sy = int(scaling)
    else:
        sx, sy = (int(s) for s in scaling)
    if sx < 1 or sy < 1:
        raise InputError(f"up/down factors must be >= 1, got {scaling!r}")
    return sx, sy


def parse_padding(padding: Padding) -> tuple[int, int, int, int]:
    """Padding as (x0, x1, y0, y1): an int pads all sides, [px, py] pads both ends per axis."""
    if isinstance(padding, int | np.integer):
        return (int(padding),) * 4
    values = [int(p) for p in padding]
    if len(values) == 2:
        px, py = values
        return px, px, py, py
    if len(values) == 4:
        x0, x1, y0, y1 = values
        return x0, x1, y0, y1
    raise InputError(f"padding must be an int, [px, py] or [x0, x1, y0, y1], got {padding!r}")


def filter_size(f: torch.Tensor | None) -> tuple[int, int]:
    """(fw, fh) taps of a filter: None is 1x1, a 1-D filter has the same taps along x and y."""
    if f is None:
        return 1, 1
    if f.ndim == 1:
        return f.shape[0], f.shape[0]
    if f.ndim == 2:
        return f.shape[1], f.shape[0]
    raise InputError(f"a filter must be 1-D or 2-D, got shape {tuple(f.shape)}")


def setup_filter(
    f,
    device: torch.device | str = torch.device("cpu"),
    normalize: bool = True,
    flip_filter: bool = False,
    gain: float = 1,
    separable: bool | None = None,
) -> torch.Tensor:
    """Turn filter taps into a float32 tensor ready for `upfirdn2d`.

    f: None (-> [1.]), a scalar, 1-D taps or a 2-D [fh, fw] kernel (list, array or tensor).
    normalize: divide by the sum (unit DC gain). separable: keep a 1-D filter separable; default
    is separable for 1-D filters of 8 or more taps, otherwise the outer product is returned.
    flip_filter flips along every axis; gain scales the filter by gain ** (ndim / 2).
    """
    if f is None:
        f = 1
    f = torch.as_tensor(f, dtype=torch.float32)
    if f.ndim == 0:
        f = f[None]
    if f.ndim not in (1, 2) or f.numel() == 0:
        raise InputError(f"a filter must be non-empty 1-D or 2-D, got shape {tuple(f.shape)}")
    if normalize:
        f = f / f.sum()
    if separable is None:
        separable = f.ndim == 1 and f.numel() >= 8
    if f.ndim == 1 and not separable:
        f = torch.outer(f, f)
    if separable and f.ndim != 1:
        raise InputError("a separable filter must be 1-D")
    if flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f * (gain ** (f.ndim / 2))
    return f.to(device=device)


def output_size(size: int, up: int, down: int, pad0: int, pad1: int, taps: int) -> int:
    """Samples along one axis after upfirdn2d (see module docstring)."""
    return (size * up + pad0 + pad1 - (taps - 1) + down - 1) // down


def check_input(x: torch.Tensor, f: torch.Tensor | None, up, down, padding) -> None:
    if x.ndim != 4:
        raise InputError(f"upfirdn2d expects x of shape [N, C, H, W], got {tuple(x.shape)}")
    fw, fh = filter_size(f)
    (upx, upy), (downx, downy) = parse_scaling(up), parse_scaling(down)
    x0, x1, y0, y1 = parse_padding(padding)
    h = output_size(x.shape[2], upy, downy, y0, y1, fh)
    w = output_size(x.shape[3], upx, downx, x0, x1, fw)
    if h < 1 or w < 1:
        raise InputError(
            f"upfirdn2d of a {x.shape[2]}x{x.shape[3]} image with padding {padding} and a "
            f"{fh}x{fw} filter would be empty; pad more or give a larger input"
        )


def _pad_or_crop(x: torch.Tensor, x0: int, x1: int, y0: int, y1: int) -> torch.Tensor:
    """Zero-pad positive amounts, crop negative ones."""
    x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    h, w = x.shape[2], x.shape[3]
    return x[:, :, max(-y0, 0) : h - max(-y1, 0), max(-x0, 0) : w - max(-x1, 0)]


def _depthwise(
    x: torch.Tensor, kernel: torch.Tensor, stride: tuple[int, int] = (1, 1)
) -> torch.Tensor:
    """Cross-correlate every channel with the same 2-D kernel [kh, kw], valid outputs only,
    keeping every stride-th output (row, column) from index 0."""
    c = x.shape[1]
    weight = kernel.to(x.dtype)[None, None].expand(c, 1, *kernel.shape)
    return F.conv2d(x, weight, stride=stride, groups=c)


def _upsample_filter(
    x: torch.Tensor, kernel: torch.Tensor, upx: int, upy: int, pads: tuple[int, int, int, int]
) -> torch.Tensor:
    """Zero-stuff by (upx, upy), pad by pads = (x0, x1, y0, y1), cross-correlate with `kernel`
    [kh, kw] (valid) — computed as a transposed convolution with the flipped kernel.

    The transposed convolution z[k] = sum_i x[i] * flip(kernel)[k - i * up] has
    (in - 1) * up + taps samples; the wanted signal is z shifted by taps - 1 - pad0 and cut to
    in * up + pad0 + pad1 - taps + 1 samples, i.e. z padded by pad0 - (taps - 1) in front and
    pad1 + up - taps at the end.
    """
    c = x.shape[1]
    kh, kw = kernel.shape
    weight = kernel.flip([0, 1]).to(x.dtype)[None, None].expand(c, 1, kh, kw)
    z = F.conv_transpose2d(x, weight, stride=(upy, upx), groups=c)
    x0, x1, y0, y1 = pads
    return _pad_or_crop(z, x0 - (kw - 1), x1 + upx - kw, y0 - (kh - 1), y1 + upy - kh)


def upfirdn2d_ref(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: Scaling = 1,
    down: Scaling = 1,
    padding: Padding = 0,
    flip_filter: bool = False,
    gain: float = 1,
) -> torch.Tensor:
    """Pure-PyTorch upfirdn2d (differentiable to any order). x: [N, C, H, W]."""
    check_input(x, f, up, down, padding)
    upx, upy = parse_scaling(up)
    downx, downy = parse_scaling(down)
    x0, x1, y0, y1 = parse_padding(padding)
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    f = f.to(device=x.device, dtype=torch.float32) * (gain ** (f.ndim / 2))
    if not flip_filter:  # torch's conv2d is a cross-correlation: flip for a true convolution
        f = f.flip(list(range(f.ndim)))

    if upx > 1 or upy > 1:  # no multiplications with the stuffed zeros
        if f.ndim == 1:
            x = _upsample_filter(x, f[None, :], upx, 1, (x0, x1, 0, 0))
            x = _upsample_filter(x, f[:, None], 1, upy, (0, 0, y0, y1))
        else:
            x = _upsample_filter(x, f, upx, upy, (x0, x1, y0, y1))
        return x[:, :, ::downy, ::downx]
    x = _pad_or_crop(x, x0, x1, y0, y1)
    # Decimation = a strided convolution (no outputs computed just to be dropped).
    if f.ndim == 1:
        x = _depthwise(x, f[None, :], stride=(1, downx))
        return _depthwise(x, f[:, None], stride=(downy, 1))
    return _depthwise(x, f, stride=(downy, downx))
