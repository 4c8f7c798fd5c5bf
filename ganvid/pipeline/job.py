"""What every job shares, in one place: the device, the input clip, the pretrained files (with
one grouped error when several are missing), and the stage runner over a work dir.

    class InvertJob(Job):                    # sets self.workdir_path, then:
        def run(self):
            with self.open(clip=self.clip) as wd:    # the locked work dir; inputs for every stage
                self.stage(DECODE, stage_decode, options={}, files={"clip": self.clip}, ...)
            self.records                     # one StageRecord per stage run or skipped, in order

`Job.stage` is `workdir.run_stage` in the open work dir, with the job's `--fresh` and a record of
every stage, so each job's summary table lists the same things the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from ganvid.errors import InputError, WeightsError
from ganvid.files import absolute
from ganvid.pipeline.workdir import StageRecord, Workdir, run_stage


def resolve_device(name: str):
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' -> torch.device (InputError if unavailable)."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"--device {name!r}: use auto, cpu or cuda") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA GPU is visible; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        raise InputError(f"--device {name!r}: use auto, cpu or cuda")
    return device


def input_clip(clip: str | os.PathLike) -> Path:
    """The user's clip as an absolute path (resolved once, whatever the folder); InputError
    when it is not a file."""
    path = absolute(clip)
    if not path.is_file():
        raise InputError(f"{clip}: no such file")
    return path


def resolve_weights(
    names: Mapping[str, str | os.PathLike], flags: str, download: str | None = None
) -> dict[str, Path]:
    """{role: file} for {role: weights name or path}, found before any work.

    One missing file raises its own WeightsError (which names the download); several raise one
    line naming them all and the one `ganvid weights download <download>` that fetches them
    (default: the missing names; `flags`: the options that take the user's own files instead).
    """
    from ganvid.weights import resolve

    found: dict[str, Path] = {}
    failed: dict[str, WeightsError] = {}
    for role, name in names.items():
        try:
            found[role] = resolve(name)
        except WeightsError as error:
            failed[str(name)] = error
    if len(failed) == 1:
        raise next(iter(failed.values()))
    if failed:
        raise WeightsError(
            f"pretrained files {', '.join(failed)} are missing: run `ganvid weights download "
            f"{download or ' '.join(failed)}` (or pass your own files with {flags})"
        )
    return found


class Job:
    """The device, the batch size and `--fresh` of a job, and its stage runner.

    Subclasses set `workdir_path` (the work dir, absolute) before `open()`. `device` None: a
    job without networks (align, faces), which then does not import torch.
    """

    workdir_path: Path

    def __init__(self, device: str | None, batch: int, fresh: bool) -> None:
        if batch < 1:
            raise InputError("--batch must be at least 1")
        self.device = None if device is None else resolve_device(device)
        self.fresh = fresh
        self.records: list[StageRecord] = []
        self._open: tuple[Workdir, dict[str, Any]] | None = None

    @contextmanager
    def open(self, lock: str = "now", **inputs: Any) -> Iterator[Workdir]:
        """The job's work dir, locked for its stages; `inputs` (networks, the clip's path: not
        hashed, see `run_stage`) are handed to every stage run inside.

        lock: 'now' holds the work dir's lock for the block and refuses when another run holds
        it; 'wait' waits for it first (a part of a clip whose PTI another part is running);
        'none' takes none: the stages inside run with `part=True` and take it briefly.
        """
        wd = Workdir(self.workdir_path)
        held = {"now": wd, "wait": wd.briefly(), "none": nullcontext()}[lock]
        with held:
            self._open = (wd, inputs)
            try:
                yield wd
            finally:
                self._open = None

    def stage(
        self, name: str, fn: Callable, *, inputs: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> StageRecord:
        """Run (or skip, when its result is on disk) one stage in the open work dir, with the
        job's inputs plus `inputs`; see `workdir.run_stage`."""
        if self._open is None:
            raise RuntimeError("Job.stage() runs inside `with job.open():`")
        wd, shared = self._open
        merged = {**shared, **(inputs or {})}
        record = run_stage(wd, name, fn, inputs=merged, fresh=self.fresh, **kwargs)
        self.records.append(record)
        return record
