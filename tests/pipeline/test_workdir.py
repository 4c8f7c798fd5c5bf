"""The stage runner: skip what is done, redo what changed, resume what was interrupted."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from ganvid.errors import WorkdirError
from ganvid.pipeline.workdir import (
    FrameDir,
    Workdir,
    atomic_write_bytes,
    atomic_write_json,
    default_workdir,
    gather_arrays,
    read_json,
    run_stage,
)


class Counter:
    """A stage that writes one .npy per frame, counting the frames it computed."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count, self.fail_at, self.computed = count, fail_at, []

    def __call__(self, workdir, inputs, options):
        frames = FrameDir(workdir.stage_dir("numbers"), ".npy")
        for i in frames.missing(self.count):
            if i == self.fail_at:
                raise KeyboardInterrupt
            frames.write(i, np.full(3, i * options["scale"]))
            self.computed.append(i)
        return {"frames": self.count}


def _run(wd, stage, source, scale=1, fresh=False):
    return run_stage(
        wd,
        "numbers",
        stage,
        options={"scale": scale},
        files={"source": source},
        outputs=["000004.npy"],
        fresh=fresh,
    )


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "clip.bin"
    path.write_bytes(b"abc")
    return path


def test_second_run_skips_and_changed_options_or_input_recompute(tmp_path, source):
    wd = Workdir(tmp_path / "wd")
    first = Counter(5)
    record = _run(wd, first, source)
    assert not record.skipped and first.computed == [0, 1, 2, 3, 4]
    assert record.info == {"frames": 5}

    again = Counter(5)
    assert _run(wd, again, source).skipped and again.computed == []

    scaled = Counter(5)
    assert not _run(wd, scaled, source, scale=2).skipped and len(scaled.computed) == 5
    assert FrameDir(wd.root / "numbers", ".npy").read(3)[0] == 6

    source.write_bytes(b"abd")  # same size, new content
    os.utime(source, ns=(1, 1))
    edited = Counter(5)
    assert not _run(wd, edited, source, scale=2).skipped and len(edited.computed) == 5

    fresh = Counter(5)
    assert not _run(wd, fresh, source, scale=2, fresh=True).skipped and len(fresh.computed) == 5


def test_interrupted_stage_resumes_at_the_first_missing_frame(tmp_path, source):
    wd = Workdir(tmp_path / "wd")
    with pytest.raises(KeyboardInterrupt):
        _run(wd, Counter(5, fail_at=3), source)
    assert not wd.manifest("numbers")["complete"]
    with pytest.raises(WorkdirError):
        wd.completed("numbers")
    resumed = Counter(5)
    assert not _run(wd, resumed, source).skipped
    assert resumed.computed == [3, 4]
    assert wd.completed("numbers")["seconds"] > 0


def test_deleted_output_reruns_the_stage(tmp_path, source):
    wd = Workdir(tmp_path / "wd")
    _run(wd, Counter(5), source)
    (wd.root / "numbers" / "000004.npy").unlink()
    again = Counter(5)
    assert not _run(wd, again, source).skipped and again.computed == [4]


def test_downstream_key_follows_upstream(tmp_path, source):
    wd = Workdir(tmp_path / "wd")
    _run(wd, Counter(5), source)
    key = wd.stage_key("next", "1", {}, upstream=["numbers"])
    _run(wd, Counter(5), source, scale=3)
    assert wd.stage_key("next", "1", {}, upstream=["numbers"]) != key


def test_atomic_writes_leave_no_temp_files(tmp_path):
    atomic_write_bytes(tmp_path / "a.bin", b"1")
    atomic_write_bytes(tmp_path / "a.bin", b"2")
    assert (tmp_path / "a.bin").read_bytes() == b"2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_gather_arrays_and_images_round_trip(tmp_path):
    arrays = FrameDir(tmp_path / "ws", ".npy")
    for i in range(4):
        arrays.write(i, np.full((2, 3), i, dtype=np.float32))
    gather_arrays(arrays, 4, tmp_path / "ws.npy")
    stacked = np.load(tmp_path / "ws.npy")
    assert stacked.shape == (4, 2, 3) and stacked[3, 1, 2] == 3
    images = FrameDir(tmp_path / "img")
    rgb = np.random.default_rng(0).integers(0, 255, (8, 6, 3), dtype=np.uint8)
    images.write(0, rgb)
    np.testing.assert_array_equal(images.read(0), rgb)
    assert images.missing(2) == [1]


def test_lock_refuses_a_second_run_and_default_workdir(tmp_path):
    assert default_workdir(tmp_path / "talk.mp4") == tmp_path / "talk.ganvid"
    with Workdir(tmp_path / "wd"):
        with pytest.raises(WorkdirError, match="another ganvid run"):
            Workdir(tmp_path / "wd").__enter__()
    with Workdir(tmp_path / "wd"):
        pass


def test_atomic_outputs_get_normal_permissions(tmp_path):
    """mkstemp makes 0600 files; outputs must be readable like any file the user makes."""
    import os

    from ganvid.files import atomic_write_bytes

    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "out.bin", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "out.bin").stat().st_mode & 0o777 == 0o644


class Share(Counter):
    """Counter over the frames `inputs['share']` names (all of them without one)."""

    def __call__(self, workdir, inputs, options):
        frames = FrameDir(workdir.stage_dir("numbers"), ".npy")
        for i in inputs.get("share", range(self.count)):
            if not frames.has(i):
                frames.write(i, np.full(3, i * options["scale"]))
                self.computed.append(i)
        return {"frames": self.count}


def _part(root, stage, source, share, scale=1):
    return run_stage(
        Workdir(root),
        "numbers",
        stage,
        inputs={"share": share},
        options={"scale": scale},
        files={"source": source},
        outputs=["000004.npy"],
        part=True,
    )


def test_parts_share_a_stage_beside_each_other_and_a_full_run_completes_it(tmp_path, source):
    root = tmp_path / "wd"
    one, two = Share(5), Share(5)
    assert not _part(root, one, source, [0, 1]).skipped
    _part(root, two, source, [2, 3])  # same key: part one's frames are kept
    assert one.computed == [0, 1] and two.computed == [2, 3]
    assert not read_json(root / "numbers.json")["complete"]

    with Workdir(root) as wd:  # a full run holds the lock: a second one is refused ...
        with pytest.raises(WorkdirError, match="another ganvid run"):
            Workdir(root).__enter__()
        late = Share(5)
        waiting = threading.Thread(target=_part, args=(root, late, source, [4]))
        waiting.start()  # ... and a part waits for it at the manifest
        time.sleep(0.5)
        assert waiting.is_alive() and late.computed == []
        full = Share(5)
        record = _run(wd, full, source)
        assert full.computed == [4] and not record.skipped
    waiting.join(timeout=10)
    assert not waiting.is_alive() and late.computed == []  # it found the stage complete
    assert read_json(root / "numbers.json")["complete"]

    other = Share(5)  # a part with other options clears the stage first
    _part(root, other, source, [0], scale=2)
    assert other.computed == [0] and not (root / "numbers" / "000004.npy").exists()


class Claimer(Counter):
    """A part that claims its frames as units (`inputs['claims']`); `during(unit)` runs
    while it holds a unit."""

    def __init__(self, count: int, during) -> None:
        super().__init__(count)
        self.during = during

    def __call__(self, workdir, inputs, options):
        frames = FrameDir(workdir.stage_dir("numbers"), ".npy")
        for i in inputs["claims"].take(range(self.count), frames.has):
            self.during(i)
            frames.write(i, np.full(3, i * options["scale"]))
            self.computed.append(i)
        return {"units": len(inputs["claims"].taken)}


def test_other_options_are_refused_while_parts_work_and_a_part_stops_when_they_change(
    tmp_path, source
):
    root = tmp_path / "wd"
    refused = []

    def during(unit):
        if unit == 1:  # a run with other options while this part holds unit 1: refused
            with Workdir(root) as wd, pytest.raises(WorkdirError) as error:
                _run(wd, Counter(5), source, scale=2)
            refused.append(str(error.value))
        if unit == 3:  # the stage restarted with other options under the part (its key)
            manifest = read_json(root / "numbers.json")
            atomic_write_json(root / "numbers.json", {**manifest, "key": "other"})

    part = Claimer(5, during)
    with pytest.raises(WorkdirError, match="restarted with other options"):
        _part(root, part, source, None)
    assert part.computed == [0, 1, 2, 3]  # it stopped before unit 4, wrote nothing stale
    assert not (root / "numbers" / "000004.npy").exists()
    assert len(refused) == 1 and str(root) in refused[0] and "--fresh" in refused[0]
    assert not list((root / "numbers" / "claims").glob("*.claim"))

    with Workdir(root) as wd:  # no live worker now: the run with other options clears the stage
        full = Counter(5)
        _run(wd, full, source, scale=2)
    assert full.computed == [0, 1, 2, 3, 4]


def test_a_part_records_what_it_did_and_the_full_run_keeps_the_record(tmp_path, source):
    root = tmp_path / "wd"
    _part(root, Claimer(5, lambda unit: None), source, None)
    parts = read_json(root / "numbers.json")["parts"]
    assert (
        len(parts) == 1
        and parts[0]["units"] == 5
        and parts[0]["worker"].endswith(f":{os.getpid()}")
    )
    with Workdir(root) as wd:
        assert _run(wd, Counter(5), source).info == {"frames": 5}
    assert read_json(root / "numbers.json")["parts"] == parts
