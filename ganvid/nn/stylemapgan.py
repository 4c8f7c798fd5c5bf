"""StyleMapGAN (Kim et al. "Exploiting Spatial Dimensions of Latent in GAN for Real-time Image
Editing", CVPR 2021): a generator whose latent is a *stylemap* with spatial dimensions, and an
encoder that maps an image to that stylemap in one forward pass.

Parameter names follow the published checkpoints (`g_ema`, `e_ema` of naver-ai/StyleMapGAN), so
their state dicts load as they are:

    generator (g_ema)
      mapping_z.{1..8}             z [N, C] -> stylemap [N, C, S, S] (mapping_z.0 = PixelNorm)
      decoder.input.input          learned constant [1, c(S), S, S]
      decoder.convs_latent.{i}     the stylemap resizer: one layer code per modulated layer
      decoder.conv1                modulated 3x3 conv at S
      decoder.convs.{j}            residual blocks S -> 2S -> ... -> size
      decoder.to_rgb               modulated 1x1 conv to RGB (with the activation)
    encoder (e_ema)
      from_rgb, convs.{k}, final_conv   image [N, 3, size, size] -> stylemap [N, C, S, S]

Published configurations: 256 px with an 8x8x64 stylemap (12 layer codes), and the 1024 px
"light" generator with a 16x16x64 stylemap (14 codes, every code 64 channels).

Modulation is spatially variant and acts on the activations, not on the weights: each modulated
conv normalises its input over (C, H, W) per sample (LayerNorm, no affine), multiplies by
gamma = conv3x3(code) and adds beta = conv3x3(code), both at the input's resolution, then runs an
ordinary conv with the shared weight. There is no noise: the image is a deterministic function
of the stylemap. Images are float RGB in about [-1, 1], NCHW, not clamped.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganvid.nn.stylegan2 import (
    Blur,
    ConstantInput,
    EqualLinear,
    FusedLeakyReLU,
    PixelNorm,
    rosinality_channels,
)

#: Channels of every layer code in the light generator (`small_generator`).
LIGHT_CODE_CHANNELS = 64
#: The only feature normalisation every published model uses (train.py's default).
NORMALIZE_MODES = ("LayerNorm",)
LAYER_NORM_EPS = 1e-5
#: train_args fields that shape the networks (the rest are training settings).
NETWORK_FIELDS = (
    "size",
    "latent_channel_size",
    "latent_spatial_size",
    "mapping_layer_num",
    "lr_mul",
    "channel_multiplier",
    "normalize_mode",
    "small_generator",
)


@dataclass(frozen=True)
class StyleMapGANConfig:
    """Shape of a StyleMapGAN generator and encoder.

    size: image side in px. latent_channels (C): stylemap channels, also the size of z.
    latent_spatial (S): stylemap side. mapping_layers: linear layers of mapping_z. lr_mul: its
    learning-rate multiplier. small_generator: the light resizer (every code 64 channels).
    channels: feature channels per resolution 4, 8, ..., size (`rosinality_channels`; the
    published table for channel_multiplier 2; tests pass narrower ones).
    """

    size: int = 256
    latent_channels: int = 64
    latent_spatial: int = 8
    mapping_layers: int = 8
    lr_mul: float = 0.01
    small_generator: bool = False
    normalize_mode: str = "LayerNorm"
    channels: tuple[int, ...] = field(default_factory=lambda: rosinality_channels(256))

    def __post_init__(self) -> None:
        for name, value in (("size", self.size), ("latent_spatial_size", self.latent_spatial)):
            if value < 4 or 2 ** int(math.log2(value)) != value:
                raise ValueError(f"{name} must be a power of two >= 4, got {value}")
        if self.latent_spatial >= self.size:
            raise ValueError(
                f"the stylemap ({self.latent_spatial}) must be smaller than the image ({self.size})"
            )
        if len(self.channels) != int(math.log2(self.size)) - 1:
            raise ValueError(f"channels must list resolutions 4..{self.size}, got {self.channels}")
        if self.normalize_mode not in NORMALIZE_MODES:
            raise ValueError(
                f"normalize_mode {self.normalize_mode!r} is not supported (only LayerNorm, which "
                "every published model uses)"
            )
        if self.mapping_layers < 1 or self.latent_channels < 1:
            raise ValueError("mapping_layer_num and latent_channel_size must be positive")

    @classmethod
    def from_train_args(
        cls, train_args: argparse.Namespace | Mapping[str, Any], channels: Sequence[int] | None
    ) -> StyleMapGANConfig:
        """The config of a checkpoint's `train_args` (a Namespace or a dict of its fields).

        channels: the widths per resolution when known from the weights; None = the table for
        the stored channel_multiplier. KeyError names a missing field.
        """
        args = vars(train_args) if isinstance(train_args, argparse.Namespace) else train_args
        missing = [name for name in NETWORK_FIELDS if name not in args]
        if missing:
            raise KeyError(", ".join(missing))
        size = int(args["size"])
        if channels is None:
            channels = rosinality_channels(size, int(args["channel_multiplier"]))
        return cls(
            size=size,
            latent_channels=int(args["latent_channel_size"]),
            latent_spatial=int(args["latent_spatial_size"]),
            mapping_layers=int(args["mapping_layer_num"]),
            lr_mul=float(args["lr_mul"]),
            small_generator=bool(args["small_generator"]),
            normalize_mode=str(args["normalize_mode"]),
            channels=tuple(int(c) for c in channels),
        )

    def channels_at(self, resolution: int) -> int:
        return self.channels[int(math.log2(resolution)) - 2]

    def code_channels_at(self, resolution: int) -> int:
        """Channels of the layer codes at `resolution`."""
        return LIGHT_CODE_CHANNELS if self.small_generator else self.channels_at(resolution)

    @property
    def n_blocks(self) -> int:
        """Synthesis blocks (= encoder down-blocks): log2(size / S)."""
        return int(math.log2(self.size // self.latent_spatial))

    @property
    def n_codes(self) -> int:
        """Layer codes: 2 + 2 log2(size / S) (12 at 256/8x8, 14 at 1024/16x16)."""
        return 2 + 2 * self.n_blocks

    def code_resolutions(self) -> tuple[int, ...]:
        """Side of each layer code: S, S, 2S, 2S, ..., size, size."""
        return tuple(self.latent_spatial * 2 ** (i // 2) for i in range(self.n_codes))

    def stylemap_shape(self) -> tuple[int, int, int]:
        return (self.latent_channels, self.latent_spatial, self.latent_spatial)


# ----------------------------------------------------------------------------- building blocks


class EqualConv2d(nn.Module):
    """Conv with equalised learning rate: stored weight [out, in, k, k] ~ N(0, 1), used times
    1/sqrt(in k^2); zero padding `padding` (default k // 2); optional bias [out]."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = False,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.stride = stride
        self.padding = kernel_size // 2 if padding is None else padding
        self.bias = nn.Parameter(torch.full((out_channels,), float(bias_init))) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(
            x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding
        )

    def extra_repr(self) -> str:
        out_c, in_c, k, _ = self.weight.shape
        return f"{in_c}, {out_c}, k={k}, stride={self.stride}, bias={self.bias is not None}"


class EqualConvTranspose2d(nn.Module):
    """The upsampling half of an upsampling conv: a stride-2 transposed conv (no padding) whose
    stored weight [out, in, k, k] is used with its first two axes swapped, times 1/sqrt(in k^2).
    Output 2H + k - 2; the blur that follows brings it to exactly 2H."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose2d(x, (self.weight * self.scale).transpose(0, 1), stride=2)

    def extra_repr(self) -> str:
        out_c, in_c, k, _ = self.weight.shape
        return f"{in_c}, {out_c}, k={k}, stride=2"


def up_blur(kernel_size: int) -> Blur:
    """The blur after a stride-2 transposed conv of `kernel_size` (gain 4, output exactly 2H)."""
    return Blur(pad=(1, 1) if kernel_size == 3 else (2, 2), gain=4.0)


def down_blur(kernel_size: int) -> Blur:
    """The blur before a stride-2 conv of `kernel_size` (output exactly H/2)."""
    return Blur(pad=(2, 2) if kernel_size == 3 else (1, 1))


def conv_layer(
    in_c: int, out_c: int, resample: str = "none", kernel_size: int = 3
) -> nn.Sequential:
    """conv + fused leaky ReLU, as an indexed Sequential (the published key layout):
    none `0.weight, 1.bias`; up `0.weight, 1.kernel, 2.bias`; down `0.kernel, 1.weight, 2.bias`.
    """
    if resample == "up":
        layers = [EqualConvTranspose2d(in_c, out_c, kernel_size), up_blur(kernel_size)]
    elif resample == "down":
        layers = [down_blur(kernel_size), EqualConv2d(in_c, out_c, kernel_size, 2, padding=0)]
    else:
        layers = [EqualConv2d(in_c, out_c, kernel_size)]
    return nn.Sequential(*layers, FusedLeakyReLU(out_c))


class SpatiallyModulatedConv2d(nn.Module):
    """LayerNorm(x) * gamma(code) + beta(code), then a conv with the shared weight.

    weight [1, out, in, k, k] (the leading 1 is the published layout), used times 1/sqrt(in k^2);
    gamma, beta: 3x3 convs code_channels -> in with bias (gamma's starts at 1). The code has the
    input's resolution. upsample: the conv is a stride-2 transposed conv followed by `blur`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        code_channels: int,
        upsample: bool = False,
    ) -> None:
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.upsample = kernel_size, upsample
        self.weight = nn.Parameter(
            torch.randn(1, out_channels, in_channels, kernel_size, kernel_size)
        )
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.gamma = EqualConv2d(code_channels, in_channels, 3, bias=True, bias_init=1.0)
        self.beta = EqualConv2d(code_channels, in_channels, 3, bias=True)
        if upsample:
            self.blur = up_blur(kernel_size)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """x [N, in, H, W], code [N, code_channels, H, W] -> [N, out, H', W'] (H' = 2H if up)."""
        if code.shape[-2:] != x.shape[-2:] or code.shape[0] != x.shape[0]:
            raise ValueError(
                f"layer code {list(code.shape)} does not match the features {list(x.shape)}"
            )
        x = F.layer_norm(x, x.shape[1:], eps=LAYER_NORM_EPS)
        x = x * self.gamma(code) + self.beta(code)
        weight = self.weight[0] * self.scale
        if self.upsample:
            return self.blur(F.conv_transpose2d(x, weight.transpose(0, 1), stride=2))
        return F.conv2d(x, weight, padding=self.kernel_size // 2)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, "
            f"upsample={self.upsample}"
        )


class ModulatedLayer(nn.Module):
    """SpatiallyModulatedConv2d then the fused leaky ReLU (keys `conv.*`, `activate.bias`)."""

    def __init__(self, conv: SpatiallyModulatedConv2d) -> None:
        super().__init__()
        self.conv = conv
        self.activate = FusedLeakyReLU(conv.out_channels)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        return self.activate(self.conv(x, code))


class SynthesisBlock(nn.Module):
    """r/2 -> r: modulated upsampling conv (code at r/2), modulated conv (code at r), and a 1x1
    upsampling skip without bias or activation; output (main + skip) / sqrt 2."""

    def __init__(self, in_c: int, out_c: int, code_in: int, code_out: int) -> None:
        super().__init__()
        self.conv1 = ModulatedLayer(SpatiallyModulatedConv2d(in_c, out_c, 3, code_in, True))
        self.conv2 = ModulatedLayer(SpatiallyModulatedConv2d(out_c, out_c, 3, code_out))
        self.skip = nn.Sequential(EqualConvTranspose2d(in_c, out_c, 1), up_blur(1))

    def forward(self, x: torch.Tensor, code_low: torch.Tensor, code_high: torch.Tensor):
        out = self.conv2(self.conv1(x, code_low), code_high)
        return (out + self.skip(x)) / math.sqrt(2.0)


class Decoder(nn.Module):
    """The stylemap resizer (`convs_latent`) and the synthesis network."""

    def __init__(self, config: StyleMapGANConfig) -> None:
        super().__init__()
        self.config = config
        c, code_c, s = config.channels_at, config.code_channels_at, config.latent_spatial
        self.input = ConstantInput(c(s), size=s)
        self.conv1 = ModulatedLayer(SpatiallyModulatedConv2d(c(s), c(s), 3, code_c(s)))
        self.convs = nn.ModuleList()
        self.convs_latent = nn.ModuleList(
            [conv_layer(config.latent_channels, code_c(s)), conv_layer(code_c(s), code_c(s))]
        )
        res = s
        for _ in range(config.n_blocks):
            res *= 2
            self.convs.append(SynthesisBlock(c(res // 2), c(res), code_c(res // 2), code_c(res)))
            self.convs_latent.append(conv_layer(code_c(res // 2), code_c(res), "up"))
            self.convs_latent.append(conv_layer(code_c(res), code_c(res)))
        size = config.size
        self.to_rgb = ModulatedLayer(SpatiallyModulatedConv2d(c(size), 3, 1, code_c(size)))

    def layer_codes(self, stylemap: torch.Tensor) -> list[torch.Tensor]:
        """stylemap [N, C, S, S] -> the n_codes layer codes (see `StyleMapGANConfig`), each the
        previous one through the next resizer layer."""
        codes, x = [], stylemap
        for layer in self.convs_latent:
            x = layer(x)
            codes.append(x)
        return codes

    def synthesis(self, codes: Sequence[torch.Tensor]) -> torch.Tensor:
        """Layer codes -> image [N, 3, size, size]. Code 0: conv1; codes 2j+1, 2j+2: block j;
        the last: to_rgb."""
        if len(codes) != self.config.n_codes:
            raise ValueError(f"expected {self.config.n_codes} layer codes, got {len(codes)}")
        x = self.input.input.expand(codes[0].shape[0], -1, -1, -1)
        x = self.conv1(x, codes[0])
        for j, block in enumerate(self.convs):
            x = block(x, codes[2 * j + 1], codes[2 * j + 2])
        return self.to_rgb(x, codes[-1])


class Generator(nn.Module):
    """StyleMapGAN generator: `mapping` z -> stylemap, `layer_codes`, `synthesis`;
    forward(stylemap) = synthesis(layer_codes(stylemap))."""

    def __init__(self, config: StyleMapGANConfig) -> None:
        super().__init__()
        self.config = config
        c, s = config.latent_channels, config.latent_spatial
        layers: list[nn.Module] = [PixelNorm()]
        for i in range(config.mapping_layers):
            out = c * s * s if i == config.mapping_layers - 1 else c
            layers.append(EqualLinear(c, out, lr_mul=config.lr_mul, activation=True))
        self.mapping_z = nn.Sequential(*layers)
        self.decoder = Decoder(config)

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z [N, C] -> stylemap [N, C, S, S] (the flat output read channel-major)."""
        if z.ndim != 2 or z.shape[1] != self.config.latent_channels:
            raise ValueError(f"z must be [N, {self.config.latent_channels}], got {list(z.shape)}")
        return self.mapping_z(z).reshape(-1, *self.config.stylemap_shape())

    @torch.no_grad()
    def mean_stylemap(
        self, n: int = 5000, batch: int = 16, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """The truncation centre [1, C, S, S]: the mean of the batch means of `mapping` over n
        random z in batches of `batch` (the official 312 batches of 16 for n = 5000)."""
        device = self.input_device
        means = []
        for _ in range(max(1, n // batch)):
            z = torch.randn(batch, self.config.latent_channels, generator=generator)
            means.append(self.mapping(z.to(device)).mean(dim=0))
        return torch.stack(means).mean(dim=0, keepdim=True)

    @property
    def input_device(self) -> torch.device:
        return self.decoder.input.input.device

    def layer_codes(self, stylemap: torch.Tensor) -> list[torch.Tensor]:
        shape = tuple(stylemap.shape[1:])
        if stylemap.ndim != 4 or shape != self.config.stylemap_shape():
            raise ValueError(
                f"stylemap must be [N, {', '.join(map(str, self.config.stylemap_shape()))}], "
                f"got {list(stylemap.shape)}"
            )
        return self.decoder.layer_codes(stylemap)

    def synthesis(self, codes: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.decoder.synthesis(codes)

    def forward(self, stylemap: torch.Tensor) -> torch.Tensor:
        """stylemap [N, C, S, S] -> image [N, 3, size, size] in about [-1, 1]."""
        return self.synthesis(self.layer_codes(stylemap))


class DownBlock(nn.Module):
    """r -> r/2: conv 3x3 (in -> in), blur + stride-2 conv 3x3 (in -> out), each activated, plus
    a blurred stride-2 1x1 skip without bias; output (main + skip) / sqrt 2."""

    def __init__(self, in_c: int, out_c: int) -> None:
        super().__init__()
        self.conv1 = conv_layer(in_c, in_c)
        self.conv2 = conv_layer(in_c, out_c, "down")
        self.skip = nn.Sequential(down_blur(1), EqualConv2d(in_c, out_c, 1, 2, padding=0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2.0)


class Encoder(nn.Module):
    """Image [N, 3, size, size] in [-1, 1] -> stylemap [N, C, S, S] (one forward pass, no
    normalisation layers, so every sample is independent of the batch)."""

    def __init__(self, config: StyleMapGANConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels_at
        self.from_rgb = conv_layer(3, c(config.size), kernel_size=1)
        self.convs = nn.ModuleList()
        res = config.size
        while res > config.latent_spatial:
            self.convs.append(DownBlock(c(res), c(res // 2)))
            res //= 2
        self.final_conv = conv_layer(c(config.latent_spatial), config.latent_channels)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        size = self.config.size
        if images.ndim != 4 or tuple(images.shape[1:]) != (3, size, size):
            raise ValueError(f"images must be [N, 3, {size}, {size}], got {list(images.shape)}")
        x = self.from_rgb(images)
        for block in self.convs:
            x = block(x)
        return self.final_conv(x)
