"""Edit directions: InterFaceGAN boundaries from the weights manifest, user files, StyleSpace.

A W+ edit moves each frame's latent along a direction on a range of layers:
    ws[:, layers] += strength(t) * direction[layers]
A direction is stored as [num_ws, w_dim]; a single [w_dim] vector (the published InterFaceGAN
boundaries are (1, 512), unit norm) applies the same vector to every chosen layer.
A StyleSpace edit adds `strength(t)` to one channel of one layer's style vector.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ganvid.edit.keyframes import Strength
from ganvid.errors import InputError

# Friendly names for the published InterFaceGAN boundaries (manifest name suffixes).
ALIASES = {"gender": "male", "smiling": "smile", "old": "age"}


@dataclass(frozen=True)
class Direction:
    """A W+ direction: `vector` [num_ws, w_dim] float32, applied on `layers`."""

    name: str
    vector: np.ndarray
    layers: tuple[int, ...]


@dataclass(frozen=True)
class StyleEdit:
    """Add `strength` to channel `channel` of StyleSpace layer `layer`."""

    layer: str
    channel: int
    strength: Strength


@dataclass(frozen=True)
class WEdit:
    direction: Direction
    strength: Strength


def manifest_name(name: str, domain: str) -> str:
    """Manifest name of a published boundary: ('age', 'ffhq') -> 'interfacegan-ffhq-age'."""
    key = ALIASES.get(name.lower(), name.lower())
    return f"interfacegan-{domain}-{key}"


LAYER_GROUPS = ("coarse", "middle", "fine")


def layer_group(name: str, num_ws: int) -> range:
    """W+ layers of a named group, in StyleGAN's proportions (18 layers: coarse 0-3, middle 4-7,
    fine 8-17; scaled to `num_ws`, e.g. 16 layers: coarse 0-3, middle 4-6, fine 7-15).
    coarse: pose, face shape; middle: features, expression; fine: colour, texture, light."""
    coarse_end = max(1, round(num_ws * 4 / 18))
    middle_end = max(coarse_end + 1, round(num_ws * 8 / 18))
    bounds = {"coarse": (0, coarse_end), "middle": (coarse_end, middle_end)}
    bounds["fine"] = (middle_end, num_ws)
    return range(*bounds[name])


def parse_layers(text: str | None, num_ws: int) -> tuple[int, ...]:
    """'0-8' / '3' / '0-3,9' / 'fine' / 'coarse,middle' -> layer indices; None -> all layers."""
    if text is None or text.strip() in ("", "all"):
        return tuple(range(num_ws))
    layers: set[int] = set()
    for part in text.split(","):
        if part.strip().lower() in LAYER_GROUPS:
            layers.update(layer_group(part.strip().lower(), num_ws))
            continue
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match:
            raise InputError(
                f"cannot read layers {text!r}: use e.g. 0-8, 0-3,9 or coarse / middle / fine"
            )
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        if last < first or last >= num_ws:
            raise InputError(
                f"layers {text!r} out of range: this generator has {num_ws} (0-{num_ws - 1})"
            )
        layers.update(range(first, last + 1))
    return tuple(sorted(layers))


def load_direction_file(path: Path, num_ws: int, w_dim: int) -> np.ndarray:
    """Read a user direction (.npy or .pt) -> [num_ws, w_dim] float32, validated."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"direction file not found: {path}")
    if path.suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise InputError(f"direction file {path} is not a plain .npy array: {error}") from None
    elif path.suffix in (".pt", ".pth"):
        array = _tensor_from_pt(path)
    else:
        raise InputError(f"direction file {path}: expected a .npy or .pt file")
    return as_direction(np.asarray(array, dtype=np.float64), num_ws, w_dim, str(path))


def _tensor_from_pt(path: Path) -> np.ndarray:
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise InputError(f"cannot read direction file {path}: {error}") from None
    if isinstance(data, dict):
        tensors = [v for v in data.values() if isinstance(v, torch.Tensor)]
        if len(tensors) != 1:
            raise InputError(f"direction file {path} holds {len(tensors)} tensors; expected one")
        data = tensors[0]
    if not isinstance(data, torch.Tensor):
        raise InputError(f"direction file {path} does not hold a tensor")
    return data.detach().float().numpy()


def as_direction(array: np.ndarray, num_ws: int, w_dim: int, origin: str) -> np.ndarray:
    """[w_dim] / [1, w_dim] / [num_ws, w_dim] (/ [1, num_ws, w_dim]) -> [num_ws, w_dim] float32;
    InputError naming `origin` for any other shape or a non-finite value."""
    squeezed = array[0] if array.ndim == 3 and array.shape[0] == 1 else array  # [1,num_ws,w_dim]
    if squeezed.shape in ((w_dim,), (1, w_dim)):
        vector = np.broadcast_to(squeezed.reshape(1, w_dim), (num_ws, w_dim))
    elif squeezed.shape == (num_ws, w_dim):
        vector = squeezed
    else:
        raise InputError(
            f"direction {origin} has shape {tuple(array.shape)}; expected ({w_dim},), "
            f"(1, {w_dim}) or ({num_ws}, {w_dim})"
        )
    if not np.all(np.isfinite(vector)):
        raise InputError(f"direction {origin} contains NaN or infinite values")
    return np.ascontiguousarray(vector, dtype=np.float32)


def parse_style(text: str) -> tuple[str, int]:
    """'L3_52_1024:17' -> ('L3_52_1024', 17); 'input:2' works too."""
    layer, sep, channel = text.rpartition(":")
    if not sep or not layer or not channel.strip().isdigit():
        raise InputError(f"cannot read --style {text!r}: use LAYER:CHANNEL, e.g. L3_52_1024:17")
    return layer.strip(), int(channel)


def apply_w_edits(ws: torch.Tensor, edits: list[WEdit], times_s: np.ndarray) -> torch.Tensor:
    """ws [N, num_ws, w_dim] of frames at times_s [N] -> edited copy."""
    out = ws.clone()
    for edit in edits:
        strength = torch.from_numpy(edit.strength.at(times_s)).to(ws)  # [N]
        delta = torch.from_numpy(edit.direction.vector).to(ws)  # [num_ws, w_dim]
        layers = list(edit.direction.layers)
        out[:, layers] += strength[:, None, None] * delta[layers][None]
    return out


def apply_style_edits(
    styles: dict[str, torch.Tensor], edits: list[StyleEdit], times_s: np.ndarray
) -> dict[str, torch.Tensor]:
    """styles {layer: [N, C]} -> edited copy; unknown layers or channels are InputErrors."""
    out = dict(styles)
    for edit in edits:
        if edit.layer not in out:
            known = ", ".join(out)
            raise InputError(f"--style: no layer {edit.layer!r}; layers are: {known}")
        channels = out[edit.layer].shape[1]
        if not 0 <= edit.channel < channels:
            raise InputError(f"--style: layer {edit.layer} has channels 0-{channels - 1}")
        layer = out[edit.layer].clone()
        strength = torch.from_numpy(edit.strength.at(times_s)).to(layer)
        layer[:, edit.channel] += strength
        out[edit.layer] = layer
    return out
