"""Render frames from per-frame latents and transforms, in batches, streaming.

One function serves every command that turns latents into video: `ganvid invert` (the tuned
generator, smoothed pivots), `ganvid edit` (a `modifier` that edits each batch of ws), and the
FoV / paste-back stages (their own transforms). Frames come out in order, one batch at a time,
so memory does not depend on the clip length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ganvid.pipeline.workdir import FrameDir

WsModifier = Callable[[np.ndarray, torch.Tensor], torch.Tensor]
"""modifier(frame_indices [B], ws [B,16,512] on the device) -> edited ws [B,16,512]."""

Synthesize = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor, np.ndarray], torch.Tensor]
"""synthesize(generator, ws [B,num_ws,w_dim], transforms [B,3,3], frame_indices [B]) -> images
[B,3,H,W] in about [-1, 1]: a job's own drawing of a batch (StyleSpace edits, FoV expansion)."""


def synthesize(
    generator: torch.nn.Module, ws: torch.Tensor, transforms: torch.Tensor, force_fp32: bool = True
) -> torch.Tensor:
    """ws [B,num_ws,512] and input transforms [B,3,3] -> images [B,3,R,R] in about [-1, 1].

    `transforms` are matrices for `synthesis.input.transform` (the inverse of the user matrix,
    see `ganvid.nn.sg3_transforms`), one per sample. force_fp32=False lets the generator run
    its high-resolution layers in float16 on CUDA (as it was trained; used under AMP).
    """
    return generator.synthesis(ws, transform=transforms, force_fp32=force_fp32)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[B,3,H,W] in [-1, 1] -> uint8 [B,H,W,3] (rounded, clamped)."""
    scaled = (images.detach().float() + 1.0) * 127.5
    return scaled.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def to_tensor(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """float32 COPY of an array (memmap rows, numpy views) in torch-allocated memory on `device`.

    Never `torch.from_numpy` for network inputs: numpy buffers are only 16-byte aligned and
    their address varies from run to run, and CPU kernels round differently for different
    alignments, so a resumed run would not reproduce an uninterrupted one bit for bit.
    """
    return torch.tensor(np.asarray(array, dtype=np.float32), device=device)


def to_float(frames: np.ndarray | Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """uint8 [B,H,W,3] (or a list of [H,W,3]) -> float32 [B,3,H,W] in [-1, 1] on `device`."""
    batch = torch.tensor(np.stack(list(frames)), device=device)  # a copy: see `to_tensor`
    return (batch.permute(0, 3, 1, 2).float() / 127.5 - 1.0).contiguous()


@dataclass
class RenderJob:
    """What to render: per-frame ws and input transforms, both indexable by frame.

    ws: [N,num_ws,512] array (a memmap is fine: only one batch is read at a time).
    transforms: [N,3,3] input-transform matrices (see `ganvid.nn.sg3_transforms`).
    modifier: optional per-batch edit of the ws (e.g. `ganvid edit` directions).
    synthesize: optional replacement for `synthesize(generator, ws, transforms)`, called once
        per batch with the batch's frame indices (e.g. edited StyleSpace, an expanded FoV);
        its images may be larger than the generator's resolution.
    """

    ws: np.ndarray
    transforms: np.ndarray
    modifier: WsModifier | None = None
    synthesize: Synthesize | None = None

    def __post_init__(self) -> None:
        if len(self.ws) != len(self.transforms):
            raise ValueError(f"{len(self.ws)} latents but {len(self.transforms)} transforms")

    def __len__(self) -> int:
        return len(self.ws)


def _batches(indices: Sequence[int], batch: int) -> Iterator[np.ndarray]:
    indices = np.asarray(list(indices), dtype=np.int64)
    for start in range(0, len(indices), batch):
        yield indices[start : start + batch]


@torch.no_grad()
def render_frames(
    generator: torch.nn.Module,
    job: RenderJob,
    device: torch.device,
    batch: int = 4,
    indices: Sequence[int] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (frame index, uint8 [H,W,3]) in order, rendering `batch` frames at a time
    (H = W = the generator's resolution unless `job.synthesize` draws larger images)."""
    indices = range(len(job)) if indices is None else indices
    for chunk in _batches(indices, max(1, batch)):
        ws = to_tensor(job.ws[chunk], device)
        if job.modifier is not None:
            ws = job.modifier(chunk, ws)
        transforms = to_tensor(job.transforms[chunk], device)
        if job.synthesize is None:
            images = synthesize(generator, ws, transforms)
        else:
            images = job.synthesize(generator, ws, transforms, chunk)
        images = to_uint8(images)
        yield from zip(chunk.tolist(), images, strict=True)


def render_to_dir(
    generator: torch.nn.Module,
    job: RenderJob,
    frames: FrameDir,
    device: torch.device,
    batch: int = 4,
    on_frame: Callable[[int], None] | None = None,
) -> None:
    """Render the frames missing from `frames` (resumable: done frames are not redone)."""
    for index, image in render_frames(generator, job, device, batch, frames.missing(len(job))):
        frames.write(index, image)
        if on_frame is not None:
            on_frame(index)
