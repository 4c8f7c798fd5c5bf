"""The compiled ops: the build (no GPU needed), the kernels' math through the extension's CPU
emulation, and — on a GPU — every kernel against the reference at SG3-R/T-1024 layer shapes.

The build needs a CUDA build of torch, ninja, a C++ compiler and a CUDA toolkit (CI installs
`cuda-toolkit[nvcc]`); without them these tests are skipped with the reason.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ganvid.errors import OpsError
from ganvid.ops import cuda_functions, loader
from ganvid.ops.bias_act import ACTIVATIONS, bias_act_ref, resolve
from ganvid.ops.filtered_lrelu import filtered_lrelu_ref
from ganvid.ops.upfirdn2d import setup_filter, upfirdn2d_ref

BUILD_ARCH = "9.0"  # any arch torch supports: the build itself needs no GPU
HAS_GPU = torch.cuda.is_available()


def needs_gpu(test):
    """GPU-only: marked `cuda` (selected by `pytest -m cuda`) and skipped without a GPU."""
    return pytest.mark.cuda(pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU")(test))


def _build_skip_reason() -> str | None:
    if not torch.version.cuda:
        return "torch is a CPU-only build"
    if not loader._import_cpp_extension().is_ninja_available():
        return "ninja is not installed"
    try:
        loader.find_toolkit()
    except OpsError as error:
        return str(error)
    return None


@pytest.fixture(scope="module")
def built(pytestconfig):
    """(BuildResult, GANVID_HOME) of a build with an explicit TORCH_CUDA_ARCH_LIST.

    The home is pytest's cache folder, so a rerun with unchanged sources reuses the build (the
    key hashes the sources); a fresh checkout (CI) always compiles.
    """
    reason = _build_skip_reason()
    if reason:
        pytest.skip(f"cannot build the CUDA ops here: {reason}")
    home = Path(pytestconfig.cache.mkdir("ganvid_ops_home"))
    arch = loader.visible_gpu_arch() or BUILD_ARCH
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GANVID_HOME", str(home))
        mp.setenv("TORCH_CUDA_ARCH_LIST", arch)
        mp.setenv("MAX_JOBS", "2")
        result = loader.build()
    what = "compiled" if result.compiled else "loaded from the cache"
    print(f"\nCUDA ops for sm {arch} {what} in {result.seconds:.1f} s")
    return result, home


@pytest.fixture
def kernels(built):
    """The built module active in this process (CPU tensors then run its CPU emulation)."""
    loader.reset_state()
    loader.activate(built[0])
    yield built[0].module
    loader.reset_state()


# --------------------------------------------------------------------------- the build


def test_extension_compiles_without_a_gpu_for_the_given_arch(built):
    result, home = built
    assert loader._library_file(result.build_dir).is_file()
    assert result.build_dir.parent == home / "ops"
    assert f"sm{result.arch_list.replace('.', '')}" in result.build_dir.name
    assert (result.build_dir / loader.DONE_FILE).is_file()
    for name in ("bias_act", "bias_act_grad", "upfirdn_pass", "filtered_lrelu"):
        assert callable(getattr(result.module, name))


def test_cached_build_loads_without_the_toolkit(built, monkeypatch):
    result, home = built
    monkeypatch.setenv("GANVID_HOME", str(home))
    monkeypatch.setattr(loader, "find_toolkit", lambda: pytest.fail("looked for a toolkit"))
    again = loader.build(result.arch_list)
    assert not again.compiled and again.build_dir == result.build_dir
    assert again.seconds < 5


def test_build_ops_command_reports_the_cache(built, monkeypatch, cli):
    result, home = built
    monkeypatch.setenv("GANVID_HOME", str(home))
    code, _, err = cli("build-ops", "--arch", result.arch_list)
    assert code == 0
    assert "already built" in err and str(result.build_dir) in " ".join(err.split())


# --------------------------------------------------------------------------- kernel math (CPU)


def _rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    expected = expected.double()
    scale = expected.abs().max().item() + 1e-12
    return (actual.double() - expected).abs().max().item() / scale


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_emulated_bias_act_matches_reference(kernels, act):
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(3, 5, 4, 6, generator=g) * 2).requires_grad_()
    b = torch.randn(5, generator=g).requires_grad_()
    params = resolve(act, None, None, 0.9)
    y = cuda_functions.bias_act_cuda(x, b, 1, params)
    ref = bias_act_ref(x, b, 1, act, None, None, 0.9)
    dy = torch.randn_like(y)
    grads = torch.autograd.grad(y, (x, b), dy)
    ref_grads = torch.autograd.grad(ref, (x, b), dy)
    assert _rel_err(y, ref) < 1e-6
    assert _rel_err(grads[0], ref_grads[0]) < 1e-6 and _rel_err(grads[1], ref_grads[1]) < 1e-6


UPFIRDN_CASES = [
    # (h, w, f taps (2-D when negative), up, down, padding)
    (9, 11, 12, 2, 2, [11, 10, 11, 10]),
    (13, 12, 24, 4, 2, [-2, -5, -2, -5]),
    (10, 7, -4, 2, 1, [2, 1, 3, 0]),
    (11, 13, -3, (1, 3), (2, 1), [1, -1, 2, 3]),
    (8, 8, 4, 1, 2, [1, 2, 1, 2]),
]


@pytest.mark.parametrize("case", UPFIRDN_CASES)
def test_emulated_upfirdn2d_matches_reference_to_second_order(kernels, case):
    h, w, taps, up, down, padding = case
    g = torch.Generator().manual_seed(h * w)
    f = torch.rand([abs(taps)] * (2 if taps < 0 else 1), generator=g) + 0.1
    x = torch.randn(2, 3, h, w, generator=g, requires_grad=True)
    y = cuda_functions.upfirdn2d_cuda(x, f, up, down, padding, False, 1.5)
    ref = upfirdn2d_ref(x, f, up, down, padding, False, 1.5)
    assert y.shape == ref.shape and _rel_err(y, ref) < 1e-6
    dy = torch.randn_like(y, requires_grad=True)
    (dx,) = torch.autograd.grad(y, x, dy, create_graph=True)
    (ref_dx,) = torch.autograd.grad(ref, x, dy, create_graph=True)
    assert _rel_err(dx, ref_dx) < 1e-6
    v = torch.randn_like(dx)  # the backward is itself differentiable (adjoint of the adjoint)
    assert _rel_err(torch.autograd.grad(dx, dy, v)[0], torch.autograd.grad(ref_dx, dy, v)[0]) < 1e-6


def _sg3_layers(cfg):
    from ganvid.nn.stylegan3 import layer_filters, synthesis_schedule

    for spec in synthesis_schedule(cfg)[1]:
        fu, fd = layer_filters(spec)
        yield spec, fu, fd


def compare_layer(op, spec, fu, fd, batch, device, dtype, clamp=256.0, tol=1e-5) -> None:
    """filtered_lrelu `op` vs the float64 reference for one SG3 layer: output and gradients."""
    g = torch.Generator(device=device).manual_seed(spec.index)
    size = spec.in_size + spec.conv_kernel - 1
    x = torch.randn(batch, spec.out_channels, size, size, generator=g, device=device)
    b = torch.randn(spec.out_channels, generator=g, device=device)
    x, b = x.to(dtype).requires_grad_(), b.to(dtype).requires_grad_()
    kwargs = dict(
        up=spec.up_factor,
        down=spec.down_factor,
        padding=list(spec.padding),
        gain=1 if spec.is_torgb else np.sqrt(2),
        slope=1 if spec.is_torgb else 0.2,
        clamp=clamp,
    )
    fu_d, fd_d = (None if f is None else f.to(device) for f in (fu, fd))
    y = op(x, fu_d, fd_d, b, **kwargs)
    assert y.dtype == dtype and y.shape[2:] == (spec.out_size, spec.out_size)
    dy = torch.randn(y.shape, generator=g, device=device).to(dtype)
    grads = torch.autograd.grad(y, (x, b), dy)

    x64, b64 = x.detach().double().requires_grad_(), b.detach().double().requires_grad_()
    ref = filtered_lrelu_ref(
        x64,
        None if fu_d is None else fu_d.double(),
        None if fd_d is None else fd_d.double(),
        b64,
        **kwargs,
    )
    ref_grads = torch.autograd.grad(ref, (x64, b64), dy.double())
    assert _rel_err(y, ref) < tol, spec.name
    assert _rel_err(grads[0], ref_grads[0]) < tol, spec.name
    assert _rel_err(grads[1], ref_grads[1]) < tol, spec.name


def _small_config(kind: str):
    from ganvid.nn.stylegan3 import SG3Config

    make = SG3Config.config_r if kind == "R" else SG3Config.config_t
    return make(64, channel_base=64, channel_max=2)


@pytest.mark.parametrize("kind", ["R", "T"])
def test_emulated_filtered_lrelu_matches_reference_on_sg3_64_layers(kernels, kind):
    for spec, fu, fd in _sg3_layers(_small_config(kind)):
        compare_layer(cuda_functions.filtered_lrelu_cuda, spec, fu, fd, 1, "cpu", torch.float32)


def test_emulated_filtered_lrelu_clamp_2d_up_filter_and_no_grad(kernels):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 15, 14, generator=g, requires_grad=True)
    b = torch.randn(3, generator=g, requires_grad=True)
    fu2d, fd = setup_filter(torch.rand(4, 4, generator=g) + 0.1), torch.rand(6, generator=g)
    args = (fu2d, fd, b, 2, 2, [2, 3, 1, 2], np.sqrt(2), 0.2, 0.4, False)  # 2-D fu: the passes
    y = cuda_functions.filtered_lrelu_cuda(x, *args)
    ref = filtered_lrelu_ref(x, *args)
    dy = torch.randn_like(y)
    assert _rel_err(y, ref) < 1e-6
    for a, r in zip(
        torch.autograd.grad(y, (x, b), dy), torch.autograd.grad(ref, (x, b), dy), strict=True
    ):
        assert _rel_err(a, r) < 1e-6
    with torch.no_grad():  # no mask is written; same result
        assert _rel_err(cuda_functions.filtered_lrelu_cuda(x, *args), ref) < 1e-6


# --------------------------------------------------------------------------- on a GPU


@pytest.fixture
def gpu_kernels(built, monkeypatch):
    monkeypatch.setenv("GANVID_OPS", "cuda")
    loader.reset_state()
    loader.activate(built[0])
    yield
    loader.reset_state()


def _sg3_1024_layers():
    from ganvid.nn.stylegan3 import SG3Config

    for kind in ("R", "T"):
        make = SG3Config.config_r if kind == "R" else SG3Config.config_t
        for spec, fu, fd in _sg3_layers(make(1024)):
            yield pytest.param(spec, fu, fd, id=f"{kind}-{spec.name}")


def _public_filtered_lrelu(x, fu, fd, b, **kwargs):
    from ganvid import ops

    return ops.filtered_lrelu(x, fu, fd, b, **kwargs)


@needs_gpu
@pytest.mark.parametrize(("spec", "fu", "fd"), list(_sg3_1024_layers()) if HAS_GPU else [])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_cuda_filtered_lrelu_matches_reference_at_sg3_1024(gpu_kernels, spec, fu, fd, dtype):
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    compare_layer(_public_filtered_lrelu, spec, fu, fd, 1, "cuda", dtype, tol=tol)
    torch.cuda.empty_cache()


@needs_gpu
def test_cuda_filtered_lrelu_clamps_like_the_reference(gpu_kernels):
    from ganvid.nn.stylegan3 import SG3Config

    spec, fu, fd = next(iter(_sg3_layers(SG3Config.config_r(1024))))
    compare_layer(_public_filtered_lrelu, spec, fu, fd, 2, "cuda", torch.float32, clamp=0.05)


@needs_gpu
@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_cuda_bias_act_matches_reference(gpu_kernels, act, dtype):
    from ganvid import ops

    for shape, dim in (((16, 512), 1), ((4, 64, 33, 35), 1), ((3, 7, 5), 2)):
        x = torch.randn(shape, device="cuda").to(dtype).requires_grad_()
        b = torch.randn(shape[dim], device="cuda").to(dtype).requires_grad_()
        y = ops.bias_act(x, b, dim=dim, act=act, clamp=1.5)
        dy = torch.randn_like(y)
        x64, b64 = x.detach().double().requires_grad_(), b.detach().double().requires_grad_()
        ref = bias_act_ref(x64, b64, dim, act, clamp=1.5)
        tol = {torch.float32: 1e-5, torch.float16: 5e-3, torch.bfloat16: 3e-2}[dtype]
        assert _rel_err(y, ref) < tol
        grads = torch.autograd.grad(y, (x, b), dy)
        ref_grads = torch.autograd.grad(ref, (x64, b64), dy.double())
        assert _rel_err(grads[0], ref_grads[0]) < tol
        assert _rel_err(grads[1], ref_grads[1]) < tol * 10  # summed in float32, rounded to dtype


@needs_gpu
@pytest.mark.parametrize("case", UPFIRDN_CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_cuda_upfirdn2d_matches_reference(gpu_kernels, case, dtype):
    from ganvid import ops

    h, w, taps, up, down, padding = case
    f = torch.rand([abs(taps)] * (2 if taps < 0 else 1)) + 0.1
    x = torch.randn(4, 64, h * 8, w * 8, device="cuda").to(dtype).requires_grad_()
    y = ops.upfirdn2d(x, f.cuda(), up, down, padding, gain=1.5)
    x64 = x.detach().double().requires_grad_()
    ref = upfirdn2d_ref(x64, f.double().cuda(), up, down, padding, gain=1.5)
    dy = torch.randn_like(y)
    tol = 1e-5 if dtype == torch.float32 else 1e-2
    assert _rel_err(y, ref) < tol
    assert (
        _rel_err(torch.autograd.grad(y, x, dy)[0], torch.autograd.grad(ref, x64, dy.double())[0])
        < tol
    )


@needs_gpu
def test_cuda_backend_is_reported_and_used(gpu_kernels, monkeypatch):
    from ganvid import ops

    calls = []
    original = cuda_functions.filtered_lrelu_cuda
    monkeypatch.setattr(
        cuda_functions, "filtered_lrelu_cuda", lambda *a: calls.append(a) or original(*a)
    )
    assert loader.describe_backend().startswith("cuda")
    ops.filtered_lrelu(torch.randn(1, 2, 8, 8, device="cuda"))
    assert len(calls) == 1
