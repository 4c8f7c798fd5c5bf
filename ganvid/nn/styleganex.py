"""StyleGANEX (Yang et al. "StyleGANEX: StyleGAN-Based Manipulation Beyond Cropped Aligned
Faces", ICCV 2023): a StyleGAN2 whose first layer takes a spatial feature f instead of the 4x4
constant, so it renders whole unaligned frames of any size that is a multiple of 8.

Generator changes (`StyleGANEXGenerator`, same parameters as StyleGAN2, so a stock `g_ema`
loads): f sits at the nominal 32 px scale; the seven shallow convs keep f's size and see the
scene as the plain network would at 4, 8, 16 and 32 px by dilation: conv1 8; blocks 8/16/32
upsampling convs 8/4/2 and plain convs 4/2/1. An upsampling conv of dilation d becomes a
size-keeping pair of transposed convs: the fixed blur [1,2,1]x[1,2,1]/16 (dilation d/2), then
the modulated 3x3 weight (dilation d/2, padding d); the ToRGB skips of those blocks blur the RGB
with the same kernel (dilation d/2). Real 2x upsampling starts at the 64 px block, so the image
is 32x f. With f = the constant repeated 8x (nearest), the output equals plain StyleGAN2's.

Encoder (`StyleGANEXEncoder`, pSp's GradualStyleEncoder on IR-SE50, keys `encoder.*`): 18 style
heads give w+ from the aligned 256x256 face; `featlayer` maps body units 10, 15, 20 (H/8) to f;
with skip fusion (`use_skip`, the paper's l = `skip_max_layer`), `fusion.{j}` mixes encoder
features [c2, c2, c22, c21, c1, c128, c256] into the decoder before block j, optionally gated by
an attention mask conditioned on the editing vector (`use_att`).

Public inference API (images are float NCHW in [-1, 1]):

    model.encode_wplus(aligned)            -> w+ [B, 18, 512]     (latent_avg added)
    model.encode_features(crop)            -> FrameFeatures (f [B, 512, H/8, W/8], skips)
    model.encode(crop, aligned)            -> (w+, FrameFeatures)
    model.decode(wplus, features, editing_w=None, noise_mode="none") -> image [B, 3, 4H, 4W]
    model.run(crop, aligned, editing_w="checkpoint", scale=1.0)      -> clamped image
    snap_size(h, w) / check_input_size(h, w) / output_size(h, w)

Editing sign convention (as the official `video_editing.py`): the decoder adds
`scale * editing_w` to every w+ row and feeds the same vector to the fusion attention; a positive
scale applies a checkpoint's stored direction as it was trained. (The official web demo negates
it; we do not.) editing_w=None (attention off) differs from a zero vector (attention on).

Why one file of ~630 lines: generator changes, encoder, fusion and the inference API are one
published model whose checkpoint keys span all of them; split, no part could be loaded or
checked alone. (Step-II optimisation lives in `ganvid.pipeline.styleganex_still`, loaders in
`ganvid.nn.styleganex_checkpoints`.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ganvid.errors import InputError
from ganvid.nn.encoders import StyleHead
from ganvid.nn.irse50 import INPUT_TAP, IRSE50, UNITS_50, WIDTHS_50
from ganvid.nn.stylegan2 import (
    FuseFn,
    Generator,
    ModulatedConv2d,
    StyleGAN2Config,
    ToRGB,
    transposed_layout,
)

#: Encoder input sides must be multiples of this (f is 1/8 of the input).
SIZE_MULTIPLE = 8
#: Nominal side of f: it replaces the plain generator's 32 px feature map.
F_NOMINAL_SIDE = 32
#: Body units whose outputs (all at H/8) are concatenated into f.
F_TAPS = (10, 15, 20)
#: Encoder features fed to fusion layer j, as taps: c2, c2, c22, c21, c1, c128, c256.
SKIP_TAPS = (20, 20, 15, 10, 6, 2, INPUT_TAP)
#: Taps of the w+ heads: c1 (H/4), c2 (H/8), c3 (H/16).
STYLE_TAPS = (6, 20, 23)
#: Heads [0, 3) read c3, [3, 7) the first FPN level, [7, n_styles) the second.
COARSE_END, MIDDLE_END = 3, 7
MAX_FUSION_LAYERS = 7


def blur3_weight() -> torch.Tensor:
    """The fixed [1,2,1] x [1,2,1] / 16 kernel of the dilated upsampling, [1, 1, 3, 3]."""
    k = torch.tensor([1.0, 2.0, 1.0])
    return (torch.outer(k, k) / 16.0)[None, None]


def depthwise_blur3(x: torch.Tensor, kernel: torch.Tensor, dilation: int, padding: int):
    """Blur every channel of x [B, C, H, W] with the 3x3 kernel [1, 1, 3, 3] at `dilation`."""
    channels = x.shape[1]
    return F.conv2d(
        x, kernel.expand(channels, 1, 3, 3), padding=padding, dilation=dilation, groups=channels
    )


def shallow_dilation(resolution: int, upsample: bool) -> int:
    """Dilation of the conv (or ToRGB skip) at a block's nominal resolution.

    conv1 (4 px): 8; upsampling conv / ToRGB of block r: 64 / r; second conv of block r: 32 / r;
    1 from the 64 px block on.
    """
    return max(1, (2 * F_NOMINAL_SIDE if upsample else F_NOMINAL_SIDE) // resolution)


class DilatedModulatedConv2d(ModulatedConv2d):
    """ModulatedConv2d that keeps the feature size, emulating its plain version by dilation.

    dilation 1 is exactly the plain layer. An upsampling layer with dilation d > 1 holds the
    buffer `blur_weight` [1, 1, 3, 3] (as in the published checkpoints).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        style_dim: int,
        upsample: bool,
        dilation: int,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, style_dim, upsample=upsample)
        if dilation > 1 and dilation % 2:
            raise ValueError(f"dilation must be 1 or even, got {dilation}")
        self.dilation = dilation
        if upsample and dilation > 1:
            self.register_buffer("blur_weight", blur3_weight())

    def convolve(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if self.dilation == 1:
            return super().convolve(x, weight)
        batch, d = x.shape[0], self.dilation
        if self.upsample:
            # The plain layer's stride-2 transposed conv + [1,3,3,1] blur, on a grid where every
            # plain pixel is d/2 samples wide: blur (grows by d), then a transposed conv that
            # shrinks back by d.
            x = depthwise_blur3(x, self.blur_weight, dilation=d // 2, padding=d)
            x = x.reshape(1, -1, *x.shape[2:])
            out = F.conv_transpose2d(
                x, transposed_layout(weight), padding=d, dilation=d // 2, groups=batch
            )
        else:
            x = x.reshape(1, -1, *x.shape[2:])
            kernel = weight.reshape(-1, *weight.shape[2:])
            out = F.conv2d(x, kernel, padding=d * (self.kernel_size // 2), dilation=d, groups=batch)
        return out.reshape(batch, self.out_channels, *out.shape[2:])

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, dilation={self.dilation}"


class DilatedToRGB(ToRGB):
    """ToRGB whose skip 'upsampling' at dilation d > 1 is a size-keeping dilated blur
    (buffer `blur_weight`)."""

    def __init__(self, in_channels: int, style_dim: int, dilation: int) -> None:
        super().__init__(in_channels, style_dim, upsample=True)
        self.dilation = dilation
        if dilation > 1:
            self.register_buffer("blur_weight", blur3_weight())

    def upsample_skip(self, skip: torch.Tensor) -> torch.Tensor:
        if self.dilation == 1:
            return super().upsample_skip(skip)
        half = self.dilation // 2
        return depthwise_blur3(skip, self.blur_weight, dilation=half, padding=half)


class StyleGANEXGenerator(Generator):
    """StyleGAN2 with a spatial first-layer input f (keys identical to StyleGAN2 plus the
    constant `blur_weight` buffers)."""

    def make_conv(self, in_c: int, out_c: int, resolution: int, upsample: bool) -> ModulatedConv2d:
        dilation = shallow_dilation(resolution, upsample)
        return DilatedModulatedConv2d(in_c, out_c, 3, self.config.style_dim, upsample, dilation)

    def make_to_rgb(self, in_c: int, resolution: int) -> ToRGB:
        return DilatedToRGB(in_c, self.config.style_dim, shallow_dilation(resolution, True))

    @property
    def upscale(self) -> int:
        """Output side / f side (32 for the 1024 px generator)."""
        return self.config.size // F_NOMINAL_SIDE

    def forward(
        self,
        ws: torch.Tensor,
        f: torch.Tensor | None = None,
        noise_mode: str = "none",
        noises: list[torch.Tensor | None] | None = None,
        fuse: FuseFn | None = None,
    ) -> torch.Tensor:
        """ws [B, n_latent, style_dim], f [B, C4, h, w] -> image [B, 3, h*upscale, w*upscale].

        f None: the learned 4x4 constant repeated to 32x32, i.e. the plain StyleGAN2 image.
        """
        if f is None:
            f = F.adaptive_avg_pool2d(self.input.input, F_NOMINAL_SIDE)
            f = f.expand(ws.shape[0], -1, -1, -1)
        elif f.ndim != 4 or f.shape[1] != self.config.channels[0]:
            raise ValueError(f"f must be [B, {self.config.channels[0]}, h, w], got {list(f.shape)}")
        return self.synthesize(f, ws, noise_mode, noises, fuse)


# --------------------------------------------------------------------------------------------
# Encoder
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncoderConfig:
    """Shape and switches of the StyleGANEX encoder; defaults are the published networks.

    widths/units: IR-SE50 stages (units must be the 50-layer (3, 4, 14, 3): f taps 10/15/20).
    style_dim: w size (head width). f_channels: channels of f (the decoder's 4 px channels).
    decoder_channels: decoder feature channels entering blocks 0..6 (fusion outputs).
    use_skip / skip_max_layer (paper's l) / use_skip_torgb / use_att: skip fusion options as
    stored in the checkpoint's opts; use_att is the number of hidden layers of the attention MLP
    (0 = no attention). max_pooling: heads max-pool instead of average-pool.
    """

    widths: tuple[int, ...] = WIDTHS_50
    units: tuple[int, ...] = UNITS_50
    n_styles: int = 18
    style_dim: int = 512
    f_channels: int = 512
    decoder_channels: tuple[int, ...] = (512, 512, 512, 512, 512, 256, 128)
    max_pooling: bool = False
    use_skip: bool = False
    skip_max_layer: int = 7
    use_skip_torgb: bool = False
    use_att: int = 0

    def __post_init__(self) -> None:
        if tuple(self.units) != UNITS_50:
            raise ValueError(f"StyleGANEX needs the IR-SE50 units {UNITS_50}, got {self.units}")
        if len(self.widths) != 4:
            raise ValueError(f"widths must give 4 stages, got {self.widths}")
        if self.use_skip and len(self.decoder_channels) < self.n_fusion:
            raise ValueError(f"decoder_channels must cover {self.n_fusion} fusion layers")

    @property
    def n_fusion(self) -> int:
        """Number of fusion layers (blocks 0..n_fusion-1 receive encoder features)."""
        if not self.use_skip:
            return 0
        return max(1, min(MAX_FUSION_LAYERS, self.skip_max_layer))

    def tap_channels(self, tap: int) -> int:
        """Channels of the backbone output at a tap (input layer, or a body unit)."""
        if tap == INPUT_TAP:
            return self.widths[0]
        ends = [sum(self.units[: i + 1]) - 1 for i in range(len(self.units))]
        return self.widths[next(i for i, end in enumerate(ends) if tap <= end)]


@dataclass
class FrameFeatures:
    """What the decoder needs from a frame crop: f [B, C4, H/8, W/8] and, for skip-fusion
    models, the encoder features of fusion layers 0..n-1 (H/8, H/8, H/8, H/8, H/4, H/2, H)."""

    f: torch.Tensor
    skips: list[torch.Tensor] | None = None


class PooledStyleHead(StyleHead):
    """GradualStyleBlock that pools to 1x1 (average, or max) before its linear layer, so any
    input size works."""

    def __init__(self, in_channels: int, w_dim: int, spatial: int, max_pooling: bool) -> None:
        super().__init__(in_channels, w_dim, spatial)
        self.max_pooling = max_pooling

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.convs(features)
        x = F.adaptive_max_pool2d(x, 1) if self.max_pooling else F.adaptive_avg_pool2d(x, 1)
        return self.linear(x.reshape(x.shape[0], self.w_dim))


class AdaptiveInstanceNorm(nn.Module):
    """gamma(s) * InstanceNorm(x) + beta(s); `style` maps s [B, style_dim] to [B, 2C]."""

    def __init__(self, channels: int, style_dim: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.style = nn.Linear(style_dim, 2 * channels)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.style(s)[:, :, None, None].chunk(2, dim=1)
        return gamma * self.norm(x) + beta


class FusionLayer(nn.Module):
    """Mix an encoder feature into the decoder features before a synthesis block.

    x = LeakyReLU(conv3x3(feature)); with attention and an editing vector v, x is gated by
    m = tanh(relu(conv(AdaIN(cat(out, |out - x|), MLP(v))))); then
    out = conv3x3(cat(out, x)) and, with use_skip_torgb, rgb = conv3x3(cat(rgb, x)).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        use_skip_torgb: bool = False,
        att_layers: int = 0,
    ) -> None:
        super().__init__()
        self.att_layers = att_layers
        self.transform = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, 1, 1), nn.LeakyReLU()
        )
        self.fusion_out = nn.Conv2d(2 * out_channels, out_channels, 3, 1, 1)
        self.fusion_skip = nn.Conv2d(3 + out_channels, 3, 3, 1, 1) if use_skip_torgb else None
        if att_layers:
            mlp: list[nn.Module] = [nn.Linear(w_dim, out_channels), nn.LeakyReLU(0.2)]
            for _ in range(att_layers):
                mlp += [nn.Linear(out_channels, out_channels), nn.LeakyReLU(0.2)]
            self.linear = nn.Sequential(*mlp)
            self.norm = AdaptiveInstanceNorm(2 * out_channels, out_channels)
            self.conv = nn.Conv2d(2 * out_channels, 1, 3, 1, 1)

    def forward(
        self,
        feature: torch.Tensor,
        out: torch.Tensor,
        rgb: torch.Tensor,
        edit_row: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """feature [B, in, h, w], out [B, C, h, w], rgb [B, 3, h', w'], edit_row [B|1, w_dim]."""
        x = self.transform(feature)
        if self.att_layers and edit_row is not None:
            label = self.linear(edit_row)
            gate_input = torch.cat([out, (out - x).abs()], dim=1)
            x = x * torch.tanh(F.relu(self.conv(self.norm(gate_input, label))))
        out = self.fusion_out(torch.cat([out, x], dim=1))
        if self.fusion_skip is not None:
            rgb = self.fusion_skip(torch.cat([rgb, x], dim=1))
        return out, rgb


class StyleGANEXEncoder(IRSE50):
    """IR-SE50 + w+ heads (FPN), `featlayer` for f, optional fusion layers.

    Keys as published: `input_layer.*`, `body.*`, `styles.*`, `latlayer1/2`, `featlayer`,
    `skiplayer` (stored, unused: it only serves feat_ind != 0), `fusion.*`.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__(3, config.widths, config.units)
        self.config = config
        top, middle, low = config.widths[3], config.widths[2], config.widths[1]
        self.styles = nn.ModuleList(
            PooledStyleHead(top, config.style_dim, _head_spatial(i), config.max_pooling)
            for i in range(config.n_styles)
        )
        self.latlayer1 = nn.Conv2d(middle, top, 1)
        self.latlayer2 = nn.Conv2d(low, top, 1)
        f_in = sum(config.tap_channels(t) for t in F_TAPS)
        self.featlayer = nn.Conv2d(f_in, config.f_channels, 1)
        self.skiplayer = nn.Conv2d(f_in, 3, 1)
        if config.use_skip:
            self.fusion = nn.ModuleList(
                FusionLayer(
                    config.tap_channels(SKIP_TAPS[j]),
                    config.decoder_channels[j],
                    config.style_dim,
                    config.use_skip_torgb,
                    config.use_att,
                )
                for j in range(config.n_fusion)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Style offsets (before latent_avg): x [B, 3, h, w] -> [B, n_styles, style_dim]."""
        c1, c2, c3 = self.features(x, STYLE_TAPS)
        codes = [self.styles[i](c3) for i in range(COARSE_END)]
        p2 = _upsample_add(c3, self.latlayer1(c2))
        codes += [self.styles[i](p2) for i in range(COARSE_END, MIDDLE_END)]
        p1 = _upsample_add(p2, self.latlayer2(c1))
        codes += [self.styles[i](p1) for i in range(MIDDLE_END, self.config.n_styles)]
        return torch.stack(codes, dim=1)

    def frame_features(self, x: torch.Tensor) -> FrameFeatures:
        """x [B, 3, H, W] (H, W multiples of 8) -> f and, with skip fusion, its features.

        Runs the backbone only up to unit 20 (the heads and the last stage are not needed).
        """
        n_fusion = self.config.n_fusion
        taps = list(F_TAPS) + list(SKIP_TAPS[:n_fusion])
        found = self.features(x, taps)
        f = self.featlayer(torch.cat(found[: len(F_TAPS)], dim=1))
        return FrameFeatures(f, found[len(F_TAPS) :] if n_fusion else None)


def _head_spatial(index: int) -> int:
    """Nominal input side of head `index` (for a 256 input): 16, 32 or 64 -> 4, 5, 6 convs."""
    return 16 if index < COARSE_END else 32 if index < MIDDLE_END else 64


def _upsample_add(top: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
    """FPN step: bilinearly resize `top` to the lateral map (align_corners=True) and add."""
    return (
        F.interpolate(top, size=lateral.shape[-2:], mode="bilinear", align_corners=True) + lateral
    )


# --------------------------------------------------------------------------------------------
# The whole model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StyleGANEXConfig:
    """Encoder + decoder shapes; start_from_latent_avg adds `latent_avg` to the heads' output."""

    decoder: StyleGAN2Config = field(default_factory=StyleGAN2Config)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    start_from_latent_avg: bool = True

    def __post_init__(self) -> None:
        enc, dec = self.encoder, self.decoder
        if enc.n_styles != dec.n_latent or enc.style_dim != dec.style_dim:
            raise ValueError(
                f"encoder gives w+ [{enc.n_styles}, {enc.style_dim}], decoder takes "
                f"[{dec.n_latent}, {dec.style_dim}]"
            )
        if enc.f_channels != dec.channels[0]:
            raise ValueError(f"f has {enc.f_channels} channels, decoder wants {dec.channels[0]}")
        if dec.size < F_NOMINAL_SIDE:
            raise ValueError(f"StyleGANEX needs a decoder of at least {F_NOMINAL_SIDE} px")


def snap_size(height: int, width: int) -> tuple[int, int]:
    """Largest encoder input size <= (height, width) with both sides multiples of 8 (>= 8)."""
    if height < SIZE_MULTIPLE or width < SIZE_MULTIPLE:
        raise InputError(
            f"a {height}x{width} crop is too small for StyleGANEX (at least "
            f"{SIZE_MULTIPLE}x{SIZE_MULTIPLE} px)"
        )
    return height // SIZE_MULTIPLE * SIZE_MULTIPLE, width // SIZE_MULTIPLE * SIZE_MULTIPLE


def check_input_size(height: int, width: int) -> None:
    """Raise InputError unless both sides are positive multiples of 8 (f is 1/8 of the input).

    Crops are never padded silently: the caller crops to `snap_size` (as the official code
    floors its crop window to multiples of 8).
    """
    if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE or height < 8 or width < 8:
        snapped = snap_size(max(height, 8), max(width, 8))
        raise InputError(
            f"StyleGANEX needs frame crops whose sides are multiples of {SIZE_MULTIPLE}; got "
            f"{height}x{width}. Crop to {snapped[0]}x{snapped[1]} (ganvid.nn.styleganex.snap_size)."
        )


class StyleGANEX(nn.Module):
    """Encoder + decoder + `latent_avg` (+ the edit checkpoints' `editing_w`).

    state_dict() holds exactly the checkpoint's `encoder.*` / `decoder.*` keys; latent_avg
    [n_styles, style_dim] and editing_w [K, n_styles, style_dim] are non-persistent buffers;
    `opts` keeps the checkpoint's training options for information.
    Build it with `ganvid.nn.styleganex_checkpoints.load_styleganex`.
    """

    def __init__(
        self,
        config: StyleGANEXConfig,
        latent_avg: torch.Tensor | None = None,
        editing_w: torch.Tensor | None = None,
        opts: dict | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.opts = dict(opts or {})
        self.encoder = StyleGANEXEncoder(config.encoder)
        self.decoder = StyleGANEXGenerator(config.decoder)
        shape = (config.encoder.n_styles, config.encoder.style_dim)
        if latent_avg is None:
            latent_avg = torch.zeros(shape)
        if tuple(latent_avg.shape) != shape:
            raise ValueError(f"latent_avg must be {list(shape)}, got {list(latent_avg.shape)}")
        if editing_w is not None and (editing_w.ndim != 3 or tuple(editing_w.shape[1:]) != shape):
            raise ValueError(f"editing_w must be [K, {shape[0]}, {shape[1]}]")
        self.register_buffer("latent_avg", latent_avg.clone().float(), persistent=False)
        self.register_buffer(
            "editing_w", None if editing_w is None else editing_w.clone().float(), persistent=False
        )

    # -- encoding -------------------------------------------------------------------------------
    def encode_wplus(self, aligned: torch.Tensor) -> torch.Tensor:
        """Aligned face(s) [B, 3, h, w] (FFHQ-aligned, 256x256 as trained) -> w+ [B, 18, 512]."""
        _check_images(aligned, "aligned")
        codes = self.encoder(aligned)
        if self.config.start_from_latent_avg:
            codes = codes + self.latent_avg.to(codes.dtype)
        return codes

    def encode_features(self, crop: torch.Tensor) -> FrameFeatures:
        """Frame crop(s) [B, 3, H, W], H and W multiples of 8 -> FrameFeatures (f at H/8)."""
        _check_images(crop, "crop")
        check_input_size(crop.shape[2], crop.shape[3])
        return self.encoder.frame_features(crop)

    def encode(
        self, crop: torch.Tensor, aligned: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, FrameFeatures]:
        """(w+, features): w+ from `aligned` (None: from the crop itself), features from `crop`."""
        wplus = self.encode_wplus(crop if aligned is None else aligned)
        return wplus, self.encode_features(crop)

    # -- editing --------------------------------------------------------------------------------
    def edit_vector(self, scale: float = 1.0, row: int = 0) -> torch.Tensor:
        """scale * editing_w[row] as [1, n_styles, style_dim] (the official scripts use row 0)."""
        if self.editing_w is None:
            raise InputError(
                "this StyleGANEX checkpoint has no editing vector; use an edit checkpoint "
                "(styleganex_edit_age.pt, styleganex_edit_hair.pt) or pass editing_w"
            )
        if not 0 <= row < self.editing_w.shape[0]:
            raise InputError(f"editing_w has {self.editing_w.shape[0]} rows; row {row} is absent")
        return scale * self.editing_w[row : row + 1]

    # -- decoding -------------------------------------------------------------------------------
    def decode(
        self,
        wplus: torch.Tensor,
        features: FrameFeatures | torch.Tensor | None,
        editing_w: torch.Tensor | None = None,
        noise_mode: str = "none",
        noises: list[torch.Tensor | None] | None = None,
    ) -> torch.Tensor:
        """Render w+ [B, 18, 512] on f -> image [B, 3, 32 h_f, 32 w_f] (4x the crop), unclamped.

        features: FrameFeatures from `encode_features`, a bare f [B, 512, h, w] (models without
            skip fusion only), or None (the 4x4 constant: plain StyleGAN2, 1024x1024).
        editing_w: [1|B, 18, 512] added to every w+ row and fed to the fusion attention.
        noise_mode: 'none' (the official zero_noise=True, right for video), 'const' (stored
            buffers pooled to size) or 'random'; `noises` (one per layer) overrides it.
        """
        if isinstance(features, FrameFeatures):
            f, skips = features.f, features.skips
        else:
            f, skips = features, None
        if self.config.encoder.use_skip and f is not None and skips is None:
            raise ValueError(
                "this checkpoint fuses encoder features into the decoder: pass the FrameFeatures "
                "from encode_features, not a bare f"
            )
        if f is not None and wplus.shape[0] != f.shape[0]:
            wplus = wplus.expand(f.shape[0], -1, -1)
        if editing_w is not None:
            wplus = wplus + editing_w.to(wplus.dtype)
        fuse = self._fuse_fn(skips, editing_w) if skips is not None and f is not None else None
        return self.decoder(wplus, f, noise_mode=noise_mode, noises=noises, fuse=fuse)

    def _fuse_fn(self, skips: list[torch.Tensor], editing_w: torch.Tensor | None) -> FuseFn:
        layers = self.encoder.fusion

        def fuse(j: int, out: torch.Tensor, rgb: torch.Tensor):
            if j >= len(layers) or j >= len(skips):
                return out, rgb
            edit_row = None if editing_w is None else editing_w[:, 2 * j + 1]
            return layers[j](skips[j], out, rgb, edit_row)

        return fuse

    @torch.no_grad()
    def run(
        self,
        crop: torch.Tensor,
        aligned: torch.Tensor,
        editing_w: torch.Tensor | str | None = "checkpoint",
        scale: float = 1.0,
    ) -> torch.Tensor:
        """The official video editing / toonify step for a batch of frames.

        crop [B, 3, H, W] (multiples of 8) in [-1, 1]; aligned [1|B, 3, 256, 256]: the aligned
        face giving w+ (frame 0 or the shot's). editing_w: 'checkpoint' = the checkpoint's own
        editing_w[0:1] if it has one (edit models), else none; None = no edit; or a tensor
        [1|B, 18, 512]. The vector used is scale * editing_w. Returns [B, 3, 4H, 4W] clamped to
        [-1, 1], rendered without noise.
        """
        if isinstance(editing_w, str):
            if editing_w != "checkpoint":
                raise ValueError(
                    f"editing_w must be a tensor, None or 'checkpoint', not {editing_w!r}"
                )
            editing_w = self.edit_vector(1.0) if self.editing_w is not None else None
        if editing_w is not None:
            editing_w = scale * editing_w
        wplus = self.encode_wplus(aligned)
        features = self.encode_features(crop)
        return self.decode(wplus, features, editing_w, noise_mode="none").clamp(-1.0, 1.0)


def _check_images(x: torch.Tensor, name: str) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise InputError(f"{name} must be images [B, 3, H, W] in [-1, 1], got {list(x.shape)}")


def output_size(height: int, width: int, decoder_size: int = 1024) -> tuple[int, int]:
    """Image size rendered for an encoder input of (height, width): f is 1/8 of the input and the
    image is decoder_size/32 times f (4x the input for the 1024 px decoder)."""
    check_input_size(height, width)
    scale = decoder_size // F_NOMINAL_SIDE
    return height // SIZE_MULTIPLE * scale, width // SIZE_MULTIPLE * scale


# --------------------------------------------------------------------------------------------
# Step II: optimisation for still images
# --------------------------------------------------------------------------------------------


def layer_noise_sizes(
    decoder: StyleGANEXGenerator, f_size: tuple[int, int]
) -> list[tuple[int, int]]:
    """(h, w) of each noise input of the decoder for an f of size f_size: layers up to the
    nominal 32 px keep f's size, each later block doubles it."""
    sizes = []
    for i in range(decoder.config.num_layers):
        factor = max(1, 2 ** ((i + 5) // 2) // F_NOMINAL_SIDE)
        sizes.append((f_size[0] * factor, f_size[1] * factor))
    return sizes


__all__ = [
    "DilatedModulatedConv2d",
    "DilatedToRGB",
    "EncoderConfig",
    "FrameFeatures",
    "FusionLayer",
    "StyleGANEX",
    "StyleGANEXConfig",
    "StyleGANEXEncoder",
    "StyleGANEXGenerator",
    "check_input_size",
    "output_size",
    "snap_size",
]
