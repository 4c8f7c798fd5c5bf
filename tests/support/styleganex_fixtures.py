"""StyleGANEX checkpoints in the published layout, built by code with random weights.

The networks are narrow (IR-SE50 widths 16/32/48/64, w 32-d, decoder channels 32 .. 2) but
keep every key of the published files: the 1024 px decoder with 18 w+ rows, the 24-unit IR-SE50,
18 heads, featlayer/skiplayer and 7 fusion layers. Files hold what the official coach saves:
state_dict, opts (the 55 training options as plain values), latent_avg [18, w], and for the
edit/toonify tasks a discriminator (ignored by the loader) and, for edit, editing_w [K, 18, w].
"""

from __future__ import annotations

from pathlib import Path

import torch

from ganvid.nn.stylegan2 import StyleGAN2Config, rosinality_channels
from ganvid.nn.styleganex import EncoderConfig, StyleGANEX, StyleGANEXConfig

#: Per-task switches, as in the README training commands.
TASKS = {
    "inversion": {"use_skip": False, "use_att": 0},
    "toonify": {"use_skip": True, "use_att": 0},
    "edit": {"use_skip": True, "use_att": 1},
}
STYLE_DIM = 32
EDIT_ROWS = 2


def narrow_config(task: str = "toonify") -> StyleGANEXConfig:
    """A small StyleGANEX with the published layout (1024 px decoder, 18 w+ rows)."""
    switches = TASKS[task]
    decoder = StyleGAN2Config(
        size=1024,
        style_dim=STYLE_DIM,
        n_mlp=2,
        channels=rosinality_channels(1024, channel_multiplier=2, channel_max=32, channel_base=1024),
    )
    encoder = EncoderConfig(
        widths=(16, 32, 48, 64),
        style_dim=STYLE_DIM,
        f_channels=decoder.channels[0],
        decoder_channels=decoder.channels[:7],
        use_skip=switches["use_skip"],
        skip_max_layer=7,
        use_att=switches["use_att"],
    )
    return StyleGANEXConfig(decoder=decoder, encoder=encoder)


def published_opts(task: str, output_size: int = 1024) -> dict:
    """The training options a published file of `task` stores (plain values only)."""
    switches = TASKS[task]
    opts = {
        "exp_dir": f"./logs/{task}",
        "dataset_type": "ffhq_encode",
        "encoder_type": "GradualStyleEncoder",
        "input_nc": 3,
        "label_nc": 0,
        "output_size": output_size,
        "feat_ind": 0,
        "max_pooling": False,
        "use_skip": switches["use_skip"],
        "use_skip_torgb": False,
        "skip_max_layer": 7,
        "crop_face": False,
        "affine_augment": False,
        "random_crop": False,
        "resize_factors": None,
        "blind_sr": False,
        "use_latent_mask": False,
        "latent_mask": "8,9,10,11,12,13,14,15,16,17",
        "res_num": 2,
        "toonify_weights": None,
        "generate_training_data": False,
        "use_att": switches["use_att"],
        "editing_w_path": "./pretrained_models/editing_w_age.pt" if task == "edit" else None,
        "zero_noise": task != "inversion",
        "direction_path": None,
        "batch_size": 4,
        "test_batch_size": 4,
        "workers": 4,
        "test_workers": 4,
        "learning_rate": 0.0001,
        "optim_name": "ranger",
        "train_decoder": False,
        "start_from_latent_avg": True,
        "learn_in_w": False,
        "lpips_lambda": 0.8,
        "id_lambda": 0.1,
        "l2_lambda": 1.0,
        "w_norm_lambda": 0.0,
        "lpips_lambda_crop": 0.0,
        "l2_lambda_crop": 0.0,
        "moco_lambda": 0.0,
        "adv_lambda": 0.1 if task != "inversion" else 0.0,
        "tmp_lambda": 30.0 if task != "inversion" else 0.0,
        "d_reg_every": 16,
        "r1": 10.0,
        "stylegan_weights": "./pretrained_models/stylegan2-ffhq-config-f.pt",
        "checkpoint_path": None,
        "max_steps": 10000,
        "image_interval": 100,
        "board_interval": 50,
        "val_interval": 1000,
        "save_interval": 10000,
        "use_wandb": False,
        "n_styles": 2 * (output_size.bit_length() - 1) - 2,
        "device": "cuda:0",
    }
    return opts


def randomize_(model: torch.nn.Module, seed: int) -> None:
    """Move every zero/one-initialised parameter and BatchNorm statistic off its init so that a
    weight left unloaded would show; the fixed blur filters and noise buffers are kept."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
            if name.endswith("noise.weight"):
                p.abs_()
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=gen))
            elif name.endswith("running_var"):
                b.copy_(0.5 + torch.rand(b.shape, generator=gen))


def calibrate_batchnorm_(model: StyleGANEX, seed: int) -> None:
    """Set the encoder's BatchNorm statistics to those of random images, as training would:
    random statistics let activations grow ~2x per IR-SE unit (to ~1e5 at unit 20), which
    saturates every render and hides what the tests look at."""
    gen = torch.Generator().manual_seed(seed)
    norms = [m for m in model.encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average: one pass gives the batch statistics
    model.encoder.train()
    with torch.no_grad():
        model.encoder.features(torch.rand(2, 3, 32, 32, generator=gen) * 2 - 1, [23])
    for norm in norms:
        norm.momentum = 0.1
    model.encoder.eval()


def build_model(task: str = "toonify", seed: int = 0) -> StyleGANEX:
    """A random narrow StyleGANEX for `task`, in eval mode."""
    torch.manual_seed(seed)
    config = narrow_config(task)
    gen = torch.Generator().manual_seed(seed + 1)
    n, d = config.encoder.n_styles, config.encoder.style_dim
    latent_avg = 0.5 * torch.randn(d, generator=gen).expand(n, d)
    editing_w = torch.randn(EDIT_ROWS, n, d, generator=gen) if task == "edit" else None
    model = StyleGANEX(config, latent_avg, editing_w, published_opts(task))
    randomize_(model, seed + 2)
    calibrate_batchnorm_(model, seed + 3)
    return model.eval()


def fake_discriminator(seed: int) -> dict[str, torch.Tensor]:
    """A few tensors under discriminator-like names (the loader must ignore them)."""
    gen = torch.Generator().manual_seed(seed)
    return {
        "convs.0.0.weight": torch.randn(8, 3, 1, 1, generator=gen),
        "final_linear.1.weight": torch.randn(1, 8, generator=gen),
    }


def checkpoint_payload(model: StyleGANEX, task: str, seed: int = 0) -> dict:
    """The dict the official coach would save for `model`, in its order."""
    payload: dict = {"state_dict": model.state_dict(), "opts": published_opts(task)}
    if task != "inversion":
        payload["discriminator"] = fake_discriminator(seed)
    if model.editing_w is not None:
        payload["editing_w"] = model.editing_w.clone()
    payload["latent_avg"] = model.latent_avg.clone()
    return payload


def write_checkpoint(path: Path, task: str = "toonify", seed: int = 0) -> StyleGANEX:
    """Write a narrow `styleganex_<task>`-style file; returns the model whose weights it holds."""
    model = build_model(task, seed)
    torch.save(checkpoint_payload(model, task, seed), path)
    return model
