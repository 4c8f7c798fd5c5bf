"""Loading StyleGAN3 generators from every published format, safely, and `ganvid render`."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from support.sg3_fixtures import (
    save_editing_pt,
    save_generator,
    save_nvidia_pickle,
    save_pti_state_dict,
    tiny_generator,
)

from ganvid.errors import CheckpointError
from ganvid.nn.checkpoints import generator_from_state_dict, infer_config, load_generator


def _render(G, seed: int = 7) -> torch.Tensor:
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return G(z, truncation_psi=0.8)


def _same_architecture(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(sa[k].shape == sb[k].shape for k in sa)


# ----------------------------------------------------------------------------- NVIDIA pickles


def test_nvidia_pickle_loads_without_running_module_src(tmp_path):
    G = tiny_generator("R", 16, channel_max=32)
    G_train = tiny_generator("R", 16, seed=3, channel_max=32)
    marker = tmp_path / "module_src_ran"
    path = save_nvidia_pickle(G, tmp_path / "network-snapshot.pkl", marker=marker, G_train=G_train)
    assert b"module_src was executed" in path.read_bytes()  # the trap really is in the file

    loaded = load_generator(path)
    assert not marker.exists()
    assert loaded.config == G.config  # rebuilt from the pickled init_kwargs
    assert torch.equal(_render(loaded), _render(G))
    assert torch.equal(_render(load_generator(path, which="G")), _render(G_train))
    assert not marker.exists()
    with pytest.raises(CheckpointError, match="no 'G_avg' network"):
        load_generator(path, which="G_avg")
    with pytest.raises(CheckpointError, match="Discriminator, not a Generator"):
        load_generator(path, which="D")


def _pickle_calling(module: str, name: str, argument: str) -> bytes:
    """A protocol-2 pickle {'G_ema': module.name(argument)} written opcode by opcode."""
    arg = argument.encode()
    call = b"c" + f"{module}\n{name}\n".encode() + b"X" + len(arg).to_bytes(4, "little") + arg
    return b"\x80\x02}X\x05\x00\x00\x00G_ema" + call + b"\x85R" + b"s."


@pytest.mark.parametrize("module, name", [("os", "system"), ("builtins", "eval")])
def test_pickle_naming_dangerous_globals_is_refused(tmp_path, module, name):
    marker = tmp_path / "pwned"
    code = f"touch {marker}" if name == "system" else f"open({str(marker)!r}, 'w')"
    path = tmp_path / "evil.pkl"
    path.write_bytes(_pickle_calling(module, name, code))
    with pytest.raises(CheckpointError, match=f"'{module}.{name}'"):
        load_generator(path)
    assert not marker.exists()


def test_torch_saved_module_is_refused_without_unpickling_code(tmp_path):
    path = tmp_path / "whole_module.pt"
    torch.save(tiny_generator("T", 16, channel_max=16), path)
    with pytest.raises(CheckpointError, match="ganvid.nn.stylegan3.Generator"):
        load_generator(path)


# ----------------------------------------------------------------------------- round trips


@pytest.fixture(scope="module")
def round_trip_reference():
    """A T generator with non-default widths and mapping depth, and its reference render."""
    G = tiny_generator("T", 16, channel_max=24, channel_base=700, mapping_layers=3)
    return G, _render(G)


@pytest.mark.parametrize("fmt", ["nvidia", "editing", "pti", "ganvid"])
def test_round_trip_in_each_format_is_bit_identical(tmp_path, fmt, round_trip_reference):
    G, reference = round_trip_reference
    path = tmp_path / f"generator.{fmt}"
    writers = {
        "nvidia": save_nvidia_pickle,
        "editing": save_editing_pt,
        "pti": save_pti_state_dict,
        "ganvid": save_generator,
    }
    writers[fmt](G, path)
    loaded = load_generator(path)
    assert _same_architecture(loaded, G)
    assert loaded.config.mapping_layers == 3
    assert torch.equal(loaded.synthesis.input.transform, torch.eye(3))  # PTI's batch dropped
    assert torch.equal(_render(loaded), reference)


def test_inferred_config_rebuilds_r_and_conditional_generators():
    for G in (
        tiny_generator("R", 32, channel_max=48),
        tiny_generator("T", 16, c_dim=3, channel_max=16, w_dim=24, z_dim=8),
    ):
        config = infer_config(G.state_dict())
        assert (config.name, config.c_dim, config.z_dim, config.w_dim) == (
            G.config.name,
            G.config.c_dim,
            G.config.z_dim,
            G.config.w_dim,
        )
        assert _same_architecture(generator_from_state_dict(G.state_dict()), G)


def test_prefixed_state_dict_as_in_restyle_checkpoints():
    G = tiny_generator("R", 16, channel_max=32)
    sd = {f"decoder.{k}": v for k, v in G.state_dict().items()}
    sd["encoder.input_layer.0.weight"] = torch.zeros(4, 6, 3, 3)
    del sd["decoder.synthesis.input.transform"]  # ReStyle loads the decoder without it
    assert torch.equal(_render(generator_from_state_dict(sd, prefix="decoder.")), _render(G))
    with pytest.raises(CheckpointError, match="prefix 'generator.'"):
        generator_from_state_dict(sd, prefix="generator.")


def test_missing_unexpected_and_misshaped_tensors_are_listed(tmp_path):
    G = tiny_generator("T", 16, channel_max=16)
    good = G.state_dict()
    layer = G.synthesis.layer_names[2]
    cases = {
        "missing": ({k: v for k, v in good.items() if k != f"synthesis.{layer}.bias"}, "bias"),
        "unexpected": ({**good, "synthesis.extra.weight": torch.zeros(1)}, "synthesis.extra"),
        "shape": ({**good, "synthesis.input.freqs": torch.zeros(3, 2)}, "input.freqs"),
    }
    for kind, (sd, named) in cases.items():
        path = tmp_path / f"{kind}.pt"
        torch.save(sd, path)
        with pytest.raises(CheckpointError, match=named):
            load_generator(path)


def test_unreadable_or_foreign_files_give_checkpoint_errors(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a network")
    other = tmp_path / "classifier.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    truncated = tmp_path / "truncated.pkl"
    save_nvidia_pickle(tiny_generator("T", 16, channel_max=16), truncated)
    truncated.write_bytes(truncated.read_bytes()[:5000])
    for path in (text, other, truncated):
        with pytest.raises(CheckpointError):
            load_generator(path)


# ----------------------------------------------------------------------------- ganvid render


def _read_png(path) -> np.ndarray:
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]


def test_render_writes_seed_and_latent_images(cli, tmp_path):
    G = tiny_generator("R", 16, channel_max=16)
    gen = tmp_path / "sg3.pkl"
    save_nvidia_pickle(G, gen)
    out = tmp_path / "out"
    code, _, err = cli("render", "-g", gen, "--seeds", "0-1,5", "--psi", "0.7", "-o", out)
    assert code == 0, err
    assert sorted(os.listdir(out)) == ["seed0000.png", "seed0001.png", "seed0005.png"]
    assert _read_png(out / "seed0005.png").shape == (16, 16, 3)

    # Latents with a 90-degree turn: the image of a rotated render is the rotated image.
    ws = G.mapping(torch.from_numpy(np.random.RandomState(0).randn(2, G.z_dim)))
    np.savez(tmp_path / "latents.npz", ws=ws.detach().numpy())
    code, _, err = cli("render", "-g", gen, "--ws", tmp_path / "latents.npz", "-o", out)
    assert code == 0, err
    code, _, err = cli(
        "render", "-g", gen, "--ws", tmp_path / "latents.npz", "--rotate", "90", "-o", tmp_path
    )
    assert code == 0, err
    upright, turned = _read_png(out / "ws0001.png"), _read_png(tmp_path / "ws0001.png")
    diff = np.abs(np.rot90(upright, 1).astype(int) - turned.astype(int))
    assert diff.max() <= 1  # config R turns exactly; uint8 rounding at most

    code, _, err = cli("render", "-g", tmp_path / "missing.pkl", "-o", out)
    assert code != 0 and "missing.pkl" in err and "Traceback" not in err
    code, _, err = cli("render", "-g", gen, "--seeds", "3-1", "-o", out)
    assert code != 0 and "--seeds" in err


def test_generator_loads_from_a_restyle_checkpoint_with_pathlib_opts(tmp_path):
    """`--generator restyle_e4e_ffhq.pt` reads its decoder; opts hold pathlib paths."""
    from support.restyle_fixtures import save_restyle_checkpoint, tiny_restyle_encoder

    G = tiny_generator("T", 16, channel_max=16)
    encoder = tiny_restyle_encoder("e4e", G)
    path = save_restyle_checkpoint(tmp_path / "restyle.pt", "e4e", encoder, G)
    loaded = load_generator(path)
    ws = G.mapping(torch.randn(1, G.z_dim))
    with torch.no_grad():
        torch.testing.assert_close(loaded.synthesis(ws), G.synthesis(ws), rtol=0, atol=0)
