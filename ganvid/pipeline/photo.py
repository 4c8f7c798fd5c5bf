"""Face photos as W+ codes: read, align as `ganvid invert-image` does, encode with ReStyle; or read
a stored inversion (`<stem>.npz` of `ganvid invert-image`).

    coder = PhotoCoder(CoderOptions(encoder="restyle-e4e-ffhq"), device)
    a, b = coder.codes([Path("a.png"), Path("b.npz")])   # Code(ws [num_ws, w_dim], transform...)
    coder.generator                                       # the generator the codes belong to

A code records which generator it belongs to (`generator_source`: the file, or
`<encoder file>#decoder` for the generator stored inside a ReStyle file), so codes of different
generators are refused instead of being mixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ganvid.errors import InputError
from ganvid.io.image import read_rgb

DECODER_SUFFIX = "#decoder"
"""`<encoder file>#decoder`: the generator stored inside a ReStyle checkpoint."""


# ----------------------------------------------------------------------------- photos


def aligned_face(rgb: np.ndarray, size: int, rule: str, source: Path) -> np.ndarray:
    """The FFHQ-aligned crop [size, size, 3] of the largest face in `rgb`."""
    from ganvid.errors import NoFaceError
    from ganvid.face.align import CropConfig, align_face
    from ganvid.face.landmarks import DetectorConfig, make_detector
    from ganvid.ui import warn

    faces = make_detector(DetectorConfig()).detect(rgb)
    if not faces:
        raise NoFaceError(
            f"{source}: no face found; if the image is already an aligned face crop, pass "
            "--no-align"
        )
    if len(faces) > 1:
        warn(f"{len(faces)} faces found in {source}; inverting the largest")
    face = max(faces, key=lambda f: f.area)
    return align_face(rgb, face.points, rule, CropConfig(size=size)).image


def square_resize(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize an (aligned) image to [size, size, 3]: area filter when shrinking, cubic else."""
    import cv2

    if rgb.shape[:2] == (size, size):
        return rgb
    shrink = min(rgb.shape[:2]) > size
    method = cv2.INTER_AREA if shrink else cv2.INTER_CUBIC
    return cv2.resize(rgb, (size, size), interpolation=method)


# ----------------------------------------------------------------------------- generators


def generator_source(encoder: Path, generator: Path | None) -> str:
    """The record of which generator a code belongs to (resolved paths)."""
    if generator is not None:
        return str(Path(generator).resolve())
    return f"{Path(encoder).resolve()}{DECODER_SUFFIX}"


def load_generator_source(source: str, device):
    """The generator a `generator_source` record names, eval and frozen."""
    if source.endswith(DECODER_SUFFIX):
        from ganvid.nn.restyle_checkpoints import load_restyle

        path = Path(source.removesuffix(DECODER_SUFFIX))
        generator = load_restyle(path, device=device, with_decoder=True).generator
    else:
        from ganvid.nn.checkpoints import load_generator

        generator = load_generator(Path(source), device=device)
    return generator.eval().requires_grad_(False)


# ----------------------------------------------------------------------------- codes


@dataclass(frozen=True)
class CoderOptions:
    """encoder / generator: weights names or files (generator None: the one in the encoder file,
    or the one the stored codes name). align False: photos are aligned crops already."""

    encoder: str = "restyle-e4e-ffhq"
    generator: str | None = None
    n_iters: int | None = None
    align: bool = True
    rule: str = "ffhq"


@dataclass
class Code:
    """One face in W+: ws [num_ws, w_dim] float32, its input transform [3, 3] (identity for an
    aligned photo), where it came from, the generator it belongs to, and the aligned photo
    (None for a stored code)."""

    ws: np.ndarray
    transform: np.ndarray
    source: Path
    generator: str | None
    aligned: np.ndarray | None = None


def is_stored(path: Path) -> bool:
    return Path(path).suffix.lower() == ".npz"


def read_stored(path: Path) -> Code:
    """A `ganvid invert-image` npz -> Code; InputError when missing or not one."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such inversion file")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: not a readable npz ({error})") from None
    ws = arrays.get("ws")
    if ws is None or ws.ndim != 2:
        raise InputError(f"{path}: no W+ code 'ws' [num_ws, w_dim]; make it with invert-image")
    transform = arrays.get("transform", np.eye(3))
    if transform.shape != (3, 3):
        raise InputError(f"{path}: 'transform' must be 3x3, got {transform.shape}")
    generator = str(arrays["generator"]) if "generator" in arrays else None
    return Code(ws.astype(np.float32), transform.astype(np.float32), path, generator)


class PhotoCoder:
    """Turns photos and stored inversions into codes of one generator (networks load once)."""

    def __init__(self, options: CoderOptions, device) -> None:
        self.options = options
        self.device = device
        self._recorded: str | None = None

    @cached_property
    def encoder_path(self) -> Path:
        from ganvid.weights import resolve

        return resolve(self.options.encoder)

    @cached_property
    def source(self) -> str:
        """The generator every code here belongs to."""
        if self.options.generator is not None:
            from ganvid.weights import resolve

            return generator_source(Path(), resolve(self.options.generator))
        if self._recorded is not None:
            return self._recorded
        return generator_source(self.encoder_path, None)

    @cached_property
    def generator(self):
        return load_generator_source(self.source, self.device)

    @cached_property
    def inverter(self):
        from ganvid.nn.restyle_checkpoints import load_restyle

        checkpoint = load_restyle(self.encoder_path, device=self.device, with_decoder=False)
        return checkpoint.inverter(n_iters=self.options.n_iters, generator=self.generator)

    def codes(self, paths: list[Path], accepted: set[str] | None = None) -> list[Code]:
        """Codes of photos and stored inversions, in order. Stored ones must agree on their
        generator (and belong to one of `accepted` when given); InputError otherwise."""
        stored = {i: read_stored(p) for i, p in enumerate(paths) if is_stored(p)}
        recorded = {c.generator for c in stored.values() if c.generator is not None}
        if len(recorded) > 1:
            names = " and ".join(
                f"{c.source} ({_short(c.generator)})" for c in stored.values() if c.generator
            )
            raise InputError(f"{names} were inverted with different generators")
        if recorded:
            (self._recorded,) = recorded
            allowed = accepted if accepted is not None else {self.source}
            if self._recorded not in allowed:
                raise InputError(
                    f"{_first(stored).source} was inverted with {_short(self._recorded)}, not "
                    f"with {' / '.join(_short(a) for a in sorted(allowed))}"
                )
        photos = [p for i, p in enumerate(paths) if i not in stored]
        for path in photos:  # missing files fail before any network loads
            if not Path(path).is_file():
                raise InputError(f"{path}: no such image")
        coded = iter(self._encode(photos))
        out = [stored[i] if i in stored else next(coded) for i in range(len(paths))]
        self._check_shapes(out)
        return out

    def _encode(self, paths: list[Path]) -> list[Code]:
        import torch

        from ganvid.pipeline.render import to_float

        codes = []
        for path in paths:
            rgb = read_rgb(Path(path))
            size = int(self.generator.img_resolution)
            if self.options.align:
                aligned = aligned_face(rgb, size, self.options.rule, Path(path))
            else:
                aligned = square_resize(rgb, size)
            with torch.no_grad():
                ws = self.inverter.invert(to_float([aligned], self.device), return_images=False)
            codes.append(
                Code(ws.ws[0].float().cpu().numpy(), np.eye(3, dtype=np.float32), Path(path),
                     self.source, aligned)
            )  # fmt: skip
        return codes

    def _check_shapes(self, codes: list[Code]) -> None:
        if not codes:
            return
        want = (int(self.generator.num_ws), int(self.generator.w_dim))
        for code in codes:
            if code.ws.shape != want:
                raise InputError(
                    f"{code.source}: code of shape {code.ws.shape}, but the generator takes "
                    f"{want} (inverted with another generator?)"
                )


def _short(source: str | None) -> str:
    if source is None:
        return "an unrecorded generator"
    decoder = source.endswith(DECODER_SUFFIX)
    name = Path(source.removesuffix(DECODER_SUFFIX)).name
    return f"the generator inside {name}" if decoder else name


def _first(codes: dict[int, Code]) -> Code:
    return codes[min(codes)]
