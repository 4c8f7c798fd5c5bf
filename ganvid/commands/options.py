"""Options that several commands share, defined once so that their flags, defaults and help
read the same in every command. Each is a typer OptionInfo used as a parameter's default
(`device: str = DEVICE`)."""

from __future__ import annotations

import typer

WORKDIR = typer.Option(
    None, "--workdir", help="Work directory for every intermediate [default: <clip>.ganvid/]."
)
DEVICE = typer.Option("auto", "--device", help="auto, cpu or cuda.")
DETECTOR = typer.Option("dlib", "--detector", help="Landmark detector: dlib or fan.")
CNN = typer.Option(False, "--cnn", help="dlib's CNN face detector (slower, more poses).")
FACE = typer.Option(
    0,
    "--face",
    min=0,
    help="Which face: 0 = the main face of the clip (most frames x size), 1 = the next... "
    "(`ganvid faces` lists them).",
)
MASK = typer.Option(
    "hull",
    "--mask",
    help="Paste-back mask: hull (landmarks' convex hull grown to the hairline) or parsing (a "
    "face-parsing network: follows hair, ears and glasses; weights styleganex-faceparsing).",
)
CRF = typer.Option(18, "--crf", min=0, max=51, help="H.264 quality (lower is better).")
PRESET = typer.Option("medium", "--preset", help="x264 speed preset.")
FRESH = typer.Option(False, "--fresh", help="Recompute every stage.")
KEEP_FRAMES = typer.Option(
    False,
    "--keep-frames",
    help="Also keep every render as a PNG in the work dir, for inspection (the videos are the "
    "same). Default: renders go straight into the encoder.",
)
SEGMENT_FRAMES = typer.Option(
    300,
    "--segment-frames",
    min=1,
    help="Frames per resumable output segment: what a killed run may have to render again.",
)
EXACT_SIZE = typer.Option(
    False,
    "--exact-size",
    help="Keep an odd width or height exactly (H.264 4:4:4, which browsers, QuickTime and "
    "phones do not play). Default: yuv420p, an odd side padded by one pixel that repeats the "
    "edge.",
)


def face_options(detector: str, cnn: bool, face: int) -> dict:
    """--detector, --cnn and --face as a job's `face` dict (read by
    `ganvid.pipeline.align.face_configs`)."""
    return {"detector": detector, "cnn": cnn, "face_index": face}


def choice(value: str, allowed: tuple[str, ...], option: str) -> str:
    """`value` if it is one of `allowed`, else a one-line InputError naming `option`."""
    from ganvid.errors import InputError

    if value not in allowed:
        raise InputError(f"{option} must be one of {', '.join(allowed)}; got {value!r}")
    return value
