"""Image2StyleGAN's embedding (`ganvid invert-image --method image2stylegan`): the VGG-16 feature
network in torchvision's layout, its safe loader, and the paper-loss projector on a tiny
generator (narrow VGG widths in the published layout)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.sg3_fixtures import save_editing_pt, tiny_generator

from ganvid.errors import CheckpointError, WeightsError
from ganvid.nn.vgg16 import PAPER_LAYERS, PerceptualMSE, VGG16Features, load_vgg16_features
from ganvid.pipeline.embedding import EmbeddingOptions, embed
from ganvid.pipeline.projector import w_statistics

pytestmark = pytest.mark.usefixtures("one_thread")
NARROW = (4, 8, 8, 16)


def _save_vgg(path, widths=NARROW, seed: int = 0) -> VGG16Features:
    """A random VGG16Features saved as torchvision saves vgg16 (features.N.*, classifier.*)."""
    torch.manual_seed(seed)
    model = VGG16Features(widths)
    state = {f"features.{k}": v for k, v in model.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)
    torch.save(state, path)
    return model


def test_layout_matches_torchvision_vgg16_and_taps_the_papers_layers():
    import torchvision

    with torch.device("meta"):
        theirs = torchvision.models.vgg16().features[:21].state_dict()
        ours = VGG16Features().features.state_dict()
    assert {k: v.shape for k, v in theirs.items()} == {k: v.shape for k, v in ours.items()}
    assert PAPER_LAYERS == {"conv1_1": 0, "conv1_2": 2, "conv3_2": 12, "conv4_2": 19}
    outputs = VGG16Features(NARROW)(torch.zeros(1, 3, 32, 32))
    assert [o.shape[1:] for o in outputs] == [(4, 32, 32), (4, 32, 32), (8, 8, 8), (16, 4, 4)]


def test_loader_reads_the_file_safely_and_names_what_is_wrong(tmp_path):
    model = _save_vgg(tmp_path / "vgg.pth")
    loaded = load_vgg16_features(tmp_path / "vgg.pth")
    x = torch.rand(2, 3, 24, 24) * 2 - 1
    for a, b in zip(loaded(x), model(x), strict=True):
        assert torch.equal(a, b)
    state = torch.load(tmp_path / "vgg.pth", weights_only=True)
    del state["features.12.weight"]
    torch.save(state, tmp_path / "cut.pth")
    with pytest.raises(CheckpointError, match=r"features\.12\.weight"):
        load_vgg16_features(tmp_path / "cut.pth")
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "alex.pth")
    with pytest.raises(CheckpointError, match="vgg16"):
        load_vgg16_features(tmp_path / "alex.pth")
    distance = PerceptualMSE(loaded)
    assert distance(x, x).tolist() == [0.0, 0.0] and (distance(x, -x) > 0).all()


def test_paper_loss_projector_lowers_its_loss_and_beats_the_mean_latent(tmp_path):
    G = tiny_generator("R", res=16, seed=5, channel_base=256, channel_max=16)
    G.requires_grad_(False)
    _save_vgg(tmp_path / "vgg.pth")
    with torch.no_grad():
        known = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(7)))
        target = G.synthesis(known, force_fp32=True)
    options = EmbeddingOptions("image2stylegan", steps=60, weights=str(tmp_path / "vgg.pth"))
    assert options.config().lr == 0.01 and EmbeddingOptions("image2stylegan").config().steps == 5000
    result = embed(G, target, options)
    assert len(result.losses) == 60 and result.losses[-1] < 0.5 * result.losses[0]
    w_avg, _ = w_statistics(G, 10_000)
    with torch.no_grad():
        start = G.synthesis(w_avg.reshape(1, 1, -1).expand(1, G.num_ws, -1), force_fp32=True)
        found = G.synthesis(result.ws, force_fp32=True)
    error = float((found - target).square().mean())
    assert error < 0.5 * float((start - target).square().mean())


def test_invert_image_image2stylegan_writes_its_losses_and_without_vgg_says_how(cli, tmp_path):
    import cv2

    G = tiny_generator("R", res=16, seed=9, channel_base=256, channel_max=16)
    save_editing_pt(G, tmp_path / "g.pt")
    rgb = (np.random.default_rng(2).random((16, 16, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "face.png"), rgb)
    args = ["invert-image", tmp_path / "face.png", "--generator", tmp_path / "g.pt", "--method",
            "image2stylegan", "--no-align", "--device", "cpu", "-o", tmp_path / "o"]  # fmt: skip
    code, _, err = cli(*args, "--steps", "3")
    assert code == WeightsError.exit_code and "lpips-vgg" in err and len(err.splitlines()) == 1
    _save_vgg(tmp_path / "vgg.pth")
    code, _, err = cli(*args, "--steps", "3", "--lpips", tmp_path / "vgg.pth")
    assert code == 0, err
    saved = np.load(tmp_path / "o" / "face.npz")
    assert len(saved["losses"]) == 3 and str(saved["method"]) == "image2stylegan"
    assert str(saved["generator"]).endswith("g.pt")
