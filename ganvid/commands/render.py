"""`ganvid render`: images from a StyleGAN3 generator, to check that a downloaded file works."""

from __future__ import annotations

from pathlib import Path

import typer

from ganvid.commands.options import DEVICE

SEEDS_HELP = "Seeds: a list and/or ranges, e.g. 0-3,7 (z = RandomState(seed).randn, as NVIDIA)."


def parse_seeds(text: str) -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7]."""
    from ganvid.errors import InputError

    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        match = part.split("-") if part.count("-") == 1 and not part.startswith("-") else [part]
        try:
            bounds = [int(v) for v in match]
        except ValueError:
            raise InputError(f"--seeds {text!r}: use numbers and ranges like 0-3,7") from None
        if len(bounds) == 2 and bounds[0] > bounds[1] or min(bounds) < 0 or max(bounds) >= 2**32:
            raise InputError(f"--seeds {text!r}: seeds are 0 ... 2^32-1, ranges low-high")
        seeds.extend(range(bounds[0], bounds[-1] + 1))
    return seeds


def parse_translate(text: str) -> tuple[float, float]:
    """'0.1,-0.05' -> (0.1, -0.05) in image-width units."""
    from ganvid.errors import InputError

    try:
        tx, ty = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--translate {text!r}: give X,Y in image widths, e.g. 0.1,0") from None
    return tx, ty


def render(
    generator: str = typer.Option(
        ...,
        "--generator",
        "-g",
        help="Generator file (NVIDIA .pkl, stylegan3-editing .pt, PTI or ganvid .pt) or a name "
        "from `ganvid weights list`.",
    ),
    outdir: Path = typer.Option(..., "-o", "--outdir", help="Folder for the PNG files."),
    seeds: str = typer.Option("0-3", "--seeds", help=SEEDS_HELP),
    ws_file: Path | None = typer.Option(
        None,
        "--ws",
        help="Render these latents instead of seeds: .npz with 'ws' [N, num_ws, w_dim] or .npy.",
    ),
    psi: float = typer.Option(
        1.0, "--psi", help="Truncation for seeds: 1 = none, 0.7 = nearer the average image."
    ),
    rotate: float = typer.Option(
        0.0, "--rotate", help="Rotate the image by DEG degrees (counter-clockwise)."
    ),
    translate: str = typer.Option(
        "0,0", "--translate", help="Move the image by X,Y image widths (right, down)."
    ),
    batch: int = typer.Option(4, "--batch", min=1, help="Images per forward pass."),
    device: str = DEVICE,
    fp32: bool = typer.Option(False, "--fp32", help="No float16 layers on CUDA."),
) -> None:
    """Render PNGs from a StyleGAN3 generator (seedNNNN.png or wsNNNN.png in OUTDIR)."""
    from ganvid.pipeline.job import resolve_device
    from ganvid.pipeline.samples import render_samples
    from ganvid.ui import info
    from ganvid.weights import resolve

    tx, ty = parse_translate(translate)
    seed_list = parse_seeds(seeds) if ws_file is None else []
    G, names = render_samples(
        resolve(generator), outdir, seed_list, ws_file, psi, (rotate, tx, ty), batch,
        resolve_device(device), fp32,
    )  # fmt: skip
    info(f"wrote {len(names)} images ({G.img_resolution} px, config {G.config.name}) to {outdir}")


def register(app: typer.Typer) -> None:
    app.command()(render)
