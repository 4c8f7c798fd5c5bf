"""The jobs of a batch as Ray tasks (optional: `pip install "ganvid[ray]"`).

`--ray auto` joins the cluster this machine belongs to (RAY_ADDRESS, or one started here with
`ray start`), or starts a local one; `--ray ADDRESS` joins that cluster (`head:6379`, or
`ray://head:10001` through Ray Client). Each job asks for one GPU, or `cpus_per_job` CPUs on a
cluster without GPUs; Ray places it on a node with one free and sets CUDA_VISIBLE_DEVICES, so
the command's `--device auto` takes that GPU. Every node must have ganvid installed and see the
clips, weights and work dirs at the same paths (shared storage).

Tasks whose node dies are retried by Ray and resume from their work dir; when the driver dies
Ray ends its tasks, and rerunning the batch resumes them.
"""

from __future__ import annotations

from pathlib import Path

from ganvid.batch.jobfile import Job
from ganvid.batch.run import JobResult, run_job
from ganvid.errors import InputError

RETRIES = 2
"""Ray reruns a task this many times when its worker or node dies (not when the job fails)."""


def _task(job: Job, log_dir: str, threads: int) -> JobResult:
    import torch

    torch.set_num_threads(max(1, threads))
    return run_job(job, log_dir)


class RayPool:
    """Submit every ready job at once (Ray queues them by resources); `wait` for the next."""

    def __init__(self, address: str, log_dir: Path, cpus_per_job: int = 1) -> None:
        try:
            import ray
        except ImportError:
            raise InputError(
                '--ray needs Ray: pip install "ganvid[ray]" (or pip install "ray>=2.40")'
            ) from None
        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            try:
                ray.init(
                    address=None if address == "auto" else address,
                    log_to_driver=False,
                    logging_level="WARNING",
                )
            except (ConnectionError, ValueError, RuntimeError) as error:
                raise InputError(f"--ray {address}: cannot join the cluster: {error}") from None
        self.log_dir = str(Path(log_dir))
        gpus = ray.cluster_resources().get("GPU", 0)
        self.resources = {"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": cpus_per_job}
        self.threads = 1 if gpus else cpus_per_job
        self.remote = ray.remote(max_retries=RETRIES)(_task)
        self.pending: dict = {}

    def describe(self) -> str:
        resources = self.ray.cluster_resources()
        gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
        each = "1 GPU" if "num_gpus" in self.resources else f"{self.resources['num_cpus']} CPU(s)"
        return f"Ray cluster with {gpus} GPU(s), {cpus} CPU(s); {each} per job"

    def free(self) -> int:
        return 1 << 30

    def submit(self, job: Job) -> None:
        ref = self.remote.options(**self.resources).remote(job, self.log_dir, self.threads)
        self.pending[ref] = job

    def wait(self) -> JobResult:
        ray = self.ray
        (ref,), _ = ray.wait(list(self.pending), num_returns=1)
        job = self.pending.pop(ref)
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as error:  # the task's worker or node died for good
            from ganvid.batch.run import log_path, one_line

            reason = one_line(error).split(" Traceback")[0][:200]
            message = f"Ray lost the task: {reason}"
            return JobResult(
                job.name, "failed", 0.0, message, log=log_path(Path(self.log_dir), job)
            )

    def close(self) -> None:
        for ref in self.pending:
            self.ray.cancel(ref, force=True)
        self.pending.clear()
        if self.started:  # a cluster this batch joined or started: let go of it
            self.ray.shutdown()
