"""Shared pieces for the pipeline tests: a synthetic clip with sound, tiny networks saved in the
published layouts (generator, ReStyle encoder, LPIPS trunk), and the `ganvid invert` arguments
that run them on the CPU.

    assets = tiny_assets(tmp_dir, clip_frames)   # {'generator', 'encoder', 'lpips', 'clip'}
    cli(*invert_args(assets, clip, workdir, "--pti-steps", "2"))
"""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from support.restyle_fixtures import (
    save_alexnet_trunk,
    save_restyle_checkpoint,
    tiny_restyle_encoder,
)
from support.sg3_fixtures import save_generator, tiny_generator
from support.videos import add_audio, write_tone


def write_clip(path: Path, frames: list[np.ndarray], fps: int = 25, audio: bool = True) -> Path:
    """H.264 clip of RGB frames (ms time base) with an AAC tone."""
    height, width = frames[0].shape[:2]
    with av.open(str(path), mode="w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = video.codec_context.time_base = Fraction(1, 1000)
        video.options = {"crf": "12", "preset": "ultrafast"}
        sound = add_audio(container, "aac") if audio else None
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image)
            frame.pts, frame.time_base = index * 1000 // fps, Fraction(1, 1000)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if sound is not None:
            write_tone(container, sound, len(frames) / fps + 0.1)
    return path


def tracked_workdir(clip: Path, work: Path, crop_size: int) -> Path:
    """`work` after the decode and geometry stages of `ganvid invert` over `clip` (default face
    options, unaligned crops of `crop_size`): what crops are cut and pasted back by."""
    from ganvid.pipeline.invert import (
        ALIGNED_SIZE,
        GeometryOptions,
        stage_decode,
        stage_geometry,
    )
    from ganvid.pipeline.workdir import Workdir, run_stage

    options = GeometryOptions(
        face={}, aligned_size=ALIGNED_SIZE, crop_size=crop_size, unaligned_fill="ffhq"
    )
    with Workdir(work) as wd:
        run_stage(wd, "decode", stage_decode, inputs={"clip": clip}, options={})
        run_stage(wd, "geometry", stage_geometry, inputs={"clip": clip}, options=options)
    return work


def tiny_assets(root: Path, frames: list[np.ndarray]) -> dict[str, Path]:
    """A 32-px, 4-layer generator (CPU time drops 5x against 14 layers; the pipeline does not
    care), its encoder, an LPIPS trunk and the clip, all under `root`."""
    generator = tiny_generator("T", res=32, channel_base=256, channel_max=16, num_layers=4)
    save_generator(generator, root / "g.pt")
    encoder = tiny_restyle_encoder("e4e", generator)
    save_alexnet_trunk(root / "alexnet.pth")
    return {
        "generator": root / "g.pt",
        "encoder": save_restyle_checkpoint(root / "encoder.pt", "e4e", encoder, generator),
        "lpips": root / "alexnet.pth",
        "clip": write_clip(root / "clip.mp4", frames),
        "root": root,
    }


def invert_args(assets: dict, clip: Path, workdir: Path, *extra: str) -> list[str]:
    """`ganvid invert` on the tiny networks, on the CPU, quick to encode."""
    return [
        "invert",
        str(clip),
        "--workdir",
        str(workdir),
        "--generator",
        str(assets["generator"]),
        "--encoder",
        str(assets["encoder"]),
        "--lpips",
        str(assets["lpips"]),
        "--device",
        "cpu",
        "--preset",
        "ultrafast",
        "--pti-checkpoint-every",
        "2",
        "--encoder-iters",
        "2",
        *extra,
    ]


def cli_process(args: list[str]) -> subprocess.Popen:
    """`ganvid ARGS` in a process of its own (to kill or to run beside another), one thread,
    so runs compared bit for bit use the same arithmetic."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "ganvid", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


def video_frames(path: Path) -> tuple[list[int], list[np.ndarray]]:
    """(pts, RGB frames) of a file's first video stream."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [(f.pts, f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
    return [p for p, _ in frames], [image for _, image in frames]
