"""Where ganvid keeps its files, and atomic file writes shared by every module that writes
user-visible files.

`cache_dir()` is ganvid's home ($GANVID_HOME, else the platform's user cache folder): pretrained
weights live in `weights/` below it, compiled CUDA ops in `ops/`.

A writer gets a temp file beside its destination and renames it over the destination only when
complete, so a killed run leaves the old file or the new one, never half a file. The temp file
gets the permissions a plain `open()` would give (0666 minus the umask), not mkstemp's 0600:
outputs must be readable like any other file the user makes.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOME_ENV = "GANVID_HOME"


def cache_dir() -> Path:
    """$GANVID_HOME, else the platform's user cache folder for ganvid."""
    home = os.environ.get(HOME_ENV)
    if home:
        return Path(home).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("ganvid"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_path_beside(path: str | os.PathLike, suffix: str | None = None) -> Path:
    """Create an empty temp file in `path`'s folder (created if needed) and return its path.

    `suffix` (default: `path`'s) keeps the extension, for writers that choose a format by name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix if suffix is None else suffix
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    os.chmod(name, 0o666 & ~_umask())
    return Path(name)


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success move it onto `path` with `os.replace`.
    On error the temp file is removed and `path` is left as it was."""
    tmp = temp_path_beside(path, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically (fsync'ed before the rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's full content, read in `chunk`-byte blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def absolute(path: str | os.PathLike) -> Path:
    """`path` made absolute against the current folder, once, where the user's input enters
    (`..` folded, symlinks kept): stages, manifests and messages then never depend on the
    folder a command runs from."""
    return Path(os.path.abspath(os.fspath(path)))


def writable_dir(path: str | os.PathLike) -> bool:
    """Whether new files may be made in the existing folder `path`: this process may write
    there, the folder's mode lets someone write (a folder made read-only with chmod a-w counts
    as read-only even for root, whom the kernel lets write anyway) and its file system is not
    mounted read-only."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        read_only_mount = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
    return (
        stat.S_ISDIR(mode)
        and bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
        and not read_only_mount
        and os.access(path, os.W_OK | os.X_OK)
    )


def human_size(n: int) -> str:
    """1234567 -> '1.2 MB' (decimal units, as download sites list them)."""
    if n < 1000:
        return f"{n} bytes"
    value = float(n)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if value < 1000 or unit == "TB":
            break
    return f"{value:.1f} {unit}"


@contextmanager
def held(lock, patience_s: float, waiting: str) -> Iterator[None]:
    """Hold a `filelock` lock for the block; when another process holds it for more than
    `patience_s` seconds, say `waiting` (one line) and wait for it."""
    from filelock import Timeout

    try:
        lock.acquire(timeout=patience_s)
    except Timeout:
        from ganvid.ui import info

        info(waiting)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
