"""`ganvid stylemap ...`: StyleMapGAN local editing of faces in photos and videos, and morphing.

StyleMapGAN's latent is a stylemap with spatial dimensions (64 x 8 x 8 at 256 px); an encoder
reads it from a face in one pass, and a mask decides where the reference's stylemap replaces
the original's, so one face part moves from one face to another while the rest stays.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ganvid.commands.options import (
    CNN,
    CRF,
    DETECTOR,
    DEVICE,
    FACE,
    FRESH,
    KEEP_FRAMES,
    PRESET,
    SEGMENT_FRAMES,
    WORKDIR,
)
from ganvid.io.image import read_rgb

PARTS_HELP = (
    "Face part taken from the reference: hair, nose, eyes, eyebrows, lips, ears, neck, skin, "
    "cloth or background (found by the face-parsing network in both faces; the union of both "
    "regions is transplanted, as the official CelebA-HQ editing does)."
)
MASK_HELP = (
    "A painted mask instead of --part: an image the size of the aligned face (white = take "
    "from the reference), e.g. painted over the _face.png of a first run."
)
CHECKPOINT_HELP = "StyleMapGAN weights name or .pt file (CC BY-NC 4.0: non-commercial use only)."

stylemap_app = typer.Typer(
    name="stylemap",
    help="StyleMapGAN: move a face part (hair, nose, eyes, lips...) from a reference face into "
    "a photo or a video in real time, or morph two faces. Weights are CC BY-NC 4.0 "
    "(non-commercial); fetch them by hand and `ganvid weights import` them.",
    no_args_is_help=True,
)


def _show(paths: dict[str, Path]) -> None:
    from ganvid.ui import console

    for name, path in paths.items():
        console.print(f"{name}: {path}", highlight=False)


@stylemap_app.command("photo")
def photo(
    image: Path = typer.Argument(..., help="The photo to edit."),
    reference: Path = typer.Option(..., "--reference", "-r", help="The face to take from."),
    part: str | None = typer.Option(None, "--part", "-p", help=PARTS_HELP),
    mask: Path | None = typer.Option(None, "--mask", help=MASK_HELP),
    strength: float = typer.Option(
        1.0,
        "--strength",
        help="0 = the photo's own code (its reconstruction), 1 = the full transplant; between "
        "moves the region's codes part way.",
    ),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Output image [default: <image>_stylemap_<part>.png]."
    ),
    checkpoint: str = typer.Option(
        "stylemapgan-celeba-hq-256", "--checkpoint", help=CHECKPOINT_HELP
    ),
    align: bool = typer.Option(
        True,
        "--align/--no-align",
        help="Find and FFHQ-align the largest face as the model was trained, and paste the "
        "result back into the photo (--no-align: inputs are aligned crops; the output is the "
        "edited crop).",
    ),
    paste_mask: str = typer.Option(
        "hull", "--paste-mask", help="Region pasted back into the photo: hull or parsing."
    ),
    device: str = DEVICE,
) -> None:
    """Local editing of a photo: transplant a face part of the reference into it.

    Writes the edited photo and beside it _face.png (the edited aligned face), _recon.png
    (the photo's reconstruction: what strength 0 gives) and _mask.png (the region).
    """
    from ganvid.pipeline.stylemapgan import PhotoOptions, run_photo_edit

    label = part or "mask"
    target = output or image.with_name(f"{image.stem}_stylemap_{label}.png")
    options = PhotoOptions(
        part=part,
        mask=mask,
        strength=strength,
        checkpoint=checkpoint,
        align=align,
        paste_mask=paste_mask,
        device=device,
    )
    paths = run_photo_edit(
        read_rgb(image), read_rgb(reference), (image, reference), target, options
    )
    _show(paths)


@stylemap_app.command("mix")
def mix(
    first: Path = typer.Argument(..., help="The first face."),
    second: Path = typer.Argument(..., help="The second face."),
    mode: str = typer.Option(
        "interpolate",
        "--mode",
        help="interpolate (morph from the first face to the second), coarse (the first's "
        "coarse 8x8 layout with the second's details) or fine (the opposite).",
    ),
    steps: int = typer.Option(5, "--steps", min=1, help="Morph images between the two faces."),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Output image [default: <first>_<mode>_<second>.png]."
    ),
    checkpoint: str = typer.Option(
        "stylemapgan-celeba-hq-256", "--checkpoint", help=CHECKPOINT_HELP
    ),
    align: bool = typer.Option(True, "--align/--no-align", help="FFHQ-align both faces first."),
    device: str = DEVICE,
) -> None:
    """Morph or style-mix two faces; one image: [first | results | second] (reconstructions)."""
    from ganvid.pipeline.stylemapgan import run_mix

    target = output or first.with_name(f"{first.stem}_{mode}_{second.stem}.png")
    path = run_mix(
        read_rgb(first),
        read_rgb(second),
        (first, second),
        target,
        mode,
        steps,
        checkpoint,
        align,
        device,
    )
    _show({"output": path})


@stylemap_app.command("video")
def video(
    clip: Path = typer.Argument(..., help="The video to edit (any format FFmpeg reads)."),
    reference: Path = typer.Option(..., "--reference", "-r", help="The face to take from."),
    part: str | None = typer.Option(None, "--part", "-p", help=PARTS_HELP),
    mask: Path | None = typer.Option(None, "--mask", help=MASK_HELP),
    strength: str = typer.Option(
        "1",
        "--strength",
        help="0 = each frame's own code (its reconstruction), 1 = the full transplant; a "
        "number, or keyframes in seconds like 0s:0,1s:1,4s:1,5s:0 (linear in between).",
    ),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Output video [default: <clip>_stylemap_<part>.mp4]."
    ),
    workdir: Path | None = WORKDIR,
    checkpoint: str = typer.Option(
        "stylemapgan-celeba-hq-256", "--checkpoint", help=CHECKPOINT_HELP
    ),
    smooth: bool = typer.Option(
        True, "--smooth/--no-smooth", help="Smooth the frames' stylemaps over time."
    ),
    paste_mask: str = typer.Option(
        "hull", "--paste-mask", help="Region pasted back into each frame: hull or parsing."
    ),
    batch: int = typer.Option(8, "--batch", min=1, help="Frames per batch on the networks."),
    device: str = DEVICE,
    detector: str = DETECTOR,
    cnn: bool = CNN,
    face: int = FACE,
    crf: int = CRF,
    preset: str = PRESET,
    keep_frames: bool = KEEP_FRAMES,
    segment_frames: int = SEGMENT_FRAMES,
    fresh: bool = FRESH,
) -> None:
    """Local editing of a video: transplant a face part of the reference into every frame.

    Each frame's face is FFHQ-aligned as the model was trained, encoded, blended with the
    reference's stylemap on the part's mask (the part in that frame united with the part in
    the reference), rendered and pasted back into the frame. Stylemaps are smoothed over
    time; frames, timestamps and sound are kept; a second run reuses the work directory and an
    interrupted one resumes.
    """
    from ganvid.commands.options import face_options
    from ganvid.pipeline.stylemapgan_video import StylemapVideoOptions, run_stylemap_video
    from ganvid.ui import output_lines, stage_table

    summary = run_stylemap_video(
        StylemapVideoOptions(
            clip=clip,
            reference=reference,
            reference_image=read_rgb(reference),
            part=part,
            mask=mask,
            strength=strength,
            output=output,
            workdir=workdir,
            checkpoint=checkpoint,
            smooth=smooth,
            paste_mask=paste_mask,
            batch=batch,
            device=device,
            crf=crf,
            preset=preset,
            keep_frames=keep_frames,
            segment_frames=segment_frames,
            fresh=fresh,
            face=face_options(detector, cnn, face),
        )
    )
    stage_table("ganvid stylemap video", summary.frames, summary.records)
    output_lines({"output": summary.output}, summary.workdir)


def register(app: typer.Typer) -> None:
    app.add_typer(stylemap_app, name="stylemap")
