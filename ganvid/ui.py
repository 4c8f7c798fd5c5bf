"""Terminal output shared by every command: one console, one progress-bar style."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

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


@contextmanager
def stage_bar(name: str, total: int, completed: int = 0) -> Iterator[Callable[..., None]]:
    """A rich progress bar with ETA; yields `update(advance=1, completed=None)`."""
    with progress() as bar:
        task = bar.add_task(name, total=total, completed=completed)

        def update(advance: int = 1, completed: int | None = None) -> None:
            if completed is not None:
                bar.update(task, completed=completed)
            else:
                bar.advance(task, advance)

        yield update


def warn(message: str) -> None:
    """One-line warning on stderr."""
    console.print(f"[yellow]warning:[/] {message}", highlight=False)


def info(message: str) -> None:
    console.print(message, highlight=False)


def stage_table(title: str, frames: int, records: Iterable) -> None:
    """One row per pipeline stage: name, done or cached, seconds, seconds per frame.

    title: heading, followed by the frame count; records: StageRecords (name, skipped,
    total_seconds) in the order they ran.
    """
    table = Table(title=f"{title}: {frames} frames", title_justify="left")
    for column in ("stage", "status", "seconds", "s/frame"):
        table.add_column(column, justify="left" if column in ("stage", "status") else "right")
    for record in records:
        seconds = record.total_seconds
        status = "cached" if record.skipped else "done"
        table.add_row(record.name, status, f"{seconds:.1f}", f"{seconds / max(1, frames):.3f}")
    console.print(table)


def output_lines(outputs: Mapping[str, Any], workdir: Any) -> None:
    """`name: path` for each file written, then the work dir."""
    for name, path in outputs.items():
        console.print(f"{name}: {path}", highlight=False)
    console.print(f"work dir: {workdir}", highlight=False)
