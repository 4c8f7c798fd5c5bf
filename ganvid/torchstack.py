"""The installed torch / torchvision pair: what was resolved, and a one-line diagnosis when the
two do not work together.

torchvision's compiled operators are built against one torch build. Installed beside another
(the classic case: a CPU-only torch wheel next to PyPI's CUDA torchvision of the same version),
`import torchvision` dies with `RuntimeError: operator torchvision::nms does not exist`. lpips and
face-alignment import torchvision, so every command that needs them would stop with an internal
error. This module turns that into a `StackError` naming both builds and the pip command that
installs a matching pair. It reads torchvision's metadata from its files without importing it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from ganvid.errors import StackError

#: PyTorch's own package index; its CPU and CUDA sub-indexes carry matching pairs.
TORCH_INDEX = "https://download.pytorch.org/whl"
#: torchvision 0.N pairs with torch 2.(N-15) (0.15 <-> 2.0, ..., 0.29 <-> 2.14).
_MINOR_OFFSET = 15


@dataclass(frozen=True)
class Build:
    """One package's version and the build it is: 'CPU-only', 'CUDA 13.0', or 'PyPI default'."""

    version: str
    kind: str

    def describe(self) -> str:
        return f"{self.version} ({self.kind})"


def _kind_from_local_tag(version: str) -> str | None:
    """'2.13.0+cpu' -> 'CPU-only', '0.29.1+cu130' -> 'CUDA 13.0', no tag -> None."""
    local = version.partition("+")[2]
    if local == "cpu":
        return "CPU-only"
    match = re.fullmatch(r"cu(\d+)(\d)", local)
    return f"CUDA {match[1]}.{match[2]}" if match else None


def torch_build() -> Build:
    import torch

    kind = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU-only"
    return Build(torch.__version__, kind)


def torchvision_build() -> Build | None:
    """torchvision's version and build, read from its files (None: not installed).

    Wheels from PyTorch's index carry the build in the version's local tag; PyPI's carry none
    (on Linux they are built for PyPI's default CUDA torch).
    """
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    version_file = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    text = version_file.read_text() if version_file.is_file() else ""
    match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.M)
    if match:
        version = match[1]
    else:
        try:
            version = importlib.metadata.version("torchvision")
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
    return Build(version, _kind_from_local_tag(version) or "PyPI default build")


def matching_torchvision(torch_version: str) -> str | None:
    """The torchvision release that pairs with a torch version ('2.13.0+cpu' -> '0.28.0')."""
    match = re.match(r"2\.(\d+)\.(\d+)", torch_version)
    if not match:
        return None
    return f"0.{int(match[1]) + _MINOR_OFFSET}.{match[2]}"


def fix_command(torch: Build) -> str:
    """The pip command that installs a torchvision matching this torch build."""
    base = torch.version.split("+")[0]
    vision = matching_torchvision(base)
    pins = f"torch=={base} torchvision=={vision}" if vision else "torch torchvision"
    local = torch.version.split("+")[1] if "+" in torch.version else ""
    if local:  # a build from PyTorch's index (cpu, cu130, ...): take the pair from there
        return f"pip install --force-reinstall {pins} --index-url {TORCH_INDEX}/{local}"
    return f"pip install --force-reinstall {pins}"


def mismatch_error(cause: BaseException) -> StackError:
    torch = torch_build()
    vision = torchvision_build()
    vision_text = vision.describe() if vision else "(version unknown)"
    return StackError(
        f"torch {torch.describe()} and torchvision {vision_text} do not work together "
        f"({' '.join(str(cause).split())}); install a matching pair: {fix_command(torch)}"
    )


def is_mismatch(error: BaseException) -> bool:
    """True for the errors torchvision raises when its operators do not fit the torch build."""
    text = str(error)
    return isinstance(error, (RuntimeError, ImportError, OSError)) and (
        "torchvision::" in text or "torchvision/_C" in text or "torchvision._C" in text
    )


def import_torchvision():
    """Import torchvision, turning a torch / torchvision mismatch into one StackError line."""
    try:
        import torchvision
    except ModuleNotFoundError as error:
        if error.name != "torchvision":
            raise
        torch = torch_build()
        raise StackError(
            f"torchvision is not installed (torch {torch.describe()}): {fix_command(torch)}"
        ) from None
    except (RuntimeError, ImportError, OSError) as error:
        if not is_mismatch(error):
            raise
        raise mismatch_error(error) from None
    return torchvision


def check_torchvision():
    """`import_torchvision` plus one call of its compiled operators (`ops.nms`), which a
    mismatched pair can import but not run; StackError in either case."""
    import torch

    vision = import_torchvision()
    boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    try:
        vision.ops.nms(boxes, torch.tensor([1.0, 0.5]), 0.5)
    except RuntimeError as error:
        if not is_mismatch(error):
            raise
        raise mismatch_error(error) from None
    return vision
