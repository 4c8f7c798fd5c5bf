"""StyleMapGAN: published layout, safe loading, and the official editing rules on small masks."""

from __future__ import annotations

import argparse
import os
import pathlib

import pytest
import torch
from support.stylemapgan_fixtures import tiny_config, tiny_networks, write_checkpoint

from ganvid.edit import stylemap as ops
from ganvid.errors import CheckpointError
from ganvid.nn.stylegan2 import rosinality_channels
from ganvid.nn.stylemapgan import Encoder, Generator, StyleMapGANConfig
from ganvid.nn.stylemapgan_checkpoints import load_stylemapgan

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- published layout


@pytest.mark.parametrize(
    "size, spatial, small, g_count, g_values, e_count, e_values",
    [
        (256, 8, False, 133, 79_744_563, 39, 17_617_760),
        (1024, 16, True, 153, 21_243_907, 46, 12_784_416),
    ],
)
def test_published_configs_have_the_published_tensors(
    size, spatial, small, g_count, g_values, e_count, e_values
):
    config = StyleMapGANConfig(
        size=size, latent_spatial=spatial, small_generator=small, channels=rosinality_channels(size)
    )
    with torch.device("meta"):
        g, e = Generator(config), Encoder(config)
    g_sd, e_sd = g.state_dict(), e.state_dict()
    assert (len(g_sd), sum(v.numel() for v in g_sd.values())) == (g_count, g_values)
    assert (len(e_sd), sum(v.numel() for v in e_sd.values())) == (e_count, e_values)
    code = 64 if small else 512
    assert g_sd["mapping_z.8.weight"].shape == (64 * spatial**2, 64)
    assert g_sd["decoder.input.input"].shape == (1, 512, spatial, spatial)
    assert g_sd["decoder.conv1.conv.weight"].shape == (1, 512, 512, 3, 3)
    assert g_sd["decoder.conv1.conv.gamma.weight"].shape == (512, code, 3, 3)
    assert g_sd["decoder.convs.0.skip.1.kernel"].shape == (4, 4)
    assert e_sd["final_conv.0.weight"].shape == (64, 512, 3, 3)
    assert (
        list(g_sd)[0].startswith("mapping_z.") and list(g_sd)[-1] == "decoder.to_rgb.activate.bias"
    )
    if size == 256:
        assert g_sd["decoder.to_rgb.conv.weight"].shape == (1, 3, 128, 1, 1)
        assert g_sd["decoder.convs_latent.10.1.kernel"].shape == (4, 4)
        assert g_sd["decoder.convs_latent.10.0.weight"].shape == (128, 256, 3, 3)
        assert e_sd["convs.0.conv2.1.weight"].shape == (256, 128, 3, 3)


def test_layer_codes_have_the_table_shapes():
    config = StyleMapGANConfig(channels=rosinality_channels(256))
    with torch.device("meta"):
        g = Generator(config)
        codes = g.layer_codes(torch.empty(2, 64, 8, 8))
    expected = [(512, 8)] * 2 + [(512, 16)] * 2 + [(512, 32)] * 2 + [(512, 64)] * 2
    expected += [(256, 128)] * 2 + [(128, 256)] * 2
    assert [(c.shape[0], c.shape[1], c.shape[2], c.shape[3]) for c in codes] == [
        (2, ch, r, r) for ch, r in expected
    ]


def test_images_do_not_depend_on_the_batch_and_have_no_noise():
    g, e = tiny_networks(3)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        stylemaps = e(x)
        together = g(stylemaps)
        alone = torch.cat([g(s[None]) for s in stylemaps])
        again = g(stylemaps)
    assert torch.equal(together, again)  # deterministic: no noise inputs anywhere
    assert torch.allclose(together, alone, atol=1e-5)
    assert together.shape == (3, 3, 32, 32) and together.std() > 0.1


# ----------------------------------------------------------------------------- loader


@pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "zip"])
@pytest.mark.parametrize("full", [True, False], ids=["training-dict", "three-keys"])
def test_loads_published_files_strictly(tmp_path, legacy, full):
    path = write_checkpoint(tmp_path / "ckpt.pt", seed=5, full=full, legacy=legacy)
    assert (path.read_bytes()[:2] == b"PK") is (not legacy)
    with pytest.raises(RuntimeError, match="CUDA"):  # the storages really are tagged cuda:0
        torch.load(path, weights_only=False)
    model = load_stylemapgan(path)
    g, e = tiny_networks(5)
    for loaded, built in ((model.generator, g), (model.encoder, e)):
        for (k, a), (k2, b) in zip(
            loaded.state_dict().items(), built.state_dict().items(), strict=True
        ):
            assert k == k2 and torch.equal(a, b)
    assert model.config == tiny_config() and model.dataset == "celeba_hq"
    assert not model.generator.training and not any(
        p.requires_grad for p in model.encoder.parameters()
    )


def test_light_generator_files_load_with_64_channel_codes(tmp_path):
    config = tiny_config(small_generator=True)
    path = write_checkpoint(tmp_path / "light.pt", config=config, dataset="ffhq")
    model = load_stylemapgan(path)
    assert model.config.small_generator and model.dataset == "ffhq"
    with torch.no_grad():
        codes = model.generator.layer_codes(torch.randn(1, 8, 4, 4))
    assert [tuple(c.shape[1:]) for c in codes] == [(64, r, r) for r in (4, 4, 8, 8, 16, 16, 32, 32)]


def test_non_ema_copies_are_never_used(tmp_path):
    # training copies with the wrong shapes: reading them would fail, and the EMA weights win
    broken = {"generator": {"mapping_z.1.weight": torch.zeros(1)}, "encoder": {"x": torch.zeros(2)}}
    path = write_checkpoint(tmp_path / "ckpt.pt", seed=1, full=True)
    payload = torch.load(path, map_location="cpu", weights_only=False)  # our own file
    payload.update(broken)
    torch.save(payload, path, _use_new_zipfile_serialization=False)
    model = load_stylemapgan(path)
    g_ema, _ = tiny_networks(1)
    x = torch.randn(1, 8, 4, 4)
    with torch.no_grad():
        assert torch.equal(model.generator(x), g_ema(x))


@pytest.mark.parametrize(
    "intruder",
    [os.system, pathlib.PurePosixPath("/tmp/x"), argparse.ArgumentParser],
    ids=["function", "pathlib", "class"],
)
def test_unexpected_globals_are_refused(tmp_path, intruder):
    path = write_checkpoint(tmp_path / "evil.pt", cuda_tags=False, extra={"extra": intruder})
    with pytest.raises(CheckpointError, match="refusing to load .*argparse.Namespace"):
        load_stylemapgan(path)


def test_mismatched_keys_are_named(tmp_path):
    path = write_checkpoint(tmp_path / "ckpt.pt", cuda_tags=False)
    payload = torch.load(path, weights_only=False)  # our own file
    del payload["g_ema"]["decoder.conv1.conv.gamma.bias"]
    payload["e_ema"]["extra.weight"] = torch.zeros(1)
    payload["e_ema"]["final_conv.1.bias"] = torch.zeros(3)
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"missing g_ema\.decoder\.conv1\.conv\.gamma\.bias"):
        load_stylemapgan(path)
    del payload["g_ema"]
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="no g_ema"):
        load_stylemapgan(path)


def test_unsupported_normalisation_is_a_checkpoint_error(tmp_path):
    path = write_checkpoint(tmp_path / "ckpt.pt", cuda_tags=False)
    payload = torch.load(path, weights_only=False)  # our own file
    payload["train_args"].normalize_mode = "BatchNorm2d"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="normalize_mode 'BatchNorm2d'"):
        load_stylemapgan(path)


# ----------------------------------------------------------------------------- pooling rules


def _mask(size: int, cells: list[tuple[int, int, int, int]]) -> torch.Tensor:
    """Binary [1, 1, size, size] with rectangles (y0, y1, x0, x1) set."""
    mask = torch.zeros(1, 1, size, size)
    for y0, y1, x0, x1 in cells:
        mask[..., y0:y1, x0:x1] = 1.0
    return mask


def test_max_rule_selects_any_touched_cell_of_the_union():
    source = _mask(8, [(0, 1, 0, 1)])  # one pixel in cell (0, 0) of a 2x2 grid
    reference = _mask(8, [(7, 8, 7, 8)])  # one pixel in cell (1, 1)
    union = ops.union_mask(source, reference)
    assert set(union.unique().tolist()) == {-2.0, 0.0}
    cells = ops.max_pool_select(union, 2)[0, 0]
    assert cells.tolist() == [[True, False], [False, True]]
    # a pixel in both masks (+2) counts the same; the source alone also counts
    assert ops.max_pool_select(ops.union_mask(source, source), 2)[0, 0].tolist() == [
        [True, False],
        [False, False],
    ]


def test_average_rule_needs_a_strict_majority():
    half = _mask(8, [(0, 4, 0, 2)])  # exactly half of cell (0, 0)
    more = _mask(8, [(0, 4, 0, 3), (4, 5, 4, 5)])  # 12/16 of cell (0, 0), 1/16 of cell (1, 1)
    assert not ops.average_pool_select(half, 2).any()
    assert ops.average_pool_select(more, 2)[0, 0].tolist() == [[True, False], [False, False]]
    # the max rule on the same region takes both touched cells
    assert ops.max_pool_select(ops.signed_mask(more), 2)[0, 0].tolist() == [
        [True, False],
        [False, True],
    ]


def test_demo_shift_truncates_toward_zero_and_drops_cells():
    mask = _mask(64, [(0, 64, 0, 32)])  # the left half: at 2x2 cells (0,0) and (1,0)
    cells = ops.shifted_cells(mask, 2, (-21, 0))  # int(-21/32) = 0, not -1
    assert cells.dst_x.tolist() == [0, 0]
    cells = ops.shifted_cells(mask, 2, (40, -40))  # +1 cell right, -1 cell up: row 0 drops
    assert (cells.src_y.tolist(), cells.src_x.tolist()) == ([1], [0])
    assert (cells.dst_y.tolist(), cells.dst_x.tolist()) == ([0], [1])
    cells = ops.shifted_cells(mask, 4, (-21, 0))  # at 4x4, ratio 16: int(-21/16) = -1
    assert sorted(set(cells.src_x.tolist())) == [1] and set(cells.dst_x.tolist()) == {0}


def test_demo_transition_goes_from_original_to_full_paste():
    original = [torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 4, 4)]
    reference = [torch.ones(1, 2, 2, 2), torch.ones(1, 2, 4, 4)]
    second = [torch.full((1, 2, 2, 2), 5.0), torch.full((1, 2, 4, 4), 5.0)]
    masks = torch.cat([_mask(8, [(0, 8, 0, 4)]), _mask(8, [(0, 8, 2, 6)])])
    frames = ops.demo_transition(original, [reference, second], masks, [(0, 0), (0, 0)], steps=5)
    assert frames[0].shape == (5, 2, 2, 2)
    assert torch.equal(frames[0][0], original[0][0]) and torch.equal(frames[1][0], original[1][0])
    last = frames[1][-1, 0]  # 4x4 cells of 2 px: ref 1 on columns 0-1, ref 2 on 1-2 (wins)
    assert last[0].tolist() == [1.0, 5.0, 5.0, 0.0]
    assert frames[1][2, 0, 0].tolist() == [0.5, 2.75, 2.5, 0.0]  # w = 2/4, applied in order
    # at 2x2, ref 2 covers half of each cell: not selected; ref 1 covers column 0 fully
    assert frames[0][-1, 0, 0].tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="at least 2"):
        ops.demo_transition(original, [reference], masks[:1], [(0, 0)], steps=1)


def test_transplant_boxes_copy_blocks_in_order():
    source, reference = torch.zeros(1, 3, 4, 4), torch.arange(48.0).reshape(1, 3, 4, 4)
    out = ops.transplant_boxes(source, reference, [ops.Box(0, 0, 2, 2, 2, 2)])
    assert torch.equal(out[..., :2, :2], reference[..., 2:, 2:]) and out[..., 2:, :].eq(0).all()
    with pytest.raises(ValueError, match="does not fit"):
        ops.transplant_boxes(source, reference, [ops.Box(3, 3, 0, 0, 2, 2)])


def test_style_mix_and_interpolation_follow_the_official_order():
    a, b = [torch.zeros(1)] * 4, [torch.ones(1)] * 4
    assert [float(c) for c in ops.style_mix(a, b, "coarse")] == [0, 0, 1, 1]
    assert [float(c) for c in ops.style_mix(a, b, "fine")] == [1, 1, 0, 0]
    assert float(ops.interpolate(torch.tensor(2.0), torch.tensor(10.0), 0.75)) == 4.0


def test_semantic_edit_local_box():
    stylemap = torch.zeros(1, 2, 4, 4)
    direction = torch.ones(32)
    out = ops.semantic_edit(stylemap, direction, -3.0, box=(1, 1, 2, 2))
    assert out[0, :, 1:3, 1:3].eq(-3).all() and out.sum() == -3 * 2 * 4


# ----------------------------------------------------------------------------- edits on the network


def test_empty_mask_is_the_reconstruction_and_full_mask_the_reference():
    from ganvid.pipeline.stylemapgan import local_edit, render

    g, e = tiny_networks(2)
    from ganvid.nn.stylemapgan_checkpoints import StyleMapGAN

    model = StyleMapGAN(g.config, g, e, {})
    with torch.no_grad():
        src, ref = e(torch.rand(2, 3, 32, 32) * 2 - 1).split(1)
    empty = ops.union_mask(torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 32, 32))
    full = ops.union_mask(torch.ones(1, 1, 32, 32), torch.zeros(1, 1, 32, 32))
    with torch.no_grad():
        recon, reference = g(src), g(ref)
        codes = ops.blend_layer_codes(g.layer_codes(src), g.layer_codes(ref), empty)
        assert torch.equal(g.synthesis(codes), recon)
        codes = ops.blend_layer_codes(g.layer_codes(src), g.layer_codes(ref), full)
        assert torch.equal(g.synthesis(codes), reference)
        codes = ops.blend_layer_codes(g.layer_codes(src), g.layer_codes(ref), full, 0.0)
        assert torch.equal(g.synthesis(codes), recon)
    assert (local_edit(model, src, ref, empty, 0.3) == render(model, src)).all()
    # a nose-sized region: each code takes the reference exactly on the touched cells only
    part = ops.union_mask(_mask(32, [(12, 20, 12, 20)]), torch.zeros(1, 1, 32, 32))
    with torch.no_grad():
        src_codes, ref_codes = g.layer_codes(src), g.layer_codes(ref)
    for s, r, b in zip(
        src_codes, ref_codes, ops.blend_layer_codes(src_codes, ref_codes, part), strict=True
    ):
        ratio = 32 // s.shape[-1]
        lo, hi = 12 // ratio, (20 + ratio - 1) // ratio
        inside = torch.zeros_like(s, dtype=torch.bool)
        inside[..., lo:hi, lo:hi] = True
        assert torch.equal(b[inside], r[inside]) and torch.equal(b[~inside], s[~inside])


def _model(seed: int = 2, dataset: str = "celeba_hq"):
    from ganvid.nn.stylemapgan_checkpoints import StyleMapGAN

    g, e = tiny_networks(seed)
    return StyleMapGAN(g.config, g, e, {"dataset": dataset})


def _faces(count: int, seed: int = 0) -> list:
    import numpy as np

    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(count)]


def test_truncation_zero_gives_the_mean_for_every_seed():
    from ganvid.pipeline.stylemapgan import generate

    model = _model()
    free, mean = generate(model, 3, seed=1, psi=1.0), generate(model, 3, seed=1, psi=0.0)
    assert (mean == mean[0]).all()  # every z lands on the mean stylemap
    assert not (free == free[0]).all()
    with torch.no_grad():
        centre = model.generator.mean_stylemap(n=64, batch=16, generator=torch.Generator())
    assert centre.shape == (1, 8, 4, 4)


def test_afhq_models_blend_the_stylemap_itself():
    from ganvid.pipeline.stylemapgan import local_edit

    source, reference = torch.randn(1, 8, 4, 4), torch.randn(1, 8, 4, 4)
    right = ops.half_mask(32, "right")
    assert ops.max_pool_select(right, 4)[0, 0, :, 2:].all()
    assert not ops.max_pool_select(right, 4)[0, 0, :, :2].any()
    afhq, celeba = _model(dataset="afhq"), _model(dataset="celeba_hq")
    blended = ops.blend_stylemap(source, reference, right)
    assert torch.equal(blended[..., 2:], reference[..., 2:])
    assert torch.equal(blended[..., :2], source[..., :2])
    with torch.no_grad():
        expected = afhq.generator(blended)
    from ganvid.pipeline.render import to_uint8

    assert (local_edit(afhq, source, reference, right) == to_uint8(expected.clamp(-1, 1))).all()
    assert not (
        local_edit(celeba, source, reference, right) == local_edit(afhq, source, reference, right)
    ).all()


def test_demo_edit_and_transplant_on_the_network():
    from ganvid.pipeline.stylemapgan import demo_edit, reconstruct, transplant

    model = _model()
    original, reference = _faces(2)
    mask = torch.ones(1, 1, 32, 32)
    frames = demo_edit(model, original, [reference], mask, [(0, 0)], steps=3)
    assert frames.shape == (3, 32, 32, 3)
    assert (frames[0] == reconstruct(model, [original])[0]).all()
    assert (frames[-1] == reconstruct(model, [reference])[0]).all()
    whole = transplant(model, original, reference, [ops.Box(0, 0, 0, 0, 4, 4)])
    assert (whole == reconstruct(model, [reference])[0]).all()


def test_semantic_manipulation_reads_a_direction_file(tmp_path):
    import numpy as np

    from ganvid.errors import InputError
    from ganvid.pipeline.stylemapgan import load_direction, reconstruct, semantic_manipulation

    model = _model()
    np.save(tmp_path / "smile.npy", np.ones((1, 128), np.float32) / np.sqrt(128))
    direction = load_direction(tmp_path / "smile.npy", model)
    face = _faces(1)[0]
    images = semantic_manipulation(model, face, direction, [0.0, -20.0], box=(0, 0, 2, 2))
    assert (images[0] == reconstruct(model, [face])[0]).all() and not (images[1] == images[0]).all()
    np.save(tmp_path / "wrong.npy", np.ones(4096, np.float32))
    with pytest.raises(InputError, match="128 finite values, not 4096"):
        load_direction(tmp_path / "wrong.npy", model)
