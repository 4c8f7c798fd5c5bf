"""Build, cache and choose the CUDA kernels (GANVID_OPS=auto|cuda|ref).

One extension module (csrc/ops.cpp + the .cu files) is JIT-compiled with
torch.utils.cpp_extension.load into `<ganvid cache>/ops/<key>`, where the key names the torch
and CUDA versions, the GPU architectures and a hash of the sources, so any change rebuilds.

Pitfalls handled here (measured, see shared/reference/dependencies.md §1.3-1.4):
- The arch list comes from TORCH_CUDA_ARCH_LIST or the visible GPU; with neither we stop with
  a clear message instead of torch's IndexError (nothing queries a GPU just to build).
- The `nvcc` on PATH may be a wrapper script; we look for a real toolkit root (CUDA_HOME, the pip
  `nvidia/cu13` toolkit, or wherever the nvcc on PATH really lives) and hand it to torch.
- Toolkits without cuBLAS/cuSPARSE headers get the pip `nvidia/*/include` folders on the include
  path; a toolkit with only `libcudart.so.13` gets a folder with an unversioned link for -lcudart.
- A file lock keeps two processes from building the same key at once.
- torch >= 2 does not make the built module importable by name: we use load()'s return value
  and, for an already built key, import the .so file directly (no toolkit needed then).

Why ~540 lines: each pitfall above is a few lines of probing that only matters together (the
toolkit found decides the include paths, which decide the cache key); one file keeps the whole
build decision readable in order.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import torch

from ganvid.errors import OpsError
from ganvid.files import cache_dir

MODE_ENV = "GANVID_OPS"
MODES = ("auto", "cuda", "ref")
CSRC = Path(__file__).parent / "csrc"
SOURCES = ("ops.cpp", "bias_act.cu", "upfirdn2d.cu", "filtered_lrelu.cu")
HEADERS = ("ops_core.h", "flrelu_core.h", "launch.h", "common.cuh")
CXX_FLAGS = ("-O2",)
NVCC_FLAGS = ("-O3",)
SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
DONE_FILE = "DONE.json"
FAILED_FILE = "FAILED.txt"
LOG_FILE = "build.log"
# Headers that torch's CUDA headers may need but a minimal toolkit lacks.
LIBRARY_HEADERS = ("cusparse.h", "cublas_v2.h")


@dataclass(frozen=True)
class Toolkit:
    """A CUDA toolkit usable by torch.utils.cpp_extension."""

    root: Path  # has bin/nvcc and include/cuda_runtime.h
    include_dirs: tuple[Path, ...]  # extra header folders searched after the toolkit's
    library_dirs: tuple[Path, ...]  # extra -L folders (an unversioned libcudart.so link)


@dataclass(frozen=True)
class BuildResult:
    module: ModuleType
    build_dir: Path
    arch_list: str
    seconds: float
    compiled: bool  # False when an earlier build was loaded from the cache


@dataclass
class _State:
    """What this process learned: the loaded module, or why there is none."""

    module: ModuleType | None = None
    build_dir: Path | None = None
    error: str | None = None
    stage: str = "build failed"  # what `error` is about, for describe_backend
    warned: bool = False


_state = _State()


# ------------------------------------------------------------------------------ mode, arch, key


def ops_mode() -> str:
    """GANVID_OPS, lower-cased; 'auto' when unset."""
    mode = os.environ.get(MODE_ENV, "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise OpsError(f"{MODE_ENV}={mode!r} is not valid; use one of {', '.join(MODES)}")
    return mode


def normalize_arch_list(archs: str | list[str] | tuple[str, ...]) -> str:
    """'8.6 9.0' / '8.6,9.0' / ['9.0', '8.6'] -> '8.6;9.0' (sorted, deduplicated)."""
    if isinstance(archs, str):
        archs = [archs]
    tokens = {t for a in archs for t in re.split(r"[;,\s]+", a.strip()) if t}
    if not tokens:
        raise OpsError("the CUDA arch list is empty; give e.g. --arch 8.6 or --arch 9.0")
    for token in tokens:
        if not re.fullmatch(r"\d+\.\d+a?(\+PTX)?|[A-Za-z+]+", token):
            raise OpsError(
                f"{token!r} is not a CUDA arch; use compute capabilities like 8.6 or 9.0"
            )

    return ";".join(sorted(tokens, key=lambda t: (_arch_number(t), t)))


def _arch_number(token: str) -> float:
    """'8.6+PTX' -> 8.6; named archs ('Hopper') -> 0."""
    number = re.match(r"\d+\.\d+", token)
    return float(number.group()) if number else 0.0


def visible_gpu_arch() -> str | None:
    """Compute capability of the current GPU (clamped to what this torch supports), or None."""
    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability()
    supported = [
        int(a.split("_")[1]) for a in torch.cuda.get_arch_list() if re.fullmatch(r"sm_\d+", a)
    ]
    if supported:
        major, minor = min((major, minor), max(divmod(s, 10) for s in supported))
    return f"{major}.{minor}"


def default_arch_list() -> str:
    """TORCH_CUDA_ARCH_LIST if set, else the visible GPU's arch; never queries a missing GPU."""
    user = os.environ.get("TORCH_CUDA_ARCH_LIST", "").strip()
    if user:
        return normalize_arch_list(user)
    arch = visible_gpu_arch()
    if arch is None:
        raise OpsError(
            "no CUDA device is visible to choose the GPU architecture to compile for; set "
            "TORCH_CUDA_ARCH_LIST (e.g. '8.6;9.0') or pass --arch to `ganvid build-ops`"
        )
    return arch


def runtime_arch_list() -> str:
    """default_arch_list, plus the visible GPU's arch when the user's list cannot run on it
    (neither that arch nor PTX of an older one): a build must run where it is used."""
    arch_list = default_arch_list()
    device = visible_gpu_arch()
    if device is None:
        return arch_list
    tokens = arch_list.split(";")
    exact = any(_arch_number(t) == float(device) for t in tokens)
    ptx = any(t.endswith("+PTX") and _arch_number(t) <= float(device) for t in tokens)
    return arch_list if exact or ptx else normalize_arch_list([*tokens, device])


def source_hash() -> str:
    """SHA-256 over the sources, headers and compile flags."""
    digest = hashlib.sha256()
    for name in sorted(SOURCES + HEADERS):
        digest.update(name.encode() + b"\0" + (CSRC / name).read_bytes() + b"\0")
    digest.update(repr((CXX_FLAGS, NVCC_FLAGS)).encode())
    return digest.hexdigest()


def build_key(arch_list: str) -> str:
    """Folder name: torch version, CUDA version, archs, source hash."""
    archs = "-".join(a.replace(".", "") for a in arch_list.split(";"))
    key = f"torch{torch.__version__}-cuda{torch.version.cuda}-sm{archs}-{source_hash()[:12]}"
    return re.sub(r"[^A-Za-z0-9._-]", "_", key)


def module_name() -> str:
    return f"ganvid_ops_{source_hash()[:12]}"


def ops_cache_dir() -> Path:
    return cache_dir() / "ops"


def build_dir_for(arch_list: str) -> Path:
    return ops_cache_dir() / build_key(arch_list)


def _library_file(build_dir: Path) -> Path:
    suffix = ".pyd" if sys.platform == "win32" else ".so"  # torch.utils.cpp_extension.LIB_EXT
    return build_dir / f"{module_name()}{suffix}"


# ------------------------------------------------------------------------------ CUDA toolkit


def _cudart_dir(root: Path) -> Path | None:
    for sub in ("lib64", "lib", "targets/x86_64-linux/lib", "targets/sbsa-linux/lib"):
        folder = root / sub
        if folder.is_dir() and any(folder.glob("libcudart.so*")):
            return folder
    return None


def _is_toolkit(root: Path) -> bool:
    return (
        (root / "bin" / "nvcc").is_file()
        and (root / "include" / "cuda_runtime.h").is_file()
        and _cudart_dir(root) is not None
    )


def _pip_nvidia_dirs() -> list[Path]:
    """Folders of the pip `nvidia` namespace package (nvidia/cu13, nvidia/cusparse, ...)."""
    spec = importlib.util.find_spec("nvidia")
    if spec is None or not spec.submodule_search_locations:
        return []
    dirs: list[Path] = []
    for location in spec.submodule_search_locations:
        base = Path(location)
        if base.is_dir():
            dirs.extend(sorted(p for p in base.iterdir() if p.is_dir()))
    return dirs


def _pip_toolkit_roots() -> list[Path]:
    """pip cuda-toolkit roots (nvidia/cuXX with bin/nvcc), torch's CUDA major version first."""
    major = (torch.version.cuda or "").split(".")[0]
    roots = [d for d in _pip_nvidia_dirs() if re.fullmatch(r"cu\d+", d.name)]
    return sorted(roots, key=lambda d: d.name != f"cu{major}")


def _nvcc_targets(path: Path, depth: int = 0) -> list[Path]:
    """Real nvcc binaries behind `path`, following symlinks and `exec /x/y/nvcc` wrappers."""
    path = path.resolve()
    if depth > 3 or not path.is_file():
        return []
    with path.open("rb") as handle:
        head = handle.read(65536)
    if not head.startswith(b"#!"):
        return [path]
    text = head.decode("utf-8", "replace")
    targets: list[Path] = []
    for match in re.findall(r"(/[^\s\"'`;|&]*/nvcc)\b", text):
        if Path(match).resolve() != path:
            targets.extend(_nvcc_targets(Path(match), depth + 1))
    return targets


def _toolkit_candidates() -> list[tuple[str, Path]]:
    candidates: list[tuple[str, Path]] = []
    for env in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(env):
            candidates.append((env, Path(os.environ[env]).expanduser()))
    candidates += [("pip cuda-toolkit", root) for root in _pip_toolkit_roots()]
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates += [("nvcc on PATH", t.parent.parent) for t in _nvcc_targets(Path(nvcc))]
    candidates.append(("default location", Path("/usr/local/cuda")))
    return candidates


def _extra_include_dirs(root: Path) -> tuple[Path, ...]:
    missing = [h for h in LIBRARY_HEADERS if not (root / "include" / h).is_file()]
    found: list[Path] = []
    for header in missing:
        for folder in _pip_nvidia_dirs():
            include = folder / "include"
            if (include / header).is_file() and include not in found:
                found.append(include)
                break
    return tuple(found)


def _cudart_link_dir(root: Path) -> tuple[Path, ...]:
    """A folder with an unversioned libcudart.so link when the toolkit ships only .so.N."""
    lib = _cudart_dir(root)
    if lib is None or (lib / "libcudart.so").exists():
        return ()
    versioned = sorted(lib.glob("libcudart.so.*"))
    if not versioned:
        return ()
    link_dir = ops_cache_dir() / "cudart-link" / hashlib.sha256(str(lib).encode()).hexdigest()[:12]
    link_dir.mkdir(parents=True, exist_ok=True)
    link = link_dir / "libcudart.so"
    if not link.exists():
        with contextlib.suppress(FileExistsError):
            link.symlink_to(versioned[0])
    return (link_dir,)


def find_toolkit() -> Toolkit:
    """The CUDA toolkit to build with; OpsError says where we looked when there is none."""
    looked: list[str] = []
    for origin, root in _toolkit_candidates():
        if _is_toolkit(root):
            return Toolkit(root, _extra_include_dirs(root), _cudart_link_dir(root))
        looked.append(f"{origin}: {root}")
    raise OpsError(
        "no CUDA toolkit (nvcc, cuda_runtime.h, libcudart) found; install one with "
        '`pip install "cuda-toolkit[nvcc]==13.2.2"` (match your torch\'s CUDA version) or set '
        f"CUDA_HOME. Looked at: {'; '.join(looked) or 'nothing'}"
    )


@contextlib.contextmanager
def _build_environment(toolkit: Toolkit, arch_list: str):
    """Temporarily point torch's builder at `toolkit` and the arch list."""
    cpp = _import_cpp_extension()

    saved_env = {k: os.environ.get(k) for k in ("TORCH_CUDA_ARCH_LIST", "CPLUS_INCLUDE_PATH")}
    saved_home = cpp.CUDA_HOME
    os.environ["TORCH_CUDA_ARCH_LIST"] = arch_list
    if toolkit.include_dirs:
        extra = os.pathsep.join(str(d) for d in toolkit.include_dirs)
        old = saved_env["CPLUS_INCLUDE_PATH"]
        os.environ["CPLUS_INCLUDE_PATH"] = extra + (os.pathsep + old if old else "")
    cpp.CUDA_HOME = str(toolkit.root)
    try:
        yield
    finally:
        cpp.CUDA_HOME = saved_home
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ------------------------------------------------------------------------------ build and load


def _import_library(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(module_name(), path)
    if spec is None or spec.loader is None:
        raise OpsError(f"cannot import the compiled ops from {path}; delete it and rebuild")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except ImportError as error:
        raise OpsError(
            f"the compiled ops in {path.parent} do not load ({error}); delete that folder and "
            "run `ganvid build-ops`"
        ) from error
    return module


def _summarize_failure(error: BaseException) -> str:
    """The first compiler/linker error line of a failed build, else the exception text."""
    text = str(error)
    for line in text.splitlines():
        if re.search(r"error|cannot find|No such file", line, re.IGNORECASE):
            if "Error building extension" not in line:
                return " ".join(line.split())[:300]
    return " ".join(text.split())[:300] or type(error).__name__


def _import_cpp_extension() -> ModuleType:
    """torch.utils.cpp_extension, without its import-time guess of CUDA_HOME from a wrapper
    nvcc on PATH being logged (we pass the real toolkit root ourselves)."""
    import logging

    logger = logging.getLogger("torch.utils.cpp_extension")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        import torch.utils.cpp_extension as cpp
    finally:
        logger.setLevel(level)
    return cpp


def _compile(toolkit: Toolkit, arch_list: str, build_dir: Path, verbose: bool) -> ModuleType:
    load = _import_cpp_extension().load

    with _build_environment(toolkit, arch_list):
        return load(
            name=module_name(),
            sources=[str(CSRC / s) for s in SOURCES],
            extra_cflags=list(CXX_FLAGS),
            extra_cuda_cflags=list(NVCC_FLAGS),
            extra_ldflags=[f"-L{d}" for d in toolkit.library_dirs],
            extra_include_paths=[str(CSRC)],
            build_directory=str(build_dir),
            with_cuda=True,
            verbose=verbose,
        )


def build(
    arch_list: str | None = None, *, force: bool = False, verbose: bool = False
) -> BuildResult:
    """Compile (or load from the cache) the extension for `arch_list` (default: see
    `default_arch_list`). Raises OpsError with the reason when that is impossible."""
    if not torch.version.cuda:
        raise OpsError(
            "this torch is a CPU-only build; install a CUDA build of torch to use the CUDA ops"
        )
    from filelock import FileLock

    arch_list = normalize_arch_list(arch_list) if arch_list else default_arch_list()
    build_dir = build_dir_for(arch_list)
    build_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(build_dir) + ".lock"):
        library = _library_file(build_dir)
        if not force and (build_dir / DONE_FILE).is_file() and library.is_file():
            start = time.monotonic()
            module = _import_library(library)
            return BuildResult(module, build_dir, arch_list, time.monotonic() - start, False)
        start = time.monotonic()
        try:
            toolkit = find_toolkit()
            module = _compile(toolkit, arch_list, build_dir, verbose)
        except Exception as error:  # any compiler/linker/toolkit problem becomes one OpsError
            reason = str(error) if isinstance(error, OpsError) else _summarize_failure(error)
            (build_dir / LOG_FILE).write_text(f"{type(error).__name__}: {error}\n")
            (build_dir / FAILED_FILE).write_text(reason + "\n")
            raise OpsError(
                f"building the CUDA ops failed: {reason} (log: {build_dir / LOG_FILE})"
            ) from error
        seconds = time.monotonic() - start
        info = {"arch_list": arch_list, "toolkit": str(toolkit.root), "seconds": round(seconds, 1)}
        (build_dir / DONE_FILE).write_text(json.dumps(info) + "\n")
        (build_dir / FAILED_FILE).unlink(missing_ok=True)
        return BuildResult(module, build_dir, arch_list, seconds, True)


# ------------------------------------------------------------------------------ dispatch


def _warn_once(message: str) -> None:
    if not _state.warned:
        _state.warned = True
        from ganvid.ui import warn

        warn(message)


def _previous_failure(arch_list: str) -> str | None:
    failed = build_dir_for(arch_list) / FAILED_FILE
    return failed.read_text().strip() if failed.is_file() else None


def cuda_module() -> ModuleType | None:
    """The loaded extension, building it on first use; None on the reference path.

    auto: a failed build (now or in an earlier run) falls back to the reference path with one
    warning; cuda: raises OpsError instead; ref: never builds.
    """
    mode = ops_mode()
    if mode == "ref":
        return None
    if _state.module is not None:
        return _state.module
    if _state.error is None:
        try:
            arch_list = runtime_arch_list()
            earlier = _previous_failure(arch_list) if mode == "auto" else None
            if earlier:
                raise OpsError(f"an earlier build failed: {earlier}")
            result = build(arch_list)
            activate(result)
            return result.module
        except OpsError as error:
            _state.error = str(error)
    if mode == "cuda":
        raise OpsError(f"{MODE_ENV}=cuda but the CUDA ops are unavailable: {_state.error}")
    _warn_once(
        f"CUDA ops unavailable, using the slower reference ops ({_state.error}); "
        f"`ganvid build-ops` retries, {MODE_ENV}=ref silences this"
    )
    return None


def kernel_failed(error: RuntimeError) -> None:
    """Called when a kernel call raised. A launch failure of ours (e.g. a build for another GPU)
    in auto mode switches this process to the reference ops with one warning; anything else
    (out of memory, bad arguments, GANVID_OPS=cuda) is raised again."""
    text = " ".join(str(error).split())
    if not re.search(r"ganvid .*kernel failed", text) or ops_mode() != "auto":
        raise error
    _state.module, _state.error, _state.stage = None, text[:300], "a kernel failed on this GPU"
    _warn_once(f"CUDA ops failed to run ({_state.error}); using the slower reference ops")


def use_cuda(x: torch.Tensor) -> bool:
    """True when x should go through the compiled kernels (CUDA tensor of a supported dtype,
    GANVID_OPS not 'ref', and the extension builds/loads)."""
    if not x.is_cuda or x.dtype not in SUPPORTED_DTYPES:
        return False
    return cuda_module() is not None


def describe_backend() -> str:
    """One line for `ganvid doctor` on which path CUDA tensors take; never builds anything."""
    try:
        mode = ops_mode()
    except OpsError as error:
        return f"ref ({error})"
    if mode == "ref":
        return f"ref ({MODE_ENV}=ref)"
    if not torch.version.cuda:
        return "ref (CPU-only torch build)"
    if _state.module is not None:
        return f"cuda (loaded, cached at {_state.build_dir})"
    if _state.error is not None:
        return f"ref ({_state.stage}: {_state.error})"
    if not torch.cuda.is_available():
        return "ref (no CUDA device)"
    try:
        arch_list = runtime_arch_list()
    except OpsError as error:
        return f"ref ({error})"
    build_dir = build_dir_for(arch_list)
    if (build_dir / DONE_FILE).is_file() and _library_file(build_dir).is_file():
        return f"cuda (built for sm {arch_list}, cached at {build_dir})"
    failure = _previous_failure(arch_list)
    if failure:
        return f"ref (build failed: {failure}; `ganvid build-ops` retries)"
    return "cuda (not built yet; `ganvid build-ops` compiles it)"


def loaded_module() -> ModuleType | None:
    """The extension if this process has loaded it (no build, no checks)."""
    return _state.module


def activate(result: BuildResult) -> None:
    """Use a freshly built module in this process (after `build`)."""
    _state.module, _state.build_dir, _state.error = result.module, result.build_dir, None
    _state.stage = "build failed"


def reset_state() -> None:
    """Forget what this process learned (tests; after `ganvid build-ops`)."""
    global _state
    _state = _State()
    sys.modules.pop(module_name(), None)
