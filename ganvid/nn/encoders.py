"""ReStyle encoders over StyleGAN3 (Alaluf et al. "ReStyle", ICCV 2021; stylegan3-editing).

Two heads share one IR-SE50 backbone fed with 6 channels (the target image and the current
reconstruction, both at `input_size`, in [-1, 1]):

* `BackboneEncoder` (ReStyle-pSp): style head i gives ws[:, i] directly.
* `ProgressiveBackboneEncoder` (ReStyle-e4e): head 0 gives a base code copied to every slot,
  heads 1.. add per-layer deltas to it.

Either encoder predicts a *residual*: `ReStyleInverter` starts from the generator's average
image and `latent_avg`, and for each iteration adds the encoder's output to the current latent,
renders it and feeds the render (pooled to `input_size`) back in. Everything runs batched over
frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ganvid.nn.irse50 import IRSE50, UNITS_50, WIDTHS_50

#: `opts['encoder_type']` of the published checkpoints -> our short name.
ENCODER_TYPES = {"BackboneEncoder": "psp", "ProgressiveBackboneEncoder": "e4e"}


@dataclass(frozen=True)
class ReStyleEncoderConfig:
    """Shape of a ReStyle encoder. Defaults are the published FFHQ networks.

    kind: 'psp' (BackboneEncoder) or 'e4e' (ProgressiveBackboneEncoder).
    input_size: side of the square input in px; the backbone output is input_size / 16 and
        each head halves it down to 1x1 with log2(input_size / 16) stride-2 convs.
    """

    kind: str = "e4e"
    in_channels: int = 6
    widths: tuple[int, ...] = WIDTHS_50
    units: tuple[int, ...] = UNITS_50
    num_ws: int = 16
    w_dim: int = 512
    input_size: int = 256

    def __post_init__(self) -> None:
        if self.kind not in ("psp", "e4e"):
            raise ValueError(f"encoder kind must be 'psp' or 'e4e', not {self.kind!r}")
        spatial = self.input_size // 2 ** len(self.units)
        if spatial < 1 or spatial & (spatial - 1) or self.input_size % 2 ** len(self.units):
            raise ValueError(f"input_size {self.input_size} must be 2^k * {2 ** len(self.units)}")

    @property
    def feature_size(self) -> int:
        """Side of the backbone's output map (16 for a 256 input)."""
        return self.input_size // 2 ** len(self.units)


class EqualLinear(nn.Module):
    """Linear layer with the weight scaled by 1/sqrt(in_features) at run time (lr_mul 1).

    Keys `weight` [out, in] and `bias` [out], as in the published checkpoints.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = 1.0 / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class StyleHead(nn.Module):
    """Map a [B, C, S, S] feature map to one style vector [B, w_dim] ("GradualStyleBlock").

    log2(S) stride-2 3x3 convs with bias, each followed by LeakyReLU(0.01), bring S down to 1;
    then an EqualLinear. Keys `convs.{0,2,4,..}.{weight,bias}` and `linear.{weight,bias}`.
    """

    def __init__(self, in_channels: int, w_dim: int, spatial: int) -> None:
        super().__init__()
        count = int(math.log2(spatial))
        if 2**count != spatial or count < 1:
            raise ValueError(f"head input size must be a power of two >= 2, got {spatial}")
        self.spatial, self.w_dim = spatial, w_dim
        layers: list[nn.Module] = []
        for i in range(count):
            layers += [nn.Conv2d(in_channels if i == 0 else w_dim, w_dim, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(w_dim, w_dim)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.convs(features)
        return self.linear(x.reshape(x.shape[0], self.w_dim))

    def extra_repr(self) -> str:
        return f"spatial={self.spatial}, w_dim={self.w_dim}"


class BackboneEncoder(IRSE50):
    """ReStyle-pSp: x [B, in_channels, S, S] -> ws offsets [B, num_ws, w_dim], head i -> slot i.

    An IR-SE50 with style heads on top, so the keys are the published ones: `input_layer.*`,
    `body.*`, `styles.{i}.*`.
    """

    def __init__(self, config: ReStyleEncoderConfig) -> None:
        super().__init__(config.in_channels, config.widths, config.units)
        self.config = config
        self.styles = nn.ModuleList(
            StyleHead(config.widths[-1], config.w_dim, config.feature_size)
            for _ in range(config.num_ws)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = self.config.input_size
        if x.shape[-2:] != (size, size):
            raise ValueError(f"encoder input must be {size}x{size}, got {list(x.shape)}")
        features = super().forward(x)
        return self.combine([head(features) for head in self.styles])

    def combine(self, styles: list[torch.Tensor]) -> torch.Tensor:
        """Per-head vectors [B, w_dim] x num_ws -> [B, num_ws, w_dim]."""
        return torch.stack(styles, dim=1)


class ProgressiveBackboneEncoder(BackboneEncoder):
    """ReStyle-e4e: head 0 gives a base code for every slot; heads 1.. add deltas to slots 1..

    Inference uses all deltas (the progressive training stage is not stored in checkpoints).
    """

    def combine(self, styles: list[torch.Tensor]) -> torch.Tensor:
        base = styles[0].unsqueeze(1).expand(-1, len(styles), -1)
        deltas = torch.stack([torch.zeros_like(styles[0]), *styles[1:]], dim=1)
        return base + deltas


def build_encoder(config: ReStyleEncoderConfig) -> BackboneEncoder:
    """The encoder class for `config.kind`, with fresh (random) weights."""
    if config.kind == "e4e":
        return ProgressiveBackboneEncoder(config)
    return BackboneEncoder(config)


@dataclass
class InversionResult:
    """Output of `ReStyleInverter.invert` for a batch of B images.

    ws: final W+ latents [B, num_ws, w_dim] (float32).
    images: final renders [B, 3, R, R] in [-1, 1] at the generator's resolution (with the
        given transforms, identity otherwise), or None when not asked for.
    ws_steps / images_steps: per-iteration latents and identity-transform renders
        (kept only with keep_steps=True; images_steps holds renders at the generator's size).
    """

    ws: torch.Tensor
    images: torch.Tensor | None = None
    ws_steps: list[torch.Tensor] = field(default_factory=list)
    images_steps: list[torch.Tensor] = field(default_factory=list)


class ReStyleInverter(nn.Module):
    """Iterative ReStyle inversion of aligned faces into a StyleGAN3 generator's W+.

    Args:
        encoder: BackboneEncoder or ProgressiveBackboneEncoder (in_channels 6).
        generator: StyleGAN3 `Generator` with `synthesis(ws, transform=...)` and `num_ws`.
        latent_avg: [w_dim] starting latent (the checkpoint's `latent_avg`, i.e. w_avg).
        n_iters: refinement iterations (3 in the published setup).
    """

    def __init__(
        self,
        encoder: BackboneEncoder,
        generator: nn.Module,
        latent_avg: torch.Tensor,
        n_iters: int = 3,
    ) -> None:
        super().__init__()
        config = encoder.config
        if config.in_channels != 6:
            raise ValueError(f"a ReStyle encoder takes 6 input channels, not {config.in_channels}")
        num_ws = _num_ws(generator)
        if num_ws != config.num_ws:
            raise ValueError(f"encoder predicts {config.num_ws} ws, generator needs {num_ws}")
        if latent_avg.shape != (config.w_dim,):
            raise ValueError(f"latent_avg must be [{config.w_dim}], got {list(latent_avg.shape)}")
        if n_iters < 1:
            raise ValueError(f"n_iters must be >= 1, got {n_iters}")
        self.encoder = encoder
        self.generator = generator
        self.register_buffer("latent_avg", latent_avg.detach().float().clone())
        self.n_iters = n_iters
        self._average_image: torch.Tensor | None = None

    @property
    def input_size(self) -> int:
        return self.encoder.config.input_size

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Images [B, 3, H, W] in [-1, 1] -> [B, 3, S, S], S = input_size (bilinear, antialiased
        when shrinking, like the PIL resize of the reference)."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"expected images [B, 3, H, W], got {list(images.shape)}")
        size = self.input_size
        if images.shape[-2:] == (size, size):
            return images
        return F.interpolate(images, (size, size), mode="bilinear", antialias=True)

    def pool(self, images: torch.Tensor) -> torch.Tensor:
        """Renders [B, 3, R, R] -> [B, 3, S, S] by adaptive average pooling (4x4 block mean for
        1024 -> 256), which is how reconstructions are fed back to the encoder."""
        return F.adaptive_avg_pool2d(images, (self.input_size, self.input_size))

    def render(self, ws: torch.Tensor, transforms: torch.Tensor | None = None) -> torch.Tensor:
        """ws [B, num_ws, w_dim] -> images [B, 3, R, R] in about [-1, 1].

        transforms: [3, 3] or [B, 3, 3] for `synthesis.input.transform`; identity when None.
        """
        if transforms is None:
            transforms = torch.eye(3, device=ws.device, dtype=torch.float32)
        return self.generator.synthesis(ws, transform=transforms, force_fp32=True)

    def start_latent(self, batch: int) -> torch.Tensor:
        """latent_avg broadcast to every slot: [batch, num_ws, w_dim]."""
        return self.latent_avg.expand(batch, self.encoder.config.num_ws, -1).clone()

    def average_image(self) -> torch.Tensor:
        """The average face at input_size: [1, 3, S, S]. Rendered once and cached (create a new
        inverter when the generator changes)."""
        if self._average_image is None or self._average_image.device != self.latent_avg.device:
            with torch.no_grad():
                self._average_image = self.pool(self.render(self.start_latent(1))).float()
        return self._average_image

    def refine(self, x: torch.Tensor, previous: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
        """One ReStyle step: ws + encoder(cat(x, previous)).

        x, previous: [B, 3, S, S] (target and the current reconstruction at input_size).
        ws: [B, num_ws, w_dim] current latent -> the refined latent, same shape.
        """
        return ws + self.encoder(torch.cat([x, previous.expand_as(x)], dim=1))

    @torch.no_grad()
    def invert(
        self,
        images: torch.Tensor,
        n_iters: int | None = None,
        transforms: torch.Tensor | None = None,
        return_images: bool = True,
        keep_steps: bool = False,
    ) -> InversionResult:
        """Invert a batch of aligned faces.

        images: [B, 3, H, W] in [-1, 1] (any H, W; resized to input_size).
        transforms: optional [3, 3] / [B, 3, 3] input transforms for the FINAL render only
            (feedback between iterations always uses the aligned, identity render).
        Returns the final ws [B, num_ws, w_dim]; the last render is skipped unless
        return_images or keep_steps asks for it.
        """
        n_iters = self.n_iters if n_iters is None else n_iters
        if n_iters < 1:
            raise ValueError(f"n_iters must be >= 1, got {n_iters}")
        x = self.preprocess(images.to(self.latent_avg.device, torch.float32))
        previous = self.average_image()
        ws = self.start_latent(x.shape[0])
        result = InversionResult(ws=ws)
        for step in range(n_iters):
            ws = self.refine(x, previous, ws)
            last = step == n_iters - 1
            aligned = None
            if not last or keep_steps or (return_images and transforms is None):
                aligned = self.render(ws)
            if keep_steps:
                result.ws_steps.append(ws)
                result.images_steps.append(aligned)
            if not last:
                previous = self.pool(aligned)
            elif return_images:
                result.images = aligned if transforms is None else self.render(ws, transforms)
        result.ws = ws
        return result


def _num_ws(generator: nn.Module) -> int:
    for owner in (generator, getattr(generator, "synthesis", None)):
        if owner is not None and hasattr(owner, "num_ws"):
            return int(owner.num_ws)
    raise ValueError("generator has no num_ws attribute")
