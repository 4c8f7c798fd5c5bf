"""`ganvid edit` and `ganvid expand-fov` over one tiny inverted work dir (12 frames, frame 6 has
no face), plus the pipeline-level paste-back checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.face_clips import moving_clip
from support.pipeline_fixtures import invert_args, tiny_assets, video_frames
from support.videos import audio_packets

from ganvid.pipeline.workdir import FrameDir, read_json

FRAMES = 12
FACELESS = 6
FPS = 25


@pytest.fixture(scope="module")
def inverted(tmp_path_factory) -> dict:
    """One inversion for the module: PTI runs a step at a high rate, so the tuned generator
    differs from the pretrained one (an edit that used the wrong one would show)."""
    from ganvid.cli import run

    root = tmp_path_factory.mktemp("edit")
    clip = moving_clip(n_frames=FRAMES, size=(160, 128), blank=(FACELESS,), noise=2.0)
    assets = tiny_assets(root, clip.frames)
    clip_path = root / "talk.mp4"
    clip_path.write_bytes(assets["clip"].read_bytes())
    workdir = root / "talk.ganvid"
    args = ["--pti-steps", "1", "--pti-lr", "1e-2", "-o", str(root / "inv.mp4")]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GANVID_HOME", str(root / "home"))
        assert run(invert_args(assets, clip_path, workdir, *args)) == 0
    return {"clip": clip_path, "workdir": workdir, "root": root}


def _edit(inverted, *args: str) -> list[str]:
    return ["edit", str(inverted["clip"]), "--device", "cpu", "--preset", "ultrafast", *args]


def _direction(shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _install_boundary(name: str, vector: np.ndarray) -> None:
    """Put a published boundary where the weights manager keeps it (this test's GANVID_HOME)."""
    from ganvid.weights import local_path

    path = local_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vector)


def _frames(directory: Path) -> list[np.ndarray]:
    return [FrameDir(directory).read(i) for i in range(FRAMES)]


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("ganvid:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_strength_zero_reproduces_the_inversion_and_keeps_pts_and_sound(inverted, cli):
    _install_boundary("interfacegan-ffhq-age", _direction((1, 32), 0))
    code, _, err = cli(*_edit(inverted, "--direction", "age:0"))
    assert code == 0, err
    work = inverted["workdir"]
    np.testing.assert_array_equal(
        np.load(work / "edits/age0/latents/ws_smooth.npy"), np.load(work / "smooth/ws.npy")
    )
    for edited, inverted_frame in zip(
        _frames(work / "edits/age0/render/frames"), _frames(work / "render/frames"), strict=True
    ):
        np.testing.assert_array_equal(edited, inverted_frame)
    output = inverted["clip"].with_name("talk_age0.mp4")
    source_pts, source = video_frames(inverted["clip"])
    pts, images = video_frames(output)
    assert pts == source_pts and len(images) == FRAMES
    assert images[0].shape == source[0].shape  # pasted back at the input's size
    assert audio_packets(output) == audio_packets(inverted["clip"])

    finished = read_json(work / "edits/age0/render.json")["finished"]
    code, _, err = cli(*_edit(inverted, "--direction", "age:0"))
    assert code == 0 and err.count("cached") == 3
    assert read_json(work / "edits/age0/render.json")["finished"] == finished


def test_stored_ws_is_inversion_plus_keyed_strength_times_direction_on_chosen_layers(
    inverted, cli, tmp_path
):
    num_ws = np.load(inverted["workdir"] / "invert/ws.npy").shape[1]
    direction = _direction((num_ws, 32), 1)
    np.save(tmp_path / "mine.npy", direction)
    keys = "0s:0,0.2s:2,0.36s:-1"
    args = ["--file", str(tmp_path / "mine.npy"), "--strength", keys, "--layers", "1-2"]
    code, _, err = cli(*_edit(inverted, *args, "--no-paste-back"))
    assert code == 0, err
    folder = inverted["workdir"] / "edits" / "mine_keyed_l1-2" / "latents"
    raw = np.load(inverted["workdir"] / "invert/ws.npy")
    edited = np.load(folder / "ws.npy")

    times = np.arange(FRAMES) / FPS
    strength = np.interp(times, [0, 0.2, 0.36], [0, 2, -1])  # held at -1 after 0.36 s
    assert strength[5] == 2 and strength[2] == pytest.approx(0.8) and strength[-1] == -1
    np.testing.assert_allclose(
        read_json(folder / "strengths.json")["directions"][0]["strength"], strength, atol=1e-12
    )
    others = [layer for layer in range(num_ws) if layer not in (1, 2)]
    np.testing.assert_array_equal(edited[:, others], raw[:, others])
    expected = raw[:, 1:3] + strength[:, None, None] * direction[None, 1:3]
    np.testing.assert_allclose(edited[:, 1:3], expected, rtol=0, atol=1e-5)

    # the inversion's smoothing, applied to the edited latents
    from ganvid.pipeline.smoothing import smooth_ws_file

    smooth_ws_file(folder / "ws.npy", tmp_path / "again.npy", np.zeros(FRAMES, int))
    np.testing.assert_array_equal(
        np.load(tmp_path / "again.npy"), np.load(folder / "ws_smooth.npy")
    )
    pts, images = video_frames(inverted["clip"].with_name("talk_mine_keyed_l1-2.mp4"))
    assert len(pts) == FRAMES and images[0].shape == (32, 32, 3)  # the crop render


@pytest.mark.parametrize(
    ("array", "message"),
    [(np.zeros((3, 32), np.float32), "shape"), (np.full((1, 32), np.nan, np.float32), "NaN")],
)
def test_bad_direction_files_are_refused_in_one_line(inverted, cli, tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    code, _, err = cli(*_edit(inverted, "--file", str(tmp_path / "bad.npy")))
    assert code == 2 and message in _error_line(err)


def test_edit_without_an_inversion_says_to_invert_first(inverted, cli, tmp_path, monkeypatch):
    clip = tmp_path / "new.mp4"
    clip.write_bytes(inverted["clip"].read_bytes())
    code, _, err = cli("edit", str(clip), "--direction", "age:1")
    assert code == 7 and f"ganvid invert {clip}" in _error_line(err)
    monkeypatch.chdir(tmp_path)  # no CLIP, no work dir here
    code, _, err = cli("edit", "--direction", "age:1")
    assert code == 7 and "ganvid invert CLIP" in _error_line(err)


def test_edit_finds_the_only_work_dir_and_previews(inverted, cli, monkeypatch):
    _install_boundary("interfacegan-ffhq-smile", _direction((1, 32), 2))
    monkeypatch.chdir(inverted["root"])
    code, out, err = cli("edit", "-d", "smile:2", "--preview", "3", "--device", "cpu")
    assert code == 0, err
    import cv2

    sheet = cv2.imread(str(inverted["root"] / "talk_smile2_preview.png"))
    assert sheet.shape == (2 * 32 + 4, 2 * 64 + 4, 3)  # 3 tiles of input | edited, 2 x 2 grid
    assert not (inverted["workdir"] / "edits/smile2/render.json").exists()  # no full render

    code, out, err = cli("edit", "--list")
    assert code == 0, err
    listed = {line.split()[0]: line for line in out.splitlines()[1:5]}
    assert "present" in listed["smile"] and "missing" in listed["pose"]
    assert "ganvid weights download interfacegan-ffhq-pose" in listed["pose"]


def test_style_edit_changes_the_render_and_zero_does_not(inverted, cli):
    from ganvid.nn.checkpoints import load_generator

    generator = load_generator(read_json(inverted["workdir"] / "inversion.json")["generator"])
    layer = generator.synthesis.layer_names[1]
    work = inverted["workdir"]
    plain = _frames(work / "render/frames")
    for strength, same in (("0", True), ("0s:0,0.44s:40", False)):
        code, _, err = cli(*_edit(inverted, "--style", f"{layer}:3:{strength}", "--no-paste-back"))
        assert code == 0, err
        tag = f"{layer}.3_{'keyed' if not same else strength}"
        edited = _frames(work / "edits" / tag / "render/frames")
        assert np.array_equal(edited[0], plain[0])  # strength 0 at t = 0 in both
        assert np.array_equal(edited[-1], plain[-1]) == same
    code, _, err = cli(*_edit(inverted, "--style", "nolayer:3"))
    assert code == 2 and "layers are" in _error_line(err)


def test_fov_zero_is_the_plain_render_and_expansion_grows_the_frame(inverted, cli):
    work = inverted["workdir"]
    code, _, err = cli("expand-fov", str(inverted["clip"]), "--device", "cpu")
    assert code == 0, err
    for fov, plain in zip(
        _frames(work / "fov/inverted_l0r0t0b0w2/render/frames"),
        _frames(work / "render/frames"),
        strict=True,
    ):
        np.testing.assert_array_equal(fov, plain)

    code, _, err = cli(
        "expand-fov",
        str(inverted["clip"]),
        "--left",
        "8",
        "--top",
        "6",
        "--device",
        "cpu",
        "--preset",
        "ultrafast",
    )
    assert code == 0, err
    expanded = _frames(work / "fov/inverted_l8r0t6b0w2/render/frames")
    assert expanded[0].shape == (6 + 32, 8 + 32, 3)
    for fov, plain in zip(expanded, _frames(work / "render/frames"), strict=True):
        centre = fov[6 + 2 :, 8 + 2 :].astype(int)  # beyond the 2-px blend band
        assert np.abs(centre - plain[2:, 2:]).max() <= 1
    output = inverted["clip"].with_name("talk_fov.mp4")
    source_pts, _ = video_frames(inverted["clip"])
    pts, images = video_frames(output)
    assert pts == source_pts and images[0].shape == (38, 40, 3)
    assert audio_packets(output) == audio_packets(inverted["clip"])


def test_paste_back_changes_only_the_face_and_passes_faceless_frames(inverted):
    from ganvid.face.align import frame_to_quad_matrix
    from ganvid.pipeline.compose import ComposeSources, composed_frames

    work = inverted["workdir"]
    sources = ComposeSources(inverted["clip"], work, FrameDir(work / "render/frames"))
    records = sources.records()
    assert not records[FACELESS].detected
    seen = []
    for composed in composed_frames(sources, {"frame", "sbs_frame"}):
        seen.append(composed.index)
        source, pasted = np.split(composed.images["sbs_frame"], 2, axis=1)
        assert pasted.shape == source.shape == (128, 160, 3)
        np.testing.assert_array_equal(composed.images["frame"], pasted)
        if composed.index == FACELESS:
            np.testing.assert_array_equal(pasted, source)
            continue
        changed = np.any(pasted != source, axis=-1)
        assert changed.sum() > 100
        # every changed pixel lies inside the crop the render came from
        to_crop = frame_to_quad_matrix(records[composed.index].unaligned_quad, 32)
        ys, xs = np.nonzero(changed)
        u = to_crop[0, 0] * xs + to_crop[0, 1] * ys + to_crop[0, 2]
        v = to_crop[1, 0] * xs + to_crop[1, 1] * ys + to_crop[1, 2]
        assert u.min() > -1 and v.min() > -1 and u.max() < 32 and v.max() < 32
    assert seen == list(range(FRAMES))


def test_styleganex_backend_names_its_model_and_refuses_what_it_cannot_do(inverted, cli):
    clip = str(inverted["clip"])
    code, _, err = cli("edit", clip, "--backend", "styleganex", "-d", "hair:2", "--device", "cpu")
    assert code == 5 and "ganvid weights download styleganex-edit-hair" in _error_line(err)
    code, _, err = cli("edit", clip, "--backend", "styleganex", "--style", "L0:1")
    assert code == 2 and "--style" in _error_line(err)
    code, _, err = cli("edit", clip, "--backend", "styleganex", "-d", "smile")
    assert code == 2 and "age or hair" in _error_line(err)
    code, out, _ = cli("edit", "--help")
    assert "scale_factor" in " ".join(out.split())  # the sign convention is documented


# ----------------------------------------------------------------------------- Image2StyleGAN


def _clip_coder(inverted):
    """The codes `ganvid edit --style-from / --expression` makes: the inversion's encoder and
    its untuned generator, photos aligned like invert-image."""
    import torch

    from ganvid.pipeline.photo import CoderOptions, PhotoCoder

    assets = inverted["root"]
    options = CoderOptions(encoder=str(assets / "encoder.pt"), generator=str(assets / "g.pt"))
    return PhotoCoder(options, torch.device("cpu"))


def _astronaut_png(path: Path, gain: float = 1.0) -> Path:
    import cv2
    from support.face_clips import astronaut

    image = np.clip(astronaut().astype(np.float32) * gain, 0, 255).astype(np.uint8)
    assert cv2.imwrite(str(path), image[:, :, ::-1])
    return path


def test_style_from_crossover_on_the_clip_replaces_chosen_layers_and_zero_is_identity(
    inverted, cli, tmp_path
):
    work, ref = inverted["workdir"], _astronaut_png(tmp_path / "ref.png", 0.7)
    code, _, err = cli(*_edit(inverted, "--style-from", ref, "--layers", "1-2", "-s", "0"))
    assert code == 0, err
    folder = work / "edits" / "style-ref0_l1-2"
    np.testing.assert_array_equal(
        np.load(folder / "latents/ws_smooth.npy"), np.load(work / "smooth/ws.npy")
    )
    for edited, inverted_frame in zip(
        _frames(folder / "render/frames"), _frames(work / "render/frames"), strict=True
    ):
        np.testing.assert_array_equal(edited, inverted_frame)

    keys = "0s:0,0.2s:1"
    code, _, err = cli(*_edit(inverted, "--style-from", ref, "--layers", "fine", "-s", keys))
    assert code == 0, err
    style = _clip_coder(inverted).codes([ref])[0].ws
    raw = np.load(work / "invert/ws.npy")
    edited = np.load(work / "edits/style-ref_keyed_lfine/latents/ws.npy")
    strength = np.interp(np.arange(FRAMES) / FPS, [0, 0.2], [0, 1])
    np.testing.assert_array_equal(edited[:, :3], raw[:, :3])  # 6 layers: fine = 3-5
    expected = raw[:, 3:] + strength[:, None, None] * (style[None, 3:] - raw[:, 3:])
    np.testing.assert_allclose(edited[:, 3:], expected, atol=1e-5)
    np.testing.assert_array_equal(edited[-1, 3:], np.broadcast_to(style[3:], (3, 32)))
    pts, _ = video_frames(inverted["clip"].with_name("talk_style-ref_keyed_lfine.mp4"))
    assert pts == video_frames(inverted["clip"])[0] and audio_packets(
        inverted["clip"].with_name("talk_style-ref_keyed_lfine.mp4")
    )

    code, _, err = cli(*_edit(inverted, "--style-from", ref, "--layers", "4-6"))
    assert code == 2 and "0-5" in _error_line(err)
    code, _, err = cli(*_edit(inverted, "--style-from", tmp_path / "nobody.png"))
    assert code == 2 and "no such file" in _error_line(err)


def test_expression_on_the_clip_adds_the_keyed_difference_and_refuses_other_generators(
    inverted, cli, tmp_path
):
    neutral = _astronaut_png(tmp_path / "neutral.png")
    smile = _astronaut_png(tmp_path / "smile.png", 1.3)
    keys = "0s:0,0.2s:2"
    code, _, err = cli(*_edit(inverted, "--expression", neutral, smile, "-s", keys))
    assert code == 0, err
    code_n, code_s = _clip_coder(inverted).codes([neutral, smile])
    raw = np.load(inverted["workdir"] / "invert/ws.npy")
    edited = np.load(inverted["workdir"] / "edits/expr-neutral-smile_keyed/latents/ws.npy")
    strength = np.interp(np.arange(FRAMES) / FPS, [0, 0.2], [0, 2])
    expected = raw + strength[:, None, None] * (code_s.ws - code_n.ws)[None]
    np.testing.assert_allclose(edited, expected, atol=1e-5)
    np.testing.assert_array_equal(edited[0], raw[0])  # strength 0
    code, _, err = cli(*_edit(inverted, "--expression", neutral, smile, "--preview", "2"))
    assert code == 0, err
    assert (inverted["root"] / "talk_expr-neutral-smile1_preview.png").is_file()

    stored = {"ws": code_n.ws, "generator": np.array(str(tmp_path / "other.pt"))}
    np.savez(tmp_path / "neutral.npz", **stored)
    code, _, err = cli(*_edit(inverted, "--expression", tmp_path / "neutral.npz", smile))
    assert code == 2 and "other.pt" in _error_line(err)
