"""StyleGAN2 generator (Karras et al. "Analyzing and Improving the Image Quality of StyleGAN",
CVPR 2020) in the parameter layout of rosinality's PyTorch port.

That layout is what StyleGANEX stores under `decoder.` and what a converted
`stylegan2-ffhq-config-f.pt` stores under `g_ema`, so both load without renaming:

    style.{1..n_mlp}.{weight,bias}           mapping MLP (style.0 is the parameter-free PixelNorm)
    input.input            [1, C4, 4, 4]     learned constant
    conv1.*, to_rgb1.*                       the 4x4 layer and its RGB output
    convs.{0..}            two per block 8..size: even = upsampling conv, odd = plain conv
    to_rgbs.{0..}          one per block, each upsamples the running RGB skip and adds to it
    noises.noise_{0..}     fixed per-layer noise maps [1, 1, r, r]

A conv layer `convs.i` holds `conv.weight` [1, out, in, 3, 3], `conv.modulation.{weight,bias}`
[in, w_dim] / [in], `noise.weight` [1], `activate.bias` [out]; upsampling ones also hold the
blur buffer `conv.blur.kernel` [4, 4]. Images are float in [-1, 1] (not clamped), NCHW.

The constructor builds its layers through `make_*` methods so that `ganvid.nn.styleganex` can
swap the shallow ones for dilated versions without repeating the network.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganvid.ops import bias_act, upfirdn2d

#: The [1, 3, 3, 1] binomial low-pass used around every 2x upsampling.
BLUR_TAPS = (1.0, 3.0, 3.0, 1.0)
#: How `synthesis` fills the per-layer noise: 'const' = the stored buffers (deterministic),
#: 'random' = fresh Gaussian noise per call, 'none' = no noise (what video work uses).
NOISE_MODES = ("const", "random", "none")

#: fuse(block_index, features, rgb) -> (features, rgb), run before each synthesis block.
FuseFn = Callable[[int, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def rosinality_channels(
    size: int, channel_multiplier: int = 2, channel_max: int = 512, channel_base: int = 16384
) -> tuple[int, ...]:
    """Feature channels at resolutions 4, 8, ..., size.

    The published table (channel_multiplier 2): 512 up to 64 px, then 256, 128, 64, 32, i.e.
    min(channel_max, channel_multiplier * channel_base / res). Tests shrink channel_max and
    channel_base to build narrow networks with the same layout.
    """
    resolutions = [2**i for i in range(2, int(math.log2(size)) + 1)]
    return tuple(min(channel_max, channel_multiplier * channel_base // r) for r in resolutions)


@dataclass(frozen=True)
class StyleGAN2Config:
    """Shape of a StyleGAN2 generator.

    size: output side in px (a power of two >= 8). style_dim: w dimension. n_mlp: mapping layers.
    channels: feature channels per resolution 4, 8, ..., size (see `rosinality_channels`).
    lr_mlp: learning-rate multiplier of the mapping layers (scales their weights at run time).
    """

    size: int = 1024
    style_dim: int = 512
    n_mlp: int = 8
    channels: tuple[int, ...] = rosinality_channels(1024)
    lr_mlp: float = 0.01

    def __post_init__(self) -> None:
        log = int(math.log2(self.size)) if self.size > 0 else 0
        if self.size < 8 or 2**log != self.size:
            raise ValueError(f"size must be a power of two >= 8, got {self.size}")
        if len(self.channels) != log - 1:
            raise ValueError(
                f"channels must list {log - 1} resolutions (4..{self.size}), got {self.channels}"
            )

    @property
    def log_size(self) -> int:
        return int(math.log2(self.size))

    @property
    def n_latent(self) -> int:
        """Rows of w+ (18 at 1024 px): conv1, to_rgb1, then 2 per block (the ToRGB shares)."""
        return self.log_size * 2 - 2

    @property
    def num_layers(self) -> int:
        """Noise inputs: conv1 plus two convs per block."""
        return (self.log_size - 2) * 2 + 1

    def channels_at(self, resolution: int) -> int:
        return self.channels[int(math.log2(resolution)) - 2]


def blur_kernel(taps: Sequence[float] = BLUR_TAPS, gain: float = 1.0) -> torch.Tensor:
    """Separable low-pass as a 2-D kernel [k, k] with sum `gain`."""
    k = torch.tensor(taps, dtype=torch.float32)
    k = torch.outer(k, k)
    return k / k.sum() * gain


class PixelNorm(nn.Module):
    """Normalise each vector to unit root-mean-square over dim 1."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Fully connected layer with equalised learning rate.

    Stored weight [out, in] is N(0, 1/lr_mul); at run time it is scaled by lr_mul / sqrt(in) and
    the bias by lr_mul. activation=True applies the fused leaky ReLU (slope 0.2, gain sqrt 2).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        bias_init: float = 0.0,
        lr_mul: float = 1.0,
        activation: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = "lrelu" if self.activation else "linear"
        return bias_act(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul, act=act)

    def extra_repr(self) -> str:
        out_dim, in_dim = self.weight.shape
        return f"{in_dim}, {out_dim}, lr_mul={self.lr_mul}, activation={self.activation}"


class Blur(nn.Module):
    """FIR low-pass with the blur kernel (buffer `kernel` [4, 4]); pad = (before, after)."""

    def __init__(self, pad: tuple[int, int], gain: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("kernel", blur_kernel(gain=gain))
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p0, p1 = self.pad
        return upfirdn2d(x, self.kernel, padding=[p0, p1, p0, p1])


class Upsample(nn.Module):
    """2x upsampling: zero-stuff, then the blur kernel scaled by 4 (buffer `kernel` [4, 4])."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("kernel", blur_kernel(gain=4.0))
        # Output exactly 2x: 4 taps on a 2x zero-stuffed signal need 3 extra samples.
        self.pad = (2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p0, p1 = self.pad
        return upfirdn2d(x, self.kernel, up=2, padding=[p0, p1, p0, p1])


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution, optionally demodulated, optionally upsampling 2x.

    weight [1, out, in, k, k] is N(0, 1), scaled by 1/sqrt(in k^2) at run time; the style
    [B, style_dim] becomes per-input-channel gains through `modulation` (bias init 1). The
    upsampling version is a stride-2 transposed conv followed by `blur` (pads 1, 1).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        demodulate: bool = True,
        upsample: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.upsample, self.demodulate = kernel_size, upsample, demodulate
        self.weight = nn.Parameter(
            torch.randn(1, out_channels, in_channels, kernel_size, kernel_size)
        )
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.modulation = EqualLinear(style_dim, in_channels, bias_init=1.0)
        if upsample:
            # [1,3,3,1] blur after a transposed 3x3 conv: (4 - 2) - (3 - 1) = 0 extra, +1 each side
            self.blur = Blur(pad=(1, 1), gain=4.0)

    def modulated_weight(self, style: torch.Tensor) -> torch.Tensor:
        """style [B, style_dim] -> per-sample weight [B, out, in, k, k]."""
        gains = self.modulation(style)[:, None, :, None, None]
        weight = self.scale * self.weight * gains
        if self.demodulate:
            weight = (
                weight
                * torch.rsqrt(weight.square().sum(dim=(2, 3, 4)) + 1e-8)[..., None, None, None]
            )
        return weight

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """x [B, in, H, W], style [B, style_dim] -> [B, out, H', W'] (H' = 2H when upsampling)."""
        return self.convolve(x, self.modulated_weight(style))

    def convolve(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Grouped convolution of each sample with its own weight [B, out, in, k, k]."""
        batch = x.shape[0]
        x = x.reshape(1, -1, *x.shape[2:])
        if self.upsample:
            out = F.conv_transpose2d(x, transposed_layout(weight), stride=2, groups=batch)
            return self.blur(out.reshape(batch, self.out_channels, *out.shape[2:]))
        out = F.conv2d(
            x, weight.reshape(-1, *weight.shape[2:]), padding=self.kernel_size // 2, groups=batch
        )
        return out.reshape(batch, self.out_channels, *out.shape[2:])

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, "
            f"upsample={self.upsample}, demodulate={self.demodulate}"
        )


def transposed_layout(weight: torch.Tensor) -> torch.Tensor:
    """[B, out, in, k, k] -> [B*in, out, k, k], the weight layout of a grouped transposed conv."""
    batch, out_c, in_c, kh, kw = weight.shape
    return weight.transpose(1, 2).reshape(batch * in_c, out_c, kh, kw)


class NoiseInjection(nn.Module):
    """x + weight * noise. A noise map of another size is average-pooled to x's size."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None, randomize: bool = False):
        if randomize:
            noise = torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device, dtype=x.dtype)
        if noise is None:
            return x
        if noise.shape[-2:] != x.shape[-2:]:
            noise = F.adaptive_avg_pool2d(noise, x.shape[-2:])
        return x + self.weight * noise.to(x.dtype)


class FusedLeakyReLU(nn.Module):
    """Per-channel bias, leaky ReLU (0.2), gain sqrt(2); parameter `bias` [channels]."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bias_act(x, self.bias, act="lrelu")


class StyledConv(nn.Module):
    """ModulatedConv2d -> noise -> fused leaky ReLU (keys `conv.*`, `noise.*`, `activate.*`)."""

    def __init__(self, conv: ModulatedConv2d) -> None:
        super().__init__()
        self.conv = conv
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(conv.out_channels)

    def forward(
        self,
        x: torch.Tensor,
        style: torch.Tensor,
        noise: torch.Tensor | None = None,
        randomize: bool = False,
    ) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, style), noise, randomize))


class ToRGB(nn.Module):
    """1x1 modulated conv (no demodulation) to RGB + bias [1, 3, 1, 1], plus the upsampled skip.

    upsample=False (to_rgb1) has no skip input; otherwise the running RGB image is upsampled 2x
    with `upsample` (buffer `upsample.kernel`).
    """

    def __init__(self, in_channels: int, style_dim: int, upsample: bool = True) -> None:
        super().__init__()
        if upsample:
            self.upsample = Upsample()
        self.conv = ModulatedConv2d(in_channels, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(
        self, x: torch.Tensor, style: torch.Tensor, skip: torch.Tensor | None = None
    ) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + self.upsample_skip(skip)
        return out

    def upsample_skip(self, skip: torch.Tensor) -> torch.Tensor:
        return self.upsample(skip)


class ConstantInput(nn.Module):
    """The learned 4x4 input, parameter `input` [1, C, 4, 4]."""

    def __init__(self, channels: int, size: int = 4) -> None:
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))


class Generator(nn.Module):
    """StyleGAN2 generator: `mapping` z -> w, `synthesis` w+ -> image; forward = synthesis.

    Attributes hold the published parameter names (see the module docstring).
    """

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        self.config = config
        c = config.channels_at
        self.style = nn.Sequential(
            PixelNorm(),
            *(
                EqualLinear(
                    config.style_dim, config.style_dim, lr_mul=config.lr_mlp, activation=True
                )
                for _ in range(config.n_mlp)
            ),
        )
        self.input = ConstantInput(c(4))
        self.conv1 = StyledConv(self.make_conv(c(4), c(4), resolution=4, upsample=False))
        self.to_rgb1 = ToRGB(c(4), config.style_dim, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        for log_res in range(3, config.log_size + 1):
            res = 2**log_res
            self.convs.append(StyledConv(self.make_conv(c(res // 2), c(res), res, upsample=True)))
            self.convs.append(StyledConv(self.make_conv(c(res), c(res), res, upsample=False)))
            self.to_rgbs.append(self.make_to_rgb(c(res), res))
        self.noises = nn.Module()
        for i in range(config.num_layers):
            side = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, side, side))

    # -- layer factories (overridden by StyleGANEX) ---------------------------------------------
    def make_conv(self, in_c: int, out_c: int, resolution: int, upsample: bool) -> ModulatedConv2d:
        """The 3x3 modulated conv of the layer at `resolution` (the block's nominal size)."""
        return ModulatedConv2d(in_c, out_c, 3, self.config.style_dim, upsample=upsample)

    def make_to_rgb(self, in_c: int, resolution: int) -> ToRGB:
        return ToRGB(in_c, self.config.style_dim)

    # -- mapping ---------------------------------------------------------------------------------
    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, style_dim] -> w [B, style_dim]."""
        return self.style(z)

    @torch.no_grad()
    def mean_latent(self, n: int = 4096, seed: int = 0) -> torch.Tensor:
        """Average w over n random z [1, style_dim] (the truncation centre)."""
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.config.style_dim, generator=gen).to(self.input.input)
        return self.mapping(z).mean(dim=0, keepdim=True)

    # -- synthesis -------------------------------------------------------------------------------
    def noise_inputs(self, mode: str = "const") -> list[torch.Tensor | None]:
        """Per-layer noise for `synthesize` (the 'random' mode is drawn inside the layers)."""
        if mode not in NOISE_MODES:
            raise ValueError(f"noise mode must be one of {NOISE_MODES}, got {mode!r}")
        if mode == "const":
            return [getattr(self.noises, f"noise_{i}") for i in range(self.config.num_layers)]
        return [None] * self.config.num_layers

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str = "const",
        noises: Sequence[torch.Tensor | None] | None = None,
    ) -> torch.Tensor:
        """ws [B, n_latent, style_dim] -> image [B, 3, size, size] in about [-1, 1].

        noises (one per layer, any size; pooled to the layer) overrides noise_mode.
        """
        x = self.input.input.expand(ws.shape[0], -1, -1, -1)
        return self.synthesize(x, ws, noise_mode, noises)

    def synthesize(
        self,
        x: torch.Tensor,
        ws: torch.Tensor,
        noise_mode: str = "const",
        noises: Sequence[torch.Tensor | None] | None = None,
        fuse: FuseFn | None = None,
    ) -> torch.Tensor:
        """Run conv1 on the first-layer feature x [B, C4, h, w], then every block.

        fuse(j, features, rgb) -> (features, rgb) is called before block j when given.
        Returns the RGB image [B, 3, H, W].
        """
        n_latent = self.config.n_latent
        if ws.ndim != 3 or ws.shape[1:] != (n_latent, self.config.style_dim):
            raise ValueError(
                f"ws must be [B, {n_latent}, {self.config.style_dim}], got {list(ws.shape)}"
            )
        randomize = noises is None and noise_mode == "random"
        noise = list(noises) if noises is not None else self.noise_inputs(noise_mode)
        if len(noise) != self.config.num_layers:
            raise ValueError(f"expected {self.config.num_layers} noise maps, got {len(noise)}")
        out = self.conv1(x, ws[:, 0], noise[0], randomize)
        rgb = self.to_rgb1(out, ws[:, 1])
        for j, to_rgb in enumerate(self.to_rgbs):
            if fuse is not None:
                out, rgb = fuse(j, out, rgb)
            i = 2 * j + 1  # w+ row of the block's first conv; its ToRGB uses i + 2
            out = self.convs[2 * j](out, ws[:, i], noise[i], randomize)
            out = self.convs[2 * j + 1](out, ws[:, i + 1], noise[i + 1], randomize)
            rgb = to_rgb(out, ws[:, i + 2], rgb)
        return rgb


def stylegan2_config_from_state_dict(
    state_dict: dict[str, torch.Tensor], prefix: str = "", lr_mlp: float = 0.01
) -> StyleGAN2Config:
    """StyleGAN2Config read from the weight shapes under `prefix` (e.g. 'decoder.').

    lr_mlp cannot be read from shapes; 0.01 is what every published generator uses.
    Raises KeyError naming the first key that is needed but absent.
    """

    def get(key: str) -> torch.Tensor:
        if prefix + key not in state_dict:
            raise KeyError(prefix + key)
        return state_dict[prefix + key]

    style_dim = int(get("style.1.weight").shape[0])
    n_mlp = 0
    while f"{prefix}style.{n_mlp + 1}.weight" in state_dict:
        n_mlp += 1
    n_blocks = 0
    while f"{prefix}to_rgbs.{n_blocks}.conv.weight" in state_dict:
        n_blocks += 1
    if n_blocks == 0:
        raise KeyError(prefix + "to_rgbs.0.conv.weight")
    channels = [int(get("input.input").shape[1])]
    channels += [int(get(f"convs.{2 * j}.conv.weight").shape[1]) for j in range(n_blocks)]
    return StyleGAN2Config(
        size=2 ** (n_blocks + 2),
        style_dim=style_dim,
        n_mlp=n_mlp,
        channels=tuple(channels),
        lr_mlp=lr_mlp,
    )
