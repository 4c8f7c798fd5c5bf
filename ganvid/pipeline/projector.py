"""Optimisation projector: find W or W+ latents whose render matches target images
(Abdal et al. "Image2StyleGAN", 2019; the schedule of NVIDIA's StyleGAN2/3 projector).

Loss = lpips_weight * LPIPS(render, target) + mse_weight * MSE(render, target), both at
`loss_size` px (area-downsampled). Adam over the latents with a learning rate that ramps up
over the first `lr_rampup` of the run and down with a half cosine over the last
`lr_rampdown`; Gaussian noise of scale w_std * noise_factor * (1 - t / noise_ramp)^2 is added
to the latents early on to escape poor starts. StyleGAN3 has no noise inputs, so there is no
noise-map regularisation.

Alone it starts from w_avg (`--method optimize`); after an encoder it starts from the encoder's
ws with a small learning rate and no latent noise (`--method encoder+optimize`,
`ProjectorConfig.refinement`). `ProjectorConfig.image2stylegan` is the paper's own schedule; with
`ganvid.nn.vgg16.PerceptualMSE` as the distance it is the paper's loss (`--method image2stylegan`,
`ganvid.pipeline.embedding`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F
from torch import nn

from ganvid.nn.lpips import PerceptualDistance


@dataclass(frozen=True)
class ProjectorConfig:
    """space: 'w' (one code for every layer) or 'w+' (one per layer).
    steps: Adam steps. lr: peak learning rate. lr_rampup / lr_rampdown / noise_ramp: fractions
    of the run. noise_factor: initial latent noise in units of w_std. loss_size: side in px at
    which the losses are computed. w_avg_samples: mapping samples for w_avg and w_std.
    """

    space: str = "w+"
    steps: int = 500
    lr: float = 0.1
    lr_rampup: float = 0.05
    lr_rampdown: float = 0.25
    noise_factor: float = 0.05
    noise_ramp: float = 0.75
    lpips_weight: float = 1.0
    mse_weight: float = 1.0
    loss_size: int = 256
    w_avg_samples: int = 10_000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.space not in ("w", "w+"):
            raise ValueError(f"space must be 'w' or 'w+', not {self.space!r}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")

    @classmethod
    def refinement(cls, steps: int = 200, **changes) -> ProjectorConfig:
        """Settings for polishing an encoder's ws: small lr, no latent noise, W+."""
        return replace(cls(), steps=steps, lr=0.01, noise_factor=0.0, **changes)

    @classmethod
    def image2stylegan(cls, steps: int = 5000, **changes) -> ProjectorConfig:
        """Abdal et al.'s embedding: W+ from w_avg, Adam at a constant lr 0.01 (no ramps, no
        latent noise), perceptual + pixel MSE weighted 1 : 1, 5000 steps."""
        fixed = dict(lr=0.01, lr_rampup=0.0, lr_rampdown=0.0, noise_factor=0.0)
        return replace(cls(), space="w+", steps=steps, **{**fixed, **changes})


@dataclass
class ProjectionResult:
    """ws: [B, num_ws, w_dim] final latents. losses: total loss (batch mean) per step."""

    ws: torch.Tensor
    losses: list[float] = field(default_factory=list)


def ramped_lr(t: float, lr: float, rampup: float, rampdown: float) -> float:
    """Learning rate at progress t in [0, 1]: linear ramp-up over the first `rampup`, half-cosine
    ramp-down over the last `rampdown` (StyleGAN2's projector schedule; 0 turns a ramp off)."""
    ramp = min(1.0, (1.0 - t) / rampdown) if rampdown > 0 else 1.0
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    if rampup > 0:
        ramp *= min(1.0, t / rampup)
    return lr * ramp


def learning_rate(config: ProjectorConfig, t: float) -> float:
    """The projector's learning rate at progress t in [0, 1]."""
    return ramped_lr(t, config.lr, config.lr_rampup, config.lr_rampdown)


def noise_strength(config: ProjectorConfig, t: float, w_std: float) -> float:
    """Std of the Gaussian added to the latents at progress t."""
    if config.noise_ramp <= 0:
        return 0.0
    return w_std * config.noise_factor * max(0.0, 1.0 - t / config.noise_ramp) ** 2


@torch.no_grad()
def w_statistics(generator: nn.Module, samples: int, seed: int = 0) -> tuple[torch.Tensor, float]:
    """(w_avg [w_dim], w_std scalar) of the mapping network over `samples` random z."""
    device = next(generator.parameters()).device
    rng = torch.Generator(device="cpu").manual_seed(seed)
    z = torch.randn(samples, generator.z_dim, generator=rng).to(device)
    ws = torch.cat([generator.mapping(chunk)[:, 0] for chunk in z.split(4096)])
    w_avg = ws.mean(0)
    w_std = float(((ws - w_avg).square().sum() / samples).sqrt())
    return w_avg, w_std


class Projector:
    """Projects target images into a StyleGAN3 generator's W / W+.

    generator: StyleGAN3 `Generator` (mapping, synthesis, z_dim, w_dim, num_ws); left
        unchanged. distance: LPIPS (`build_lpips('vgg')`) or any module with the same call,
        forward(a, b) -> [B] (e.g. `PerceptualMSE`).
    """

    def __init__(
        self,
        generator: nn.Module,
        distance: PerceptualDistance | nn.Module,
        config: ProjectorConfig | None = None,
    ) -> None:
        self.generator = generator
        self.distance = distance
        self.config = config or ProjectorConfig()

    @property
    def loss_side(self) -> int:
        """Side in px of the images compared: loss_size, or the generator's if smaller."""
        return min(self.config.loss_size, int(self.generator.img_resolution))

    def losses(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per-image loss [B] of renders vs targets (targets at `loss_side`), in [-1, 1]."""
        images = resize(images, self.loss_side)
        mse = (images - targets).square().flatten(1).mean(1)
        lpips = self.distance(images, targets)
        return self.config.lpips_weight * lpips + self.config.mse_weight * mse

    def project(
        self,
        targets: torch.Tensor,
        init_ws: torch.Tensor | None = None,
        transforms: torch.Tensor | None = None,
        on_step: Callable[[int, float], None] | None = None,
    ) -> ProjectionResult:
        """Optimise latents for targets [B, 3, H, W] in [-1, 1] (any size; compared at
        `loss_side`).

        init_ws: [B, num_ws, w_dim] start (e.g. an encoder's output); None -> w_avg.
        transforms: [3, 3] / [B, 3, 3] input transforms to render with; identity when None.
        on_step(step, loss): called after every step (progress bars).
        """
        config, generator = self.config, self.generator
        device = next(generator.parameters()).device
        targets = resize(targets.to(device, torch.float32), self.loss_side)
        batch, num_ws = targets.shape[0], int(generator.num_ws)
        w_avg, w_std = w_statistics(generator, config.w_avg_samples, config.seed)
        latent = self._start(init_ws, w_avg, batch, num_ws).to(device)
        latent.requires_grad_(True)
        optimizer = torch.optim.Adam([latent], lr=config.lr, betas=(0.9, 0.999))
        rng = torch.Generator(device="cpu").manual_seed(config.seed)
        if transforms is None:
            transforms = torch.eye(3, device=device)
        result = ProjectionResult(ws=latent)
        for step in range(config.steps):
            t = step / config.steps
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, t)
            sigma = noise_strength(config, t, w_std)
            noise = torch.randn(latent.shape, generator=rng).to(device) * sigma
            ws = (latent + noise).expand(batch, num_ws, -1)
            images = generator.synthesis(ws, transform=transforms, force_fp32=True)
            loss = self.losses(images, targets).sum()
            # Gradients for the latents only: the generator's parameters stay untouched.
            (latent.grad,) = torch.autograd.grad(loss, [latent])
            optimizer.step()
            result.losses.append(float(loss.detach()) / batch)
            if on_step is not None:
                on_step(step, result.losses[-1])
        result.ws = latent.detach().expand(batch, num_ws, -1).clone()
        return result

    def _start(
        self, init_ws: torch.Tensor | None, w_avg: torch.Tensor, batch: int, num_ws: int
    ) -> torch.Tensor:
        """Leaf tensor to optimise: [B, 1, w_dim] for 'w', [B, num_ws, w_dim] for 'w+'."""
        if init_ws is None:
            start = w_avg.reshape(1, 1, -1).expand(batch, 1, -1)
        else:
            if init_ws.shape[:2] != (batch, num_ws):
                raise ValueError(
                    f"init_ws must be [{batch}, {num_ws}, w_dim], got {list(init_ws.shape)}"
                )
            start = init_ws.float().mean(1, keepdim=True) if self.config.space == "w" else init_ws
        if self.config.space == "w+":
            start = start.expand(batch, num_ws, -1)
        return start.detach().float().clone()


def resize(images: torch.Tensor, side: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, C, side, side]: area average when shrinking, bilinear otherwise."""
    if images.shape[-2:] == (side, side):
        return images
    if images.shape[-1] >= side and images.shape[-2] >= side:
        return F.interpolate(images, (side, side), mode="area")
    return F.interpolate(images, (side, side), mode="bilinear", align_corners=False)
