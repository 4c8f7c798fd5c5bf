"""Autograd Functions over the compiled kernels (same semantics as the reference ops).

upfirdn2d runs as a chain of "passes" (csrc/ops_core.h): one pass samples x along x and/or y
with up/down factors, a pad offset and a weight array in cross-correlation order; a separable
filter is two passes (x, then y), a 2-D filter one. The gradient of a pass is another pass: swap
up and down, flip the weights, pad0' = taps - 1 - pad0, output = the pass's input size.

filtered_lrelu's forward is one fused kernel (csrc/flrelu_core.h: shared-memory tiles, the
upsampled signal never reaches global memory) for separable or absent up filters; it writes a
uint8 mask (0 clamped, 1 positive, 2 negative) only when a backward will follow. Other filters
use the passes, with the bias folded into the first and the activation into the last upsampling
pass. The backward runs the adjoint passes and applies the mask in the pass that produces the
gradient of the activation.

The functions also run on CPU float32 tensors (the extension emulates the kernels there); the
tests use that to check this planning and the kernels' index math without a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import torch
from torch.autograd.function import once_differentiable

from ganvid.ops.bias_act import ACTIVATIONS, BiasActParams
from ganvid.ops.filtered_lrelu import filtered_lrelu_ref
from ganvid.ops.upfirdn2d import (
    Padding,
    Scaling,
    output_size,
    parse_padding,
    parse_scaling,
    upfirdn2d_ref,
)

EPILOGUE_NONE, EPILOGUE_LRELU, EPILOGUE_LRELU_GRAD, EPILOGUE_LRELU_NO_MASK = 0, 1, 2, 3
_EMPTY: dict[torch.device, torch.Tensor] = {}


def _module() -> ModuleType:
    from ganvid.ops import loader

    module = loader.loaded_module() or loader.cuda_module()
    if module is None:  # only reachable when GANVID_OPS changed between check and call
        raise RuntimeError("the CUDA ops module is not loaded")
    return module


def _empty(device: torch.device) -> torch.Tensor:
    if device not in _EMPTY:
        _EMPTY[device] = torch.empty(0, device=device)
    return _EMPTY[device]


@dataclass(frozen=True)
class Pass:
    """One kernel pass; weights [taps_y, taps_x] float32 in cross-correlation order."""

    weights: torch.Tensor
    up: tuple[int, int]  # (x, y)
    down: tuple[int, int]
    pad0: tuple[int, int]  # leading pad (x, y); negative crops
    out: tuple[int, int]  # output (h, w)

    def geometry(self) -> list[int]:
        return [*self.up, *self.down, *self.pad0, *self.out]

    def adjoint(self, in_hw: tuple[int, int]) -> Pass:
        """The pass computing the gradient w.r.t. this pass's input of size in_hw."""
        taps_y, taps_x = self.weights.shape
        return Pass(
            weights=self.weights.flip([0, 1]).contiguous(),
            up=self.down,
            down=self.up,
            pad0=(taps_x - 1 - self.pad0[0], taps_y - 1 - self.pad0[1]),
            out=in_hw,
        )


def _run(
    x: torch.Tensor,
    p: Pass,
    bias: torch.Tensor | None = None,
    epilogue: int = EPILOGUE_NONE,
    mask: torch.Tensor | None = None,
    act: tuple[float, float, float] = (1.0, 1.0, -1.0),
) -> tuple[torch.Tensor, torch.Tensor]:
    empty = _empty(x.device)
    gain, slope, clamp = act
    y, mask_out = _module().upfirdn_pass(
        x.contiguous(),
        p.weights,
        empty if bias is None else bias,
        empty if mask is None else mask,
        p.geometry(),
        epilogue,
        gain,
        slope,
        clamp,
    )
    return y, mask_out


def plan_passes(
    in_hw: tuple[int, int],
    f: torch.Tensor | None,
    up: Scaling,
    down: Scaling,
    padding: Padding,
    flip_filter: bool,
    gain: float,
    device: torch.device,
) -> list[Pass]:
    """Passes equal to upfirdn2d(x, f, up, down, padding, flip_filter, gain) on [.., *in_hw]."""
    upx, upy = parse_scaling(up)
    downx, downy = parse_scaling(down)
    x0, x1, y0, y1 = parse_padding(padding)
    if f is None:
        f = torch.ones([1, 1])
    w = f.detach().to(device=device, dtype=torch.float32) * (gain ** (f.ndim / 2))
    if not flip_filter:  # true convolution = cross-correlation with the flipped filter
        w = w.flip(list(range(w.ndim)))
    h, wd = in_hw
    if w.ndim == 2:
        out = (
            output_size(h, upy, downy, y0, y1, w.shape[0]),
            output_size(wd, upx, downx, x0, x1, w.shape[1]),
        )
        return [Pass(w.contiguous(), (upx, upy), (downx, downy), (x0, y0), out)]
    taps = w.shape[0]
    out_w = output_size(wd, upx, downx, x0, x1, taps)
    out_h = output_size(h, upy, downy, y0, y1, taps)
    along_x = Pass(w[None, :].contiguous(), (upx, 1), (downx, 1), (x0, 0), (h, out_w))
    along_y = Pass(w[:, None].contiguous(), (1, upy), (1, downy), (0, y0), (out_h, out_w))
    return [along_x, along_y]


def _chain(x: torch.Tensor, passes: list[Pass]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Run passes in order; also return each pass's input size (for the adjoints)."""
    sizes = []
    for p in passes:
        sizes.append((x.shape[2], x.shape[3]))
        x, _ = _run(x, p)
    return x, sizes


def _input_sizes(first_hw: tuple[int, int], passes: list[Pass]) -> list[tuple[int, int]]:
    """Input size of each pass of a chain that starts at first_hw."""
    return [first_hw, *(p.out for p in passes)][: len(passes)]


def _adjoints(passes: list[Pass], in_sizes: list[tuple[int, int]]) -> list[Pass]:
    return [p.adjoint(hw) for p, hw in zip(reversed(passes), reversed(in_sizes), strict=True)]


# ------------------------------------------------------------------------------ upfirdn2d


class _Upfirdn2d(torch.autograd.Function):
    """Differentiable to any order: the backward is the same Function with adjoint passes."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, passes: list[Pass]) -> torch.Tensor:
        y, sizes = _chain(x, passes)
        ctx.adjoint = _adjoints(passes, sizes)
        return y

    @staticmethod
    def backward(ctx, dy: torch.Tensor):
        return _Upfirdn2d.apply(dy, ctx.adjoint), None


def upfirdn2d_cuda(x, f, up, down, padding, flip_filter, gain) -> torch.Tensor:
    if f is not None and f.requires_grad:  # filter gradients: only the reference path has them
        return upfirdn2d_ref(x, f, up, down, padding, flip_filter, gain)
    passes = plan_passes(x.shape[2:], f, up, down, padding, flip_filter, gain, x.device)
    return _Upfirdn2d.apply(x, passes)


# ------------------------------------------------------------------------------ bias_act


def _bias_layout(x: torch.Tensor, b: torch.Tensor | None, dim: int) -> tuple[int, int]:
    step = 1
    for size in x.shape[dim + 1 :]:
        step *= size
    return step, (x.shape[dim] if b is not None else 1)


class _BiasAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, dim: int, p: BiasActParams):
        x = x.contiguous()
        bias = None if b is None else b.detach().float().contiguous()
        step, channels = _bias_layout(x, b, dim)
        args = (step, channels, ACTIVATIONS[p.act].cuda_idx, p.alpha, p.gain, p.clamp)
        y = _module().bias_act(x, _empty(x.device) if bias is None else bias, *args)
        ctx.args, ctx.dim, ctx.has_bias = args, dim, b is not None
        ctx.b_dtype = None if b is None else b.dtype
        ctx.identity = p.act == "linear" and p.clamp < 0 and p.gain == 1
        ctx.save_for_backward(*([] if ctx.identity else [x]), *([] if bias is None else [bias]))
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        saved = list(ctx.saved_tensors)
        bias = saved.pop() if ctx.has_bias else None
        if ctx.identity:
            dx = dy
        else:
            x = saved[0]
            dy = dy.contiguous()
            dx = _module().bias_act_grad(
                dy, x, _empty(x.device) if bias is None else bias, *ctx.args
            )
        db = None
        if ctx.has_bias and ctx.needs_input_grad[1]:
            dims = [i for i in range(dx.ndim) if i != ctx.dim]
            db = dx.float().sum(dims).to(ctx.b_dtype)
        return dx, db, None, None


def bias_act_cuda(x, b, dim: int, params: BiasActParams) -> torch.Tensor:
    return _BiasAct.apply(x, b, dim, params)


# ------------------------------------------------------------------------------ filtered_lrelu


@dataclass(frozen=True)
class _Fused:
    """Arguments of the fused forward kernel (per-axis filters in cross-correlation order)."""

    fu_x: torch.Tensor
    fu_y: torch.Tensor
    fd_x: torch.Tensor  # empty when fd_y is a 2-D filter
    fd_y: torch.Tensor
    geometry: list[int]


@dataclass(frozen=True)
class _LreluPlan:
    up_passes: list[Pass]
    down_passes: list[Pass]
    act: tuple[float, float, float]  # gain, slope, clamp (-1 = none)
    fused: _Fused | None  # None: run the passes (2-D up filter, or filters too long)


MAX_FUSED_TAPS = 32


def _fused_args(x, fu, fd, up, down, padding, flip, tmp_hw, out_hw) -> _Fused | None:
    """The fused kernel handles a separable (or no) up filter and any down filter <= 32 taps."""
    if (fu is not None and fu.ndim != 1) or any(
        f is not None and max(f.shape) > MAX_FUSED_TAPS for f in (fu, fd)
    ):
        return None
    upx, upy = parse_scaling(up)
    downx, downy = parse_scaling(down)
    x0, _, y0, _ = parse_padding(padding)

    def prepare(f: torch.Tensor | None, gain: float) -> torch.Tensor:
        w = torch.ones([1]) if f is None else f.detach()
        w = w.to(device=x.device, dtype=torch.float32) * gain
        return (w if flip else w.flip(list(range(w.ndim)))).contiguous()

    fu_1d = prepare(fu, (upx * upy) ** 0.5)  # the up gain, split between the two axes
    if fd is not None and fd.ndim == 2:
        fd_x, fd_y = _empty(x.device), prepare(fd, 1.0)
    else:
        fd_x = fd_y = prepare(fd, 1.0)
    geometry = [upx, upy, downx, downy, x0, y0, *tmp_hw, *out_hw]
    return _Fused(fu_1d, fu_1d, fd_x, fd_y, geometry)


def _plan_filtered_lrelu(x, fu, fd, up, down, padding, gain, slope, clamp, flip) -> _LreluPlan:
    upx, upy = parse_scaling(up)
    hw = (x.shape[2], x.shape[3])
    up_passes = plan_passes(hw, fu, up, 1, padding, flip, upx * upy, x.device)
    tmp_hw = up_passes[-1].out
    down_passes = []
    if fd is not None or parse_scaling(down) != (1, 1):
        down_passes = plan_passes(tmp_hw, fd, 1, down, 0, flip, 1, x.device)
    out_hw = down_passes[-1].out if down_passes else tmp_hw
    act = (float(gain), float(slope), -1.0 if clamp is None else float(clamp))
    fused = _fused_args(x, fu, fd, up, down, padding, flip, tmp_hw, out_hw)
    return _LreluPlan(up_passes, down_passes, act, fused)


def _forward_fused(x, bias, plan: _LreluPlan, want_mask: bool):
    f = plan.fused
    y, mask = _module().filtered_lrelu(
        x.contiguous(),
        f.fu_x,
        f.fu_y,
        f.fd_x,
        f.fd_y,
        _empty(x.device) if bias is None else bias,
        f.geometry,
        *plan.act,
        want_mask,
    )
    return y, mask


def _forward_passes(x, bias, plan: _LreluPlan, want_mask: bool):
    last = len(plan.up_passes) - 1
    act_epilogue = EPILOGUE_LRELU if want_mask else EPILOGUE_LRELU_NO_MASK
    for i, p in enumerate(plan.up_passes):
        epilogue = act_epilogue if i == last else EPILOGUE_NONE
        x, mask = _run(x, p, bias if i == 0 else None, epilogue, act=plan.act)
    y, _ = _chain(x, plan.down_passes)
    return y, mask


class _FilteredLrelu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, b, plan: _LreluPlan, want_mask: bool):
        bias = None if b is None else b.detach().float().contiguous()
        forward = _forward_fused if plan.fused is not None else _forward_passes
        y, mask = forward(x, bias, plan, want_mask)
        tmp_hw = plan.up_passes[-1].out
        ctx.up_adjoint = _adjoints(
            plan.up_passes, _input_sizes((x.shape[2], x.shape[3]), plan.up_passes)
        )
        ctx.down_adjoint = _adjoints(plan.down_passes, _input_sizes(tmp_hw, plan.down_passes))
        ctx.tmp_hw, ctx.act = tmp_hw, plan.act
        ctx.b_dtype = None if b is None else b.dtype
        ctx.save_for_backward(mask)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        (mask,) = ctx.saved_tensors
        if mask.numel() == 0:
            raise RuntimeError("filtered_lrelu ran without its mask; enable grad before forward")
        g = dy
        down = ctx.down_adjoint or [
            Pass(torch.ones([1, 1], device=dy.device), (1, 1), (1, 1), (0, 0), ctx.tmp_hw)
        ]
        for i, p in enumerate(down):  # the last one yields d/d(activation input)
            is_last = i == len(down) - 1
            epilogue = EPILOGUE_LRELU_GRAD if is_last else EPILOGUE_NONE
            g, _ = _run(g, p, None, epilogue, mask if is_last else None, ctx.act)
        g, _ = _chain(g, ctx.up_adjoint)
        db = None
        if ctx.b_dtype is not None and ctx.needs_input_grad[1]:
            db = g.float().sum([0, 2, 3]).to(ctx.b_dtype)
        return g, db, None, None


def filtered_lrelu_cuda(
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
    """filtered_lrelu on the kernels (same signature and semantics as the public op)."""
    if any(f is not None and f.requires_grad for f in (fu, fd)):
        return filtered_lrelu_ref(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter)
    plan = _plan_filtered_lrelu(x, fu, fd, up, down, padding, gain, slope, clamp, flip_filter)
    want_mask = torch.is_grad_enabled() and (x.requires_grad or (b is not None and b.requires_grad))
    return _FilteredLrelu.apply(x, b, plan, want_mask)
