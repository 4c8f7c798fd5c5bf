"""StyleMapGAN local editing of a video: `ganvid stylemap video clip.mp4 -r ref.png --part hair`.

Stages (a work dir, default `<clip>.ganvid/`, shared with the other jobs: the decode stage is
`ganvid invert`'s, so it is reused; names and paths are `ganvid.pipeline.layout.Layout`'s, each
stage gets its frozen options, hashed, and the loaded networks, never the job):

    decode             decode/video.json            frame count, pts, size
    smgan_geometry     smgan_geometry/geometry.json tracked, smoothed landmarks, FFHQ quads
                       smgan_geometry/geometry.npz  the exact quads: the FFHQ-aligned faces at the
                                                    model's size (the alignment the models were
                                                    trained on) are cut from the clip on demand
                                                    (`ganvid.pipeline.crops`), not stored
    smgan_encode       smgan_encode/stylemaps.npy   encoder stylemap per frame [N, C, S, S]
    smgan_smooth       smgan_smooth/stylemaps.npy   the same, smoothed over time within shots
                                                    (the 5-tap filter of pipeline/smoothing.py)
    smgan_masks        smgan_masks/<part>/*.png     the part in each aligned face (face parsing)
    <tag>_render       <tag>_render/segments/video/*.mp4  the edited aligned face per frame,
                                                    pasted back into its source frame and
                                                    encoded in resumable segments
                                                    (`ganvid.pipeline.segments`); --keep-frames:
                                                    also <tag>_render/frames/*.png
    <tag>_encode       the output video             joined from the segments by stream copy

The edit of frame t is the official CelebA-HQ local edit: both stylemaps (the frame's and the
reference's) go through the generator's resizer, and every layer code is taken from the
reference on the cells the max rule selects from the union of the part in the frame and in
the reference (or from a painted mask), moved part way by the keyframed strength s(t):
code = lerp(frame code, reference code, s(t)) on those cells, the frame's code elsewhere. s = 0
renders the frame's own (smoothed) stylemap, bit for bit the reconstruction; s = 1 is the full
transplant. The render is pasted back through the aligned quad with `paste_back.PasteBack`
(`compose.composed_frames`, its temporal mask afresh with every segment), so every frame, its
timestamp and the sound are kept; frames whose face was not detected pass through.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from ganvid.edit import stylemap as ops
from ganvid.edit.keyframes import Strength
from ganvid.errors import InputError
from ganvid.files import absolute
from ganvid.pipeline import layout as names
from ganvid.pipeline.align import track_geometry
from ganvid.pipeline.compose import ComposeConfig, ComposeSources
from ganvid.pipeline.crops import ClipFrames, CropCutter, aligned_arrays, aligned_batches
from ganvid.pipeline.edit import EncodeStageOptions
from ganvid.pipeline.edit import stage_encode as stage_join
from ganvid.pipeline.invert import batches, frame_count, run_decode
from ganvid.pipeline.job import Job, input_clip
from ganvid.pipeline.layout import Layout, Tagged
from ganvid.pipeline.paste_back import paste_config
from ganvid.pipeline.segments import SEGMENT_FRAMES, last_segments
from ganvid.pipeline.styleganex_video import face_options
from ganvid.pipeline.stylemapgan import DEFAULT_CHECKPOINT, PART_HELP
from ganvid.pipeline.workdir import (
    OMIT_DEFAULT,
    FrameDir,
    StageRecord,
    Workdir,
    atomic_save_npz,
    default_workdir,
    gather_arrays,
    output_folder,
    read_json,
)
from ganvid.ui import stage_bar


@dataclass(frozen=True)
class StylemapVideoOptions:
    """Everything `ganvid stylemap video` can be told (see its help).

    reference: the reference photo's file (hashed into the render key); reference_image: its
    pixels (uint8 RGB), read by the caller. part or mask: what is transplanted. strength: a
    number or keyframes ('0s:0,1s:1'). align_reference: FFHQ-align the reference's largest
    face (False: it is an aligned crop already).
    """

    clip: Path
    reference: Path
    reference_image: np.ndarray | None = None
    part: str | None = None
    mask: Path | None = None
    strength: str = "1"
    output: Path | None = None
    workdir: Path | None = None
    checkpoint: str = DEFAULT_CHECKPOINT
    parsing_weights: str = "styleganex-faceparsing"
    align_reference: bool = True
    smooth: bool = True
    paste_mask: str = "hull"
    batch: int = 8
    device: str = "auto"
    crf: int = 18
    preset: str = "medium"
    keep_frames: bool = False
    """Also keep the renders as PNGs (<tag>_render/frames/) for inspection; the video is the
    same."""
    segment_frames: int = SEGMENT_FRAMES
    """Frames per resumable output segment (`ganvid.pipeline.segments`)."""
    fresh: bool = False
    face: dict = field(default_factory=dict)


@dataclass
class StylemapVideoSummary:
    workdir: Path
    frames: int
    records: list[StageRecord]
    output: Path


class AlignedSources(ComposeSources):
    """The renders are aligned faces: the paste-back warps them through each frame's aligned
    quad (ComposeSources reads the unaligned window of `ganvid invert`'s geometry)."""

    def records(self) -> list:
        from ganvid.face.geometry import load_geometry

        geometry = load_geometry(Layout(self.workdir).smgan_geometry_json)
        return [
            dataclasses.replace(r, unaligned_quad=exact_parallelogram(r.aligned_quad))
            for r in geometry.records
        ]


def exact_parallelogram(quad: np.ndarray) -> np.ndarray:
    """The quad with its third corner rebuilt from the other three: geometry.json stores quads
    rounded to 1e-4 px, which breaks the exact parallelogram the paste-back's affine needs
    (ffhq quads are rotated, so unlike axis-aligned windows they do not survive rounding)."""
    quad = np.array(quad, dtype=np.float64)
    quad[2] = quad[1] + quad[3] - quad[0]
    return quad


# ----------------------------------------------------------------------------- stages


@dataclass(frozen=True)
class GeometryOptions:
    face: dict
    """`face_options(...)`: detector, cnn, face_index, rule."""
    size: int
    """The model's resolution: the side of the aligned faces."""


@dataclass(frozen=True)
class SmoothOptions:
    smooth: bool
    """False: the encoder's stylemaps as they are."""


@dataclass(frozen=True)
class MasksOptions:
    part: str
    """The face part found in every aligned face (`ganvid.edit.stylemap.PARTS`)."""


@dataclass(frozen=True)
class RenderStageOptions:
    """The render key: the tag's stage name (hashed since the first runs), the part or painted
    mask (a file, hashed as such), the keyframed strength and the reference's alignment."""

    stage: str
    part: str | None
    strength: Strength
    align_reference: bool
    compose: ComposeConfig
    """The paste-back and the segments' encoder settings."""
    segment_frames: int
    keep_frames: bool = field(default=False, metadata=OMIT_DEFAULT)


def stage_geometry(workdir: Workdir, inputs: dict, options: GeometryOptions) -> dict:
    """Tracked landmarks and the exact quads of every frame's FFHQ-aligned face at the model's
    size (cut from the clip on demand)."""
    clip = Path(inputs["clip"])
    count = frame_count(workdir)
    layout = workdir.layout
    records, _ = track_geometry(clip, count, layout, layout.smgan_geometry_json, options.face)
    atomic_save_npz(layout.smgan_geometry_npz, aligned_arrays(records, options.size))
    shots = np.array([r.shot for r in records], dtype=np.int64)
    return {"frames": count, "shots": int(len(np.unique(shots)))}


def _shot_ids(workdir: Path) -> np.ndarray:
    from ganvid.face.geometry import load_geometry

    records = load_geometry(Layout(workdir).smgan_geometry_json).records
    return np.array([r.shot for r in records], dtype=np.int64)


def stage_encode(workdir: Workdir, inputs: dict, options: dict) -> dict:
    """Encoder stylemap of every aligned face (cut from the clip) ->
    smgan_encode/stylemaps.npy [N, C, S, S].

    inputs: networks (StylemapNetworks), batch, clip.
    """
    from ganvid.pipeline.stylemapgan import encode

    networks: StylemapNetworks = inputs["networks"]
    layout = workdir.layout
    count = frame_count(workdir)
    clip = Path(inputs["clip"])
    cutter = CropCutter.load(layout.smgan_geometry_npz, clip, ClipFrames.for_workdir(layout, clip))
    per_frame = FrameDir(layout.smgan_encode_frames, ".npy")
    todo = per_frame.missing(count)
    with stage_bar("stylemaps (encoder)", count, count - len(todo)) as update:
        for chunk, images in aligned_batches(cutter, todo, inputs["batch"]):
            stylemaps = encode(networks.model, images).float().cpu().numpy()
            for index, stylemap in zip(chunk, stylemaps, strict=True):
                per_frame.write(index, stylemap)
            update(len(chunk))
    gather_arrays(per_frame, count, layout.smgan_stylemaps)
    return {"frames": count}


def stage_smooth(workdir: Workdir, inputs: dict, options: SmoothOptions) -> dict:
    """Stylemaps smoothed over time within shots (N in, N out) -> smgan_smooth/stylemaps.npy."""
    from ganvid.pipeline.smoothing import smooth_ws_file

    smooth_ws_file(
        workdir.layout.smgan_stylemaps,
        workdir.layout.smgan_smooth_stylemaps,
        _shot_ids(workdir.root),
        smooth=options.smooth,
    )
    return {"smoothed": options.smooth}


def stage_masks(workdir: Workdir, inputs: dict, options: MasksOptions) -> dict:
    """The part in every aligned face (face parsing) -> smgan_masks/<part>/*.png (0 / 255).

    inputs: networks (StylemapNetworks), batch, clip.
    """
    from ganvid.pipeline.stylemapgan import part_masks

    networks: StylemapNetworks = inputs["networks"]
    count = frame_count(workdir)
    layout, clip = workdir.layout, Path(inputs["clip"])
    cutter = CropCutter.load(layout.smgan_geometry_npz, clip, ClipFrames.for_workdir(layout, clip))
    masks = FrameDir(workdir.layout.smgan_masks(options.part))
    todo = masks.missing(count)
    with stage_bar(f"{options.part} masks", count, count - len(todo)) as update:
        for chunk, faces in aligned_batches(cutter, todo, inputs["batch"]):
            found = part_masks(networks.parser, np.stack(faces), options.part)
            for index, mask in zip(chunk, found[:, 0].numpy(), strict=True):
                masks.write(index, np.repeat((mask * 255).astype(np.uint8)[..., None], 3, axis=2))
            update(len(chunk))
    return {"frames": count, "part": options.part}


def stage_render(workdir: Workdir, inputs: dict, options: RenderStageOptions) -> dict:
    """The edited aligned face of every frame, pasted back into its frame and encoded into
    <tag>_render/segments/video/*.mp4 (`ganvid.pipeline.segments`); --keep-frames also keeps
    <tag>_render/frames/*.png.

    inputs: renderer (stylemaps -> render(frame indices)), batch, clip.
    """
    from ganvid.pipeline.segments import encode_segments

    stylemaps = np.load(workdir.layout.smgan_smooth_stylemaps, mmap_mode="r")
    render = inputs["renderer"](stylemaps)

    def render_range(indices: range):
        for chunk in batches(list(indices), inputs["batch"]):
            yield from zip(chunk, render(chunk), strict=True)

    info = encode_segments(
        workdir.stage_dir(options.stage),
        AlignedSources(Path(inputs["clip"]), workdir.root, None),
        render_range,
        {"video": "frame"},
        options.compose,
        options.segment_frames,
        options.keep_frames,
    )
    return {"frames": frame_count(workdir), **info}


class StylemapNetworks:
    """The StyleMapGAN model and the face parser of a job, loaded on first use."""

    def __init__(self, checkpoint: Path, parsing_file: Path | None, device) -> None:
        self.checkpoint, self.parsing_file, self.device = checkpoint, parsing_file, device

    @cached_property
    def model(self):
        from ganvid.pipeline.stylemapgan import load_model

        return load_model(self.checkpoint, self.device)

    @cached_property
    def parser(self):
        from ganvid.nn.face_parsing import FaceParser

        return FaceParser.load(self.parsing_file, device=self.device)


# ----------------------------------------------------------------------------- the job


@dataclass(frozen=True)
class LocalEdit:
    """What the render stage draws with besides the stylemaps: the networks, the reference, the
    mask (a part found per frame in `masks`, or a painted one) and the strength per frame.
    Not hashed: the render stage's options and files say the same."""

    networks: StylemapNetworks
    options: StylemapVideoOptions
    strengths: np.ndarray
    """Strength per frame [N]."""
    masks: Path | None
    """smgan_masks/<part> (None with a painted mask)."""

    def reference(self):
        """(reference stylemap [1, C, S, S], its aligned face) on the device."""
        from ganvid.pipeline.stylemapgan import encode, find_face

        o, model = self.options, self.networks.model
        image = o.reference_image
        if image is None:
            from ganvid.io.image import read_rgb

            image = read_rgb(o.reference)
        face = find_face(image, model.config.size, o.align_reference, o.reference)
        return encode(model, [face.aligned]), face.aligned

    def renderer(self, stylemaps: np.ndarray) -> Callable[[list[int]], np.ndarray]:
        """render(frame indices) -> uint8 [B, size, size, 3]: each frame's smoothed stylemap
        blended with the reference's under the frame's union mask and strength."""
        import torch

        from ganvid.pipeline.render import to_tensor
        from ganvid.pipeline.stylemapgan import local_edit, painted_mask, part_masks

        o, device = self.options, self.networks.device
        model = self.networks.model
        size = model.config.size
        reference, reference_face = self.reference()
        strengths = self.strengths
        if o.mask is not None:
            painted = painted_mask(o.mask, size)
            fixed = ops.union_mask(painted, painted)
        else:
            reference_part = part_masks(self.networks.parser, reference_face[None], o.part)
            masks = FrameDir(self.masks)

        def render(indices: list[int]) -> np.ndarray:
            source = to_tensor(stylemaps[indices], device)
            if o.mask is not None:
                union = fixed
            else:
                frame_part = torch.stack(
                    [torch.from_numpy(masks.read(i)[..., 0] > 127).float()[None] for i in indices]
                )
                union = ops.union_mask(frame_part, reference_part)
            weight = torch.tensor(strengths[indices], dtype=torch.float32, device=device)
            return local_edit(model, source, reference, union, weight)

        return render


class StylemapVideoJob(Job):
    """Check the options (every input before any work), then run the stages."""

    def __init__(self, options: StylemapVideoOptions) -> None:
        from ganvid.weights import resolve

        super().__init__(options.device, options.batch, options.fresh)
        self.options = options
        self.clip = input_clip(options.clip)
        if not Path(options.reference).is_file():
            raise InputError(f"{options.reference}: no such image")
        if (options.part is None) == (options.mask is None):
            raise InputError("give exactly one of --part NAME and --mask PAINTED.png")
        if options.part is not None and options.part not in ops.PARTS:
            raise InputError(f"unknown face part {options.part!r}: use one of {PART_HELP}")
        if options.mask is not None and not Path(options.mask).is_file():
            raise InputError(f"{options.mask}: no such mask image")
        self.strength = Strength.parse(str(options.strength))
        paste_config(options.paste_mask)  # InputError for an unknown choice, before any work
        self.checkpoint = resolve(options.checkpoint)
        self.parsing_file = resolve(options.parsing_weights) if options.part else None
        self.workdir_path = absolute(options.workdir or default_workdir(self.clip))
        label = options.part or "mask"
        self.tag = f"stylemap_{label}_{self.strength.label()}"
        folder = output_folder(self.clip, self.workdir_path)
        self.output = absolute(options.output or folder / f"{self.clip.stem}_stylemap_{label}.mp4")
        if self.output.resolve() in (self.clip.resolve(), Path(options.reference).resolve()):
            raise InputError(f"{self.output} is an input: choose another --output")
        self.networks = StylemapNetworks(self.checkpoint, self.parsing_file, self.device)

    def strengths(self, layout: Layout) -> np.ndarray:
        """Strength per frame [N] from the frames' times (s from the first frame)."""
        from ganvid.pipeline.edit import frame_times

        video = read_json(layout.decode_json)
        return self.strength.at(frame_times(video["pts"], tuple(video["time_base"])))

    def run(self) -> StylemapVideoSummary:
        o = self.options
        clip_file = {"clip": self.clip}
        with self.open(clip=self.clip, networks=self.networks, batch=o.batch) as wd:
            layout = wd.layout
            last = run_decode(self, self.clip) - 1
            size = self.networks.model.config.size
            self.stage(
                names.SMGAN_GEOMETRY,
                stage_geometry,
                options=GeometryOptions(face_options(o.face), size),
                files=clip_file,
                upstream=[names.DECODE],
                outputs=[layout.smgan_geometry_json, layout.smgan_geometry_npz],
                version="2",  # 2: aligned faces cut on demand from the stored quads
            )
            self.stage(
                names.SMGAN_ENCODE,
                stage_encode,
                options={},
                files={"checkpoint": self.checkpoint},
                upstream=[names.SMGAN_GEOMETRY],
                outputs=[layout.smgan_stylemaps],
            )
            self.stage(
                names.SMGAN_SMOOTH,
                stage_smooth,
                options=SmoothOptions(o.smooth),
                upstream=[names.SMGAN_ENCODE, names.SMGAN_GEOMETRY],
                outputs=[layout.smgan_smooth_stylemaps],
            )
            edit_files = {"checkpoint": self.checkpoint, "reference": o.reference}
            upstream = [names.SMGAN_SMOOTH, names.DECODE]
            masks = None
            if o.part is not None:
                masks = layout.smgan_masks(o.part)
                self.stage(
                    names.SMGAN_MASKS,
                    stage_masks,
                    options=MasksOptions(o.part),
                    files={"parsing": self.parsing_file},
                    upstream=[names.SMGAN_GEOMETRY],
                    outputs=[FrameDir(masks).file(last)],
                )
                upstream.append(names.SMGAN_MASKS)
                edit_files["parsing"] = self.parsing_file
            else:
                edit_files["mask"] = o.mask
            task: Tagged = layout.tagged(self.tag)
            edit = LocalEdit(self.networks, o, self.strengths(layout), masks)
            compose = ComposeConfig(paste=paste_config(o.paste_mask), crf=o.crf, preset=o.preset)
            segments = last_segments(last + 1, o.segment_frames, ["video"])
            kept = [FrameDir(task.render_frames).file(last)] if o.keep_frames else []
            self.stage(
                task.render,
                stage_render,
                inputs={"renderer": edit.renderer},
                options=RenderStageOptions(
                    stage=task.render,
                    part=o.part,
                    strength=self.strength,
                    align_reference=o.align_reference,
                    compose=compose,
                    segment_frames=o.segment_frames,
                    keep_frames=o.keep_frames,
                ),
                files={**edit_files, **clip_file},
                upstream=[*upstream, names.SMGAN_GEOMETRY],
                outputs=[layout.stage(task.render) / p for p in segments] + kept,
            )
            output = str(self.output.resolve())
            self.stage(
                task.encode,
                stage_join,
                options=EncodeStageOptions(
                    render=task.render,
                    outputs={"video": (output, "frame")},
                    compose=compose,
                    segment_frames=o.segment_frames,
                ),
                files=clip_file,
                upstream=[task.render, names.DECODE],
                outputs=[self.output.resolve()],
            )
            count = frame_count(wd)
        return StylemapVideoSummary(self.workdir_path, count, self.records, self.output)


def run_stylemap_video(options: StylemapVideoOptions) -> StylemapVideoSummary:
    """Local editing of a face video with StyleMapGAN (see the module docstring)."""
    return StylemapVideoJob(options).run()
