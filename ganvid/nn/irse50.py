"""IR-SE50: the ResNet-50-style face backbone with squeeze-excitation used by pSp, e4e, ReStyle
and StyleGANEX (Deng et al. "ArcFace", Hu et al. "Squeeze-and-Excitation Networks").

Parameter names follow the published checkpoints (`input_layer.*`, `body.N.res_layer.*`,
`body.N.shortcut_layer.*`), so a state dict from those files loads as is after stripping its
prefix (`encoder.`). Widths are constructor arguments so tests can build the same layout
narrower; the published networks use `widths=(64, 128, 256, 512)`.

Layout for a 256x256 input (published widths):

    tap -1  input_layer   64 ch  256x256
    tap  2  body.2        64 ch  128x128   (end of stage 1)
    tap  6  body.6       128 ch   64x64    (end of stage 2)
    tap 20  body.20      256 ch   32x32    (end of stage 3; StyleGANEX also taps 10 and 15)
    tap 23  body.23      512 ch   16x16    (end of stage 4 = `forward` output)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

#: Units per stage of the 50-layer variant.
UNITS_50 = (3, 4, 14, 3)
#: Output channels per stage of the published networks.
WIDTHS_50 = (64, 128, 256, 512)
#: Index of the `input_layer` output in `IRSE50.features(..., taps)`.
INPUT_TAP = -1


class SqueezeExcite(nn.Module):
    """Channel gate: global average pool -> 1x1 conv to C/r -> ReLU -> 1x1 conv back -> sigmoid.

    Keys `fc1.weight` [C/r, C, 1, 1] and `fc2.weight` [C, C/r, 1, 1]; no biases.
    """

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        if channels % reduction != 0:
            raise ValueError(f"SE channels {channels} not divisible by reduction {reduction}")
        self.channels = channels
        self.reduction = reduction
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = x.mean(dim=(2, 3), keepdim=True)
        gate = torch.sigmoid(self.fc2(torch.relu(self.fc1(gate))))
        return x * gate

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction={self.reduction}"


class BottleneckIRSE(nn.Module):
    """One improved-residual unit with SE: out = residual(x) + shortcut(x).

    residual = BN -> conv3x3 -> PReLU -> conv3x3(stride) -> BN -> SE. The shortcut is a 1x1
    conv + BN when the channel count changes, otherwise a parameter-free subsampling by
    `stride` (a 1x1 max-pool, as in the published networks).
    """

    def __init__(self, in_channels: int, depth: int, stride: int) -> None:
        super().__init__()
        self.in_channels, self.depth, self.stride = in_channels, depth, stride
        if in_channels == depth:
            self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channels, depth, 1, stride, bias=False), nn.BatchNorm2d(depth)
            )
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
            SqueezeExcite(depth),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)

    def extra_repr(self) -> str:
        return f"in={self.in_channels}, depth={self.depth}, stride={self.stride}"


class IRSE50(nn.Module):
    """IR-SE backbone: input [B, in_channels, H, W] -> features [B, widths[-1], H/16, W/16].

    Args:
        in_channels: 3 for plain images (StyleGANEX), 6 for ReStyle (image + reconstruction).
        widths: output channels of the four stages (each divisible by 16 for the SE gate).
        units: residual units per stage; (3, 4, 14, 3) is the 50-layer network.
    """

    def __init__(
        self,
        in_channels: int = 3,
        widths: Sequence[int] = WIDTHS_50,
        units: Sequence[int] = UNITS_50,
    ) -> None:
        super().__init__()
        if len(widths) != len(units):
            raise ValueError(f"widths {tuple(widths)} and units {tuple(units)} differ in length")
        self.in_channels = in_channels
        self.widths = tuple(int(w) for w in widths)
        self.units = tuple(int(u) for u in units)
        self.input_layer = nn.Sequential(
            nn.Conv2d(in_channels, self.widths[0], 3, 1, 1, bias=False),
            nn.BatchNorm2d(self.widths[0]),
            nn.PReLU(self.widths[0]),
        )
        blocks = []
        previous = self.widths[0]
        for depth, count in zip(self.widths, self.units, strict=True):
            for i in range(count):
                blocks.append(BottleneckIRSE(previous, depth, stride=2 if i == 0 else 1))
                previous = depth
        self.body = nn.Sequential(*blocks)

    @property
    def out_channels(self) -> int:
        return self.widths[-1]

    @property
    def stage_ends(self) -> tuple[int, ...]:
        """Body indices of the last unit of each stage, e.g. (2, 6, 20, 23)."""
        ends, total = [], 0
        for count in self.units:
            total += count
            ends.append(total - 1)
        return tuple(ends)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, in_channels, H, W] -> [B, widths[-1], H/16, W/16]."""
        self._check_input(x)
        return self.body(self.input_layer(x))

    def features(self, x: torch.Tensor, taps: Sequence[int]) -> list[torch.Tensor]:
        """Intermediate feature maps, in the order of `taps`.

        A tap is a body unit index (0 .. len(body)-1; its output) or `INPUT_TAP` (-1) for the
        input layer's output. Only the units up to the deepest tap are run.
        """
        self._check_input(x)
        wanted = set(taps)
        bad = [t for t in wanted if not INPUT_TAP <= t < len(self.body)]
        if bad:
            raise ValueError(f"taps {sorted(bad)} outside {INPUT_TAP}..{len(self.body) - 1}")
        found: dict[int, torch.Tensor] = {}
        x = self.input_layer(x)
        found[INPUT_TAP] = x
        for index in range(max(wanted) + 1):
            x = self.body[index](x)
            if index in wanted:
                found[index] = x
        return [found[t] for t in taps]

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected [B, {self.in_channels}, H, W], got {list(x.shape)}")

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, widths={self.widths}, units={self.units}"


def irse_config_from_state_dict(
    state_dict: dict[str, torch.Tensor], prefix: str = ""
) -> dict[str, object]:
    """Constructor arguments of the IRSE50 stored under `prefix` (e.g. 'encoder.').

    Returns {'in_channels', 'widths', 'units'} read from the weight shapes: the input conv gives
    in_channels, each unit's first conv gives its depth, consecutive equal depths form a stage.
    """
    stem = state_dict.get(f"{prefix}input_layer.0.weight")
    if stem is None:
        raise KeyError(f"{prefix}input_layer.0.weight")
    depths = []
    while f"{prefix}body.{len(depths)}.res_layer.1.weight" in state_dict:
        depths.append(int(state_dict[f"{prefix}body.{len(depths)}.res_layer.1.weight"].shape[0]))
    if not depths:
        raise KeyError(f"{prefix}body.0.res_layer.1.weight")
    widths, units = [depths[0]], [0]
    for depth in depths:
        if depth != widths[-1]:
            widths.append(depth)
            units.append(0)
        units[-1] += 1
    return {"in_channels": int(stem.shape[1]), "widths": tuple(widths), "units": tuple(units)}
