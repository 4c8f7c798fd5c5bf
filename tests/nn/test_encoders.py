"""ReStyle encoders: published checkpoint layout, safe loading, batched iterative inversion,
and a real learning signal through the refinement loop."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
from support.restyle_fixtures import (
    published_layout_encoder,
    restyle_payload,
    save_alexnet_trunk,
    save_restyle_checkpoint,
    tiny_restyle_encoder,
)
from support.sg3_fixtures import save_editing_pt, tiny_generator

from ganvid.errors import CheckpointError, NoFaceError
from ganvid.nn.encoders import ReStyleEncoderConfig, ReStyleInverter, build_encoder
from ganvid.nn.irse50 import INPUT_TAP, IRSE50
from ganvid.nn.restyle_checkpoints import load_restyle
from ganvid.nn.sg3_transforms import input_transforms

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks


@pytest.fixture(scope="module")
def G16():
    """14-layer (16 ws) SG3-R at 16 px: the decoder layout of the published files, tiny."""
    return tiny_generator("R", res=16, seed=3, channel_base=256, channel_max=16)


@pytest.fixture(scope="module")
def checkpoints(G16, tmp_path_factory):
    """Published-layout e4e and pSp files (narrow widths) and the encoders written into them."""
    folder = tmp_path_factory.mktemp("restyle")
    out = {}
    for seed, kind in enumerate(("e4e", "psp")):
        encoder = published_layout_encoder(kind, G16, seed=seed)
        path = save_restyle_checkpoint(folder / f"restyle_{kind}.pt", kind, encoder, G16)
        out[kind] = (path, encoder)
    return out


def test_full_size_encoder_has_the_published_keys_and_shapes():
    with torch.device("meta"):
        encoder = build_encoder(ReStyleEncoderConfig(kind="e4e"))
    state = encoder.state_dict()
    params = sum(p.numel() for p in encoder.parameters())
    assert len(state) == 545 and params == 186_182_016
    assert state["input_layer.0.weight"].shape == (64, 6, 3, 3)
    assert state["body.7.shortcut_layer.0.weight"].shape == (256, 128, 1, 1)
    assert "body.0.shortcut_layer.0.weight" not in state  # 64 -> 64: subsampling shortcut
    assert state["body.23.res_layer.5.fc1.weight"].shape == (32, 512, 1, 1)
    assert state["styles.15.convs.6.weight"].shape == (512, 512, 3, 3)
    assert state["styles.15.linear.weight"].shape == (512, 512)


def test_irse50_taps_give_the_stage_outputs_that_styleganex_needs():
    backbone = IRSE50(3, widths=(16, 32, 48, 64)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        taps = backbone.features(x, [INPUT_TAP, 2, 6, 10, 15, 20, 23])
        final = backbone(x)
    sizes = [(t.shape[1], t.shape[2]) for t in taps]
    assert sizes == [(16, 64), (16, 32), (32, 16), (48, 8), (48, 8), (48, 8), (64, 4)]
    assert torch.equal(taps[-1], final)
    assert backbone.stage_ends == (2, 6, 20, 23)


def test_e4e_adds_head_deltas_to_head_zero_while_psp_uses_each_head():
    G = tiny_generator("R", res=16, num_layers=4, channel_max=32)
    e4e = tiny_restyle_encoder("e4e", G).eval()
    psp = tiny_restyle_encoder("psp", G).eval()
    psp.load_state_dict(e4e.state_dict())
    x = torch.randn(2, 6, 32, 32)
    with torch.no_grad():
        ws_e4e, ws_psp = e4e(x), psp(x)
    assert ws_e4e.shape == ws_psp.shape == (2, G.num_ws, G.w_dim)
    torch.testing.assert_close(ws_e4e[:, 0], ws_psp[:, 0])
    torch.testing.assert_close(ws_e4e[:, 1:], ws_psp[:, 1:] + ws_psp[:, :1])


@pytest.mark.parametrize("kind", ["e4e", "psp"])
def test_published_layout_checkpoint_loads_and_inverts(checkpoints, G16, kind):
    path, written = checkpoints[kind]
    ckpt = load_restyle(path)
    assert ckpt.kind == kind and ckpt.n_iters == 3
    assert str(ckpt.opts["stylegan_weights"]) == "pretrained_models/sg3-r-ffhq-1024.pt"
    torch.testing.assert_close(ckpt.latent_avg, G16.mapping.w_avg)
    for key, value in written.state_dict().items():
        assert torch.equal(ckpt.encoder.state_dict()[key], value), key
    for key, value in G16.state_dict().items():
        assert torch.equal(ckpt.generator.state_dict()[key], value), key
    assert ckpt.generator.synthesis.input.transform.shape == (3, 3)  # batched buffer dropped

    images = torch.rand(2, 3, 16, 16) * 2 - 1
    result = ckpt.inverter(n_iters=2).invert(images, keep_steps=True)
    assert result.ws.shape == (2, 16, G16.w_dim) and torch.isfinite(result.ws).all()
    assert result.images.shape == (2, 3, 16, 16)
    assert len(result.ws_steps) == len(result.images_steps) == 2
    # The encoder output is a residual on top of latent_avg, and the second step refines it.
    assert not torch.allclose(result.ws_steps[0], result.ws_steps[1])


def test_batched_inversion_matches_one_frame_at_a_time(checkpoints):
    ckpt = load_restyle(checkpoints["e4e"][0])
    inverter = ckpt.inverter(n_iters=2)
    images = torch.rand(3, 3, 16, 16) * 2 - 1
    batched = inverter.invert(images, return_images=False).ws
    single = inverter.invert(images[1:2], return_images=False).ws
    torch.testing.assert_close(batched[1:2], single, atol=1e-5, rtol=1e-4)


def test_a_checkpoint_that_would_run_code_is_refused(checkpoints, G16, tmp_path, capsys):
    class Trap:
        def __reduce__(self):
            return (print, ("code from the checkpoint ran",))

    path = save_restyle_checkpoint(
        tmp_path / "trap.pt", "psp", checkpoints["psp"][1], G16, extra=Trap()
    )
    with pytest.raises(CheckpointError, match="print"):
        load_restyle(path)
    assert "ran" not in capsys.readouterr().out


def test_opts_as_an_argparse_namespace_is_refused_by_name(checkpoints, G16, tmp_path):
    payload = restyle_payload("psp", checkpoints["psp"][1], G16)
    payload["opts"] = argparse.Namespace(**payload["opts"])
    torch.save(payload, tmp_path / "namespace.pt")
    with pytest.raises(CheckpointError, match=r"argparse\.Namespace"):
        load_restyle(tmp_path / "namespace.pt")


def test_key_mismatch_is_reported_by_name(checkpoints, G16, tmp_path):
    payload = restyle_payload("e4e", checkpoints["e4e"][1], G16)
    state = payload["state_dict"]
    state["encoder.styles.3.linear.bias_renamed"] = state.pop("encoder.styles.3.linear.bias")
    torch.save(payload, tmp_path / "renamed.pt")
    with pytest.raises(CheckpointError) as error:
        load_restyle(tmp_path / "renamed.pt")
    assert "missing encoder.styles.3.linear.bias" in str(error.value)
    assert "unexpected encoder.styles.3.linear.bias_renamed" in str(error.value)

    state["encoder.styles.3.linear.bias"] = state.pop("encoder.styles.3.linear.bias_renamed")[:5]
    torch.save(payload, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match=r"encoder\.styles\.3\.linear\.bias \[5\]"):
        load_restyle(tmp_path / "shape.pt")


def test_unknown_encoder_type_is_refused(checkpoints, G16, tmp_path):
    payload = restyle_payload("psp", checkpoints["psp"][1], G16)
    payload["opts"]["encoder_type"] = "ResNetBackboneEncoder"
    torch.save(payload, tmp_path / "resnet.pt")
    with pytest.raises(CheckpointError, match="ResNetBackboneEncoder"):
        load_restyle(tmp_path / "resnet.pt")


def _restyle_losses(inverter: ReStyleInverter, targets: torch.Tensor) -> list[float]:
    """Mean squared error of each iteration's render against the targets."""
    inverter.encoder.eval()
    result = inverter.invert(targets, keep_steps=True, return_images=False)
    inverter.encoder.train()
    return [float((image - targets).square().mean()) for image in result.images_steps]


def test_training_the_encoder_lowers_every_iterations_reconstruction_loss():
    """ReStyle training (loss on each iteration's render, previous latent detached) on faces the
    generator itself drew: after a few Adam steps each iteration reconstructs held-out targets
    better than before, and better than the average image it starts from."""
    G = tiny_generator("R", res=16, seed=1, num_layers=4, channel_max=32).requires_grad_(False)
    with torch.no_grad():  # a w_avg that is really the mean of W, as after training
        G.mapping.w_avg.copy_(G.mapping(torch.randn(2000, G.z_dim))[:, 0].mean(0))
    encoder = tiny_restyle_encoder("e4e", G, input_size=32, seed=0)
    inverter = ReStyleInverter(encoder, G, G.mapping.w_avg.clone(), n_iters=3)
    gen = torch.Generator().manual_seed(7)

    def draw(n: int) -> torch.Tensor:
        with torch.no_grad():
            return G.synthesis(G.mapping(torch.randn(n, G.z_dim, generator=gen)))

    held_out = draw(8)
    start = float((inverter.average_image()[..., ::2, ::2] - held_out).square().mean())
    before = _restyle_losses(inverter, held_out)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=3e-4)
    for _ in range(20):
        targets = draw(4)
        x = inverter.preprocess(targets)
        previous, ws = inverter.average_image(), inverter.start_latent(4)
        for _ in range(inverter.n_iters):
            ws = inverter.refine(x, previous, ws.detach())
            rendered = inverter.render(ws)
            loss = (rendered - targets).square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            previous = inverter.pool(rendered).detach()
    after = _restyle_losses(inverter, held_out)
    assert all(a < 0.8 * b for a, b in zip(after, before, strict=True)), (before, after)
    assert min(after) < start, (start, after)


def _write_png(path, rgb: np.ndarray) -> None:
    import cv2

    assert cv2.imwrite(str(path), rgb[:, :, ::-1])


def _read_png(path) -> np.ndarray:
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1]


def test_invert_image_command_writes_the_latent_and_reconstruction(cli, checkpoints, tmp_path):
    path, _ = checkpoints["e4e"]
    rgb = (np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)
    _write_png(tmp_path / "face.png", rgb)
    code, _, err = cli(
        "invert-image", tmp_path / "face.png", "--encoder", path, "--no-align",
        "--device", "cpu", "-o", tmp_path / "out",
    )  # fmt: skip
    assert code == 0, err
    saved = np.load(tmp_path / "out" / "face.npz")
    assert saved["ws"].shape == (16, 32) and str(saved["method"]) == "encoder"

    ckpt = load_restyle(path)
    expected = ckpt.inverter().invert(torch.tensor(rgb).permute(2, 0, 1)[None] / 127.5 - 1)
    np.testing.assert_allclose(saved["ws"], expected.ws[0].numpy(), atol=1e-4)
    recon = _read_png(tmp_path / "out" / "face_reconstruction.png")
    want = ((expected.images[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255)
    assert np.abs(recon.astype(int) - want.numpy().astype(int)).max() <= 1
    assert np.array_equal(_read_png(tmp_path / "out" / "face_aligned.png"), rgb)


def test_invert_image_encoder_then_optimize_lowers_the_loss(cli, checkpoints, G16, tmp_path):
    with torch.no_grad():  # a face the generator can draw, away from its average
        ws = G16.mapping(torch.randn(1, G16.z_dim, generator=torch.Generator().manual_seed(4)))
        image = G16.synthesis(ws)
    rgb = ((image[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).byte().numpy()
    _write_png(tmp_path / "drawn.png", rgb)
    save_alexnet_trunk(tmp_path / "alexnet.pth")
    code, _, err = cli(
        "invert-image", tmp_path / "drawn.png", "--encoder", checkpoints["psp"][0],
        "--method", "encoder+optimize", "--steps", "15", "--lpips-net", "alex",
        "--lpips", tmp_path / "alexnet.pth", "--no-align", "--device", "cpu",
        "-o", tmp_path / "out",
    )  # fmt: skip
    assert code == 0, err
    saved = np.load(tmp_path / "out" / "drawn.npz")
    assert saved["ws_encoder"].shape == saved["ws"].shape == (16, 32)
    assert len(saved["losses"]) == 15 and saved["losses"][-1] < saved["losses"][0]


def test_invert_image_without_a_face_says_to_use_no_align(cli, checkpoints, tmp_path):
    _write_png(tmp_path / "wall.png", np.full((64, 64, 3), 128, np.uint8))
    code, _, err = cli(
        "invert-image", tmp_path / "wall.png", "--encoder", checkpoints["e4e"][0],
        "--device", "cpu", "-o", tmp_path / "out",
    )  # fmt: skip
    assert code == NoFaceError.exit_code and "--no-align" in err
    assert not (tmp_path / "out").exists()


def test_invert_image_optimize_alone_renders_with_the_given_generator(cli, checkpoints, tmp_path):
    G2 = tiny_generator("R", res=16, seed=9, channel_base=256, channel_max=16)
    save_editing_pt(G2, tmp_path / "tuned.pt")  # e.g. a PTI-tuned generator
    save_alexnet_trunk(tmp_path / "alexnet.pth")
    rgb = (np.random.default_rng(2).random((16, 16, 3)) * 255).astype(np.uint8)
    _write_png(tmp_path / "face.png", rgb)
    code, _, err = cli(
        "invert-image", tmp_path / "face.png", "--encoder", checkpoints["e4e"][0],
        "--generator", tmp_path / "tuned.pt", "--method", "optimize", "--space", "w",
        "--steps", "5", "--lpips-net", "alex", "--lpips", tmp_path / "alexnet.pth",
        "--no-align", "--device", "cpu", "-o", tmp_path / "out",
    )  # fmt: skip
    assert code == 0, err
    saved = np.load(tmp_path / "out" / "face.npz")
    assert "ws_encoder" not in saved and len(saved["losses"]) == 5
    ws = torch.tensor(saved["ws"])[None]
    assert torch.equal(ws, ws[:, :1].expand_as(ws))  # W space: one code for every layer
    with torch.no_grad():
        want = ((G2.synthesis(ws)[0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255)
    recon = _read_png(tmp_path / "out" / "face_reconstruction.png")
    assert np.abs(recon.astype(int) - want.numpy().astype(int)).max() <= 1


def test_unaligned_transforms_change_only_the_final_render():
    """Feedback between iterations uses the aligned render; the per-frame transforms place
    only the returned image (stylegan3-editing's rule for unaligned video frames)."""
    G = tiny_generator("R", res=16, num_layers=4, channel_max=32)
    inverter = ReStyleInverter(tiny_restyle_encoder("e4e", G).eval(), G, G.mapping.w_avg.clone())
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    transforms = input_transforms(np.array([[10.0, 0.1, 0.0], [-5.0, 0.0, 0.05]]))
    aligned = inverter.invert(images)
    unaligned = inverter.invert(images, transforms=transforms)
    torch.testing.assert_close(unaligned.ws, aligned.ws)
    with torch.no_grad():
        expected = G.synthesis(unaligned.ws, transform=transforms)
    torch.testing.assert_close(unaligned.images, expected)
    assert not torch.allclose(unaligned.images, aligned.images, atol=1e-3)
