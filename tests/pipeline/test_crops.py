"""ClipFrames: a worker that starts far into a clip seeks there, with the frames of a decode
from the start, bit for bit; a work dir whose timestamps were rebuilt never seeks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support.face_clips import moving_clip
from support.pipeline_fixtures import tracked_workdir
from support.videos import count_decoded, make_gop_clip, relabel_as_packed

from ganvid.io.video import read_frames
from ganvid.io.video import reader as video_reader
from ganvid.pipeline import crops
from ganvid.pipeline.compose import ComposeConfig, ComposeSources
from ganvid.pipeline.crops import ClipFrames
from ganvid.pipeline.invert import crop_cutter, stage_decode
from ganvid.pipeline.layout import Layout
from ganvid.pipeline.segments import encode_segments
from ganvid.pipeline.workdir import Workdir, read_json

FRAMES, GOP = 60, 12


def decoded_workdir(tmp_path, clip) -> Layout:
    with Workdir(tmp_path / "work") as workdir:
        stage_decode(workdir, {"clip": clip}, {})
    return Layout(tmp_path / "work")


def forward_jumps(seed: int) -> list[int]:
    """Increasing frame indices with gaps of 1 to 25 frames, as workers' shares and segments
    ask for them."""
    rng = np.random.default_rng(seed)
    indices, index = [], int(rng.integers(0, 5))
    while index < FRAMES:
        indices.append(index)
        index += int(rng.integers(1, 26))
    return indices


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".avi"])
def test_forward_jumps_give_the_frames_of_a_forward_decode(tmp_path, monkeypatch, suffix):
    clip = make_gop_clip(tmp_path / f"gop{suffix}", FRAMES, GOP)
    reference = list(read_frames(clip))
    layout = decoded_workdir(tmp_path, clip)
    assert read_json(layout.decode_json)["rebuilt"] == 0
    monkeypatch.setattr(crops, "SEEK_AHEAD_FRAMES", 8)  # seek over more than 8 frames
    decoded = count_decoded(monkeypatch)
    for seed in range(4):
        frames = ClipFrames.for_workdir(layout, clip)
        assert frames.pts == [f.pts for f in reference]
        for index in forward_jumps(seed):
            frame = frames.get(index)
            assert frame.index == index and frame.pts == reference[index].pts
            assert np.array_equal(frame.image, reference[index].image), (seed, index)

    # a worker whose share is the clip's end decodes from the keyframe before it
    decoded[0] = 0
    frames = ClipFrames.for_workdir(layout, clip)
    assert np.array_equal(frames.get(FRAMES - 3).image, reference[-3].image)
    assert decoded[0] <= GOP + 3 + 3  # to frame 57 from keyframe 48 (+ leading B-frames)
    # going back starts again (seeking there too), still the same bits
    assert np.array_equal(frames.get(30).image, reference[30].image)


def test_neighbouring_frames_decode_forward(tmp_path, monkeypatch):
    """Jumps of up to SEEK_AHEAD_FRAMES go on decoding forward (one decode for the clip)."""
    clip = make_gop_clip(tmp_path / "gop.mkv", FRAMES, GOP)
    layout = decoded_workdir(tmp_path, clip)
    monkeypatch.setattr(crops, "SEEK_AHEAD_FRAMES", 20)
    decoded = count_decoded(monkeypatch)
    frames = ClipFrames.for_workdir(layout, clip)
    for index in [*range(0, FRAMES, 20), FRAMES - 1]:  # jumps of 20 and 19: forward
        frames.get(index)
    assert decoded[0] == FRAMES  # one decode


def test_rebuilt_timestamps_never_seek(tmp_path, monkeypatch):
    """An AVI with packed B-frames: the decode stage rebuilt its pts, so the crops are cut
    from a forward decode (a seek could not tell its frames apart)."""
    clip = make_gop_clip(tmp_path / "packed.avi", 30, GOP)
    relabel_as_packed(monkeypatch)
    reference = list(read_frames(clip))
    layout = decoded_workdir(tmp_path, clip)
    assert read_json(layout.decode_json)["rebuilt"] == 4
    monkeypatch.setattr(crops, "SEEK_AHEAD_FRAMES", 2)
    decoded = count_decoded(monkeypatch)
    frames = ClipFrames.for_workdir(layout, clip)
    assert frames.pts is None
    for index in (3, 17, 29):
        assert np.array_equal(frames.get(index).image, reference[index].image)
    assert decoded[0] == 30


def test_a_work_dir_from_before_the_rebuilt_field_never_seeks(tmp_path):
    clip = make_gop_clip(tmp_path / "gop.avi", 10, GOP)
    layout = decoded_workdir(tmp_path, clip)
    video = read_json(layout.decode_json)
    del video["rebuilt"]
    layout.decode_json.write_text(json.dumps(video))
    assert ClipFrames.for_workdir(layout, clip).pts is None
    assert ClipFrames.for_workdir(Layout(tmp_path / "none"), clip).pts is None


def test_a_part_that_seeks_renders_the_segments_of_a_whole_run(tmp_path, monkeypatch):
    """The render of part 2 of 2 (its segments first, then the others: jumps ahead and back)
    cuts its crops and pastes them back into frames found by seeking: the same segment files,
    byte for byte, as a run that decodes the clip forward once."""
    clip = make_gop_clip(
        tmp_path / "talk.mp4", gop=6, images=moving_clip(24, (160, 120), blank=()).frames
    )
    work = tracked_workdir(clip, tmp_path / "talk.ganvid", crop_size=64)
    sources = ComposeSources(clip, work, None)
    layouts = {"video": "frame", "side_by_side": "sbs_frame"}

    def render_segments(stage: str, part) -> dict[str, bytes]:
        cutter = crop_cutter(Layout(work), clip)
        render = lambda indices: cutter.stream(indices, aligned=False)  # noqa: E731
        info = encode_segments(
            work / stage, sources, render, layouts, ComposeConfig(), 4, part=part
        )
        assert info["segments"] == 6
        return {
            p.relative_to(work / stage).as_posix(): p.read_bytes()
            for p in sorted((work / stage).rglob("*.mp4"))
        }

    whole = render_segments("whole", None)
    seeks = []
    seek = video_reader._frames_after_seek
    monkeypatch.setattr(crops, "SEEK_AHEAD_FRAMES", 3)
    monkeypatch.setattr(
        video_reader,
        "_frames_after_seek",
        lambda *a, **k: seeks.append(k["start"]) or seek(*a, **k),
    )
    assert render_segments("part", (2, 2)) == whole and len(whole) == 12
    assert 12 in seeks  # part 2 starts at segment 3, frame 12
