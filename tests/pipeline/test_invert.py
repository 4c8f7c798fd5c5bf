"""`ganvid invert` end to end on a 12-frame astronaut clip with tiny random networks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from support.face_clips import blank_clip, moving_clip
from support.pipeline_fixtures import (
    cli_process,
    invert_args,
    tiny_assets,
    video_frames,
    write_clip,
)
from support.videos import audio_packets

from ganvid.errors import WorkdirError
from ganvid.pipeline.claims import Claims, read_owner
from ganvid.pipeline.inversion import load_inversion
from ganvid.pipeline.render import render_frames
from ganvid.pipeline.workdir import FrameDir, Workdir, read_json

FRAMES = 12
STAGES = ("decode", "geometry", "invert", "smooth", "pti", "render", "encode")


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("invert_assets")
    clip = moving_clip(n_frames=FRAMES, size=(160, 160), blank=(), noise=2.0)
    return tiny_assets(root, clip.frames)


def test_invert_end_to_end_then_everything_cached(assets, tmp_path, cli):
    clip = tmp_path / "talk.mp4"
    clip.write_bytes(assets["clip"].read_bytes())
    workdir = tmp_path / "work"
    args = ["--pti-steps", "4", "--side-by-side", "--keep-frames"]
    code, _, err = cli(*invert_args(assets, clip, workdir, *args))
    assert code == 0, err

    outputs = {
        "video": tmp_path / "talk_inverted.mp4",
        "crop": tmp_path / "talk_inverted_crop.mp4",
        "sbs": tmp_path / "talk_inverted_sbs.mp4",
    }
    source_pts, _ = video_frames(clip)
    shapes = {"video": (160, 160, 3), "crop": (32, 32, 3), "sbs": (160, 320, 3)}  # pasted back
    for name, path in outputs.items():
        pts, images = video_frames(path)
        assert pts == source_pts, name
        assert images[0].shape == shapes[name], name
        assert audio_packets(path) == audio_packets(clip), name
    last = f"{FRAMES - 1:06d}"
    for relative in (
        "decode/video.json",
        "geometry/geometry.json",
        "geometry/geometry.npz",
        "invert/ws.npy",
        "smooth/ws.npy",
        "smooth/transforms.npy",
        "pti/generator.pt",
        "pti/log.json",
        f"render/frames/{last}.png",
        "render/segments/video/000000.mp4",
        "encode/metrics.json",
    ):
        assert (workdir / relative).exists(), relative
    # crops are cut from the clip on demand, PTI's cache of them is gone with PTI
    for folder in ("geometry/aligned", "geometry/crops", "pti/targets"):
        assert not (workdir / folder).exists(), folder
    assert np.load(workdir / "smooth" / "ws.npy").shape[0] == FRAMES
    assert not (workdir / "pti" / "checkpoint.pt").exists()
    assert "PSNR" in err and "LPIPS" in err

    # what `ganvid edit` builds on: the stored inversion re-renders the same frames exactly
    inversion = load_inversion(workdir)
    assert inversion.frames == FRAMES and inversion.pts == source_pts
    generator = inversion.generator(torch.device("cpu"))
    renders = FrameDir(workdir / "render" / "frames")
    # same batch as the render stage (4): CPU convolutions are not bit-identical across batch
    # sizes, and a pixel on a rounding edge can differ by one level at another batch
    for index, image in render_frames(generator, inversion.render_job(), torch.device("cpu"), 4):
        np.testing.assert_array_equal(image, renders.read(index))

    finished = {s: read_json(workdir / f"{s}.json")["finished"] for s in STAGES}
    mtime = outputs["video"].stat().st_mtime_ns
    moved = tmp_path / "elsewhere" / "renamed.mp4"  # same content, new path: still cached
    moved.parent.mkdir()
    clip.rename(moved)
    again = ["--pti-steps", "4", "--side-by-side", "--keep-frames", "-o", str(outputs["video"])]
    code, _, err = cli(*invert_args(assets, moved, workdir, *again))
    assert code == 0, err
    assert {s: read_json(workdir / f"{s}.json")["finished"] for s in STAGES} == finished
    assert outputs["video"].stat().st_mtime_ns == mtime
    assert err.count("cached") == len(STAGES)


def test_no_inversion_tells_the_user_to_invert_first(tmp_path):
    with pytest.raises(WorkdirError, match="ganvid invert"):
        load_inversion(tmp_path)


def _render_error(workdir: Path, generator) -> float:
    """Mean squared error of the renders of the smoothed pivots against the crops."""
    from ganvid.pipeline.render import RenderJob

    job = RenderJob(np.load(workdir / "smooth/ws.npy"), np.load(workdir / "smooth/transforms.npy"))
    crops = load_inversion(workdir).crops()
    errors = [
        np.mean((image.astype(float) - crops.read(i).astype(float)) ** 2)
        for i, image in render_frames(generator, job, torch.device("cpu"), batch=4)
    ]
    return float(np.mean(errors))


def test_pti_lowers_the_reconstruction_error(assets, tmp_path, cli):
    from ganvid.nn.checkpoints import load_generator
    from ganvid.pipeline.pti import load_tuned

    workdir = tmp_path / "work"
    args = invert_args(
        assets,
        assets["clip"],
        workdir,
        "--pti-steps",
        "12",
        "--pti-stop-lpips",
        "0",
        "--pti-lr",
        "1e-2",
    )
    code, _, err = cli(*args, "-o", str(tmp_path / "out.mp4"))
    assert code == 0, err
    generator = load_generator(assets["generator"])
    before = _render_error(workdir, generator)
    load_tuned(generator, workdir / "pti" / "generator.pt")
    after = _render_error(workdir, generator)
    assert after < 0.8 * before
    log = read_json(workdir / "pti" / "log.json")
    assert log["steps"] == 12 and log["loss_last"] < log["loss_first"]


def test_sigkill_during_pti_then_resume_gives_the_same_video(assets, tmp_path):
    # Many steps between the first checkpoint (step 2) and the end of PTI, so the kill below
    # lands inside PTI even when a loaded machine is slow to schedule this polling loop.
    steps = ["--pti-steps", "30", "--pti-stop-lpips", "0"]
    straight = cli_process(
        invert_args(assets, assets["clip"], tmp_path / "a", *steps, "-o", str(tmp_path / "a.mp4"))
    )
    _, err = straight.communicate(timeout=300)
    assert straight.returncode == 0, err.decode()

    args = invert_args(
        assets, assets["clip"], tmp_path / "b", *steps, "-o", str(tmp_path / "b.mp4")
    )
    killed = cli_process(args)
    checkpoint = tmp_path / "b" / "pti" / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    assert not read_json(tmp_path / "b" / "pti.json")["complete"]
    assert not (tmp_path / "b.mp4").exists()

    resumed = cli_process(args)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()
    assert read_json(tmp_path / "b" / "pti.json")["info"]["steps"] == 30
    tuned_a = torch.load(tmp_path / "a" / "pti" / "generator.pt", weights_only=True)
    tuned_b = torch.load(tmp_path / "b" / "pti" / "generator.pt", weights_only=True)
    for name, value in tuned_a.items():
        torch.testing.assert_close(tuned_b[name], value, rtol=0, atol=0)
    pts_a, frames_a = video_frames(tmp_path / "a.mp4")
    pts_b, frames_b = video_frames(tmp_path / "b.mp4")
    assert pts_a == pts_b
    for a, b in zip(frames_a, frames_b, strict=True):
        np.testing.assert_array_equal(a, b)


def _one_error_line(err: str) -> str:
    """The CLI's error: exactly one `ganvid: error:` line, last, and no traceback."""
    errors = [line for line in err.splitlines() if line.startswith("ganvid:")]
    assert len(errors) == 1 and err.strip().endswith(errors[0]) and "Traceback" not in err
    return errors[0]


def test_no_face_corrupt_file_and_missing_weights_are_one_line_errors(assets, tmp_path, cli):
    faceless = write_clip(tmp_path / "empty_room.mp4", blank_clip(6, size=(96, 64)))
    workdir = tmp_path / "w1"
    code, _, err = cli(*invert_args(assets, faceless, workdir))
    assert code == 4 and "no face" in _one_error_line(err)
    assert (workdir / "decode" / "video.json").exists()  # the work dir is kept

    corrupt = tmp_path / "broken.mp4"
    corrupt.write_bytes(assets["clip"].read_bytes()[:700])
    code, _, err = cli(*invert_args(assets, corrupt, tmp_path / "w2"))
    assert code == 3 and "broken.mp4" in _one_error_line(err)

    args = invert_args(assets, assets["clip"], tmp_path / "w3")
    args[args.index("--generator") + 1] = "sg3-r-ffhq-1024"
    code, _, err = cli(*args)
    assert code == 5 and "ganvid weights download sg3-r-ffhq-1024" in _one_error_line(err)
    code, _, err = cli("invert", str(assets["clip"]), "--workdir", str(tmp_path / "w4"))
    assert code == 5 and "ganvid weights download invert" in _one_error_line(err)


def test_memory_budget_sizes_parse_and_nonsense_is_refused():
    from ganvid.commands.invert import parse_size
    from ganvid.errors import InputError

    assert parse_size("6G") == parse_size("6GiB") == parse_size("6gb") == 6 * 2**30
    assert parse_size("512M") == 512 * 2**20 and parse_size("1.5G") == int(1.5 * 2**30)
    assert parse_size("1048576") == 2**20
    for bad in ("", "lots", "-1G", "0"):
        with pytest.raises(InputError, match="--max-memory"):
            parse_size(bad)


def _psnr_db(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(error, 1e-10)))


def test_segments_resume_keep_frames_and_single_pass_give_the_same_video(assets, tmp_path, cli):
    """Renders stream into 5-frame segments (3 for 12 frames): the default and --keep-frames
    runs write the same bytes; a run missing its last segment renders only that one again
    and joins the same bytes; one segment is byte for byte today's single-pass encode, and
    three segments stay close to it (new keyframes, paste-back mask restarted per segment)."""
    from ganvid.pipeline.compose import ComposeConfig, ComposeSources, compose_videos

    clip = assets["clip"]
    common = ["--pti-steps", "2", "--segment-frames", "5"]
    plain, kept = tmp_path / "plain.mp4", tmp_path / "kept.mp4"
    code, _, err = cli(*invert_args(assets, clip, tmp_path / "w1", *common, "-o", str(plain)))
    assert code == 0, err
    args = invert_args(assets, clip, tmp_path / "w2", *common, "--keep-frames", "-o", str(kept))
    code, _, err = cli(*args)
    assert code == 0, err
    assert plain.read_bytes() == kept.read_bytes()
    assert not (tmp_path / "w1" / "render" / "frames").exists()
    source_pts, _ = video_frames(clip)
    pts, images = video_frames(plain)
    assert pts == source_pts and len(images) == FRAMES
    assert audio_packets(plain) == audio_packets(clip)
    segments = tmp_path / "w1" / "render" / "segments" / "video"
    assert sorted(p.name for p in segments.glob("*.mp4")) == [f"{k:06d}.mp4" for k in range(3)]

    # resume: only the missing segment is rendered again, and the join is the same
    first = (segments / "000000.mp4").stat().st_mtime_ns
    (segments / "000002.mp4").unlink()
    before = plain.read_bytes()
    plain.unlink()
    code, _, err = cli(*invert_args(assets, clip, tmp_path / "w1", *common, "-o", str(plain)))
    assert code == 0, err
    assert plain.read_bytes() == before
    assert (segments / "000000.mp4").stat().st_mtime_ns == first

    # today's path: every kept render PNG composed and encoded in one pass
    work = tmp_path / "w2"
    single = tmp_path / "single.mp4"
    sources = ComposeSources(clip, work, FrameDir(work / "render" / "frames"))
    compose_videos(sources, {"video": (single, "frame")}, ComposeConfig(preset="ultrafast"))
    one = tmp_path / "one.mp4"
    args = invert_args(assets, clip, work, "--pti-steps", "2", "--keep-frames", "-o", str(one))
    code, _, err = cli(*args)
    assert code == 0, err
    assert one.read_bytes() == single.read_bytes()
    _, reference = video_frames(single)
    psnr = [_psnr_db(a, b) for a, b in zip(images, reference, strict=True)]
    assert min(psnr) > 30, psnr


def _segments(work: Path, output: str = "video") -> dict[str, int]:
    """{file name: mtime_ns} of the finished segments of one output (not the temp files)."""
    folder = work / "render" / "segments" / output
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.glob("0*.mp4"))}


def _parts_at_once(args: list[str], work: Path, logs: Path) -> list[subprocess.Popen]:
    """Start `--part 1/2` and `--part 2/2` so that they truly run beside each other: the test
    holds the work dir's lock until both wait for it at the decode stage."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    parts, logs_of = [], [logs / f"part{k}.log" for k in (1, 2)]
    with Workdir(work):
        for k, log in zip((1, 2), logs_of, strict=True):
            with open(log, "wb") as stream:
                command = [sys.executable, "-m", "ganvid", *args, "--part", f"{k}/2"]
                parts.append(
                    subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stream, env=env)
                )
        deadline = time.monotonic() + 300
        while not all("waiting for the ganvid run" in log.read_text() for log in logs_of):
            assert time.monotonic() < deadline and all(p.poll() is None for p in parts)
            time.sleep(0.05)
    return parts


def test_parts_share_detection_encoder_and_render_and_join_to_the_same_video_as_one_run(
    assets, tmp_path, cli
):
    """Two `--part` runs at once share the face detection, the encoder's batches and the
    render's segments (each does some of each; PTI once), a plain run joins them: the same
    bytes as one run, and nothing done twice."""
    clip = assets["clip"]
    # 6 detection units and 6 segments of 2 frames, 6 encoder batches of 2 frames
    common = ["--pti-steps", "2", "--segment-frames", "2", "--batch", "2"]
    whole = tmp_path / "whole.mp4"
    one = cli_process(invert_args(assets, clip, tmp_path / "w1", *common, "-o", str(whole)))
    _, err = one.communicate(timeout=600)
    assert one.returncode == 0, err.decode()

    work, split = tmp_path / "w2", tmp_path / "split.mp4"
    args = invert_args(assets, clip, work, *common, "-o", str(split))
    for part in _parts_at_once(args, work, tmp_path):
        assert part.wait(timeout=600) == 0, Path(part.args[-1]).name
    for stage in ("geometry", "invert", "render"):
        record = read_json(work / f"{stage}.json")
        units = [p["units"] for p in record["parts"]]
        assert len(units) == 2 and min(units) >= 1 and sum(units) == 6, (stage, units)
    assert read_json(work / "geometry.json")["complete"]  # tracked once, under the lock
    assert read_json(work / "pti.json")["complete"] and not split.exists()
    assert not read_json(work / "render.json")["complete"]
    rendered = _segments(work)
    assert list(rendered) == [f"{k:06d}.mp4" for k in range(6)]
    assert not list(work.glob("*/claims/*.claim"))  # every claim went with its unit

    code, _, err = cli(*args)
    assert code == 0, err
    assert _segments(work) == rendered  # joined, not rendered again
    assert read_json(work / "render.json")["complete"]
    assert not list(work.glob("*/claims"))  # tidied with their finished stages
    assert split.read_bytes() == whole.read_bytes()
    crop = split.with_name("split_crop.mp4").read_bytes()
    assert crop == whole.with_name("whole_crop.mp4").read_bytes()
    assert np.array_equal(
        np.load(work / "invert" / "ws.npy"), np.load(tmp_path / "w1" / "invert" / "ws.npy")
    )
    assert read_json(work / "encode" / "metrics.json") == read_json(
        tmp_path / "w1" / "encode" / "metrics.json"
    )

    for bad in (["--part", "3/2"], ["--part", "1/2", "--fresh"]):
        code, _, err = cli(*args, *bad)
        assert code != 0 and "--" in _one_error_line(err), bad


def _stop_holding_a_claim(process: subprocess.Popen, work: Path, segments: int) -> None:
    """SIGKILL `process` once it has rendered `segments` segments, at a moment it holds the
    claim of the next one (stopped first, so the claim is looked at while it is frozen)."""
    deadline = time.monotonic() + 300
    while True:
        assert time.monotonic() < deadline and process.poll() is None
        process.send_signal(signal.SIGSTOP)
        claims = list((work / "render" / "claims").glob("*.claim"))
        if len(_segments(work)) >= segments and claims and read_owner(claims[0]) is not None:
            break
        process.send_signal(signal.SIGCONT)
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)


def test_a_killed_part_leaves_a_stale_claim_that_a_live_part_takes_over(assets, tmp_path, cli):
    """A part killed mid-render leaves the claim of the segment it was on; the other part,
    having done its own share, takes over that claim (its process is gone) and the rest of
    the dead part's share; the join renders nothing again. While a live worker holds a unit,
    a run with other options is refused with one line saying what to do."""
    clip, work, out = assets["clip"], tmp_path / "w", tmp_path / "out.mp4"
    args = invert_args(assets, clip, work, "--pti-steps", "2", "--segment-frames", "1")
    args += ["-o", str(out)]
    killed = cli_process([*args, "--part", "1/2"])
    _stop_holding_a_claim(killed, work, 2)
    assert killed.returncode == -signal.SIGKILL
    stale = [p.name[:6] for p in (work / "render" / "claims").glob("*.claim")]
    assert len(stale) == 1
    before = {name: t for name, t in _segments(work).items() if name[:6] != stale[0]}
    assert 2 <= len(before) < FRAMES
    pti = read_json(work / "pti.json")["finished"]

    holder = Claims(work / "render" / "claims")  # a live worker of the current options
    assert holder.claim(100)
    try:
        for other in (["--crf", "23"], ["--crf", "23", "--part", "2/2"]):
            code, _, err = cli(*args, *other)
            line = _one_error_line(err)
            assert code != 0 and str(work) in line and "--fresh" in line and "wait" in line
    finally:
        holder.release(100)
        holder.close()
    assert all(name in _segments(work) for name in before)  # the refused runs cleared nothing

    code, _, err = cli(*args, "--part", "2/2")
    assert code == 0, err
    after = _segments(work)
    assert list(after) == [f"{k:06d}.mp4" for k in range(FRAMES)]
    assert {name: after[name] for name in before} == before  # only the missing ones rendered
    assert not list((work / "render" / "claims").glob("*.claim"))  # the stale one taken over
    assert read_json(work / "pti.json")["finished"] == pti
    taken = read_json(work / "render.json")["parts"][-1]["units"]
    assert taken == FRAMES - len(before)  # its own share and the dead part's remainder

    code, _, err = cli(*args)
    assert code == 0, err
    assert _segments(work) == after
    source_pts, _ = video_frames(clip)
    pts, images = video_frames(out)
    assert pts == source_pts and len(images) == FRAMES
