"""Real footage: the files and paths people have.

- Every container / codec case the bundled FFmpeg writes (`support.videos.FOOTAGE`: H.264 with
  B-frames and an edit list, VFR starting late with sound longer than the picture, PCM in
  MOV, odd-size 4:4:4, HEVC, 10-bit HDR HEVC, VP9 + Opus in WebM and MKV, AV1 + Opus, XviD
  (mpeg4) + AC-3 / MP3 in AVI, MJPEG + PCM in AVI, GIF) goes through the cheap path: probe,
  read_frames, a VideoWriter round trip, and `ganvid align` run from the clip's folder with
  a relative path.
- Every case also goes through the expensive commands with the tiny networks, again from the
  clip's folder with relative paths in a folder whose name has spaces and accents. The
  representative subset runs by default: `invert` + `edit` + `expand-fov` on XviD+AC-3 AVI,
  VP9+Opus WebM and odd-size H.264 MP4; `toonify` on 10-bit HDR HEVC MOV, MJPEG+PCM AVI and
  GIF; the other cases are marked slow (about 2.5 s each, ~50 s in all).
- The timestamp repair on frames whose pts arrive as 1,2,3,5,4,6,8,7 (packed B-frames in an
  AVI, which FFmpeg's encoder cannot write) from a patched frame source.
- Paths: read-only clip folders (by mode bits, and for real as an unprivileged user), `-o`
  into another folder, relative paths for invert-image, render and demo.

Every output must keep every frame, the source's display times (as FFmpeg reads them) and
the sound, and be yuv420p at an even size with its MP4 index first.

This file sits at the top of tests/, not in a package folder: it runs many commands on one
clip the way a user does, so no single module of ganvid owns it.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from support.face_clips import moving_clip
from support.pipeline_fixtures import tiny_assets
from support.styleganex_fixtures import write_checkpoint
from support.videos import FOOTAGE, audio_seconds, box_order, make_footage, relabel_as_packed

from ganvid.io.video import TimestampRepair, VideoWriter, probe, read_frames
from ganvid.pipeline.workdir import read_json

FRAMES = 8
SIZE = (160, 160)
FOLDER = "Vidéos de vacances"  # spaces and non-ASCII
STEM = "plage 1"
INVERT_CASES = ("xvid_ac3_avi", "vp9_opus_webm", "h264_odd_silent_mp4")
TOONIFY_CASES = ("hevc10_hdr_mov", "mjpeg_pcm_avi", "gif")


def matrix(representative: tuple[str, ...]) -> list:
    """Every footage case; those outside `representative` are marked slow (~2.5 s each)."""
    slow = pytest.mark.slow
    return [case if case in representative else pytest.param(case, marks=slow) for case in FOOTAGE]


MP4_TAKES = {"pcm_s16le": "aac"}  # sound codecs .mp4 cannot hold become AAC; others are copied


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return moving_clip(n_frames=FRAMES, size=SIZE, blank=(), noise=2.0).frames


@pytest.fixture(scope="module")
def library(tmp_path_factory, frames) -> Path:
    """One folder holding every footage case as `<case>.<ext>`."""
    root = tmp_path_factory.mktemp("footage")
    for name, footage in FOOTAGE.items():
        make_footage(root / f"{name}{footage.suffix}", footage, frames)
    return root


def place(library: Path, case: str, parent: Path) -> Path:
    """Copy a case into `parent/FOLDER/STEM.<ext>`; returns the clip."""
    footage = FOOTAGE[case]
    folder = parent / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    clip = folder / f"{STEM}{footage.suffix}"
    shutil.copyfile(library / f"{case}{footage.suffix}", clip)
    return clip


def ffmpeg_times(path: Path) -> list[Fraction]:
    """Frame times as FFmpeg itself decodes them (plain PyAV, no ganvid code)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [frame.pts * stream.time_base for frame in container.decode(stream)]


def times(path: Path) -> list[Fraction]:
    info = probe(path)
    return [frame.pts * info.time_base for frame in read_frames(path)]


def check_output(output: Path, source: Path, *, sound: bool = True) -> None:
    """Every frame at the source's display times, its sound to the end, yuv420p at an even
    size, the MP4 index (moov) before the media data (mdat)."""
    info = probe(output)
    assert info.frame_count == FRAMES, output
    assert times(output) == ffmpeg_times(source), output
    assert info.pix_fmt == "yuv420p" and info.width % 2 == 0 and info.height % 2 == 0, info
    boxes = box_order(output)
    assert boxes.index("moov") < boxes.index("mdat"), boxes
    before = audio_seconds(source)
    if not sound or before is None:
        assert audio_seconds(output) is None
        return
    codec, start, end = audio_seconds(output)
    assert codec == MP4_TAKES.get(before[0], before[0])
    assert end >= before[2] - 0.07, (end, before)  # re-encoded AAC may lose a part-frame
    assert start <= max(before[1], 0) + 0.07


# ----------------------------------------------------------------------------- every case


def test_footage_cases_are_what_they_claim(library):
    """The matrix really holds those codecs (a silently missing encoder would shrink it)."""
    codecs = {name: probe(library / f"{name}{f.suffix}").codec for name, f in FOOTAGE.items()}
    assert codecs["hevc10_hdr_mov"] == "hevc" and codecs["xvid_ac3_avi"] == "mpeg4"
    assert codecs["av1_opus_mkv"] in ("libdav1d", "av1") and codecs["gif"] == "gif"
    assert probe(library / "hevc10_hdr_mov.mov").pix_fmt == "yuv420p10le"
    assert probe(library / "xvid_ac3_avi.avi").audio_codec == "ac3"
    # B-frames: MP4 starts decoding before the first shown frame (an edit list)
    with av.open(str(library / "h264_aac_mp4.mp4")) as container:
        dts = [p.dts for p in container.demux(video=0) if p.dts is not None]
    assert dts[0] < 0


@pytest.mark.parametrize("case", FOOTAGE)
def test_reader_and_writer_keep_every_frame_time_and_sound(library, tmp_path, case):
    footage = FOOTAGE[case]
    source = library / f"{case}{footage.suffix}"
    expected = ffmpeg_times(source)
    if case != "xvid_mp3_avi":  # FFmpeg's AVI muxer delays video behind MP3 sound: 0, 3, 4 ...
        assert expected == footage.times(FRAMES)
    info = probe(source)
    decoded = list(read_frames(source))
    assert info.frame_count == len(decoded) == FRAMES
    assert [f.pts * info.time_base for f in decoded] == expected
    height, width = decoded[0].image.shape[:2]
    assert (width, height) == (footage.size or SIZE)

    output = tmp_path / "copy.mp4"
    with VideoWriter(output, info, audio_from=source, preset="ultrafast") as writer:
        for frame in decoded:
            writer.write(frame.image, frame.pts)
    check_output(output, source)
    assert (probe(output).width, probe(output).height) == (width + width % 2, height + height % 2)


@pytest.mark.parametrize("case", FOOTAGE)
def test_align_from_the_clips_folder(library, tmp_path, monkeypatch, cli, case):
    clip = place(library, case, tmp_path)
    monkeypatch.chdir(clip.parent)
    code, _, err = cli("align", clip.name, "--size", "64")
    assert code == 0, err
    out = clip.parent / f"{STEM}.ganvid" / "align"
    assert read_json(out / "geometry.json")["frames"] == FRAMES
    check_output(out / "aligned.mp4", clip, sound=False)  # crops for inspection: silent
    check_output(out / "preview.mp4", clip)


# ----------------------------------------------------------------------------- the commands


@pytest.fixture(scope="module")
def networks(tmp_path_factory, frames) -> dict:
    root = tmp_path_factory.mktemp("networks")
    assets = tiny_assets(root, frames)
    np.save(root / "direction.npy", np.random.default_rng(0).normal(size=(1, 32)).astype("f4"))
    assets["direction"] = root / "direction.npy"
    assets["toonify"] = root / "toonify.pt"
    write_checkpoint(assets["toonify"], "toonify", seed=0)
    return assets


def invert_command(networks: dict, clip: str, *extra: str) -> list[str]:
    return [
        "invert",
        clip,
        *("--generator", str(networks["generator"]), "--encoder", str(networks["encoder"])),
        *("--lpips", str(networks["lpips"]), "--device", "cpu", "--preset", "ultrafast"),
        *("--pti-steps", "1", "--encoder-iters", "1"),
        *extra,
    ]


def fast(*args: str) -> list[str]:
    return [*args, "--device", "cpu", "--preset", "ultrafast"]


@pytest.mark.parametrize("case", matrix(INVERT_CASES))
def test_invert_edit_and_expand_fov_from_the_clips_folder(
    library, networks, tmp_path, monkeypatch, cli, case
):
    clip = place(library, case, tmp_path)
    monkeypatch.chdir(clip.parent)
    code, _, err = cli(*invert_command(networks, clip.name))
    assert code == 0, err
    for suffix in ("_inverted", "_inverted_crop"):
        check_output(clip.parent / f"{STEM}{suffix}.mp4", clip)

    # -o into a folder that does not exist yet, given relative to the current one
    code, _, err = cli(
        *fast("edit", clip.name, "--file", str(networks["direction"]), "-o", "../out/edited.mp4")
    )
    assert code == 0, err
    check_output(tmp_path / "out" / "edited.mp4", clip)

    code, _, err = cli(*fast("expand-fov", clip.name, "--left", "7", "--top", "6"))
    assert code == 0, err
    output = clip.parent / f"{STEM}_fov.mp4"
    check_output(output, clip)
    assert (probe(output).width, probe(output).height) == (40, 38)  # 39 x 38 padded to even


@pytest.mark.parametrize("case", matrix(TOONIFY_CASES))
def test_toonify_from_the_clips_folder(library, networks, tmp_path, monkeypatch, cli, case):
    clip = place(library, case, tmp_path)
    monkeypatch.chdir(clip.parent)
    checkpoint = str(networks["toonify"])
    code, _, err = cli(*fast("toonify", clip.name, "--checkpoint", checkpoint, "--eye-px", "8"))
    assert code == 0, err
    (output,) = clip.parent.glob(f"{STEM}_toon_*.mp4")
    check_output(output, clip)
    width, height = FOOTAGE[case].size or SIZE
    assert (probe(output).width, probe(output).height) == (width + width % 2, height + height % 2)


# ----------------------------------------------------------------------------- timestamps


def test_timestamp_repair_sorts_labels_not_pictures():
    """Packed B-frames: the decoder gives pictures in display order labelled 1,2,3,5,4,6,8,7;
    the labels are sorted, the pictures keep their order."""
    arriving = [1, 2, 3, 5, 4, 6, 8, 7]
    for dts in (list(range(1, 9)), [None] * 8):
        repair = TimestampRepair(step=1)
        items = [
            (f"picture {k}", pts, d) for k, (pts, d) in enumerate(zip(arriving, dts, strict=True))
        ]
        out = list(repair.run(items))
        assert [picture for picture, _ in out] == [f"picture {k}" for k in range(8)]
        assert [stamp for _, stamp in out] == [1, 2, 3, 4, 5, 6, 7, 8]
        assert repair.changed == 4


def test_timestamp_repair_keeps_good_stamps_and_rebuilds_missing_or_repeated_ones():
    good = [(k, pts, None) for k, pts in enumerate([1000, 1040, 1100, 1120, 1200, 1210])]
    repair = TimestampRepair(step=40)
    assert [stamp for _, stamp in repair.run(good)] == [1000, 1040, 1100, 1120, 1200, 1210]
    assert repair.changed == 0

    # missing pts fall back to the dts, then to the previous time plus a frame
    broken = [
        (0, 0, 0),
        (1, None, 40),
        (2, None, None),
        (3, 120, 120),
        (4, 120, 160),
        (5, 200, 200),
    ]
    repair = TimestampRepair(step=40)
    stamps = [stamp for _, stamp in repair.run(broken)]
    assert stamps == [0, 40, 80, 120, 160, 200]
    assert repair.changed == 2  # frame 2 (nothing known) and frame 4 (a repeated 120)
    assert all(b > a for a, b in zip(stamps, stamps[1:], strict=False))


@pytest.fixture
def packed_b_frames(monkeypatch):
    """Make every decoded frame of every clip arrive labelled like a packed B-frame AVI:
    pts 1,2,3,5,4,6,8,7 (in 1/25 s of the stream's time base) and no dts."""
    relabel_as_packed(monkeypatch)


def test_out_of_order_pts_are_repaired_for_align_and_invert(
    library, tmp_path, monkeypatch, cli, packed_b_frames, capsys
):
    """The crash of issue 20: `ganvid align` on such frames stopped with "pts must increase",
    and invert's decode stage stored that order."""
    from ganvid.pipeline.invert import stage_decode
    from ganvid.pipeline.workdir import Workdir

    clip = place(library, "xvid_ac3_avi", tmp_path)
    tick = Fraction(1, 25)
    frames = list(read_frames(clip))
    assert [f.pts * probe(clip).time_base for f in frames] == [k * tick for k in range(1, 9)]
    reference = [f.image for f in read_frames(library / "xvid_ac3_avi.avi")]  # patched too
    for frame, image in zip(frames, reference, strict=True):  # the pictures keep their order
        np.testing.assert_array_equal(frame.image, image)

    monkeypatch.chdir(clip.parent)
    code, _, err = cli("align", clip.name, "--size", "64")
    assert code == 0, err
    aligned = clip.parent / f"{STEM}.ganvid" / "align" / "aligned.mp4"
    assert times(aligned) == [k * tick for k in range(1, 9)]

    with Workdir(tmp_path / "work") as workdir:
        stage_decode(workdir, {"clip": clip}, {})
        video = read_json(tmp_path / "work" / "decode" / "video.json")
    assert video["frame_count"] == FRAMES and video["pts"] == sorted(set(video["pts"]))


def test_rebuilt_timestamps_and_hdr_are_said_once(library, tmp_path, packed_b_frames, capsys):
    from ganvid.io.video import reader as video

    video._warned.clear()
    clip = place(library, "hevc10_hdr_mov", tmp_path)
    for _ in range(3):  # a job reads its clip several times
        list(read_frames(clip))
    err = capsys.readouterr().err
    assert err.count("rebuilt them in display order") == 1
    assert err.count("without tone mapping") == 1


# ----------------------------------------------------------------------------- paths


def listing(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


def test_read_only_clip_folder_with_workdir_elsewhere(
    library, networks, tmp_path, monkeypatch, cli
):
    """A clip on read-only media (chmod a-w: the tests run as root, who may write anyway, so
    ganvid reads the mode bits too): nothing is written beside it; the default outputs go into
    the work dir; without --workdir the one-line error says what to pass."""
    clip = place(library, "h264_aac_mp4", tmp_path)
    folder = clip.parent
    before = listing(folder)
    folder.chmod(0o555)
    try:
        monkeypatch.chdir(folder)
        code, _, err = cli("align", clip.name)
        assert code == 2 and "read-only" in err and "--workdir" in err, err
        work = tmp_path / "work space"
        code, _, err = cli(*invert_command(networks, clip.name, "--workdir", str(work)))
        assert code == 0, err
        check_output(work / f"{STEM}_inverted.mp4", clip)
        code, _, err = cli(
            *fast("edit", clip.name, "--workdir", str(work), "--file", str(networks["direction"]))
        )
        assert code == 0, err
        (edited,) = set(work.glob(f"{STEM}_*.mp4")) - set(work.glob(f"{STEM}_inverted*.mp4"))
        check_output(edited, clip)
        code, _, err = cli(*fast("expand-fov", clip.name, "--workdir", str(work), "--left", "4"))
        assert code == 0, err
        check_output(work / f"{STEM}_fov.mp4", clip)
        toonify = ("--checkpoint", str(networks["toonify"]), "--eye-px", "8")
        code, _, err = cli(*fast("toonify", clip.name, "--workdir", str(work), *toonify))
        assert code == 0, err
        (toon,) = work.glob(f"{STEM}_toon_*.mp4")
        check_output(toon, clip)
        assert listing(folder) == before
    finally:
        folder.chmod(0o755)


@pytest.fixture
def unprivileged_tree():
    """A folder the `nobody` user can reach (pytest's tmp folders are root-only)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to run a command as another user")
    if not _nobody_can_read(*_code_and_data_files()):
        pytest.skip(
            "nobody cannot read this checkout or its venv (e.g. a clone in a 0700 temp "
            "folder), so ganvid cannot run as nobody here; the chmod 0555 tests still run"
        )
    root = Path(tempfile.mkdtemp(prefix="ganvid-ro-"))
    root.chmod(0o755)
    yield root
    for path in root.rglob("*"):
        if path.is_dir():
            path.chmod(0o777)
    shutil.rmtree(root)


def _code_and_data_files() -> list[Path]:
    """Files a run as nobody reads lazily: ganvid's own modules and manifest, a video module
    of the venv, and the bundled dlib landmark model."""
    import av

    import ganvid
    from ganvid.weights import find

    package = Path(ganvid.__file__).parent
    files = [package / "io" / "video" / "reader.py", package / "weights.toml", Path(av.__file__)]
    model = find("dlib-landmarks-68")
    return files + ([model] if model is not None else [])


def _nobody_can_read(*paths: Path) -> bool:
    """Whether uid 65534 can open every path (checked in a forked child, by the kernel)."""
    pid = os.fork()
    if pid == 0:
        ok = False
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            for path in paths:
                with open(path, "rb") as stream:
                    stream.read(1)
            ok = True
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def run_as_nobody(folder: Path, home: Path, *args: str) -> int:
    """`ganvid ARGS` in a forked child that has become `nobody` (uid 65534) in `folder`: the
    kernel, not ganvid, decides what it may write. (Exec'ing a new interpreter is not an
    option: the interpreter lives under /root.) Returns the exit code."""
    from ganvid.cli import run

    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 99
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os.environ["GANVID_HOME"] = str(home)
            os.chdir(folder)
            code = run(list(args))
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_read_only_folder_for_real_as_an_unprivileged_user(library, unprivileged_tree, cli):
    """The kernel's own refusal: `nobody` cannot write into the clip's folder at all, so a
    run that succeeds wrote nothing there. Without --workdir ganvid says so (exit 2)."""
    clip = place(library, "xvid_mp3_avi", unprivileged_tree)
    clip.chmod(0o644)
    warm = place(library, "xvid_mp3_avi", unprivileged_tree / "warm")
    assert cli("align", warm, "--size", "32")[0] == 0  # imports everything before the fork
    clip.parent.chmod(0o555)
    writable = unprivileged_tree / "writable"
    writable.mkdir()
    writable.chmod(0o777)
    before = listing(clip.parent)

    assert run_as_nobody(clip.parent, writable / "home", "align", clip.name) == 2
    workdir = writable / "w"
    code = run_as_nobody(clip.parent, writable / "home", "align", clip.name, "--workdir", workdir)
    assert code == 0
    assert read_json(workdir / "align" / "geometry.json")["frames"] == FRAMES
    assert workdir.stat().st_uid == 65534  # written by nobody indeed
    assert listing(clip.parent) == before
    assert stat.S_IMODE(clip.parent.stat().st_mode) == 0o555


def test_invert_image_render_and_demo_take_relative_paths(
    networks, tmp_path, monkeypatch, cli, frames
):
    from ganvid.pipeline.workdir import atomic_write_bytes, encode_image

    folder = tmp_path / FOLDER
    folder.mkdir()
    monkeypatch.chdir(folder)
    atomic_write_bytes(folder / "visage 1.png", encode_image(frames[0][48:80, 64:96]))
    code, _, err = cli(
        "invert-image", "visage 1.png", "--encoder", str(networks["encoder"]),
        "--generator", str(networks["generator"]), "--no-align", "--device", "cpu",
        "-o", "résultats",
    )  # fmt: skip
    assert code == 0, err
    assert (folder / "résultats" / "visage 1_reconstruction.png").is_file()

    code, _, err = cli("render", "-g", str(networks["generator"]), "--seeds", "0-1", "-o", "rendus")
    assert code == 0, err
    assert sorted(os.listdir(folder / "rendus")) == ["seed0000.png", "seed0001.png"]

    code, _, err = cli("demo", "-o", "démo", "--size", "64")
    assert code == 0, err
    assert read_json(folder / "démo" / "astronaut.ganvid" / "align" / "geometry.json")["frames"]
