"""`ganvid batch` end to end with tiny networks on the CPU: local worker processes and a local
Ray cluster run three clips (one corrupt) to the same videos as `ganvid invert` one clip at a
time, with one error line; a driver killed mid-batch is rerun without recomputing the stages
that had finished."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from support.face_clips import moving_clip
from support.pipeline_fixtures import tiny_assets, video_frames, write_clip

from ganvid.batch.run import stage_stamps
from ganvid.cli import run
from ganvid.pipeline.workdir import read_json

pytestmark = pytest.mark.slow

FRAMES = 4
GOOD = ("a", "b")
STAGES = {"decode", "geometry", "invert", "smooth", "pti", "render", "encode"}
OPTIONS = {
    "device": "cpu",
    "preset": "ultrafast",
    "pti-steps": "2",
    "pti-checkpoint-every": "1",
    "encoder-iters": "1",
}


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict:
    """Tiny networks, two different face clips and their `ganvid invert` videos (one torch
    thread, as each worker below has)."""
    root = tmp_path_factory.mktemp("batch_assets")
    clips = {
        name: write_clip(
            root / f"{name}.mp4",
            moving_clip(n_frames=FRAMES, size=(160, 160), blank=(), noise=2.0, seed=seed).frames,
        )
        for seed, name in enumerate(GOOD)
    }
    assets = tiny_assets(root, list(moving_clip(n_frames=2, size=(160, 160), blank=()).frames))
    weights = {k: str(assets[k]) for k in ("generator", "encoder", "lpips")}
    flags = [f"--{k}={v}" for k, v in {**weights, **OPTIONS}.items()]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for clip in clips.values():
            assert run(["invert", *flags, str(clip)]) == 0
    finally:
        torch.set_num_threads(threads)
    return {"weights": weights, "clips": clips, "reference": root}


def make_batch(assets: dict, folder: Path) -> Path:
    """folder/clips/{a,b,broken}.mp4 and folder/jobs.toml inverting every clip in it."""
    clips = folder / "clips"
    clips.mkdir(parents=True)
    for name, clip in assets["clips"].items():
        shutil.copy(clip, clips / f"{name}.mp4")
    (clips / "broken.mp4").write_bytes(assets["clips"]["a"].read_bytes()[:700])
    options = {**assets["weights"], **OPTIONS}
    lines = ["[defaults]", *(f'{k} = "{v}"' for k, v in options.items())]
    lines += ["", "[all]", 'command = "invert"', 'folder = "clips"']
    jobfile = folder / "jobs.toml"
    jobfile.write_text("\n".join(lines) + "\n")
    return jobfile


def assert_same_videos(assets: dict, folder: Path) -> None:
    for name in GOOD:
        for suffix in ("_inverted.mp4", "_inverted_crop.mp4"):
            pts, frames = video_frames(folder / "clips" / f"{name}{suffix}")
            ref_pts, ref_frames = video_frames(assets["reference"] / f"{name}{suffix}")
            assert pts == ref_pts and len(frames) == FRAMES
            for image, ref in zip(frames, ref_frames, strict=True):
                np.testing.assert_array_equal(image, ref)


def assert_one_failure(err: str) -> None:
    """The corrupt clip's one-line error in the table, one `ganvid: error:` line at the end."""
    assert "Traceback" not in err
    assert err.count("all/broken: failed:") == 1 and "not a readable video" in err
    errors = [line for line in err.splitlines() if line.startswith("ganvid:")]
    assert len(errors) == 1 and errors[0].startswith("ganvid: error: 1 of 3 jobs failed")


def test_local_workers_match_sequential_runs_and_the_corrupt_clip_fails_alone(
    assets, tmp_path, cli
):
    jobfile = make_batch(assets, tmp_path)
    code, _, err = cli("batch", jobfile, "--workers", "2", "--threads", "1")
    assert code == 1, err
    assert_one_failure(err)
    assert "2 local worker(s) on the CPU" in err
    assert_same_videos(assets, tmp_path)
    log = (tmp_path / "jobs.logs" / "all__broken.log").read_text()
    assert "ganvid: error:" in log and "broken.mp4" in log

    # everything finished: nothing runs
    code, _, err = cli("batch", jobfile, "--workers", "2", "--threads", "1")
    assert code == 1 and err.count("0 run, 7 cached") == 2


def test_ray_tasks_match_sequential_runs_and_the_corrupt_clip_fails_alone(assets, tmp_path, cli):
    ray = pytest.importorskip("ray", reason='Ray is optional: pip install -e ".[ray]"')
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        code, _, err = cli("batch", make_batch(assets, tmp_path), "--ray", "auto")
    finally:
        ray.shutdown()
    assert code == 1, err
    assert_one_failure(err)
    assert "1 CPU(s) per job" in err
    assert_same_videos(assets, tmp_path)


@pytest.mark.parametrize("where", ["local", "ray"])
def test_one_clip_split_across_two_workers_gives_the_same_video_as_one_worker(
    assets, tmp_path, cli, where
):
    """split = 2: two part jobs (PTI once, a segment each) and the job joining them write the
    bytes of one `ganvid invert` run."""
    clip = tmp_path / "long.mp4"
    shutil.copy(assets["clips"]["a"], clip)
    options = {**assets["weights"], **OPTIONS, "segment-frames": "2"}  # 2 segments
    one = tmp_path / "one.mp4"
    flags = [f"--{k}={v}" for k, v in options.items()]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each worker
    try:
        assert (
            run(["invert", *flags, "--workdir", str(tmp_path / "one"), "-o", str(one), str(clip)])
            == 0
        )
    finally:
        torch.set_num_threads(threads)
    lines = ["[long]", 'command = "invert"', 'clip = "long.mp4"', "split = 2"]
    lines += [f'{k} = "{v}"' for k, v in options.items()]
    jobfile = tmp_path / "jobs.toml"
    jobfile.write_text("\n".join(lines) + "\n")
    if where == "local":
        code, _, err = cli("batch", jobfile, "--workers", "2", "--threads", "1")
    else:
        ray = pytest.importorskip("ray", reason='Ray is optional: pip install -e ".[ray]"')
        ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
        try:
            code, _, err = cli("batch", jobfile, "--ray", "auto")
        finally:
            ray.shutdown()
    assert code == 0, err
    assert (tmp_path / "long_inverted.mp4").read_bytes() == one.read_bytes()
    assert "long/part1: done" in err and "long/part2: done" in err  # each rendered its share
    for k in (1, 2):
        assert f"part {k}/2 done" in (tmp_path / "jobs.logs" / f"long__part{k}.log").read_text()
    segments = tmp_path / "long.ganvid" / "render" / "segments" / "video"
    assert sorted(p.name for p in segments.glob("0*.mp4")) == ["000000.mp4", "000001.mp4"]


def _driver(jobfile: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "ganvid", "batch", str(jobfile), *extra]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def _complete(workdir: Path, stage: str) -> bool:
    return bool((read_json(workdir / f"{stage}.json") or {}).get("complete"))


@pytest.mark.parametrize("where", ["local", "ray"])
def test_a_killed_driver_is_rerun_without_recomputing_finished_stages(assets, tmp_path, where):
    extra = ["--workers", "2", "--threads", "1"] if where == "local" else ["--ray", "auto"]
    if where == "ray":
        pytest.importorskip("ray", reason='Ray is optional: pip install -e ".[ray]"')
    jobfile = make_batch(assets, tmp_path)
    work = {name: tmp_path / "clips" / f"{name}.ganvid" for name in GOOD}
    driver = _driver(jobfile, *extra)
    deadline = time.monotonic() + 300
    while not _complete(work["a"], "smooth") and driver.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=60)
    assert driver.returncode == -signal.SIGKILL
    before = {name: stage_stamps(path) for name, path in work.items()}
    assert {"decode", "geometry", "invert", "smooth"} <= set(before["a"])
    assert set(before["a"]) != STAGES or set(before["b"]) != STAGES  # killed mid-batch

    rerun = _driver(jobfile, *extra)
    _, err = rerun.communicate(timeout=600)
    err = err.decode()
    assert rerun.returncode == 1, err
    assert_one_failure(err)
    for name, path in work.items():
        after = stage_stamps(path)
        assert set(after) == STAGES
        for stage, stamp in before[name].items():  # finished before the kill: not run again
            assert after[stage] == stamp, (name, stage)
    assert_same_videos(assets, tmp_path)


def test_a_worker_that_dies_under_its_job_fails_that_job_alone(tmp_path):
    from ganvid.batch.jobfile import Job
    from ganvid.batch.local import LocalPool

    clip = tmp_path / "missing.mp4"
    pool = LocalPool(1, tmp_path / "logs", threads=1)
    try:
        pool.submit(Job("killed", "align", (str(clip),), tmp_path / "w1"))
        os.kill(pool.slots[0].process.pid, signal.SIGKILL)
        result = pool.wait()
        assert result.name == "killed" and not result.ok
        assert result.error == "the worker running it died (signal 9)"
        pool.submit(Job("next", "align", (str(clip),), tmp_path / "w2"))  # a fresh worker
        result = pool.wait()
        assert result.name == "next" and result.error == f"{clip}: no such file"
    finally:
        pool.close()
    assert not any(slot.process.is_alive() for slot in pool.slots)
