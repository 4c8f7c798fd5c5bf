"""Work-dir bytes per frame of `ganvid invert` (and of each `ganvid edit`) at 1024-px crops, from
the real sizes of the files the current layout writes (`ganvid/pipeline/invert.py`).

    python benchmarks/bench_workdir.py                 # 1920x1080 frame, SG3-R 1024 layout
    python benchmarks/bench_workdir.py --markdown benchmarks/RESULTS.md

The frame is a real photo at 1080p: skimage's astronaut upscaled 2x (Lanczos) into a
1920x1080 frame (the rest of the frame reflected from the photo). dlib finds the face and the
geometry front end builds its records (a still 4-frame clip); the aligned quad gives the 256-px
aligned crop, the crop window the 1024-px crop, each encoded exactly as the
work dir encodes them (`encode_image`, PNG level 1). The render of a good reconstruction looks
like the crop, so its PNG is taken to be the crop's size. Arrays (W+ per frame, detections,
transforms) are serialised as the stages serialise them. The tuned generator is a real
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


def npz_bytes(arrays: dict) -> int:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return len(buffer.getvalue())


def geometry_bytes(frame: np.ndarray, frames: int = 4) -> tuple[dict[str, int], object]:
    """Bytes per frame of geometry.json and geometry.npz (the real records of a still clip of
    `frames` frames), and the first frame's FrameGeometry."""
    from ganvid.face.geometry import (
        GeometryConfig,
        GeometryFile,
        build_geometry,
        detect_clip,
        save_geometry,
    )
    from ganvid.face.landmarks import make_detector

    config = GeometryConfig()
    detections = detect_clip([frame] * frames, make_detector(), config.track, lambda _: None)
    records = build_geometry(detections, config)
    arrays = {
        "params": np.array([r.transform.params for r in records], dtype=np.float64),
        "scale": np.array([r.transform.scale for r in records], dtype=np.float64),
        "shot_ids": np.array([r.shot for r in records], dtype=np.int64),
        "detected": np.array([r.detected for r in records], dtype=bool),
        "interpolated": np.array([r.interpolated for r in records], dtype=bool),
    }
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "geometry.json"
        save_geometry(path, GeometryFile(records, frame.shape[1], frame.shape[0], {}))
        json_bytes = path.stat().st_size
    sizes = {
        "geometry/geometry.json (per frame)": json_bytes // frames,
        "geometry/geometry.npz (per frame)": npz_bytes(arrays) // frames,
    }
    return sizes, records[0]


def per_frame_files(frame: np.ndarray) -> dict[str, int]:
    """{work-dir file: bytes} for one frame of `ganvid invert`."""
    from ganvid.face.align import CropConfig, ffhq_crop
    from ganvid.face.landmarks import make_detector
    from ganvid.pipeline.invert import ALIGNED_SIZE
    from ganvid.pipeline.workdir import encode_image

    faces = make_detector().detect(frame)
    if not faces:
        raise SystemExit("dlib found no face in the benchmark frame")
    face = faces[0]
    geometry, record = geometry_bytes(frame)
    quad = record.aligned_quad
    aligned = ffhq_crop(frame, quad, CropConfig(ALIGNED_SIZE, "ffhq"))
    crop = ffhq_crop(frame, record.unaligned_quad, CropConfig(1024, "ffhq"))
    ws = np.random.default_rng(0).normal(size=(NUM_WS, W_DIM)).astype(np.float32)
    detection = {
        "boxes": np.asarray([face.box], np.float64).reshape(-1, 4),
        "scores": np.asarray([face.score], np.float64),
        "points": np.asarray([face.points], np.float64).reshape(-1, 68, 2),
    }
    ws_row = ws.nbytes  # one row of invert/ws.npy and of smooth/ws.npy (header once per clip)
    return {
        "geometry/detections/*.npz": npz_bytes(detection),
        "geometry/aligned/*.png (256)": len(encode_image(aligned)),
        "geometry/crops/*.png (1024)": len(encode_image(crop)),
        "invert/ws/*.npy": npy_bytes(ws),
        "invert/ws.npy (row)": ws_row,
        "smooth/ws.npy (row)": ws_row,
        "smooth/params.npy + transforms.npy (row)": 3 * 8 + 9 * 8,
        **geometry,
        "render/frames/*.png (1024, ~crop)": len(encode_image(crop)),
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
        f"the weights and Adam's two moments, about 3x that, not measured here). Each `ganvid edit` or `expand-fov` adds a render folder: "
        f"{render * fps * 60 / 1e9:.2f} GB per minute (expand-fov: more, its frames are "
        "larger). The issue's target for the small layout: at most 0.5 GB per minute.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--markdown", type=Path, help="Append the table to this file.")
    args = parser.parse_args()
    text = report(per_frame_files(photo_frame()), tuned_generator_bytes(), args.fps)
    print(text)
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as out:
            out.write("\n" + text + "\n")


if __name__ == "__main__":
    main()
