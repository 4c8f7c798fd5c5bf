"""`ganvid batch jobs.toml`: many clips and commands, locally or on a Ray cluster."""

from __future__ import annotations

from pathlib import Path

import typer


def batch(
    jobfile: Path = typer.Argument(
        ..., help="TOML job file: one table per job (command, clip or folder, options)."
    ),
    ray: str | None = typer.Option(
        None,
        "--ray",
        help="Run the jobs as Ray tasks: auto (this machine's cluster, or a new local one) or "
        "a cluster ADDRESS (head:6379, ray://head:10001). Needs ganvid[ray].",
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        min=1,
        help="Local worker processes [default: one per visible GPU, or 1 on the CPU].",
    ),
    threads: int | None = typer.Option(
        None,
        "--threads",
        min=1,
        help="Local: torch CPU threads per worker [default: the cores / the workers].",
    ),
    cpus_per_job: int = typer.Option(
        1, "--cpus-per-job", min=1, help="Ray: CPUs each job asks for on a cluster without GPUs."
    ),
    logs: Path | None = typer.Option(
        None, "--logs", help="Folder for one log per job [default: <jobfile>.logs/ beside it]."
    ),
    check: bool = typer.Option(
        False, "--check", help="Check the job file and list its jobs; run nothing."
    ),
) -> None:
    """Run every job of a job file; finished stages are skipped, so a rerun resumes.

    Each job is a ganvid command (align, invert, edit, expand-fov, toonify) with its options,
    over one clip or every video in a folder. The job file is checked before anything runs.
    Jobs on one work dir run in file order; others run in parallel. A job that fails fails
    alone: its one-line error is in the summary, its output in its log. Exits 1 if any job
    failed. An invert job with split = N shares its clip among N workers: N part jobs
    (`ganvid invert --part K/N`: 1/N of the detection, encoder and render each, PTI once),
    then the job itself, which joins their work.
    """
    from ganvid.batch.jobfile import load_jobfile
    from ganvid.batch.schedule import run_with_progress, summary_table
    from ganvid.errors import GanvidError, InputError
    from ganvid.ui import info

    jobs = load_jobfile(jobfile)
    if check:
        for job in jobs:
            typer.echo(f"{job.name}: {job.command_line}")
        return
    if ray is not None and (workers is not None or threads is not None):
        raise InputError(
            "--workers and --threads are for local runs; on Ray, --cpus-per-job sets both"
        )
    log_dir = logs if logs is not None else jobfile.with_name(f"{jobfile.stem}.logs")
    pool = _pool(ray, workers, threads, cpus_per_job, log_dir.resolve())
    info(f"{len(jobs)} jobs on {pool.describe()}; logs in {log_dir}")
    results = run_with_progress(jobs, pool)
    summary_table(results)
    failed = [r for r in results if not r.ok]
    if failed:
        raise GanvidError(
            f"{len(failed)} of {len(results)} jobs failed (see the table; logs in {log_dir})"
        )


def _pool(
    ray: str | None, workers: int | None, threads: int | None, cpus_per_job: int, log_dir: Path
):
    import os

    if ray is not None:
        from ganvid.batch.ray_pool import RayPool

        return RayPool(ray, log_dir, cpus_per_job)
    from ganvid.batch.local import LocalPool, visible_gpus

    gpus = visible_gpus()
    count = workers or max(1, len(gpus))
    if gpus:
        gpus = [gpus[i % len(gpus)] for i in range(count)]
    threads = threads or max(1, (os.cpu_count() or 1) // count)  # the cores, shared
    return LocalPool(count, log_dir, gpus or None, threads)


def register(app: typer.Typer) -> None:
    app.command("batch")(batch)
