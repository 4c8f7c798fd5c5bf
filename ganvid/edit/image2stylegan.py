"""The three W+ operations of Image2StyleGAN (Abdal et al., ICCV 2019), as latent arithmetic.

    morph        w(lam) = (1 - lam) * w_a + lam * w_b         lam from 0 (A) to 1 (B)
    crossover    w[:, L] = lerp(w[:, L], w_style[L], s)  on layers L; s = 1 replaces them
    expression   d = w_expressive - w_neutral; applied as w + s * d (an ordinary W+ direction)

(The paper writes the morph as lam * w1 + (1 - lam) * w2; here lam runs from the first code to
the second.) Every code is [num_ws, w_dim]; batches of frames are [N, num_ws, w_dim]. The
endpoints are exact: lam = 0 gives w_a and lam = 1 gives w_b bit for bit, and a crossover or
expression of strength 0 returns the codes unchanged, so their renders match bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ganvid.edit.keyframes import Strength
from ganvid.errors import InputError

EASINGS = ("linear", "ease-in", "ease-out", "ease-in-out")


@dataclass(frozen=True)
class Crossover:
    """Take `layers` of `style_ws` [num_ws, w_dim] into each frame's code, blended by strength."""

    name: str
    style_ws: np.ndarray
    layers: tuple[int, ...]
    strength: Strength


def ease(name: str, t: np.ndarray) -> np.ndarray:
    """Easing curve over t in [0, 1] -> [0, 1] with ease(0) = 0 and ease(1) = 1 exactly.

    linear; ease-in (t^2); ease-out (1 - (1 - t)^2); ease-in-out (half cosine)."""
    t = np.clip(np.asarray(t, dtype=np.float64), 0.0, 1.0)
    if name == "linear":
        out = t
    elif name == "ease-in":
        out = t * t
    elif name == "ease-out":
        out = 1.0 - (1.0 - t) ** 2
    elif name == "ease-in-out":
        out = 0.5 - 0.5 * np.cos(math.pi * t)
    else:
        raise InputError(f"--easing {name!r}: use one of {', '.join(EASINGS)}")
    out = np.where(t <= 0.0, 0.0, np.where(t >= 1.0, 1.0, out))
    return out


def morph_schedule(frames: int, hold_frames: int = 0, easing: str = "linear") -> np.ndarray:
    """lam per output frame [hold + frames + hold]: `hold_frames` of 0, then `frames` going from
    0 to 1 (both included when frames >= 2) along the easing curve, then `hold_frames` of 1."""
    if frames < 1:
        raise InputError(f"a morph needs at least 1 frame, got {frames}")
    if hold_frames < 0:
        raise InputError(f"--hold must be >= 0, got {hold_frames} frames")
    moving = ease(easing, np.linspace(0.0, 1.0, frames) if frames > 1 else np.zeros(1))
    return np.concatenate([np.zeros(hold_frames), moving, np.ones(hold_frames)])


def morph_ws(ws_a: np.ndarray, ws_b: np.ndarray, lams: np.ndarray) -> np.ndarray:
    """(1 - lam) * ws_a + lam * ws_b for each lam -> float32 [len(lams), num_ws, w_dim]."""
    a = np.asarray(ws_a, dtype=np.float32)
    b = np.asarray(ws_b, dtype=np.float32)
    if a.shape != b.shape:
        raise InputError(f"cannot morph codes of shapes {a.shape} and {b.shape}")
    lam = np.asarray(lams, dtype=np.float32).reshape(-1, 1, 1)
    return (1.0 - lam) * a[None] + lam * b[None]


def morph_params(params_a: np.ndarray, params_b: np.ndarray, lams: np.ndarray) -> np.ndarray:
    """Interpolate (angle_deg, tx_frac, ty_frac) [3] between two renders' transforms -> [N, 3];
    the angle goes the short way round."""
    a = np.asarray(params_a, dtype=np.float64)
    b = np.asarray(params_b, dtype=np.float64)
    delta = b - a
    delta[0] = (delta[0] + 180.0) % 360.0 - 180.0
    return a[None] + np.asarray(lams, dtype=np.float64).reshape(-1, 1) * delta[None]


def expression_direction(neutral_ws: np.ndarray, expressive_ws: np.ndarray) -> np.ndarray:
    """w_expressive - w_neutral -> float32 [num_ws, w_dim] (a direction file's contents)."""
    neutral = np.asarray(neutral_ws, dtype=np.float32)
    expressive = np.asarray(expressive_ws, dtype=np.float32)
    if neutral.shape != expressive.shape:
        raise InputError(
            f"the neutral and expressive codes differ in shape ({neutral.shape} vs "
            f"{expressive.shape}): invert both photos with the same generator"
        )
    return expressive - neutral


def apply_crossovers(
    ws: torch.Tensor, crossovers: list[Crossover], times_s: np.ndarray
) -> torch.Tensor:
    """ws [N, num_ws, w_dim] of frames at times_s [N] -> copy with each crossover's layers
    moved towards its style code by strength(t) (0: unchanged, 1: replaced)."""
    out = ws.clone()
    for crossover in crossovers:
        strength = torch.from_numpy(crossover.strength.at(times_s)).to(ws)[:, None, None]
        layers = list(crossover.layers)
        style = torch.from_numpy(np.ascontiguousarray(crossover.style_ws)).to(ws)[layers][None]
        current = out[:, layers]
        # lerp is exact at both ends: strength 0 keeps the frame's layers, 1 copies the style's.
        out[:, layers] = torch.lerp(current, style.expand_as(current), strength)
    return out
