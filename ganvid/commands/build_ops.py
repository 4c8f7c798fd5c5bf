"""`ganvid build-ops`: compile the CUDA kernels ahead of time."""

from __future__ import annotations

import typer


def build_ops(
    arch: list[str] = typer.Option(
        None,
        "--arch",
        metavar="X.Y",
        help="GPU compute capability to compile for, e.g. 8.6 or 9.0; repeat for several. "
        "Default: TORCH_CUDA_ARCH_LIST, else the visible GPU's. Needed on machines without a GPU.",
    ),
    force: bool = typer.Option(False, "--force", help="Rebuild even if a cached build exists."),
    verbose: bool = typer.Option(False, "--verbose", help="Show the compiler commands."),
) -> None:
    """Compile the CUDA kernels (bias_act, upfirdn2d, filtered_lrelu) into the ganvid cache.

    Without this, the first run on a GPU compiles them (about a minute) or, if compiling fails,
    falls back to the slower reference ops. Needs a CUDA build of torch, ninja, a C++ compiler
    and a CUDA toolkit (e.g. `pip install "cuda-toolkit[nvcc]==13.2.2"`); no GPU is needed when
    --arch is given.
    """
    from ganvid.ops import loader
    from ganvid.ui import info

    arch_list = loader.normalize_arch_list(arch) if arch else loader.default_arch_list()
    if not (loader.build_dir_for(arch_list) / loader.DONE_FILE).is_file() or force:
        info(f"compiling the CUDA ops for sm {arch_list} (about a minute)...")
    result = loader.build(arch_list, force=force, verbose=verbose)
    if result.compiled:
        info(f"built the CUDA ops for sm {result.arch_list} in {result.seconds:.1f} s")
    else:
        info(f"the CUDA ops for sm {result.arch_list} were already built")
    info(f"cached at {result.build_dir}")


def register(app: typer.Typer) -> None:
    app.command("build-ops")(build_ops)
