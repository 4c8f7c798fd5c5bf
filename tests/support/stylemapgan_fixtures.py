"""StyleMapGAN checkpoints in the published layout with random weights (no download).

`write_checkpoint` writes what train.py saves: a dict with `train_args` (an argparse.Namespace),
`g_ema`, `e_ema` and, with full=True, the training copies and optimiser states too. The storages
can be tagged `cuda:0` (as the released files, saved from a GPU) and the container can be the
legacy non-zip one (torch 1.4).
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from unittest import mock

import torch

from ganvid.nn.stylegan2 import rosinality_channels
from ganvid.nn.stylemapgan import Encoder, Generator, StyleMapGANConfig

TINY = dict(size=32, latent_spatial=4, latent_channels=8, mapping_layers=2)
TINY_CHANNELS = rosinality_channels(32, 2, channel_max=16, channel_base=128)


def train_args(config: StyleMapGANConfig, dataset: str = "celeba_hq") -> argparse.Namespace:
    """Every field train.py's parser has (values of the README commands where not shaped by
    `config`), plus the ones train.py adds."""
    return argparse.Namespace(
        train_lmdb="data/celeba_hq/LMDB_train",
        val_lmdb="data/celeba_hq/LMDB_val",
        ckpt=None,
        dataset=dataset,
        iter=1400000,
        save_network_interval=10000,
        small_generator=config.small_generator,
        batch=16,
        size=config.size,
        r1=10.0,
        d_reg_every=16,
        lr=0.002,
        lr_mul=config.lr_mul,
        channel_multiplier=2,
        latent_channel_size=config.latent_channels,
        latent_spatial_size=config.latent_spatial,
        num_workers=2,
        normalize_mode=config.normalize_mode,
        mapping_layer_num=config.mapping_layers,
        lambda_x_rec_loss=1.0,
        lambda_adv_loss=1.0,
        lambda_w_rec_loss=1.0,
        lambda_d_loss=1.0,
        lambda_perceptual_loss=1.0,
        lambda_indomainGAN_D_loss=1.0,
        lambda_indomainGAN_E_loss=1.0,
        batch_per_gpu=8,
        ngpus=2,
        start_iter=0,
    )


def tiny_config(**overrides) -> StyleMapGANConfig:
    return StyleMapGANConfig(**{**TINY, "channels": TINY_CHANNELS, **overrides})


def randomise(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random parameters everywhere (biases too, so every path matters); buffers kept."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            scale = 0.2 if name.endswith("bias") else 1.0
            param.copy_(torch.randn(param.shape, generator=gen) * scale)
    return module.eval()


def tiny_networks(seed: int = 0, config: StyleMapGANConfig | None = None):
    config = config or tiny_config()
    return randomise(Generator(config), seed), randomise(Encoder(config), seed + 100)


def write_checkpoint(
    path: Path,
    seed: int = 0,
    full: bool = False,
    legacy: bool = True,
    cuda_tags: bool = True,
    config: StyleMapGANConfig | None = None,
    dataset: str = "celeba_hq",
    extra: dict | None = None,
) -> Path:
    """A checkpoint like the released files (legacy container, `cuda:0` storages by default).

    full: also the non-EMA `generator` / `encoder` (DIFFERENT random weights), a discriminator
    stand-in and Adam-like optimiser states, in train.py's key order."""
    config = config or tiny_config()
    g_ema, e_ema = tiny_networks(seed, config)
    payload: dict = {}
    if full:
        g_train, e_train = tiny_networks(seed + 7, config)
        payload.update(
            generator=g_train.state_dict(),
            discriminator={"convs.0.0.weight": torch.randn(4, 3, 1, 1)},
            encoder=e_train.state_dict(),
        )
    payload.update(g_ema=g_ema.state_dict(), e_ema=e_ema.state_dict())
    payload["train_args"] = train_args(config, dataset)
    if full:
        for name in ("e_optim", "g_optim", "d_optim"):
            payload[name] = {
                "state": {
                    140230000000 + k: {"step": 10, "exp_avg": torch.zeros(3)} for k in (1, 2)
                },
                "param_groups": [{"lr": 0.002, "betas": (0.0, 0.99), "params": [1, 2]}],
            }
    payload.update(extra or {})
    tag = mock.patch.object(torch.serialization, "location_tag", lambda storage: "cuda:0")
    with tag if cuda_tags else contextlib.nullcontext():
        torch.save(payload, path, _use_new_zipfile_serialization=not legacy)
    return path


class PartWhereRed(torch.nn.Module):
    """Stands in for BiSeNet: class `part` wherever the (ImageNet-normalised) red channel is
    above `threshold`, background elsewhere."""

    def __init__(self, part: str, threshold: float = 0.0) -> None:
        from ganvid.nn.face_parsing import CLASSES

        super().__init__()
        self.index, self.threshold = CLASSES.index(part), threshold
        self.gain = torch.nn.Parameter(torch.tensor(20.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from ganvid.nn.face_parsing import NUM_CLASSES

        logits = torch.zeros(x.shape[0], NUM_CLASSES, *x.shape[2:])
        logits[:, self.index] = (x[:, 0] > self.threshold).float() * self.gain
        return logits
