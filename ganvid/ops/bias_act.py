"""bias_act: add a bias along one dimension, apply an activation, scale, clamp.

y = clamp(act(x + b, alpha) * gain, -clamp, +clamp)   (reference facts: nvidia-sg3.md §3.1)
Defaults per activation follow NVIDIA's op: lrelu has alpha 0.2 and gain sqrt(2), etc.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ganvid.errors import InputError


@dataclass(frozen=True)
class Activation:
    """One activation: its function, default alpha and gain, and the CUDA kernel's code."""

    func: Callable[[torch.Tensor, float], torch.Tensor]
    def_alpha: float
    def_gain: float
    cuda_idx: int


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(lambda x, a: x, 0.0, 1.0, 1),
    "relu": Activation(lambda x, a: F.relu(x), 0.0, math.sqrt(2), 2),
    "lrelu": Activation(lambda x, a: F.leaky_relu(x, a), 0.2, math.sqrt(2), 3),
    "tanh": Activation(lambda x, a: torch.tanh(x), 0.0, 1.0, 4),
    "sigmoid": Activation(lambda x, a: torch.sigmoid(x), 0.0, 1.0, 5),
    "elu": Activation(lambda x, a: F.elu(x), 0.0, 1.0, 6),
    "selu": Activation(lambda x, a: F.selu(x), 0.0, 1.0, 7),
    "softplus": Activation(lambda x, a: F.softplus(x), 0.0, 1.0, 8),
    "swish": Activation(lambda x, a: torch.sigmoid(x) * x, 0.0, math.sqrt(2), 9),
}


@dataclass(frozen=True)
class BiasActParams:
    """Resolved parameters: act name, alpha, gain and clamp (-1 = no clamp)."""

    act: str
    alpha: float
    gain: float
    clamp: float


def resolve(
    act: str, alpha: float | None, gain: float | None, clamp: float | None
) -> BiasActParams:
    """Fill in the activation's defaults; reject unknown activations and negative clamps."""
    if act not in ACTIVATIONS:
        raise InputError(f"unknown activation {act!r}; choose one of {', '.join(ACTIVATIONS)}")
    spec = ACTIVATIONS[act]
    if clamp is not None and clamp < 0:
        raise InputError(f"clamp must be >= 0 or None, got {clamp}")
    return BiasActParams(
        act=act,
        alpha=float(spec.def_alpha if alpha is None else alpha),
        gain=float(spec.def_gain if gain is None else gain),
        clamp=float(-1 if clamp is None else clamp),
    )


def check_bias(x: torch.Tensor, b: torch.Tensor | None, dim: int) -> None:
    if b is None:
        return
    if b.ndim != 1 or not 0 <= dim < x.ndim or b.shape[0] != x.shape[dim]:
        raise InputError(
            f"bias of shape {tuple(b.shape)} does not match dim {dim} of x {tuple(x.shape)}"
        )


def bias_act_ref(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    dim: int = 1,
    act: str = "linear",
    alpha: float | None = None,
    gain: float | None = None,
    clamp: float | None = None,
) -> torch.Tensor:
    """Pure-PyTorch bias_act, differentiable to any order. x: any shape; b: [x.shape[dim]]."""
    check_bias(x, b, dim)
    p = resolve(act, alpha, gain, clamp)
    if b is not None:
        x = x + b.to(x.dtype).reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = ACTIVATIONS[p.act].func(x, p.alpha)
    if p.gain != 1:
        x = x * p.gain
    if p.clamp >= 0:
        x = x.clamp(-p.clamp, p.clamp)
    return x
