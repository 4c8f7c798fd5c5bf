"""Work-dir bytes per frame of `ganvid invert` (and of each `ganvid edit`) at 1024-px crops:
the small layout of today (crops cut on demand, renders encoded in segments) against the
layout before it (PNG crops and renders per frame), both measured on the same clip.

    python benchmarks/bench_workdir.py                 # 1920x1080 frame, SG3-R 1024 layout
    python benchmarks/bench_workdir.py --markdown benchmarks/RESULTS.md

The clip is a real photo at 1080p, 30 fps: skimage's astronaut upscaled 2x (Lanczos) into a
1920x1080 frame (the rest of the frame reflected from the photo), panning slowly, H.264. The
pipeline's own decode and geometry stages run on it (dlib landmarks, detections,
geometry.json/npz). A render of a good reconstruction looks like the crop, so the crop stands in
for the render: the real segment encoder (`ganvid.pipeline.segments`, paste-back, default CRF 18,
preset medium) writes the default outputs' segments (the pasted-back video and the crop) from
it, and the old layout's render PNG is the crop's PNG. W+ rows are serialised as the invert and
smooth stages serialise them. The tuned generator is a real `save_tuned` of SG3-R 1024's
synthesis network (random weights: the size is the same).

`ganvid toonify` (`--toonify`) on the same clip: the pipeline's own decode, StyleGANEX geometry
and crop-window stages (eye distance 64 px in the network's input, as the models were run: a
512x512 window, rendered at 2048x2048); the window cut at 4x its size stands in for the toon
render. Before: the aligned faces (PNG, 256) and every render (JPEG quality 95, the old default)
per frame; after: the pasted-back video's segments.

An upscaled photo is smoother than camera footage, so real crops compress worse, as PNGs and as
H.264: read the figures as lower bounds of both layouts.
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


def geometry_workdir(root: Path, name: str, frames: int, step_px: int) -> tuple[Path, Path]:
    """(clip, work dir): a `frames`-frame 1080p30 clip of the photo panning `step_px` a frame,
    through the pipeline's own decode and geometry stages at 1024-px crops."""
    from ganvid.io.video import write_images_as_video
    from ganvid.pipeline.invert import (
        ALIGNED_SIZE,
        GeometryOptions,
        stage_decode,
        stage_geometry,
    )
    from ganvid.pipeline.workdir import Workdir, run_stage

    photo = photo_frame()
    panning = (np.roll(photo, step_px * k, axis=1) for k in range(frames))
    clip = root / f"{name}.mp4"
    write_images_as_video(clip, panning, 30, preset="ultrafast")
    options = GeometryOptions(
        face={}, aligned_size=ALIGNED_SIZE, crop_size=1024, unaligned_fill="ffhq"
    )
    work = root / f"{name}.ganvid"
    with Workdir(work) as wd:
        run_stage(wd, "decode", stage_decode, inputs={"clip": clip}, options={})
        run_stage(wd, "geometry", stage_geometry, inputs={"clip": clip}, options=options)
    return clip, work


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def measured_files(root: Path, frames: int) -> tuple[dict[str, int], dict[str, int], float]:
    """({file: bytes per frame} of the small layout, {file: bytes per frame} that the old
    layout kept on top of it instead of the segments, seconds per frame to cut and store one
    PTI target) for a `frames`-frame 1080p clip of the photo."""
    import time

    from ganvid.io.image import encode_image
    from ganvid.pipeline.compose import ComposeConfig, ComposeSources
    from ganvid.pipeline.crops import CropCutter, cache_unaligned
    from ganvid.pipeline.segments import encode_segments
    from ganvid.pipeline.workdir import FrameDir, atomic_save_npy

    clip, work = geometry_workdir(root, "clip", frames, 2)
    ws = np.random.default_rng(0).normal(size=(frames, NUM_WS, W_DIM)).astype(np.float32)
    for name in ("invert/ws.npy", "smooth/ws.npy"):
        (work / name).parent.mkdir(exist_ok=True)
        atomic_save_npy(work / name, ws)
    atomic_save_npy(work / "smooth/params.npy", np.zeros((frames, 3)))
    atomic_save_npy(work / "smooth/transforms.npy", np.zeros((frames, 3, 3)))
    cutter = CropCutter.load(work / "geometry" / "geometry.npz", clip)
    encode_segments(
        work / "render",
        ComposeSources(clip, work, None),
        lambda indices: cutter.stream(indices, aligned=False),
        {"video": "frame", "crop": "crop"},
        ComposeConfig(),
    )
    small = {
        "detections/*/*.npz": tree_bytes(work / "detections") // frames,
        "decode/video.json (per frame)": tree_bytes(work / "decode") // frames,
        "geometry/geometry.json (per frame)": (work / "geometry/geometry.json").stat().st_size
        // frames,
        "geometry/geometry.npz (per frame, with the crop quads)": (work / "geometry/geometry.npz")
        .stat()
        .st_size
        // frames,
        "invert/ws.npy (row)": ws[0].nbytes,
        "smooth/ws.npy (row)": ws[0].nbytes,
        "smooth/params.npy + transforms.npy (row)": 3 * 8 + 9 * 8,
        "render/segments/video/*.mp4 (1080p, CRF 18)": tree_bytes(work / "render/segments/video")
        // frames,
        "render/segments/crop/*.mp4 (1024, CRF 18)": tree_bytes(work / "render/segments/crop")
        // frames,
    }
    crop_png = np.mean([len(encode_image(cutter.unaligned(i))) for i in range(frames)])
    aligned_png = np.mean([len(encode_image(cutter.aligned(i))) for i in range(frames)])
    old = {
        "geometry/aligned/*.png (256)": int(aligned_png),
        "geometry/crops/*.png (1024)": int(crop_png),
        "invert/ws/*.npy": npy_bytes(ws[0]),
        "render/frames/*.png (1024, ~crop)": int(crop_png),
    }
    start = time.perf_counter()
    cache_unaligned(CropCutter.load(work / "geometry/geometry.npz", clip), FrameDir(root / "t"))
    target_s = (time.perf_counter() - start) / frames
    return small, old, target_s


def toonify_files(root: Path, frames: int) -> tuple[dict[str, int], dict[str, int], list[int]]:
    """({file: bytes per frame} of toonify's small layout, {file: bytes per frame} the layout
    before it kept instead of the segments, the render's [height, width]) for a `frames`-frame
    1080p clip of the photo at the default settings (mask full, w+ mean, eye distance 64)."""
    from ganvid.face.windows import CropRule, cut_window
    from ganvid.io.image import encode_image
    from ganvid.io.video import read_frames, write_images_as_video
    from ganvid.pipeline.compose import ComposeConfig
    from ganvid.pipeline.crops import CropCutter, aligned_arrays
    from ganvid.pipeline.invert import stage_decode
    from ganvid.pipeline.segments import encode_segments
    from ganvid.pipeline.styleganex_video import (
        GeometryOptions,
        StyleganexVideoOptions,
        WindowsOptions,
        WindowSources,
        face_options,
        load_windows,
        stage_geometry,
        stage_windows,
    )
    from ganvid.pipeline.workdir import Workdir, atomic_save_npz, run_stage

    photo = photo_frame()
    clip = root / "toon.mp4"
    panning = (np.roll(photo, 2 * k, axis=1) for k in range(frames))
    write_images_as_video(clip, panning, 30, preset="ultrafast")
    work = root / "toon.ganvid"
    with Workdir(work) as wd:
        inputs = {"clip": clip}
        run_stage(wd, "decode", stage_decode, inputs=inputs, options={})
        face = GeometryOptions(face_options({}))
        run_stage(wd, "sgx_geometry", stage_geometry, inputs=inputs, options=face)
        run_stage(wd, "sgx_windows", stage_windows, inputs={}, options=WindowsOptions(CropRule()))
    windows = load_windows(work)
    height, width = (4 * side for side in windows.input_size)
    stand_in = {  # the window at the render's size: what a toon render's pixels stand for
        f.index: cut_window(f.image, windows.boxes[f.index], (height, width))
        for f in read_frames(clip)
    }
    wplus_row = np.zeros((18, 512), np.float32).nbytes  # a row of wplus.npy [N,18,512]
    paste = StyleganexVideoOptions(clip, "-", "toon_cartoon").paste
    encode_segments(
        work / "toon_cartoon_render",
        WindowSources(clip, work, None),
        lambda indices: ((i, stand_in[i]) for i in indices),
        {"video": "frame"},
        ComposeConfig(paste=paste),
    )
    shared = {
        "detections/*/*.npz": tree_bytes(work / "detections") // frames,
        "decode/video.json": tree_bytes(work / "decode") // frames,
        "sgx_geometry/geometry.json": (work / "sgx_geometry/geometry.json").stat().st_size
        // frames,
        "sgx_windows/windows.json": tree_bytes(work / "sgx_windows") // frames,
        "toon_cartoon_wplus/wplus.npy (row)": wplus_row,
    }
    track = (work / "sgx_geometry/track.npz").stat().st_size // frames
    with np.load(work / "sgx_geometry/track.npz") as data:  # the old one: without the quads
        quads = set(aligned_arrays([], 0))
        atomic_save_npz(root / "old_track.npz", {k: data[k] for k in data.files if k not in quads})
    old_track = (root / "old_track.npz").stat().st_size // frames
    small = {
        **shared,
        "sgx_geometry/track.npz (now with the aligned quads)": track,
        "toon_cartoon_render/segments/video/*.mp4 (1080p, CRF 18)": tree_bytes(
            work / "toon_cartoon_render/segments"
        )
        // frames,
    }
    cutter = CropCutter.load(work / "sgx_geometry/track.npz", clip)
    aligned_png = np.mean([len(encode_image(cutter.aligned(i))) for i in range(frames)])
    render_jpg = np.mean([len(encode_image(stand_in[i], ".jpg")) for i in range(frames)])
    old = {
        **shared,
        "sgx_geometry/track.npz": old_track,
        "sgx_geometry/aligned/*.png (256)": int(aligned_png),
        f"toon_cartoon_render/frames/*.jpg ({width}x{height}, quality 95)": int(render_jpg),
    }
    return small, old, [height, width]


def toonify_report(small: dict[str, int], old: dict[str, int], size: list[int], fps: float) -> str:
    minute = fps * 60
    lines = [
        f"### Work dir of `ganvid toonify` at 1080p (`bench_workdir.py --toonify`, {fps:g} fps)",
        "",
        "Layout before (PNG aligned faces, JPEG renders):",
        "",
        *_table(old),
        "",
        "Small layout (default):",
        "",
        *_table(small),
        "",
        f"Per minute of 1080p at {fps:g} fps (renders {size[1]}x{size[0]}): "
        f"**{sum(old.values()) * minute / 1e9:.2f} GB before, "
        f"{sum(small.values()) * minute / 1e9:.2f} GB after** (target: at most 0.5). The w+ "
        "stage's sampled frames/*.npy (a few per shot) are left out of both.",
    ]
    return "\n".join(lines)


def segmented_against_single_pass(root: Path, frames: int, segment_frames: int) -> str:
    """Encode the pasted-back video of a `frames`-frame clip of the photo in one segment (the
    single-pass encode, byte for byte) and in segments of `segment_frames`; compare the two
    decoded videos and each against the uncompressed composition of the single pass."""
    from ganvid.io.video import probe, read_frames
    from ganvid.pipeline.compose import ComposeConfig, ComposeSources, composed_frames
    from ganvid.pipeline.crops import CropCutter
    from ganvid.pipeline.segments import encode_segments, join_segments

    clip, work = geometry_workdir(root, "long", frames, 3)
    cutter = CropCutter.load(work / "geometry" / "geometry.npz", clip)
    sources = ComposeSources(clip, work, None)
    videos = {}
    for size in (frames, segment_frames):
        stage = work / f"render{size}"
        encode_segments(
            stage,
            sources,
            lambda indices: cutter.stream(indices, aligned=False),
            {"video": "frame"},
            ComposeConfig(),
            size,
        )
        videos[size] = root / f"video{size}.mp4"
        join_segments(stage, clip, {"video": videos[size]}, ComposeConfig(), size)
    crops = CropCutter.load(work / "geometry" / "geometry.npz", clip)
    reference = (
        c.images["frame"]
        for c in composed_frames(
            ComposeSources(clip, work, crops.unaligned_crops), {"frame"}, ComposeConfig()
        )
    )

    def psnr(a: np.ndarray, b: np.ndarray) -> float:
        error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
        return float(10 * np.log10(255.0**2 / max(error, 1e-10)))

    between, single_db, segmented_db, max_diff, mean_diff = [], [], [], 0, []
    pairs = zip(
        read_frames(videos[frames]), read_frames(videos[segment_frames]), reference, strict=True
    )
    for one, many, truth in pairs:
        difference = np.abs(one.image.astype(int) - many.image.astype(int))
        max_diff, mean_diff = max(max_diff, int(difference.max())), [*mean_diff, difference.mean()]
        between.append(psnr(one.image, many.image))
        single_db.append(psnr(one.image, truth))
        segmented_db.append(psnr(many.image, truth))
    same_pts = [f.pts for f in read_frames(videos[segment_frames])] == [
        f.pts for f in read_frames(clip)
    ]
    a, b = probe(videos[frames]), probe(videos[segment_frames])
    return (
        f"Segmented against single-pass encode ({frames} frames of 1080p, pasted back, segments "
        f"of {segment_frames}): max |difference| {max_diff}, mean {np.mean(mean_diff):.3f} "
        f"levels, PSNR between them {np.mean(between):.2f} dB (min {min(between):.2f}); "
        f"against the uncompressed composition: single pass {np.mean(single_db):.2f} dB, "
        f"segmented {np.mean(segmented_db):.2f} dB; sizes {videos[frames].stat().st_size:,} vs "
        f"{videos[segment_frames].stat().st_size:,} bytes; same pts: {same_pts}; frames "
        f"{a.frame_count} vs {b.frame_count}, duration {a.duration_s:.3f} vs {b.duration_s:.3f} s."
    )


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


def _table(files: dict[str, int]) -> list[str]:
    return [
        "| file | bytes per frame |",
        "|---|---|",
        *(f"| {name} | {size:,} |" for name, size in files.items()),
        f"| **per frame** | **{sum(files.values()):,}** |",
    ]


def report(
    small: dict[str, int], old: dict[str, int], generator: int, target_s: float, fps: float
) -> str:
    segments = {k: v for k, v in small.items() if k.startswith("render/segments")}
    shared = {k: v for k, v in small.items() if k not in segments}
    before = {**shared, **old}
    minute = fps * 60
    after_gb = sum(small.values()) * minute / 1e9
    before_gb = sum(before.values()) * minute / 1e9
    edit_gb = small["render/segments/video/*.mp4 (1080p, CRF 18)"] * minute / 1e9
    old_edit_gb = old["render/frames/*.png (1024, ~crop)"] * minute / 1e9
    crop_png = old["geometry/crops/*.png (1024)"]
    lines = [
        f"### Work dir of `ganvid invert` at 1024-px crops (`bench_workdir.py`, {fps:g} fps)",
        "",
        "Small layout (default):",
        "",
        *_table(small),
        "",
        "Layout before it:",
        "",
        *_table(before),
        "",
        f"Per minute of 1080p at {fps:g} fps: **{before_gb:.2f} GB before, {after_gb:.2f} GB "
        f"after** (target: at most 0.5), plus the tuned generator once per clip "
        f"({generator / 1e6:.1f} MB). Each `ganvid edit` adds its render: {old_edit_gb:.2f} "
        f"GB per minute before (PNG), {edit_gb:.2f} GB after (its video's segments). While PTI "
        f"runs, its targets are cut once into pti/targets/*.png: {crop_png:,} bytes per frame "
        f"({crop_png * minute / 1e9:.2f} GB per minute, deleted when PTI ends) and "
        f"{target_s * 1e3:.0f} ms per frame to decode, cut and store.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--markdown", type=Path, help="Append the table to this file.")
    parser.add_argument("--frames", type=int, default=8, help="Frames of the measured clip.")
    parser.add_argument(
        "--toonify", action="store_true", help="Measure `ganvid toonify`'s work dir instead."
    )
    parser.add_argument(
        "--compare",
        type=int,
        default=0,
        metavar="N",
        help="Also compare segments of 30 frames with one pass over an N-frame clip.",
    )
    args = parser.parse_args()
    if args.toonify:
        with tempfile.TemporaryDirectory() as folder:
            text = toonify_report(*toonify_files(Path(folder), args.frames), args.fps)
        print(text)
        if args.markdown:
            with open(args.markdown, "a", encoding="utf-8") as out:
                out.write("\n" + text + "\n")
        return
    with tempfile.TemporaryDirectory() as folder:
        small, old, target_s = measured_files(Path(folder), args.frames)
        compared = (
            segmented_against_single_pass(Path(folder), args.compare, 30) if args.compare else ""
        )
    text = report(small, old, tuned_generator_bytes(), target_s, args.fps)
    text += f"\n\n{compared}" if compared else ""
    print(text)
    if args.markdown:
        with open(args.markdown, "a", encoding="utf-8") as out:
            out.write("\n" + text + "\n")


if __name__ == "__main__":
    main()
