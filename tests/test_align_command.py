"""`ganvid align` end to end on tiny clips: outputs, frame count, resume, and the no-face error."""

from __future__ import annotations

import json

import pytest
from face_clips import blank_clip, moving_clip

from ganvid.io.video import probe, write_images_as_video


@pytest.fixture(scope="module")
def face_video(tmp_path_factory):
    clip = moving_clip(n_frames=8, blank=(3,))
    path = tmp_path_factory.mktemp("clip") / "talk.mp4"
    write_images_as_video(path, clip.frames, fps=25)
    return path


def test_align_writes_every_output_for_every_frame(cli, face_video, tmp_path, monkeypatch):
    workdir = tmp_path / "work"
    code, _, err = cli("align", face_video, "-o", workdir, "--size", "64")
    assert code == 0, err
    out = workdir / "align"
    geometry = json.loads((out / "geometry.json").read_text())
    assert geometry["frames"] == 8 and len(geometry["records"]) == 8
    assert [r["interpolated"] for r in geometry["records"]] == [k == 3 for k in range(8)]
    for name in ("aligned", "unaligned"):
        assert sorted(p.name for p in (out / name).glob("*.png")) == [
            f"{k:06d}.png" for k in range(8)
        ]
    for name in ("aligned.mp4", "unaligned.mp4", "preview.mp4"):
        info = probe(out / name)
        assert info.frame_count == 8
    assert (probe(out / "aligned.mp4").width, probe(out / "preview.mp4").width) == (64, 256)

    stamp = (out / "aligned" / "000005.png").stat().st_mtime_ns
    code, _, err = cli("align", face_video, "-o", workdir, "--size", "64")
    assert code == 0 and "up to date" in err
    assert (out / "aligned" / "000005.png").stat().st_mtime_ns == stamp

    # resume after losing outputs: the stored geometry is reused (no detector is built)
    (out / "aligned" / "000002.png").unlink()
    (out / "preview.mp4").unlink()

    def no_detector(*_):
        raise AssertionError("the geometry should have been reused")

    monkeypatch.setattr("ganvid.face.landmarks.make_detector", no_detector)
    code, _, err = cli("align", face_video, "-o", workdir, "--size", "64")
    assert code == 0, err
    assert (out / "aligned" / "000002.png").exists() and probe(out / "preview.mp4").frame_count == 8
    assert (out / "aligned" / "000005.png").stat().st_mtime_ns == stamp


def test_align_without_a_face_fails_in_one_line(cli, tmp_path):
    path = tmp_path / "empty.mp4"
    write_images_as_video(path, blank_clip(), fps=25)
    code, out, err = cli("align", path, "-o", tmp_path / "work")
    assert code == 4
    lines = [line for line in err.splitlines() if line.startswith("ganvid: error")]
    assert len(lines) == 1 and "no face was found in any of the 5 frames" in lines[0]
    assert "Traceback" not in err


def test_align_rejects_unknown_choices(cli, face_video, tmp_path):
    code, _, err = cli("align", face_video, "-o", tmp_path / "w", "--fill", "purple")
    assert code == 2 and "--fill must be one of" in err
