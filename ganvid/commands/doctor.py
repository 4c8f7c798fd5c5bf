"""`ganvid doctor`: what this machine can do, told truthfully."""

from __future__ import annotations

import platform

import typer

from ganvid.errors import StackError


def _torchvision_row() -> tuple[tuple[str, str], StackError | None]:
    """torchvision's version, or what is wrong with it beside this torch."""
    from ganvid import torchstack

    try:
        torchstack.check_torchvision()
    except StackError as error:
        return ("torchvision", "BROKEN (see the error below)"), error
    return ("torchvision", torchstack.torchvision_build().describe()), None


def _rows() -> tuple[list[tuple[str, str]], StackError | None]:
    import av
    import torch

    vision_row, stack_error = _torchvision_row()
    rows = [
        ("python", platform.python_version()),
        ("torch", torch.__version__),
        ("torch CUDA build", torch.version.cuda or "none (CPU-only build)"),
        vision_row,
    ]
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        rows.append(("CUDA devices", ", ".join(names)))
    else:
        rows.append(("CUDA devices", "none visible (everything runs on CPU, slowly)"))
    rows.append(("PyAV / FFmpeg", f"{av.__version__} / {av.ffmpeg_version_info}"))
    wanted = ["libx264", "h264", "aac", "libopus", "libmp3lame"]
    have = [name for name in wanted if name in av.codecs_available]
    missing = [name for name in wanted if name not in av.codecs_available]
    codecs = ", ".join(have) + (f" (missing: {', '.join(missing)})" if missing else "")
    rows.append(("codecs", codecs))
    for extra in _extra_rows():
        rows.append(extra)
    return rows, stack_error


def _extra_rows() -> list[tuple[str, str]]:
    """Rows from the parts that know their own state (ops backend, weights cache)."""
    rows: list[tuple[str, str]] = []
    try:
        from ganvid.ops.loader import describe_backend
    except ImportError:
        pass
    else:
        rows.append(("ops backend", describe_backend()))
    try:
        from ganvid.weights import describe_cache
    except ImportError:
        pass
    else:
        rows.extend(describe_cache())
    return rows


def doctor() -> None:
    """Show torch and CUDA state, the ops backend, video codecs, and which weights are present.

    Exits non-zero with one line when the installed torch and torchvision do not work together.
    """
    from rich.table import Table

    from ganvid.ui import console

    rows, stack_error = _rows()
    table = Table(show_header=False, box=None)
    for key, value in rows:
        table.add_row(f"[bold]{key}[/]", value)
    console.print(table)
    if stack_error is not None:
        raise stack_error


def register(app: typer.Typer) -> None:
    app.command()(doctor)
