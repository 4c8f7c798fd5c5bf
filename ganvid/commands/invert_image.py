"""`ganvid invert-image face.png`: invert one face photo into StyleGAN3's W+ and show how well
the generator reproduces it, so inversion can be judged on stills before a whole video.

Steps: align the face (dlib landmarks, FFHQ crop at the generator's resolution; --no-align for
crops that are already aligned), then ReStyle encoder iterations and/or the optimisation
projector, then write the latent (npz) and the reconstruction (PNG): `ganvid.pipeline.sg3_still`;
this module only reads and checks the options.

`--backend styleganex` inverts the whole frame around the face with StyleGANEX instead
(`ganvid.pipeline.styleganex_still`).
"""

from __future__ import annotations

from pathlib import Path

import typer

from ganvid.commands.options import DEVICE, choice

METHODS = ("encoder", "optimize", "encoder+optimize", "image2stylegan")
SPACES = ("w", "w+")
LPIPS_NETS = ("vgg", "alex")
RULES = ("ffhq", "eyes")
BACKENDS = ("sg3", "styleganex")
#: parameter -> flag of the options that only one backend reads (refused with the other one)
SG3_ONLY = {
    "encoder": "--encoder",
    "generator": "--generator",
    "method": "--method",
    "n_iters": "--encoder-iters",
    "space": "--space",
    "lpips_net": "--lpips-net",
    "align": "--no-align",
    "rule": "--rule",
}
STYLEGANEX_ONLY = {"checkpoint": "--checkpoint", "eye_px": "--eye-px"}


def _refuse_changed(ctx: typer.Context, names: dict[str, str], backend: str) -> None:
    """InputError naming the options in `names` that differ from their defaults."""
    from ganvid.errors import InputError

    defaults = {param.name: param.default for param in ctx.command.params}
    changed = [flag for name, flag in names.items() if ctx.params[name] != defaults[name]]
    if changed:
        raise InputError(f"{', '.join(changed)}: not used with --backend {backend}")


def invert_image(
    ctx: typer.Context,
    image: Path = typer.Argument(..., help="A photo with a face (PNG, JPEG, ...)."),
    output_dir: Path | None = typer.Option(
        None, "-o", "--output", help="Folder for the results [default: <image>_inversion/]."
    ),
    encoder: str = typer.Option(
        "restyle-e4e-ffhq",
        "--encoder",
        help="ReStyle encoder: a weights name (restyle-e4e-ffhq, restyle-psp-ffhq) or a .pt file.",
    ),
    generator: str | None = typer.Option(
        None,
        "--generator",
        help="StyleGAN3 generator (name or file, e.g. a PTI-tuned one) [default: the one "
        "stored in the --encoder file].",
    ),
    method: str = typer.Option(
        "encoder",
        "--method",
        help="encoder (ReStyle, seconds), optimize (projector from the average face), "
        "encoder+optimize (projector polishing the encoder's latent) or image2stylegan (the "
        "paper's embedding: W+ from the average face, VGG-16 conv1_1/1_2/3_2/4_2 + pixel MSE, "
        "Adam lr 0.01, 5000 steps; slow, needs lpips-vgg).",
    ),
    n_iters: int | None = typer.Option(
        None, "--encoder-iters", min=1, help="ReStyle iterations [default: the checkpoint's, 3]."
    ),
    steps: int | None = typer.Option(
        None,
        "--steps",
        min=0,
        help="Projector steps [default: 500 for optimize, 200 for encoder+optimize, 5000 for "
        "image2stylegan]. "
        "--backend styleganex: step II steps [default: 500; 0 = the encoder alone].",
    ),
    space: str = typer.Option("w+", "--space", help="Projector latent space: w or w+."),
    lpips_net: str = typer.Option(
        "vgg", "--lpips-net", help="Projector LPIPS trunk: vgg (default) or alex."
    ),
    lpips: str | None = typer.Option(
        None,
        "--lpips",
        help="Trunk weights for LPIPS (and VGG-16 for image2stylegan): a name or a torchvision "
        "state-dict file [default: lpips-vgg / lpips-alex].",
    ),
    align: bool = typer.Option(
        True,
        "--align/--no-align",
        help="Find the face and make the FFHQ-aligned crop first. --no-align: the image is "
        "already an aligned face crop (it is only resized).",
    ),
    rule: str = typer.Option(
        "ffhq", "--rule", help="Alignment rule: ffhq (dataset rule) or eyes (video rule)."
    ),
    device: str = DEVICE,
    seed: int = typer.Option(0, "--seed", help="Seed for the projector's latent noise."),
    backend: str = typer.Option(
        "sg3",
        "--backend",
        help="sg3 (StyleGAN3, the aligned face) or styleganex (StyleGANEX: the frame around the "
        "face, cut to multiples of 8 px, rendered at 4x; writes <stem>_styleganex.npz and "
        "<stem>_styleganex_reconstruction.png; --steps, --lpips, --device, --seed apply).",
    ),
    checkpoint: str = typer.Option(
        "styleganex-inversion",
        "--checkpoint",
        help="--backend styleganex: the StyleGANEX file, a weights name or a .pt file.",
    ),
    eye_px: float = typer.Option(
        64.0,
        "--eye-px",
        min=8.0,
        help="--backend styleganex: eye distance in the crop, px (64 as the models were "
        "trained; the crop is at most 8 eye distances a side). Smaller is faster and coarser.",
    ),
) -> None:
    """Invert one face image into W+ [num_ws, 512]: writes <stem>.npz (ws, and ws_encoder /
    losses when used), <stem>_reconstruction.png and <stem>_aligned.png.

    --backend styleganex: StyleGANEX step I (encoder: w+ [1, 18, 512] from the aligned face, f
    from the crop around it) then step II (--steps of LPIPS-VGG optimisation of w+, f and the
    noise maps); writes <stem>_styleganex.npz (wplus, f, noise_*), the reconstruction PNG at 4x
    the crop, the crop and the aligned face, and prints the final LPIPS."""
    from ganvid.ui import info

    output_dir = output_dir or image.with_name(f"{image.stem}_inversion")
    if choice(backend, BACKENDS, "--backend") == "styleganex":
        from ganvid.pipeline.styleganex_still import StillOptions, invert_still, report

        _refuse_changed(ctx, SG3_ONLY, backend)
        steps = 500 if steps is None else steps
        still = StillOptions(
            image, output_dir, checkpoint, steps, lpips, eye_px, device=device, seed=seed
        )
        report(invert_still(still))
        return
    _refuse_changed(ctx, STYLEGANEX_ONLY, backend)
    if steps == 0:
        from ganvid.errors import InputError

        raise InputError("--steps 0 (the encoder alone) is for --backend styleganex; use --method")
    from ganvid.pipeline.sg3_still import InvertImageOptions, run_invert_image

    options = InvertImageOptions(
        image=image,
        output_dir=output_dir,
        encoder=encoder,
        generator=generator,
        method=choice(method, METHODS, "--method"),
        n_iters=n_iters,
        steps=steps,
        space=choice(space, SPACES, "--space"),
        lpips_net=choice(lpips_net, LPIPS_NETS, "--lpips-net"),
        lpips=lpips,
        align=align,
        rule=choice(rule, RULES, "--rule"),
        device=device,
        seed=seed,
    )
    result = run_invert_image(options)
    info(f"latent: {result['latent']}")
    info(f"reconstruction: {result['reconstruction']} (PSNR {result['psnr_db']:.2f} dB)")
    info(f"aligned input: {result['aligned']}")


def register(app: typer.Typer) -> None:
    app.command("invert-image")(invert_image)
