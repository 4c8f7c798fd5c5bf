"""`ganvid toonify clip.mp4 --style cartoon`: restyle a face video with StyleGANEX."""

from __future__ import annotations

from pathlib import Path

import typer

from ganvid.commands.options import (
    CNN,
    CRF,
    DETECTOR,
    DEVICE,
    EXACT_SIZE,
    FACE,
    FRESH,
    KEEP_FRAMES,
    PRESET,
    SEGMENT_FRAMES,
    WORKDIR,
    face_options,
)


def toonify(
    clip: Path = typer.Argument(..., help="The video to toonify (any format FFmpeg reads)."),
    style: str = typer.Option(
        "cartoon", "--style", help="cartoon, pixar or arcane (weights styleganex-toonify-STYLE)."
    ),
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="A StyleGANEX toonify file to use instead of the named style."
    ),
    output: Path | None = typer.Option(
        None,
        "-o",
        "--output",
        help="Output video [default: <clip>_toon_<style>.mp4, or ..._crop.mp4 with --crop-only].",
    ),
    workdir: Path | None = WORKDIR,
    batch: int = typer.Option(4, "--batch", min=1, help="Frames per batch on the network."),
    device: str = DEVICE,
    crop_only: bool = typer.Option(
        False,
        "--crop-only",
        help="Write the restyled crop around the face (4x the crop's pixels) instead of "
        "pasting it back into the full frame.",
    ),
    mask: str = typer.Option(
        "full",
        "--mask",
        help="Paste-back mask: full (the whole window is restyled), hull (face and hair from "
        "the landmarks) or parsing (face and hair from a face-parsing network; weights "
        "styleganex-faceparsing). The style's colours are kept, never matched to the frame.",
    ),
    wplus: str = typer.Option(
        "mean",
        "--wplus",
        help="Style code per shot: mean (one per shot, steadiest) or smooth (per frame, "
        "filtered over time).",
    ),
    eye_px: float = typer.Option(
        64.0,
        "--eye-px",
        min=8.0,
        help="Eye distance in the network's input, px: 64 as the models were run; smaller is "
        "faster and gives a smaller, coarser render.",
    ),
    detector: str = DETECTOR,
    cnn: bool = CNN,
    face: int = FACE,
    crf: int = CRF,
    preset: str = PRESET,
    exact_size: bool = EXACT_SIZE,
    keep_frames: bool = KEEP_FRAMES,
    segment_frames: int = SEGMENT_FRAMES,
    fresh: bool = FRESH,
) -> None:
    """Turn the face in a video into a cartoon, Pixar or Arcane character (StyleGANEX).

    A crop window follows the tracked face (8 eye distances wide, cut to multiples of 8 px);
    StyleGANEX restyles it at 4x its pixels and the result is blended back into each frame at
    the video's own size (or written alone with --crop-only). Frames, timestamps and sound are
    kept; the work directory makes a second run reuse everything and an interrupted run resume.
    """
    from ganvid.face.windows import CropRule
    from ganvid.pipeline.styleganex_video import toonify_video

    summary = toonify_video(
        clip,
        style,
        checkpoint,
        output=output,
        workdir=workdir,
        batch=batch,
        device=device,
        mask=mask if not crop_only else "full",
        crop_only=crop_only,
        wplus=wplus,
        crop=CropRule(eye_px=eye_px),
        crf=crf,
        preset=preset,
        exact_size=exact_size,
        keep_frames=keep_frames,
        segment_frames=segment_frames,
        fresh=fresh,
        face=face_options(detector, cnn, face),
    )
    show_summary(summary, f"ganvid toonify ({style})")


def show_summary(summary, title: str) -> None:
    """Time per stage, crop and render sizes, the output file."""
    from ganvid.ui import console, output_lines, stage_table

    stage_table(title, summary.frames, summary.records)
    (in_h, in_w), (out_h, out_w) = summary.input_size, summary.render_size
    console.print(f"crop {in_w}x{in_h} -> render {out_w}x{out_h}", highlight=False)
    output_lines({"output": summary.output}, summary.workdir)


def register(app: typer.Typer) -> None:
    app.command("toonify")(toonify)
