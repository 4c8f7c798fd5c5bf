"""StyleGANEX inversion of one still photo: `ganvid invert-image FACE.png --backend styleganex`.

The face is found (dlib 68 landmarks, the largest face) and two inputs are cut from the photo:

    crop      the frame around the face by the StyleGANEX video rule (`CropRule`: scaled so the
              eye centres are `eye_px` apart, the eye midpoint ±4 eye distances, clipped to the
              photo, sides floored to multiples of 8); f is 1/8 of it, the render 4x it.
    aligned   the FFHQ-aligned face at 256x256: the encoder's w+ input, as it was trained.

Step I is the encoder (w+ from the aligned face, f from the crop). Step II
(`optimize_still` below, `steps` > 0) refines w+, f and per-layer noise maps
with LPIPS-VGG between the render average-pooled to the crop's size and the crop (the official
`inversion.py`: 500 Adam steps, lr 0.05). With 0 steps the encoder's result is rendered with the
checkpoint's fixed noise buffers, so it is deterministic and needs no LPIPS weights.

Outputs in `output_dir` (each written atomically):

    <stem>_styleganex.npz                 wplus [1,18,512], f [1,512,H/8,W/8], noise_0 ..
                                          noise_16 [1,1,h,w] (the maps at their layers' sizes:
                                          `read_still_inversion` + `model.decode` re-renders the
                                          PNG), wplus_encoder, losses [steps], crop_box (x0, y0,
                                          w, h) in photo pixels, steps, lpips, lpips_encoder
                                          (NaN when not measured), psnr_db
    <stem>_styleganex_reconstruction.png  the render, 4W x 4H for a W x H crop
    <stem>_styleganex_crop.png            the crop it reproduces (W x H)
    <stem>_styleganex_aligned.png         the aligned face that gave w+ (256 x 256)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganvid.errors import InputError, NoFaceError
from ganvid.io.image import write_image
from ganvid.nn.styleganex import FrameFeatures, StyleGANEX, layer_noise_sizes
from ganvid.pipeline.projector import ramped_lr

DEFAULT_CHECKPOINT = "styleganex-inversion"
LPIPS_WEIGHTS = "lpips-vgg"
ALIGNED_SIZE = 256
"""Side of the aligned face the StyleGANEX encoders were trained on (w+ input)."""


@dataclass(frozen=True)
class StillOptions:
    """One still inversion; see `ganvid invert-image --help` for each field."""

    image: Path
    output_dir: Path
    checkpoint: str = DEFAULT_CHECKPOINT
    steps: int = 500
    """Step II Adam steps; 0 = step I (the encoder) only."""
    lpips: str | None = None
    """VGG16 trunk for LPIPS: a weights name or torchvision state-dict file (None: lpips-vgg)."""
    eye_px: float = 64.0
    """Eye distance in the crop, px (64 as the models were trained)."""
    lr: float = 0.05
    device: str = "auto"
    seed: int = 0


@dataclass(frozen=True)
class StillSummary:
    """Where the results went and how close the render is to the crop."""

    latent: Path
    reconstruction: Path
    crop: Path
    aligned: Path
    crop_box: tuple[float, float, float, float]
    """(x0, y0, w, h) of the crop window in photo pixels (continuous coordinates)."""
    input_size: tuple[int, int]
    """(height, width) of the crop fed to the encoder, multiples of 8."""
    output_size: tuple[int, int]
    """(height, width) of the render: 4x the crop."""
    lpips: float | None
    """LPIPS-VGG of the final render (pooled to the crop's size) vs the crop; None with 0 steps."""
    lpips_encoder: float | None
    """The same for the encoder's result (step I), measured before step II."""
    psnr_db: float


@dataclass(frozen=True)
class FaceInputs:
    """The two network inputs cut from the photo."""

    crop: np.ndarray
    """uint8 [H, W, 3], H and W multiples of 8."""
    aligned: np.ndarray
    """uint8 [256, 256, 3], FFHQ-aligned."""
    box: np.ndarray
    """[4] (x0, y0, w, h): the crop window in photo pixels."""


def output_paths(output_dir: Path, stem: str) -> dict[str, Path]:
    base = f"{stem}_styleganex"
    return {
        "latent": output_dir / f"{base}.npz",
        "reconstruction": output_dir / f"{base}_reconstruction.png",
        "crop": output_dir / f"{base}_crop.png",
        "aligned": output_dir / f"{base}_aligned.png",
    }


def resolve_weights(checkpoint: str, lpips: str | None, steps: int) -> tuple[Path, Path | None]:
    """(StyleGANEX file, LPIPS trunk file or None when step II is off), found before any work.

    A missing file raises WeightsError; when both are missing, one line names both and the one
    download command that fetches them.
    """
    from ganvid.pipeline.job import resolve_weights

    wanted = {"checkpoint": checkpoint}
    if steps > 0:
        wanted["lpips"] = lpips if lpips is not None else LPIPS_WEIGHTS
    found = resolve_weights(wanted, "--checkpoint / --lpips")
    return found["checkpoint"], found.get("lpips")


def largest_face(rgb: np.ndarray, source: Path) -> np.ndarray:
    """Landmarks [68, 2] of the largest face dlib finds in `rgb` (NoFaceError when none)."""
    from ganvid.face.landmarks import DetectorConfig, make_detector
    from ganvid.ui import warn

    faces = make_detector(DetectorConfig(backend="dlib")).detect(rgb)
    if not faces:
        raise NoFaceError(f"{source}: no face found (StyleGANEX needs the face to place its crop)")
    if len(faces) > 1:
        warn(f"{len(faces)} faces found in {source}; inverting the largest")
    return max(faces, key=lambda face: face.area).points


def face_inputs(rgb: np.ndarray, points: np.ndarray, eye_px: float) -> FaceInputs:
    """Cut the StyleGANEX crop and the FFHQ-aligned face of the face with landmarks `points`."""
    from ganvid.face.align import CropConfig, align_face
    from ganvid.face.windows import CropRule, crop_windows, cut_window

    height, width = rgb.shape[:2]
    windows = crop_windows(
        points[None], np.zeros(1, dtype=int), np.ones(1, dtype=bool), (width, height),
        CropRule(eye_px=eye_px),
    )  # fmt: skip
    crop = cut_window(rgb, windows.boxes[0], windows.input_size)
    aligned = align_face(rgb, points, "ffhq", CropConfig(size=ALIGNED_SIZE)).image
    return FaceInputs(crop, aligned, windows.boxes[0])


def fixed_noises(model, f_size: tuple[int, int]) -> list:
    """The checkpoint's noise buffers pooled to each layer's size for an f of `f_size`: exactly
    the noise that `noise_mode='const'` renders with, as explicit maps [1, 1, h, w]."""
    buffers = model.decoder.noise_inputs("const")
    sizes = layer_noise_sizes(model.decoder, f_size)
    return [
        buffer if tuple(buffer.shape[2:]) == size else F.adaptive_avg_pool2d(buffer, size)
        for buffer, size in zip(buffers, sizes, strict=True)
    ]


# ----------------------------------------------------------------------------- step II


@dataclass
class StillInversion:
    """Result of `optimize_still`: w+ [B, 18, 512], f [B, 512, H/8, W/8], the per-layer noise
    maps at their layers' sizes, the final render [B, 3, 4H, 4W] (clamped) and the loss per step.
    Render again with `model.decode(wplus, f, noises=noises)`."""

    wplus: torch.Tensor
    f: torch.Tensor
    noises: list[torch.Tensor]
    image: torch.Tensor
    losses: list[float]


def noise_regularization(noises: list[torch.Tensor]) -> torch.Tensor:
    """Sum over maps and scales of the squared mean products with 1-pixel shifted copies.

    Each map is halved bilinearly until its height is 8 or less, so spatially correlated noise
    (noise that carries image content) is penalised at every scale.
    """
    loss = noises[0].new_zeros(())
    for noise in noises:
        size = noise.shape[2]
        while True:
            loss = loss + (noise * noise.roll(1, dims=3)).mean().square()
            loss = loss + (noise * noise.roll(1, dims=2)).mean().square()
            if size <= 8:
                break
            noise = F.interpolate(noise, scale_factor=0.5, mode="bilinear")
            size //= 2
    return loss


@torch.no_grad()
def _latent_spread(model: StyleGANEX, n: int, gen: torch.Generator) -> float:
    """Root of the summed per-dimension variance of w over n random z (scales the w noise)."""
    z = torch.randn(n, model.config.decoder.style_dim, generator=gen).to(model.latent_avg)
    w = model.decoder.mapping(z)
    return float(((w - w.mean(dim=0)).square().sum() / n).sqrt())


def optimize_still(
    model: StyleGANEX,
    crop: torch.Tensor,
    aligned: torch.Tensor | None = None,
    distance: nn.Module | None = None,
    steps: int = 500,
    lr: float = 0.05,
    noise_reg_weight: float = 1e3,
    w_noise_weight: float = 0.01,
    seed: int = 0,
    callback: Callable[[int, float], None] | None = None,
) -> StillInversion:
    """StyleGANEX step II for still images: refine the encoder's w+ and f, with per-layer noise.

    crop [B, 3, H, W] (multiples of 8) in [-1, 1]; aligned: the FFHQ-aligned face for w+ (None:
    the crop). distance(a, b) -> [B]: LPIPS-VGG (default `ganvid.nn.lpips.build_lpips('vgg')`).
    Each step renders with w+ jittered by N(0, s^2), s = spread(w) * w_noise_weight *
    max(0, 1 - t / 0.75)^2, average-pools the image to the crop's size and minimises
    LPIPS + noise_reg_weight * noise_regularization; Adam at the projector's `ramped_lr`; noise
    maps are re-standardised after every step. callback(step, loss) is called once per step.
    """
    if distance is None:
        from ganvid.nn.lpips import build_lpips
        from ganvid.weights import resolve

        distance = build_lpips("vgg", backbone=resolve(LPIPS_WEIGHTS)).to(crop.device)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        wplus, features = model.encode(crop, aligned)
        spread = _latent_spread(model, 1000, gen)
    skips = None if features.skips is None else [s.detach() for s in features.skips]
    wplus = wplus.detach().clone().requires_grad_(True)
    f = features.f.detach().clone().requires_grad_(True)
    noises = [
        torch.randn(crop.shape[0], 1, *size, generator=gen).to(crop).requires_grad_(True)
        for size in layer_noise_sizes(model.decoder, tuple(f.shape[2:]))
    ]
    optimizer = torch.optim.Adam([wplus, f, *noises], lr=lr)
    losses = []
    for step in range(steps):
        t = step / steps
        for group in optimizer.param_groups:
            group["lr"] = ramped_lr(t, lr, rampup=0.05, rampdown=0.25)
        strength = spread * w_noise_weight * max(0.0, 1.0 - t / 0.75) ** 2
        jitter = torch.randn(wplus.shape, generator=gen).to(wplus) * strength
        image = model.decode(wplus + jitter, FrameFeatures(f, skips), noises=noises)
        loss = distance(_pool_to(image, crop), crop).sum()
        loss = loss + noise_reg_weight * noise_regularization(noises)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for noise in noises:
                noise.sub_(noise.mean()).div_(noise.std())
        losses.append(float(loss.detach()))
        if callback is not None:
            callback(step, losses[-1])
    wplus, f = wplus.detach(), f.detach()
    noises = [n.detach() for n in noises]
    with torch.no_grad():
        image = model.decode(wplus, FrameFeatures(f, skips), noises=noises).clamp(-1.0, 1.0)
    return StillInversion(wplus, f, noises, image, losses)


def _pool_to(image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Average-pool the render by the integer factor between its size and the target's."""
    factor = image.shape[2] // target.shape[2]
    return F.avg_pool2d(image, factor) if factor > 1 else image


def _step_two(model, crop, aligned, distance, options: StillOptions):
    """optimize_still with a progress bar showing the loss."""
    from ganvid.ui import progress

    with progress() as bar:
        task = bar.add_task("StyleGANEX step II", total=options.steps)

        def on_step(step: int, loss: float) -> None:
            bar.update(task, advance=1, description=f"StyleGANEX step II (loss {loss:.4f})")

        return optimize_still(
            model, crop, aligned, distance=distance, steps=options.steps, lr=options.lr,
            seed=options.seed, callback=on_step,
        )  # fmt: skip


def invert_still(options: StillOptions) -> StillSummary:
    """Invert the face in `options.image` with StyleGANEX (step I, then step II) and write the
    npz and PNGs listed in the module docstring."""
    import torch

    from ganvid.io.image import read_rgb
    from ganvid.nn.lpips import build_lpips
    from ganvid.nn.styleganex_checkpoints import load_styleganex
    from ganvid.pipeline.job import resolve_device
    from ganvid.pipeline.render import to_float, to_uint8
    from ganvid.pipeline.workdir import atomic_save_npz

    if options.steps < 0:
        raise InputError(f"--steps {options.steps}: use 0 (encoder only) or more")
    if not options.eye_px > 0:
        raise InputError("--eye-px must be positive")
    device = resolve_device(options.device)
    checkpoint, trunk = resolve_weights(options.checkpoint, options.lpips, options.steps)
    rgb = read_rgb(options.image)
    inputs = face_inputs(rgb, largest_face(rgb, options.image), options.eye_px)

    model = load_styleganex(checkpoint, device=device)
    crop, aligned = to_float([inputs.crop], device), to_float([inputs.aligned], device)
    with torch.no_grad():
        wplus, features = model.encode(crop, aligned)
        noises = fixed_noises(model, tuple(features.f.shape[2:]))
        image = model.decode(wplus, features, noises=noises).clamp(-1.0, 1.0)
    result = StillInversion(wplus, features.f, noises, image, [])
    lpips = lpips_encoder = None
    if options.steps > 0:
        distance = build_lpips("vgg", backbone=trunk).to(device)
        with torch.no_grad():
            lpips_encoder = float(distance(_pool_to(image, crop), crop).sum())
        result = _step_two(model, crop, aligned, distance, options)
        with torch.no_grad():
            lpips = float(distance(_pool_to(result.image, crop), crop).sum())
    mse = float(((_pool_to(result.image, crop) - crop) / 2).square().mean())
    psnr_db = 10 * math.log10(1.0 / max(mse, 1e-12))

    paths = output_paths(options.output_dir, options.image.stem)
    arrays = {
        "wplus": result.wplus,
        "f": result.f,
        **{f"noise_{i}": noise for i, noise in enumerate(result.noises)},
        "wplus_encoder": wplus,
    }
    arrays = {k: v.detach().float().cpu().numpy() for k, v in arrays.items()}
    nan = float("nan")
    arrays |= {
        "losses": np.asarray(result.losses, dtype=np.float32),
        "crop_box": np.asarray(inputs.box, dtype=np.float64),
        "steps": np.asarray(options.steps),
        "lpips": np.asarray(nan if lpips is None else lpips, dtype=np.float32),
        "lpips_encoder": np.asarray(nan if lpips_encoder is None else lpips_encoder, np.float32),
        "psnr_db": np.asarray(psnr_db, dtype=np.float32),
    }
    render = to_uint8(result.image)[0]
    atomic_save_npz(paths["latent"], arrays)
    write_image(paths["reconstruction"], render, ".png")
    write_image(paths["crop"], inputs.crop, ".png")
    write_image(paths["aligned"], inputs.aligned, ".png")
    return StillSummary(
        **paths,
        crop_box=tuple(float(v) for v in inputs.box),
        input_size=tuple(inputs.crop.shape[:2]),
        output_size=tuple(render.shape[:2]),
        lpips=lpips,
        lpips_encoder=lpips_encoder,
        psnr_db=psnr_db,
    )


def read_still_inversion(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """(wplus [1,18,512], f [1,512,h,w], noises [1,1,h_i,w_i] per layer) from an npz written by
    `invert_still`. For a model without skip fusion (the inversion checkpoint),
    `model.decode(wplus, f, noises=noises)` re-renders the reconstruction."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            count = sum(1 for key in data.files if key.startswith("noise_"))
            noises = [data[f"noise_{i}"] for i in range(count)]
            return data["wplus"], data["f"], noises
    except (OSError, ValueError, KeyError) as error:
        raise InputError(f"{path} is not a StyleGANEX still inversion: {error}") from error


def report(summary: StillSummary) -> None:
    """Print where the results are and the final LPIPS (the CLI's summary)."""
    from ganvid.ui import info

    (h, w), (oh, ow) = summary.input_size, summary.output_size
    info(f"latent: {summary.latent}")
    info(f"reconstruction: {summary.reconstruction} ({ow}x{oh}, 4x the {w}x{h} crop)")
    info(f"crop: {summary.crop}; aligned face: {summary.aligned}")
    if summary.lpips is None:
        info(f"step I only (--steps 0): PSNR {summary.psnr_db:.2f} dB")
    else:
        info(
            f"LPIPS {summary.lpips:.4f} (encoder alone: {summary.lpips_encoder:.4f}), "
            f"PSNR {summary.psnr_db:.2f} dB"
        )
