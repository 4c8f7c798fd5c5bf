"""Read the published ReStyle-over-StyleGAN3 checkpoints (`restyle_e4e_ffhq.pt`,
`restyle_pSp_ffhq.pt`) safely.

The file is a `torch.save` dict: `state_dict` (keys `encoder.*` and `decoder.*`), `opts` (the
training options, holding pathlib paths), `latent_avg` [512], and for e4e some training state
we ignore. It is read with `torch.load(weights_only=True)`, allowing only pathlib path classes
beyond the tensors and plain containers torch already accepts; anything else (a class or a
function the pickle would call) is refused with a CheckpointError naming it. Nothing from the
file is executed.

Network shapes are read from the weights, not from `opts`, so narrower networks built by the
tests in the same layout load the same way. e4e and pSp files hold the same keys: the forward
rule comes from `opts['encoder_type']`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ganvid.errors import CheckpointError
from ganvid.nn.checkpoints import (
    TRANSFORM_KEY,
    generator_from_state_dict,
    load_state_dict_strict,
    name_list,
    safe_torch_load,
)
from ganvid.nn.encoders import (
    ENCODER_TYPES,
    BackboneEncoder,
    ReStyleEncoderConfig,
    ReStyleInverter,
    build_encoder,
)
from ganvid.nn.irse50 import irse_config_from_state_dict

ENCODER_PREFIX = "encoder."
DECODER_PREFIX = "decoder."


@dataclass
class ReStyleCheckpoint:
    """A loaded ReStyle checkpoint.

    kind: 'e4e' or 'psp'. encoder: the 6-channel encoder (eval mode). generator: the StyleGAN3
    decoder stored with it. latent_avg: [w_dim] start latent. opts: the stored training options
    (paths as pure pathlib objects). n_iters: the iterations it was trained with.
    """

    kind: str
    encoder: BackboneEncoder
    generator: nn.Module
    latent_avg: torch.Tensor
    opts: dict
    n_iters: int = 3

    def inverter(
        self, n_iters: int | None = None, generator: nn.Module | None = None
    ) -> ReStyleInverter:
        """A ReStyleInverter over this checkpoint's decoder, or over `generator` (e.g. a
        PTI-tuned one with the same latent space)."""
        return ReStyleInverter(
            self.encoder,
            self.generator if generator is None else generator,
            self.latent_avg,
            n_iters=self.n_iters if n_iters is None else n_iters,
        )


def load_restyle(
    path: str | Path,
    device: str | torch.device = "cpu",
    kind: str | None = None,
    with_decoder: bool = True,
) -> ReStyleCheckpoint:
    """Load a ReStyle e4e / pSp checkpoint.

    kind: 'e4e' / 'psp' to override `opts['encoder_type']` (needed only if opts lacks it).
    with_decoder: False skips building the stored StyleGAN3 (then pass a generator to
        `ReStyleCheckpoint.inverter`); `generator` is None in that case.
    Raises CheckpointError for an unsafe or malformed file, naming missing / unexpected keys.
    """
    path = Path(path)
    payload = safe_torch_load(path)
    if not isinstance(payload, Mapping) or "state_dict" not in payload:
        raise CheckpointError(
            f"{path} is not a ReStyle checkpoint (expected a dict with 'state_dict', 'opts', "
            "'latent_avg')"
        )
    state = payload["state_dict"]
    opts = dict(payload.get("opts") or {})
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: 'state_dict' is a {type(state).__name__}, not a dict")
    _reject_foreign_keys(path, state)
    kind = kind or _kind_from_opts(path, opts)
    encoder = _build_encoder(path, state, kind)
    generator = _build_decoder(path, state) if with_decoder else None
    latent_avg = _latent_avg(path, payload, encoder.config.w_dim, generator)
    device = torch.device(device)
    return ReStyleCheckpoint(
        kind=kind,
        encoder=encoder.to(device).eval(),
        generator=generator.to(device).eval() if generator is not None else None,
        latent_avg=latent_avg.to(device),
        opts=opts,
        n_iters=int(opts.get("n_iters_per_batch") or 3),
    )


def _reject_foreign_keys(path: Path, state: Mapping) -> None:
    foreign = [k for k in state if not k.startswith((ENCODER_PREFIX, DECODER_PREFIX))]
    if foreign:
        raise CheckpointError(
            f"{path}: unexpected keys outside encoder./decoder.: {name_list(foreign)}"
        )


def _kind_from_opts(path: Path, opts: Mapping) -> str:
    encoder_type = opts.get("encoder_type")
    if encoder_type in ENCODER_TYPES:
        return ENCODER_TYPES[encoder_type]
    raise CheckpointError(
        f"{path}: opts encoder_type is {encoder_type!r}; supported ReStyle encoders are "
        f"{', '.join(ENCODER_TYPES)}"
    )


def sub_state_dict(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """Keys under `prefix`, with the prefix removed."""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def encoder_config_from_state_dict(
    state: Mapping[str, torch.Tensor], kind: str
) -> ReStyleEncoderConfig:
    """ReStyleEncoderConfig read from an encoder state dict (no prefix)."""
    backbone = irse_config_from_state_dict(dict(state))
    num_ws = 0
    while f"styles.{num_ws}.linear.weight" in state:
        num_ws += 1
    if num_ws == 0:
        raise KeyError("styles.0.linear.weight")
    convs = sum(1 for k in state if re.fullmatch(r"styles\.0\.convs\.\d+\.weight", k))
    units = backbone["units"]
    if len(units) != 4:
        raise ValueError(f"IR-SE stages: found depths {backbone['widths']}, expected 4 stages")
    return ReStyleEncoderConfig(
        kind=kind,
        in_channels=backbone["in_channels"],
        widths=backbone["widths"],
        units=units,
        num_ws=num_ws,
        w_dim=int(state["styles.0.linear.weight"].shape[0]),
        input_size=2**convs * 2 ** len(units),
    )


def _build_encoder(path: Path, state: Mapping, kind: str) -> BackboneEncoder:
    weights = sub_state_dict(state, ENCODER_PREFIX)
    try:
        config = encoder_config_from_state_dict(weights, kind)
    except KeyError as error:
        raise CheckpointError(
            f"{path}: not a ReStyle IR-SE50 encoder (no {ENCODER_PREFIX}{error.args[0]})"
        ) from error
    except ValueError as error:
        raise CheckpointError(f"{path}: not a ReStyle IR-SE50 encoder layout ({error})") from error
    encoder = build_encoder(config)
    load_state_dict_strict(encoder, weights, f"{path} encoder", ENCODER_PREFIX)
    return encoder


def _build_decoder(path: Path, state: Mapping) -> nn.Module:
    weights = sub_state_dict(state, DECODER_PREFIX)
    if not weights:
        raise CheckpointError(f"{path} holds no decoder.* weights (a StyleGAN3 generator)")
    # The stored input transform is the last training batch's [B, 3, 3]: not part of the model.
    weights.pop(TRANSFORM_KEY, None)
    return generator_from_state_dict(weights, source=f"{path} decoder")


def _latent_avg(
    path: Path, payload: Mapping, w_dim: int, generator: nn.Module | None
) -> torch.Tensor:
    latent = payload.get("latent_avg")
    if latent is None and generator is not None:
        latent = generator.mapping.w_avg  # the reference stores exactly this tensor
    if not isinstance(latent, torch.Tensor):
        raise CheckpointError(f"{path} has no 'latent_avg' tensor")
    latent = latent.detach().float()
    if latent.ndim == 2 and latent.shape[0] == 1:
        latent = latent[0]
    if latent.shape != (w_dim,):
        raise CheckpointError(
            f"{path}: latent_avg has shape {list(latent.shape)}, expected [{w_dim}]"
        )
    return latent.clone()
