"""`ganvid invert clip.mp4`: reconstruct a face video with StyleGAN3 (encoder + PTI)."""

from __future__ import annotations

import re
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
    MASK,
    PRESET,
    SEGMENT_FRAMES,
    WORKDIR,
    face_options,
)

_SIZE_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_size(text: str) -> int:
    """'8G', '8GB', '8GiB', '512M', '1073741824' -> bytes (binary units)."""
    from ganvid.errors import InputError

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if not match or float(match.group(1)) <= 0:
        raise InputError(f"--max-memory {text!r}: give a size such as 6G or 512M")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


def parse_part(text: str) -> tuple[int, int]:
    """'2/3' -> (2, 3): part K of N, 1 <= K <= N."""
    from ganvid.errors import InputError

    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise InputError(f"--part {text!r}: give K/N with 1 <= K <= N, e.g. 1/2")
    return int(match.group(1)), int(match.group(2))


def invert(
    clip: Path = typer.Argument(..., help="The video to invert (any format FFmpeg reads)."),
    output: Path | None = typer.Option(
        None,
        "-o",
        "--output",
        help="Output video [default: <clip>_inverted.mp4 beside the clip, or in the work dir "
        "when the clip's folder is read-only].",
    ),
    workdir: Path | None = WORKDIR,
    generator: str = typer.Option(
        "sg3-r-ffhq-1024", "--generator", help="StyleGAN3 generator: a weights name or a file."
    ),
    encoder: str = typer.Option(
        "restyle-e4e-ffhq", "--encoder", help="ReStyle encoder: a weights name or a file."
    ),
    lpips: str = typer.Option(
        "lpips-alex", "--lpips", help="AlexNet weights for the LPIPS loss: a name or a file."
    ),
    device: str = DEVICE,
    batch: int = typer.Option(4, "--batch", min=1, help="Frames per batch (encoder, PTI, render)."),
    pti_steps: int | None = typer.Option(
        None, "--pti-steps", min=0, help="PTI steps [default: 8000 on a GPU, 50 on CPU]."
    ),
    pti_lr: float = typer.Option(3e-4, "--pti-lr", min=0.0, help="PTI learning rate (Adam)."),
    pti_stop_lpips: float = typer.Option(
        0.06, "--pti-stop-lpips", min=0.0, help="Stop PTI once LPIPS is below this (0: never)."
    ),
    pti_checkpoint_every: int = typer.Option(
        100, "--pti-checkpoint-every", min=1, help="PTI steps between resumable checkpoints."
    ),
    pti_per_shot: bool = typer.Option(
        False,
        "--pti-per-shot",
        help="Tune one generator per shot, each on its shot's frames only, instead of one for "
        "the whole clip: for clips whose cuts show other people, lighting or framing, where one "
        "generator must compromise between shots. Costs one full PTI (--pti-steps) per shot. "
        "`ganvid edit` and expand-fov then use each shot's own weights.",
    ),
    encoder_iters: int | None = typer.Option(
        None, "--encoder-iters", min=1, help="ReStyle iterations [default: the checkpoint's]."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed for PTI's sampling order."),
    max_memory: str | None = typer.Option(
        None, "--max-memory", help="Memory budget for PTI, e.g. 6G: lowers the batch to fit."
    ),
    smooth: bool = typer.Option(
        True, "--smooth/--no-smooth", help="Smooth latents and transforms over time."
    ),
    fine_layer_mean: bool = typer.Option(
        False, "--fine-layer-mean", help="Replace W+ layers 9-15 by their mean over each shot."
    ),
    side_by_side: bool = typer.Option(
        False, "--side-by-side", help="Also write <output>_sbs.mp4: input | reconstruction."
    ),
    paste_back: bool = typer.Option(
        True,
        "--paste-back/--no-paste-back",
        help="Paste the reconstructed face back into the full frames (frames without a face "
        "stay untouched), or write the crop render.",
    ),
    mask: str = MASK,
    detector: str = DETECTOR,
    cnn: bool = CNN,
    face: int = FACE,
    crf: int = CRF,
    preset: str = PRESET,
    exact_size: bool = EXACT_SIZE,
    keep_frames: bool = KEEP_FRAMES,
    segment_frames: int = SEGMENT_FRAMES,
    part: str | None = typer.Option(
        None,
        "--part",
        metavar="K/N",
        help="Share one clip among N workers (processes or machines that see the same work "
        "dir): run the stages up to PTI, or wait while another part runs them, then render only "
        "the K-th of N shares of the output segments, and stop. A run without --part then "
        "renders whatever segment is still missing and joins them. `ganvid batch` does this for "
        "jobs with split = N.",
    ),
    fresh: bool = FRESH,
) -> None:
    """Invert a face video into StyleGAN3: landmarks, encoder, smoothing, PTI, render.

    Writes <clip>_inverted.mp4 (the reconstruction pasted back into the full frames, same
    frames, timestamps and sound), <clip>_inverted_crop.mp4 (the crop that was reconstructed)
    and keeps every step in the work
    directory, so a second run reuses it and an interrupted run resumes.
    """
    from ganvid.errors import InputError
    from ganvid.pipeline.invert import InvertJob, InvertOptions

    if part is not None and fresh:
        raise InputError("--fresh would clear the other parts' work: run it without --part")

    options = InvertOptions(
        clip=clip,
        output=output,
        workdir=workdir,
        generator=generator,
        encoder=encoder,
        lpips=lpips,
        device=device,
        batch=batch,
        encoder_iters=encoder_iters,
        pti_steps=pti_steps,
        pti_checkpoint_every=pti_checkpoint_every,
        pti_lr=pti_lr,
        pti_early_stop_lpips=pti_stop_lpips or None,
        pti_per_shot=pti_per_shot,
        seed=seed,
        max_memory_bytes=parse_size(max_memory) if max_memory else None,
        smooth=smooth,
        fine_layer_mean=fine_layer_mean,
        side_by_side=side_by_side,
        paste_back=paste_back,
        mask=mask,
        crf=crf,
        preset=preset,
        exact_size=exact_size,
        keep_frames=keep_frames,
        segment_frames=segment_frames,
        part=parse_part(part) if part is not None else None,
        fresh=fresh,
        face=face_options(detector, cnn, face),
    )
    summary = InvertJob(options).run()
    if options.part is not None:
        from ganvid.ui import info, stage_table

        stage_table(f"ganvid invert --part {part}", summary.frames, summary.records)
        info(f"part {part} done in {summary.workdir}; a run without --part joins the parts")
        return
    show_summary(summary)


def show_summary(summary) -> None:
    """One screen: time per stage, PTI loss, reconstruction quality, output files."""
    from ganvid.ui import console, output_lines, stage_table

    stage_table("ganvid invert", summary.frames, summary.records)
    pti = summary.pti
    if pti.get("loss_first") is not None:
        early = ", stopped early" if pti.get("stopped_early") else ""
        shots = f" over {pti['shots']} shots (mean of the shots)" if "shots" in pti else ""
        console.print(
            f"PTI: {pti['steps']} steps{shots} at batch {pti['batch']}{early}; loss "
            f"{pti['loss_first']:.4f} -> {pti['loss_last']:.4f} (LPIPS {pti['lpips_first']:.4f} "
            f"-> {pti['lpips_last']:.4f})",
            highlight=False,
        )
    metrics = summary.metrics
    if metrics.get("lpips") is not None:
        console.print(
            f"reconstruction: LPIPS {metrics['lpips']:.4f}, PSNR {metrics['psnr_db']:.2f} dB "
            "(mean over frames, against the crops)",
            highlight=False,
        )
    output_lines(summary.outputs, summary.workdir)


def register(app: typer.Typer) -> None:
    app.command("invert")(invert)
