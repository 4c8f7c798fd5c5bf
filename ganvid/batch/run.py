"""One job, in this process: the CLI's own command function, its output in a log file, its
failure caught as one line.

Jobs call the command function in-process (through its click command, so the options mean
exactly what they mean on the command line and no second mapping from options to pipeline jobs
exists) rather than a `ganvid` subprocess: a worker keeps torch, CUDA and its imports loaded
from one job to the next, and an error arrives as an exception, not as text to parse. The worker
process around it (local pool or Ray) gives the isolation a subprocess would: a crash of one
job takes down one worker, which is replaced.
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from ganvid.batch.jobfile import Job, cli_command
from ganvid.errors import GanvidError
from ganvid.pipeline.workdir import stage_manifests


@dataclass
class JobResult:
    """What one job did.

    status: 'done' (some stage ran), 'cached' (every stage had finished before) or 'failed'.
    ran / cached: the work dir's stages that ran in this job / that it found finished.
    """

    name: str
    status: str
    seconds: float
    error: str | None = None
    ran: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    log: Path | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"


def one_line(text: object) -> str:
    return " ".join(str(text).split())


def log_path(log_dir: Path, job: Job) -> Path:
    """<log_dir>/<job name>.log ('/' of folder jobs becomes '__')."""
    return Path(log_dir) / f"{job.name.replace('/', '__')}.log"


def run_job(job: Job, log_dir: str | os.PathLike) -> JobResult:
    """Run `ganvid <job.command> <job.argv>` here; everything it prints goes to its log (appended,
    one header per attempt). Never raises for the job's own failure: it is the result."""
    log = log_path(Path(log_dir), job)
    log.parent.mkdir(parents=True, exist_ok=True)
    before = stage_stamps(job.workdir, begun=True)
    start = time.perf_counter()
    error = None
    with open(log, "a", encoding="utf-8") as stream:
        stream.write(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} {job.command_line}\n")
        stream.flush()
        with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            try:
                cli_command(job.command).main(
                    args=list(job.argv), prog_name=f"ganvid {job.command}", standalone_mode=False
                )
            except GanvidError as failure:
                error = one_line(failure)
            except Exception as failure:  # noqa: BLE001 - a bug in one job must not stop the rest
                error = _unexpected(failure, stream)
            except SystemExit as exit_:  # typer.Exit inside a command
                if exit_.code not in (0, None):
                    error = f"exited with code {exit_.code}"
        if error:
            stream.write(f"ganvid: error: {error}\n")
    seconds = time.perf_counter() - start
    after = stage_stamps(job.workdir, begun=True)
    ran = sorted(name for name, stamp in after.items() if before.get(name) != stamp)
    finished = stage_stamps(job.workdir)
    cached = sorted(name for name in finished if name not in ran and name in before)
    status = "failed" if error else ("done" if ran else "cached")
    return JobResult(job.name, status, seconds, error, ran, cached, log)


def _unexpected(failure: Exception, stream) -> str:
    import typer

    if isinstance(failure, typer.TyperException):  # a usage error the job file check missed
        return one_line(failure.format_message())
    traceback.print_exc(file=stream)
    return f"internal error: {type(failure).__name__}: {one_line(failure)} (traceback in the log)"


# ----------------------------------------------------------------------------- the work dir


def stage_stamps(root: Path, begun: bool = False) -> dict[str, tuple]:
    """{stage: (key, finished time)} of the completed stages: a stage that ran again (or for the
    first time) has a new stamp. With `begun`, of the incomplete ones too, stamped with their
    seconds as well: a part (`ganvid invert --part`) that rendered its share changes them."""
    return {
        name: (manifest["key"], manifest.get("finished"))
        + ((manifest.get("seconds"),) if begun and not manifest.get("complete") else ())
        for name, manifest in stage_manifests(root, complete=not begun).items()
    }
