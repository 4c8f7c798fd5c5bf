"""`ganvid invert-image --backend styleganex` on a photo of the astronaut's face, with a narrow
random StyleGANEX inversion checkpoint and a random VGG16 trunk for LPIPS (published layouts)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from support.face_clips import astronaut
from support.styleganex_fixtures import write_checkpoint

from ganvid.nn.styleganex_checkpoints import load_styleganex
from ganvid.pipeline.styleganex_still import fixed_noises, read_still_inversion

#: A tight photo of the face (190 px, eyes ~43 px apart): at --eye-px 8 the crop is 32x32.
FACE_BOX = (130, 25, 190)
EYE_PX = "8"
CROP = 32
STEPS = 4


#: torchvision's VGG16 `features`: conv widths, "M" = max-pool (a layer without weights).
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)


def random_vgg16_features(seed: int) -> dict[str, torch.Tensor]:
    """A random VGG16 trunk in torchvision's state-dict layout (`features.N.weight/bias`, each
    conv followed by a ReLU), He-scaled, standing in for vgg16-397923af.pth; built directly, since
    torchvision.models.vgg16() also initialises the 120 M-parameter classifier."""
    gen = torch.Generator().manual_seed(seed)
    state, index, channels = {}, 0, 3
    for layer in VGG16_LAYERS:
        if layer == "M":
            index += 1
            continue
        std = (2.0 / (9 * channels)) ** 0.5
        state[f"features.{index}.weight"] = std * torch.randn(layer, channels, 3, 3, generator=gen)
        state[f"features.{index}.bias"] = torch.zeros(layer)
        index, channels = index + 2, layer
    return state


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("still")
    x0, y0, side = FACE_BOX
    photo = root / "face.png"
    cv2.imwrite(str(photo), np.ascontiguousarray(astronaut()[y0 : y0 + side, x0 : x0 + side, ::-1]))
    checkpoint = root / "styleganex_inversion.pt"
    write_checkpoint(checkpoint, "inversion", seed=3)
    trunk = root / "vgg16.pth"
    torch.save(random_vgg16_features(seed=1), trunk)
    return {"photo": photo, "checkpoint": checkpoint, "trunk": trunk, "root": root}


def invert(cli, assets, out, *extra: str):
    return cli(
        "invert-image", assets["photo"], "--backend", "styleganex", "--checkpoint",
        assets["checkpoint"], "--eye-px", EYE_PX, "--device", "cpu", "-o", out, *extra,
    )  # fmt: skip


def png(path) -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1])


def test_step_two_writes_the_inversion_and_beats_the_encoder(cli, assets, tmp_path):
    code, _, err = invert(cli, assets, tmp_path, "--steps", str(STEPS), "--lpips", assets["trunk"])
    assert code == 0, err
    with np.load(tmp_path / "face_styleganex.npz") as data:
        saved = {key: data[key] for key in data.files}
    wplus, f, noises = read_still_inversion(tmp_path / "face_styleganex.npz")
    assert wplus.shape == (1, 18, 32) and f.shape == (1, 32, CROP // 8, CROP // 8)
    assert len(noises) == 17 and noises[-1].shape == (1, 1, 4 * CROP, 4 * CROP)
    assert saved["losses"].shape == (STEPS,)
    assert float(saved["lpips"]) < float(saved["lpips_encoder"])  # step II improves on step I
    assert f"LPIPS {float(saved['lpips']):.4f}" in err
    assert png(tmp_path / "face_styleganex_crop.png").shape == (CROP, CROP, 3)
    assert png(tmp_path / "face_styleganex_aligned.png").shape == (256, 256, 3)
    render = png(tmp_path / "face_styleganex_reconstruction.png")
    assert render.shape == (4 * CROP, 4 * CROP, 3)
    # the npz alone re-renders the PNG
    model = load_styleganex(assets["checkpoint"])
    with torch.no_grad():
        image = model.decode(
            torch.tensor(wplus), torch.tensor(f), noises=[torch.tensor(n) for n in noises]
        )
    again = ((image.clamp(-1, 1)[0].permute(1, 2, 0) + 1) * 127.5).round().numpy()
    assert np.abs(again - render.astype(np.float64)).max() <= 1
    x0, y0, w, h = saved["crop_box"]
    assert 0 <= x0 and 0 <= y0 and x0 + w <= FACE_BOX[2] + 1e-6 and y0 + h <= FACE_BOX[2] + 1e-6


def test_zero_steps_is_the_encoder_alone_and_needs_no_lpips(cli, assets, tmp_path):
    code, _, err = invert(cli, assets, tmp_path, "--steps", "0")  # lpips-vgg is not downloaded
    assert code == 0, err
    assert "step I only" in err
    with np.load(tmp_path / "face_styleganex.npz") as data:
        assert data["losses"].shape == (0,) and np.isnan(data["lpips"])
        np.testing.assert_array_equal(data["wplus"], data["wplus_encoder"])
    model = load_styleganex(assets["checkpoint"])
    crop = torch.tensor(png(tmp_path / "face_styleganex_crop.png")).permute(2, 0, 1)[None]
    aligned = torch.tensor(png(tmp_path / "face_styleganex_aligned.png")).permute(2, 0, 1)[None]
    with torch.no_grad():
        wplus, features = model.encode(crop / 127.5 - 1, aligned / 127.5 - 1)
        image = model.decode(wplus, features, noise_mode="const")
        noises = fixed_noises(model, tuple(features.f.shape[2:]))
        torch.testing.assert_close(model.decode(wplus, features, noises=noises), image)
    _, f, saved_noises = read_still_inversion(tmp_path / "face_styleganex.npz")
    torch.testing.assert_close(torch.tensor(f), features.f, atol=1e-5, rtol=1e-5)
    for saved, noise in zip(saved_noises, noises, strict=True):
        torch.testing.assert_close(torch.tensor(saved), noise)


def test_missing_weights_is_one_line_naming_the_download(cli, assets, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # no torch hub copy of VGG16
    args = ("invert-image", assets["photo"], "--backend", "styleganex", "-o", tmp_path / "out")
    code, out, err = cli(*args)
    assert code == 5
    assert len(err.strip().splitlines()) == 1
    assert "ganvid weights download styleganex-inversion lpips-vgg" in err
    code, _, err = cli(*args, "--steps", "0")  # the encoder alone needs only the checkpoint
    assert code == 5 and "ganvid weights download styleganex-inversion" in err
    assert "lpips-vgg" not in err
    code, _, err = cli(*args, "--checkpoint", assets["checkpoint"])
    assert code == 5 and "ganvid weights download lpips-vgg" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (("--backend", "styleganex", "--method", "optimize"), "--method"),
        (("--backend", "styleganex", "--no-align"), "--no-align"),
        (("--eye-px", "16"), "--eye-px"),
        (("--steps", "0"), "--steps 0"),
        (("--backend", "stylegan9"), "--backend"),
    ],
)
def test_options_of_the_other_backend_are_refused(cli, assets, tmp_path, extra, named):
    code, _, err = cli("invert-image", assets["photo"], "-o", tmp_path, *extra)
    assert code == 2 and named in err and len(err.strip().splitlines()) == 1
    assert not any(tmp_path.iterdir())


def test_a_photo_without_a_face_says_so(cli, assets, tmp_path):
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), np.full((64, 64, 3), 128, np.uint8))
    code, _, err = invert(cli, {**assets, "photo": blank}, tmp_path / "out", "--steps", "0")
    assert code == 4 and "no face found" in err
