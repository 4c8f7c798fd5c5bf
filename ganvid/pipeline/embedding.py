"""Optimisation-based embedding of one photo in W / W+: which loss and schedule each method uses.

    optimize          from w_avg, LPIPS + pixel MSE, NVIDIA's ramped schedule (500 steps)
    encoder+optimize  from the encoder's ws, LPIPS + MSE, lr 0.01, no noise (200 steps): fast
    image2stylegan    the paper's embedding (Abdal et al. 2019): W+ from w_avg, VGG-16
                      perceptual loss on conv1_1, conv1_2, conv3_2, conv4_2 + pixel MSE,
                      Adam lr 0.01, 5000 steps (`ganvid.nn.vgg16`)

The loop itself is `ganvid.pipeline.projector.Projector`; the VGG-16 file is torchvision's published
`vgg16-397923af.pth` (weights name `lpips-vgg`, the same file LPIPS-VGG uses).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ganvid.errors import InputError
from ganvid.pipeline.projector import ProjectionResult, Projector, ProjectorConfig

METHODS = ("optimize", "encoder+optimize", "image2stylegan")
DEFAULT_STEPS = {"optimize": 500, "encoder+optimize": 200, "image2stylegan": 5000}
VGG_WEIGHTS = "lpips-vgg"
"""torchvision's vgg16-397923af.pth in the weights manifest."""


@dataclass(frozen=True)
class EmbeddingOptions:
    """method: one of METHODS. steps: None = DEFAULT_STEPS[method]. space: 'w' | 'w+' (the
    paper's method is W+ only). lpips_net: LPIPS trunk for the LPIPS methods. weights: the trunk
    / VGG-16 file or weights name (None: lpips-<net>, or lpips-vgg for image2stylegan)."""

    method: str = "encoder+optimize"
    steps: int | None = None
    space: str = "w+"
    lpips_net: str = "vgg"
    weights: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"--method {self.method!r}: use one of {', '.join(METHODS)}")
        if self.method == "image2stylegan" and self.space != "w+":
            raise InputError("--method image2stylegan optimises W+; drop --space w")

    def config(self) -> ProjectorConfig:
        steps = self.steps or DEFAULT_STEPS[self.method]
        if self.method == "image2stylegan":
            return ProjectorConfig.image2stylegan(steps=steps, seed=self.seed)
        if self.method == "encoder+optimize":
            return ProjectorConfig.refinement(steps=steps, space=self.space, seed=self.seed)
        return ProjectorConfig(space=self.space, steps=steps, seed=self.seed)


def build_distance(options: EmbeddingOptions) -> nn.Module:
    """The perceptual term: VGG-16 feature MSE (image2stylegan) or LPIPS; WeightsError in one
    line when the file is missing (`ganvid weights download lpips-vgg`)."""
    if options.method == "image2stylegan":
        from ganvid.nn.vgg16 import PerceptualMSE, load_vgg16_features
        from ganvid.weights import resolve

        return PerceptualMSE(load_vgg16_features(resolve(options.weights or VGG_WEIGHTS)))
    from ganvid.nn.lpips import build_lpips
    from ganvid.weights import resolve

    return build_lpips(
        options.lpips_net, backbone=resolve(options.weights or f"lpips-{options.lpips_net}")
    )


def embed(
    generator: nn.Module,
    targets: torch.Tensor,
    options: EmbeddingOptions,
    init_ws: torch.Tensor | None = None,
    on_step: Callable[[int, float], None] | None = None,
    distance: nn.Module | None = None,
) -> ProjectionResult:
    """Optimise latents for targets [B, 3, H, W] in [-1, 1]. init_ws: the encoder's ws for
    encoder+optimize (None otherwise: the other methods start from w_avg). distance: a built
    `build_distance(options)` to reuse (benchmarks, several photos)."""
    if (init_ws is None) == (options.method == "encoder+optimize"):
        raise ValueError("encoder+optimize starts from the encoder's code; the others from w_avg")
    distance = build_distance(options) if distance is None else distance
    projector = Projector(generator, distance.to(targets.device), options.config())
    return projector.project(targets, init_ws=init_ws, on_step=on_step)
