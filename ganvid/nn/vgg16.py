"""VGG-16 features for Image2StyleGAN's perceptual loss (Abdal et al., ICCV 2019, eq. 4).

The network is torchvision's `vgg16().features` up to conv4_2 (indices 0-20), loaded from
torchvision's published ImageNet file (`vgg16-397923af.pth`, the weights manager's `lpips-vgg`)
with `torch.load(weights_only=True)`; only the `features.N.*` tensors it needs are read, and the
channel widths come from the file (tests use narrow ones in the same layout).

The paper's layers map to `features` indices conv1_1 = 0, conv1_2 = 2, conv3_2 = 12,
conv4_2 = 19; the loss reads their ReLU outputs (indices 1, 3, 13, 20), the activations the next
layer sees, as NVIDIA's and most re-implementations' VGG losses do.

    loss_j = mean over (C, H, W) of (F_j(render) - F_j(target))^2,   summed over the 4 layers
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganvid.errors import CheckpointError

#: torchvision vgg16 `features` layout up to conv4_2: ('conv', block) or ('pool',).
_LAYOUT = (
    ("conv", 0), ("conv", 0), ("pool",),
    ("conv", 1), ("conv", 1), ("pool",),
    ("conv", 2), ("conv", 2), ("conv", 2), ("pool",),
    ("conv", 3), ("conv", 3),
)  # fmt: skip
PAPER_LAYERS = {"conv1_1": 0, "conv1_2": 2, "conv3_2": 12, "conv4_2": 19}
"""The paper's perceptual layers -> torchvision `features` index of the convolution."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def conv_indices() -> list[int]:
    """`features` indices of the convolutions in _LAYOUT (0, 2, 5, 7, 10, 12, 14, 17, 19)."""
    indices, index = [], 0
    for item in _LAYOUT:
        if item[0] == "conv":
            indices.append(index)
            index += 2  # conv, relu
        else:
            index += 1
    return indices


class VGG16Features(nn.Module):
    """torchvision vgg16 `features[0:21]` with widths (64, 128, 256, 512) by default; forward
    returns the ReLU outputs after `taps` (conv indices), images [B, 3, H, W] in [-1, 1]."""

    def __init__(
        self,
        widths: tuple[int, int, int, int] = (64, 128, 256, 512),
        taps: tuple[int, ...] = tuple(PAPER_LAYERS.values()),
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in _LAYOUT:
            if item[0] == "conv":
                layers += [nn.Conv2d(channels, widths[item[1]], 3, padding=1), nn.ReLU()]
                channels = widths[item[1]]
            else:
                layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.taps = tuple(taps)
        self.widths = tuple(widths)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        assert images.ndim == 4 and images.shape[1] == 3, list(images.shape)
        x = ((images + 1) / 2 - self.mean) / self.std
        outputs, last = [], max(self.taps) + 1
        for index, layer in enumerate(self.features[: last + 1]):
            x = layer(x)
            if index - 1 in self.taps:  # the ReLU right after a tapped convolution
                outputs.append(x)
        return outputs

    def extra_repr(self) -> str:
        return f"widths={self.widths}, taps={self.taps}"


class PerceptualMSE(nn.Module):
    """Image2StyleGAN's perceptual term: forward(a, b) -> [B], the sum over the VGG-16 taps of
    the mean squared feature difference. Frozen; same call as `PerceptualDistance`."""

    def __init__(self, features: VGG16Features) -> None:
        super().__init__()
        self.features = features.eval().requires_grad_(False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape:
            raise ValueError(f"images differ in shape: {list(a.shape)}, {list(b.shape)}")
        if min(a.shape[-2:]) < 16:  # three pools before conv4_2: keep at least 2 px there
            a = F.interpolate(a, (16, 16), mode="bilinear", align_corners=False)
            b = F.interpolate(b, (16, 16), mode="bilinear", align_corners=False)
        total = a.new_zeros(a.shape[0])
        for fa, fb in zip(self.features(a), self.features(b), strict=True):
            total = total + (fa - fb).square().flatten(1).mean(1)
        return total

    def train(self, mode: bool = True) -> PerceptualMSE:
        return super().train(False)


def load_vgg16_features(path: str | Path) -> VGG16Features:
    """VGG16Features from a torchvision vgg16 state-dict file (classifier keys ignored; widths
    from the file). CheckpointError naming what is wrong when the file is not one."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unreadable or unsafe: the user's file to fix
        raise CheckpointError(f"cannot read VGG-16 weights {path}: {error}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a state dict (got {type(state).__name__})")
    convs = conv_indices()
    missing = [f"features.{i}.weight" for i in convs if f"features.{i}.weight" not in state]
    if missing:
        raise CheckpointError(
            f"{path} lacks {', '.join(missing[:3])}: expected torchvision's vgg16 state dict "
            "(vgg16-397923af.pth)"
        )
    widths = tuple(int(state[f"features.{convs[k]}.weight"].shape[0]) for k in (0, 2, 4, 7))
    model = VGG16Features(widths)  # type: ignore[arg-type]
    wanted = model.features.state_dict()
    picked = {}
    for key, tensor in wanted.items():
        source = state.get(f"features.{key}")
        if source is None or source.shape != tensor.shape:
            got = "missing" if source is None else list(source.shape)
            raise CheckpointError(
                f"{path}: features.{key} is {got}, expected {list(tensor.shape)} "
                "(not a vgg16 state dict?)"
            )
        picked[key] = source
    model.features.load_state_dict(picked)
    return model.eval().requires_grad_(False)
