"""Renders streamed straight into the encoder, as resumable output segments.

A render stage draws frames [a, b) of segment k, composes them (`compose.composed_frames`: the
paste-back, crops, side by side) and encodes every output into

    <stage>/segments/<output>/<k:06d>.mp4

with a fresh encoder (so each segment starts with a keyframe), the job's codec settings and the
frames' source pts; the last frame of a segment lasts until the next segment's first frame.
Each file is written to a temporary name and renamed when complete, so a killed run resumes at
the first segment missing a file. `join_segments` then writes each final video by stream copy
(`VideoWriter.copy_video`, no re-encode) with the source's sound. A clip no longer than one
segment gives the same bytes as encoding it in one pass.

What segments change against one pass over the clip: the encoder starts a new group of pictures
at every segment, and the paste-back's temporal mask starts afresh at every segment (as it does
at a cut), so that a resumed run makes the same video as an uninterrupted one.

With `keep_frames` the renders are also kept as PNGs in <stage>/frames/ for inspection; the
videos are the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from ganvid.errors import WorkdirError
from ganvid.pipeline.claims import Claims, frame_units, part_order
from ganvid.pipeline.compose import (
    ComposeConfig,
    ComposeSources,
    FrameHook,
    Layout,
    composed_frames,
    frame_size,
)
from ganvid.pipeline.workdir import FrameDir

SEGMENT_FRAMES = 300
"""Frames per segment by default (10 s at 30 fps): what a killed run may have to redo."""

RenderRange = Callable[[range], Iterator[tuple[int, np.ndarray]]]
"""render(frames) -> (index, uint8 [H,W,3]) for each frame of the range, in order."""


def segment_ranges(count: int, segment_frames: int) -> list[range]:
    """Frame ranges [a, b) of the segments of a `count`-frame clip."""
    return frame_units(count, segment_frames)


def segment_path(stage_dir: Path, name: str, k: int) -> Path:
    return stage_dir / "segments" / name / f"{k:06d}.mp4"


def last_segments(count: int, segment_frames: int, names: list[str] | tuple[str, ...]) -> list[str]:
    """The files (relative to the stage dir) whose presence means every segment is done."""
    last = len(segment_ranges(count, segment_frames)) - 1
    return [f"segments/{name}/{last:06d}.mp4" for name in names]


class StreamedRenders:
    """Renders pulled in order from a render iterator, offered as `read(index)` (what
    `ComposeSources.renders` reads); with `keep`, each is also written there as a PNG."""

    def __init__(self, frames: Iterator[tuple[int, np.ndarray]], keep: FrameDir | None) -> None:
        self.frames, self.keep = frames, keep

    def read(self, index: int) -> np.ndarray:
        for rendered, image in self.frames:
            if self.keep is not None:
                self.keep.write(rendered, image)
            if rendered == index:
                return image
        raise WorkdirError(f"the render ended before frame {index}")


def encode_segments(
    stage_dir: Path,
    sources: ComposeSources,
    render: RenderRange,
    layouts: Mapping[str, Layout],
    config: ComposeConfig,
    segment_frames: int = SEGMENT_FRAMES,
    keep_frames: bool = False,
    on_frame: FrameHook | None = None,
    on_segment: Callable[[int], None] | None = None,
    label: str = "render",
    part: tuple[int, int] | None = None,
    claims: Claims | None = None,
) -> dict:
    """Render, compose and encode every segment whose files are missing.

    With `claims` (the stage's, `ganvid.pipeline.claims`) segments are units that workers
    claim: with `part` (K, N) this worker encodes the segments of part K of N first, then any
    other that is neither done nor held by a live worker, and returns; without `part` it does
    the same for every segment and then waits for those live workers hold.
    layouts: {output name: layout}. on_frame(index, render, crop) after each frame (the crop is
    cut only when it is given); on_segment(k) once segment k's frames are all done, before its
    video files are completed (a file it writes is there whenever the segment's videos are).
    Returns {'segments': count, 'units': segments this worker encoded, 'size': [height, width]
    of the renders}.
    """
    from ganvid.io.video import VideoWriter, probe
    from ganvid.pipeline.crops import ClipFrames
    from ganvid.ui import stage_bar

    # forward through the segments: one decode in all (a worker's first segment may seek)
    clip_frames = ClipFrames.for_workdir(sources.paths, sources.clip)
    info = probe(sources.clip)
    pts = sources.checked_pts(info)
    ranges = segment_ranges(len(pts), segment_frames)
    names = list(layouts)

    def done(k: int) -> bool:
        return all(segment_path(stage_dir, n, k).exists() for n in names)

    order = part_order(len(ranges), part)
    if claims is None:
        todo: Iterator[int] = (k for k in order if not done(k))
    else:
        waiting = f"waiting for other workers' segments of {stage_dir}"
        todo = claims.take(order, done, wait=part is None, waiting=waiting)
    keep = FrameDir(stage_dir / "frames") if keep_frames else None
    source_size = (info.height, info.width)
    size: tuple[int, int] | None = None
    encoded = 0
    frame_total = len(pts)
    with stage_bar(
        label, frame_total, sum(len(r) for k, r in enumerate(ranges) if done(k))
    ) as update:
        for k in todo:
            encoded += 1
            frames = ranges[k]
            end = pts[frames.stop] if frames.stop < len(pts) else None
            streamed = dataclasses.replace(sources, renders=StreamedRenders(render(frames), keep))
            need_crop = on_frame is not None
            with ExitStack() as stack:
                writers = {}
                for composed in composed_frames(
                    streamed, set(layouts.values()), config, need_crop, frames, clip_frames
                ):
                    if not writers:
                        size = composed.render.shape[:2]
                        for name, layout in layouts.items():
                            width, height = frame_size(layout, source_size, size)
                            path = segment_path(stage_dir, name, k)
                            path.parent.mkdir(parents=True, exist_ok=True)
                            writer = VideoWriter(
                                path,
                                info,
                                crf=config.crf,
                                preset=config.preset,
                                width=width,
                                height=height,
                                exact_size=config.exact_size,
                                end_pts=end,
                            )
                            writers[name] = stack.enter_context(writer)
                    for name, layout in layouts.items():
                        writers[name].write(composed.images[layout], composed.pts)
                    if on_frame is not None:
                        on_frame(composed.index, composed.render, composed.crop)
                    update()
                if on_segment is not None:
                    on_segment(k)
    finished = [k for k in range(len(ranges)) if done(k)]
    if size is None and finished:  # this worker encoded none: a finished one's coded size
        first = probe(segment_path(stage_dir, names[0], finished[0]))
        size = (first.height, first.width)
    shape = {} if size is None else {"size": [int(size[0]), int(size[1])]}
    return {"segments": len(ranges), "units": encoded, **shape}


def join_segments(
    stage_dir: Path,
    clip: Path,
    outputs: Mapping[str, Path],
    config: ComposeConfig,
    segment_frames: int = SEGMENT_FRAMES,
) -> dict[str, Path]:
    """Write each output {name: path} from its segments by stream copy, with the clip's sound.
    The writer is set up as the segments' writers were (settings, size), so the parts' codec
    parameters match (`copy_video` checks)."""
    from ganvid.io.video import VideoWriter, probe

    info = probe(clip)
    count = len(segment_ranges(info.frame_count, segment_frames))
    for name, path in outputs.items():
        parts = [segment_path(stage_dir, name, k) for k in range(count)]
        missing = [str(p) for p in parts if not p.exists()]
        if missing:
            raise WorkdirError(f"{missing[0]} is missing: the work dir is incomplete; rerun")
        first = probe(parts[0])
        with VideoWriter(
            path,
            info,
            crf=config.crf,
            preset=config.preset,
            audio_from=clip if info.has_audio else None,
            width=first.width,
            height=first.height,
            exact_size=config.exact_size,
        ) as writer:
            for part in parts:
                writer.copy_video(part)
    return dict(outputs)
