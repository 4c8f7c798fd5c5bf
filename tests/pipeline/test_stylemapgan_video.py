"""`ganvid stylemap video` on a 6-frame astronaut clip with sound, a tiny random StyleMapGAN in
the published layout, and a painted mask."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from support.face_clips import ASTRONAUT_FACE_CENTRE, astronaut, similarity, warp
from support.pipeline_fixtures import write_clip
from support.stylemapgan_fixtures import PartWhereRed, write_checkpoint
from support.videos import audio_packets

from ganvid.nn.stylemapgan_checkpoints import load_stylemapgan
from ganvid.pipeline.crops import CropCutter
from ganvid.pipeline.render import to_tensor
from ganvid.pipeline.stylemapgan import render
from ganvid.pipeline.workdir import FrameDir, read_json

pytestmark = pytest.mark.usefixtures("one_thread")
FRAMES = 6
SIZE = (320, 160)
KEYED = "0s:0,0.2s:1"  # 25 fps: frame 0 at strength 0, frames 5.. at 1
STAGES = ("decode", "smgan_geometry", "smgan_encode", "smgan_smooth")


def decoded(path: Path) -> tuple[list[int], list[np.ndarray]]:
    with av.open(str(path)) as container:
        pairs = [(f.pts, f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    return [p for p, _ in pairs], [image for _, image in pairs]


def video_args(assets: dict, strength: str, output: Path, *extra: str) -> list[str]:
    return [
        "stylemap", "video", str(assets["clip"]), "-r", str(assets["reference"]),
        "--mask", str(assets["mask"]), "--checkpoint", str(assets["checkpoint"]),
        "--workdir", str(assets["workdir"]), "--strength", strength, "-o", str(output),
        "--device", "cpu", "--preset", "ultrafast", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict:
    from ganvid.cli import run

    root = tmp_path_factory.mktemp("stylemap_video")
    base = astronaut()
    frames = [
        warp(base, similarity(1.5 * k, 0.55, ASTRONAUT_FACE_CENTRE, (120 + 16 * k, 84)), SIZE)
        for k in range(FRAMES)
    ]
    mask = np.zeros((32, 32, 3), np.uint8)
    mask[8:24, 6:26] = 255
    assets = {
        "clip": write_clip(root / "talk.mp4", frames),
        "reference": root / "reference.png",
        "mask": root / "mask.png",
        "checkpoint": write_checkpoint(root / "smgan.pt", seed=2),
        "workdir": root / "work",
        "keyed": root / "keyed.mp4",
        "zero": root / "zero.mp4",
    }
    cv2.imwrite(str(assets["reference"]), np.ascontiguousarray(base[:, ::-1, ::-1]))
    cv2.imwrite(str(assets["mask"]), mask)
    # --keep-frames: the tests compare the renders (<tag>_render/frames)
    assert run(video_args(assets, KEYED, assets["keyed"], "--keep-frames")) == 0
    assert run(video_args(assets, "0", assets["zero"], "--keep-frames")) == 0
    return assets


def test_every_frame_timestamp_and_sound_is_kept(assets):
    source_pts, source = decoded(assets["clip"])
    pts, images = decoded(assets["keyed"])
    assert pts == source_pts and len(images) == FRAMES
    assert images[0].shape == (SIZE[1], SIZE[0], 3)
    assert audio_packets(assets["keyed"]) == audio_packets(assets["clip"])
    # the face is re-rendered, the frame's far corner is the input (up to H.264)
    last = images[-1].astype(int) - source[-1]
    assert np.abs(last[:, 150:250]).mean() > 8 and np.abs(last[:20, :20]).mean() < 3


def test_strength_zero_renders_the_reconstruction(assets):
    work = assets["workdir"]
    model = load_stylemapgan(assets["checkpoint"])
    stylemaps = np.load(work / "smgan_smooth" / "stylemaps.npy")
    assert stylemaps.shape == (FRAMES, 8, 4, 4)
    reconstruction = render(model, to_tensor(stylemaps, model.device))
    zero = FrameDir(work / "stylemap_mask_0_render" / "frames")
    keyed = FrameDir(work / "stylemap_mask_keyed_render" / "frames")
    for k in range(FRAMES):
        assert np.array_equal(zero.read(k), reconstruction[k])
    assert np.array_equal(keyed.read(0), reconstruction[0])  # keyframe strength 0 at 0 s
    assert not np.array_equal(keyed.read(FRAMES - 1), reconstruction[FRAMES - 1])


def test_stylemaps_are_smoothed_within_the_shot(assets):
    work = assets["workdir"]
    raw = np.load(work / "smgan_encode" / "stylemaps.npy")
    smooth = np.load(work / "smgan_smooth" / "stylemaps.npy")
    taps = np.array([0.25, 0.75, 1.0, 0.75, 0.25]) / 3.0
    assert np.allclose(smooth[2], np.tensordot(taps, raw[0:5], axes=1), atol=1e-6)


def test_second_run_reuses_every_stage(assets, cli):
    names = (*STAGES, "stylemap_mask_keyed_render", "stylemap_mask_keyed_encode")
    before = {name: read_json(assets["workdir"] / f"{name}.json") for name in names}
    code, _, err = cli(*video_args(assets, KEYED, assets["keyed"], "--keep-frames"))
    assert code == 0, err
    after = {name: read_json(assets["workdir"] / f"{name}.json") for name in names}
    assert after == before and all(m["complete"] for m in after.values())


def test_bad_strength_and_output_are_one_line_errors(assets, cli):
    code, _, err = cli(*video_args(assets, "0s:1,0s:2", assets["keyed"]))
    assert code != 0 and "increasing times" in err
    code, _, err = cli(*video_args(assets, "1", assets["clip"]))
    assert code != 0 and "is an input" in err


def test_part_masks_follow_each_frame(assets, cli, monkeypatch, _isolated_home, tmp_path):
    from ganvid.nn.face_parsing import FaceParser

    monkeypatch.setattr(
        FaceParser, "load", classmethod(lambda cls, *a, **k: cls(PartWhereRed("hair", 0.5), 32))
    )
    (_isolated_home / "weights").mkdir(parents=True, exist_ok=True)
    (_isolated_home / "weights" / "faceparsing.pth").write_bytes(b"stand-in")
    args = video_args(assets, "1", tmp_path / "hair.mp4")
    mask_at = args.index("--mask")
    args[mask_at : mask_at + 2] = ["--part", "hair"]
    code, _, err = cli(*args)
    assert code == 0, err
    work = assets["workdir"]
    masks = FrameDir(work / "smgan_masks" / "hair")
    aligned = CropCutter.load(work / "smgan_geometry" / "geometry.npz", assets["clip"])
    for k in (0, FRAMES - 1):
        red = (aligned.aligned(k)[..., 0].astype(np.float32) / 255 - 0.485) / 0.229 > 0.5
        assert np.array_equal(masks.read(k)[..., 0] > 127, red)
    assert len(decoded(tmp_path / "hair.mp4")[0]) == FRAMES


def test_segments_resume_and_keep_frames_give_the_same_video(assets, cli, tmp_path):
    """Renders stream into 4-frame segments (2 for 6 frames) and no face or render is stored
    as an image; a run missing its last segment renders only that one again and joins the same
    bytes; --keep-frames writes the same video and keeps every render, the ones the aligned
    faces cut on demand give."""
    work = tmp_path / "work"
    plain, kept = tmp_path / "plain.mp4", tmp_path / "kept.mp4"
    args = [*video_args(assets, KEYED, plain, "--segment-frames", "4"), "--workdir", str(work)]
    code, _, err = cli(*args)
    assert code == 0, err
    segments = work / "stylemap_mask_keyed_render" / "segments" / "video"
    assert sorted(p.name for p in segments.glob("*.mp4")) == ["000000.mp4", "000001.mp4"]
    assert not [p for p in work.rglob("*") if p.suffix in (".png", ".jpg")]
    assert decoded(plain)[0] == decoded(assets["clip"])[0]
    assert audio_packets(plain) == audio_packets(assets["clip"])

    first = (segments / "000000.mp4").stat().st_mtime_ns
    (segments / "000001.mp4").unlink()
    before = plain.read_bytes()
    plain.unlink()
    code, _, err = cli(*args)
    assert code == 0, err
    assert plain.read_bytes() == before
    assert (segments / "000000.mp4").stat().st_mtime_ns == first

    code, _, err = cli(*args, "--keep-frames", "-o", str(kept))
    assert code == 0, err
    assert kept.read_bytes() == before
    renders = FrameDir(work / "stylemap_mask_keyed_render" / "frames")
    stored = FrameDir(assets["workdir"] / "stylemap_mask_keyed_render" / "frames")
    for k in range(FRAMES):  # the fixture's run, in one segment: the same renders
        assert np.array_equal(renders.read(k), stored.read(k))
