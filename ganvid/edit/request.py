"""What the user asked `ganvid edit` / `ganvid expand-fov` to change, parsed and named.

    --direction age:3 --direction smile      published InterFaceGAN boundaries (weights manager)
    --file my_direction.npy                  a user direction (.npy / .pt)
    --strength 0s:0,1.5s:3                   strength of directions given without their own
    --layers 0-8                             W+ layers the directions move (default: all)
    --style L3_52_1024:17:5                  StyleSpace: add 5 to channel 17 of layer L3_52_1024
    --style-from ref.png --layers fine       Image2StyleGAN crossover: the layers of ref's code
    --expression neutral.png smile.png       Image2StyleGAN expression transfer: + s * (w3 - w2)

`EditRequest.tag` names the edit in file names (`age3_smile1`, `age_keyed`), `describe` is its
JSON identity (hashed into the work dir's stage keys), `w_edits` loads the directions.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganvid.edit.directions import (
    Direction,
    StyleEdit,
    WEdit,
    load_direction_file,
    manifest_name,
    parse_layers,
)
from ganvid.edit.keyframes import Strength
from ganvid.errors import InputError

DOMAINS = ("ffhq", "ffhqu")
PUBLISHED = ("age", "smile", "pose", "male")
"""Boundaries the weights manifest can fetch for each domain (aliases: gender, smiling, old)."""
STYLE_HELP_EXAMPLE = "L3_52_1024:17:5"
MAX_TAG_CHARS = 80


@dataclass(frozen=True)
class DirectionRequest:
    """One W+ direction: a published boundary name ('age') or a file, and its strength."""

    source: str
    strength: Strength
    is_file: bool = False

    @property
    def name(self) -> str:
        return Path(self.source).stem if self.is_file else self.source.lower()


@dataclass(frozen=True)
class EditRequest:
    directions: tuple[DirectionRequest, ...] = ()
    styles: tuple[StyleEdit, ...] = ()
    layers: str | None = None
    """--layers text ('0-8', 'fine'); None = every W+ layer (the fine ones for --style-from)."""
    style_from: str | None = None
    """Crossover: a photo or invert-image npz whose code gives the chosen layers."""
    style_strength: Strength = Strength.constant(1.0)
    expression: tuple[str, str] | None = None
    """Expression transfer: (neutral, expressive) photos or npz of one person."""
    expression_strength: Strength = Strength.constant(1.0)

    @classmethod
    def parse(
        cls,
        directions: Sequence[str] = (),
        files: Sequence[str | Path] = (),
        styles: Sequence[str] = (),
        strength: str = "1",
        layers: str | None = None,
        style_from: str | Path | None = None,
        expression: Sequence[str | Path] | None = None,
    ) -> EditRequest:
        """From the command line's texts (see the module docstring); InputError if unreadable."""
        default = Strength.parse(strength)
        parsed = [_parse_direction(text, default) for text in directions]
        parsed += [DirectionRequest(str(f), default, is_file=True) for f in files]
        style_edits = tuple(_parse_style_edit(text, default) for text in styles)
        pair = None
        if expression:
            if len(expression) != 2:
                raise InputError("--expression takes two images: NEUTRAL EXPRESSIVE")
            pair = (str(expression[0]), str(expression[1]))
        style = str(style_from) if style_from is not None else None
        if layers is not None and not parsed and style is None and pair is None:
            raise InputError(
                "--layers applies to --direction / --file / --style-from / --expression edits; "
                "none was given"
            )
        return cls(tuple(parsed), style_edits, layers, style, default, pair, default)

    @property
    def is_empty(self) -> bool:
        return not self.moves_w and not self.styles

    @property
    def moves_w(self) -> bool:
        """Whether the edit changes the W+ codes (directions, crossover, expression)."""
        return bool(self.directions) or self.style_from is not None or self.expression is not None

    def crossover_layers(self, num_ws: int) -> tuple[int, ...]:
        """The layers --style-from replaces: --layers, else the fine ones."""
        return parse_layers(self.layers or "fine", num_ws)

    def tag(self) -> str:
        """File-name label: 'age3', 'age3_smile1', 'age_keyed', 'agem2_l0-8', 'L3.17_5'."""
        parts = [_label(d.name, d.strength) for d in self.directions]
        if self.style_from is not None:
            parts.append(_label(f"style-{Path(self.style_from).stem}", self.style_strength))
        if self.expression is not None:
            stems = "-".join(Path(p).stem for p in self.expression)
            parts.append(_label(f"expr-{stems}", self.expression_strength))
        if self.layers is not None:
            parts.append("l" + re.sub(r"\s+", "", self.layers))
        parts += [_label(f"{s.layer}.{s.channel}", s.strength, sep="_") for s in self.styles]
        tag = re.sub(r"[^A-Za-z0-9._-]+", "-", "_".join(parts)) or "none"
        if len(tag) > MAX_TAG_CHARS:
            digest = hashlib.sha256(tag.encode()).hexdigest()[:8]
            tag = f"{tag[: MAX_TAG_CHARS - 9]}-{digest}"
        return tag

    def describe(self) -> dict[str, Any]:
        """JSON identity of the edit (file contents are hashed separately, see `files`)."""
        return {
            "directions": [
                {"source": d.source, "file": d.is_file, "strength": _keys(d.strength)}
                for d in self.directions
            ],
            "layers": self.layers,
            "styles": [
                {"layer": s.layer, "channel": s.channel, "strength": _keys(s.strength)}
                for s in self.styles
            ],
            **self._image_ops(),
        }

    def _image_ops(self) -> dict[str, Any]:
        """describe()'s entries for crossover / expression (absent when unused, so the stage
        keys of older edits stay as they were)."""
        out: dict[str, Any] = {}
        if self.style_from is not None:
            out["style_from"] = {"strength": _keys(self.style_strength)}
        if self.expression is not None:
            out["expression"] = {"strength": _keys(self.expression_strength)}
        return out

    def files(self, domain: str) -> dict[str, Path]:
        """The direction and image files this edit reads, by role (WeightsError if a published
        direction is missing, InputError if an image is)."""
        files = {f"direction{i}": direction_path(d, domain) for i, d in enumerate(self.directions)}
        images = {"style_from": self.style_from}
        if self.expression is not None:
            images.update(neutral=self.expression[0], expressive=self.expression[1])
        for role, name in images.items():
            if name is not None:
                path = Path(name).expanduser()
                if not path.is_file():
                    flag = "--style-from" if role == "style_from" else "--expression"
                    raise InputError(f"{flag} {name}: no such file")
                files[role] = path
        return files

    def w_edits(self, num_ws: int, w_dim: int, domain: str) -> list[WEdit]:
        """Load and validate every direction -> WEdits on the requested layers."""
        layers = parse_layers(self.layers, num_ws)
        edits = []
        for request in self.directions:
            vector = load_direction_file(direction_path(request, domain), num_ws, w_dim)
            edits.append(WEdit(Direction(request.name, vector, layers), request.strength))
        return edits


def direction_path(request: DirectionRequest, domain: str) -> Path:
    """The file of a direction: the user's file, or the published boundary's cached copy."""
    from ganvid.weights import manifest, resolve

    if request.is_file:
        path = Path(request.source).expanduser()
        if not path.is_file():
            raise InputError(f"--file {request.source}: no such file")
        return path
    if domain not in DOMAINS:
        raise InputError(f"--domain {domain!r}: use {' or '.join(DOMAINS)}")
    name = manifest_name(request.source, domain)
    if name not in manifest().entries:
        raise InputError(
            f"unknown direction {request.source!r}: published ones are {', '.join(PUBLISHED)} "
            "(`ganvid edit --list`); give any other direction as a file with --file"
        )
    return resolve(name)


def domain_of_generator(path: str | Path) -> str:
    """'ffhqu' for unaligned FFHQ-U generators (by file name), else 'ffhq'."""
    return "ffhqu" if "ffhqu" in Path(path).name.lower() else "ffhq"


def _parse_direction(text: str, default: Strength) -> DirectionRequest:
    """'age' -> default strength; 'age:3' / 'age:0s:0,2s:3' -> its own."""
    name, sep, strength = text.strip().partition(":")
    if not name:
        raise InputError(f"--direction {text!r}: use NAME or NAME:STRENGTH, e.g. age:3")
    return DirectionRequest(name, Strength.parse(strength) if sep else default)


def _parse_style_edit(text: str, default: Strength) -> StyleEdit:
    """'LAYER:CHANNEL' or 'LAYER:CHANNEL:STRENGTH' (keyframes allowed) -> StyleEdit."""
    parts = text.strip().split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1].strip().isdigit():
        raise InputError(
            f"--style {text!r}: use LAYER:CHANNEL[:STRENGTH], e.g. {STYLE_HELP_EXAMPLE}"
        )
    strength = Strength.parse(parts[2]) if len(parts) == 3 else default
    return StyleEdit(parts[0].strip(), int(parts[1]), strength)


def _label(name: str, strength: Strength, sep: str = "") -> str:
    if len(strength.values) > 1:
        return f"{name}_keyed"
    return f"{name}{sep}{strength.label()}"


def _keys(strength: Strength) -> list[list[float]]:
    return [[t, v] for t, v in zip(strength.times_s, strength.values, strict=True)]


@dataclass(frozen=True)
class RegistryRow:
    """One published direction: its short name, weights name, local copy and how to get it."""

    name: str
    weights: str
    path: Path | None
    how: str


def registry(domain: str) -> list[RegistryRow]:
    """The published InterFaceGAN boundaries for `domain`, present or not (no download)."""
    from ganvid.weights import find, manifest

    if domain not in DOMAINS:
        raise InputError(f"--domain {domain!r}: use {' or '.join(DOMAINS)}")
    catalog = manifest()
    rows = []
    for name in PUBLISHED:
        entry = catalog.entries.get(manifest_name(name, domain))
        if entry is None:
            continue
        if entry.urls:
            how = f"ganvid weights download {entry.name}"
        else:
            how = f"fetch {Path(entry.file).name} from {entry.page}, then ganvid weights import"
        rows.append(RegistryRow(name, entry.name, find(entry, catalog), how))
    return rows
