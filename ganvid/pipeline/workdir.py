"""The work directory and the stage runner.

A job (e.g. `ganvid invert clip.mp4`) is a chain of stages. A stage is a plain function

    stage(workdir, inputs, options) -> dict of summary facts (JSON-able)

that writes its outputs under `workdir.stage_dir(name)`. `run_stage` wraps it:

- the stage's *key* is a SHA-256 over its name, code version, options, the content hashes of
  its input files and the keys of the upstream stages it reads from;
- a manifest `<workdir>/<name>.json` records the key, whether the stage completed, the seconds
  spent (summed over resumed runs) and the stage's summary facts;
- a completed stage whose key is unchanged and whose declared outputs exist is skipped;
- a stage whose key changed (or `fresh=True`) starts from an empty stage directory;
- an incomplete stage with the same key is called again: stage functions keep their progress
  on disk frame by frame (`FrameDir`) or in checkpoints, so they resume where they stopped.

A stage whose work several workers share (`part=True`: `ganvid invert --part`: detection,
encoder batches, render segments) takes the lock only to check its manifest; the workers claim
units of it (`ganvid.pipeline.claims`, files in `<name>/claims/`), and the run without `part`
completes it. A run whose key differs from that of workers still at work is refused; workers
whose stage key changed under them stop at their next unit (`Claims.guard`).

Every file is written atomically (temp file in the same directory, then `os.replace`), so a run
killed at any moment leaves either the old file or the new one, never half a file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ganvid.errors import InputError, WorkdirError
from ganvid.files import absolute, atomic_path, atomic_write_bytes, held, sha256_file, writable_dir
from ganvid.io.image import decode_rgb, encode_image
from ganvid.pipeline.claims import SUFFIX as CLAIM_SUFFIX
from ganvid.pipeline.claims import Claims, holders
from ganvid.pipeline.layout import Layout

FRAME_DIGITS = 6
"""Per-frame files are named `000000.png`, `000001.png`, ... (0-based frame index)."""


# ----------------------------------------------------------------------------- atomic writes


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    atomic_write_bytes(path, buffer.getvalue())


def atomic_save_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Named arrays as an uncompressed .npz (np.savez), written atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def read_json(path: str | os.PathLike) -> Any | None:
    """The JSON in `path`, or None if the file is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def read_image(path: str | os.PathLike) -> np.ndarray:
    """uint8 [H,W,3] RGB from a work-dir image file."""
    rgb = decode_rgb(path)
    if rgb is None:
        raise WorkdirError(f"cannot read {path}: the work dir is damaged; rerun with --fresh")
    return rgb


# ----------------------------------------------------------------------------- per-frame files


@dataclass(frozen=True)
class FrameDir:
    """A directory of per-frame files `000000<ext>`: images (.png/.jpg) or arrays (.npy).

    Each file is written atomically, so "the file exists" means "this frame is done": a killed
    stage resumes at the first missing frame.
    """

    path: Path
    ext: str = ".png"

    def file(self, index: int) -> Path:
        return self.path / f"{index:0{FRAME_DIGITS}d}{self.ext}"

    def has(self, index: int) -> bool:
        return self.file(index).exists()

    def missing(self, count: int) -> list[int]:
        """Indices in [0, count) whose file is not there yet."""
        present = {p.name for p in self.path.glob(f"*{self.ext}")} if self.path.exists() else set()
        return [i for i in range(count) if self.file(i).name not in present]

    def write(self, index: int, value: np.ndarray) -> None:
        """Store one frame: uint8 [H,W,3] RGB for images, any array for .npy."""
        if self.ext == ".npy":
            atomic_save_npy(self.file(index), value)
        else:
            atomic_write_bytes(self.file(index), encode_image(value, self.ext))

    def read(self, index: int) -> np.ndarray:
        path = self.file(index)
        if not path.exists():
            raise WorkdirError(f"{path} is missing: the work dir is incomplete; rerun the command")
        if self.ext == ".npy":
            return np.load(path, allow_pickle=False)
        return read_image(path)


def gather_arrays(frames: FrameDir, count: int, target: Path) -> None:
    """Stack per-frame arrays 0..count-1 into one .npy at `target`, streaming through a memmap.

    Memory stays at one frame whatever `count` is; the file is replaced atomically.
    """
    first = frames.read(0)
    with atomic_path(target) as tmp:
        out = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=first.dtype, shape=(count, *first.shape)
        )
        for i in range(count):
            out[i] = frames.read(i) if i else first
        out.flush()
        del out


# ----------------------------------------------------------------------------- hashing


class FileHasher:
    """SHA-256 of files, cached by (path, size, mtime_ns, inode) in a JSON file.

    The cache only saves work: a file whose size, mtime or inode changed is hashed again, so an
    edited input is always noticed. Hashes are of the full content, never of a sample.
    """

    def __init__(self, cache_path: Path) -> None:
        self.cache_path = cache_path
        self._cache: dict[str, dict] = read_json(cache_path) or {}

    def digest(self, path: str | os.PathLike) -> str:
        path = Path(path).resolve()
        try:
            st = path.stat()
        except OSError as error:
            raise InputError(f"cannot read {path}: {error.strerror}") from None
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        entry = self._cache.get(str(path))
        if entry and entry.get("stamp") == stamp:
            return entry["sha256"]
        value = sha256_file(path)
        self._cache[str(path)] = {"stamp": stamp, "sha256": value}
        atomic_write_json(self.cache_path, self._cache)
        return value


OMIT_DEFAULT = {"omit_default": True}
"""Metadata of an option field added after work dirs were made with its default: the field is
hashed only when it differs from the default, so those work dirs' stages stay cached."""


def _jsonable(value: Any) -> Any:
    """Options -> plain JSON (dataclasses, paths, tuples, numpy scalars)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {
            f.name: getattr(value, f.name)
            for f in dataclasses.fields(value)
            if not (f.metadata.get("omit_default") and getattr(value, f.name) == f.default)
        }
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


# ----------------------------------------------------------------------------- stages


@dataclass
class StageRecord:
    """What happened to one stage in this run (for the end-of-run summary)."""

    name: str
    key: str
    skipped: bool
    seconds: float
    """Seconds spent in this run (0 when skipped)."""
    total_seconds: float
    """Seconds spent on this stage's current result, over every (resumed) run."""
    info: dict = field(default_factory=dict)


StageFn = Callable[["Workdir", Mapping[str, Any], Any], Mapping[str, Any] | None]


def completed_manifest(root: str | os.PathLike, name: str) -> dict:
    """The manifest of stage `name` in work dir `root` if it completed, else WorkdirError.

    Read-only: takes no lock (for commands that only read a finished stage's outputs).
    """
    manifest = read_json(Layout(root).manifest(name))
    if not manifest or not manifest.get("complete"):
        raise WorkdirError(f"stage '{name}' has not completed in {root}")
    return manifest


def stage_manifests(root: Path, complete: bool = True) -> dict[str, dict]:
    """Every completed stage of the work dir at `root` (`complete` False: every stage begun):
    {stage name: its manifest}.

    A stage `x` keeps `x.json` beside its folder `x/` (`ganvid.pipeline.workdir`); folders
    without a manifest (edits/, edits/<tag>/) are searched, stage folders (thousands of
    per-frame files) are not.
    """
    found: dict[str, dict] = {}
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        names = {e.name for e in entries}
        for entry in entries:
            if entry.name.endswith(".json") and entry.is_file():
                manifest = read_json(entry.path)
                done = not complete or (isinstance(manifest, dict) and manifest.get("complete"))
                if isinstance(manifest, dict) and done and "key" in manifest:
                    found[str(Path(entry.path).relative_to(root).with_suffix(""))] = manifest
            elif entry.is_dir() and Layout(folder).manifest(entry.name).name not in names:
                folders.append(Path(entry.path))
    return found


def recorded_outputs(root: Path) -> set[Path]:
    """Files the work dir's stages record as written (their `output`/`outputs` facts): the
    videos earlier runs wrote beside a clip, which a folder job must not take for clips."""
    paths: set[Path] = set()

    def collect(value) -> None:
        if isinstance(value, str):
            paths.add(Path(value).resolve())
        elif isinstance(value, (list, tuple)):
            for item in value:
                collect(item)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)

    for manifest in stage_manifests(root).values():
        info = manifest.get("info") or {}
        for key in ("output", "outputs"):
            collect(info.get(key))
    return paths


def default_workdir(clip: str | os.PathLike) -> Path:
    """`<dir>/<stem>.ganvid` beside the clip (e.g. `talk.mp4` -> `talk.ganvid/`)."""
    clip = Path(clip)
    return clip.with_name(f"{clip.stem}.ganvid")


def output_folder(clip: str | os.PathLike, workdir: str | os.PathLike) -> Path:
    """Where a command's default outputs go: beside the clip, or into the work dir when the
    clip's folder is read-only (a camera card, a shared folder; see `files.writable_dir`)."""
    folder = absolute(clip).parent
    return folder if writable_dir(folder) else absolute(workdir)


class Workdir:
    """A job's work directory: one sub-directory and one manifest per stage.

    Use `with Workdir(path) as wd:` to hold the directory's lock for the whole run, so two runs
    cannot write the same files at once.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = absolute(root)
        if self.root.exists() and not self.root.is_dir():
            raise InputError(f"the work dir {self.root} exists and is not a directory")
        parent = next((p for p in self.root.parents if p.exists()), None)
        if not self.root.exists() and parent is not None and not writable_dir(parent):
            raise InputError(
                f"cannot make the work dir {self.root}: {parent} is read-only; pass --workdir "
                "with a folder you can write to"
            )
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(
                f"cannot make the work dir {self.root} ({error.strerror}): pass --workdir with "
                "a folder you can write to"
            ) from None
        if not writable_dir(self.root):
            raise InputError(
                f"the work dir {self.root} is read-only: pass --workdir with a folder you can "
                "write to"
            )
        self.layout = Layout(self.root)
        self.hasher = FileHasher(self.layout.hashes)
        self._lock = None

    def _file_lock(self):
        """The work dir's lock file (reentrant: `briefly()` inside `with` holds it twice)."""
        from filelock import FileLock

        if self._lock is None:
            self._lock = FileLock(str(self.layout.lock))
        return self._lock

    def __enter__(self) -> Workdir:
        from filelock import Timeout

        try:
            self._file_lock().acquire(timeout=0)
        except Timeout:
            raise WorkdirError(
                f"another ganvid run is using {self.root}; wait for it or pass another --workdir"
            ) from None
        return self

    def __exit__(self, *exc: object) -> None:
        self._file_lock().release()

    @contextmanager
    def briefly(self) -> Iterator[None]:
        """Hold the lock for a short step (a part's manifest check), waiting while another run
        holds it: parts of one clip take turns at the manifest and render outside the lock."""
        waiting = f"waiting for the ganvid run using {self.root} (another part runs PTI?)"
        with held(self._file_lock(), 0, waiting):
            yield

    def stage_dir(self, name: str) -> Path:
        path = self.layout.stage(name)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def manifest_path(self, name: str) -> Path:
        return self.layout.manifest(name)

    def manifest(self, name: str) -> dict | None:
        return read_json(self.manifest_path(name))

    def completed(self, name: str) -> dict:
        """The manifest of a completed stage, or WorkdirError naming what is missing."""
        return completed_manifest(self.root, name)

    def stage_key(
        self,
        name: str,
        version: str,
        options: Any,
        files: Mapping[str, str | os.PathLike] | None = None,
        upstream: Sequence[str] = (),
    ) -> str:
        """SHA-256 over everything a stage's result depends on."""
        files = files or {}
        described = {
            "stage": name,
            "version": version,
            "options": _jsonable(options),
            "files": {k: self.hasher.digest(p) for k, p in sorted(files.items())},
            "upstream": {u: self.completed(u)["key"] for u in upstream},
        }
        text = json.dumps(described, sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()

    def clear_stage(self, name: str) -> None:
        path = self.layout.stage(name)
        if path.exists():
            shutil.rmtree(path)
        self.manifest_path(name).unlink(missing_ok=True)


def run_stage(
    workdir: Workdir,
    name: str,
    fn: StageFn,
    *,
    inputs: Mapping[str, Any] | None = None,
    options: Any = None,
    files: Mapping[str, str | os.PathLike] | None = None,
    upstream: Sequence[str] = (),
    outputs: Sequence[str | os.PathLike] = (),
    version: str = "1",
    fresh: bool = False,
    part: bool = False,
) -> StageRecord:
    """Run `fn(workdir, inputs, options)` unless its result is already on disk.

    files: input files whose content the result depends on (hashed).
    upstream: names of earlier stages whose outputs `fn` reads (their keys are hashed).
    outputs: paths (relative to the stage dir, or absolute) that must exist for a skip.
    inputs: extra objects handed to `fn` that are NOT hashed (networks already loaded, the
        device, progress callbacks): they must not change the result beyond what `options`,
        `files` and `upstream` say. `fn` also gets `inputs['claims']`: the `Claims` of the
        stage's units (`<name>/claims/`), whose guard stops `fn` when the stage's key changes.
    part: `fn` does one worker's share of the stage (told by `inputs`), beside other workers
        doing theirs at the same time: the work dir's lock is taken only while the manifest is
        checked (a stage with the same key is never cleared) and its seconds and facts are
        added (to the manifest's `parts`), and the stage is left incomplete for the run that
        finds every output (a run without `part`, whose `fn` then has only the missing
        pieces to do, and waits for those that live workers hold).
    """
    key = workdir.stage_key(name, version, options, files or {}, upstream)
    output_paths = [workdir.layout.stage(name) / p for p in outputs]
    inputs = {
        **(inputs or {}),
        "claims": Claims(workdir.layout.claims(name), _guard(workdir, name, key)),
    }
    if not part:
        return _run(workdir, name, fn, key, inputs, options, output_paths, fresh)
    with workdir.briefly():
        skipped, record = _begin(workdir, name, key, output_paths, fresh)
    if skipped is not None:
        return skipped
    start = time.perf_counter()
    info = _jsonable(dict(fn(workdir, inputs, options) or {}))
    elapsed = time.perf_counter() - start
    with workdir.briefly():
        record = workdir.manifest(name) or {}
        if record.get("key") == key:
            record["seconds"] = record.get("seconds", 0.0) + elapsed
            worker = inputs["claims"].owner
            facts = {"worker": f"{worker.host}:{worker.pid}", "seconds": elapsed, **info}
            record["parts"] = [*record.get("parts", []), facts]
            atomic_write_json(workdir.manifest_path(name), record)
    return StageRecord(name, key, False, elapsed, record.get("seconds", elapsed), info)


def _guard(workdir: Workdir, name: str, key: str) -> Callable[[], None]:
    """A check that stage `name` of the work dir still has `key` (WorkdirError if not): a
    worker calls it before each unit, so it never writes outputs for options no longer
    asked for."""

    def check() -> None:
        found = (workdir.manifest(name) or {}).get("key")
        if found != key:
            raise WorkdirError(
                f"stage '{name}' in {workdir.root} was restarted with other options while this "
                "run worked on it: rerun with the options of that run"
            )

    return check


def _begin(
    workdir: Workdir, name: str, key: str, output_paths: list[Path], fresh: bool
) -> tuple[StageRecord | None, dict]:
    """(the record of a skip, None) when stage `name` is complete with `key`; else (None, its
    incomplete manifest, written), after clearing the stage when its key differs (refused
    while live workers hold units of it, see `_restart`)."""
    manifest = workdir.manifest(name) or {}
    same = manifest.get("key") == key and not fresh
    if same and manifest.get("complete") and all(p.exists() for p in output_paths):
        seconds = manifest.get("seconds", 0.0)
        return StageRecord(name, key, True, 0.0, seconds, manifest.get("info", {})), manifest
    record = {"stage": name, "key": key, "complete": False, "seconds": 0.0, "info": {}}
    if same:
        record["seconds"] = manifest.get("seconds", 0.0)
        if manifest.get("parts"):  # what workers with --part did (`run_stage`)
            record["parts"] = manifest["parts"]
    else:
        _restart(workdir, name, record)
    atomic_write_json(workdir.manifest_path(name), record)
    workdir.stage_dir(name)
    return None, record


def _restart(workdir: Workdir, name: str, record: dict) -> None:
    """Clear stage `name` for the new key in `record`. Refused while live workers (parts with
    other options, or before --fresh) hold units of it; else the new key is written first, so
    a worker that claims a unit after the look stops at its guard, and the stage is cleared
    once the units in hand have landed."""
    claims = Claims(workdir.layout.claims(name))
    live = claims.live()
    if live:
        raise WorkdirError(
            f"workers ({holders(claims, live)}) are at work on stage '{name}' in "
            f"{workdir.root}, which this run would restart (other options, or --fresh): wait "
            "for them to finish, or stop them and rerun with --fresh"
        )
    if workdir.manifest_path(name).exists():
        atomic_write_json(workdir.manifest_path(name), record)
        claims.wait_idle(f"waiting for the workers on '{name}' in {workdir.root} to stop")
    workdir.clear_stage(name)


def _run(workdir, name, fn, key, inputs, options, output_paths, fresh) -> StageRecord:
    """The whole stage under the lock the caller holds: skip, resume or run it, then mark it
    complete."""
    skipped, record = _begin(workdir, name, key, output_paths, fresh)
    if skipped is not None:
        return skipped
    previous = record["seconds"]
    start = time.perf_counter()
    try:
        info = dict(fn(workdir, dict(inputs or {}), options) or {})
    finally:
        elapsed = time.perf_counter() - start
        record["seconds"] = previous + elapsed
        atomic_write_json(workdir.manifest_path(name), record)
    missing = [str(p) for p in output_paths if not p.exists()]
    if missing:
        raise WorkdirError(f"stage '{name}' finished without writing {', '.join(missing)}")
    record.update(complete=True, info=_jsonable(info), finished=time.time())
    atomic_write_json(workdir.manifest_path(name), record)
    claims = workdir.layout.claims(name)
    if claims.is_dir() and not any(claims.glob(f"*{CLAIM_SUFFIX}")):  # every unit is done
        shutil.rmtree(claims, ignore_errors=True)
    return StageRecord(name, key, False, elapsed, record["seconds"], record["info"])
