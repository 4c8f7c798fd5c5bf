"""StyleGAN's custom ops: bias_act, upfirdn2d, filtered_lrelu.

One Python signature per op (`dispatch`); a pure-PyTorch reference path (CPU, and CUDA when the
kernels are unavailable) and compiled CUDA kernels chosen by `GANVID_OPS=auto|cuda|ref` (see
`loader`).
"""

from ganvid.ops.dispatch import (
    bias_act,
    downsample2d,
    filter2d,
    filtered_lrelu,
    upfirdn2d,
    upsample2d,
)
from ganvid.ops.upfirdn2d import setup_filter

__all__ = [
    "bias_act",
    "downsample2d",
    "filter2d",
    "filtered_lrelu",
    "setup_filter",
    "upfirdn2d",
    "upsample2d",
]
