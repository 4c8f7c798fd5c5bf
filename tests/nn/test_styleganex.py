"""StyleGANEX / StyleGAN2 networks and their checkpoint loader (CPU, narrow networks)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from support.styleganex_fixtures import (
    EDIT_ROWS,
    TASKS,
    build_model,
    checkpoint_payload,
    published_opts,
    randomize_,
    write_checkpoint,
)

from ganvid.errors import CheckpointError, InputError, WeightsError
from ganvid.nn.stylegan2 import Generator, StyleGAN2Config, rosinality_channels
from ganvid.nn.styleganex import (
    EncoderConfig,
    FrameFeatures,
    StyleGANEX,
    StyleGANEXConfig,
    StyleGANEXGenerator,
    check_input_size,
    output_size,
    snap_size,
)
from ganvid.nn.styleganex_checkpoints import load_stylegan2, load_styleganex, styleganex_config
from ganvid.pipeline.styleganex_still import optimize_still
from ganvid.weights import resolve


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One narrow checkpoint per task, written in the published layout, with its source model."""
    root = tmp_path_factory.mktemp("styleganex")
    out = {}
    for seed, task in enumerate(TASKS):
        path = root / f"styleganex_{task}.pt"
        out[task] = (path, write_checkpoint(path, task, seed=seed))
    return out


@pytest.fixture(scope="module")
def models(files):
    """Each task's file loaded once (the networks are frozen: tests cannot change them)."""
    return {task: load_styleganex(path) for task, (path, _) in files.items()}


def _images(b: int, h: int, w: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, h, w, generator=gen) * 2 - 1


# -- layout of the published files (full size, built without memory on the meta device) ------


@pytest.mark.parametrize(
    ("task", "n_encoder", "n_decoder", "millions"),
    [("inversion", 625, 177, 300.72), ("toonify", 653, 177, 331.33), ("edit", 709, 177, 339.87)],
)
def test_full_size_layout_matches_published_key_counts(task, n_encoder, n_decoder, millions):
    switches = TASKS[task]
    with torch.device("meta"):
        model = StyleGANEX(StyleGANEXConfig(encoder=EncoderConfig(**switches)))
    state = model.state_dict()
    assert sum(k.startswith("encoder.") for k in state) == n_encoder
    assert sum(k.startswith("decoder.") for k in state) == n_decoder
    assert sum(v.numel() for v in state.values()) / 1e6 == pytest.approx(millions, abs=0.01)
    shapes = {k: list(v.shape) for k, v in state.items()}
    assert shapes["encoder.input_layer.0.weight"] == [64, 3, 3, 3]
    assert shapes["encoder.featlayer.weight"] == [512, 768, 1, 1]
    assert shapes["encoder.skiplayer.weight"] == [3, 768, 1, 1]
    assert shapes["encoder.latlayer1.weight"] == [512, 256, 1, 1]
    assert (
        "encoder.styles.2.convs.6.weight" in state
        and "encoder.styles.2.convs.8.weight" not in state
    )
    assert "encoder.styles.17.convs.10.weight" in state
    assert shapes["decoder.convs.8.conv.weight"] == [1, 256, 512, 3, 3]
    assert shapes["decoder.to_rgbs.7.conv.weight"] == [1, 3, 32, 1, 1]
    assert shapes["decoder.noises.noise_16"] == [1, 1, 1024, 1024]
    blur = sorted(k for k in state if k.endswith("blur_weight"))
    assert blur == [f"decoder.convs.{i}.conv.blur_weight" for i in (0, 2, 4)] + [
        f"decoder.to_rgbs.{i}.blur_weight" for i in (0, 1, 2)
    ]
    if switches["use_skip"]:
        assert shapes["encoder.fusion.0.fusion_out.weight"] == [512, 1024, 3, 3]
        assert shapes["encoder.fusion.4.transform.0.weight"] == [512, 128, 3, 3]
        assert shapes["encoder.fusion.5.transform.0.weight"] == [256, 64, 3, 3]
        assert shapes["encoder.fusion.6.transform.0.weight"] == [128, 64, 3, 3]
        assert not any("fusion_skip" in k for k in state)
    else:
        assert not any(k.startswith("encoder.fusion") for k in state)
    if switches["use_att"]:
        assert shapes["encoder.fusion.6.linear.0.weight"] == [128, 512]
        assert shapes["encoder.fusion.6.linear.2.weight"] == [128, 128]
        assert shapes["encoder.fusion.6.norm.style.weight"] == [512, 128]
        assert shapes["encoder.fusion.6.conv.weight"] == [1, 256, 3, 3]


def test_stock_stylegan2_layout_is_the_decoder_without_blur_constants():
    with torch.device("meta"):
        stock = Generator(StyleGAN2Config()).state_dict()
        ex = StyleGANEXGenerator(StyleGAN2Config()).state_dict()
    assert len(stock) == 171
    assert set(ex) - set(stock) == {k for k in ex if k.endswith("blur_weight")}
    assert all(list(stock[k].shape) == list(ex[k].shape) for k in stock)


# -- the StyleGAN2-equivalence property ------------------------------------------------------


def _small_pair(size: int = 64) -> tuple[Generator, StyleGANEXGenerator]:
    config = StyleGAN2Config(
        size=size, style_dim=16, n_mlp=2, channels=rosinality_channels(size, 2, 16, 512)
    )
    torch.manual_seed(3)
    plain = Generator(config)
    randomize_(plain, seed=4)
    ex = StyleGANEXGenerator(config)
    ex.load_state_dict(plain.state_dict(), strict=False)  # all but its blur constants
    return plain.double().eval(), ex.double().eval()


@pytest.mark.parametrize("noise_mode", ["none", "const"])
def test_styleganex_with_repeated_constant_is_stylegan2(noise_mode):
    plain, ex = _small_pair(64)
    ws = torch.randn(2, plain.config.n_latent, 16, dtype=torch.float64)
    with torch.no_grad():
        reference = plain(ws, noise_mode=noise_mode)
        f = F.interpolate(plain.input.input.expand(2, -1, -1, -1), scale_factor=8, mode="nearest")
        image = ex(ws, f, noise_mode=noise_mode)
        default = ex(ws, None, noise_mode=noise_mode)
    assert image.shape == reference.shape == (2, 3, 64, 64)
    assert reference.abs().max() > 0.5
    torch.testing.assert_close(image, reference, rtol=0, atol=1e-10)
    torch.testing.assert_close(default, reference, rtol=0, atol=1e-10)


def test_styleganex_renders_32x_any_f_size():
    _, ex = _small_pair(64)
    ws = torch.randn(1, ex.config.n_latent, 16, dtype=torch.float64)
    f = torch.randn(1, 16, 5, 3, dtype=torch.float64)
    with torch.no_grad():
        assert ex(ws, f).shape == (1, 3, 10, 6)  # 64 px decoder: image = 2x f


# -- stock StyleGAN2 g_ema files ---------------------------------------------------------------


def test_stock_g_ema_loads_into_stylegan2_and_styleganex(tmp_path):
    plain, _ = _small_pair(64)
    plain = plain.float()
    latent_avg = torch.randn(16)
    path = tmp_path / "stylegan2-ffhq-config-f.pt"
    torch.save({"g_ema": plain.state_dict(), "latent_avg": latent_avg}, path)
    g2, avg = load_stylegan2(path)
    gex, _ = load_stylegan2(path, styleganex=True)
    assert type(g2) is Generator and isinstance(gex, StyleGANEXGenerator)
    torch.testing.assert_close(avg, latent_avg)
    ws = torch.randn(1, plain.config.n_latent, 16)
    with torch.no_grad():
        expected = plain(ws, noise_mode="const")
        torch.testing.assert_close(g2(ws, noise_mode="const"), expected)
        torch.testing.assert_close(gex(ws, noise_mode="const"), expected, rtol=0, atol=1e-4)


def test_stock_g_ema_with_a_missing_key_is_refused_by_name(tmp_path):
    plain, _ = _small_pair(64)
    state = plain.state_dict()
    del state["convs.3.noise.weight"]
    state["convs.3.noise.weigth"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"convs\.3\.noise\.weight.*convs\.3\.noise\.weigth"):
        load_stylegan2(state, styleganex=True)


# -- StyleGANEX checkpoints -------------------------------------------------------------------


@pytest.mark.parametrize("task", list(TASKS))
def test_checkpoint_loads_strictly_and_reproduces_its_model(files, models, task):
    source, model = files[task][1], models[task]
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    torch.testing.assert_close(model.latent_avg, source.latent_avg)
    assert (model.editing_w is not None) == (task == "edit")
    crop, aligned = _images(1, 16, 24, seed=1), _images(1, 32, 32, seed=2)
    with torch.no_grad():
        out = model.run(crop, aligned)
        expected = source.run(crop, aligned)
    assert out.shape == (1, 3, 64, 96)
    torch.testing.assert_close(out, expected)
    assert out.abs().max() <= 1.0


@pytest.mark.parametrize(("h", "w"), [(64, 32), (32, 96), (40, 56)])
def test_toonify_runs_at_multiples_of_8(models, h, w):
    model = models["toonify"]
    crop, aligned = _images(2, h, w, seed=h + w), _images(1, 64, 64, seed=5)
    wplus, features = model.encode(crop, aligned)
    assert wplus.shape == (1, 18, 32) and features.f.shape == (2, 32, h // 8, w // 8)
    sides = [s.shape[-2:] for s in features.skips]
    assert sides == [(h // 8, w // 8)] * 4 + [(h // 4, w // 4), (h // 2, w // 2), (h, w)]
    with torch.no_grad():
        image = model.decode(wplus, features)
    assert image.shape == (2, 3, 4 * h, 4 * w) == (2, 3, *output_size(h, w))
    assert torch.isfinite(image).all() and not torch.equal(image[0], image[1])


def test_sizes_not_multiple_of_8_are_refused_with_the_snapped_size(models):
    model = models["inversion"]
    with pytest.raises(InputError, match="multiples of 8.*36x40.*Crop to 32x40"):
        model.encode_features(_images(1, 36, 40, seed=0))
    assert snap_size(70, 45) == (64, 40)
    with pytest.raises(InputError):
        snap_size(7, 100)
    check_input_size(40, 8)  # a multiple of 8 (not of 32) is fine


def test_skip_fusion_models_need_the_encoder_features(models):
    model = models["toonify"]
    wplus, features = model.encode(_images(1, 16, 16, seed=3), _images(1, 32, 32, seed=4))
    with pytest.raises(ValueError, match="FrameFeatures"):
        model.decode(wplus, features.f)
    with torch.no_grad():
        fused = model.decode(wplus, features)
        bare = model.decode(wplus, FrameFeatures(features.f, features.skips[:0]))
    assert (fused - bare).abs().max() > 1e-3  # the fusion layers do act


def test_inversion_model_takes_a_bare_f_and_a_single_image(models):
    model = models["inversion"]
    crop = _images(1, 32, 32, seed=6)
    wplus, features = model.encode(crop)
    assert features.skips is None
    with torch.no_grad():
        torch.testing.assert_close(model.decode(wplus, features.f), model.decode(wplus, features))


# -- editing vector ---------------------------------------------------------------------------


def test_editing_w_is_added_to_every_row_with_a_positive_sign(models):
    model = models["toonify"]  # no attention: the vector only shifts w+
    wplus, features = model.encode(_images(1, 16, 16, seed=7), _images(1, 32, 32, seed=8))
    v = torch.randn(1, 18, 32)
    with torch.no_grad():
        edited = model.decode(wplus, features, editing_w=v)
        shifted = model.decode(wplus + v, features)
        plain = model.decode(wplus, features)
    torch.testing.assert_close(edited, shifted)
    assert (edited - plain).abs().max() > 1e-3


def test_edit_checkpoint_applies_plus_scale_times_its_first_row(models):
    model = models["edit"]
    assert model.editing_w.shape == (EDIT_ROWS, 18, 32)
    crop, aligned = _images(1, 16, 16, seed=9), _images(1, 32, 32, seed=10)
    wplus, features = model.encode(crop, aligned)
    row0 = model.editing_w[0:1]
    with torch.no_grad():
        run = model.run(crop, aligned, scale=1.5)
        by_hand = model.decode(wplus, features, editing_w=1.5 * row0).clamp(-1, 1)
        negative = model.decode(wplus, features, editing_w=-1.5 * row0).clamp(-1, 1)
        zero_edit = model.decode(wplus, features, editing_w=torch.zeros(1, 18, 32))
        no_edit = model.decode(wplus, features)
    torch.testing.assert_close(run, by_hand)
    assert (run - negative).abs().max() > 1e-3
    # A zero vector still switches the fusion attention on: not the same as no edit.
    assert (zero_edit - no_edit).abs().max() > 1e-4


def test_toonify_run_is_the_unedited_decode_of_its_encodings(models):
    model = models["toonify"]
    with pytest.raises(InputError, match="no editing vector"):
        model.edit_vector(1.0)
    crop, aligned = _images(2, 16, 24, seed=11), _images(1, 32, 32, seed=12)
    with torch.no_grad():  # 'checkpoint' on a toonify file means: no edit
        run = model.run(crop, aligned)
        wplus, features = model.encode(crop, aligned)
        expected = model.decode(wplus, features, noise_mode="none").clamp(-1, 1)
    assert run.shape == (2, 3, 64, 96)
    torch.testing.assert_close(run, expected)


# -- refusals ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def toonify_payload():
    return checkpoint_payload(build_model("toonify", seed=20), "toonify", seed=20)


def _save(tmp_path, payload, name="styleganex_bad.pt"):
    path = tmp_path / name
    torch.save(payload, path)
    return path


def test_a_pickled_class_in_the_file_is_refused_by_name(tmp_path, toonify_payload):
    payload = dict(toonify_payload, opts=argparse.Namespace(**toonify_payload["opts"]))
    with pytest.raises(CheckpointError, match="argparse.Namespace"):
        load_styleganex(_save(tmp_path, payload))


def test_opts_must_hold_plain_values(tmp_path, toonify_payload):
    opts = dict(toonify_payload["opts"], exp_dir=torch.zeros(2))
    with pytest.raises(CheckpointError, match=r"exp_dir \(Tensor\)"):
        load_styleganex(_save(tmp_path, dict(toonify_payload, opts=opts)))


def test_missing_unexpected_and_misshaped_keys_are_named(tmp_path, toonify_payload):
    state = dict(toonify_payload["state_dict"])
    del state["encoder.featlayer.bias"]
    state["encoder.fusion.7.fusion_out.weight"] = torch.zeros(1)
    state["decoder.conv1.noise.weight"] = torch.zeros(2)
    with pytest.raises(CheckpointError) as caught:
        load_styleganex(_save(tmp_path, dict(toonify_payload, state_dict=state)))
    message = str(caught.value)
    assert "missing encoder.featlayer.bias" in message
    assert "unexpected encoder.fusion.7.fusion_out.weight" in message
    assert "decoder.conv1.noise.weight [2] != [1]" in message


def test_use_skip_mismatch_between_opts_and_weights_is_refused(tmp_path, toonify_payload):
    opts = dict(toonify_payload["opts"], use_skip=False)
    with pytest.raises(CheckpointError, match=r"unexpected encoder\.fusion\.0"):
        load_styleganex(_save(tmp_path, dict(toonify_payload, opts=opts)))


def test_unknown_top_level_entry_and_unsupported_options_are_refused(tmp_path, toonify_payload):
    with pytest.raises(CheckpointError, match="unknown entries optimizer"):
        load_styleganex(_save(tmp_path, dict(toonify_payload, optimizer={"lr": 1.0})))
    for change, reason in [({"input_nc": 1}, "sketch/mask"), ({"feat_ind": 1}, "feat_ind")]:
        opts = dict(toonify_payload["opts"], **change)
        with pytest.raises(CheckpointError, match=reason):
            load_styleganex(_save(tmp_path, dict(toonify_payload, opts=opts)))


def test_altered_blur_constant_is_refused(tmp_path, toonify_payload):
    state = dict(toonify_payload["state_dict"])
    state["decoder.convs.0.conv.blur_weight"] = torch.ones(1, 1, 3, 3)
    with pytest.raises(CheckpointError, match="blur filters differ.*convs.0.conv.blur_weight"):
        load_styleganex(_save(tmp_path, dict(toonify_payload, state_dict=state)))


# -- step II for still images -----------------------------------------------------------------


def test_optimize_still_lowers_the_loss_and_returns_a_renderable_inversion(models):
    from ganvid.nn.lpips import build_lpips

    model = models["inversion"]
    torch.manual_seed(0)  # the random LPIPS trunk
    distance = build_lpips("vgg", random_backbone=True)
    crop = _images(1, 16, 24, seed=13)
    seen = []
    result = optimize_still(
        model, crop, distance=distance, steps=4, seed=1, callback=lambda i, loss: seen.append(i)
    )
    assert seen == list(range(4)) and len(result.losses) == 4
    assert result.wplus.shape == (1, 18, 32) and result.f.shape == (1, 32, 2, 3)
    assert [tuple(n.shape[2:]) for n in result.noises[:9]] == [(2, 3)] * 7 + [(4, 6)] * 2
    assert result.image.shape == (1, 3, 64, 96)
    for noise in result.noises:
        assert abs(float(noise.mean())) < 1e-4 and abs(float(noise.std()) - 1) < 1e-4
    with torch.no_grad():
        again = model.decode(result.wplus, result.f, noises=result.noises).clamp(-1, 1)
        wplus, features = model.encode(crop)
        start = model.decode(wplus, features)
        before = distance(F.avg_pool2d(start, 4), crop)
        after = distance(F.avg_pool2d(result.image, 4), crop)
    torch.testing.assert_close(again, result.image)
    assert float(after) < float(before)


def test_the_loader_takes_a_file_and_names_a_missing_one(tmp_path):
    """Names are resolved by the caller (`ganvid.weights.resolve`, which says how to download
    them; see test_styleganex_video's missing-weights test); the loader reads files only."""
    with pytest.raises(CheckpointError, match="cartoon.pt does not exist"):
        load_styleganex(tmp_path / "cartoon.pt")
    with pytest.raises(WeightsError, match="styleganex-toonify-cartoon"):
        resolve("styleganex-toonify-cartoon")


@pytest.mark.parametrize("task", list(TASKS))
def test_full_size_layout_reads_back_as_the_published_config(task):
    switches = TASKS[task]
    expected = StyleGANEXConfig(encoder=EncoderConfig(**switches))
    with torch.device("meta"):
        state = StyleGANEX(expected).state_dict()
    assert styleganex_config(Path(f"{task}.pt"), published_opts(task), state) == expected
