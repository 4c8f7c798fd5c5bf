"""Worker processes on this machine: one per visible GPU (each sees only its own), or one on the
CPU unless told otherwise.

Workers are spawned (never forked: CUDA and torch threads do not survive a fork), keep their
imports from one job to the next, and die with the driver (Linux: PR_SET_PDEATHSIG), so a
killed `ganvid batch` leaves no orphan holding a work dir's lock and a rerun resumes at once. A
worker that dies under a job (a segfault in a decoder, the OOM killer) fails that job alone and
is replaced.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from ganvid.batch.jobfile import Job
from ganvid.batch.run import JobResult, log_path, run_job


def visible_gpus() -> list[str]:
    """The CUDA GPUs this process may use, as CUDA_VISIBLE_DEVICES entries (empty: none).

    Read from CUDA_VISIBLE_DEVICES when it is set, else from the /dev/nvidiaN device files on
    Linux (without importing torch: that costs the driver seconds), else from torch.
    """
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        entries = [e.strip() for e in listed.split(",") if e.strip()]
        return [] if entries[:1] == ["-1"] else entries
    if sys.platform.startswith("linux"):
        return sorted((p.name[len("nvidia") :] for p in Path("/dev").glob("nvidia[0-9]*")), key=int)
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux only)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def _worker(index, parent, gpu, threads, log_dir, tasks, events) -> None:
    _die_with_parent(parent)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    import torch

    if threads:
        torch.set_num_threads(threads)
    try:
        while (job := tasks.get()) is not None:
            events.put((index, run_job(job, log_dir)))
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the driver reports it
        return


@dataclass
class _Slot:
    process: object
    tasks: object
    gpu: str | None
    job: Job | None = None


class LocalPool:
    """`workers` worker processes; `submit` a job to a free one, `wait` for the next result.

    gpus: one GPU index per worker (None: CPU workers); threads: torch threads per worker.
    """

    def __init__(
        self,
        workers: int,
        log_dir: Path,
        gpus: list[str] | None = None,
        threads: int | None = None,
    ) -> None:
        import multiprocessing

        self.context = multiprocessing.get_context("spawn")
        self.log_dir, self.threads = Path(log_dir), threads
        self.events = self.context.Queue()
        gpus = gpus if gpus else [None] * workers
        self.slots = [self._start(i, gpus[i]) for i in range(workers)]

    def describe(self) -> str:
        devices = [f"GPU {s.gpu}" for s in self.slots if s.gpu is not None]
        where = ", ".join(devices) if devices else "the CPU"
        return f"{len(self.slots)} local worker(s) on {where}"

    def _start(self, index: int, gpu: str | None) -> _Slot:
        tasks = self.context.Queue()
        args = (index, os.getpid(), gpu, self.threads, str(self.log_dir), tasks, self.events)
        process = self.context.Process(target=_worker, args=args, daemon=True)
        process.start()
        return _Slot(process, tasks, gpu)

    def free(self) -> int:
        return sum(slot.job is None for slot in self.slots)

    def submit(self, job: Job) -> None:
        slot = next(s for s in self.slots if s.job is None)
        slot.job = job
        slot.tasks.put(job)

    def wait(self) -> JobResult:
        """The next finished job (a worker that died under its job fails that job)."""
        while True:
            try:
                index, result = self.events.get(timeout=1.0)
            except queue.Empty:
                dead = self._dead()
                if dead is not None:
                    return dead
                continue
            self.slots[index].job = None
            return result

    def _dead(self) -> JobResult | None:
        for index, slot in enumerate(self.slots):
            if slot.job is not None and not slot.process.is_alive():
                job, code = slot.job, slot.process.exitcode
                how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                self.slots[index] = self._start(index, slot.gpu)
                error = f"the worker running it died ({how})"
                return JobResult(job.name, "failed", 0.0, error, log=log_path(self.log_dir, job))
        return None

    def close(self) -> None:
        for slot in self.slots:
            if slot.process.is_alive():
                slot.tasks.put(None)
        for slot in self.slots:
            slot.process.join(timeout=5)
            if slot.process.is_alive():
                slot.process.kill()
