"""Terminal output shared by every command: one console, one progress-bar style."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True, soft_wrap=True)


def progress(transient: bool = False) -> Progress:
    """A progress bar with count, elapsed time and ETA. Use as a context manager:

    with progress() as bar:
        task = bar.add_task("encoding", total=n)
        bar.advance(task)
    """
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )


def warn(message: str) -> None:
    """One-line warning on stderr."""
    console.print(f"[yellow]warning:[/] {message}", highlight=False)


def info(message: str) -> None:
    console.print(message, highlight=False)
