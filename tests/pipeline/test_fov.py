import numpy as np
import pytest
import torch

from ganvid.errors import InputError
from ganvid.nn.stylegan3 import Generator, SG3Config
from ganvid.pipeline.fov import Expansion, plan_views, synthesize_fov


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    cfg = SG3Config.config_t(
        32, z_dim=32, w_dim=32, channel_base=1024, channel_max=64, num_layers=4
    )
    return Generator(cfg).eval()


@pytest.fixture(scope="module")
def ws(generator):
    torch.manual_seed(1)
    return generator.mapping(torch.randn(2, 32)).detach()


def _transforms(batch):
    angle = np.radians(7.0)
    m = np.array(
        [[np.cos(angle), np.sin(angle), 0.05], [-np.sin(angle), np.cos(angle), 0], [0, 0, 1]]
    )
    return torch.from_numpy(np.linalg.inv(m).astype(np.float32)).expand(batch, 3, 3).clone()


@torch.no_grad()
def test_zero_expansion_is_the_plain_render(generator, ws):
    t = _transforms(2)
    plain = generator.synthesis(ws, transform=t)
    assert torch.equal(synthesize_fov(generator, ws, t, Expansion()), plain)


@torch.no_grad()
def test_centre_equals_plain_render_and_joins_have_no_step(generator, ws):
    t = _transforms(2)
    plain = generator.synthesis(ws, transform=t)
    exp, band = Expansion(left=8, right=6, top=5, bottom=0), 4
    out = synthesize_fov(generator, ws, t, exp, band=band)
    assert out.shape == (2, 3, 5 + 32, 8 + 32 + 6)
    centre = out[..., 5 : 5 + 32, 8 : 8 + 32]
    inner = (slice(band, 32), slice(band, 32 - band))  # top edge is blended, bottom is not
    torch.testing.assert_close(centre[..., inner[0], inner[1]], plain[..., inner[0], inner[1]])
    # Horizontal gradient across the left join vs. the mean gradient elsewhere: no seam.
    grad = (out[..., 1:] - out[..., :-1]).abs().mean(dim=(0, 1, 2))
    join = grad[8 - 2 : 8 + band + 1].max()
    assert join < 3.0 * grad.mean(), (float(join), float(grad.mean()))


def test_only_needed_views_are_rendered():
    assert len(plan_views(Expansion(), 32, 4)) == 1
    assert len(plan_views(Expansion(left=4), 32, 4)) == 2
    assert len(plan_views(Expansion(left=4, top=3), 32, 4)) == 4
    assert len(plan_views(Expansion(4, 4, 4, 4), 32, 4)) == 9
    views = plan_views(Expansion(left=4, bottom=3), 32, 4)
    assert (views[0].col, views[0].row) == (0, 0)
    with pytest.raises(InputError):
        plan_views(Expansion(left=30), 32, 4)
    with pytest.raises(InputError):
        Expansion(left=-1)


@torch.no_grad()
def test_expanded_pixels_come_from_the_shifted_render(generator, ws):
    """A pure shift needs no blending far from the join: the left strip equals the plain render
    of the same latent translated right by `left` pixels."""
    t = _transforms(2)
    out = synthesize_fov(generator, ws, t, Expansion(left=8), band=4)
    shift = torch.tensor([[1, 0, -8 / 32], [0, 1, 0], [0, 0, 1.0]])  # inverse of +8 px user shift
    shifted = generator.synthesis(ws, transform=t @ shift)
    torch.testing.assert_close(out[..., :, :8], shifted[..., :, :8])


class _DisagreeingViews(torch.nn.Module):
    """A stand-in generator whose views disagree: each renders a flat image whose value is its
    input transform's x translation, so a hard paste would leave a step at every join."""

    img_resolution = 32

    def synthesis(self, ws, transform, styles=None, force_fp32=True):
        value = transform[:, 0, 2] * 32  # the view's shift in pixels
        return value[:, None, None, None].expand(len(ws), 3, 32, 32).clone()


def test_joins_ramp_over_the_band_instead_of_stepping():
    ws = torch.zeros(1, 4, 8)
    out = synthesize_fov(_DisagreeingViews(), ws, torch.eye(3)[None], Expansion(left=8), band=4)
    row = out[0, 0, 0]
    step = float(row[0] - row[-1])  # the left view's value minus the centre's
    assert abs(step) >= 7.5  # the views do disagree
    grad = (row[1:] - row[:-1]).abs()
    assert grad.max() <= abs(step) / 4 + 1e-5  # spread evenly over the 4-px band
    torch.testing.assert_close(row[8 + 4 :], row[-1].expand(len(row) - 12))  # centre untouched
