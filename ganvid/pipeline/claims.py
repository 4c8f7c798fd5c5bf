"""Units of shared work in a work dir, claimed by the workers that do them.

Several workers (`ganvid invert --part K/N`, on one machine or on many that see the same work
dir) share a stage's per-frame work: the detection of landmarks, the encoder's batches, the
render's segments. The work is cut into units 0..n-1, and a worker that does unit u first
claims it by creating

    <folder>/<u:06d>.claim      {"host", "pid", "started", "token"} of the worker

with O_CREAT|O_EXCL, which succeeds for exactly one worker. While it works it touches its claims
every `stale_s / 8` seconds (a daemon thread). When the unit's output has landed (outputs are
written by atomic rename), the claim is deleted. A claim is *stale* when its mtime is older than
`stale_s` or when it names this host and a process that is not alive; a stale claim is taken
over under a short file lock, so two workers that both find it stale cannot both take it.

A worker does its own share first, then any unit that is neither done nor claimed by a live
worker (`Claims.take`), so a live worker finishes the share of one that died; the step that
needs every unit (`wait=True`) also waits for the units live workers hold.

Two processes in different PID namespaces with the same host name (containers sharing a host
name) may judge each other dead: the unit is then done twice, to the same bytes, which wastes
time and changes nothing.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

STALE_S = 120.0
"""Seconds without a heartbeat after which a claim is a dead worker's. A live worker touches
its claims 8 times in that span, so only a worker stopped for that long loses them; the span
also covers the clock difference between machines that share a work dir over the network (the
mtime is the file server's clock, the judge's is its own). Too short costs a unit done twice
(same bytes); too long costs waiting for a dead machine's units. A worker on the same machine
that died is noticed at once (its process id is gone)."""

POLL_S = 0.25
"""How often a worker waiting for other workers' units looks again."""

SUFFIX = ".claim"
TAKEOVER_LOCK = "takeover.lock"


@dataclass(frozen=True)
class Owner:
    """Who holds a claim."""

    host: str
    pid: int
    started: float
    """time.time() when the worker began claiming."""
    token: str
    """Unique per `Claims` object: two workers in one process are two owners."""


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists on this machine (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def frame_units(count: int, size: int) -> list[range]:
    """Frame ranges [a, b) of `size` frames (the last one shorter) covering `count` frames."""
    step = max(1, int(size))
    return [range(a, min(a + step, count)) for a in range(0, count, step)]


def share(count: int, part: tuple[int, int]) -> range:
    """Units [a, b) of part K of N (1-based) of `count` units: N contiguous shares as equal as
    whole units allow (empty when N > count)."""
    k, n = part
    return range((k - 1) * count // n, k * count // n)


def part_order(count: int, part: tuple[int, int] | None) -> list[int]:
    """The order a worker visits `count` units in: without a part, 0..count-1; with part K of
    N, its own share, then the other parts' shares (K+1, K+2, ... wrapping), each from its
    middle on and then its first half, so a worker that finished early meets a slow owner
    going forward halfway instead of racing it for the same next unit."""
    if part is None:
        return list(range(count))
    k, n = part
    order = list(share(count, part))
    for j in range(1, n):
        other = list(share(count, ((k - 1 + j) % n + 1, n)))
        middle = len(other) // 2
        order += other[middle:] + other[:middle]
    return order


class Claims:
    """The claim files of one stage's units in `folder`, for one worker.

    guard(): called after each claim is made, before the unit is done; raises to stop the
    worker (the stage's options changed under it). stale_s: see `STALE_S` (read when the
    object is made, so a test may lower the module's value).
    """

    def __init__(
        self,
        folder: Path,
        guard: Callable[[], None] | None = None,
        stale_s: float | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.guard = guard
        self.stale_s = STALE_S if stale_s is None else float(stale_s)
        self.owner = Owner(socket.gethostname(), os.getpid(), time.time(), uuid.uuid4().hex)
        self.taken: list[int] = []
        """Units this worker claimed and did, in order (its log)."""
        self._held: set[int] = set()
        self._mutex = threading.Lock()
        self._stop: threading.Event | None = None

    # -- one claim

    def path(self, unit: int) -> Path:
        return self.folder / f"{unit:06d}{SUFFIX}"

    def claim(self, unit: int) -> bool:
        """Claim `unit`: True when this worker now holds it (new, or taken over from a stale
        claim); False when a live worker holds it."""
        path = self.path(unit)
        if self._create(path) or (self._stale(path) and self._take_over(path)):
            with self._mutex:
                self._held.add(unit)
            self._start_heartbeat()
            return True
        return False

    def release(self, unit: int) -> None:
        """Delete this worker's claim of `unit` (not one another worker took over)."""
        with self._mutex:
            self._held.discard(unit)
        path = self.path(unit)
        owner = read_owner(path)
        if owner is not None and owner.token == self.owner.token:
            path.unlink(missing_ok=True)

    def _create(self, path: Path) -> bool:
        """Exclusive create with this worker's name in it; False when the file exists."""
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as stream:
            stream.write(json.dumps(asdict(self.owner)))
        return True

    def _stale(self, path: Path) -> bool:
        """Whether the claim at `path` is a dead worker's (see the module notes). A missing
        file counts as stale: nobody holds the unit."""
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return True
        if age > self.stale_s:
            return True
        owner = read_owner(path)  # None while its writer is between create and write
        if owner is None or owner.host != self.owner.host:
            return False
        return owner.pid != os.getpid() and not pid_alive(owner.pid)

    def _take_over(self, path: Path) -> bool:
        """Replace a stale claim by this worker's. Under the folder's takeover lock the claim
        is judged again, so of two workers that both found it stale, the second finds the
        first one's fresh claim and gives up; a worker claiming the freed unit without the lock
        meets the same exclusive create."""
        from filelock import FileLock

        with FileLock(str(self.folder / TAKEOVER_LOCK)):
            if not self._stale(path):
                return False
            path.unlink(missing_ok=True)
            return self._create(path)

    # -- heartbeat

    def _start_heartbeat(self) -> None:
        if self._stop is not None:
            return
        self._stop = threading.Event()
        thread = threading.Thread(target=self._beat, args=(self._stop,), daemon=True)
        thread.start()

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(self.stale_s / 8):
            with self._mutex:
                held = sorted(self._held)
            for unit in held:
                try:
                    os.utime(self.path(unit))
                except FileNotFoundError:  # taken over while this worker was stopped
                    pass

    def close(self) -> None:
        """Stop the heartbeat (claims still held are left to go stale)."""
        if self._stop is not None:
            self._stop.set()
            self._stop = None

    # -- many units

    def live(self) -> list[int]:
        """Units whose claims are held by live workers (this one included)."""
        if not self.folder.is_dir():
            return []
        units = []
        for path in sorted(self.folder.glob(f"*{SUFFIX}")):
            if not self._stale(path):
                units.append(int(path.stem))
        return units

    def take(
        self,
        units: Sequence[int],
        done: Callable[[int], bool],
        wait: bool = False,
        waiting: str = "",
    ) -> Iterator[int]:
        """Yield, in order, each unit of `units` this worker claims: those not done and not
        held by a live worker (stale claims are taken over). The caller does the unit before
        asking for the next one; its claim is then deleted. `wait`: then wait (saying
        `waiting` once) for the units live workers hold, taking over those whose worker dies,
        until every unit is done."""
        pending = list(units)
        told = False
        try:
            while pending:
                held_by_others = []
                for unit in pending:
                    if done(unit):
                        continue
                    if not self.claim(unit):
                        held_by_others.append(unit)
                        continue
                    try:
                        if self.guard is not None:
                            self.guard()
                        if done(unit):  # finished between the look and the claim
                            continue
                        yield unit
                        self.taken.append(unit)
                    finally:
                        self.release(unit)
                pending = [u for u in held_by_others if not done(u)] if wait else []
                if pending:
                    if not told and waiting:
                        from ganvid.ui import info

                        info(waiting)
                    told = True
                    time.sleep(POLL_S)
        finally:
            self.close()

    def wait_idle(self, waiting: str) -> None:
        """Wait (saying `waiting` once) until no live worker holds a claim here."""
        told = False
        while self.live():
            if not told:
                from ganvid.ui import info

                info(waiting)
                told = True
            time.sleep(POLL_S)


def read_owner(path: Path) -> Owner | None:
    """The owner named in a claim file, or None (no file, or not written yet)."""
    try:
        return Owner(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def holders(claims: Claims, units: Sequence[int]) -> str:
    """'host:pid, ...' of the live workers holding `units` (for messages)."""
    names = []
    for unit in units:
        owner = read_owner(claims.path(unit))
        if owner is not None and f"{owner.host}:{owner.pid}" not in names:
            names.append(f"{owner.host}:{owner.pid}")
    return ", ".join(names) or "another worker"
