"""`ganvid weights ...`: list, download, verify, locate and import pretrained files."""

from __future__ import annotations

from pathlib import Path

import typer

weights_app = typer.Typer(
    name="weights",
    help="Pretrained files: see what is present, download, verify, import files fetched by hand. "
    "Files live in $GANVID_HOME/weights (default: the platform cache folder).",
    no_args_is_help=True,
)


def _stdout_console():
    from rich.console import Console

    return Console(soft_wrap=False, highlight=False)


@weights_app.command("list")
def list_files() -> None:
    """Show every known pretrained file: present or missing, size, what uses it, and groups."""
    from rich.table import Table

    from ganvid import weights

    catalog = weights.manifest()
    table = Table(title=f"pretrained files in {weights.weights_dir()}", title_justify="left")
    width = max(len(name) for name in catalog.entries)
    table.add_column("name", no_wrap=True, min_width=width)
    table.add_column("status", no_wrap=True)
    table.add_column("size", no_wrap=True)
    table.add_column("used by")
    table.add_column("licence")
    for entry in catalog.entries.values():
        status, size = _status(weights, entry)
        table.add_row(
            entry.name, status, size, ", ".join(entry.used_by), weights.licence_text(entry)
        )
    console = _stdout_console()
    console.print(table)
    for group, members in catalog.groups.items():
        console.print(f"group [bold]{group}[/]: {' '.join(members)}")
    console.print("download with `ganvid weights download NAME|GROUP ...`")


def _status(weights, entry) -> tuple[str, str]:
    """(present | bundled | torch hub | partial N MB | missing, size text) for one entry."""
    from ganvid.files import human_size

    found = weights.locate(entry)
    if found is not None:
        where, path = found
        status = {"cache": "present", "torch hub": "torch hub"}.get(where, "bundled")
        return status, human_size(path.stat().st_size)
    part = weights.local_path(entry).with_name(entry.basename + ".part")
    status = f"partial {human_size(part.stat().st_size)}" if part.is_file() else "missing"
    if entry.size is not None:
        return status, human_size(entry.size)
    return status, entry.size_note.split(" (")[0] or "?"


@weights_app.command()
def download(
    names: list[str] = typer.Argument(
        ..., metavar="NAME...", help="File names or group names (invert, edit, toonify...)."
    ),
    force: bool = typer.Option(False, "--force", help="Download again even if present."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Download pretrained files into the cache (resumes interrupted downloads, checks SHA-256).

    Offline? Fetch the files by hand and use `ganvid weights import --from DIR`.
    """
    from ganvid import weights
    from ganvid.errors import WeightsError
    from ganvid.ui import info, warn

    entries = weights.manifest().expand(names)
    failures: list[str] = []
    for entry in entries:
        already = None if force else weights.find(entry)
        try:
            path = weights.download(entry, progress=not quiet, force=force)
        except WeightsError as error:
            failures.append(entry.name)
            if len(entries) == 1:
                raise
            warn(str(error))
            continue
        info(f"{entry.name}: {'already present' if already == path else 'saved'} at {path}")
    if failures:
        raise WeightsError(
            f"{len(failures)} of {len(entries)} files could not be downloaded: "
            f"{', '.join(failures)} (reasons above)"
        )


@weights_app.command()
def verify(
    names: list[str] = typer.Argument(
        None, metavar="[NAME...]", help="Files or groups to check (default: every present file)."
    ),
) -> None:
    """Check present files against the manifest's size and SHA-256; fails if any is wrong."""
    from rich.table import Table

    from ganvid import weights
    from ganvid.errors import WeightsError

    catalog = weights.manifest()
    if names:
        entries = catalog.expand(names)
    else:
        entries = [e for e in catalog.entries.values() if weights.find(e) is not None]
    table = Table(show_header=True)
    table.add_column("name", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("detail")
    checks = [weights.verify(entry) for entry in entries]
    for check in checks:
        table.add_row(check.name, check.status, check.detail)
    console = _stdout_console()
    if checks:
        console.print(table)
    else:
        console.print(f"no pretrained files present in {weights.weights_dir()}")
    failed = [check for check in checks if not check.ok]
    if failed:
        detail = "; ".join(f"{c.name} {c.status}" for c in failed)
        raise WeightsError(f"{len(failed)} of {len(checks)} files failed verification: {detail}")


@weights_app.command()
def path(name: str = typer.Argument(..., metavar="NAME", help="A pretrained file's name.")) -> None:
    """Print where a pretrained file is (for scripts); fails with how to get it if missing."""
    from ganvid import weights

    typer.echo(str(weights.resolve(name)))


@weights_app.command("import")
def import_files(
    source: Path = typer.Option(
        ..., "--from", metavar="DIR", help="Folder holding files you downloaded by hand."
    ),
    names: list[str] = typer.Argument(
        None,
        metavar="[NAME...]",
        help="Import only these files or groups (also tells apart files that share a name).",
    ),
) -> None:
    """Import files you fetched by hand (in a browser, from Google Drive) into the cache.

    Files are recognised by their names from the manifest, anywhere under DIR; each is checked
    against the manifest's size and SHA-256 where known, then hard-linked (or copied).
    """
    from ganvid import weights
    from ganvid.errors import InputError, WeightsError
    from ganvid.ui import info, warn

    results = weights.import_from(source, names or ())
    if not results:
        raise InputError(
            f"no file under {source} has the name of a known pretrained file "
            "(`ganvid weights list` shows names; files are matched by their original names)"
        )
    for result in results:
        if result.path is None:
            warn(f"{result.name}: not imported: {result.problem}")
        else:
            info(f"{result.name}: {result.source} -> {result.path}")
    rejected = [r.name for r in results if r.path is None]
    if rejected:
        raise WeightsError(
            f"{len(rejected)} files were rejected (size or SHA-256 wrong): {', '.join(rejected)}"
        )


def register(app: typer.Typer) -> None:
    app.add_typer(weights_app, name="weights")
