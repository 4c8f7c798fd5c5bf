"""read_frames(start, pts): seeking to a frame gives the bits a read from the clip's start
gives, decodes only from the keyframe before it, and reads from the start whenever the pts it
finds are not the ones it was given."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.videos import (
    FOOTAGE,
    count_decoded,
    make_footage,
    make_gop_clip,
    relabel_as_packed,
    synthetic_image,
)

from ganvid.io.video import read_frames

FRAMES, GOP = 60, 12


def count_reads_from_start(monkeypatch) -> list[int]:
    """How many times a read decodes from the clip's first frame (a one-item list)."""
    from ganvid.io.video import reader

    real, count = reader._frames_in_order, [0]

    def counting(*args):
        count[0] += 1
        return real(*args)

    monkeypatch.setattr(reader, "_frames_in_order", counting)
    return count


def assert_same(frames: list, reference: list) -> None:
    assert [f.index for f in frames] == [f.index for f in reference]
    for frame, expected in zip(frames, reference, strict=True):
        assert frame.pts == expected.pts and frame.time_s == expected.time_s
        assert np.array_equal(frame.image, expected.image), f"frame {frame.index} differs"


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".avi"])
def test_every_start_gives_the_frames_of_a_read_from_the_start(tmp_path, monkeypatch, suffix):
    """Every start, so the MP4 targets shown before the next keyframe but decoded after it
    (a seek by decoding time lands past them) are among them."""
    clip = make_gop_clip(tmp_path / f"gop{suffix}", FRAMES, GOP)
    reference = list(read_frames(clip))
    assert not any(f.rebuilt for f in reference)
    pts = [f.pts for f in reference]
    decoded = count_decoded(monkeypatch)
    from_start = count_reads_from_start(monkeypatch)
    for start in range(1, FRAMES):
        decoded[0] = 0
        assert_same(list(read_frames(clip, start=start, pts=pts)), reference[start:])
        assert from_start[0] == 0, f"start {start}: fell back to a read from the start"
        # from the keyframe before `start`, plus its leading B-frames (3 at most)
        assert decoded[0] <= FRAMES - start + GOP + 3, start
    decoded[0] = 0
    assert_same(list(read_frames(clip, start=FRAMES - 2, pts=pts)), reference[-2:])
    assert decoded[0] < FRAMES // 2


def test_a_rotated_clip_stays_upright_after_a_seek(tmp_path):
    clip = make_gop_clip(tmp_path / "phone.mp4", 36, GOP, rotation_deg=270)
    reference = list(read_frames(clip))
    assert reference[0].image.shape == (64, 48, 3)
    sought = list(read_frames(clip, start=30, pts=[f.pts for f in reference]))
    assert_same(sought, reference[30:])


def test_start_without_pts_decodes_from_the_first_frame(tmp_path, monkeypatch):
    clip = make_gop_clip(tmp_path / "gop.mkv", 30, GOP)
    reference = list(read_frames(clip))
    decoded = count_decoded(monkeypatch)
    assert_same(list(read_frames(clip, start=25)), reference[25:])
    assert decoded[0] == 30


@pytest.mark.parametrize("wrong", ["shifted", "too_few", "missing_one"])
def test_pts_that_do_not_match_fall_back_to_a_read_from_the_start(tmp_path, monkeypatch, wrong):
    """Never a wrong frame: pts of another clip (or a frame the seek does not find) make the
    reader decode from the start, and the frames are still the right ones."""
    clip = make_gop_clip(tmp_path / "gop.mp4", 40, GOP)
    reference = list(read_frames(clip))
    pts = [f.pts for f in reference]
    given = {
        "shifted": [p + 1 for p in pts],
        "too_few": pts[:35],  # the clip goes on past the last pts given
        "missing_one": pts[:30] + pts[31:],  # frame 30 not in the list: 31 is taken for 30
    }[wrong]
    decoded = count_decoded(monkeypatch)
    from_start = count_reads_from_start(monkeypatch)
    start = 28
    frames = list(read_frames(clip, start=start, pts=given))
    assert_same(frames, reference[start:])
    assert from_start[0] == 1 and decoded[0] >= 40  # went back to the first frame


def test_packed_b_frame_labels_are_rebuilt_and_marked(tmp_path, monkeypatch):
    """An AVI with packed B-frames: its pts are rebuilt, which `Frame.rebuilt` says, so a work
    dir knows not to seek into it (ganvid.pipeline.crops.ClipFrames.for_workdir)."""
    clip = make_gop_clip(tmp_path / "packed.avi", 12, GOP)
    relabel_as_packed(monkeypatch)
    frames = list(read_frames(clip))
    assert [f.rebuilt for f in frames][:8] == [False] * 3 + [True, True] + [False, True, True]
    assert [f.pts for f in frames] == list(range(1, 13))


def test_a_start_past_the_end_gives_nothing(tmp_path):
    clip: Path = make_gop_clip(tmp_path / "gop.avi", 10, GOP)
    pts = [f.pts for f in read_frames(clip)]
    assert list(read_frames(clip, start=10, pts=pts)) == []
    assert list(read_frames(clip, start=12)) == []


def test_hdr_is_noted_after_a_seek(tmp_path, capsys):
    """The HDR note comes from the first frame a read decodes, sought or not."""
    from ganvid.io.video import reader

    clip = tmp_path / "hdr.mov"
    make_footage(clip, FOOTAGE["hevc10_hdr_mov"], [synthetic_image(k, 64, 48) for k in range(8)])
    reference = list(read_frames(clip))
    reader._warned.clear()
    capsys.readouterr()
    sought = list(read_frames(clip, start=5, pts=[f.pts for f in reference]))
    assert_same(sought, reference[5:])
    assert capsys.readouterr().err.count("without tone mapping") == 1
