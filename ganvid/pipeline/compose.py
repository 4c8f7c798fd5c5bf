"""Write the output videos of a render: pasted back into the source frames, or the crops.

One streaming pass over the source clip (only when a layout needs its frames), the per-frame
renders (a `FrameDir`) and the geometry records, feeding one `VideoWriter` per output:

    frame       the render pasted back into the full source frame (`paste_back.PasteBack`);
                frames whose face was not detected pass through bit for bit
    render      the render itself (crop space; larger than the crop after FoV expansion)
    crop        the source crop the render reconstructs (resized to the render's crop size)
    sbs_frame   source frame | pasted frame
    sbs_crop    source crop | render (the crop placed where it sits in an expanded render)

Every output keeps the source's frame count, timestamps (pts from decode/video.json) and sound.
Memory holds one frame per output, whatever the clip's length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from ganvid.errors import VideoError
from ganvid.pipeline.layout import Layout as WorkLayout
from ganvid.pipeline.paste_back import PasteBack, PasteConfig
from ganvid.pipeline.workdir import FrameDir, read_json

if TYPE_CHECKING:
    from ganvid.pipeline.crops import ClipFrames

Layout = Literal["frame", "render", "crop", "sbs_frame", "sbs_crop"]
LAYOUTS: tuple[str, ...] = ("frame", "render", "crop", "sbs_frame", "sbs_crop")
_NEEDS_SOURCE = {"frame", "sbs_frame"}
_NEEDS_CROP = {"crop", "sbs_crop"}

FrameHook = Callable[[int, np.ndarray, np.ndarray | None], None]
"""on_frame(index, render uint8 [H,W,3], source crop uint8 or None) after each frame."""


@dataclass(frozen=True)
class ComposeConfig:
    paste: PasteConfig = field(default_factory=PasteConfig)
    crf: int = 18
    preset: str = "medium"
    crop_offset: tuple[int, int] = (0, 0)
    """(top, left) of the crop inside the render (an FoV expansion's top and left)."""
    exact_size: bool = False
    """Odd sizes: False pads to even yuv420p, True keeps them in yuv444p (VideoWriter)."""


def main_layouts(paste_back: bool, side_by_side: bool) -> dict[str, Layout]:
    """{'video': frame|render[, 'side_by_side': sbs_frame|sbs_crop]} for the usual outputs."""
    layouts: dict[str, Layout] = {"video": "frame" if paste_back else "render"}
    if side_by_side:
        layouts["side_by_side"] = "sbs_frame" if paste_back else "sbs_crop"
    return layouts


def sibling(path: Path, suffix: str) -> Path:
    """talk_age3.mp4, 'sbs' -> talk_age3_sbs.mp4."""
    return path.with_name(f"{path.stem}_{suffix}{path.suffix}")


@dataclass
class ComposeSources:
    """Where the pieces of every frame are: the clip, its pts, the renders, crops, geometry."""

    clip: Path
    workdir: Path
    renders: FrameDir

    @property
    def paths(self) -> WorkLayout:
        return WorkLayout(self.workdir)

    @property
    def pts(self) -> list[int]:
        return list(read_json(self.paths.decode_json)["pts"])

    def checked_pts(self, info) -> list[int]:
        """`pts`, or VideoError if the clip (`info`, its probe) has another frame count."""
        pts = self.pts
        if info.frame_count != len(pts):
            raise VideoError(
                f"{self.clip} has {info.frame_count} frames, the work dir {len(pts)}: it is not "
                "the clip this work dir was made from"
            )
        return pts

    def crops(self, frames):
        """The unaligned crops, cut on demand from `frames` (a `crops.ClipFrames`)."""
        from ganvid.pipeline.crops import CropCutter

        return CropCutter.load(self.paths.geometry_npz, self.clip, frames)

    def records(self) -> list:
        from ganvid.face.geometry import load_geometry

        return load_geometry(self.paths.geometry_json).records

    def paster(self, config: PasteConfig) -> Callable[[int, np.ndarray, np.ndarray], np.ndarray]:
        """paste(index, frame, render) -> the render pasted into the frame, for one pass over
        consecutive frames (it holds the temporal mask): through each record's unaligned quad.
        A job whose renders sit elsewhere in the frame (a crop window) overrides this."""
        return _Paster(self.records(), config)


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    if image.shape[:2] == (height, width):
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def _place(crop: np.ndarray, render_shape: tuple[int, ...], offset: tuple[int, int]) -> np.ndarray:
    """The crop as big as the render: itself, or on a black canvas at `offset` (top, left) when
    the render is an expanded field of view (the crop is the generator's size)."""
    if crop.shape == tuple(render_shape):
        return crop
    canvas = np.zeros(render_shape, np.uint8)
    top, left = offset
    part = crop[: render_shape[0] - top, : render_shape[1] - left]
    canvas[top : top + part.shape[0], left : left + part.shape[1]] = part
    return canvas


class _Paster:
    """PasteBack over a clip: a fresh temporal mask at every cut and after faceless frames."""

    def __init__(self, records: list, config: PasteConfig) -> None:
        self.records, self.paste, self.shot = records, PasteBack(config), None

    def __call__(self, index: int, frame: np.ndarray, render: np.ndarray) -> np.ndarray:
        record = self.records[index]
        if not record.detected or record.interpolated:
            self.paste.reset()
            self.shot = None
            return frame
        if record.shot != self.shot:
            self.paste.reset()
            self.shot = record.shot
        return self.paste(frame, render, record.unaligned_quad, record.landmarks)


def _layout_image(
    layout: str,
    frame: np.ndarray | None,
    pasted: np.ndarray | None,
    render: np.ndarray,
    crop: np.ndarray | None,
    offset: tuple[int, int],
) -> np.ndarray:
    """One output frame of `layout` from the frame's pieces."""
    if layout == "frame":
        return pasted
    if layout == "render":
        return render
    if layout == "crop":
        return _resize(crop, *render.shape[:2])
    if layout == "sbs_frame":
        return np.concatenate([frame, pasted], axis=1)
    return np.concatenate([_place(crop, render.shape, offset), render], axis=1)


def frame_size(layout: str, source: tuple[int, int], render: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of a layout's frames; source and render are (height, width)."""
    (sh, sw), (rh, rw) = source, render
    return {
        "frame": (sw, sh),
        "render": (rw, rh),
        "crop": (rw, rh),
        "sbs_frame": (2 * sw, sh),
        "sbs_crop": (2 * rw, rh),
    }[layout]


@dataclass
class ComposedFrame:
    """One frame's pieces and its images per layout."""

    index: int
    pts: int
    render: np.ndarray
    crop: np.ndarray | None
    images: dict[str, np.ndarray]


def composed_frames(
    sources: ComposeSources,
    layouts: set[str],
    config: ComposeConfig = ComposeConfig(),
    need_crop: bool = False,
    indices: range | None = None,
    clip_frames: ClipFrames | None = None,
) -> Iterator[ComposedFrame]:
    """Stream every frame's images for `layouts` (or those of `indices`), in order; the source
    clip is decoded only when a layout shows it or a crop is cut from it (through
    `clip_frames` when given: calls over consecutive ranges then decode the clip once). The
    paste-back's temporal mask starts afresh with each call. VideoError if the clip is not the
    one the work dir was made from."""
    from ganvid.pipeline.crops import ClipFrames

    unknown = set(layouts) - set(LAYOUTS)
    if unknown:
        raise ValueError(f"unknown output layouts {sorted(unknown)}")
    need_crop = need_crop or bool(layouts & _NEEDS_CROP)
    paster = sources.paster(config.paste) if layouts & _NEEDS_SOURCE else None
    clip = None
    if paster is not None or need_crop:
        clip = clip_frames or ClipFrames.for_workdir(sources.paths, sources.clip)
    cutter = sources.crops(clip) if need_crop else None
    pts = sources.pts
    for index in range(len(pts)) if indices is None else indices:
        stamp = pts[index]
        render = sources.renders.read(index)
        frame = pasted = crop = None
        if clip is not None:
            decoded = clip.get(index)
            if decoded.pts != stamp:
                raise VideoError(
                    f"{sources.clip} differs from the clip this work dir was made from "
                    f"(frame {index}); pass the original clip"
                )
            frame = decoded.image
        if cutter is not None:
            crop = cutter.unaligned(index, frame)
        if paster is not None:
            pasted = paster(index, frame, render)
        images = {
            layout: _layout_image(layout, frame, pasted, render, crop, config.crop_offset)
            for layout in layouts
        }
        yield ComposedFrame(index, stamp, render, crop, images)


def compose_videos(
    sources: ComposeSources,
    outputs: Mapping[str, tuple[Path, Layout]],
    config: ComposeConfig = ComposeConfig(),
    on_frame: FrameHook | None = None,
    label: str = "encode",
) -> dict[str, Path]:
    """Write every output {name: (path, layout)}; returns {name: path}.

    on_frame (e.g. a reconstruction meter) also gets the source crop of each frame.
    """
    from ganvid.io.video import VideoWriter, probe
    from ganvid.ui import progress

    info = probe(sources.clip)
    pts = sources.checked_pts(info)
    render_size = sources.renders.read(0).shape[:2]
    source_size = (info.height, info.width)
    layouts = {layout for _, layout in outputs.values()}
    with ExitStack() as stack, progress() as bar:
        task = bar.add_task(label, total=len(pts))
        writers = {}
        for name, (path, layout) in outputs.items():
            width, height = frame_size(layout, source_size, render_size)
            writers[name] = stack.enter_context(
                VideoWriter(
                    path,
                    info,
                    crf=config.crf,
                    preset=config.preset,
                    audio_from=sources.clip if info.has_audio else None,
                    width=width,
                    height=height,
                    exact_size=config.exact_size,
                )
            )
        for composed in composed_frames(sources, layouts, config, on_frame is not None):
            for name, (_, layout) in outputs.items():
                writers[name].write(composed.images[layout], composed.pts)
            if on_frame is not None:
                on_frame(composed.index, composed.render, composed.crop)
            bar.advance(task)
    return {name: path for name, (path, _) in outputs.items()}
