"""Reference ops (CPU) against direct formulas written independently of the implementation."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from ganvid.errors import InputError
from ganvid.ops import (
    bias_act,
    downsample2d,
    filter2d,
    filtered_lrelu,
    setup_filter,
    upfirdn2d,
    upsample2d,
)

# What doctor says about a failed build or kernel only exists on a CUDA build of torch; a
# CPU-only build always reports "ref (CPU-only torch build)".
needs_cuda_build = pytest.mark.skipif(
    not torch.version.cuda, reason="describes a CUDA build of torch; this torch is CPU-only"
)


# --------------------------------------------------------------------------- direct formulas


def _tap_index(taps: int, n_in: int, n_out: int, up: int, down: int, pad0: int) -> np.ndarray:
    """Filter tap that links input sample i to output sample m along one axis, or -1.

    Output m reads the zero-stuffed, padded signal at m * down + t (t = 0 .. taps-1) against the
    flipped filter; input i sits there at i * up + pad0. So tap = taps - 1 - (i*up + pad0 - m*down).
    """
    m = np.arange(n_out)[:, None]
    i = np.arange(n_in)[None, :]
    tap = taps - 1 - (i * up + pad0 - m * down)
    return np.where((tap >= 0) & (tap < taps), tap, -1)


def naive_upfirdn2d(x, f2d, up=(1, 1), down=(1, 1), pad=(0, 0, 0, 0), gain=1.0, flip=False):
    """y[my, mx] = sum over input pixels of x[iy, ix] * f[tap_y(my, iy), tap_x(mx, ix)] * gain."""
    x = np.asarray(x, dtype=np.float64)
    f = np.asarray(f2d, dtype=np.float64) * gain
    if flip:
        f = f[::-1, ::-1]
    fh, fw = f.shape
    ih, iw = x.shape[-2:]
    oh = -(-(ih * up[1] + pad[2] + pad[3] - fh + 1) // down[1])
    ow = -(-(iw * up[0] + pad[0] + pad[1] - fw + 1) // down[0])
    ty = _tap_index(fh, ih, oh, up[1], down[1], pad[2])
    tx = _tap_index(fw, iw, ow, up[0], down[0], pad[0])
    kernel = f[ty[:, None, :, None], tx[None, :, None, :]]  # [oh, ow, ih, iw]
    kernel = kernel * ((ty >= 0)[:, None, :, None] & (tx >= 0)[None, :, None, :])
    return np.einsum("ncij,abij->ncab", x, kernel)


def naive_lrelu(x, slope, gain, clamp):
    y = np.where(x >= 0, x, x * slope) * gain
    return y if clamp is None else np.clip(y, -clamp, clamp)


def as_2d(f: torch.Tensor | None) -> np.ndarray:
    if f is None:
        return np.ones([1, 1])
    f = f.double().numpy()
    return np.outer(f, f) if f.ndim == 1 else f


def random_filter(taps: int, radial: bool, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if radial:
        return setup_filter(torch.rand([taps, taps], generator=g) + 0.1)
    return setup_filter(torch.rand([taps], generator=g) + 0.1, separable=True)


def close(actual: torch.Tensor, expected: np.ndarray, tol: float = 1e-5) -> None:
    np.testing.assert_allclose(actual.detach().double().numpy(), expected, rtol=tol, atol=tol)


# --------------------------------------------------------------------------- upfirdn2d

UPFIRDN_CASES = [
    # (in_h, in_w, up, down, padding, taps, radial)
    (5, 7, 1, 1, 0, 3, True),
    (6, 9, 2, 1, [2, 1, 3, 0], 4, True),
    (7, 5, 1, 2, [1, 2, 1, 2], 4, False),
    (7, 8, (2, 1), (1, 2), [1, 0, 2, 3], 3, True),
    (9, 9, 2, 2, [11, 10, 11, 10], 12, False),  # SG3-R same-rate layer
    (9, 9, 4, 2, [-2, -5, -2, -5], 24, False),  # SG3-R x4 layer
    (18, 17, 2, 2, [-9, -10, -9, -10], 12, False),  # SG3 critical crop layer
    (8, 11, 3, 3, [-1, 2, 0, -2], 5, True),
]


@pytest.mark.parametrize("case", UPFIRDN_CASES)
@pytest.mark.parametrize("flip", [False, True])
def test_upfirdn2d_matches_direct_sum(case, flip):
    h, w, up, down, padding, taps, radial = case
    x = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(h * w))
    f = random_filter(taps, radial, seed=taps)
    upx, upy = (up, up) if isinstance(up, int) else up
    downx, downy = (down, down) if isinstance(down, int) else down
    pad = [padding] * 4 if isinstance(padding, int) else padding
    y = upfirdn2d(x, f, up=up, down=down, padding=padding, flip_filter=flip, gain=1.7)
    expected = naive_upfirdn2d(x.numpy(), as_2d(f), (upx, upy), (downx, downy), pad, 1.7, flip)
    assert y.shape == expected.shape
    close(y, expected)


def test_upfirdn2d_without_filter_is_pure_resampling():
    x = torch.arange(12.0).reshape(1, 1, 3, 4)
    y = upfirdn2d(x, None, up=2)
    assert y.shape == (1, 1, 6, 8)
    assert torch.equal(y[:, :, ::2, ::2], x) and y.sum() == x.sum()
    assert torch.equal(upfirdn2d(x, None, down=2), x[:, :, ::2, ::2])


def test_upfirdn2d_separable_equals_outer_product():
    x = torch.randn(1, 2, 10, 13)
    f = setup_filter([1.0, 3.0, 5.0, 3.0, 2.0, 1.0, 1.0, 4.0])
    assert f.ndim == 1
    kw = dict(up=2, down=1, padding=[3, 4, 2, 5], gain=3.0)
    torch.testing.assert_close(
        upfirdn2d(x, f, **kw), upfirdn2d(x, torch.outer(f, f), **kw), atol=1e-6, rtol=1e-5
    )


def test_setup_filter_normalizes_flips_and_splits_gain():
    f = setup_filter([1, 2, 3])  # short 1-D filters become 2-D
    assert f.shape == (3, 3) and math.isclose(f.sum().item(), 1.0, rel_tol=1e-6)
    long = setup_filter(list(range(1, 9)), gain=4.0)  # 8 taps: separable, sqrt(gain) per axis
    assert long.shape == (8,) and math.isclose(long.sum().item(), 2.0, rel_tol=1e-6)
    flipped = setup_filter([1, 2, 3, 4], flip_filter=True, normalize=False, separable=True)
    assert flipped.tolist() == [4, 3, 2, 1]
    assert setup_filter(None).tolist() == [[1.0]]
    with pytest.raises(InputError):
        setup_filter(torch.ones(2, 2, 2))


@pytest.mark.parametrize("factor", [1, 2, 3])
def test_resampling_helpers_keep_the_expected_size(factor):
    x = torch.randn(1, 2, 12, 18)
    f = setup_filter([1, 3, 3, 1])
    assert upsample2d(x, f, up=factor).shape[2:] == (12 * factor, 18 * factor)
    assert downsample2d(x, f, down=factor).shape[2:] == (12 // factor, 18 // factor)
    assert filter2d(x, f).shape == x.shape
    # A constant image stays constant away from the borders (unit DC gain after resampling);
    # a triangle of 2 * factor - 1 taps interpolates exactly for any factor.
    ones = torch.ones(1, 1, 12, 12)
    f = setup_filter(np.convolve(np.ones(factor), np.ones(factor)))
    assert torch.allclose(upsample2d(ones, f, up=factor)[..., 4:-4, 4:-4], torch.tensor(1.0))
    assert torch.allclose(downsample2d(ones, f, down=factor)[..., 2:-2, 2:-2], torch.tensor(1.0))


def test_upfirdn2d_rejects_bad_arguments():
    with pytest.raises(InputError):
        upfirdn2d(torch.zeros(2, 3, 4), None)
    with pytest.raises(InputError):
        upfirdn2d(torch.zeros(1, 1, 4, 4), None, padding=[1, 2, 3])
    with pytest.raises(InputError):
        upfirdn2d(torch.zeros(1, 1, 4, 4), None, up=0)


# --------------------------------------------------------------------------- bias_act

ACT_FORMULAS = {
    "linear": (lambda v, a: v, 1.0),
    "relu": (lambda v, a: np.maximum(v, 0), math.sqrt(2)),
    "lrelu": (lambda v, a: np.where(v >= 0, v, v * a), math.sqrt(2)),
    "tanh": (lambda v, a: np.tanh(v), 1.0),
    "sigmoid": (lambda v, a: 1 / (1 + np.exp(-v)), 1.0),
    "elu": (lambda v, a: np.where(v >= 0, v, np.expm1(v)), 1.0),
    "selu": (
        lambda v, a: 1.0507009873554805 * np.where(v >= 0, v, 1.6732632423543772 * np.expm1(v)),
        1.0,
    ),
    "softplus": (lambda v, a: np.log1p(np.exp(v)), 1.0),
    "swish": (lambda v, a: v / (1 + np.exp(-v)), math.sqrt(2)),
}


@pytest.mark.parametrize("act", sorted(ACT_FORMULAS))
def test_bias_act_matches_formula_with_default_gain(act):
    x = torch.randn(3, 5, 4, 2, dtype=torch.float64) * 3
    b = torch.randn(5, dtype=torch.float64)
    formula, default_gain = ACT_FORMULAS[act]
    v = x.numpy() + b.numpy()[None, :, None, None]
    alpha = 0.2 if act == "lrelu" else 0.0
    close(bias_act(x, b, act=act), formula(v, alpha) * default_gain, tol=1e-10)
    clamped = np.clip(formula(v, alpha) * 0.5, -0.3, 0.3)
    close(bias_act(x, b, act=act, gain=0.5, clamp=0.3), clamped, tol=1e-10)


def test_bias_act_dim_alpha_and_no_bias():
    x = torch.randn(4, 3, 6, dtype=torch.float64)
    b = torch.randn(6, dtype=torch.float64)
    y = bias_act(x, b, dim=2, act="lrelu", alpha=0.1)
    v = x.numpy() + b.numpy()[None, None, :]
    close(y, np.where(v >= 0, v, 0.1 * v) * math.sqrt(2), tol=1e-10)
    assert torch.equal(bias_act(x), x)
    with pytest.raises(InputError):
        bias_act(x, b, dim=1)
    with pytest.raises(InputError):
        bias_act(x, act="gelu")


# --------------------------------------------------------------------------- filtered_lrelu

# SG3 layer types at reduced sizes: (in size, up, down, up taps, down taps, padding, radial)
FLRELU_CASES = [
    (7, 2, 2, 12, 12, [11, 10, 11, 10], False),  # R, same rate
    (8, 2, 2, 12, 12, [11, 10, 11, 10], True),  # R, radial down filter
    (13, 4, 2, 24, 12, [-2, -5, -2, -5], False),  # R, x4
    (14, 4, 2, 24, 12, [-2, -5, -2, -5], True),  # R, x4 radial
    (9, 2, 2, 12, 12, [9, 8, 9, 8], False),  # T, same rate
    (15, 4, 2, 24, 12, [-6, -9, -6, -9], False),  # T, x4
    (32, 2, 2, 12, 12, [-9, -10, -9, -10], False),  # critical crop, R
    (33, 2, 2, 12, 12, [-11, -12, -11, -12], False),  # critical crop, T
    (11, 2, 1, 4, 1, [1, 2, 2, 1], True),  # odd combination, no down filter
]


@pytest.mark.parametrize("case", FLRELU_CASES)
def test_filtered_lrelu_matches_direct_formula(case):
    size, up, down, up_taps, down_taps, padding, radial = case
    g = torch.Generator().manual_seed(size)
    x = torch.randn(2, 3, size, size + 1, generator=g)
    b = torch.randn(3, generator=g)
    fu = random_filter(up_taps, False, seed=1)
    fd = random_filter(down_taps, radial, seed=2) if down_taps > 1 else None
    y = filtered_lrelu(x, fu, fd, b, up=up, down=down, padding=padding, clamp=0.7)

    v = x.double().numpy() + b.double().numpy()[None, :, None, None]
    v = naive_upfirdn2d(v, as_2d(fu), (up, up), (1, 1), padding, gain=up * up)
    v = naive_lrelu(v, 0.2, math.sqrt(2), 0.7)
    expected = naive_upfirdn2d(v, as_2d(fd), (1, 1), (down, down))
    assert y.shape == expected.shape
    close(y, expected)


def test_filtered_lrelu_keeps_sg3_canvas_sizes():
    x = torch.randn(1, 2, 36, 36)
    fu, fd = random_filter(12, False, 1), random_filter(12, False, 2)
    fu4 = random_filter(24, False, 3)
    assert filtered_lrelu(x, fu, fd, up=2, down=2, padding=[11, 10, 11, 10]).shape[2:] == (36, 36)
    assert filtered_lrelu(x, fu4, fd, up=4, down=2, padding=[-2, -5, -2, -5]).shape[2:] == (52, 52)


def test_filtered_lrelu_torgb_is_bias_and_clamp():
    x = torch.randn(2, 3, 8, 8) * 400
    b = torch.randn(3)
    y = filtered_lrelu(x, None, None, b, gain=1, slope=1, clamp=256)
    torch.testing.assert_close(y, (x + b[None, :, None, None]).clamp(-256, 256))


# --------------------------------------------------------------------------- gradients


def test_gradcheck_upfirdn2d():
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    f = torch.rand(4, dtype=torch.float64)
    f2 = torch.rand(3, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda t: upfirdn2d(t, f, up=2, down=2, padding=[2, 1, 1, -1], gain=2), (x,)
    )
    assert torch.autograd.gradcheck(
        lambda t: upfirdn2d(t, f2, up=(1, 3), down=(2, 1), padding=[1, 1, 2, 0]), (x,)
    )


@pytest.mark.parametrize("act", sorted(ACT_FORMULAS))
def test_gradcheck_bias_act(act):
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t, u: bias_act(t, u, act=act, clamp=1.5), (x, b))


def test_gradcheck_filtered_lrelu():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, 5, 4, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(1, dtype=torch.float64, generator=g, requires_grad=True)
    fu = torch.rand(6, dtype=torch.float64, generator=g)
    fd = torch.rand(4, 4, dtype=torch.float64, generator=g)

    def op(t, u):
        return filtered_lrelu(t, fu, fd, u, up=2, down=2, padding=[4, 3, 2, 5], clamp=0.8)

    assert torch.autograd.gradcheck(op, (x, b))
    assert torch.autograd.gradgradcheck(op, (x, b))


# --------------------------------------------------------------------------- backend choice


@pytest.fixture
def fresh_loader(monkeypatch):
    """The loader with no memory of earlier builds, restored afterwards."""
    from ganvid.ops import loader

    loader.reset_state()
    monkeypatch.delenv("GANVID_OPS", raising=False)
    monkeypatch.delenv("TORCH_CUDA_ARCH_LIST", raising=False)
    yield loader
    loader.reset_state()


def test_cpu_tensors_never_build_even_when_cuda_is_required(fresh_loader, monkeypatch):
    def no_build(*args, **kwargs):
        raise AssertionError("CPU tensors must not trigger a build")

    monkeypatch.setattr(fresh_loader, "build", no_build)
    monkeypatch.setenv("GANVID_OPS", "cuda")
    x = torch.randn(1, 2, 8, 8)
    assert filtered_lrelu(x, None, None, torch.zeros(2)).shape == x.shape
    assert bias_act(x, act="lrelu").shape == x.shape


def test_ops_mode_rejects_unknown_values(fresh_loader, monkeypatch):
    from ganvid.errors import OpsError

    monkeypatch.setenv("GANVID_OPS", "fast")
    with pytest.raises(OpsError, match="auto, cuda, ref"):
        fresh_loader.ops_mode()
    monkeypatch.setenv("GANVID_OPS", "REF")
    assert fresh_loader.ops_mode() == "ref"
    assert fresh_loader.cuda_module() is None
    assert fresh_loader.describe_backend() == "ref (GANVID_OPS=ref)"


@needs_cuda_build
def test_auto_falls_back_with_one_warning_and_cuda_mode_raises(fresh_loader, monkeypatch):
    from ganvid import ui
    from ganvid.errors import OpsError

    warnings: list[str] = []
    monkeypatch.setattr(ui, "warn", warnings.append)
    monkeypatch.setattr(fresh_loader, "default_arch_list", lambda: "9.0")

    def failing_build(arch_list=None, **kwargs):
        raise OpsError("nvcc exploded")

    monkeypatch.setattr(fresh_loader, "build", failing_build)
    assert fresh_loader.cuda_module() is None
    assert fresh_loader.cuda_module() is None
    assert len(warnings) == 1 and "nvcc exploded" in warnings[0]
    assert "build failed: nvcc exploded" in fresh_loader.describe_backend()
    monkeypatch.setenv("GANVID_OPS", "cuda")
    with pytest.raises(OpsError, match="nvcc exploded"):
        fresh_loader.cuda_module()


@needs_cuda_build
def test_auto_does_not_retry_a_build_that_failed_before(fresh_loader, monkeypatch):
    from ganvid import ui

    monkeypatch.setattr(ui, "warn", lambda message: None)
    monkeypatch.setattr(fresh_loader, "default_arch_list", lambda: "8.6")
    folder = fresh_loader.build_dir_for("8.6")
    folder.mkdir(parents=True)
    (folder / fresh_loader.FAILED_FILE).write_text("cannot find -lcudart\n")
    monkeypatch.setattr(fresh_loader, "build", lambda *a, **k: pytest.fail("rebuilt"))
    assert fresh_loader.cuda_module() is None
    assert "cannot find -lcudart" in fresh_loader.describe_backend()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without a GPU")
def test_without_gpu_or_arch_list_the_user_is_told_what_to_set(fresh_loader, cli):
    from ganvid.errors import OpsError

    with pytest.raises(OpsError, match="TORCH_CUDA_ARCH_LIST"):
        fresh_loader.default_arch_list()
    code, _, err = cli("build-ops")
    assert code == OpsError.exit_code and "TORCH_CUDA_ARCH_LIST" in err
    expected = "ref (no CUDA device)" if torch.version.cuda else "ref (CPU-only torch build)"
    assert fresh_loader.describe_backend() == expected
    code, _, err = cli("doctor")
    assert code == 0 and "ops backend" in err and expected in err


def test_arch_lists_are_normalized_and_key_the_cache(fresh_loader, monkeypatch):
    from ganvid.errors import OpsError

    assert fresh_loader.normalize_arch_list(["9.0", "8.6"]) == "8.6;9.0"
    assert fresh_loader.normalize_arch_list("9.0 8.6,8.6;12.0+PTX") == "8.6;9.0;12.0+PTX"
    with pytest.raises(OpsError):
        fresh_loader.normalize_arch_list("sm_90!")
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "9.0;8.6")
    assert fresh_loader.default_arch_list() == "8.6;9.0"
    key = fresh_loader.build_key("8.6;9.0")
    assert torch.__version__.split("+")[0] in key and "sm86-90" in key
    assert key != fresh_loader.build_key("9.0")
    assert str(fresh_loader.build_dir_for("9.0")).startswith(os.environ["GANVID_HOME"])


def _fake_toolkit(root, cudart_names=("libcudart.so.13",)):
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "nvcc").write_bytes(b"\x7fELF fake nvcc")
    (root / "include").mkdir()
    (root / "include" / "cuda_runtime.h").write_text("/* fake */\n")
    (root / "lib").mkdir()
    for name in cudart_names:
        (root / "lib" / name).write_bytes(b"")
    return root


def test_toolkit_found_through_an_nvcc_wrapper_script(fresh_loader, monkeypatch, tmp_path):
    real = _fake_toolkit(tmp_path / "cuda-13.0")
    wrapper_dir = tmp_path / "wrappers"
    wrapper_dir.mkdir()
    wrapper = wrapper_dir / "nvcc"
    wrapper.write_text(f'#!/bin/sh\nexec {real}/bin/nvcc "$@"\n')
    wrapper.chmod(0o755)
    pip_nvidia = tmp_path / "site" / "nvidia" / "cu13"
    (pip_nvidia / "include").mkdir(parents=True)
    (pip_nvidia / "include" / "cusparse.h").write_text("/* fake */\n")
    (pip_nvidia / "include" / "cublas_v2.h").write_text("/* fake */\n")
    monkeypatch.setenv("CUDA_HOME", str(tmp_path / "not-a-toolkit"))
    monkeypatch.delenv("CUDA_PATH", raising=False)
    monkeypatch.setenv("PATH", str(wrapper_dir))
    monkeypatch.setattr(fresh_loader, "_pip_toolkit_roots", lambda: [])
    monkeypatch.setattr(fresh_loader, "_pip_nvidia_dirs", lambda: [pip_nvidia])

    toolkit = fresh_loader.find_toolkit()
    assert toolkit.root == real.resolve()
    assert toolkit.include_dirs == (pip_nvidia / "include",)  # cuBLAS/cuSPARSE headers
    (link_dir,) = toolkit.library_dirs  # only libcudart.so.13 exists: an unversioned link
    assert (link_dir / "libcudart.so").resolve() == (real / "lib" / "libcudart.so.13").resolve()


def test_missing_toolkit_says_where_it_looked(fresh_loader, monkeypatch, tmp_path):
    from ganvid.errors import OpsError

    monkeypatch.setattr(fresh_loader, "_toolkit_candidates", lambda: [("CUDA_HOME", tmp_path)])
    with pytest.raises(OpsError, match=f"CUDA_HOME: {tmp_path}"):
        fresh_loader.find_toolkit()


def test_a_user_arch_list_gains_the_visible_gpu_it_cannot_run_on(fresh_loader, monkeypatch):
    monkeypatch.setattr(fresh_loader, "visible_gpu_arch", lambda: "8.9")
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "8.6")
    assert fresh_loader.runtime_arch_list() == "8.6;8.9"
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "8.0+PTX")  # PTX of an older arch runs
    assert fresh_loader.runtime_arch_list() == "8.0+PTX"
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "8.9;9.0")
    assert fresh_loader.runtime_arch_list() == "8.9;9.0"


@needs_cuda_build
def test_a_kernel_that_cannot_run_falls_back_once_in_auto_mode(fresh_loader, monkeypatch):
    from ganvid import ui
    from ganvid.ops import cuda_functions

    warnings: list[str] = []
    monkeypatch.setattr(ui, "warn", warnings.append)
    monkeypatch.setattr(fresh_loader, "use_cuda", lambda x: True)

    def broken(*args):
        raise RuntimeError("ganvid filtered_lrelu kernel failed: no kernel image is available")

    monkeypatch.setattr(cuda_functions, "filtered_lrelu_cuda", broken)
    x, b = torch.randn(1, 2, 6, 6), torch.randn(2)
    from ganvid.ops.filtered_lrelu import filtered_lrelu_ref

    torch.testing.assert_close(filtered_lrelu(x, b=b), filtered_lrelu_ref(x, b=b))
    assert len(warnings) == 1 and "no kernel image" in warnings[0]
    assert "a kernel failed on this GPU" in fresh_loader.describe_backend()

    def out_of_memory(*args):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(cuda_functions, "filtered_lrelu_cuda", out_of_memory)
    with pytest.raises(torch.OutOfMemoryError):  # not ours: never hidden
        filtered_lrelu(x, b=b)
    monkeypatch.setattr(cuda_functions, "filtered_lrelu_cuda", broken)
    monkeypatch.setenv("GANVID_OPS", "cuda")
    with pytest.raises(RuntimeError, match="no kernel image"):
        filtered_lrelu(x, b=b)
