"""Optimisation projector and the offline LPIPS wrapper."""

from __future__ import annotations

import pytest
import torch
from support.restyle_fixtures import save_alexnet_trunk
from support.sg3_fixtures import tiny_generator

from ganvid.errors import CheckpointError, WeightsError
from ganvid.nn.lpips import build_lpips
from ganvid.pipeline.projector import Projector, ProjectorConfig, learning_rate

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny networks


@pytest.fixture(scope="module")
def vgg_lpips():
    torch.manual_seed(0)
    return build_lpips("vgg", random_backbone=True)


@pytest.fixture(scope="module")
def G():
    return tiny_generator("R", res=16, seed=2, num_layers=4, channel_max=32)


@pytest.fixture(scope="module")
def known(G):
    """A target the generator drew from a known W latent (broadcast to every layer)."""
    with torch.no_grad():
        ws = G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(5)))
        return ws, G.synthesis(ws)


def _mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).square().mean())


def test_learning_rate_ramps_up_then_down():
    config = ProjectorConfig(lr=0.1, lr_rampup=0.05, lr_rampdown=0.25)
    schedule = [learning_rate(config, t / 100) for t in range(101)]
    assert schedule[0] == 0.0 and schedule[-1] == pytest.approx(0.0, abs=1e-12)
    assert schedule[5:75] == [pytest.approx(0.1)] * 70  # flat at the peak in between
    assert all(a < b for a, b in zip(schedule[:5], schedule[1:6], strict=True))
    assert all(a > b for a, b in zip(schedule[75:-1], schedule[76:], strict=True))


def test_projection_recovers_the_image_of_a_known_latent(G, known, vgg_lpips):
    ws_true, target = known
    before = G.state_dict()
    config = ProjectorConfig(space="w+", steps=120, w_avg_samples=2000)
    result = Projector(G, vgg_lpips, config).project(target)
    assert result.ws.shape == ws_true.shape
    assert result.losses[-1] < 0.2 * result.losses[0]
    with torch.no_grad():
        recon = G.synthesis(result.ws)
        average = G.synthesis(G.mapping.w_avg.expand_as(ws_true))
    assert _mse(recon, target) < 0.05 * _mse(average, target)
    for key, value in G.state_dict().items():  # the generator is never trained
        assert torch.equal(value, before[key]), key


def test_w_space_projection_keeps_one_code_for_all_layers(G, known, vgg_lpips):
    _, target = known
    config = ProjectorConfig(space="w", steps=30, w_avg_samples=2000)
    result = Projector(G, vgg_lpips, config).project(target)
    assert torch.equal(result.ws, result.ws[:, :1].expand_as(result.ws))
    assert result.losses[-1] < result.losses[0]


def test_refinement_starts_from_the_encoder_latent_and_improves_it(G, known, vgg_lpips):
    ws_true, target = known  # the "encoder" output: the true latent plus noise
    noisy = ws_true + 0.5 * torch.randn(ws_true.shape, generator=torch.Generator().manual_seed(1))
    config = ProjectorConfig.refinement(steps=40, w_avg_samples=2000)
    projector = Projector(G, vgg_lpips, config)
    result = projector.project(target, init_ws=noisy)
    with torch.no_grad():
        start = float(projector.losses(G.synthesis(noisy), target).mean())
        end = float(projector.losses(G.synthesis(result.ws), target).mean())
    assert end < 0.5 * start


def test_lpips_trunk_weights_come_from_a_torchvision_file(tmp_path):
    state = save_alexnet_trunk(tmp_path / "alexnet.pth")
    distance = build_lpips("alex", backbone=tmp_path / "alexnet.pth")
    assert torch.equal(getattr(distance.model.net.slice1, "0").weight, state["features.0.weight"])
    assert torch.equal(getattr(distance.model.net.slice5, "10").bias, state["features.10.bias"])

    a = torch.rand(2, 3, 32, 32) * 2 - 1
    b = (a + 0.3 * torch.randn_like(a)).requires_grad_(True)
    d = distance(a, b)
    assert d.shape == (2,) and torch.all(d > 0)
    assert torch.allclose(distance(a, a), torch.zeros(2))
    d.sum().backward()
    assert b.grad is not None and b.grad.abs().sum() > 0

    del state["features.3.weight"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match=r"features\.3\.weight"):
        build_lpips("alex", backbone=tmp_path / "broken.pth")


def test_lpips_without_weights_says_how_to_get_them(monkeypatch, tmp_path):
    """The loader takes a file; the pipeline resolves the name and says how to get it."""
    from ganvid.pipeline.embedding import EmbeddingOptions, build_distance

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no torch.hub copy either
    with pytest.raises(WeightsError, match="lpips-vgg"):
        build_distance(EmbeddingOptions(method="optimize"))
    with pytest.raises(ValueError, match="trunk file"):
        build_lpips("vgg")
