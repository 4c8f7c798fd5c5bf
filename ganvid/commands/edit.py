"""`ganvid edit` and `ganvid expand-fov`: edit an inverted video, or render it beyond the crop."""

from __future__ import annotations

from pathlib import Path

import typer

from ganvid.commands.options import (
    CRF,
    DEVICE,
    EXACT_SIZE,
    KEEP_FRAMES,
    MASK,
    PRESET,
    SEGMENT_FRAMES,
)
from ganvid.pipeline.styleganex_video import EDIT_SIGN_HELP

CLIP = typer.Argument(
    None,
    help="The inverted video. Optional inside its work dir, or where exactly one *.ganvid/ "
    "folder is in the current directory.",
    show_default=False,
)
WORKDIR = typer.Option(
    None, "--workdir", help="The inversion's work dir [default: <clip>.ganvid/]."
)
DIRECTION = typer.Option(
    None,
    "--direction",
    "-d",
    help="A published InterFaceGAN direction (age, smile, pose, male; `ganvid edit --list`), "
    "optionally with its own strength: age:3 or age:0s:0,2s:3. Repeat for several edits.",
    show_default=False,
)
FILE = typer.Option(
    None,
    "--file",
    help="Your own direction: .npy or .pt of shape (512,), (1, 512) or (16, 512). Repeatable.",
    show_default=False,
)
STRENGTH = typer.Option(
    "1",
    "--strength",
    "-s",
    help="Strength of directions given without one: a number (3, -2) or keyframes in seconds "
    "from the first frame, interpolated per frame: 0s:0,1.5s:3,4s:3,5s:0.",
)
LAYERS = typer.Option(
    None,
    "--layers",
    help="W+ layers the edits move: 0-8, 0-3,9 or coarse / middle / fine (pose and shape / "
    "features / colour and texture) [default: all; fine for --style-from].",
)
STYLE_FROM = typer.Option(
    None,
    "--style-from",
    help="Style crossover (Image2StyleGAN): take the --layers of this face's code (a photo, "
    "aligned and encoded like invert-image, or an invert-image .npz); --strength blends them "
    "(1 = replaced, keyframes allowed).",
    show_default=False,
)
EXPRESSION = typer.Option(
    None,
    "--expression",
    help="Expression transfer (Image2StyleGAN): NEUTRAL EXPRESSIVE, two photos (or .npz) of one "
    "person; adds --strength x (expressive - neutral). `ganvid expression-direction` saves it "
    "as a --file.",
    show_default=False,
)
STYLE = typer.Option(
    None,
    "--style",
    help="StyleSpace edit LAYER:CHANNEL[:STRENGTH], e.g. L3_52_1024:17:5 (layer names as in "
    "the generator: input, L0_36_1024, ...). Repeatable.",
    show_default=False,
)
DOMAIN = typer.Option(
    None,
    "--domain",
    help="Which published directions: ffhq (aligned generator) or ffhqu (unaligned) "
    "[default: from the generator's file name].",
)
BATCH = typer.Option(
    4, "--batch", min=1, help="Frames per render batch (use the inversion's for exact repeats)."
)
FRESH = typer.Option(False, "--fresh", help="Recompute this edit's stages.")


def _request(direction, file, style, strength, layers, style_from=None, expression=None):
    from ganvid.edit.request import EditRequest

    return EditRequest.parse(
        direction or (), file or (), style or (), strength, layers, style_from, expression
    )


def edit(
    clip: Path | None = CLIP,
    direction: list[str] | None = DIRECTION,
    strength: str = STRENGTH,
    layers: str | None = LAYERS,
    style: list[str] | None = STYLE,
    file: list[Path] | None = FILE,
    style_from: Path | None = STYLE_FROM,
    expression: tuple[Path, Path] | None = EXPRESSION,
    domain: str | None = DOMAIN,
    list_: bool = typer.Option(
        False, "--list", help="Show the published directions, which are here, how to get them."
    ),
    preview: int = typer.Option(
        0,
        "--preview",
        min=0,
        help="Render only N evenly spaced frames into <output>_preview.png (input | edited per "
        "tile), in seconds, and stop.",
    ),
    side_by_side: bool = typer.Option(
        False, "--side-by-side", help="Also write <output>_sbs.mp4: input | edited."
    ),
    paste_back: bool = typer.Option(
        True,
        "--paste-back/--no-paste-back",
        help="Paste the edited face back into the full frame (frames without a face stay "
        "untouched), or write the edited crop.",
    ),
    mask: str = MASK,
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Output video [default: <clip>_<edit>.mp4, e.g. talk_age3]."
    ),
    backend: str = typer.Option(
        "sg3",
        "--backend",
        help="sg3: the stored StyleGAN3 inversion (needs `ganvid invert` first). styleganex: "
        "StyleGANEX video edit models, no inversion needed; --direction age|hair (weights "
        "styleganex-edit-age/-hair) or --file with them. " + EDIT_SIGN_HELP,
    ),
    workdir: Path | None = WORKDIR,
    device: str = DEVICE,
    batch: int = BATCH,
    crf: int = CRF,
    preset: str = PRESET,
    exact_size: bool = EXACT_SIZE,
    keep_frames: bool = KEEP_FRAMES,
    segment_frames: int = SEGMENT_FRAMES,
    fresh: bool = FRESH,
) -> None:
    """Edit an inverted face video: age, smile, pose, gender, your own directions, StyleSpace,
    style crossover (--style-from) and expression transfer (--expression).

    Reuses the stored inversion and tuned generator of `ganvid invert CLIP` (no re-inversion):
    the edit moves each frame's W+, then the inversion's own smoothing runs, then the tuned
    generator renders. Writes <clip>_<edit>.mp4 with the clip's frames, timestamps and sound,
    pasted back into the full frame. Each edit is kept in the work dir (edits/<edit>/), so
    repeating a command recomputes nothing.
    """
    from ganvid.errors import InputError

    if list_:
        show_registry(domain, workdir, clip)
        return
    if backend not in ("sg3", "styleganex"):
        raise InputError(f"--backend {backend!r}: use sg3 or styleganex")
    common = _common(
        clip, workdir, output, side_by_side, device, batch, crf, preset, fresh, exact_size
    )
    if backend == "styleganex":
        unsupported = {"--style": style, "--layers": layers, "--preview": preview}
        unsupported.update({"--style-from": style_from, "--expression": expression})
        frames = {"keep_frames": keep_frames, "segment_frames": segment_frames}
        _styleganex(common | frames, direction, file, strength, paste_back, mask, unsupported)
        return
    from ganvid.pipeline.edit import edit_video

    result = edit_video(
        request=_request(direction, file, style, strength, layers, style_from, expression),
        domain=domain,
        paste_back=paste_back,
        mask=mask,
        preview=preview,
        keep_frames=keep_frames,
        segment_frames=segment_frames,
        **common,
    )
    if isinstance(result, Path):
        from ganvid.ui import info

        info(f"preview: {result} (run again without --preview for the video)")
        return
    show_summary(result, f"ganvid edit ({result.tag})")


def expand_fov(
    clip: Path | None = CLIP,
    left: int = typer.Option(0, "--left", min=0, help="Pixels to add on the left."),
    right: int = typer.Option(0, "--right", min=0, help="Pixels to add on the right."),
    top: int = typer.Option(0, "--top", min=0, help="Pixels to add at the top."),
    bottom: int = typer.Option(0, "--bottom", min=0, help="Pixels to add at the bottom."),
    band: int | None = typer.Option(
        None, "--band", min=1, help="Width of the feathered joins in px [default: size / 32]."
    ),
    direction: list[str] | None = DIRECTION,
    strength: str = STRENGTH,
    layers: str | None = LAYERS,
    style: list[str] | None = STYLE,
    file: list[Path] | None = FILE,
    domain: str | None = DOMAIN,
    side_by_side: bool = typer.Option(
        False, "--side-by-side", help="Also write <output>_sbs.mp4: input crop | expanded."
    ),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Output video [default: <clip>[_<edit>]_fov.mp4]."
    ),
    workdir: Path | None = WORKDIR,
    device: str = DEVICE,
    batch: int = BATCH,
    crf: int = CRF,
    preset: str = PRESET,
    exact_size: bool = EXACT_SIZE,
    keep_frames: bool = KEEP_FRAMES,
    segment_frames: int = SEGMENT_FRAMES,
    fresh: bool = FRESH,
) -> None:
    """Render an inverted face video beyond its crop (StyleGAN3 field-of-view expansion).

    Pixels are at the generator's resolution (1024 for the published ones): --left 256 adds a
    quarter of the crop on the left. Each frame renders the centre and only the shifted views
    it needs, in one batch, joined with feathered blending. The same edit options as
    `ganvid edit` apply that edit too. Writes <clip>_fov.mp4 (crop space, the expanded size)
    with the clip's frames, timestamps and sound.
    """
    from ganvid.pipeline.edit import expand_fov as run_fov
    from ganvid.pipeline.fov import Expansion

    summary = run_fov(
        request=_request(direction, file, style, strength, layers),
        domain=domain,
        expansion=Expansion(left, right, top, bottom),
        band=band,
        keep_frames=keep_frames,
        segment_frames=segment_frames,
        **_common(
            clip, workdir, output, side_by_side, device, batch, crf, preset, fresh, exact_size
        ),
    )
    show_summary(summary, f"ganvid expand-fov ({summary.tag})")


def _common(
    clip, workdir, output, side_by_side, device, batch, crf, preset, fresh, exact_size
) -> dict:
    """The options every rendering command shares (fields of ganvid.pipeline.edit options)."""
    return dict(
        clip=clip,
        workdir=workdir,
        output=output,
        side_by_side=side_by_side,
        device=device,
        batch=batch,
        crf=crf,
        preset=preset,
        exact_size=exact_size,
        fresh=fresh,
    )


def _styleganex(
    common: dict, direction, file, strength, paste_back, mask, unsupported: dict
) -> None:
    """`ganvid edit --backend styleganex`: one StyleGANEX edit model over the clip."""
    from ganvid.commands.toonify import show_summary as show_sgx
    from ganvid.errors import InputError
    from ganvid.pipeline.styleganex_video import styleganex_edit_video

    unsupported["--side-by-side"] = common.pop("side_by_side")
    given = [flag for flag, value in unsupported.items() if value]
    if given:
        raise InputError(f"--backend styleganex does not take {', '.join(given)}")
    clip = common.pop("clip")
    if clip is None:
        raise InputError("--backend styleganex needs the CLIP (it does not use an inversion)")
    direction = list(direction or [])
    if len(direction) > 1 or len(file or []) > 1:
        raise InputError("--backend styleganex applies one edit: one --direction or --file")
    name, sep, own = (direction[0] if direction else "age").partition(":")
    if name not in ("age", "hair"):
        raise InputError(f"--backend styleganex edits age or hair, not {name!r}")
    summary = styleganex_edit_video(
        clip,
        checkpoint=f"styleganex-edit-{name}",
        strength=own if sep else strength,
        direction=(file or [None])[0],
        mask=mask if paste_back else "hull",
        crop_only=not paste_back,
        **common,
    )
    show_sgx(summary, f"ganvid edit --backend styleganex ({name})")


def show_registry(domain: str | None, workdir: Path | None, clip: Path | None) -> None:
    """The published directions for the domain (on stdout): present or missing, how to get them.
    The domain defaults to the one of the inversion found like `ganvid edit` finds it."""
    from ganvid.edit.request import registry

    domain = domain or _inverted_domain(workdir, clip)
    typer.echo(f"InterFaceGAN directions for {domain} (--domain ffhq|ffhqu):")
    for row in registry(domain):
        status = f"present  {row.path}" if row.path else f"missing  get it: {row.how}"
        typer.echo(f"  {row.name:<6} {row.weights:<24} {status}")
    typer.echo(
        "Other CelebA attributes (Eyeglasses, Bald, Young, ...): fetch <attr>_boundary.npy from "
        "the folder named in `ganvid weights list` and pass it with --file.\n"
        "StyleSpace: --style LAYER:CHANNEL[:STRENGTH].\n"
        "StyleGANEX (--backend styleganex): age, hair; `ganvid weights download styleganex-edit`."
    )


def _inverted_domain(workdir: Path | None, clip: Path | None) -> str:
    """'ffhq' or 'ffhqu' from the inversion's generator, 'ffhq' when there is none here."""
    from ganvid.edit.request import domain_of_generator
    from ganvid.errors import GanvidError
    from ganvid.pipeline.edit import find_workdir
    from ganvid.pipeline.layout import Layout
    from ganvid.pipeline.workdir import read_json

    try:
        record = read_json(Layout(find_workdir(clip, workdir)).inversion_json) or {}
    except GanvidError:
        record = {}
    return domain_of_generator(record.get("generator", ""))


def show_summary(summary, title: str) -> None:
    """Time per stage and the output files."""
    from ganvid.ui import output_lines, stage_table

    stage_table(title, summary.frames, summary.records)
    output_lines(summary.outputs, summary.workdir)


def register(app: typer.Typer) -> None:
    app.command("edit")(edit)
    app.command("expand-fov")(expand_fov)
