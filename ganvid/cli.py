"""The `ganvid` command line: parse, run a job, map errors to one line and an exit code.

Commands live in `ganvid/commands/<name>.py`, each with a `register(app)` function; heavy
imports (torch, av, dlib) happen inside the command bodies so `ganvid --help` stays fast.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback

import typer

from ganvid import __version__
from ganvid.errors import GanvidError, InputError

_UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC}
"""OSError numbers that mean the user's folder or disk refuses a write, not a bug."""

app = typer.Typer(
    name="ganvid",
    help="Edit real face videos with GANs: invert a clip, edit attributes, toonify, expand the "
    "field of view. Outputs keep the clip's length, frame rate and sound.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"ganvid {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version."
    ),
    debug: bool = typer.Option(
        False, "--debug", help="Show the full traceback when something fails."
    ),
) -> None:
    """Edit real face videos with GANs."""


def _register_commands() -> None:
    from ganvid.commands import (
        align,
        batch,
        build_ops,
        demo,
        doctor,
        edit,
        faces,
        image_ops,
        invert,
        invert_image,
        render,
        stylemap,
        toonify,
        weights,
    )

    for module in (
        demo,
        doctor,
        weights,
        align,
        faces,
        invert,
        invert_image,
        edit,
        image_ops,
        toonify,
        build_ops,
        render,
        stylemap,
        batch,
    ):
        module.register(app)


_register_commands()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (used by `main` and by tests)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv or bool(os.environ.get("GANVID_DEBUG"))
    try:
        app(args=argv, prog_name="ganvid", standalone_mode=True)
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except GanvidError as error:
        if debug:
            traceback.print_exc()
        print(f"ganvid: error: {_one_line(error)}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("ganvid: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: say so in one line, traceback with --debug
        if debug:
            traceback.print_exc()
        from ganvid import torchstack

        if torchstack.is_mismatch(error):  # torchvision imported by a path we did not guard
            stack_error = torchstack.mismatch_error(error)
            print(f"ganvid: error: {_one_line(stack_error)}", file=sys.stderr)
            return stack_error.exit_code
        if isinstance(error, OSError) and error.errno in _UNWRITABLE:  # the user's folder
            where = f" {error.filename}" if error.filename else ""
            print(
                f"ganvid: error: cannot write{where}: {error.strerror} (pass -o or --workdir "
                "to write elsewhere)",
                file=sys.stderr,
            )
            return InputError.exit_code
        print(
            f"ganvid: internal error: {type(error).__name__}: {_one_line(error)} "
            "(rerun with --debug for the traceback)",
            file=sys.stderr,
        )
        return 70
    return 0


def main() -> None:
    sys.exit(run())
