"""Read the published StyleMapGAN checkpoints (`celeba_hq_256_8x8.pt`, `ffhq_1024_16x16.pt`, ...)
without running anything from the file.

A file is the dict train.py saves: `generator`, `discriminator`, `encoder`, `g_ema`, `e_ema`,
`train_args`, and three optimiser states, or a trimmed dict with only `train_args`, `g_ema` and
`e_ema`. The released files were written by torch 1.4 (the legacy, non-zip container) from GPU
memory (storages tagged `cuda:0`); re-saved ones may be zip files. Both are read with
`torch.load(weights_only=True)` onto the CPU, allowing `argparse.Namespace` (the type of
`train_args`) and nothing else beyond tensors and plain containers.

Only three keys are used: `train_args` builds the networks, `g_ema` and `e_ema` (the averaged
generator and encoder, what every official script runs) are loaded strictly. `generator` and
`encoder` are the non-averaged training copies, with different weights: they are never read.
Channel widths are read from the weights (the published table for channel_multiplier 2 in the
released files), so the narrow networks the tests build in the same layout load the same way.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ganvid.errors import CheckpointError
from ganvid.nn.checkpoints import load_state_dict_strict, name_list, safe_torch_load
from ganvid.nn.stylemapgan import Encoder, Generator, StyleMapGANConfig

#: The only class a StyleMapGAN checkpoint may ask the unpickler to build.
SAFE_GLOBALS = [argparse.Namespace]
#: What inference reads; everything else in the file is training state.
INFERENCE_KEYS = ("train_args", "g_ema", "e_ema")


@dataclass
class StyleMapGAN:
    """A loaded checkpoint: the EMA generator and encoder (eval mode, no gradients), their
    config, and `train_args` as a plain dict (dataset picks the official editing variant)."""

    config: StyleMapGANConfig
    generator: Generator
    encoder: Encoder
    train_args: dict[str, Any]

    @property
    def dataset(self) -> str:
        return str(self.train_args.get("dataset", ""))

    @property
    def device(self) -> torch.device:
        return self.generator.input_device


def channels_from_weights(g_ema: Mapping[str, torch.Tensor], size: int, spatial: int) -> tuple:
    """Feature channels per resolution 4..size read from g_ema's shapes; resolutions below the
    stylemap (never built) are given the stylemap's width. KeyError names a missing tensor."""

    def shape(key: str) -> tuple[int, ...]:
        if key not in g_ema:
            raise KeyError(key)
        return tuple(g_ema[key].shape)

    by_resolution = {spatial: shape("decoder.input.input")[1]}
    res, j = spatial, 0
    while res < size:
        res *= 2
        by_resolution[res] = shape(f"decoder.convs.{j}.conv2.conv.weight")[1]
        j += 1
    resolutions = [2**i for i in range(2, size.bit_length())]
    return tuple(by_resolution.get(r, by_resolution[spatial]) for r in resolutions)


def _train_args(path: Path, payload: Mapping) -> dict[str, Any]:
    args = payload.get("train_args")
    if isinstance(args, argparse.Namespace):
        return dict(vars(args))
    if isinstance(args, Mapping):
        return dict(args)
    raise CheckpointError(
        f"{path}: 'train_args' is {type(args).__name__}, expected the argparse.Namespace "
        "train.py stores"
    )


def _state_dict(path: Path, payload: Mapping, key: str) -> dict[str, torch.Tensor]:
    state = payload.get(key)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{path}: '{key}' is {type(state).__name__}, not a state dict")
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: entries of '{key}' that are not tensors: {name_list(bad)}")
    return dict(state)


def load_stylemapgan(path: str | Path, device: str | torch.device = "cpu") -> StyleMapGAN:
    """Load a StyleMapGAN checkpoint file onto `device` (names are resolved by the caller).

    Raises CheckpointError for an unsafe file (naming the refused global), a file without the
    three inference keys, a configuration this code does not build, or weights that do not
    match it (missing, unexpected and mis-shaped tensors named as `g_ema.*` / `e_ema.*`).
    """
    path = Path(path)
    payload = safe_torch_load(path, SAFE_GLOBALS, "argparse.Namespace (train_args)")
    if not isinstance(payload, Mapping):
        raise CheckpointError(f"{path} is not a StyleMapGAN checkpoint (not a dict)")
    absent = [key for key in INFERENCE_KEYS if key not in payload]
    if absent:
        raise CheckpointError(
            f"{path} is not a StyleMapGAN checkpoint: no {', '.join(absent)} (it needs "
            "train_args, g_ema and e_ema)"
        )
    args = _train_args(path, payload)
    g_state = _state_dict(path, payload, "g_ema")
    e_state = _state_dict(path, payload, "e_ema")
    try:
        size, spatial = int(args["size"]), int(args["latent_spatial_size"])
        channels = channels_from_weights(g_state, size, spatial)
    except KeyError as error:
        raise CheckpointError(f"{path}: no {error.args[0]} in the checkpoint") from error
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: unreadable train_args ({error})") from error
    try:
        config = StyleMapGANConfig.from_train_args(args, channels)
    except KeyError as error:
        raise CheckpointError(f"{path}: train_args lacks {error.args[0]}") from error
    except (TypeError, ValueError) as error:
        raise CheckpointError(f"{path}: unsupported StyleMapGAN configuration: {error}") from error
    generator, encoder = Generator(config), Encoder(config)
    load_state_dict_strict(generator, g_state, str(path), "g_ema.", "a StyleMapGAN generator")
    load_state_dict_strict(encoder, e_state, str(path), "e_ema.", "a StyleMapGAN encoder")
    generator = generator.to(device).eval().requires_grad_(False)
    encoder = encoder.to(device).eval().requires_grad_(False)
    return StyleMapGAN(config, generator, encoder, args)
