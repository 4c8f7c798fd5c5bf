"""StyleGAN's custom ops: bias_act, upfirdn2d, filtered_lrelu.

One Python signature per op; a pure-PyTorch reference path (CPU, and CUDA when the kernels are
unavailable) and compiled CUDA kernels chosen by `GANVID_OPS=auto|cuda|ref` (see `loader`).
"""

from ganvid.ops.bias_act import bias_act
from ganvid.ops.filtered_lrelu import filtered_lrelu
from ganvid.ops.upfirdn2d import downsample2d, filter2d, setup_filter, upfirdn2d, upsample2d

__all__ = [
    "bias_act",
    "downsample2d",
    "filter2d",
    "filtered_lrelu",
    "setup_filter",
    "upfirdn2d",
    "upsample2d",
]
