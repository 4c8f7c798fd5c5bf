"""Image2StyleGAN's operations on photos (`ganvid morph`, `edit-image`, `expression-direction`)
with a tiny 16-ws generator and a ReStyle file in the published layout that holds it."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from support.pipeline_fixtures import video_frames
from support.restyle_fixtures import save_restyle_checkpoint, tiny_restyle_encoder
from support.sg3_fixtures import save_generator, tiny_generator

from ganvid.edit.directions import layer_group, parse_layers
from ganvid.edit.image2stylegan import (
    Crossover,
    apply_crossovers,
    ease,
    expression_direction,
    morph_schedule,
    morph_ws,
)
from ganvid.edit.keyframes import Strength
from ganvid.errors import InputError, NoFaceError
from ganvid.pipeline.photo import CoderOptions, PhotoCoder, generator_source
from ganvid.pipeline.render import RenderJob, render_frames

pytestmark = pytest.mark.usefixtures("one_thread")
NUM_WS, W_DIM = 16, 32


@pytest.fixture(scope="module")
def nets(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("i2s")
    G = tiny_generator("R", res=16, seed=3, channel_base=256, channel_max=16)
    encoder = tiny_restyle_encoder("e4e", G, input_size=32, seed=1)
    return {
        "G": G,
        "encoder": save_restyle_checkpoint(root / "encoder.pt", "e4e", encoder, G),
        "generator": _saved(G, root / "g.pt"),
        "root": root,
    }


def _saved(G, path: Path) -> Path:
    save_generator(G, path)
    return path


def _png(path: Path, seed: int, size: int = 16) -> Path:
    rgb = (np.random.default_rng(seed).random((size, size, 3)) * 255).astype(np.uint8)
    assert cv2.imwrite(str(path), rgb[:, :, ::-1])
    return path


def _read_png(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]


def _coder(nets, **changes) -> PhotoCoder:
    options = CoderOptions(encoder=str(nets["encoder"]), align=False, **changes)
    return PhotoCoder(options, torch.device("cpu"))


def _one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("ganvid:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _opts(nets) -> list[str]:
    return ["--encoder", str(nets["encoder"]), "--no-align", "--device", "cpu"]


def _render(G, ws: np.ndarray, transform: np.ndarray | None = None) -> np.ndarray:
    transform = np.eye(3, dtype=np.float32) if transform is None else transform
    job = RenderJob(ws[None], transform[None])
    return next(render_frames(G, job, torch.device("cpu"), 1))[1]


# ----------------------------------------------------------------------------- arithmetic


def test_schedule_holds_both_ends_and_eases_from_exactly_zero_to_one():
    lams = morph_schedule(5, hold_frames=2, easing="ease-in-out")
    assert len(lams) == 9 and list(lams[:3]) == [0, 0, 0] and list(lams[-3:]) == [1, 1, 1]
    assert np.all(np.diff(lams) >= 0) and 0 < lams[4] < 1
    for name in ("linear", "ease-in", "ease-out", "ease-in-out"):
        assert ease(name, np.array([0.0, 1.0])).tolist() == [0.0, 1.0]
    assert ease("ease-in", np.array([0.5]))[0] < 0.5 < ease("ease-out", np.array([0.5]))[0]
    with pytest.raises(InputError, match="easing"):
        morph_schedule(3, easing="bounce")


def test_morph_endpoints_are_the_codes_bit_for_bit():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, NUM_WS, W_DIM)).astype(np.float32)
    ws = morph_ws(a, b, np.array([0.0, 0.25, 1.0]))
    assert np.array_equal(ws[0], a) and np.array_equal(ws[2], b)
    np.testing.assert_allclose(ws[1], 0.75 * a + 0.25 * b, rtol=1e-6)


def test_crossover_moves_only_the_chosen_layers_and_zero_is_the_identity():
    rng = np.random.default_rng(1)
    ws = torch.tensor(rng.normal(size=(4, NUM_WS, W_DIM)), dtype=torch.float32)
    style = rng.normal(size=(NUM_WS, W_DIM)).astype(np.float32)
    keyed = Strength.parse("0s:0,3s:1")  # frames at 0, 1, 2, 3 s
    out = apply_crossovers(ws, [Crossover("s", style, (8, 9, 15), keyed)], np.arange(4.0))
    untouched = [i for i in range(NUM_WS) if i not in (8, 9, 15)]
    assert torch.equal(out[:, untouched], ws[:, untouched])
    assert torch.equal(out[0], ws[0])  # strength 0: the identity
    assert torch.equal(out[3, [8, 9, 15]], torch.tensor(style[[8, 9, 15]]))  # 1: replaced
    want = ws[1, 8] + (torch.tensor(style[8]) - ws[1, 8]) / 3
    torch.testing.assert_close(out[1, 8], want)


def test_layer_names_and_ranges_are_checked_against_the_generator():
    assert list(layer_group("coarse", 18)) == [0, 1, 2, 3]
    assert list(layer_group("fine", 18)) == list(range(8, 18))
    groups = [list(layer_group(name, 16)) for name in ("coarse", "middle", "fine")]
    assert sum(groups, []) == list(range(16))  # a partition, in order
    assert parse_layers("coarse,15", 16) == (0, 1, 2, 3, 15)
    with pytest.raises(InputError, match="16"):
        parse_layers("8-16", 16)


def test_expression_direction_is_the_difference_of_the_codes():
    rng = np.random.default_rng(2)
    neutral, smile = rng.normal(size=(2, NUM_WS, W_DIM)).astype(np.float32)
    assert np.array_equal(expression_direction(neutral, smile), smile - neutral)
    with pytest.raises(InputError, match="same generator"):
        expression_direction(neutral, smile[:8])


# ----------------------------------------------------------------------------- morph


def test_morph_frames_start_and_end_on_the_two_renders_bit_for_bit(nets, tmp_path):
    from ganvid.pipeline.image_ops import MorphOptions, plan_morph

    coder = _coder(nets)
    a, b = coder.codes([_png(tmp_path / "a.png", 1), _png(tmp_path / "b.png", 2)])
    b.transform = np.linalg.inv(  # an unaligned render: turned and shifted
        np.array([[0.98, 0.2, 0.1], [-0.2, 0.98, -0.05], [0, 0, 1]], np.float32)
    ).astype(np.float32)
    options = MorphOptions(a.source, b.source, frames=5, fps=10, hold_s=0.2)
    plan = plan_morph(a, b, options)
    assert len(plan.lams) == 9
    job = RenderJob(plan.ws, plan.transforms)
    frames = [image for _, image in render_frames(coder.generator, job, torch.device("cpu"), 4)]
    want_a, want_b = _render(coder.generator, a.ws), _render(coder.generator, b.ws, b.transform)
    for k in (0, 1, 2):
        assert np.array_equal(frames[k], want_a)
    for k in (6, 7, 8):
        assert np.array_equal(frames[k], want_b)
    assert not np.array_equal(frames[4], want_a) and not np.array_equal(frames[4], want_b)
    # the transform moves between the two: halfway the shift is about half of b's
    middle = np.linalg.inv(plan.transforms[4])
    assert 0.03 < middle[0, 2] < 0.07


def test_morph_command_writes_the_asked_frames_and_timestamps(nets, cli, tmp_path):
    a, b = _png(tmp_path / "a.png", 1), _png(tmp_path / "b.png", 2)
    out = tmp_path / "m.mp4"
    code, _, err = cli(
        "morph", a, b, "--frames", "6", "--fps", "10", "--hold", "0.2", "--easing",
        "ease-in-out", "--preset", "ultrafast", "-o", out, *_opts(nets),
    )  # fmt: skip
    assert code == 0, err
    pts, images = video_frames(out)
    assert len(images) == 6 + 2 * 2 and images[0].shape == (16, 16, 3)
    import av

    with av.open(str(out)) as container:
        base = container.streams.video[0].time_base
    np.testing.assert_allclose([float(p * base) for p in pts], np.arange(10) / 10, atol=1e-3)
    code, _, err = cli("morph", a, b, "--preview", "3", "-o", out, *_opts(nets))
    assert code == 0, err
    sheet = _read_png(tmp_path / "m_preview.png")
    assert sheet.shape == (16 * 2 + 4, 16 * 2 + 4, 3)


def test_morph_of_two_inversions_with_different_generators_is_refused(nets, cli, tmp_path):
    a, b = _png(tmp_path / "a.png", 1), _png(tmp_path / "b.png", 2)
    for photo in (a, b):
        code, _, err = cli("invert-image", photo, *_opts(nets), "-o", tmp_path / "inv")
        assert code == 0, err
    saved = np.load(tmp_path / "inv" / "a.npz")
    assert str(saved["generator"]) == generator_source(nets["encoder"], None)
    other = dict(np.load(tmp_path / "inv" / "b.npz"))
    other["generator"] = np.array(str(nets["generator"]))
    np.savez(tmp_path / "inv" / "b_other.npz", **other)
    code, _, err = cli("morph", tmp_path / "inv/a.npz", tmp_path / "inv/b_other.npz", *_opts(nets))
    assert code == InputError.exit_code and "different generators" in _one_error(err)
    # the two stored inversions of one generator morph, and frame 0 is a's reconstruction
    out = tmp_path / "ab.mp4"
    code, _, err = cli("morph", tmp_path / "inv/a.npz", tmp_path / "inv/b.npz", "--frames", "2",
                       "--preset", "ultrafast", "-o", out, *_opts(nets))  # fmt: skip
    assert code == 0, err
    assert len(video_frames(out)[1]) == 2


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: [d / "missing.png", _png(d / "b.png", 2)], "no such image"),
        (lambda d: [_png(d / "a.png", 1), d / "gone.npz"], "no such inversion"),
    ],
)
def test_a_missing_photo_is_one_line(nets, cli, tmp_path, make, message):
    first, second = make(tmp_path)
    code, _, err = cli("morph", first, second, *_opts(nets))
    assert code == InputError.exit_code and message in _one_error(err)


def test_a_photo_without_a_face_is_one_line(nets, cli, tmp_path):
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((64, 64, 3), 128, np.uint8))
    code, _, err = cli(
        "edit-image", _png(tmp_path / "a.png", 1), "--style-from", wall,
        "--encoder", nets["encoder"], "--device", "cpu",
    )  # fmt: skip
    assert code == NoFaceError.exit_code and "no face" in _one_error(err)


# ----------------------------------------------------------------------------- edit-image


def test_crossover_on_a_photo_replaces_only_the_chosen_layers(nets, cli, tmp_path):
    a, ref = _png(tmp_path / "a.png", 1), _png(tmp_path / "ref.png", 3)
    code_a, code_ref = _coder(nets).codes([a, ref])
    code, _, err = cli(
        "edit-image", a, "--style-from", ref, "--layers", "8-15", "-o", tmp_path / "x.png",
        *_opts(nets),
    )  # fmt: skip
    assert code == 0, err
    ws = np.load(tmp_path / "x.npz")["ws"]
    assert np.array_equal(ws[8:], code_ref.ws[8:]) and np.array_equal(ws[:8], code_a.ws[:8])
    assert np.array_equal(_read_png(tmp_path / "x.png"), _render(nets["G"], ws))

    code, _, err = cli("edit-image", a, "--style-from", ref, "--strength", "0", "-o",
                       tmp_path / "zero.png", *_opts(nets))  # fmt: skip
    assert code == 0, err
    assert np.array_equal(np.load(tmp_path / "zero.npz")["ws"], code_a.ws)
    assert np.array_equal(_read_png(tmp_path / "zero.png"), _render(nets["G"], code_a.ws))

    code, _, err = cli("edit-image", a, "--style-from", ref, "--layers", "12-16", *_opts(nets))
    assert code == InputError.exit_code and "0-15" in _one_error(err)
    code, _, err = cli("edit-image", a, "--style-from", ref, "--strength", "0s:0,1s:1",
                       *_opts(nets))  # fmt: skip
    assert code == InputError.exit_code and "keyframes" in _one_error(err)


def test_crossover_preview_shows_the_photo_then_growing_strengths(nets, cli, tmp_path):
    a, ref = _png(tmp_path / "a.png", 1), _png(tmp_path / "ref.png", 3)
    code, _, err = cli("edit-image", a, "--style-from", ref, "--layers", "fine", "--preview",
                       "3", "-o", tmp_path / "p.png", *_opts(nets))  # fmt: skip
    assert code == 0, err
    sheet = _read_png(tmp_path / "p_preview.png")
    assert sheet.shape == (16 * 2 + 4, 16 * 2 + 4, 3) and not (tmp_path / "p.png").exists()
    code_a = _coder(nets).codes([a])[0]
    assert np.array_equal(sheet[:16, :16], code_a.aligned)  # the photo first
    assert np.array_equal(sheet[:16, 20:], _render(nets["G"], code_a.ws))  # strength 0


def test_expression_direction_file_and_its_transfer(nets, cli, tmp_path):
    neutral, smile = _png(tmp_path / "n.png", 4), _png(tmp_path / "s.png", 5)
    target = _png(tmp_path / "t.png", 6)
    code_n, code_s, code_t = _coder(nets).codes([neutral, smile, target])
    code, _, err = cli("expression-direction", neutral, smile, "-o", tmp_path / "smile.npy",
                       "--preview", "2", *_opts(nets))  # fmt: skip
    assert code == 0, err
    direction = np.load(tmp_path / "smile.npy")
    assert np.array_equal(direction, code_s.ws - code_n.ws)
    sheet = _read_png(tmp_path / "smile_preview.png")  # neutral | neutral + 1 x direction
    assert np.array_equal(sheet[:, :16], _render(nets["G"], code_n.ws))
    np.testing.assert_allclose(sheet[:, 20:], _render(nets["G"], code_s.ws), atol=2)

    code, _, err = cli("edit-image", target, "--file", tmp_path / "smile.npy", "--strength", "0",
                       "-o", tmp_path / "t0.png", *_opts(nets))  # fmt: skip
    assert code == 0, err
    assert np.array_equal(np.load(tmp_path / "t0.npz")["ws"], code_t.ws)

    code, _, err = cli("edit-image", target, "--expression", neutral, smile, "--strength", "0.5",
                       "-o", tmp_path / "t5.png", *_opts(nets))  # fmt: skip
    assert code == 0, err
    np.testing.assert_allclose(
        np.load(tmp_path / "t5.npz")["ws"], code_t.ws + 0.5 * direction, rtol=1e-6, atol=1e-6
    )
    code, _, err = cli("expression-direction", neutral, tmp_path / "nope.png", *_opts(nets))
    assert code == InputError.exit_code and "no such image" in _one_error(err)
