"""StyleGANEX video jobs (`ganvid toonify`, the styleganex edit path) on a 6-frame astronaut clip
with narrow random networks in the published checkpoint layout."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from support.face_clips import (
    ASTRONAUT_EYES,
    ASTRONAUT_FACE_CENTRE,
    astronaut,
    map_points,
    similarity,
    warp,
)
from support.pipeline_fixtures import write_clip
from support.styleganex_fixtures import write_checkpoint
from support.videos import audio_packets

from ganvid.cli import run as run_cli
from ganvid.face.windows import CropRule, crop_windows, cut_window
from ganvid.pipeline.styleganex_video import load_windows, styleganex_edit_video
from ganvid.pipeline.workdir import FrameDir, read_json

FRAMES = 6
SIZE = (320, 160)
FACE_SCALE = 0.55
EYE_PX = 8  # 1/8 of the models' 64: crops of at most 64 px keep the file fast on a CPU
STAGES = (
    "decode",
    "sgx_geometry",
    "sgx_windows",
    "toon_cartoon_wplus",
    "toon_cartoon_render",
    "toon_cartoon_encode",
)


def face_motion(k: int) -> np.ndarray:
    """Astronaut -> frame matrix of frame k: the face slides 16 px right per frame, turning."""
    return similarity(1.5 * k, FACE_SCALE, ASTRONAUT_FACE_CENTRE, (120 + 16 * k, 84))


def decoded(path: Path) -> tuple[list[int], list[np.ndarray]]:
    with av.open(str(path)) as container:
        pairs = [(f.pts, f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    return [p for p, _ in pairs], [image for _, image in pairs]


def toonify_args(assets: dict, *extra: str) -> list[str]:
    return [
        "toonify",
        str(assets["clip"]),
        "--checkpoint",
        str(assets["toonify"]),
        "--workdir",
        str(assets["workdir"]),
        "--eye-px",
        str(EYE_PX),
        "--device",
        "cpu",
        "--batch",
        "4",
        "--preset",
        "ultrafast",
        *extra,
    ]


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict:
    """The clip, two checkpoints, and one `ganvid toonify` run (paste-back) in a work dir."""
    root = tmp_path_factory.mktemp("sgx_video")
    base = astronaut()
    frames = [warp(base, face_motion(k), SIZE) for k in range(FRAMES)]
    assets = {
        "clip": write_clip(root / "talk.mp4", frames),
        "toonify": root / "toonify.pt",
        "edit": root / "edit.pt",
        "workdir": root / "work",
    }
    write_checkpoint(assets["toonify"], "toonify", seed=0)
    write_checkpoint(assets["edit"], "edit", seed=1)
    assert run_cli(toonify_args(assets)) == 0
    return assets


def manifests(workdir: Path) -> dict[str, dict]:
    return {name: read_json(workdir / f"{name}.json") for name in STAGES}


# ----------------------------------------------------------------------------- end to end


def test_paste_back_keeps_frames_pts_sound_and_size(assets):
    output = assets["clip"].with_name("talk_toon_cartoon.mp4")
    source_pts, source = decoded(assets["clip"])
    pts, images = decoded(output)
    assert pts == source_pts and len(images) == FRAMES
    assert images[0].shape == (SIZE[1], SIZE[0], 3)
    assert audio_packets(output) == audio_packets(assets["clip"])
    # the render lands in the window: outside it the frame is the input (up to H.264), inside
    # it the random network's picture is nothing like the input
    windows = load_windows(assets["workdir"])
    for k in (0, FRAMES - 1):
        x0, y0, w, h = windows.boxes[k]
        inside = (slice(int(y0) + 8, int(y0 + h) - 8), slice(int(x0) + 8, int(x0 + w) - 8))
        outside = (slice(None), slice(int(x0 + w) + 2, None))
        if k == FRAMES - 1:
            outside = (slice(None), slice(0, int(x0) - 2))
        diff = np.abs(images[k].astype(int) - source[k].astype(int))
        assert diff[outside].mean() < 3.0
        assert diff[inside].mean() > 20.0


def test_second_run_recomputes_nothing(assets, cli):
    before = manifests(assets["workdir"])
    output = assets["clip"].with_name("talk_toon_cartoon.mp4")
    stamp = output.stat().st_mtime_ns
    code, _, err = cli(*toonify_args(assets))
    assert code == 0, err
    assert manifests(assets["workdir"]) == before  # no stage ran (a run rewrites its manifest)
    assert output.stat().st_mtime_ns == stamp


def test_segments_resume_and_keep_frames_give_the_same_video(assets, cli, tmp_path):
    """Renders stream into 4-frame segments (2 for 6 frames): the default and --keep-frames runs
    write the same bytes and keep no render files by default; a run missing its last segment
    renders only that one again and joins the same bytes."""
    work = tmp_path / "work"
    args = [*toonify_args(assets, "--segment-frames", "4"), "--workdir", str(work)]
    plain, kept = tmp_path / "plain.mp4", tmp_path / "kept.mp4"
    code, _, err = cli(*args, "-o", plain)
    assert code == 0, err
    stage = work / "toon_cartoon_render"
    segments = stage / "segments" / "video"
    assert sorted(p.name for p in segments.glob("*.mp4")) == ["000000.mp4", "000001.mp4"]
    assert not [p for p in work.rglob("*") if p.suffix in (".png", ".jpg")]
    source_pts, _ = decoded(assets["clip"])
    assert decoded(plain)[0] == source_pts
    assert audio_packets(plain) == audio_packets(assets["clip"])

    first = (segments / "000000.mp4").stat().st_mtime_ns
    (segments / "000001.mp4").unlink()
    before = plain.read_bytes()
    plain.unlink()
    code, _, err = cli(*args, "-o", plain)
    assert code == 0, err
    assert plain.read_bytes() == before
    assert (segments / "000000.mp4").stat().st_mtime_ns == first

    code, _, err = cli(*args, "--keep-frames", "-o", kept)
    assert code == 0, err
    assert kept.read_bytes() == before
    assert FrameDir(stage / "frames").missing(FRAMES) == []


def test_aligned_faces_are_cut_from_the_clip_as_the_geometry_records_give_them(assets, tmp_path):
    """The w+ input is cut on demand over the exact quads in track.npz: the pixels the stored
    aligned PNGs had (`ffhq_crop` over the geometry stage's own records)."""
    from ganvid.face.align import CropConfig, ffhq_crop
    from ganvid.io.video import read_frames
    from ganvid.pipeline.align import track_geometry
    from ganvid.pipeline.crops import CropCutter
    from ganvid.pipeline.layout import Layout
    from ganvid.pipeline.styleganex_video import face_options

    cutter = CropCutter.load(Layout(assets["workdir"]).sgx_track, assets["clip"])
    again = Layout(tmp_path / "again")
    records, _ = track_geometry(
        assets["clip"], FRAMES, again, again.sgx_geometry_json, face_options({})
    )
    for frame, record in zip(read_frames(assets["clip"]), records, strict=True):
        face = ffhq_crop(frame.image, record.aligned_quad, CropConfig(256, "ffhq"))
        np.testing.assert_array_equal(cutter.aligned(frame.index), face)


def test_crop_only_writes_4x_the_snapped_crop(assets, cli):
    code, _, err = cli(*toonify_args(assets, "--crop-only"))
    assert code == 0, err
    output = assets["clip"].with_name("talk_toon_cartoon_crop.mp4")
    pts, images = decoded(output)
    assert pts == decoded(assets["clip"])[0]
    assert audio_packets(output) == audio_packets(assets["clip"])
    # documented size: min(floor8(eye_px * 8), floor8(side * eye_px / eye distance)), x4
    eyes = map_points(face_motion(0), np.array(ASTRONAUT_EYES))
    scale = EYE_PX / np.hypot(*(eyes[1] - eyes[0]))
    width = min(EYE_PX * 8, int(SIZE[0] * scale) // 8 * 8)
    height = min(EYE_PX * 8, int(SIZE[1] * scale) // 8 * 8)
    assert load_windows(assets["workdir"]).input_size == (height, width)
    assert images[0].shape == (4 * height, 4 * width, 3)


def test_crop_window_follows_the_face(assets):
    windows = load_windows(assets["workdir"])
    eyes = np.stack([map_points(face_motion(k), np.array(ASTRONAUT_EYES)) for k in range(FRAMES)])
    eye_centres = eyes.mean(axis=1) + 0.5  # pixel index -> continuous coordinates
    centres = windows.centres()
    # the window moves with the face (16 px per frame) and stays centred on the eyes
    # horizontally; vertically it is pushed inside the frame
    np.testing.assert_allclose(np.diff(centres[:, 0]), 16.0, atol=1.0)
    np.testing.assert_allclose(centres[:, 0], eye_centres[:, 0], atol=1.5)
    assert np.ptp(windows.boxes[:, 2:], axis=0).max() < 1e-9  # one size in a shot
    assert (windows.boxes[:, :2] >= 0).all()
    assert (windows.boxes[:, :2] + windows.boxes[:, 2:] <= np.array(SIZE) + 1e-9).all()


def test_missing_weights_name_the_download_command(assets, cli):
    code, _, err = cli("toonify", str(assets["clip"]), "--style", "pixar", "--device", "cpu")
    assert code == 5
    assert len(err.strip().splitlines()) == 1
    assert "ganvid weights download styleganex-toonify-pixar" in err
    # `edit --backend styleganex` takes the segment options (and goes on to its weights)
    frames = ("--keep-frames", "--segment-frames", "4", "--device", "cpu")
    code, _, err = cli("edit", str(assets["clip"]), "--backend", "styleganex", *frames)
    assert code == 5 and "ganvid weights download styleganex-edit-age" in err
    code, _, err = cli("toonify", str(assets["clip"]), "--style", "anime")
    assert code == 2 and "cartoon, pixar, arcane" in err


# ----------------------------------------------------------------------------- editing


def test_edit_applies_plus_strength_times_the_stored_vector(assets):
    from ganvid.nn.styleganex_checkpoints import load_styleganex
    from ganvid.pipeline.render import to_float, to_uint8

    summary = styleganex_edit_video(
        assets["clip"],
        assets["edit"],
        strength=1.5,
        workdir=assets["workdir"],
        device="cpu",
        crop=CropRule(eye_px=EYE_PX),
        preset="ultrafast",
        keep_frames=True,  # lossless PNGs, to compare with the network's own output
        wplus="smooth",  # per-frame w+ through the whole job (the toonify runs use "mean")
    )
    assert summary.output.name == "talk_edit_edit_1.5.mp4"
    pts, images = decoded(summary.output)
    assert len(pts) == FRAMES and images[0].shape == (SIZE[1], SIZE[0], 3)

    model = load_styleganex(assets["edit"])
    windows = load_windows(assets["workdir"])
    wplus = np.load(assets["workdir"] / "edit_edit_wplus" / "wplus.npy")
    frame = decoded(assets["clip"])[1][0]
    crop = to_float([cut_window(frame, windows.boxes[0], windows.input_size)], "cpu")
    features = model.encode_features(crop)
    w = torch.tensor(wplus[:1])

    def render(strength: float) -> np.ndarray:
        with torch.no_grad():
            image = model.decode(w, features, strength * model.editing_w[0:1])
        return to_uint8(image.clamp(-1, 1))[0].astype(int)

    stored = FrameDir(assets["workdir"] / "edit_edit_1.5_render" / "frames").read(0).astype(int)
    assert np.abs(stored - render(1.5)).max() <= 1
    assert np.abs(stored - render(-1.5)).mean() > 5 * max(np.abs(stored - render(1.5)).mean(), 0.1)


def test_edit_direction_files_and_keyframed_strength(assets, tmp_path):
    from ganvid.edit.keyframes import Strength
    from ganvid.errors import InputError
    from ganvid.pipeline.styleganex_video import (
        EditSpec,
        StyleganexVideoJob,
        StyleganexVideoOptions,
    )

    vector = np.random.default_rng(0).normal(size=(1, 32)).astype(np.float32)  # InterFaceGAN-like
    np.save(tmp_path / "boundary.npy", vector)

    def job(direction) -> StyleganexVideoJob:
        edit = EditSpec(Strength.parse("0s:0,0.2s:2"), direction)
        options = StyleganexVideoOptions(
            assets["clip"], str(assets["toonify"]), "t", workdir=assets["workdir"], edit=edit
        )
        return StyleganexVideoJob(options)

    rows = job(tmp_path / "boundary.npy").edit_vector()
    assert tuple(rows.shape) == (18, 32)
    np.testing.assert_array_equal(rows.numpy(), np.repeat(vector, 18, axis=0))
    # frames at 0, 40, ... 200 ms: strength ramps 0 -> 2 over the first 0.2 s
    np.testing.assert_allclose(job(vector).strengths(assets["workdir"]), np.linspace(0, 2, 6))
    with pytest.raises(InputError, match="shape"):
        job(np.ones(7)).edit_vector()
    with pytest.raises(InputError, match="no editing vector"):
        job(None).edit_vector()  # a toonify file stores no editing_w


# ----------------------------------------------------------------------------- pieces


def ramp_frame(width: int = 200, height: int = 120) -> np.ndarray:
    """uint8 frame whose channels are linear in x and y (bilinear sampling is exact on it)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    return np.stack([x, y * 1.5, 40 + 0.5 * x + 0.5 * y], axis=-1).astype(np.uint8)


@pytest.mark.parametrize("box", [(13.3, 7.6, 61.6, 53.9), (20.25, 4.5, 168.0, 105.0)])
def test_cut_window_samples_the_window_exactly(box):
    frame = ramp_frame()
    input_size = (56, 64)  # the first box is magnified, the second shrunk by about 2.6
    crop = cut_window(frame, np.array(box), input_size).astype(np.float64)
    x0, y0, w, h = box
    xs = x0 + (np.arange(input_size[1]) + 0.5) * w / input_size[1] - 0.5
    ys = y0 + (np.arange(input_size[0]) + 0.5) * h / input_size[0] - 0.5
    gx, gy = np.meshgrid(xs, ys)
    expected = np.stack([gx, gy * 1.5, 40 + 0.5 * gx + 0.5 * gy], axis=-1)
    assert np.abs(crop - expected).max() <= 1.6  # uint8 rounding of frame and crop


def test_crop_windows_use_one_size_per_clip_and_stay_in_the_frame():
    points = np.zeros((4, 68, 2))
    eyes = [(40, 30), (60, 30), (150, 70), (170, 70)]  # two shots, eye distance 20 px
    for k, (x, y) in enumerate(eyes):
        points[k, 36:42] = (x - 10, y)
        points[k, 42:48] = (x + 10, y)
    windows = crop_windows(points, np.array([0, 0, 1, 1]), np.ones(4, bool), (200, 100))
    # scale 64/20 = 3.2: width min(512, floor8(640)) = 512, height min(512, floor8(320)) = 320
    assert windows.input_size == (320, 512)
    np.testing.assert_allclose(windows.boxes[:, 2:], [[160.0, 100.0]] * 4)
    np.testing.assert_allclose(windows.boxes[:, :2], [[0, 0], [0, 0], [40, 0], [40, 0]])


def test_edit_with_the_parsing_mask_changes_only_pixels_inside_the_windows(assets, tmp_path):
    from ganvid.nn.face_parsing import BiSeNet
    from ganvid.weights import manifest, weights_dir

    torch.manual_seed(0)  # random weights in the published layout, where a download puts them
    parsing = weights_dir() / manifest().entry("styleganex-faceparsing").file
    parsing.parent.mkdir(parents=True, exist_ok=True)
    torch.save(BiSeNet().state_dict(), parsing)
    run = dict(
        strength=1.5,
        output=tmp_path / "parsing.mp4",
        workdir=assets["workdir"],
        device="cpu",
        crop=CropRule(eye_px=EYE_PX),
        preset="ultrafast",
        crf=0,  # lossless H.264: what the paste-back kept differs by colour conversion only
        wplus="smooth",
    )
    summary = styleganex_edit_video(assets["clip"], assets["edit"], mask="parsing", **run)
    _, source = decoded(assets["clip"])
    pts, images = decoded(summary.output)
    assert len(images) == FRAMES
    windows = load_windows(assets["workdir"])
    for k in range(FRAMES):
        x0, y0, w, h = windows.boxes[k]
        outside = np.ones(source[k].shape[:2], bool)
        outside[max(0, int(y0) - 4) : int(y0 + h) + 5, max(0, int(x0) - 4) : int(x0 + w) + 5] = 0
        diff = np.abs(images[k].astype(int) - source[k].astype(int)).max(axis=-1)
        assert diff[outside].max() <= 12 and diff[outside].mean() < 2.5  # colour conversion
        assert (diff[~outside] > 20).sum() > 50  # the edit shows inside the window
    # the mask is part of the render stage's key (renders are pasted back as they stream into
    # the segments): the hull renders and joins again, the w+ is reused
    stages = ("edit_edit_wplus", "edit_edit_1.5_render", "edit_edit_1.5_encode")
    manifests = {n: read_json(assets["workdir"] / f"{n}.json") for n in stages}
    styleganex_edit_video(assets["clip"], assets["edit"], mask="hull", **run)
    for name, before in manifests.items():
        after = read_json(assets["workdir"] / f"{name}.json")
        assert (after["key"] != before["key"]) == (name != "edit_edit_wplus")


def test_toonify_with_the_hull_mask_restyles_face_and_hair_only(assets, cli, tmp_path):
    output = tmp_path / "hull.mp4"
    code, _, err = cli(*toonify_args(assets, "--mask", "hull", "-o", output))
    assert code == 0, err
    _, source = decoded(assets["clip"])
    _, whole = decoded(assets["clip"].with_name("talk_toon_cartoon.mp4"))  # the default: full
    _, hull = decoded(output)
    for k in range(FRAMES):
        restyled = {
            name: (np.abs(video[k].astype(int) - source[k].astype(int)).max(-1) > 20).sum()
            for name, video in (("full", whole), ("hull", hull))
        }
        assert 50 < restyled["hull"] < 0.8 * restyled["full"]
