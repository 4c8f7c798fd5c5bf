"""The README's commands as written: every `ganvid ...` line in its code blocks names a command
that exists and only options that command has (users copy these lines first)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import typer

from ganvid.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands() -> list[str]:
    """Each `ganvid ...` command of the README's code blocks (split at `&&`, comments off)."""
    commands = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", README.read_text(), re.S):
        for line in block.splitlines():
            for part in line.split("&&"):
                part = part.split("#")[0].strip()
                if part.startswith("ganvid "):
                    commands.append(part)
    return commands


def unknown_words(command: str) -> list[str]:
    """What in `command` the CLI does not know: a missing subcommand, or options it lacks."""
    words = shlex.split(command)[1:]
    node = typer.main.get_command(app)
    while hasattr(node, "commands") and words and words[0] in node.commands:
        node = node.commands[words.pop(0)]
    if hasattr(node, "commands"):
        return [f"no command {words[:1]}"]
    known = {name for param in node.params for name in (*param.opts, *param.secondary_opts)}
    return [
        word
        for word in words
        if word.startswith("-") and not re.match(r"-\d", word) and word.split("=")[0] not in known
    ]


def test_readme_commands_exist_with_their_options() -> None:
    commands = readme_commands()
    assert len(commands) >= 20, commands  # the quick start, edits, batch, stylemap, morph
    wrong = {command: unknown_words(command) for command in commands}
    assert not {c: w for c, w in wrong.items() if w}


def test_a_wrong_option_is_found() -> None:
    assert unknown_words("ganvid invert talk.mp4 --no-such-option") == ["--no-such-option"]
    assert unknown_words("ganvid stylemap nothing x.jpg") == ["no command ['nothing']"]
    assert unknown_words("ganvid edit talk.mp4 --strength -1 --direction age") == []
