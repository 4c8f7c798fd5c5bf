"""The job file of `ganvid batch`: TOML, one table per job.

    [defaults]                  # optional: options every job gets unless it sets its own
    device = "auto"

    [talk]                      # a job; the table's name is the job's name
    command = "invert"
    clip = "clips/talk.mp4"
    pti-steps = 500             # any option of the command, named as on its command line
    side-by-side = true         # flags: true / false (false gives --no-X where X has one)

    [talk-older]                # same work dir as [talk]: runs after it, in file order
    command = "edit"
    clip = "clips/talk.mp4"
    direction = ["age:3", "smile:1"]   # repeatable options take a list

    [interview]                 # one long clip shared by up to 4 workers: 4 part jobs
    command = "invert"          # (`ganvid invert --part K/4`: a quarter of the detection,
    clip = "clips/long.mp4"     # encoder and render each, PTI once), then the job itself,
    split = 4                   # which joins them; only commands with --part take split

    [dailies]                   # a folder job: one job per video in the folder
    command = "toonify"
    folder = "dailies"
    glob = "*.mp4"              # optional [default: every .mp4 .mov .mkv .avi .webm .m4v]
    output = "out/{stem}_pixar.mp4"    # {stem}: the clip's file name without its extension
    style = "pixar"

Relative paths (clip, folder and every path option) are relative to the job file's folder, so
a job file means the same from any directory and on every node of a cluster that mounts it.
Every job is checked against its command's own options before anything runs: an unknown
command, an unknown option or a value the command refuses is one line naming the job and key.
"""

from __future__ import annotations

import functools
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ganvid.errors import InputError

COMMANDS = ("align", "invert", "edit", "expand-fov", "toonify")
"""The commands a job can run: those that take a clip and keep their work in a work dir."""

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")
RESERVED = ("command", "clip", "folder", "glob", "split")
"""Keys of a job table that are not options of its command."""


@dataclass(frozen=True)
class Job:
    """One command over one clip, ready to run anywhere (absolute paths, plain strings).

    argv: the command's arguments exactly as on its command line (`ganvid COMMAND *argv`).
    workdir: the work dir the job writes; jobs sharing one run one after another.
    """

    name: str
    command: str
    argv: tuple[str, ...]
    workdir: Path
    part_of: str | None = None
    """The job (split = N) this job is a part of: the parts of one job run at once on its
    work dir; the job itself runs after them."""

    @property
    def command_line(self) -> str:
        return " ".join(["ganvid", self.command, *self.argv])


def cli_command(name: str):
    """The click command of `ganvid NAME` (one of COMMANDS), built by the command modules' own
    `register`, as the CLI builds it: the options mean what they mean on the command line.

    Batch builds the table itself instead of importing `ganvid.cli`: the CLI registers `batch`,
    so reaching back up to it would be an import cycle; a job never runs `batch`."""
    return _command_table()[name]


@functools.cache
def _command_table() -> dict:
    import typer
    import typer.main

    from ganvid.commands import align, edit, invert, toonify

    app = typer.Typer(rich_markup_mode=None)
    for module in (align, invert, edit, toonify):
        module.register(app)
    return dict(typer.main.get_command(app).commands)


def read_toml(path: Path) -> dict:
    from ganvid.weights import tomllib

    if not path.is_file():
        raise InputError(f"{path}: no such job file")
    if tomllib is None:
        raise InputError("reading a job file on Python 3.10 needs `pip install tomli`")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not a valid TOML job file: {error}") from None


def load_jobfile(path: str | os.PathLike) -> list[Job]:
    """Every job of the job file at `path`, in file order (folder jobs expanded, sorted by clip
    name); InputError (one line, naming the job and key) for anything a command would refuse."""
    path = Path(path)
    data = read_toml(path)
    base = path.resolve().parent
    defaults = data.pop("defaults", {})
    if not isinstance(defaults, dict):
        raise InputError(f"{path}: [defaults] must be a table of options")
    jobs: list[Job] = []
    used_defaults: set[str] = set()
    for name, table in data.items():
        where = f"{path}: job '{name}'"
        if not isinstance(table, dict):
            raise InputError(f"{where}: a job is a table ([{name}] with command = ...)")
        command = table.get("command")
        if command not in COMMANDS:
            raise InputError(
                f"{where}: command = {command!r}; use one of {', '.join(COMMANDS)}"
                if command is not None
                else f"{where}: no command (command = one of {', '.join(COMMANDS)})"
            )
        spec = JobSpec(name, command, where, base)
        known = spec.option_keys()
        options = {k: v for k, v in defaults.items() if k in known}
        used_defaults |= set(options)
        options.update({k: v for k, v in table.items() if k not in RESERVED})
        split = table.get("split", 1)
        if spec.splits() and "split" in defaults:  # a default for the commands that can
            split = table.get("split", defaults["split"])
            used_defaults.add("split")
        for job in spec.expand(table, options):
            jobs.extend(spec.split(job, split))
    unused = sorted(set(defaults) - used_defaults)
    if unused:
        raise InputError(f"{path}: [defaults] {unused[0]!r} is an option of no job's command")
    if not jobs:
        raise InputError(f"{path}: no jobs (add a table such as [talk] with command and clip)")
    names = [job.name for job in jobs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InputError(f"{path}: two jobs are named '{twice[0]}'")
    return jobs


def _key(flag: str) -> str:
    return flag.lstrip("-")


def _is_path(annotation: Any) -> bool:
    """Whether a parameter's annotation is a Path (or Path | None, list[Path])."""
    if isinstance(annotation, type):
        return issubclass(annotation, os.PathLike)
    return any(_is_path(arg) for arg in typing.get_args(annotation))


class JobSpec:
    """One table of the job file turned into Jobs for one command."""

    def __init__(self, name: str, command: str, where: str, base: Path) -> None:
        self.name, self.command, self.where, self.base = name, command, where, base
        self.click = cli_command(command)
        self.params = {}
        for param in self.click.params:
            if param.param_type_name != "option":
                continue
            for flag in (*param.opts, *param.secondary_opts):
                if flag.startswith("--"):
                    self.params[_key(flag)] = param

    def splits(self) -> bool:
        """Whether the command can share one clip among workers (`--part K/N`)."""
        return "part" in self.params

    def split(self, job: Job, split: Any) -> list[Job]:
        """[job] for split = 1, else its N parts (`--part K/N`) followed by the job, which
        finds the parts' work done and joins it."""
        if isinstance(split, bool) or not isinstance(split, int) or split < 1:
            raise InputError(f"{self.where}: split = {split!r}: give a whole number of workers")
        if split == 1:
            return [job]
        if not self.splits():
            raise InputError(
                f"{self.where}: split: `ganvid {self.command}` cannot share a clip among "
                "workers (only commands with --part can)"
            )
        if "--fresh" in job.argv:
            raise InputError(f"{self.where}: fresh with split would clear the parts' work")
        parts = [
            Job(
                f"{job.name}/part{k}",
                job.command,
                (*job.argv, "--part", f"{k}/{split}"),
                job.workdir,
                part_of=job.name,
            )
            for k in range(1, split + 1)
        ]
        return [*parts, job]

    def option_keys(self) -> set[str]:
        """Keys a table may use for this command (dashes or underscores)."""
        keys = {k for k in self.params if not k.startswith("no-")}
        return keys | {k.replace("-", "_") for k in keys}

    def expand(self, table: dict, options: dict) -> list[Job]:
        if "folder" in table:
            if "clip" in table:
                raise InputError(f"{self.where}: give clip or folder, not both")
            return self.folder_jobs(table, options)
        if "glob" in table:
            raise InputError(f"{self.where}: glob goes with folder = ...")
        clip = table.get("clip")
        if clip is not None and not isinstance(clip, str):
            raise InputError(f"{self.where}: clip must be a path (a string)")
        return [self.job(self.name, self.path(clip) if clip else None, options, None)]

    def path(self, value: str) -> Path:
        return (self.base / Path(value).expanduser()).resolve()

    def folder_jobs(self, table: dict, options: dict) -> list[Job]:
        """One job per video of the folder, sorted, minus the videos that the work dirs of
        these jobs record as outputs of earlier runs (written beside the clips by default)."""
        folder, pattern = table["folder"], table.get("glob")
        if not isinstance(folder, str) or not (pattern is None or isinstance(pattern, str)):
            raise InputError(f"{self.where}: folder and glob must be strings")
        root = self.path(folder)
        if not root.is_dir():
            raise InputError(f"{self.where}: folder {root} is not a directory")
        found = sorted(
            p
            for p in (root.glob(pattern) if pattern else root.iterdir())
            if p.is_file() and (pattern or p.suffix.lower() in VIDEO_SUFFIXES)
        )
        jobs = [
            self.job(f"{self.name}/{clip.stem}", clip, options, {"stem": clip.stem})
            for clip in found
        ]
        from ganvid.pipeline.workdir import recorded_outputs

        written: set[Path] = set()
        for job in jobs:
            written |= recorded_outputs(job.workdir)
        jobs = [job for job, clip in zip(jobs, found, strict=True) if clip.resolve() not in written]
        if not jobs:
            raise InputError(f"{self.where}: no videos in {root}")
        return jobs

    def default_workdir(self, clip: Path) -> Path:
        from ganvid.pipeline.workdir import default_workdir

        return default_workdir(clip)

    def argv(self, options: dict, template: dict | None) -> list[str]:
        """Options as command-line arguments; InputError naming the key when one is wrong."""
        argv: list[str] = []
        for raw_key, value in options.items():
            key = raw_key.replace("_", "-")
            param = self.params.get(key)
            if param is None or key.startswith("no-"):
                raise InputError(
                    f"{self.where}: unknown option '{raw_key}' for `ganvid {self.command}` "
                    f"(see `ganvid {self.command} --help`)"
                )
            argv += self.arguments(raw_key, key, param, value, template)
        return argv

    def arguments(self, raw_key: str, key: str, param, value: Any, template) -> list[str]:
        flag = f"--{key}"
        if param.is_flag:
            if not isinstance(value, bool):
                raise InputError(f"{self.where}: {raw_key} is a flag: give true or false")
            if value:
                return [flag]
            if param.secondary_opts:
                return [param.secondary_opts[0]]
            return []
        if isinstance(value, bool):
            raise InputError(f"{self.where}: {raw_key} takes a value, not {str(value).lower()}")
        values = value if isinstance(value, list) else [value]
        if isinstance(value, list) and not param.multiple:
            raise InputError(f"{self.where}: {raw_key} takes one value, not a list")
        path_like = _is_path(param.type_descriptor.annotation)
        out: list[str] = []
        for item in values:
            if isinstance(item, (dict, list)):
                raise InputError(f"{self.where}: {raw_key} = {item!r}: give a string or number")
            text = str(item)
            if template is not None:
                text = text.replace("{stem}", template["stem"])
            out += [flag, str(self.path(text)) if path_like else text]
        return out

    def job(self, name: str, clip: Path | None, options: dict, template: dict | None) -> Job:
        argv = self.argv(options, template)
        if template is not None:
            for key in ("workdir", "output"):
                if key in options and "{stem}" not in str(options[key]):
                    raise InputError(
                        f"{self.where}: a folder job writes one {key} per clip: put {{stem}} "
                        f'in it (e.g. {key} = "out/{{stem}}...")'
                    )
        if clip is not None:
            argv.append(str(clip))
        params = self.parse(argv)
        workdir = next((params[p.name] for p in self.click.params if "--workdir" in p.opts), None)
        if workdir is None and clip is None:
            raise InputError(
                f"{self.where}: give clip (or workdir): a batch has no current work dir"
            )
        workdir = Path(workdir) if workdir is not None else self.default_workdir(clip)
        return Job(name, self.command, tuple(argv), workdir.resolve())

    def parse(self, argv: list[str]) -> dict:
        """The command's own parsing of `argv` (types, ranges, choices), run nothing."""
        import typer

        try:
            with self.click.make_context(f"ganvid {self.command}", list(argv)) as ctx:
                return dict(ctx.params)
        except typer.TyperException as error:
            raise InputError(f"{self.where}: {' '.join(error.format_message().split())}") from None
