"""Read the published StyleGANEX checkpoints (`styleganex_inversion.pt`, `styleganex_edit_*.pt`,
`styleganex_toonify_*.pt`) and stock StyleGAN2 `g_ema` files, safely and strictly.

A StyleGANEX file is a `torch.save` dict:

    state_dict     encoder.* (IR-SE50 + heads + featlayer (+ fusion)) and decoder.* (StyleGAN2)
    opts           the training options: a dict of plain values (str/int/float/bool/None)
    latent_avg     [18, 512], added to the encoder output
    editing_w      [K, 18, 512], edit checkpoints only (row 0 is the edit)
    discriminator  edit/toonify files carry the training discriminator: ignored, never built

It is read with `torch.load(weights_only=True)`: only tensors and plain containers are rebuilt,
so no code in the file runs; anything else (a class the pickle would call) is refused with a
CheckpointError naming it. `opts` must hold plain values only. Unlike the official loader
(`strict=False`, which leaves a misnamed weight at its random init), every missing, unexpected
or mis-shaped key is an error that names the keys. The one tolerated absence is documented:
a stock StyleGAN2 `g_ema` lacks the `blur_weight` buffers of the StyleGANEX decoder (constants
the constructor makes), so loading one into `StyleGANEXGenerator` fills them in.

Network widths are read from the weight shapes and switches from `opts`, so the narrow networks
that the tests write in the same layout load through the same code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ganvid.errors import CheckpointError
from ganvid.nn.checkpoints import load_state_dict_strict, name_list, safe_torch_load
from ganvid.nn.irse50 import irse_config_from_state_dict
from ganvid.nn.stylegan2 import Generator, stylegan2_config_from_state_dict
from ganvid.nn.styleganex import (
    MAX_FUSION_LAYERS,
    EncoderConfig,
    StyleGANEX,
    StyleGANEXConfig,
    StyleGANEXGenerator,
)

ENCODER_PREFIX = "encoder."
DECODER_PREFIX = "decoder."
REQUIRED_ENTRIES = ("state_dict", "opts", "latent_avg")
OPTIONAL_ENTRIES = ("editing_w",)
#: Stored by the official coach for edit/toonify models; nothing at inference uses it.
IGNORED_ENTRIES = ("discriminator",)
#: Types an `opts` value may have (argparse values).
OPTS_VALUE_TYPES = (str, int, float, bool, type(None))
#: opts that the official pSp reads unconditionally.
REQUIRED_OPTS = ("encoder_type", "input_nc", "output_size", "start_from_latent_avg")
#: opts read only when skip fusion is on.
SKIP_OPTS = ("skip_max_layer", "use_skip_torgb", "use_att")
#: Buffers that are fixed filters in every generator: a file must hold the same values.
CONSTANT_BUFFER_SUFFIXES = ("blur.kernel", "upsample.kernel", "blur_weight")
#: The documented tolerated absence: a stock StyleGAN2 lacks the StyleGANEX blur constants.
STOCK_ABSENT_SUFFIX = "blur_weight"


def load_styleganex(
    source: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> StyleGANEX:
    """Load a StyleGANEX checkpoint into an eval-mode, frozen `StyleGANEX` on `device`.

    source: the checkpoint file (a weights-manager name is resolved by the caller, e.g.
        `ganvid.weights.resolve('styleganex-toonify-cartoon')`).
    Raises CheckpointError for a missing, unsafe or malformed file, an unsupported configuration
    (sketch/mask input, feat_ind != 0, learn_in_w) or any key mismatch (named).
    """
    path = Path(source)
    payload = read_payload(path)
    opts = checked_opts(path, payload["opts"])
    state = checked_state_dict(path, payload["state_dict"])
    config = styleganex_config(path, opts, state)
    latent_avg = _tensor_entry(path, payload, "latent_avg")
    editing_w = _tensor_entry(path, payload, "editing_w") if "editing_w" in payload else None
    latent_avg = _latent_avg_rows(path, latent_avg, config)
    try:
        model = StyleGANEX(config, latent_avg, editing_w, opts)
    except ValueError as error:
        raise CheckpointError(f"{path}: {error}") from error
    check_constant_buffers(model, state, str(path))
    load_state_dict_strict(model, state, str(path))
    return model.to(device=torch.device(device), dtype=dtype).eval().requires_grad_(False)


def read_payload(path: Path) -> dict:
    """The checkpoint dict, read safely, with its top-level entries checked by name."""
    payload = safe_torch_load(path)
    if not isinstance(payload, Mapping):
        raise CheckpointError(
            f"{path} is not a StyleGANEX checkpoint: expected a dict with "
            f"{', '.join(REQUIRED_ENTRIES)}, got a {type(payload).__name__}"
        )
    missing = [k for k in REQUIRED_ENTRIES if k not in payload]
    known = REQUIRED_ENTRIES + OPTIONAL_ENTRIES + IGNORED_ENTRIES
    unknown = [str(k) for k in payload if k not in known]
    if missing or unknown:
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"unknown entries {', '.join(unknown)}"] if unknown else []
        raise CheckpointError(
            f"{path} is not a StyleGANEX checkpoint ({'; '.join(parts)}); expected "
            f"{', '.join(REQUIRED_ENTRIES)} and optionally {', '.join(OPTIONAL_ENTRIES)}, "
            f"{', '.join(IGNORED_ENTRIES)}"
        )
    return dict(payload)


def checked_opts(path: Path, opts: object) -> dict:
    """opts as a dict of plain values; CheckpointError names anything else."""
    if not isinstance(opts, Mapping):
        raise CheckpointError(f"{path}: 'opts' is a {type(opts).__name__}, not a dict")
    odd = [
        f"{key} ({type(value).__name__})"
        for key, value in opts.items()
        if not isinstance(key, str) or not isinstance(value, OPTS_VALUE_TYPES)
    ]
    if odd:
        raise CheckpointError(
            f"{path}: 'opts' may hold only str/int/float/bool/None values; found {', '.join(odd)}"
        )
    return dict(opts)


def checked_state_dict(path: Path, state: object) -> dict[str, torch.Tensor]:
    """state_dict as {key: tensor} with every key under encoder. or decoder."""
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: 'state_dict' is a {type(state).__name__}, not a dict")
    foreign = [str(k) for k in state if not str(k).startswith((ENCODER_PREFIX, DECODER_PREFIX))]
    not_tensors = [str(k) for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if foreign or not_tensors:
        detail = f"keys outside encoder./decoder.: {name_list(foreign)}" if foreign else ""
        if not_tensors:
            detail += ("; " if detail else "") + f"non-tensor values: {name_list(not_tensors)}"
        raise CheckpointError(f"{path}: unexpected state_dict contents ({detail})")
    return dict(state)


def styleganex_config(path: Path, opts: Mapping, state: Mapping) -> StyleGANEXConfig:
    """StyleGANEXConfig: switches from opts, widths from the weight shapes."""
    absent = [k for k in REQUIRED_OPTS if k not in opts]
    use_skip = bool(opts.get("use_skip", False))
    absent += [k for k in SKIP_OPTS if use_skip and k not in opts]
    if absent:
        raise CheckpointError(f"{path}: opts lacks {', '.join(absent)}")
    _refuse_unsupported(path, opts)
    try:
        decoder = stylegan2_config_from_state_dict(dict(state), DECODER_PREFIX)
        backbone = irse_config_from_state_dict(dict(state), ENCODER_PREFIX)
        n_styles = _count(state, ENCODER_PREFIX + "styles.{}.linear.weight")
        style_dim = int(state[ENCODER_PREFIX + "styles.0.linear.weight"].shape[0])
        f_channels = int(state[ENCODER_PREFIX + "featlayer.weight"].shape[0])
    except KeyError as error:
        raise CheckpointError(
            f"{path}: not the StyleGANEX layout, {error.args[0]} is missing"
        ) from error
    if decoder.size != opts["output_size"]:
        raise CheckpointError(
            f"{path}: opts output_size is {opts['output_size']} but the decoder weights are for "
            f"{decoder.size} px"
        )
    if backbone["in_channels"] != 3:
        raise CheckpointError(
            f"{path}: the encoder takes {backbone['in_channels']} channels, not 3"
        )
    try:
        encoder = EncoderConfig(
            widths=tuple(backbone["widths"]),
            units=tuple(backbone["units"]),
            n_styles=n_styles,
            style_dim=style_dim,
            f_channels=f_channels,
            decoder_channels=decoder.channels[:MAX_FUSION_LAYERS],
            max_pooling=bool(opts.get("max_pooling", False)),
            use_skip=use_skip,
            skip_max_layer=int(opts.get("skip_max_layer", MAX_FUSION_LAYERS)),
            use_skip_torgb=bool(opts.get("use_skip_torgb", False)),
            use_att=int(opts.get("use_att", 0)),
        )
        return StyleGANEXConfig(decoder, encoder, bool(opts["start_from_latent_avg"]))
    except ValueError as error:
        raise CheckpointError(f"{path}: {error}") from error


def _refuse_unsupported(path: Path, opts: Mapping) -> None:
    """Configurations of the StyleGANEX code base that ganvid does not run."""
    reasons = []
    if opts["encoder_type"] != "GradualStyleEncoder":
        reasons.append(f"encoder_type {opts['encoder_type']!r} (only GradualStyleEncoder)")
    if opts["input_nc"] != 3:
        reasons.append(f"input_nc {opts['input_nc']} (sketch/mask-to-face models)")
    if opts.get("feat_ind", 0) != 0:
        reasons.append(f"feat_ind {opts['feat_ind']} (f must enter the first layer)")
    if opts.get("learn_in_w", False):
        reasons.append("learn_in_w (a single w instead of w+)")
    size = opts["output_size"]
    if opts.get("n_styles") is not None and isinstance(size, int) and size > 0:
        if opts["n_styles"] != 2 * int(math.log2(size)) - 2:
            reasons.append(f"n_styles {opts['n_styles']} for output_size {size}")
    if reasons:
        raise CheckpointError(f"{path}: unsupported StyleGANEX configuration: {'; '.join(reasons)}")


def _tensor_entry(path: Path, payload: Mapping, name: str) -> torch.Tensor:
    value = payload[name]
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise CheckpointError(
            f"{path}: '{name}' must be a float tensor, got {type(value).__name__}"
        )
    return value.detach().float()


def _latent_avg_rows(path: Path, latent: torch.Tensor, config: StyleGANEXConfig) -> torch.Tensor:
    """latent_avg as [n_styles, style_dim] (a single [style_dim] row is repeated, as pSp does)."""
    n, d = config.encoder.n_styles, config.encoder.style_dim
    if latent.shape == (d,):
        latent = latent.expand(n, d)
    if latent.shape != (n, d):
        raise CheckpointError(f"{path}: latent_avg is {list(latent.shape)}, expected [{n}, {d}]")
    return latent


def check_constant_buffers(module: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """The fixed blur filters in `state` must equal the ones the module builds."""
    own = module.state_dict()
    differ = [
        key
        for key, value in state.items()
        if key.endswith(CONSTANT_BUFFER_SUFFIXES)
        and key in own
        and (value.shape != own[key].shape or not torch.allclose(value.float(), own[key].float()))
    ]
    if differ:
        raise CheckpointError(
            f"{what}: the fixed blur filters differ from StyleGAN2's at {name_list(differ)}; "
            "this is not a generator ganvid can run"
        )


def load_stylegan2(
    source: str | Path | Mapping[str, torch.Tensor],
    styleganex: bool = False,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> tuple[Generator, torch.Tensor | None]:
    """A rosinality StyleGAN2 generator from a file (its `g_ema` entry, or the file itself if it
    is a bare state dict; names are resolved by the caller) or a state dict.

    styleganex=True builds a `StyleGANEXGenerator` from the same weights (e.g. a toonified or
    StyleGAN-NADA generator for the StyleGANEX decoder). Returns (generator, latent_avg): the
    file's `latent_avg` [style_dim] when present, else None.
    """
    what = str(source) if isinstance(source, str | Path) else "StyleGAN2 state dict"
    latent_avg = None
    state = source
    if isinstance(source, str | Path):
        payload = safe_torch_load(source)
        if not isinstance(payload, Mapping):
            raise CheckpointError(f"{what} is not a StyleGAN2 checkpoint dict")
        if "g_ema" in payload:
            state = payload["g_ema"]
            latent_avg = payload.get("latent_avg")
        else:
            state = payload
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{what}: g_ema is a {type(state).__name__}, not a state dict")
    try:
        config = stylegan2_config_from_state_dict(dict(state))
    except (KeyError, ValueError) as error:
        raise CheckpointError(f"{what} is not a rosinality StyleGAN2 generator: {error}") from error
    generator = (StyleGANEXGenerator if styleganex else Generator)(config)
    load_generator_weights(generator, state, what)
    if latent_avg is not None and not isinstance(latent_avg, torch.Tensor):
        raise CheckpointError(f"{what}: latent_avg is not a tensor")
    generator = generator.to(device=torch.device(device), dtype=dtype).eval().requires_grad_(False)
    return generator, latent_avg


def load_generator_weights(
    generator: Generator, state: Mapping[str, torch.Tensor], what: str
) -> None:
    """Strictly load rosinality StyleGAN2 weights into a Generator or StyleGANEXGenerator.

    Into a StyleGANEXGenerator, the stock file's absent `blur_weight` constants are taken from
    the generator itself (the only tolerated absence); every other difference is an error.
    """
    state = dict(state)
    if isinstance(generator, StyleGANEXGenerator):
        own = generator.state_dict()
        for key in own:
            if key.endswith(STOCK_ABSENT_SUFFIX) and key not in state:
                state[key] = own[key]
    check_constant_buffers(generator, state, what)
    load_state_dict_strict(generator, state, what)


def _count(state: Mapping, pattern: str) -> int:
    n = 0
    while pattern.format(n) in state:
        n += 1
    if n == 0:
        raise KeyError(pattern.format(0))
    return n
