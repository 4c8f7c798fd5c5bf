"""`ganvid doctor`: what this machine can do, told truthfully."""

from __future__ import annotations

import platform

import typer


def _rows() -> list[tuple[str, str]]:
    import av
    import torch

    rows = [
        ("python", platform.python_version()),
        ("torch", torch.__version__),
        ("torch CUDA build", torch.version.cuda or "none (CPU-only build)"),
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
    return rows


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
    """Show torch and CUDA state, the ops backend, video codecs, and which weights are present."""
    from rich.table import Table

    from ganvid.ui import console

    table = Table(show_header=False, box=None)
    for key, value in _rows():
        table.add_row(f"[bold]{key}[/]", value)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command()(doctor)
