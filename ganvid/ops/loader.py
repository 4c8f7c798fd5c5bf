"""Choose between the CUDA kernels and the reference path (GANVID_OPS=auto|cuda|ref).

Placeholder until the kernels land: every tensor uses the reference path.
"""

from __future__ import annotations

import torch


def use_cuda(x: torch.Tensor) -> bool:
    """True when x should go through the compiled CUDA kernels."""
    return False


def describe_backend() -> str:
    """One line for `ganvid doctor`; never builds anything."""
    return "ref (CUDA kernels not available in this version)"
