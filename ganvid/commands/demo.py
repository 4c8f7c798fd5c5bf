"""`ganvid demo`: real work on a fresh machine, with no downloads."""

from __future__ import annotations

from pathlib import Path

import typer


def demo(
    output: Path = typer.Option(
        Path("ganvid-demo"), "-o", "--output", help="Folder for the demo clip and its results."
    ),
    size: int = typer.Option(256, "--size", min=64, help="Side of the face crops, in pixels."),
) -> None:
    """Make a 2-second clip from a public-domain face image, align it, and say what is next.

    Writes DEMO/astronaut.mp4 (with a 440 Hz tone), then runs `ganvid align` on it: aligned and
    unaligned crops, geometry.json and a preview video in DEMO/astronaut.ganvid/align/. If the
    weights of `ganvid invert` are present it prints the command to invert the clip; if not, it
    prints the one `ganvid weights download` that fetches them.
    """
    from ganvid import weights
    from ganvid.demo import make_demo_clip
    from ganvid.face.geometry import CropsConfig
    from ganvid.files import absolute
    from ganvid.pipeline.align import AlignOptions, run_align
    from ganvid.pipeline.workdir import default_workdir
    from ganvid.ui import info

    output = absolute(output)
    output.mkdir(parents=True, exist_ok=True)
    clip = output / "astronaut.mp4"
    if not clip.exists():
        make_demo_clip(clip)
    info(f"demo clip: {clip} (2 s, 25 fps, with sound)")
    aligned_dir, facts, _ = run_align(
        clip, default_workdir(clip), AlignOptions(crops=CropsConfig(size=size))
    )
    info(
        f"aligned: {facts['frames']} frames, face found in {facts['detected']}, "
        f"{facts['shots']} shot(s) -> {aligned_dir} (geometry.json, aligned.mp4, "
        "unaligned.mp4, preview.mp4)"
    )
    needed = weights.manifest().expand(["invert"])
    missing = [entry.name for entry in needed if weights.find(entry) is None]
    if missing:
        info(
            f"next: `ganvid weights download invert` fetches the {len(missing)} missing "
            f"file(s) ({', '.join(missing)}); then run `ganvid invert {clip}`"
        )
    else:
        info(f"next: all weights for inversion are present; run `ganvid invert {clip}`")


def register(app: typer.Typer) -> None:
    app.command()(demo)
