"""The StyleGAN3 still-image pipeline behind `ganvid invert-image`: align one face photo, invert
it into W+ (ReStyle iterations and/or the optimisation projector), write the code and its
reconstruction. (The StyleGANEX one is `ganvid.pipeline.styleganex_still`.)

    result = run_invert_image(InvertImageOptions(image=Path("face.png"), output_dir=...))
    result["latent"], result["reconstruction"], result["aligned"], result["psnr_db"]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganvid.pipeline.photo import aligned_face, square_resize


@dataclass(frozen=True)
class InvertImageOptions:
    """Everything `run_invert_image` needs; see the CLI help for each field."""

    image: Path
    output_dir: Path
    encoder: str = "restyle-e4e-ffhq"
    generator: str | None = None
    method: str = "encoder"
    n_iters: int | None = None
    steps: int | None = None
    space: str = "w+"
    lpips_net: str = "vgg"
    lpips: str | None = None
    align: bool = True
    rule: str = "ffhq"
    device: str = "auto"
    seed: int = 0


def _load_networks(options: InvertImageOptions, device):
    """(ReStyleCheckpoint or None, generator) on `device`."""
    from ganvid.weights import resolve

    checkpoint = None
    uses_encoder = options.method in ("encoder", "encoder+optimize")
    if uses_encoder or options.generator is None:
        from ganvid.nn.restyle_checkpoints import load_restyle

        checkpoint = load_restyle(
            resolve(options.encoder), device=device, with_decoder=options.generator is None
        )
    if options.generator is not None:
        from ganvid.nn.checkpoints import load_generator

        generator = load_generator(resolve(options.generator), device=device)
    else:
        generator = checkpoint.generator
    return (checkpoint if uses_encoder else None), generator.eval().requires_grad_(False)


def _project(options: InvertImageOptions, generator, target, init_ws):
    """Run the optimisation projector with a progress bar; returns the ProjectionResult."""
    from ganvid.pipeline.embedding import EmbeddingOptions, build_distance, embed
    from ganvid.ui import progress

    embedding = EmbeddingOptions(
        options.method, options.steps, options.space, options.lpips_net, options.lpips, options.seed
    )
    distance = build_distance(embedding)  # a missing weights file fails before the bar
    with progress() as bar:
        task = bar.add_task("optimising latent", total=embedding.config().steps)
        return embed(
            generator,
            target,
            embedding,
            init_ws,
            on_step=lambda step, loss: bar.advance(task),
            distance=distance,
        )


def _code_record(options: InvertImageOptions) -> dict[str, np.ndarray]:
    """Which generator the code belongs to and its render transform (identity: aligned), so
    `ganvid morph` / `edit-image` / `edit --style-from` can use the npz and refuse mixed ones."""
    from ganvid.pipeline.photo import generator_source
    from ganvid.weights import resolve

    if options.generator is not None:
        source = generator_source(Path(), resolve(options.generator))
    else:
        source = generator_source(resolve(options.encoder), None)
    return {"generator": np.array(source), "transform": np.eye(3, dtype=np.float32)}


def run_invert_image(options: InvertImageOptions) -> dict[str, Path | float]:
    """Invert one image; returns {'latent', 'reconstruction', 'aligned': paths, 'psnr_db'}."""
    import torch

    from ganvid.io.image import read_rgb, write_image
    from ganvid.pipeline.job import resolve_device
    from ganvid.pipeline.render import to_float, to_uint8
    from ganvid.pipeline.workdir import atomic_save_npz

    device = resolve_device(options.device)
    rgb = read_rgb(options.image)
    checkpoint, generator = _load_networks(options, device)
    size = int(generator.img_resolution)
    if options.align:
        aligned = aligned_face(rgb, size, options.rule, options.image)
    else:
        aligned = square_resize(rgb, size)
    target = to_float([aligned], device)

    arrays: dict[str, np.ndarray] = {"method": np.array(options.method)}
    ws = None
    if checkpoint is not None:
        inverter = checkpoint.inverter(n_iters=options.n_iters, generator=generator)
        ws = inverter.invert(target, return_images=False).ws
        arrays["ws_encoder"] = ws[0].cpu().numpy()
    if options.method != "encoder":
        result = _project(options, generator, target, ws)
        ws = result.ws
        arrays["losses"] = np.asarray(result.losses, dtype=np.float32)
    with torch.no_grad():
        eye = torch.eye(3, device=device)
        reconstruction = generator.synthesis(ws, transform=eye, force_fp32=True)
    mse = float(((reconstruction.clamp(-1, 1) - target) / 2).square().mean())
    arrays["ws"] = ws[0].float().cpu().numpy()
    arrays.update(_code_record(options))

    stem = options.image.stem
    paths = {
        "latent": options.output_dir / f"{stem}.npz",
        "reconstruction": options.output_dir / f"{stem}_reconstruction.png",
        "aligned": options.output_dir / f"{stem}_aligned.png",
    }
    atomic_save_npz(paths["latent"], arrays)
    write_image(paths["reconstruction"], to_uint8(reconstruction)[0], ".png")
    write_image(paths["aligned"], aligned, ".png")
    return {**paths, "psnr_db": 10 * np.log10(1.0 / max(mse, 1e-12))}
