"""`ganvid.pipeline.layout.Layout` names the whole work dir: every file a finished invert + edit +
expand-fov leaves is a path it names, and stage options as dataclasses keep the cache keys the
option dicts had (earlier work dirs stay cached)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from support.face_clips import moving_clip
from support.pipeline_fixtures import invert_args, tiny_assets

from ganvid.pipeline import layout as names
from ganvid.pipeline.layout import Layout
from ganvid.pipeline.workdir import Workdir

FRAMES = 5


def _named(layout: Layout, edit_tag: str, fov_name: str) -> tuple[set[Path], set[Path]]:
    """(files, folders of per-frame files) that Layout names for an invert + edit + fov."""
    edit, fov = layout.edit(edit_tag), layout.fov(fov_name)
    stages = [*names.INVERT_STAGES, edit.latents, edit.render, edit.encode, fov.render, fov.encode]
    files = {
        layout.inversion_json,
        layout.hashes,
        layout.lock,
        layout.decode_json,
        layout.geometry_json,
        layout.geometry_npz,
        layout.invert_ws,
        layout.smooth_ws,
        layout.smooth_params,
        layout.smooth_transforms,
        layout.pti_generator,
        layout.pti_log,
        layout.metrics,
        edit.latents_ws,
        edit.latents_ws_smooth,
        edit.strengths,
        *(layout.manifest(stage) for stage in stages),
    }
    folders = {  # per-frame files (invert/ws/ while it runs) and output segments
        layout.invert_frames,
        layout.segments(names.RENDER),
        layout.segments(edit.render),
        layout.segments(fov.render),
        layout.detections("", "").parent,
    }
    return files, folders


def test_every_file_of_an_invert_edit_and_fov_work_dir_is_a_layout_path(tmp_path, monkeypatch):
    from ganvid.cli import run
    from ganvid.weights import local_path

    clip = moving_clip(n_frames=FRAMES, size=(128, 112))
    assets = tiny_assets(tmp_path, clip.frames)
    workdir = tmp_path / "work"
    monkeypatch.setenv("GANVID_HOME", str(tmp_path / "home"))
    args = ["--pti-steps", "1", "-o", str(tmp_path / "inv.mp4")]
    assert run(invert_args(assets, assets["clip"], workdir, *args)) == 0
    boundary = local_path("interfacegan-ffhq-age")
    boundary.parent.mkdir(parents=True, exist_ok=True)
    np.save(boundary, np.random.default_rng(0).normal(size=(1, 32)).astype(np.float32))
    common = ["--workdir", str(workdir), "--device", "cpu", "--preset", "ultrafast"]
    edit = ["edit", str(assets["clip"]), *common, "--direction", "age:1"]
    assert run([*edit, "-o", str(tmp_path / "age.mp4")]) == 0
    fov = ["expand-fov", str(assets["clip"]), *common, "--left", "8"]
    assert run([*fov, "-o", str(tmp_path / "fov.mp4")]) == 0

    layout = Layout(workdir)
    files, folders = _named(layout, "age1", "inverted_l8r0t0b0w2")
    found = {path for path in workdir.rglob("*") if path.is_file()}
    loose = {p for p in found - files if not any(f in p.parents for f in folders)}
    assert not loose, sorted(str(p.relative_to(workdir)) for p in loose)
    assert files <= found  # every named file of these jobs was written
    for folder in folders - {layout.invert_frames}:  # every named folder holds files (the
        assert any(folder in p.parents for p in found), folder  # encoder's go once gathered)
    assert not layout.render_frames.exists()  # renders are kept only with --keep-frames


def test_stage_options_as_dataclasses_hash_like_the_option_dicts_they_replace(tmp_path):
    from ganvid.pipeline.compose import ComposeConfig
    from ganvid.pipeline.edit import EncodeStageOptions
    from ganvid.pipeline.invert import EncodeOptions, GeometryOptions, SmoothOptions
    from ganvid.pipeline.paste_back import PasteConfig

    outputs = {"video": str(tmp_path / "a.mp4"), "crop": str(tmp_path / "a_crop.mp4")}
    encode = {"outputs": outputs, "crf": 18, "preset": "fast", "paste_back": True}
    pairs = [
        (EncodeOptions(outputs, 18, "fast", True), encode),  # defaults left out, as before
        (EncodeOptions(outputs, 18, "fast", True, mask="parsing"), {**encode, "mask": "parsing"}),
        (
            EncodeOptions(outputs, 18, "fast", True, exact_size=True),
            {**encode, "exact_size": True},
        ),
        (SmoothOptions(True, False), {"smooth": True, "fine_layer_mean": False}),
        (
            GeometryOptions({"detector": "dlib"}, 256, 32, "ffhq"),
            {
                "face": {"detector": "dlib"},
                "aligned_size": 256,
                "crop_size": 32,
                "unaligned_fill": "ffhq",
            },
        ),
        (
            EncodeStageOptions(
                "edits/a/render",
                {"video": ("/o.mp4", "frame")},
                ComposeConfig(PasteConfig(), 18, "fast"),
                300,
            ),
            {
                "render": "edits/a/render",
                "outputs": {"video": ["/o.mp4", "frame"]},
                "compose": {
                    "paste": asdict(PasteConfig()),
                    "crf": 18,
                    "preset": "fast",
                    "crop_offset": [0, 0],
                    "exact_size": False,
                },
                "segment_frames": 300,
            },
        ),
    ]
    with Workdir(tmp_path / "work") as wd:
        for options, legacy in pairs:
            assert wd.stage_key("s", "1", options) == wd.stage_key("s", "1", legacy), legacy
        changed = EncodeOptions(outputs, 18, "fast", True, mask="parsing")
        assert wd.stage_key("s", "1", changed) != wd.stage_key("s", "1", encode)


@pytest.mark.parametrize(
    ("path", "relative"),
    [
        (Layout(Path("w")).decode_json, "decode/video.json"),
        (Layout(Path("w")).smooth_ws, "smooth/ws.npy"),
        (Layout(Path("w")).segments("render"), "render/segments"),
        (Layout(Path("w")).pti_targets, "pti/targets"),
        (Layout(Path("w")).render_frames, "render/frames"),
        (Layout(Path("w")).edit("age3").latents_ws_smooth, "edits/age3/latents/ws_smooth.npy"),
        (Layout(Path("w")).tagged("toon_cartoon").wplus_npy, "toon_cartoon_wplus/wplus.npy"),
        (Layout(Path("w")).tagged("toon_cartoon").wplus_raw_npy, "toon_cartoon_wplus/raw.npy"),
        (Layout(Path("w")).manifest("edits/age3/render"), "edits/age3/render.json"),
        (Layout(Path("w")).smgan_masks("hair"), "smgan_masks/hair"),
        (Layout(Path("w")).smgan_geometry_npz, "smgan_geometry/geometry.npz"),
        (Layout(Path("w")).segments("toon_cartoon_render"), "toon_cartoon_render/segments"),
        (Layout(Path("w")).align_videos["preview"], "align/preview.mp4"),
    ],
)
def test_layout_paths_are_the_ones_existing_work_dirs_hold(path, relative):
    assert Layout(Path("w")).relative(path) == relative
