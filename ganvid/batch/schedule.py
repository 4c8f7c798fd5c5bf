"""The driver of a batch: which job runs when, overall progress, the summary table.

Jobs that share a work dir run one after another in file order (an `edit` after the `invert`
of its clip, and never two runs on one work dir's lock), except the parts of one split job,
which run at once and share the work dir among themselves (`ganvid invert --part`); all others
run as soon as a worker is free. A failed job fails alone: the jobs after it on its work dir
still run (and say why they cannot go on, e.g. "no finished inversion"; the job after failed
parts renders what they left).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from ganvid.batch.jobfile import Job
from ganvid.batch.run import JobResult


class Pool(Protocol):
    def free(self) -> int: ...
    def submit(self, job: Job) -> None: ...
    def wait(self) -> JobResult: ...
    def close(self) -> None: ...


def ready_jobs(pending: Sequence[Job], running: Sequence[Job]) -> list[Job]:
    """The pending jobs (in file order) that may start now: every earlier job of their work
    dir, running or still waiting, is a part of the same split job as they are (none, for a
    job that is not a part)."""
    ahead: dict[Path, set[str | None]] = {}
    for job in running:
        ahead.setdefault(job.workdir, set()).add(job.part_of)
    ready = []
    for job in pending:
        earlier = ahead.setdefault(job.workdir, set())
        if not earlier or (job.part_of is not None and earlier == {job.part_of}):
            ready.append(job)
        earlier.add(job.part_of)
    return ready


def run_batch(
    jobs: Sequence[Job], pool: Pool, on_result: Callable[[JobResult], None] | None = None
) -> list[JobResult]:
    """Run every job on `pool`; results in the job file's order."""
    pending, running, results = list(jobs), {}, {}
    try:
        while pending or running:
            for job in ready_jobs(pending, list(running.values()))[: pool.free()]:
                pending.remove(job)
                running[job.name] = job
                pool.submit(job)
            result = pool.wait()
            job = running.pop(result.name)
            results[job.name] = result
            if on_result is not None:
                on_result(result)
    finally:
        pool.close()
    return [results[job.name] for job in jobs]


def run_with_progress(jobs: Sequence[Job], pool: Pool) -> list[JobResult]:
    """`run_batch` with one overall bar and a line per finished job."""
    from ganvid.ui import console, progress

    with progress() as bar:
        task = bar.add_task("batch", total=len(jobs))

        def finished(result: JobResult) -> None:
            mark = "[red]failed[/]" if not result.ok else result.status
            tail = f": {result.error}" if result.error else f" in {result.seconds:.1f} s"
            console.print(f"{result.name}: {mark}{tail}", highlight=False)
            bar.advance(task)

        return run_batch(jobs, pool, finished)


def summary_table(results: Sequence[JobResult]) -> None:
    """One row per job: status, seconds, stages run / found finished, the error or log."""
    from rich.table import Table

    from ganvid.ui import console

    table = Table(title=f"ganvid batch: {len(results)} jobs", title_justify="left")
    for column in ("job", "status", "seconds", "stages", "error, or the log"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for result in results:
        stages = f"{len(result.ran)} run, {len(result.cached)} cached"
        status = result.status if result.ok else "[red]failed[/]"
        detail = result.error or (result.log.name if result.log else "")
        table.add_row(result.name, status, f"{result.seconds:.1f}", stages, detail)
    console.print(table)
