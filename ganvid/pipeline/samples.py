"""A generator's samples as PNG files: from seeds (z = RandomState(seed).randn, as NVIDIA's
`gen_images.py`) or from stored latents, under one input transform (`ganvid render`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def load_latents(path: Path, num_ws: int, w_dim: int):
    """ws [N, num_ws, w_dim] float32 from an .npz (key 'ws' or its only array) or .npy file."""
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


def render_samples(
    generator_file: Path,
    outdir: Path,
    seeds: list[int],
    ws_file: Path | None,
    psi: float,
    motion: tuple[float, float, float],
    batch: int,
    device: torch.device,
    fp32: bool,
):
    """Write seedNNNN.png per seed (or wsNNNN.png per row of `ws_file`) into `outdir`, rendered
    with the input transform of motion = (angle_deg, tx_frac, ty_frac); returns (G, names)."""
    from ganvid.io.image import write_image
    from ganvid.nn.checkpoints import load_generator
    from ganvid.nn.sg3_transforms import input_transform
    from ganvid.pipeline.render import to_uint8
    from ganvid.ui import progress

    G = load_generator(generator_file, device=device).requires_grad_(False)
    transform = torch.as_tensor(input_transform(*motion), dtype=torch.float32)
    if ws_file is not None:
        all_ws = load_latents(ws_file, G.num_ws, G.w_dim)
        names = [f"ws{i:04d}.png" for i in range(len(all_ws))]
    else:
        names = [f"seed{seed:04d}.png" for seed in seeds]
    outdir.mkdir(parents=True, exist_ok=True)
    with progress() as bar, torch.no_grad():
        task = bar.add_task("rendering", total=len(names))
        for start in range(0, len(names), batch):
            if ws_file is not None:
                ws = torch.from_numpy(all_ws[start : start + batch]).to(device)
            else:
                rows = [np.random.RandomState(s).randn(G.z_dim) for s in seeds[start:][:batch]]
                z = torch.from_numpy(np.stack(rows)).to(device)
                ws = G.mapping(z, None, truncation_psi=psi)
            images = to_uint8(G.synthesis(ws, transform=transform, force_fp32=fp32))
            for name, image in zip(names[start : start + batch], images, strict=True):
                write_image(outdir / name, image)
            bar.advance(task, len(images))
    return G, names
