"""StyleGAN3 generator, configs T and R (Karras et al. 2021, "Alias-Free Generative Adversarial
Networks"), numerically equal to NVIDIA's reference code and state-dict compatible with it.

    z [B, z_dim] --MappingNetwork--> ws [B, num_ws, w_dim]
    ws --SynthesisNetwork--> img [B, img_channels, H, W]   (nominally [-1, 1], float32)

Synthesis = SynthesisInput (Fourier features on a canvas with a margin, driven by ws[:, 0])
followed by `num_layers` SynthesisLayers and a ToRGB layer (ws[:, 1:]). Every layer is a
modulated convolution followed by an alias-free leaky ReLU (`ganvid.ops.filtered_lrelu`:
upsample, low-pass, lrelu, low-pass, downsample). The per-layer cutoff, stopband, sampling rate,
canvas size and width follow a closed-form schedule (`synthesis_schedule`).

Parameter and buffer names match NVIDIA's `G_ema.state_dict()` exactly (e.g.
`synthesis.L3_52_1024.affine.weight`), so official weights load without renaming
(`ganvid.nn.checkpoints`).

Transforms: `synthesis.input.transform` [3, 3] holds the INVERSE of the user's image motion
(see `ganvid.nn.sg3_transforms`). A transform given at call time, one [3, 3] or one per sample
[B, 3, 3], replaces the buffer for that call.

StyleSpace: `synthesis.styles(ws)` returns the affine outputs ("styles") of the input and of every
layer; `synthesis(ws, styles=edited)` renders from (possibly edited) styles. Values are the raw
affine outputs: ToRGB's weight gain 1/sqrt(in_channels) is applied inside the layer, not stored
in the dict, so all entries have comparable magnitude (the same convention as StyleSpace for
StyleGAN2, where s is the affine output).

Why one file of ~730 lines: it is one model family, kept together the way NVIDIA's
`networks_stylegan3.py` is, so that each class can be read beside the paper and checked key by
key against the official state dict; the pieces (mapping, input, layer, schedule) are small
classes that only make sense with each other.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import scipy.special
import torch
import torch.nn.functional as F
from torch import nn

from ganvid import ops
from ganvid.errors import InputError

#: magnitude_ema_beta that NVIDIA's train.py uses for the released models (batch 32).
TRAIN_MAGNITUDE_EMA_BETA = 0.5 ** (32 / 20000)


# ----------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class SG3Config:
    """Every hyper-parameter of a StyleGAN3 generator (defaults: NVIDIA's config T at 1024).

    Use `SG3Config.config_t(res)` / `SG3Config.config_r(res)` for the two published configs.
    Only `conv_kernel`, `use_radial_filters` and the channel counts differ between T and R.
    """

    img_resolution: int = 1024
    z_dim: int = 512
    w_dim: int = 512
    c_dim: int = 0
    img_channels: int = 3
    channel_base: int = 32768
    channel_max: int = 512
    conv_kernel: int = 3
    use_radial_filters: bool = False
    mapping_layers: int = 2
    mapping_lr_multiplier: float = 0.01
    w_avg_beta: float = 0.998
    num_layers: int = 14
    num_critical: int = 2
    first_cutoff: float = 2.0
    first_stopband: float = 2**2.1
    last_stopband_rel: float = 2**0.3
    margin_size: int = 10
    output_scale: float = 0.25
    num_fp16_res: int = 4
    conv_clamp: float | None = 256
    filter_size: int = 6
    lrelu_upsampling: int = 2
    magnitude_ema_beta: float = TRAIN_MAGNITUDE_EMA_BETA

    def __post_init__(self) -> None:
        res = self.img_resolution
        if res < 16 or res & (res - 1):
            raise InputError(f"img_resolution must be a power of two >= 16, got {res}")
        if self.num_layers <= self.num_critical:
            raise InputError("num_layers must be larger than num_critical")

    @classmethod
    def config_t(cls, img_resolution: int = 1024, **overrides) -> SG3Config:
        """StyleGAN3-T (translation equivariant): 3x3 convs, separable filters."""
        return cls(img_resolution=img_resolution, **overrides)

    @classmethod
    def config_r(cls, img_resolution: int = 1024, **overrides) -> SG3Config:
        """StyleGAN3-R (also rotation equivariant): 1x1 convs, radial down filters, 2x widths."""
        fields = dict(channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True)
        fields.update(overrides)
        return cls(img_resolution=img_resolution, **fields)

    @property
    def num_ws(self) -> int:
        """Number of w vectors: one for the input, one per layer, one for ToRGB."""
        return self.num_layers + 2

    @property
    def name(self) -> str:
        """'R' or 'T' (R = 1x1 convs with radial filters)."""
        return "R" if self.use_radial_filters and self.conv_kernel == 1 else "T"

    def to_dict(self) -> dict:
        """Plain dict of builtins (safe for `torch.load(weights_only=True)` and JSON)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, fields: dict) -> SG3Config:
        """Inverse of `to_dict`; unknown keys are an error (they mean another architecture)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise InputError(f"unknown StyleGAN3 config keys: {', '.join(unknown)}")
        return cls(**fields)


@dataclass(frozen=True)
class InputSpec:
    """SynthesisInput: Fourier features on a `size`x`size` canvas at `sampling_rate`."""

    channels: int
    size: int
    sampling_rate: float
    bandwidth: float


@dataclass(frozen=True)
class LayerSpec:
    """Everything that defines one SynthesisLayer (rates and cutoffs in cycles per image width).

    `padding` is [x0, x1, y0, y1] w.r.t. the upsampled signal (negative = crop).
    """

    index: int
    name: str
    is_torgb: bool
    is_critically_sampled: bool
    use_fp16: bool
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    in_sampling_rate: int
    out_sampling_rate: int
    tmp_sampling_rate: int
    in_cutoff: float
    out_cutoff: float
    out_stopband: float
    in_half_width: float
    out_half_width: float
    conv_kernel: int
    up_factor: int
    down_factor: int
    up_taps: int
    down_taps: int
    down_radial: bool
    padding: tuple[int, int, int, int]


def _schedule_arrays(cfg: SG3Config) -> dict[str, np.ndarray]:
    """Per-index cutoffs, stopbands, sampling rates, half widths, sizes, channels (0..N)."""
    n = cfg.num_layers
    last_cutoff = cfg.img_resolution / 2
    last_stopband = last_cutoff * cfg.last_stopband_rel
    exponents = np.minimum(np.arange(n + 1) / (n - cfg.num_critical), 1)
    cutoffs = cfg.first_cutoff * (last_cutoff / cfg.first_cutoff) ** exponents
    stopbands = cfg.first_stopband * (last_stopband / cfg.first_stopband) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, cfg.img_resolution))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + cfg.margin_size * 2
    sizes[-2:] = cfg.img_resolution
    channels = np.rint(np.minimum((cfg.channel_base / 2) / cutoffs, cfg.channel_max))
    channels[-1] = cfg.img_channels
    return dict(
        cutoffs=cutoffs,
        stopbands=stopbands,
        rates=rates,
        half_widths=half_widths,
        sizes=sizes,
        channels=channels,
    )


def _layer_spec(cfg: SG3Config, a: dict[str, np.ndarray], i: int) -> LayerSpec:
    prev = max(i - 1, 0)
    is_torgb = i == cfg.num_layers
    is_critical = i >= cfg.num_layers - cfg.num_critical
    in_rate, out_rate = int(a["rates"][prev]), int(a["rates"][i])
    tmp_rate = max(in_rate, out_rate) * (1 if is_torgb else cfg.lrelu_upsampling)
    up, down = tmp_rate // in_rate, tmp_rate // out_rate
    if up * in_rate != tmp_rate or down * out_rate != tmp_rate:
        raise InputError(f"layer {i}: sampling rates {in_rate}, {out_rate} are not compatible")
    up_taps = cfg.filter_size * up if up > 1 and not is_torgb else 1
    down_taps = cfg.filter_size * down if down > 1 and not is_torgb else 1
    kernel = 1 if is_torgb else cfg.conv_kernel
    in_size, out_size = int(a["sizes"][prev]), int(a["sizes"][i])
    pad_total = (out_size - 1) * down + 1 - (in_size + kernel - 1) * up + up_taps + down_taps - 2
    pad_lo = (pad_total + up) // 2  # the "+up" centres samples the way the paper does (App. C.3)
    pad_hi = pad_total - pad_lo
    out_channels = int(a["channels"][i])
    return LayerSpec(
        index=i,
        name=f"L{i}_{out_size}_{out_channels}",
        is_torgb=is_torgb,
        is_critically_sampled=is_critical,
        use_fp16=bool(out_rate * 2**cfg.num_fp16_res > cfg.img_resolution),
        in_channels=int(a["channels"][prev]),
        out_channels=out_channels,
        in_size=in_size,
        out_size=out_size,
        in_sampling_rate=in_rate,
        out_sampling_rate=out_rate,
        tmp_sampling_rate=tmp_rate,
        in_cutoff=float(a["cutoffs"][prev]),
        out_cutoff=float(a["cutoffs"][i]),
        out_stopband=float(a["stopbands"][i]),
        in_half_width=float(a["half_widths"][prev]),
        out_half_width=float(a["half_widths"][i]),
        conv_kernel=kernel,
        up_factor=up,
        down_factor=down,
        up_taps=up_taps,
        down_taps=down_taps,
        down_radial=cfg.use_radial_filters and not is_critical,
        padding=(pad_lo, pad_hi, pad_lo, pad_hi),
    )


def synthesis_schedule(cfg: SG3Config) -> tuple[InputSpec, list[LayerSpec]]:
    """The closed-form layer schedule of the synthesis network (nvidia-sg3.md §2.4).

    Cutoffs and stopbands grow geometrically from (first_cutoff, first_stopband) to
    (res/2, res/2 * last_stopband_rel) and saturate for the last `num_critical` layers; sampling
    rates are powers of two; canvases carry `margin_size` px on each side except the last two.
    """
    a = _schedule_arrays(cfg)
    first = InputSpec(
        channels=int(a["channels"][0]),
        size=int(a["sizes"][0]),
        sampling_rate=float(a["rates"][0]),
        bandwidth=float(a["cutoffs"][0]),
    )
    return first, [_layer_spec(cfg, a, i) for i in range(cfg.num_layers + 1)]


# ----------------------------------------------------------------------------- filters


def kaiser_beta(numtaps: int, width: float, fs: float) -> float:
    """Kaiser window beta for a transition band `width` (Hz) at sampling rate `fs` (Kaiser 1974)."""
    attenuation = 2.285 * (numtaps - 1) * np.pi * (width / (fs / 2)) + 7.95
    if attenuation > 50:
        return 0.1102 * (attenuation - 8.7)
    if attenuation > 21:
        return 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21)
    return 0.0


def lowpass_filter(
    numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False
) -> torch.Tensor | None:
    """Kaiser-windowed low-pass FIR with unit DC gain; None for a 1-tap (identity) filter.

    Separable: 1-D windowed sinc [numtaps] (what scipy.signal.firwin(numtaps, cutoff, width=width,
    fs=fs) returns). Radial: 2-D windowed jinc [numtaps, numtaps], J1(2 pi fc r) / (pi r) times
    the outer product of the same Kaiser window. float32.
    """
    if numtaps < 1:
        raise InputError(f"a filter needs at least one tap, got {numtaps}")
    if numtaps == 1:
        return None
    window = np.kaiser(numtaps, kaiser_beta(numtaps, width, fs))
    offsets = np.arange(numtaps) - (numtaps - 1) / 2
    if radial:
        x = offsets / fs
        r = np.hypot(*np.meshgrid(x, x))  # never 0: numtaps is even for every SG3 filter
        taps = scipy.special.j1(2 * np.pi * cutoff * r) / (np.pi * r)
        taps = taps * np.outer(window, window)
    else:
        c = 2 * cutoff / fs
        taps = c * np.sinc(c * offsets) * window
    return torch.as_tensor(taps / np.sum(taps), dtype=torch.float32)


def layer_filters(spec: LayerSpec) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(up_filter, down_filter) of a synthesis layer: low-pass FIRs at the layer's temporary
    sampling rate, cutting off at its input and output cutoffs (`lowpass_filter`; None = 1 tap)."""
    up_filter = lowpass_filter(
        spec.up_taps, spec.in_cutoff, spec.in_half_width * 2, spec.tmp_sampling_rate
    )
    down_filter = lowpass_filter(
        spec.down_taps,
        spec.out_cutoff,
        spec.out_half_width * 2,
        spec.tmp_sampling_rate,
        radial=spec.down_radial,
    )
    return up_filter, down_filter


# ----------------------------------------------------------------------------- layers


class FullyConnectedLayer(nn.Module):
    """Linear layer with equalised learning rate: y = act(x @ (W * lr/sqrt(in))^T + b * lr)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        activation: str = "linear",
        lr_multiplier: float = 1.0,
        weight_init: float = 1.0,
        bias_init=0.0,
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = nn.Parameter(
            torch.randn([out_features, in_features]) * (weight_init / lr_multiplier)
        )
        bias = np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features])
        self.bias = nn.Parameter(torch.from_numpy(bias / lr_multiplier))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, in_features] -> [B, out_features]."""
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias.to(x.dtype)
        if self.bias_gain != 1:
            b = b * self.bias_gain
        if self.activation == "linear":
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return ops.bias_act(x.matmul(w.t()), b, act=self.activation)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, act={self.activation}"


def _normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class MappingNetwork(nn.Module):
    """z (and optional class label c) -> ws [B, num_ws, w_dim], with truncation toward w_avg."""

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int,
        num_layers: int = 2,
        lr_multiplier: float = 0.01,
        w_avg_beta: float = 0.998,
    ) -> None:
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.num_ws, self.num_layers, self.w_avg_beta = num_ws, num_layers, w_avg_beta
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, w_dim)
        features = [z_dim + (w_dim if c_dim > 0 else 0)] + [w_dim] * num_layers
        for i in range(num_layers):
            fc = FullyConnectedLayer(
                features[i], features[i + 1], activation="lrelu", lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{i}", fc)
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        """z [B, z_dim], c [B, c_dim] or None -> ws [B, num_ws, w_dim] (float32).

        With truncation_psi != 1 the first `truncation_cutoff` ws (default all) become
        w_avg + psi * (w - w_avg).
        """
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise InputError(f"z must have shape [B, {self.z_dim}], got {tuple(z.shape)}")
        x = _normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise InputError(f"this generator needs a label c of shape [B, {self.c_dim}]")
            y = _normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        ws = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], truncation_psi)
        return ws

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_ws={self.num_ws}"


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    padding: int = 0,
    demodulate: bool = True,
    input_gain: torch.Tensor | None = None,
) -> torch.Tensor:
    """Style-modulated convolution as one grouped conv over the batch.

    x [B, I, H, W], weight [O, I, k, k], styles [B, I] -> [B, O, H + 2p - k + 1, ...].
    With demodulation each output filter is scaled to unit norm; the RMS pre-normalisations of
    weight and styles cancel there (up to the 1e-8 epsilon) and only guard fp16 ranges.
    input_gain (scalar or [B, I]) multiplies the input channels after demodulation.
    """
    batch = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    if demodulate:
        weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
    w = weight.unsqueeze(0) * styles[:, None, :, None, None]  # [B, O, I, k, k]
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()[:, :, None, None, None]
    if input_gain is not None:
        w = w * input_gain.expand(batch, in_ch)[:, None, :, None, None]
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_ch, kh, kw)
    x = F.conv2d(x, w.to(x.dtype), padding=padding, groups=batch)
    return x.reshape(batch, -1, *x.shape[2:])


def _as_transforms(transform, batch: int, device: torch.device) -> torch.Tensor:
    """One [3, 3] or [B, 3, 3] (tensor or array) -> float32 [batch, 3, 3]."""
    t = torch.as_tensor(transform, dtype=torch.float32, device=device)
    if t.ndim == 2:
        t = t.unsqueeze(0)
    if t.ndim != 3 or t.shape[1:] != (3, 3) or t.shape[0] not in (1, batch):
        raise InputError(
            f"transform must be [3, 3] or [{batch}, 3, 3] (one per sample), got {tuple(t.shape)}"
        )
    return t.expand(batch, 3, 3)


class SynthesisInput(nn.Module):
    """Fourier features: `channels` sinusoids of random frequency (|f| <= bandwidth) and phase,
    rotated/translated by a transform, sampled on a `size`x`size` canvas, mixed by a learned
    [C, C] matrix. Output [B, C, size, size]."""

    def __init__(
        self, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float
    ) -> None:
        super().__init__()
        self.w_dim, self.channels, self.size = w_dim, channels, size
        self.sampling_rate, self.bandwidth = sampling_rate, bandwidth
        # Frequencies uniform on the disc of radius `bandwidth`, phases uniform in [-1/2, 1/2).
        freqs = torch.randn([channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        phases = torch.rand([channels]) - 0.5
        self.weight = nn.Parameter(torch.randn([channels, channels]))
        # Learned rotation (cos, sin) and translation; starts at the identity.
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        self.register_buffer("transform", torch.eye(3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def style(self, w: torch.Tensor) -> torch.Tensor:
        """Affine output for w [B, w_dim]: [B, 4] = (r_cos, r_sin, t_x, t_y), unnormalised."""
        return self.affine(w)

    def forward(
        self,
        w: torch.Tensor | None,
        transform: torch.Tensor | np.ndarray | None = None,
        style: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """w [B, w_dim] (or style [B, 4]); transform [3, 3] / [B, 3, 3] (default: the buffer)."""
        t = self.style(w) if style is None else style
        batch = t.shape[0]
        transforms = _as_transforms(
            self.transform if transform is None else transform, batch, t.device
        )
        t = t / t[:, :2].norm(dim=1, keepdim=True)  # unit rotation
        m_r = torch.eye(3, device=t.device).repeat([batch, 1, 1])
        m_r[:, 0, 0], m_r[:, 0, 1], m_r[:, 1, 0], m_r[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
        m_t = torch.eye(3, device=t.device).repeat([batch, 1, 1])
        m_t[:, 0, 2], m_t[:, 1, 2] = -t[:, 2], -t[:, 3]
        transforms = m_r @ m_t @ transforms  # learned motion, then the user's (inverse) motion

        freqs = self.freqs.unsqueeze(0)  # [1, C, 2] row vectors
        phases = self.phases.unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]  # [B, C, 2]
        # Damp frequencies that the transform pushes out of the band the canvas can hold.
        amplitudes = 1 - (freqs.norm(dim=2) - self.bandwidth) / (
            self.sampling_rate / 2 - self.bandwidth
        )
        amplitudes = amplitudes.clamp(0, 1)

        # Pixel i sits at (i + 0.5 - size/2) / sampling_rate.
        theta = torch.eye(2, 3, device=t.device)
        theta[0, 0] = theta[1, 1] = 0.5 * self.size / self.sampling_rate
        grid = F.affine_grid(theta.unsqueeze(0), [1, 1, self.size, self.size], align_corners=False)
        x = (grid.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)
        x = x + phases.unsqueeze(1).unsqueeze(2)  # [B, H, W, C]
        x = torch.sin(x * (np.pi * 2)) * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / np.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return (
            f"w_dim={self.w_dim}, channels={self.channels}, size={self.size}, "
            f"sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}"
        )


class SynthesisLayer(nn.Module):
    """Modulated conv (+ demodulation, magnitude-EMA input gain) and filtered leaky ReLU.

    Input [B, in_channels, in_size, in_size] -> [B, out_channels, out_size, out_size].
    The last layer of the network (`spec.is_torgb`) is a 1x1 conv without demodulation and with a
    linear activation (still clamped).
    """

    def __init__(
        self,
        w_dim: int,
        spec: LayerSpec,
        conv_clamp: float | None = 256,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.w_dim = w_dim
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, spec.in_channels, bias_init=1)
        k = spec.conv_kernel
        self.weight = nn.Parameter(torch.randn([spec.out_channels, spec.in_channels, k, k]))
        self.bias = nn.Parameter(torch.zeros([spec.out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))
        up_filter, down_filter = layer_filters(spec)
        self.register_buffer("up_filter", up_filter)  # None (absent from state_dict) = identity
        self.register_buffer("down_filter", down_filter)

    def style(self, w: torch.Tensor) -> torch.Tensor:
        """Affine output for w [B, w_dim]: [B, in_channels] (ToRGB's weight gain NOT included)."""
        return self.affine(w)

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor | None,
        style: torch.Tensor | None = None,
        force_fp32: bool = False,
    ) -> torch.Tensor:
        """x [B, I, in_size, in_size], w [B, w_dim] (or style [B, I]) -> [B, O, out, out].

        Runs in float16 on CUDA when the layer is a high-resolution one and not force_fp32.
        """
        spec = self.spec
        styles = self.style(w) if style is None else style
        if spec.is_torgb:
            styles = styles * (1 / np.sqrt(spec.in_channels * spec.conv_kernel**2))
        use_fp16 = spec.use_fp16 and not force_fp32 and x.device.type == "cuda"
        dtype = torch.float16 if use_fp16 else torch.float32
        x = modulated_conv2d(
            x.to(dtype),
            self.weight,
            styles,
            padding=spec.conv_kernel - 1,  # "full" convolution: the canvas grows by k - 1
            demodulate=not spec.is_torgb,
            input_gain=self.magnitude_ema.rsqrt(),
        )
        return ops.filtered_lrelu(
            x,
            fu=self.up_filter,
            fd=self.down_filter,
            b=self.bias.to(x.dtype),
            up=spec.up_factor,
            down=spec.down_factor,
            padding=list(spec.padding),
            gain=1 if spec.is_torgb else np.sqrt(2),
            slope=1 if spec.is_torgb else 0.2,
            clamp=self.conv_clamp,
        )

    def extra_repr(self) -> str:
        s = self.spec
        return (
            f"{s.in_channels}->{s.out_channels}, size {s.in_size}->{s.out_size}, "
            f"rate {s.in_sampling_rate}->{s.out_sampling_rate}, up={s.up_factor}, "
            f"down={s.down_factor}, k={s.conv_kernel}, torgb={s.is_torgb}, "
            f"critical={s.is_critically_sampled}, radial={s.down_radial}, fp16={s.use_fp16}"
        )


class SynthesisNetwork(nn.Module):
    """ws [B, num_ws, w_dim] -> image [B, img_channels, res, res] (float32, nominally [-1, 1])."""

    def __init__(self, config: SG3Config) -> None:
        super().__init__()
        self.config = config
        self.w_dim = config.w_dim
        self.img_resolution = config.img_resolution
        self.img_channels = config.img_channels
        self.num_ws = config.num_ws
        self.output_scale = config.output_scale
        input_spec, layer_specs = synthesis_schedule(config)
        self.input = SynthesisInput(
            config.w_dim,
            input_spec.channels,
            input_spec.size,
            input_spec.sampling_rate,
            input_spec.bandwidth,
        )
        self.layer_names: list[str] = []
        for spec in layer_specs:
            layer = SynthesisLayer(config.w_dim, spec, conv_clamp=config.conv_clamp)
            setattr(self, spec.name, layer)
            self.layer_names.append(spec.name)

    @property
    def style_names(self) -> list[str]:
        """Keys of `styles()`: 'input', then the layer names in order."""
        return ["input", *self.layer_names]

    def _check_ws(self, ws: torch.Tensor) -> None:
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise InputError(
                f"ws must have shape [B, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}"
            )

    def styles(self, ws: torch.Tensor) -> dict[str, torch.Tensor]:
        """StyleSpace of ws [B, num_ws, w_dim]: {'input': [B, 4], layer name: [B, in_ch]}.

        Raw affine outputs (ToRGB's 1/sqrt(in_channels) weight gain not included).
        """
        self._check_ws(ws)
        ws = ws.to(torch.float32)
        result = {"input": self.input.style(ws[:, 0])}
        for i, name in enumerate(self.layer_names):
            result[name] = getattr(self, name).style(ws[:, i + 1])
        return result

    def forward(
        self,
        ws: torch.Tensor | None,
        transform: torch.Tensor | np.ndarray | None = None,
        styles: dict[str, torch.Tensor] | None = None,
        force_fp32: bool = False,
    ) -> torch.Tensor:
        """Render ws [B, num_ws, w_dim] -> [B, C, res, res] float32.

        transform: [3, 3] or [B, 3, 3] input transform (inverse of the user matrix) for this
        call; None uses the `input.transform` buffer. styles: a dict from `styles()` (possibly
        edited, possibly only some keys): its entries replace the affine outputs of those layers;
        ws may be None when every key is given. force_fp32: no float16 even on CUDA.
        """
        styles = self._check_styles(ws, styles)
        per_layer: list[torch.Tensor | None] = [None] * self.num_ws
        if ws is not None:
            self._check_ws(ws)
            per_layer = list(ws.to(torch.float32).unbind(dim=1))
        x = self.input(per_layer[0], transform=transform, style=styles.get("input"))
        for name, w in zip(self.layer_names, per_layer[1:], strict=True):
            x = getattr(self, name)(x, w, style=styles.get(name), force_fp32=force_fp32)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32)

    def _check_styles(
        self, ws: torch.Tensor | None, styles: dict[str, torch.Tensor] | None
    ) -> dict[str, torch.Tensor]:
        styles = {} if styles is None else styles
        unknown = sorted(set(styles) - set(self.style_names))
        if unknown:
            raise InputError(f"unknown style keys {unknown}; expected {self.style_names}")
        missing = [name for name in self.style_names if name not in styles]
        if ws is None and missing:
            raise InputError(f"without ws every style must be given; missing {missing}")
        return styles

    def extra_repr(self) -> str:
        c = self.config
        return f"config {c.name}, {c.img_resolution}px, w_dim={c.w_dim}, num_ws={c.num_ws}"


class Generator(nn.Module):
    """StyleGAN3 generator: `mapping` (z -> ws) then `synthesis` (ws -> image)."""

    def __init__(self, config: SG3Config) -> None:
        super().__init__()
        self.config = config
        self.z_dim, self.c_dim, self.w_dim = config.z_dim, config.c_dim, config.w_dim
        self.img_resolution, self.img_channels = config.img_resolution, config.img_channels
        self.synthesis = SynthesisNetwork(config)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            config.z_dim,
            config.c_dim,
            config.w_dim,
            self.num_ws,
            num_layers=config.mapping_layers,
            lr_multiplier=config.mapping_lr_multiplier,
            w_avg_beta=config.w_avg_beta,
        )

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        transform: torch.Tensor | np.ndarray | None = None,
        force_fp32: bool = False,
    ) -> torch.Tensor:
        """z [B, z_dim] -> image [B, C, res, res] (see MappingNetwork and SynthesisNetwork)."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, transform=transform, force_fp32=force_fp32)
