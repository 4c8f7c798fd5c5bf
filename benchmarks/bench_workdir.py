"""Work-dir bytes per frame of `ganvid invert` (and of each `ganvid edit`) at 1024-px crops, from
the real sizes of the files the current layout writes (`ganvid/pipeline/invert.py`).

    python benchmarks/bench_workdir.py                 # 1920x1080 frame, SG3-R 1024 layout
    python benchmarks/bench_workdir.py --markdown benchmarks/RESULTS.md

The clip is a real photo at 1080p, 30 fps: skimage's astronaut upscaled 2x (Lanczos) into a
1920x1080 frame (the rest of the frame reflected from the photo), panning slowly, H.264. The
pipeline's own decode and geometry stages run on it (dlib landmarks, 256-px aligned crops,
1024-px crops, detections, geometry.json/npz), so those sizes are the real files'. The render
of a good reconstruction looks like the crop, so its PNG is taken to be the crop's size; W+
rows are serialised as the invert and smooth stages serialise them. The tuned generator is a real
`save_tuned` of SG3-R 1024's synthesis network (random weights: the size is the same).

An upscaled photo is smoother than camera footage, so real crops PNG-compress worse: read the
figures as a lower bound of today's layout.
"""

from __future__ import annotations

import argparse
import io
import tempfile
from pathlib import Path

import numpy as np

NUM_WS, W_DIM = 16, 512
"""SG3-R 1024: 16 W+ layers of 512."""


def photo_frame(width: int = 1920, height: int = 1080) -> np.ndarray:
    import cv2
    import skimage.data

    face = cv2.resize(skimage.data.astronaut(), (1024, 1024), interpolation=cv2.INTER_LANCZOS4)
    top, left = (height - 1024) // 2, (width - 1024) // 2
    pad = (top, height - 1024 - top, left, width - 1024 - left)
    return cv2.copyMakeBorder(face, *pad, cv2.BORDER_REFLECT_101)


def npy_bytes(array: np.ndarray) -> int:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return len(buffer.getvalue())


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())


def measured_files(root: Path, frames: int) -> dict[str, int]:
    """{work-dir file: bytes per frame} of a `frames`-frame 1080p clip of the photo: the
    pipeline's own decode and geometry stages write the real files; the rest is what the
    invert, smooth and render stages write per frame (render PNG ~ crop PNG)."""
    from ganvid.io.video import write_images_as_video
    from ganvid.pipeline.invert import (
        ALIGNED_SIZE,
        GeometryOptions,
        stage_decode,
        stage_geometry,
    )
    from ganvid.pipeline.workdir import Workdir, run_stage

    photo = photo_frame()
    panning = (np.roll(photo, 2 * k, axis=1) for k in range(frames))
    write_images_as_video(root / "clip.mp4", panning, 30, preset="ultrafast")
    options = GeometryOptions(
        face={}, aligned_size=ALIGNED_SIZE, crop_size=1024, unaligned_fill="ffhq"
    )
    inputs = {"clip": root / "clip.mp4"}
    with Workdir(root / "clip.ganvid") as wd:
        run_stage(wd, "decode", stage_decode, inputs=inputs, options={})
        run_stage(wd, "geometry", stage_geometry, inputs=inputs, options=options)
    geometry = root / "clip.ganvid" / "geometry"
    crops = folder_bytes(geometry / "crops") // frames
    ws = np.random.default_rng(0).normal(size=(NUM_WS, W_DIM)).astype(np.float32)
    return {
        "geometry/detections/*.npz": folder_bytes(geometry / "detections") // frames,
        "geometry/aligned/*.png (256)": folder_bytes(geometry / "aligned") // frames,
        "geometry/crops/*.png (1024)": crops,
        "geometry/geometry.json (per frame)": (geometry / "geometry.json").stat().st_size // frames,
        "geometry/geometry.npz (per frame)": (geometry / "geometry.npz").stat().st_size // frames,
        "invert/ws/*.npy": npy_bytes(ws),
        "invert/ws.npy (row)": ws.nbytes,
        "smooth/ws.npy (row)": ws.nbytes,
        "smooth/params.npy + transforms.npy (row)": 3 * 8 + 9 * 8,
        "render/frames/*.png (1024, ~crop)": crops,
    }


def tuned_generator_bytes() -> int:
    import torch

    from ganvid.nn.stylegan3 import Generator, SG3Config
    from ganvid.pipeline.pti import save_tuned

    torch.manual_seed(0)
    generator = Generator(SG3Config.config_r(1024)).eval()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "generator.pt"
        save_tuned(generator, path)
        return path.stat().st_size


def report(files: dict[str, int], generator: int, fps: float) -> str:
    per_frame = sum(files.values())
    render = files["render/frames/*.png (1024, ~crop)"]
    minute = per_frame * fps * 60
    lines = [
        f"### Work dir of `ganvid invert` at 1024-px crops (`bench_workdir.py`, {fps:g} fps)",
        "",
        "| file | bytes per frame |",
        "|---|---|",
        *(f"| {name} | {size:,} |" for name, size in files.items()),
        f"| **per frame** | **{per_frame:,}** |",
        "",
        f"Per minute of video at {fps:g} fps: **{minute / 1e9:.2f} GB** "
        f"({minute / 2**30:.2f} GiB) + the tuned generator once per clip "
        f"({generator / 1e6:.1f} MB, pti/generator.pt; while PTI runs its checkpoint holds "
        "the weights and Adam's two moments, about 3x that, not measured here). Each "
        "`ganvid edit` or `expand-fov` adds a render folder: "
        f"{render * fps * 60 / 1e9:.2f} GB per minute (expand-fov: more, its frames are "
        "larger). The issue's target for the small layout: at most 0.5 GB per minute.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--markdown", type=Path, help="Append the table to this file.")
    parser.add_argument("--frames", type=int, default=8, help="Frames of the measured clip.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        files = measured_files(Path(folder), args.frames)
    text = report(files, tuned_generator_bytes(), args.fps)
    print(text)
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as out:
            out.write("\n" + text + "\n")


if __name__ == "__main__":
    main()
