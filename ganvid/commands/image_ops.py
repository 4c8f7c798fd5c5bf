"""Image2StyleGAN's operations on face photos: `ganvid morph`, `ganvid edit-image` (style
crossover, expression transfer, directions) and `ganvid expression-direction`.

Photos are aligned and encoded as `ganvid invert-image` does; its .npz files (e.g. from the
slower, closer `--method optimize`) can stand in for any photo. The same operations on an
inverted video are `ganvid edit CLIP --style-from / --expression / --file`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ganvid.commands.edit import DIRECTION, DOMAIN, EXPRESSION, FILE, LAYERS, STRENGTH, STYLE
from ganvid.commands.options import CRF, DEVICE, PRESET

ENCODER = typer.Option(
    "restyle-e4e-ffhq",
    "--encoder",
    help="ReStyle encoder for photos: a weights name (restyle-e4e-ffhq, restyle-psp-ffhq) or a "
    ".pt file.",
)
GENERATOR = typer.Option(
    None,
    "--generator",
    help="StyleGAN3 generator (name or file) [default: the one the .npz inputs name, else the "
    "one stored in the --encoder file].",
)
ENCODER_ITERS = typer.Option(
    None, "--encoder-iters", min=1, help="ReStyle iterations [default: the checkpoint's]."
)
ALIGN = typer.Option(
    True,
    "--align/--no-align",
    help="Find the face and make the FFHQ-aligned crop first (as invert-image). --no-align: the "
    "photos are aligned face crops already.",
)
RULE = typer.Option("ffhq", "--rule", help="Alignment rule: ffhq or eyes.")
FACE = "A face photo (PNG, JPEG, ...) or an invert-image .npz."


def _coder(encoder, generator, encoder_iters, align, rule):
    from ganvid.errors import InputError
    from ganvid.pipeline.photo import CoderOptions

    if rule not in ("ffhq", "eyes"):
        raise InputError(f"--rule {rule!r}: use ffhq or eyes")
    return CoderOptions(encoder, generator, encoder_iters, align, rule)


def morph(
    first: Path = typer.Argument(..., help=FACE, show_default=False),
    second: Path = typer.Argument(..., help=FACE, show_default=False),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Output video [default: <first>_to_<second>.mp4]."
    ),
    frames: int | None = typer.Option(
        None, "--frames", min=1, help="Frames of the morph [default: --duration x --fps]."
    ),
    duration: float = typer.Option(3.0, "--duration", help="Length of the morph in seconds."),
    fps: float = typer.Option(25.0, "--fps", help="Frame rate of the video."),
    easing: str = typer.Option(
        "linear", "--easing", help="linear, ease-in, ease-out or ease-in-out."
    ),
    hold: float = typer.Option(
        0.0, "--hold", help="Seconds to stay on each face before and after the morph."
    ),
    preview: int = typer.Option(
        0,
        "--preview",
        min=0,
        help="Render only N evenly spaced frames into <output>_preview.png and stop.",
    ),
    encoder: str = ENCODER,
    generator: str | None = GENERATOR,
    encoder_iters: int | None = ENCODER_ITERS,
    align: bool = ALIGN,
    rule: str = RULE,
    device: str = DEVICE,
    batch: int = typer.Option(4, "--batch", min=1, help="Frames per render batch."),
    crf: int = CRF,
    preset: str = PRESET,
) -> None:
    """Morph one face into another (Image2StyleGAN): w = (1 - lam) w_first + lam w_second,
    rendered at the generator's resolution; the first and last frames are the two faces'
    reconstructions exactly. Unaligned renders (codes with transforms) move between them."""
    from ganvid.errors import InputError
    from ganvid.pipeline.image_ops import MorphOptions
    from ganvid.pipeline.image_ops import morph as run_morph
    from ganvid.ui import info

    if frames is None and duration <= 0:
        raise InputError(f"--duration must be > 0 s, got {duration}")
    options = MorphOptions(
        first,
        second,
        output,
        _coder(encoder, generator, encoder_iters, align, rule),
        frames,
        duration,
        fps,
        easing,
        hold,
        preview,
        device,
        batch,
        crf,
        preset,
    )
    result = run_morph(options)
    if "preview" in result:
        info(f"preview: {result['preview']} (run again without --preview for the video)")
        return
    info(f"morph: {result['video']} ({result['frames']} frames at {fps:g} fps)")


def edit_image(
    image: Path = typer.Argument(..., help=FACE, show_default=False),
    style_from: Path | None = typer.Option(
        None,
        "--style-from",
        help="Style crossover: take the --layers of this face's code (photo or .npz); "
        "--strength blends them (1 = replaced).",
        show_default=False,
    ),
    expression: tuple[Path, Path] | None = EXPRESSION,
    direction: list[str] | None = DIRECTION,
    file: list[Path] | None = FILE,
    style: list[str] | None = STYLE,
    strength: str = STRENGTH,
    layers: str | None = LAYERS,
    domain: str | None = DOMAIN,
    output: Path | None = typer.Option(
        None,
        "-o",
        "--output",
        help="Edited image [default: <image>_<edit>.png]; its code is written beside it as .npz.",
    ),  # fmt: skip
    preview: int = typer.Option(
        0,
        "--preview",
        min=0,
        help="Write <output>_preview.png: the photo, then the edit at N strengths from 0 to "
        "--strength, and stop.",
    ),
    encoder: str = ENCODER,
    generator: str | None = GENERATOR,
    encoder_iters: int | None = ENCODER_ITERS,
    align: bool = ALIGN,
    rule: str = RULE,
    device: str = DEVICE,
) -> None:
    """Edit one face photo like `ganvid edit` edits a video: style crossover (--style-from,
    --layers coarse|middle|fine or 8-15), expression transfer (--expression NEUTRAL
    EXPRESSIVE), directions (--direction, --file) and StyleSpace (--style). Writes the edited
    render and its W+ code (.npz, usable by morph and edit-image)."""
    from ganvid.edit.request import EditRequest
    from ganvid.pipeline.image_ops import EditImageOptions
    from ganvid.pipeline.image_ops import edit_image as run_edit
    from ganvid.ui import info

    request = EditRequest.parse(
        direction or (), file or (), style or (), strength, layers, style_from, expression
    )
    options = EditImageOptions(
        image,
        request,
        output,
        _coder(encoder, generator, encoder_iters, align, rule),
        domain,
        preview,
        device,
    )
    result = run_edit(options)
    for name, path in result.items():
        info(f"{name}: {path}")


def expression_direction(
    neutral: Path = typer.Argument(..., help="The person, neutral. " + FACE, show_default=False),
    expressive: Path = typer.Argument(
        ..., help="The same person with the expression. " + FACE, show_default=False
    ),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Direction file [default: <neutral>_to_<expressive>.npy]."
    ),
    preview: int = typer.Option(
        0,
        "--preview",
        min=0,
        help="Also write <output>_preview.png: the neutral face plus the direction at N "
        "strengths from 0 to 1 (1 = the expressive face).",
    ),
    encoder: str = ENCODER,
    generator: str | None = GENERATOR,
    encoder_iters: int | None = ENCODER_ITERS,
    align: bool = ALIGN,
    rule: str = RULE,
    device: str = DEVICE,
) -> None:
    """Save an expression as a direction (Image2StyleGAN): expressive - neutral, [num_ws, 512].
    Apply it with `ganvid edit CLIP --file it.npy --strength 0s:0,2s:1` or
    `ganvid edit-image face.png --file it.npy`."""
    from ganvid.pipeline.image_ops import ExpressionOptions, expression_direction_file
    from ganvid.ui import info

    coder = _coder(encoder, generator, encoder_iters, align, rule)
    options = ExpressionOptions(neutral, expressive, output, coder, device, preview)
    result = expression_direction_file(options)
    info(f"direction: {result['direction']} (norm {result['norm']:.3f})")
    if "preview" in result:
        info(f"preview: {result['preview']}")


def register(app: typer.Typer) -> None:
    app.command("morph")(morph)
    app.command("edit-image")(edit_image)
    app.command("expression-direction")(expression_direction)
