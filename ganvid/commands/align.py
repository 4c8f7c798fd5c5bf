"""`ganvid align`: find, follow and crop the face of a clip (works offline with dlib)."""

from __future__ import annotations

from pathlib import Path

import typer

from ganvid.commands.options import choice

RULES = ("ffhq", "eyes")
FILLS = ("ffhq", "reflect", "constant")
DETECTORS = ("dlib", "fan")


def align(
    clip: Path = typer.Argument(..., help="The video to align (any format FFmpeg reads)."),
    output: Path | None = typer.Option(
        None,
        "-o",
        "--workdir",
        help="Work directory; results go to DIR/align/. Default: <clip>.ganvid beside the clip.",
    ),
    size: int = typer.Option(1024, "--size", min=16, help="Side of both crops, in pixels."),
    detector: str = typer.Option(
        "dlib",
        "--detector",
        help="dlib (built in, offline) or fan (face-alignment; needs the "
        "fa-s3fd and fa-2dfan4 weights).",
    ),
    cnn: bool = typer.Option(
        False, "--cnn", help="dlib: use the CNN face detector (slower; finds turned faces)."
    ),
    device: str = typer.Option("cpu", "--device", help="fan: torch device."),
    face: int = typer.Option(
        0,
        "--face",
        min=0,
        help="Face to follow: 0 = the main face of the clip (most frames x median size), "
        "1 = the next, ... (`ganvid faces` lists them with thumbnails).",
    ),
    rule: str = typer.Option(
        "ffhq",
        "--rule",
        help="Aligned crop scale: ffhq (max of eye and mouth distances) or "
        "eyes (stylegan3-editing's video rule).",
    ),
    smooth: int = typer.Option(
        9, "--smooth", min=0, help="Landmark smoothing window in frames (zero lag; 0 = off)."
    ),
    window_scale: float = typer.Option(
        1.0, "--window-scale", min=0.1, help="Unaligned crop side / face quad side (per shot)."
    ),
    window_cover: float = typer.Option(
        0.5,
        "--window-cover",
        min=0.0,
        help="Share of the face quad kept inside the unaligned "
        "crop while the face moves (the window grows to keep it).",
    ),
    fill: str = typer.Option(
        "ffhq", "--fill", help="Outside the frame: ffhq (reflect, blur, fade), reflect, constant."
    ),
    crf: int = typer.Option(18, "--crf", min=0, max=51, help="Quality of the output videos."),
    fresh: bool = typer.Option(False, "--fresh", help="Recompute everything."),
) -> None:
    """Find and follow the face; write aligned and unaligned crops, geometry.json and a preview.

    Outputs (in DIR/align/): aligned/ and unaligned/ PNGs (one per frame), aligned.mp4,
    unaligned.mp4, preview.mp4 (landmarks, aligned quad and crop window drawn on the frame) and
    geometry.json (per frame: landmarks, quads, SG3 transform, detected/interpolated, shot).
    Every frame of the clip gets a record: frames where the face was missed inside its track
    are interpolated; frames without it (blank, before/after it is seen, other shots) are
    marked absent and show nothing. A second run with the same clip and options does nothing.
    """
    from ganvid.errors import InputError
    from ganvid.face.align import WindowConfig
    from ganvid.face.geometry import CropsConfig, GeometryConfig
    from ganvid.face.landmarks import DetectorConfig
    from ganvid.face.tracks import TrackConfig
    from ganvid.files import absolute
    from ganvid.pipeline.align import AlignOptions, run_align
    from ganvid.pipeline.workdir import default_workdir
    from ganvid.ui import info

    if not clip.is_file():
        raise InputError(f"{clip}: no such file")
    clip = absolute(clip)  # paths resolved once, whatever the folder
    fill = choice(fill, FILLS, "--fill")
    options = AlignOptions(
        detector=DetectorConfig(
            backend=choice(detector, DETECTORS, "--detector"), cnn=cnn, device=device
        ),
        geometry=GeometryConfig(
            track=TrackConfig(face_index=face),
            rule=choice(rule, RULES, "--rule"),
            smooth_window=smooth,
            window=WindowConfig(scale=window_scale, cover=window_cover),
        ),
        crops=CropsConfig(size=size, aligned_fill=fill, unaligned_fill=fill),
        crf=crf,
    )
    workdir = absolute(output if output is not None else default_workdir(clip))
    out, facts, skipped = run_align(clip, workdir, options, fresh=fresh)
    if skipped:
        info(f"up to date: {out}")
        return
    info(
        f"{facts['frames']} frames, face found in {facts['detected']}, "
        f"{facts['interpolated']} interpolated, {facts['absent']} without it, "
        f"{facts['shots']} shot(s), {facts['faces']} face(s) in the clip -> {out}"
    )


def register(app: typer.Typer) -> None:
    app.command(name="align")(align)
