"""ReStyle checkpoints in the published layout, built by code with random weights.

`save_restyle_checkpoint` writes what stylegan3-editing's coaches save: a dict with
`state_dict` (`encoder.*` = IR-SE50 + style heads, `decoder.*` = a StyleGAN3 whose
`synthesis.input.transform` holds the last training batch [2, 3, 3]), `opts` (the training
options as a plain dict with pathlib values), `latent_avg` (the decoder's w_avg, same storage),
and for e4e the training extras (step, optimizer state, best loss, latent discriminator).

The published files use widths (64, 128, 256, 512), 16 heads at 256 px and an SG3-R 1024
decoder; `published_layout_encoder` keeps every key and the 24-unit / 16-head structure at a
narrower width, `tiny_restyle_encoder` is smaller still for training in tests.
"""

from __future__ import annotations

from pathlib import Path, PosixPath

import torch

from ganvid.nn.encoders import BackboneEncoder, ReStyleEncoderConfig, build_encoder
from ganvid.nn.stylegan3 import Generator

#: Reduced widths: each divisible by 16 (SE gate) and distinct per stage (a stage starts where
#: the depth changes: strides are not stored in a state dict).
NARROW_WIDTHS = (16, 32, 48, 64)


def randomize_batchnorm(encoder: torch.nn.Module, seed: int) -> None:
    """Give every BatchNorm non-trivial running stats and affine weights, so a loader that
    skips any of them changes the output."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in encoder.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
                module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(n, generator=gen) * 0.1)
                module.num_batches_tracked.fill_(1000)


def published_layout_encoder(kind: str, G: Generator, seed: int = 0) -> BackboneEncoder:
    """24 IR-SE units and num_ws heads at 256 px like the real files, narrow widths."""
    config = ReStyleEncoderConfig(
        kind=kind, widths=NARROW_WIDTHS, num_ws=G.num_ws, w_dim=G.w_dim, input_size=256
    )
    torch.manual_seed(seed)
    encoder = build_encoder(config).eval()
    randomize_batchnorm(encoder, seed)
    return encoder


def tiny_restyle_encoder(kind: str, G: Generator, input_size: int = 32, seed: int = 0):
    """A 5-unit encoder for training inside a test (input_size px, heads of 1 conv)."""
    config = ReStyleEncoderConfig(
        kind=kind,
        widths=NARROW_WIDTHS,
        units=(1, 1, 2, 1),
        num_ws=G.num_ws,
        w_dim=G.w_dim,
        input_size=input_size,
    )
    torch.manual_seed(seed)
    return build_encoder(config)


def restyle_opts(kind: str) -> dict:
    """`dataclasses.asdict(TrainOptions)` as the coaches store it: pathlib values included."""
    opts = {
        "exp_dir": PosixPath("experiments/restyle_e4e_ffhq"),
        "dataset_type": "ffhq_encode",
        "encoder_type": "ProgressiveBackboneEncoder" if kind == "e4e" else "BackboneEncoder",
        "input_nc": 6,
        "output_size": 1024,
        "n_iters_per_batch": 3,
        "batch_size": 2,
        "test_batch_size": 2,
        "workers": 2,
        "test_workers": 2,
        "learning_rate": 0.0001,
        "optim_name": "ranger",
        "train_decoder": False,
        "start_from_latent_avg": True,
        "lpips_lambda": 0.8,
        "id_lambda": 0.1,
        "l2_lambda": 1.0,
        "w_norm_lambda": 0,
        "moco_lambda": 0,
        "stylegan_weights": PosixPath("pretrained_models/sg3-r-ffhq-1024.pt"),
        "checkpoint_path": None,
        "max_steps": 1000000,
        "image_interval": 100,
        "board_interval": 50,
        "val_interval": 5000,
        "save_interval": None,
        "max_val_batches": None,
        "device": "cuda:0",
    }
    if kind == "e4e":
        opts.update(
            w_discriminator_lambda=0.1,
            w_discriminator_lr=2e-05,
            r1=10,
            d_reg_every=16,
            use_w_pool=True,
            w_pool_size=50,
            truncation_psi=1.0,
            delta_norm=2,
            delta_norm_lambda=0.0002,
            progressive_steps=[0, 20000, 22000, 24000],
            progressive_start=20000,
            progressive_step_every=2000,
            save_training_data=False,
            sub_exp_dir=None,
            resume_training_from_ckpt=None,
            update_param_list=None,
        )
    return opts


def _training_extras(encoder: BackboneEncoder) -> dict:
    """What the e4e coach adds: step, Ranger-like optimizer state, best loss, discriminator."""
    first = next(encoder.parameters())
    disc = {"mlp.0.weight": torch.randn(8, first.shape[-1] if first.ndim > 1 else 8)}
    return {
        "global_step": 1234,
        "optimizer": {
            "state": {0: {"step": 1234, "exp_avg": torch.zeros_like(first)}},
            "param_groups": [{"lr": 1e-4, "betas": (0.95, 0.999), "alpha": 0.5, "params": [0]}],
        },
        "best_val_loss": 0.3141,
        "discriminator_state_dict": disc,
        "discriminator_optimizer_state_dict": {"state": {}, "param_groups": []},
    }


def restyle_payload(kind: str, encoder: BackboneEncoder, G: Generator) -> dict:
    """The dict a coach saves (before torch.save)."""
    decoder = dict(G.state_dict())
    decoder["synthesis.input.transform"] = torch.eye(3).repeat(2, 1, 1)  # last batch of 2
    state = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    state.update({f"decoder.{k}": v for k, v in decoder.items()})
    payload = {
        "state_dict": state,
        "opts": restyle_opts(kind),
        "latent_avg": state["decoder.mapping.w_avg"],  # the very same tensor, as published
    }
    if kind == "e4e":
        payload.update(_training_extras(encoder))
    return payload


def save_restyle_checkpoint(
    path: str | Path, kind: str, encoder: BackboneEncoder, G: Generator, **changes
) -> Path:
    """torch.save the published-layout dict; `changes` replace or add top-level entries."""
    payload = restyle_payload(kind, encoder, G)
    payload.update(changes)
    torch.save(payload, path)
    return Path(path)


def save_alexnet_trunk(path: str | Path, seed: int = 1) -> dict[str, torch.Tensor]:
    """A random AlexNet in torchvision's state-dict layout (`features.N.*`; one classifier key,
    which LPIPS ignores), standing in for `alexnet-owt-7be5be79.pth`. Returns what was saved."""
    import torchvision

    torch.manual_seed(seed)
    features = torchvision.models.alexnet().features.state_dict()
    state = {f"features.{k}": v for k, v in features.items()}
    state["classifier.1.weight"] = torch.zeros(2, 2)
    torch.save(state, path)
    return state
