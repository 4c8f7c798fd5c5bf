"""PTI per shot (`ganvid invert --pti-per-shot`): one generator tuned per shot, each shot's
frames drawn with its own weights by every consumer (`TunedWeights`: the invert render,
`ganvid edit`, expand-fov), a kill between shots resumes without retuning the finished shot, and
the default mode keeps its stage keys.

The clip: a hard cut between two people (the astronaut, then the cameraman: the first two shots
of `cuts_clip`), 4 frames each, on the tiny networks."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from support.face_clips import cuts_clip
from support.pipeline_fixtures import cli_process, invert_args, tiny_assets, video_frames
from support.sg3_fixtures import tiny_generator

from ganvid.nn.checkpoints import load_generator
from ganvid.pipeline.inversion import load_inversion
from ganvid.pipeline.layout import Layout
from ganvid.pipeline.pti import TunedWeights, load_tuned, save_tuned, tuned_state
from ganvid.pipeline.render import RenderJob, render_frames
from ganvid.pipeline.workdir import FrameDir, atomic_save_npz, read_image, read_json

SHOT = 4
FRAMES = 2 * SHOT
STEPS = "30"  # per shot: the kill below must land inside the second shot's tuning
CPU = torch.device("cpu")


def _args(assets: dict, workdir: Path, output: Path) -> list[str]:
    tuning = ["--pti-steps", STEPS, "--pti-stop-lpips", "0", "--pti-lr", "1e-2"]
    extra = ["--pti-per-shot", *tuning, "--keep-frames", "-o", str(output)]
    return invert_args(assets, assets["clip"], workdir, *extra)


@pytest.fixture(scope="module")
def per_shot(tmp_path_factory) -> dict:
    """One per-shot inversion of the two-shot clip, run as a process (as the kill test's)."""
    root = tmp_path_factory.mktemp("pti_shots")
    assets = tiny_assets(root, cuts_clip(n_shot=SHOT).frames[:FRAMES])
    workdir = root / "talk.ganvid"
    run = cli_process(_args(assets, workdir, root / "inverted.mp4"))
    _, err = run.communicate(timeout=600)
    assert run.returncode == 0, err.decode()
    return {"assets": assets, "workdir": workdir, "root": root}


def _shot_generator(assets: dict, workdir: Path, shot: int):
    generator = load_generator(assets["generator"]).eval().requires_grad_(False)
    load_tuned(generator, Layout(workdir).pti_shot(shot))
    return generator


def test_each_shot_is_tuned_alone_and_rendered_with_its_own_weights(per_shot):
    assets, workdir = per_shot["assets"], per_shot["workdir"]
    layout = Layout(workdir)
    shot_ids = np.load(layout.geometry_npz)["shot_ids"]
    assert shot_ids.tolist() == [0] * SHOT + [1] * SHOT  # the cut is found

    # one weights file per shot, nothing else left in pti/ (no checkpoint, no target crops)
    files = {p.relative_to(workdir) for p in (workdir / "pti").rglob("*") if p.is_file()}
    expected = {layout.pti_log, layout.pti_shot(0), layout.pti_shot(1)}
    assert files == {p.relative_to(workdir) for p in expected}
    log = read_json(layout.pti_log)
    assert log["per_shot"] and [e["shot"] for e in log["shots"]] == [0, 1]
    assert [e["frames"] for e in log["shots"]] == [SHOT, SHOT]
    assert all(e["steps"] == int(STEPS) for e in log["shots"])
    info = read_json(workdir / "pti.json")["info"]
    assert info["shots"] == 2 and info["steps"] == 2 * int(STEPS)

    base = tuned_state(load_generator(assets["generator"]))
    tuned = [torch.load(layout.pti_shot(s), weights_only=True) for s in (0, 1)]
    for state in tuned:
        assert any(not torch.equal(state[name], base[name]) for name in base)
    assert any(not torch.equal(tuned[0][name], tuned[1][name]) for name in base)

    # every frame of the render is its own shot's generator's drawing of it (same batches)
    renders = FrameDir(layout.render_frames)
    job = RenderJob(np.load(layout.smooth_ws), np.load(layout.smooth_transforms))
    shots = {0: range(0, SHOT), 1: range(SHOT, FRAMES)}
    for shot, frames in shots.items():
        own = _shot_generator(assets, workdir, shot)
        for index, image in render_frames(own, job, CPU, 4, frames):
            np.testing.assert_array_equal(image, renders.read(index))
        other = _shot_generator(assets, workdir, 1 - shot)
        drawn = render_frames(other, job, CPU, 4, frames)
        assert any(not np.array_equal(image, renders.read(i)) for i, image in drawn)

    inversion = load_inversion(workdir)
    assert inversion.pti_per_shot
    with pytest.raises(ValueError, match="per shot"):
        inversion.generator(CPU)  # one generator cannot stand for every frame


def _install_boundary(name: str) -> None:
    from ganvid.weights import local_path

    path = local_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.random.default_rng(0).normal(size=(1, 32)).astype(np.float32))


def test_edit_and_expand_fov_draw_each_shot_with_its_own_weights(per_shot, cli):
    """Strength 0 and a zero expansion reproduce the per-shot render frame for frame: with one
    generator for both shots, the other shot's frames would differ (test above)."""
    workdir, clip = per_shot["workdir"], per_shot["assets"]["clip"]
    common = ["--workdir", str(workdir), "--device", "cpu", "--preset", "ultrafast"]
    common += ["--keep-frames"]
    _install_boundary("interfacegan-ffhq-age")
    out = per_shot["root"]
    code, _, err = cli("edit", str(clip), *common, "--direction", "age:0", "-o", out / "e.mp4")
    assert code == 0, err
    code, _, err = cli("expand-fov", str(clip), *common, "-o", str(out / "fov.mp4"))
    assert code == 0, err
    renders = FrameDir(workdir / "render" / "frames")
    for stage in ("edits/age0/render", "fov/inverted_l0r0t0b0w2/render"):
        drawn = FrameDir(workdir / stage / "frames")
        for index in range(FRAMES):
            np.testing.assert_array_equal(drawn.read(index), renders.read(index), stage)
    source_pts, _ = video_frames(clip)
    assert video_frames(out / "e.mp4")[0] == source_pts

    # the preview draws frames 0 and 7 (one per shot, alone in their batches: CPU rounding may
    # move a level) with their own shots' weights
    preview = ["--direction", "age:0", "--preview", "2", "-o", str(out / "p.mp4")]
    code, _, err = cli("edit", str(clip), *common, *preview)
    assert code == 0, err
    sheet = read_image(out / "p_preview.png").astype(int)
    side = renders.read(0).shape[0]
    tiles = {0: sheet[:, side : 2 * side], FRAMES - 1: sheet[:, 3 * side + 4 : 4 * side + 4]}
    for index, tile in tiles.items():
        assert np.abs(tile - renders.read(index)).max() <= 1, index


def test_a_kill_between_shots_resumes_without_retuning_the_finished_shot(per_shot, tmp_path):
    assets = per_shot["assets"]
    workdir, output = tmp_path / "w", tmp_path / "out.mp4"
    layout = Layout(workdir)
    killed = cli_process(_args(assets, workdir, output))
    deadline = time.monotonic() + 300
    while not layout.pti_shot(0).exists() and killed.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert not layout.pti_shot(1).exists()  # killed while the second shot was tuned
    assert not read_json(workdir / "pti.json")["complete"]
    finished = layout.pti_shot(0).stat().st_mtime_ns

    resumed = cli_process(_args(assets, workdir, output))
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err.decode()
    assert layout.pti_shot(0).stat().st_mtime_ns == finished  # not tuned again
    straight = Layout(per_shot["workdir"])
    for shot in (0, 1):  # the same weights as the uninterrupted run
        ours = torch.load(layout.pti_shot(shot), weights_only=True)
        theirs = torch.load(straight.pti_shot(shot), weights_only=True)
        for name, value in theirs.items():
            torch.testing.assert_close(ours[name], value, rtol=0, atol=0)
    assert read_json(layout.pti_log) == read_json(straight.pti_log)
    assert not list((workdir / "pti" / "shots").glob("*checkpoint*"))
    assert not layout.pti_targets.exists()


def test_tuned_weights_switch_once_per_shot_and_never_mix_shots_in_a_batch(tmp_path):
    """Three shots of 3, 2 and 3 frames, rendered at batch 2: 3 loads (not one per batch), and
    each frame is its shot's generator's drawing in the same runs; per clip, the plain render."""
    torch.manual_seed(0)
    generator = tiny_generator("T", res=16, channel_base=128, channel_max=8, num_layers=4)
    generator.eval().requires_grad_(False)
    layout = Layout(tmp_path)
    shot_ids = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    atomic_save_npz(layout.geometry_npz, {"shot_ids": shot_ids})
    pristine = tuned_state(generator)
    for shot in (0, 1, 2, "clip"):
        with torch.no_grad():
            for name, param in generator.synthesis.named_parameters():
                if name in pristine:
                    param.copy_(pristine[name] + 0.05 * torch.randn_like(param))
        save_tuned(generator, layout.pti_generator if shot == "clip" else layout.pti_shot(shot))
    with torch.no_grad():
        ws = generator.mapping(torch.randn(len(shot_ids), generator.z_dim)).numpy()
    job = RenderJob(ws, np.tile(np.eye(3, dtype=np.float32), (len(shot_ids), 1, 1)))

    tuned = TunedWeights(generator, layout, per_shot=True)
    drawn = dict(tuned.render_frames(job, CPU, 2))
    assert tuned.loads == 3 and tuned.shot == 2
    for shot, run in ((0, [0, 1, 2]), (1, [3, 4]), (2, [5, 6, 7])):
        load_tuned(generator, layout.pti_shot(shot))
        for index, image in render_frames(generator, job, CPU, 2, run):
            np.testing.assert_array_equal(drawn[index], image)
    tuned.use_shot(2)
    dict(tuned.render_frames(job, CPU, 2, [6, 7]))  # still shot 2: nothing reloaded
    assert tuned.loads == 3 and [s for s, _ in tuned.shot_runs([2, 3, 4, 5])] == [0, 1, 2]

    clip = TunedWeights(generator, layout, per_shot=False)
    load_tuned(generator, layout.pti_generator)
    plain = dict(render_frames(generator, job, CPU, 2))
    for index, image in clip.render_frames(job, CPU, 2):
        np.testing.assert_array_equal(image, plain[index])


def test_the_default_keeps_its_stage_keys_and_per_shot_changes_them(tmp_path):
    from dataclasses import asdict

    from ganvid.pipeline.compose import ComposeConfig
    from ganvid.pipeline.invert import PtiOptions, RenderOptions
    from ganvid.pipeline.pti import PTIConfig
    from ganvid.pipeline.workdir import Workdir

    config = PTIConfig(steps=3)
    compose = ComposeConfig()
    render = {"layouts": {"video": "frame"}, "compose": compose, "segment_frames": 300}
    with Workdir(tmp_path / "work") as wd:
        key = wd.stage_key
        assert key("pti", "1", PtiOptions(config)) == key("pti", "1", {"pti": asdict(config)})
        assert key("pti", "1", PtiOptions(config, per_shot=True)) != key(
            "pti", "1", PtiOptions(config)
        )
        assert key("r", "1", RenderOptions(**render)) == key("r", "1", render)
        assert key("r", "1", RenderOptions(**render, pti_per_shot=True)) != key("r", "1", render)


def test_a_batch_job_takes_the_option_as_on_the_command_line(tmp_path):
    from ganvid.batch.jobfile import load_jobfile

    (tmp_path / "a.mp4").write_bytes(b"")
    jobfile = tmp_path / "jobs.toml"
    jobfile.write_text('[talk]\ncommand = "invert"\nclip = "a.mp4"\npti-per-shot = true\n')
    (job,) = load_jobfile(jobfile)
    assert "--pti-per-shot" in job.argv
