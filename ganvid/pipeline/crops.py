"""Face crops cut on demand from the decoded source, instead of stored per frame.

`ganvid invert`'s geometry stage (and the StyleGANEX and StyleMapGAN video jobs' for their
aligned faces, `aligned_arrays`) stores, per frame, the two quads a crop is cut over (the
FFHQ-aligned one for the encoder, the per-shot unaligned window for the generator) and the crop
sizes in geometry/geometry.npz. Every consumer (the encoder stage, PTI's targets, the metrics,
the crop and side-by-side videos, `ganvid edit --preview`) cuts the crops it needs from the
clip's frames with `face.align.ffhq_crop`, the function that cut the stored PNGs before, over
the exact (unrounded) quads, so the pixels are the same as those PNGs'.

Frames are decoded forward, one at a time (`ClipFrames`): memory does not grow with the clip.
A worker that starts far into the clip (its share of a `--part K/N` run) seeks there instead,
where the work dir's decode stage says the clip's timestamps can be trusted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ganvid.errors import VideoError
from ganvid.pipeline.layout import Layout
from ganvid.pipeline.workdir import read_json


@dataclass(frozen=True)
class CropSizes:
    """How the crops of a work dir are cut (stored with the quads in geometry.npz)."""

    aligned_size: int
    """Side of the aligned crops (the encoder's input)."""
    crop_size: int
    """Side of the unaligned crops (the generator's resolution)."""
    unaligned_fill: str = "ffhq"

    def arrays(self) -> dict[str, np.ndarray]:
        """The entries `CropCutter.load` reads back, for geometry.npz."""
        return {
            "crop_sizes": np.array([self.aligned_size, self.crop_size], dtype=np.int64),
            "unaligned_fill": np.array(self.unaligned_fill),
        }


def quad_arrays(records: list) -> dict[str, np.ndarray]:
    """Exact float64 quads of every frame [N,4,2] for geometry.npz (geometry.json rounds them,
    which would move crop pixels)."""
    return {
        "aligned_quads": np.array([r.aligned_quad for r in records], dtype=np.float64),
        "unaligned_quads": np.array([r.unaligned_quad for r in records], dtype=np.float64),
    }


def aligned_arrays(records: list, size: int) -> dict[str, np.ndarray]:
    """The entries `CropCutter.load` reads for a job that cuts only FFHQ-aligned faces at `size`
    (StyleGANEX and StyleMapGAN video: their encoders read the aligned face, the unaligned view
    is cut at the same size if asked for)."""
    return {**quad_arrays(records), **CropSizes(size, size).arrays()}


def aligned_batches(
    cutter: CropCutter, indices: list[int], batch: int
) -> Iterator[tuple[list[int], list[np.ndarray]]]:
    """(indices, aligned crops) in batches of `batch` over increasing `indices`, decoding the
    clip once: an encoder's input, cut on demand."""
    step = max(1, batch)
    for start in range(0, len(indices), step):
        chunk = indices[start : start + step]
        yield chunk, [cutter.aligned(index) for index in chunk]


SEEK_AHEAD_FRAMES = 250
"""`ClipFrames` seeks only to a frame more than this many frames past the one it holds (or
past the clip's start): a seek lands on the keyframe before the target and decodes from
there, which pays only when that keyframe is past where a forward decode stands. 250 frames
is libx264's and libx265's default keyframe interval (cameras and phones use 1-2 s), so
neighbouring segments and batches keep decoding forward."""


class ClipFrames:
    """A clip's decoded frames by index, one frame held. Asking for a later frame decodes
    forward, or seeks when it is more than `SEEK_AHEAD_FRAMES` ahead and `pts` (every frame's
    pts, none rebuilt: `for_workdir`) is known; asking for an earlier frame starts again (from
    the clip's start, or by seeking). Frames are the same bits either way (`read_frames`)."""

    def __init__(self, clip: Path, pts: Sequence[int] | None = None) -> None:
        self.clip = Path(clip)
        self.pts = None if pts is None else list(pts)
        self._reader: Iterator | None = None
        self._frame = None

    @classmethod
    def for_workdir(cls, layout: Layout, clip: Path) -> ClipFrames:
        """The frames of `clip`, seeking by the pts of the work dir's decode stage when it
        rebuilt none (decode/video.json "rebuilt": 0; a work dir from before that field was
        written never seeks)."""
        video = read_json(layout.decode_json) or {}
        return cls(clip, video["pts"] if video.get("rebuilt") == 0 else None)

    def get(self, index: int):
        """The `ganvid.io.video.Frame` at `index` (VideoError if the clip is shorter)."""
        from ganvid.io.video import read_frames

        if self._frame is not None and self._frame.index == index:
            return self._frame
        held = -1 if self._frame is None else self._frame.index
        restart = self._reader is None or index < held
        if restart:
            held = -1
        seek = self.pts is not None and index - held > SEEK_AHEAD_FRAMES
        if restart or seek:
            pts = self.pts if seek else None
            self._reader, self._frame = read_frames(self.clip, start=index, pts=pts), None
        for frame in self._reader:
            self._frame = frame
            if frame.index == index:
                return frame
        raise VideoError(
            f"{self.clip} has no frame {index}: it is not the clip this work dir was made from"
        )


class CropCutter:
    """Aligned and unaligned crops of a clip's frames, cut from the decoded source."""

    def __init__(
        self, frames: ClipFrames, aligned_quads, unaligned_quads, sizes: CropSizes
    ) -> None:
        from ganvid.face.align import CropConfig

        self.frames = frames
        self.aligned_quads = np.asarray(aligned_quads, dtype=np.float64)
        self.unaligned_quads = np.asarray(unaligned_quads, dtype=np.float64)
        self.sizes = sizes
        self._aligned_config = CropConfig(sizes.aligned_size, "ffhq")
        self._unaligned_config = CropConfig(sizes.crop_size, sizes.unaligned_fill)

    @classmethod
    def load(cls, geometry_npz: Path, clip: Path, frames: ClipFrames | None = None) -> CropCutter:
        """The cutter of a work dir's geometry stage (its geometry.npz) over `clip`."""
        data = np.load(geometry_npz)
        aligned_size, crop_size = (int(v) for v in data["crop_sizes"])
        sizes = CropSizes(aligned_size, crop_size, str(data["unaligned_fill"]))
        frames = ClipFrames(clip) if frames is None else frames
        return cls(frames, data["aligned_quads"], data["unaligned_quads"], sizes)

    def __len__(self) -> int:
        return len(self.unaligned_quads)

    def aligned(self, index: int, image: np.ndarray | None = None) -> np.ndarray:
        """uint8 [aligned_size, aligned_size, 3]: the aligned crop of frame `index` (cut from
        `image` when the caller holds the decoded frame already)."""
        from ganvid.face.align import ffhq_crop

        image = self.frames.get(index).image if image is None else image
        return ffhq_crop(image, self.aligned_quads[index], self._aligned_config)

    def unaligned(self, index: int, image: np.ndarray | None = None) -> np.ndarray:
        """uint8 [crop_size, crop_size, 3]: the unaligned crop (what the generator draws)."""
        from ganvid.face.align import ffhq_crop

        image = self.frames.get(index).image if image is None else image
        return ffhq_crop(image, self.unaligned_quads[index], self._unaligned_config)

    def stream(self, indices: Iterable[int], aligned: bool) -> Iterator[tuple[int, np.ndarray]]:
        """(index, crop) for increasing `indices`, decoding the clip once."""
        cut = self.aligned if aligned else self.unaligned
        for index in indices:
            yield index, cut(index)

    @property
    def unaligned_crops(self) -> CropView:
        return CropView(self, aligned=False)


@dataclass(frozen=True)
class CropView:
    """One kind of crop with `read(index)`, like a folder of per-frame PNGs (`FrameDir`)."""

    cutter: CropCutter
    aligned: bool

    def read(self, index: int) -> np.ndarray:
        if self.aligned:
            return self.cutter.aligned(index)
        return self.cutter.unaligned(index)


def cache_unaligned(
    cutter: CropCutter, folder, label: str = "crops", frames: Iterable[int] | None = None
) -> None:
    """Cut the unaligned crops of `frames` (increasing; None: every frame) once into `folder`
    (a `FrameDir`, by frame index, resumable: frames already there are kept), for a reader that
    comes back to them many times in random order (PTI)."""
    from ganvid.ui import stage_bar

    wanted = range(len(cutter)) if frames is None else [int(i) for i in frames]
    missing = set(folder.missing(len(cutter)))
    todo = [i for i in wanted if i in missing]
    with stage_bar(label, len(wanted), len(wanted) - len(todo)) as update:
        for index, crop in cutter.stream(todo, aligned=False):
            folder.write(index, crop)
            update()
