"""The small work dir: crops cut on demand (`pipeline/crops.py`) and renders encoded in
segments (`pipeline/segments.py`), measured at 1024-px crops on a real photo."""

from __future__ import annotations

import numpy as np
from support.face_clips import moving_clip
from support.pipeline_fixtures import write_clip

from ganvid.face.align import CropConfig, ffhq_crop
from ganvid.io.video import read_frames
from ganvid.pipeline.compose import ComposeConfig, ComposeSources
from ganvid.pipeline.crops import CropCutter
from ganvid.pipeline.invert import (
    ALIGNED_SIZE,
    GeometryOptions,
    stage_decode,
    stage_geometry,
)
from ganvid.pipeline.layout import Layout
from ganvid.pipeline.segments import encode_segments, join_segments
from ganvid.pipeline.workdir import Workdir, atomic_save_npy, run_stage

FRAMES = 6
TARGET_BYTES_PER_MINUTE = 0.5e9
"""Issue 18: at most 0.5 GB per minute of 1080p at 30 fps."""


def test_work_dir_at_1024_px_crops_holds_no_frames_and_stays_under_the_target(tmp_path):
    """decode + geometry at 1024-px crops, then the default outputs (pasted-back video and crop)
    encoded in segments from a stand-in render (the crop itself, what a good reconstruction
    looks like); W+ and transforms as the invert and smooth stages store them. Crops cut on
    demand are the pixels the geometry stage's own records give through `ffhq_crop`."""
    clip = write_clip(
        tmp_path / "talk.mp4", moving_clip(FRAMES, (640, 480), blank=(), noise=3.0).frames
    )
    work = tmp_path / "talk.ganvid"
    options = GeometryOptions(
        face={}, aligned_size=ALIGNED_SIZE, crop_size=1024, unaligned_fill="ffhq"
    )
    with Workdir(work) as wd:
        run_stage(wd, "decode", stage_decode, inputs={"clip": clip}, options={})
        run_stage(wd, "geometry", stage_geometry, inputs={"clip": clip}, options=options)
    ws = np.zeros((FRAMES, 16, 512), np.float32)
    for name in ("invert/ws.npy", "smooth/ws.npy"):
        (work / name).parent.mkdir(exist_ok=True)
        atomic_save_npy(work / name, ws)
    atomic_save_npy(work / "smooth/transforms.npy", np.zeros((FRAMES, 3, 3)))
    atomic_save_npy(work / "smooth/params.npy", np.zeros((FRAMES, 3)))
    cutter = CropCutter.load(work / "geometry/geometry.npz", clip)
    layouts = {"video": "frame", "crop": "crop"}
    sources = ComposeSources(clip, work, None)
    render = lambda indices: cutter.stream(indices, aligned=False)  # noqa: E731
    info = encode_segments(work / "render", sources, render, layouts, ComposeConfig(), 4)
    assert info == {"segments": 2, "units": 2, "size": [1024, 1024]}  # units: encoded here

    files = [p for p in work.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".png", ".jpg")]
    per_frame = sum(p.stat().st_size for p in files) / FRAMES
    per_minute = per_frame * 30 * 60
    print(f"work dir at 1024-px crops: {per_frame:,.0f} B/frame, {per_minute / 1e9:.3f} GB/min")
    assert per_minute < TARGET_BYTES_PER_MINUTE

    # the crops the old geometry stage stored: ffhq_crop over its in-memory records
    from ganvid.pipeline.align import track_geometry

    again = Layout(tmp_path / "again")
    records, _ = track_geometry(clip, FRAMES, again, again.geometry_json, {})
    for frame, record in zip(read_frames(clip), records, strict=True):
        unaligned = ffhq_crop(frame.image, record.unaligned_quad, CropConfig(1024, "ffhq"))
        aligned = ffhq_crop(frame.image, record.aligned_quad, CropConfig(ALIGNED_SIZE, "ffhq"))
        np.testing.assert_array_equal(cutter.unaligned(frame.index), unaligned)
        np.testing.assert_array_equal(cutter.aligned(frame.index), aligned)

    outputs = {name: tmp_path / f"{name}.mp4" for name in layouts}
    join_segments(work / "render", clip, outputs, ComposeConfig(), 4)
    for path in outputs.values():
        assert [f.pts for f in read_frames(path)] == [f.pts for f in read_frames(clip)]


def test_segments_decode_the_clip_once(tmp_path, monkeypatch):
    """Three segments pasted back into the source frames: the compose side decodes the clip once
    for all of them (not once more per segment, from its start), as the render side does."""
    import ganvid.io.video as video

    clip = write_clip(
        tmp_path / "talk.mp4", moving_clip(FRAMES, (320, 240), blank=(), noise=3.0).frames
    )
    work = tmp_path / "talk.ganvid"
    options = GeometryOptions(
        face={}, aligned_size=ALIGNED_SIZE, crop_size=64, unaligned_fill="ffhq"
    )
    with Workdir(work) as wd:
        run_stage(wd, "decode", stage_decode, inputs={"clip": clip}, options={})
        run_stage(wd, "geometry", stage_geometry, inputs={"clip": clip}, options=options)
    decodes: list[int] = []
    read_frames = video.read_frames

    def counted(*args, **kwargs):
        decodes.append(1)
        return read_frames(*args, **kwargs)

    monkeypatch.setattr(video, "read_frames", counted)
    cutter = CropCutter.load(work / "geometry/geometry.npz", clip)
    render = lambda indices: cutter.stream(indices, aligned=False)  # noqa: E731
    sources = ComposeSources(clip, work, None)
    info = encode_segments(work / "render", sources, render, {"video": "frame"}, ComposeConfig(), 2)
    assert info["segments"] == 3
    assert len(decodes) == 2  # the render's crops and the paste-back's frames
