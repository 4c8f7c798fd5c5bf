"""Tiny random StyleGAN3 generators and the files they are published in, built by code.

Other tests reuse these:
    G = tiny_generator("T", res=32)           # deterministic for a given seed
    save_nvidia_pickle(G, path)                # NVIDIA network-pickle layout (G, D, G_ema, ...)
    save_editing_pt(G, path)                   # stylegan3-editing .pt (flat G_ema.state_dict())
    save_pti_state_dict(G, path, batch=4)      # PTI-tuned: batched synthesis.input.transform
    save_generator(G, path)                    # ganvid's own format (ganvid.nn.checkpoints)

The NVIDIA pickle is written the way NVIDIA's persistence module writes it: every network
object becomes a call to `torch_utils.persistence._reconstruct_persistent_obj(meta)` with
meta = {type, version, module_src, class_name, state}, `dnnlib.util.EasyDict` for kwargs, torch's
tensor rebuild functions, numpy scalars and arrays in the state. `module_src` is a script that
writes `marker` and raises, so a loader that executes it is caught.
"""

from __future__ import annotations

import collections
import contextlib
import pickle
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganvid.nn.checkpoints import save_generator
from ganvid.nn.stylegan3 import Generator, SG3Config

__all__ = [
    "save_editing_pt",
    "save_generator",
    "save_nvidia_pickle",
    "save_pti_state_dict",
    "tiny_config",
    "tiny_generator",
]


def tiny_config(kind: str = "T", res: int = 32, **overrides) -> SG3Config:
    """A small R or T config: z = w = 32, widths <= 64 (R: 1x1 convs, so widths may be larger)."""
    fields = dict(z_dim=32, w_dim=32, channel_base=1024, channel_max=64)
    fields.update(overrides)
    make = SG3Config.config_r if kind.upper() == "R" else SG3Config.config_t
    return make(res, **fields)


def tiny_generator(kind: str = "T", res: int = 32, seed: int = 0, **overrides) -> Generator:
    """Random tiny generator in eval mode. Tensors that start as constants (biases, w_avg,
    magnitude EMAs, the input affine) are randomised too, so a loader that drops any of them
    changes the output."""
    torch.manual_seed(seed)
    G = Generator(tiny_config(kind, res, **overrides)).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, tensor in G.state_dict().items():
            if name.endswith(".bias") or name.endswith("w_avg"):
                tensor.add_(torch.randn(tensor.shape, generator=gen) * 0.1)
            elif name.endswith("magnitude_ema"):
                tensor.copy_(torch.rand([], generator=gen) + 0.5)
            elif name == "synthesis.input.affine.weight":
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.5)
    return G


# ----------------------------------------------------------------------------- flat state dicts


def save_editing_pt(G: Generator, path: str | Path) -> Path:
    """stylegan3-editing's generator file: torch.save(G_ema.state_dict())."""
    torch.save(G.state_dict(), path)
    return Path(path)


def save_pti_state_dict(G: Generator, path: str | Path, batch: int = 4) -> Path:
    """A PTI-tuned state dict: the transform buffer holds the last batch's [B, 3, 3] matrices."""
    sd = dict(G.state_dict())
    angles = torch.linspace(-0.3, 0.3, batch)
    transforms = torch.eye(3).repeat(batch, 1, 1)
    transforms[:, 0, 0], transforms[:, 1, 1] = angles.cos(), angles.cos()
    transforms[:, 0, 1], transforms[:, 1, 0] = angles.sin(), -angles.sin()
    sd["synthesis.input.transform"] = transforms
    torch.save(sd, path)
    return Path(path)


# ----------------------------------------------------------------------------- NVIDIA pickles


def _evil_source(marker: Path) -> str:
    return (
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('module_src was executed')\n"
        "raise RuntimeError('a loader executed module_src')\n"
    )


@contextlib.contextmanager
def _nvidia_globals() -> Iterator[tuple[types.FunctionType, type]]:
    """Temporarily provide `torch_utils.persistence._reconstruct_persistent_obj` and
    `dnnlib.util.EasyDict` so that pickle writes references to them (as NVIDIA's files do)."""
    names = ["torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util"]
    saved = {name: sys.modules.get(name) for name in names}
    modules = {name: types.ModuleType(name) for name in names}

    def reconstruct(meta):  # never called: the file is only written here
        raise RuntimeError("fake persistence function called")

    reconstruct.__module__ = "torch_utils.persistence"
    reconstruct.__qualname__ = reconstruct.__name__ = "_reconstruct_persistent_obj"
    easy_dict = type("EasyDict", (dict,), {"__module__": "dnnlib.util"})
    modules["torch_utils.persistence"]._reconstruct_persistent_obj = reconstruct
    modules["dnnlib.util"].EasyDict = easy_dict
    sys.modules.update(modules)
    try:
        yield reconstruct, easy_dict
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _nvidia_generator_kwargs(cfg: SG3Config) -> dict:
    """The Generator init_kwargs train.py stores (plus any non-default synthesis argument)."""
    kwargs = dict(
        z_dim=cfg.z_dim,
        w_dim=cfg.w_dim,
        mapping_kwargs={"num_layers": cfg.mapping_layers},
        channel_base=cfg.channel_base,
        channel_max=cfg.channel_max,
        magnitude_ema_beta=cfg.magnitude_ema_beta,
        c_dim=cfg.c_dim,
        img_resolution=cfg.img_resolution,
        img_channels=cfg.img_channels,
    )
    if cfg.name == "R":
        kwargs.update(conv_kernel=1, use_radial_filters=True)
    default = SG3Config()
    for name in ("num_layers", "num_critical", "margin_size", "num_fp16_res", "conv_clamp"):
        if getattr(cfg, name) != getattr(default, name):
            kwargs[name] = getattr(cfg, name)
    return kwargs


def _class_attributes(module: nn.Module, easy_dict: type) -> dict:
    """Plain attributes NVIDIA keeps on each object (numpy types included), and init kwargs."""
    spec = getattr(module, "spec", None)
    if spec is None:
        return {"_init_args": (), "_init_kwargs": easy_dict()}
    return {
        "is_torgb": spec.is_torgb,
        "use_fp16": np.bool_(spec.use_fp16),
        "in_size": np.array([spec.in_size, spec.in_size], dtype=np.int64),
        "out_size": np.array([spec.out_size, spec.out_size], dtype=np.int64),
        "in_cutoff": np.float64(spec.in_cutoff),
        "out_half_width": np.float64(spec.out_half_width),
        "up_factor": spec.up_factor,
        "down_factor": spec.down_factor,
        "padding": list(spec.padding),
        "_init_args": (),
        "_init_kwargs": easy_dict(
            in_sampling_rate=np.int64(spec.in_sampling_rate), in_cutoff=np.float64(spec.in_cutoff)
        ),
    }


def _module_state(module: nn.Module, children: dict, easy_dict: type) -> dict:
    hooks = ("_backward_hooks", "_forward_hooks", "_forward_pre_hooks", "_state_dict_hooks")
    state = {
        "training": False,
        "_parameters": collections.OrderedDict(
            (k, nn.Parameter(v.detach().clone(), requires_grad=False))
            for k, v in module._parameters.items()
        ),
        "_buffers": collections.OrderedDict(
            (k, None if v is None else v.detach().clone()) for k, v in module._buffers.items()
        ),
        "_non_persistent_buffers_set": set(),
        "_modules": collections.OrderedDict(children),
    }
    state.update({name: collections.OrderedDict() for name in hooks})
    state.update(_class_attributes(module, easy_dict))
    return state


class _NvidiaPickler(pickle.Pickler):
    """Writes nn.Modules as NVIDIA persistence records (reconstruct call with a meta dict)."""

    def __init__(self, file, module_src: str, reconstruct, easy_dict, G_kwargs: dict) -> None:
        super().__init__(file, protocol=4)
        self.module_src, self.reconstruct, self.easy_dict = module_src, reconstruct, easy_dict
        self.G_kwargs = G_kwargs

    def reducer_override(self, obj):
        if not isinstance(obj, nn.Module):
            return NotImplemented
        state = _module_state(obj, dict(obj.named_children()), self.easy_dict)
        if isinstance(obj, Generator):
            state["_init_kwargs"] = self.G_kwargs
        meta = dict(
            type="class",
            version=6,
            module_src=self.module_src,
            class_name=type(obj).__name__,
            state=state,
        )
        return self.reconstruct, (meta,)


class _FakeDiscriminator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.b4 = nn.Linear(4, 1)


_FakeDiscriminator.__name__ = "Discriminator"


def save_nvidia_pickle(
    G: Generator,
    path: str | Path,
    marker: str | Path | None = None,
    G_train: Generator | None = None,
) -> Path:
    """Write {G, D, G_ema, augment_pipe, training_set_kwargs} in NVIDIA's pickle layout.

    G_ema = G; 'G' = G_train (default: G). `marker`: the file that the embedded module_src
    would create if a loader ever executed it (default: `<path>.executed`).
    """
    path = Path(path)
    marker = Path(marker) if marker is not None else path.with_suffix(".executed")
    with _nvidia_globals() as (reconstruct, easy_dict):
        G_kwargs = easy_dict(_nvidia_generator_kwargs(G.config))
        G_kwargs["mapping_kwargs"] = easy_dict(G_kwargs["mapping_kwargs"])
        data = {
            "G": G_train if G_train is not None else G,
            "D": _FakeDiscriminator(),
            "G_ema": G,
            "augment_pipe": None,
            "training_set_kwargs": {"class_name": "training.dataset.ImageFolderDataset"},
        }
        with open(path, "wb") as f:
            _NvidiaPickler(f, _evil_source(marker), reconstruct, easy_dict, G_kwargs).dump(data)
    return path
