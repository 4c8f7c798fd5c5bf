"""Image2StyleGAN's operations on photos: morph two faces into a video, edit one face (style
crossover, expression transfer, directions, StyleSpace), and save an expression direction.

Every face is a W+ code of one generator (`ganvid.pipeline.photo`: a photo aligned and encoded
like `ganvid invert-image`, or its stored npz); the arithmetic is `ganvid.edit.image2stylegan`;
rendering is `ganvid.pipeline.render` at the generator's resolution. The video path (an
inverted clip) is `ganvid edit --style-from / --expression` (`ganvid.pipeline.edit`).

    morph(MorphOptions(Path("a.png"), Path("b.npz")))          -> a_to_b.mp4 (+ _preview.png)
    edit_image(EditImageOptions(Path("face.png"), request))     -> face_<tag>.png and .npz
    expression_direction_file(ExpressionOptions(n, e, out))     -> out.npy [num_ws, w_dim]
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ganvid.edit.keyframes import Strength
from ganvid.edit.request import EditRequest, domain_of_generator
from ganvid.errors import InputError
from ganvid.pipeline.photo import DECODER_SUFFIX, Code, CoderOptions, PhotoCoder
from ganvid.pipeline.workdir import atomic_save_npy, atomic_save_npz, atomic_write_bytes

# ----------------------------------------------------------------------------- morph


@dataclass(frozen=True)
class MorphOptions:
    """first, second: photos or invert-image npz. frames: frames of the morph itself (None:
    duration_s x fps). hold_s: still time at each end. preview > 0: a contact sheet of that
    many frames instead of the video."""

    first: Path
    second: Path
    output: Path | None = None
    coder: CoderOptions = field(default_factory=CoderOptions)
    frames: int | None = None
    duration_s: float = 3.0
    fps: float = 25.0
    easing: str = "linear"
    hold_s: float = 0.0
    preview: int = 0
    device: str = "auto"
    batch: int = 4
    crf: int = 18
    preset: str = "medium"


@dataclass(frozen=True)
class MorphPlan:
    """Per output frame: lam [N], ws [N, num_ws, w_dim] float32, input transforms [N, 3, 3]."""

    lams: np.ndarray
    ws: np.ndarray
    transforms: np.ndarray


def plan_morph(first: Code, second: Code, options: MorphOptions) -> MorphPlan:
    """The morph's codes and transforms; the transforms (unaligned renders) are interpolated in
    (angle, tx, ty) and equal each code's own at lam 0 and 1, bit for bit."""
    from ganvid.edit.image2stylegan import morph_params, morph_schedule, morph_ws
    from ganvid.nn.sg3_transforms import input_transforms, params_from_input_transform

    if options.fps <= 0:
        raise InputError(f"--fps must be > 0, got {options.fps}")
    if options.frames is None and options.duration_s <= 0:
        raise InputError(f"--duration must be > 0 s, got {options.duration_s}")
    if options.hold_s < 0:
        raise InputError(f"--hold must be >= 0 s, got {options.hold_s}")
    frames = options.frames or max(1, round(options.duration_s * options.fps))
    lams = morph_schedule(frames, round(options.hold_s * options.fps), options.easing)
    ws = morph_ws(first.ws, second.ws, lams)
    params = morph_params(
        params_from_input_transform(first.transform),
        params_from_input_transform(second.transform),
        lams,
    )
    transforms = input_transforms(params).numpy()
    transforms[lams == 0] = first.transform
    transforms[lams == 1] = second.transform
    return MorphPlan(lams, ws, transforms)


def morph(options: MorphOptions) -> dict[str, Path | int]:
    """Render the morph -> {'video' or 'preview': path, 'frames': count}."""
    from ganvid.io.video import write_images_as_video
    from ganvid.pipeline.job import resolve_device
    from ganvid.pipeline.render import RenderJob, render_frames
    from ganvid.ui import stage_bar

    device = resolve_device(options.device)
    coder = PhotoCoder(options.coder, device)
    first, second = coder.codes([options.first, options.second])
    plan = plan_morph(first, second, options)
    output = options.output or options.first.with_name(
        f"{options.first.stem}_to_{options.second.stem}.mp4"
    )
    _refuse_input(output, [options.first, options.second])
    job = RenderJob(plan.ws, plan.transforms)
    count = len(plan.lams)
    if options.preview > 0:
        picks = np.linspace(0, count - 1, min(options.preview, count)).round().astype(int)
        picked = render_frames(coder.generator, job, device, options.batch, sorted(set(picks)))
        images = [image for _, image in picked]
        return {"preview": _save_sheet(output, images), "frames": len(images)}
    with stage_bar("morph", count) as advance:

        def frames():
            for _, image in render_frames(coder.generator, job, device, options.batch):
                advance()
                yield image

        written = write_images_as_video(
            output, frames(), options.fps, crf=options.crf, preset=options.preset
        )
    return {"video": output, "frames": written}


# ----------------------------------------------------------------------------- edit one photo


@dataclass(frozen=True)
class EditImageOptions:
    """image: a photo or invert-image npz. request: the edit (strengths are numbers; keyframes
    belong to clips). preview > 0: a contact sheet of the edit at that many strengths from 0
    to the requested one, instead of the edited image."""

    image: Path
    request: EditRequest
    output: Path | None = None
    coder: CoderOptions = field(default_factory=CoderOptions)
    domain: str | None = None
    preview: int = 0
    device: str = "auto"


def edit_image(options: EditImageOptions) -> dict[str, Path]:
    """Edit one face -> {'image', 'latent'} (or {'preview'})."""
    import torch

    from ganvid.pipeline.job import resolve_device
    from ganvid.pipeline.render import to_uint8

    request = options.request
    if request.is_empty:
        raise InputError(
            "nothing to edit: give --style-from, --expression, --direction, --file or --style"
        )
    _refuse_keyframes(request)
    device = resolve_device(options.device)
    coder = PhotoCoder(options.coder, device)
    paths = [options.image]
    if request.style_from is not None:
        paths.append(Path(request.style_from))
    if request.expression is not None:
        paths += [Path(p) for p in request.expression]
    for path in paths:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
    codes = coder.codes(paths)
    target, generator = codes[0], coder.generator
    output = options.output or options.image.with_name(f"{options.image.stem}_{request.tag()}.png")
    _refuse_input(output, paths)
    if options.preview > 0:
        fractions = np.linspace(0.0, 1.0, options.preview)
        ws, styles = _edited(coder, codes, _ramped(request), fractions, options.domain)
    else:
        ws, styles = _edited(coder, codes, request, np.zeros(1), options.domain)
    transform = torch.tensor(target.transform, device=device)
    with torch.no_grad():
        images = to_uint8(
            generator.synthesis(ws, transform=transform, styles=styles, force_fp32=True)
        )
    if options.preview > 0:
        first = target.aligned if target.aligned is not None else images[0]
        return {"preview": _save_sheet(output, [first, *images])}
    from ganvid.pipeline.workdir import encode_image

    atomic_write_bytes(output, encode_image(images[0], ".png"))
    latent = output.with_suffix(".npz")
    atomic_save_npz(
        latent,
        {
            "ws": ws[0].float().cpu().numpy(),
            "generator": np.array(coder.source),
            "transform": target.transform,
            "method": np.array(f"edit:{request.tag()}"),
        },
    )
    return {"image": output, "latent": latent}


def _edited(coder: PhotoCoder, codes: list[Code], request: EditRequest, times, domain):
    """(ws [T, num_ws, w_dim], styles or None) of codes[0] edited at `times` (one per tile)."""
    import torch

    from ganvid.edit.directions import (
        Direction,
        WEdit,
        apply_style_edits,
        apply_w_edits,
        parse_layers,
    )
    from ganvid.edit.image2stylegan import Crossover, apply_crossovers, expression_direction

    generator = coder.generator
    num_ws, w_dim = int(generator.num_ws), int(generator.w_dim)
    domain = domain or domain_of_generator(coder.source.removesuffix(DECODER_SUFFIX))
    edits = request.w_edits(num_ws, w_dim, domain)
    rest = iter(codes[1:])
    crossovers = []
    if request.style_from is not None:
        style = next(rest)
        layers = request.crossover_layers(num_ws)
        crossovers.append(Crossover("style", style.ws, layers, request.style_strength))
    if request.expression is not None:
        neutral, expressive = next(rest), next(rest)
        vector = expression_direction(neutral.ws, expressive.ws)
        layers = parse_layers(request.layers, num_ws)
        edits.append(WEdit(Direction("expression", vector, layers), request.expression_strength))
    device = coder.device
    times = np.asarray(times, dtype=np.float64)
    ws = torch.tensor(codes[0].ws, device=device)[None].expand(len(times), -1, -1)
    ws = apply_w_edits(apply_crossovers(ws, crossovers, times), edits, times)
    styles = None
    if request.styles:
        with torch.no_grad():
            styles = apply_style_edits(generator.synthesis.styles(ws), list(request.styles), times)
    return ws, styles


def _refuse_keyframes(request: EditRequest) -> None:
    strengths = [d.strength for d in request.directions] + [s.strength for s in request.styles]
    strengths += [request.style_strength, request.expression_strength]
    if any(len(s.values) > 1 for s in strengths):
        raise InputError(
            "strength keyframes apply to videos; for a photo give one number (--preview N shows "
            "the edit at N strengths)"
        )


def _ramped(request: EditRequest) -> EditRequest:
    """The request with every strength s turned into keyframes 0s:0,1s:s (tiles at t in
    [0, 1] then show the edit growing from nothing to s)."""

    def ramp(strength: Strength) -> Strength:
        return Strength((0.0, 1.0), (0.0, strength.values[0]))

    return replace(
        request,
        directions=tuple(replace(d, strength=ramp(d.strength)) for d in request.directions),
        styles=tuple(replace(s, strength=ramp(s.strength)) for s in request.styles),
        style_strength=ramp(request.style_strength),
        expression_strength=ramp(request.expression_strength),
    )


# ----------------------------------------------------------------------------- expression


@dataclass(frozen=True)
class ExpressionOptions:
    """neutral, expressive: photos (or npz) of one person. output: the direction .npy."""

    neutral: Path
    expressive: Path
    output: Path | None = None
    coder: CoderOptions = field(default_factory=CoderOptions)
    device: str = "auto"
    preview: int = 0
    """> 0: also a contact sheet of the neutral face + s x direction at that many s in [0, 1]."""


def expression_direction_file(options: ExpressionOptions) -> dict[str, Path | float]:
    """Write expressive - neutral as a [num_ws, w_dim] .npy (a `ganvid edit --file` direction)
    -> {'direction': path, 'norm': its L2 norm (, 'preview': the sheet)}."""
    from ganvid.edit.image2stylegan import expression_direction
    from ganvid.pipeline.job import resolve_device

    coder = PhotoCoder(options.coder, resolve_device(options.device))
    paths = [options.neutral, options.expressive]
    output = options.output or options.expressive.with_name(
        f"{options.neutral.stem}_to_{options.expressive.stem}.npy"
    )
    if output.suffix != ".npy":
        raise InputError(f"{output}: the direction file must end in .npy")
    _refuse_input(output, paths)
    neutral, expressive = coder.codes(paths)
    vector = expression_direction(neutral.ws, expressive.ws)
    atomic_save_npy(output, vector)
    result: dict[str, Path | float] = {"direction": output, "norm": float(np.linalg.norm(vector))}
    if options.preview > 0:
        from ganvid.pipeline.render import RenderJob, render_frames

        strengths = np.linspace(0.0, 1.0, options.preview, dtype=np.float32)
        ws = neutral.ws[None] + strengths[:, None, None] * vector[None]
        transforms = np.repeat(neutral.transform[None], len(strengths), axis=0)
        job = RenderJob(ws, transforms)
        images = [image for _, image in render_frames(coder.generator, job, coder.device, 4)]
        result["preview"] = _save_sheet(output, images)
    return result


# ----------------------------------------------------------------------------- helpers


def _refuse_input(output: Path, inputs: list[Path]) -> None:
    for path in inputs:
        if Path(path).exists() and Path(output).resolve() == Path(path).resolve():
            raise InputError(f"{output} is an input; choose another -o")


def _save_sheet(output: Path, images: list[np.ndarray]) -> Path:
    from ganvid.pipeline.compose import sibling
    from ganvid.pipeline.edit import contact_sheet
    from ganvid.pipeline.workdir import encode_image

    path = sibling(output, "preview").with_suffix(".png")
    atomic_write_bytes(path, encode_image(contact_sheet(images)))
    return path
