"""LPIPS perceptual distance (Zhang et al. 2018) through the `lpips` package, offline.

The package ships only its small linear heads; its AlexNet / VGG16 trunks normally come from a
torchvision download at construction. Here the trunk is built random (`pnet_rand=True`) and the
ImageNet weights are loaded from the torchvision state-dict file that the weights manager
provides (`ganvid.weights.resolve('lpips-alex' | 'lpips-vgg')`), so nothing is downloaded at
run time. Tests pass `random_backbone=True`.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganvid.errors import CheckpointError

NETS = ("alex", "vgg")
#: Smallest side each trunk can take (AlexNet's stride-4 stem and pools need 32 px).
MIN_SIDE = {"alex": 32, "vgg": 16}


class PerceptualDistance(nn.Module):
    """Frozen LPIPS: forward(a, b) with images [B, 3, H, W] in [-1, 1] -> distances [B].

    Images smaller than the trunk's minimum (MIN_SIDE) are upsampled to it first.
    """

    def __init__(self, model: nn.Module, net: str) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.net = net

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape or a.ndim != 4 or a.shape[1] != 3:
            raise ValueError(
                f"LPIPS needs two [B, 3, H, W] images, got {list(a.shape)}, {list(b.shape)}"
            )
        side = MIN_SIDE[self.net]
        if min(a.shape[-2:]) < side:  # tiny images (tests, thumbnails): upsample for the trunk
            a = F.interpolate(a, (side, side), mode="bilinear", align_corners=False)
            b = F.interpolate(b, (side, side), mode="bilinear", align_corners=False)
        return self.model(a, b).reshape(a.shape[0])

    def train(self, mode: bool = True) -> PerceptualDistance:
        # Dropout in the heads must stay off: the distance is a fixed metric.
        return super().train(False)

    def extra_repr(self) -> str:
        return f"net={self.net!r}"


def build_lpips(
    net: str = "vgg",
    backbone: str | Path | None = None,
    random_backbone: bool = False,
) -> PerceptualDistance:
    """LPIPS with the given trunk ('vgg' for projection losses, 'alex' for PTI).

    backbone: torchvision state-dict file of the trunk (vgg16 / alexnet ImageNet weights);
        names are resolved by the caller (`ganvid.weights.resolve('lpips-<net>')`).
    random_backbone: keep the trunk random (tests only: the distance is then not perceptual).
    """
    if net not in NETS:
        raise ValueError(f"LPIPS net must be one of {NETS}, not {net!r}")
    if backbone is None and not random_backbone:
        raise ValueError(f"build_lpips needs the trunk file (resolve 'lpips-{net}' first)")
    from ganvid.torchstack import import_torchvision

    import_torchvision()  # a torch / torchvision mismatch: one line, not a traceback
    import lpips  # imports torchvision; keep it out of module import time

    with warnings.catch_warnings():  # torchvision's `pretrained=` deprecation notices
        warnings.simplefilter("ignore")
        model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
    if not random_backbone:
        load_trunk(model.net, Path(backbone))
    return PerceptualDistance(model, net)


def load_trunk(trunk: nn.Module, path: Path) -> None:
    """Load a torchvision `features.N.*` state dict (classifier keys ignored) into an lpips trunk
    whose modules are `sliceK.N`. Raises CheckpointError naming missing keys or bad shapes."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # any unreadable file is for the user to fix
        raise CheckpointError(f"cannot read LPIPS trunk weights {path}: {error}") from error
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a state dict (got {type(state).__name__})")
    wanted = {_torchvision_key(k): k for k in trunk.state_dict()}
    missing = sorted(k for k in wanted if k not in state)
    if missing:
        raise CheckpointError(
            f"{path} lacks {len(missing)} trunk tensors, e.g. {', '.join(missing[:3])}; "
            "expected a torchvision vgg16/alexnet state dict"
        )
    mapped = {}
    for source, target in wanted.items():
        expected = trunk.state_dict()[target].shape
        if state[source].shape != expected:
            raise CheckpointError(
                f"{path}: {source} has shape {list(state[source].shape)}, expected "
                f"{list(expected)} (wrong network for this LPIPS trunk?)"
            )
        mapped[target] = state[source]
    trunk.load_state_dict(mapped)


def _torchvision_key(key: str) -> str:
    """'slice2.5.weight' -> 'features.5.weight'."""
    return re.sub(r"^slice\d+\.", "features.", key)
