"""Claim files of shared units (`ganvid.pipeline.claims`): exclusive, kept fresh, taken over
from dead workers by exactly one live one."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ganvid.pipeline import claims as claims_module
from ganvid.pipeline.claims import Claims, part_order, read_owner, share


def _dead_pid() -> int:
    """The id of a process of this host that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _claim_of(path: Path, host: str, pid: int, age_s: float = 0.0) -> None:
    """A claim file as another worker leaves it, `age_s` seconds since its last heartbeat."""
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = {"host": host, "pid": pid, "started": time.time(), "token": f"t{pid}"}
    path.write_text(json.dumps(owner))
    then = time.time() - age_s
    os.utime(path, (then, then))


def test_a_unit_is_claimed_once_and_its_claim_goes_when_done(tmp_path):
    one, two = Claims(tmp_path), Claims(tmp_path)
    assert one.claim(3) and not two.claim(3) and not one.claim(3)
    owner = read_owner(one.path(3))
    assert owner.host == socket.gethostname() and owner.pid == os.getpid()
    assert two.live() == [3]
    two.release(3)  # not its claim: kept
    assert one.path(3).exists()
    one.release(3)
    assert not one.path(3).exists() and two.claim(3)
    one.close(), two.close()


def test_take_does_free_units_in_order_and_skips_done_and_live_ones(tmp_path):
    done = {0}
    other = Claims(tmp_path)
    assert other.claim(2)  # a live worker holds unit 2
    worker = Claims(tmp_path)
    seen = []
    for unit in worker.take(range(5), done.__contains__):
        assert worker.path(unit).exists()  # held while the caller works
        seen.append(unit)
        done.add(unit)
    assert seen == [1, 3, 4] and worker.taken == [1, 3, 4]
    assert sorted(p.name for p in tmp_path.glob("*.claim")) == ["000002.claim"]
    other.close()


def test_waiting_take_takes_over_the_unit_of_a_worker_that_dies(tmp_path, capsys):
    """The barrier waits (saying so once) for a live worker's unit; when that worker's
    claim goes stale, it takes the unit over and does it."""
    done: set[int] = set()
    dying = Claims(tmp_path)
    assert dying.claim(1)
    worker = Claims(tmp_path, stale_s=0.6)
    seen = []
    for unit in worker.take(range(3), done.__contains__, wait=True, waiting="waiting for 1"):
        seen.append(unit)
        done.add(unit)
        if unit == 2:
            dying.close()  # its heartbeat stops: the claim goes stale 0.6 s later
    assert seen == [0, 2, 1]
    assert capsys.readouterr().err.count("waiting for 1") == 1


def test_a_heartbeat_keeps_a_claim_fresh(tmp_path, monkeypatch):
    monkeypatch.setattr(claims_module, "STALE_S", 0.4)
    holder = Claims(tmp_path)
    assert holder.claim(0)
    time.sleep(1.0)  # more than twice the limit: the heartbeat touched it
    assert not Claims(tmp_path).claim(0)
    holder.close()
    time.sleep(0.6)
    assert Claims(tmp_path).claim(0)  # no heartbeat: stale, taken over


def test_stale_claims_are_those_of_dead_processes_here_or_silent_ones_anywhere(tmp_path):
    worker = Claims(tmp_path, stale_s=60)
    here, elsewhere = socket.gethostname(), "some-other-host"
    _claim_of(worker.path(0), here, _dead_pid())  # fresh, but its process is gone
    _claim_of(worker.path(1), elsewhere, 1, age_s=120)  # no heartbeat for 2 minutes
    _claim_of(worker.path(2), elsewhere, 1, age_s=10)  # another machine's, fresh
    _claim_of(worker.path(3), here, os.getppid())  # a live process of this host
    assert worker.live() == [2, 3]
    assert worker.claim(0) and worker.claim(1) and not worker.claim(2) and not worker.claim(3)
    assert read_owner(worker.path(1)).token == worker.owner.token
    worker.close()


def _race(folder: str, start: float, queue) -> None:
    worker = Claims(Path(folder), stale_s=60)
    while time.time() < start:
        pass
    won = worker.claim(0)
    queue.put(won)
    time.sleep(0.2)  # hold it while the other one looks
    worker.close()


@pytest.mark.parametrize("round_", range(5))
def test_two_workers_racing_for_one_stale_claim_only_one_wins(tmp_path, round_):
    _claim_of(Claims(tmp_path).path(0), "some-other-host", 1, age_s=600)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    start = time.time() + 0.3
    racers = [context.Process(target=_race, args=(str(tmp_path), start, queue)) for _ in range(2)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=30)
    assert sorted(queue.get(timeout=5) for _ in racers) == [False, True]
    owner = read_owner(tmp_path / "000000.claim")
    assert owner.host == socket.gethostname()


def test_the_guard_stops_a_worker_before_its_next_unit(tmp_path):
    key = {"value": "a"}

    def guard() -> None:
        if key["value"] != "a":
            raise RuntimeError("options changed")

    worker = Claims(tmp_path, guard)
    seen = []
    with pytest.raises(RuntimeError, match="options changed"):
        for unit in worker.take(range(3), lambda unit: False):
            seen.append(unit)
            key["value"] = "b"
    assert seen == [0] and not list(tmp_path.glob("*.claim"))


def test_shares_and_visiting_order():
    assert [share(10, (k, 3)) for k in (1, 2, 3)] == [range(0, 3), range(3, 6), range(6, 10)]
    assert share(1, (1, 2)) == range(0, 0) and share(1, (2, 2)) == range(0, 1)
    assert part_order(4, None) == [0, 1, 2, 3]
    # own share, then the next part's from its middle on, then the one after that
    assert part_order(9, (1, 3)) == [0, 1, 2, 4, 5, 3, 7, 8, 6]
    assert part_order(6, (2, 2)) == [3, 4, 5, 1, 2, 0]
