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


def load_latents(path: Path, num_ws: int, w_dim: int):
    """ws [N, num_ws, w_dim] float32 from an .npz (key 'ws' or its only array) or .npy file."""
    import numpy as np

    from ganvid.errors import InputError

    try:
        data = np.load(path, allow_pickle=False)
        if isinstance(data, np.ndarray):
            ws = data
        else:
            with data:
                if "ws" not in data.files and len(data.files) != 1:
                    raise InputError(f"{path}: expected an array named 'ws', found {data.files}")
                ws = data["ws" if "ws" in data.files else data.files[0]]
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read latents from {path}: {error}") from error
    ws = np.asarray(ws, dtype=np.float32)
    if ws.shape == (num_ws, w_dim):
        ws = ws[None]
    if ws.ndim != 3 or ws.shape[1:] != (num_ws, w_dim):
        raise InputError(
            f"{path}: ws of shape {ws.shape} do not fit this generator ([N, {num_ws}, {w_dim}])"
        )
    return ws


def _resolve_generator(name_or_path: str) -> Path:
    try:
        from ganvid.weights import resolve
    except ImportError:
        return Path(name_or_path)
    return resolve(name_or_path)


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
    import numpy as np
    import torch

    from ganvid.io.image import write_image
    from ganvid.nn.checkpoints import load_generator
    from ganvid.nn.sg3_transforms import input_transform
    from ganvid.pipeline.job import resolve_device
    from ganvid.pipeline.render import to_uint8
    from ganvid.ui import info, progress

    tx, ty = parse_translate(translate)
    seed_list = parse_seeds(seeds) if ws_file is None else []
    dev = resolve_device(device)
    G = load_generator(_resolve_generator(generator), device=dev).requires_grad_(False)
    transform = torch.as_tensor(input_transform(rotate, tx, ty), dtype=torch.float32)
    if ws_file is not None:
        all_ws = load_latents(ws_file, G.num_ws, G.w_dim)
        names = [f"ws{i:04d}.png" for i in range(len(all_ws))]
    else:
        names = [f"seed{seed:04d}.png" for seed in seed_list]
    outdir.mkdir(parents=True, exist_ok=True)
    with progress() as bar, torch.no_grad():
        task = bar.add_task("rendering", total=len(names))
        for start in range(0, len(names), batch):
            if ws_file is not None:
                ws = torch.from_numpy(all_ws[start : start + batch]).to(dev)
            else:
                rows = [np.random.RandomState(s).randn(G.z_dim) for s in seed_list[start:][:batch]]
                z = torch.from_numpy(np.stack(rows)).to(dev)
                ws = G.mapping(z, None, truncation_psi=psi)
            images = to_uint8(G.synthesis(ws, transform=transform, force_fp32=fp32))
            for name, image in zip(names[start : start + batch], images, strict=True):
                write_image(outdir / name, image)
            bar.advance(task, len(images))
    info(f"wrote {len(names)} images ({G.img_resolution} px, config {G.config.name}) to {outdir}")


def register(app: typer.Typer) -> None:
    app.command()(render)
