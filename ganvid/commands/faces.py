"""`ganvid faces clip.mp4`: list the faces of a clip (what `--face N` picks) and a contact sheet."""

from __future__ import annotations

from pathlib import Path

import typer

from ganvid.commands.options import CNN, DETECTOR, FRESH, WORKDIR, choice


def faces(
    clip: Path = typer.Argument(..., help="The video (any format FFmpeg reads)."),
    workdir: Path | None = WORKDIR,
    detector: str = DETECTOR,
    cnn: bool = CNN,
    fresh: bool = FRESH,
) -> None:
    """List the faces of a clip, main face first, and write a contact sheet.

    Faces are followed over the whole clip; the same person seen again after leaving the frame
    or after a cut is one face. Face 0 is the main face (most frames x median size): the one
    every command edits by default; pick another with --face N. Writes DIR/faces/faces.json
    and DIR/faces/faces.png (one thumbnail per face, labelled with its N).
    """
    from ganvid.commands.align import DETECTORS
    from ganvid.errors import InputError
    from ganvid.face.landmarks import DetectorConfig
    from ganvid.files import absolute
    from ganvid.pipeline.align import FacesOptions, run_faces
    from ganvid.pipeline.workdir import default_workdir
    from ganvid.ui import console, info

    if not clip.is_file():
        raise InputError(f"{clip}: no such file")
    clip = absolute(clip)  # paths resolved once, whatever the folder
    options = FacesOptions(
        detector=DetectorConfig(backend=choice(detector, DETECTORS, "--detector"), cnn=cnn)
    )
    workdir = absolute(workdir if workdir is not None else default_workdir(clip))
    path, summary, _ = run_faces(clip, workdir, options, fresh=fresh)
    found = summary["faces"]
    info(
        f"{summary['frames']} frames, {summary['shots']} shot(s), {summary['blank']} blank, "
        f"{len(found)} face(s)"
    )
    for face in found:
        spans = ", ".join(f"{t['first']}-{t['last']} (shot {t['shot']})" for t in face["tracks"])
        console.print(
            f"  face {face['face']}: {face['frames']} frames, median {face['median_size']:.0f} px,"
            f" frames {spans}",
            highlight=False,
        )
    info(f"contact sheet: {path.with_name('faces.png')}")


def register(app: typer.Typer) -> None:
    app.command(name="faces")(faces)
