"""StyleMapGAN local editing of a video: `ganvid stylemap video clip.mp4 -r ref.png --part hair`.

Stages (a work dir, default `<clip>.ganvid/`, shared with the other jobs: the decode stage is
`ganvid invert`'s, so it is reused):

    decode             decode/video.json            frame count, pts, size
    smgan_geometry     smgan_geometry/geometry.json tracked, smoothed landmarks, FFHQ quads
                       smgan_geometry/aligned/*.png FFHQ-aligned faces at the model's size (the
                                                    alignment the models were trained on)
    smgan_encode       smgan_encode/stylemaps.npy   encoder stylemap per frame [N, C, S, S]
    smgan_smooth       smgan_smooth/stylemaps.npy   the same, smoothed over time within shots
                                                    (the 5-tap filter of pipeline/smoothing.py)
    smgan_masks        smgan_masks/<part>/*.png     the part in each aligned face (face parsing)
    <tag>_render       <tag>_render/frames/*.png    the edited aligned face per frame
    <tag>_encode       the output video             pasted back into the source frames

The edit of frame t is the official CelebA-HQ local edit: both stylemaps (the frame's and the
reference's) go through the generator's resizer, and every layer code is taken from the
reference on the cells the max rule selects from the union of the part in the frame and in
the reference (or from a painted mask), moved part way by the keyframed strength s(t):
code = lerp(frame code, reference code, s(t)) on those cells, the frame's code elsewhere. s = 0
renders the frame's own (smoothed) stylemap, bit for bit the reconstruction; s = 1 is the full
transplant. The render is pasted back through the aligned quad with `paste_back.PasteBack`
(`compose.compose_videos`), so every frame, its timestamp and the sound are kept; frames whose
face was not detected pass through.
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
from ganvid.pipeline.align import track_geometry, write_aligned_faces
from ganvid.pipeline.compose import ComposeConfig, ComposeSources, compose_videos
from ganvid.pipeline.invert import batches, frame_count
from ganvid.pipeline.job import Job, input_clip
from ganvid.pipeline.paste_back import paste_config
from ganvid.pipeline.styleganex_video import decode_clip, face_options
from ganvid.pipeline.stylemapgan import DEFAULT_CHECKPOINT, PART_HELP
from ganvid.pipeline.workdir import (
    FrameDir,
    StageRecord,
    Workdir,
    default_workdir,
    gather_arrays,
    output_folder,
    read_json,
)
from ganvid.ui import stage_bar

GEOMETRY_STAGE = "smgan_geometry"
ENCODE_STAGE = "smgan_encode"
SMOOTH_STAGE = "smgan_smooth"
MASKS_STAGE = "smgan_masks"


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

        geometry = load_geometry(self.workdir / GEOMETRY_STAGE / "geometry.json")
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


def stage_geometry(workdir: Workdir, inputs: dict, options: dict) -> dict:
    """Tracked landmarks and the FFHQ-aligned face of every frame at the model's size."""
    clip = Path(inputs["clip"])
    count = frame_count(workdir)
    out = workdir.stage_dir(GEOMETRY_STAGE)
    records, _ = track_geometry(clip, count, out, options["face"])
    write_aligned_faces(clip, records, FrameDir(out / "aligned"), options["size"])
    shots = np.array([r.shot for r in records], dtype=np.int64)
    return {"frames": count, "shots": int(len(np.unique(shots)))}


def _shot_ids(workdir: Path) -> np.ndarray:
    from ganvid.face.geometry import load_geometry

    records = load_geometry(Path(workdir) / GEOMETRY_STAGE / "geometry.json").records
    return np.array([r.shot for r in records], dtype=np.int64)


def stage_encode(workdir: Workdir, inputs: dict, options: dict) -> dict:
    """Encoder stylemap of every aligned face -> smgan_encode/stylemaps.npy [N, C, S, S]."""
    from ganvid.pipeline.stylemapgan import encode

    job: StylemapVideoJob = inputs["job"]
    count = frame_count(workdir)
    aligned = FrameDir(workdir.root / GEOMETRY_STAGE / "aligned")
    per_frame = FrameDir(workdir.stage_dir(ENCODE_STAGE) / "frames", ".npy")
    todo = per_frame.missing(count)
    with stage_bar("stylemaps (encoder)", count, count - len(todo)) as update:
        for chunk in batches(todo, job.options.batch):
            stylemaps = encode(job.model, [aligned.read(i) for i in chunk]).float().cpu().numpy()
            for index, stylemap in zip(chunk, stylemaps, strict=True):
                per_frame.write(index, stylemap)
            update(len(chunk))
    gather_arrays(per_frame, count, workdir.root / ENCODE_STAGE / "stylemaps.npy")
    return {"frames": count}


def stage_smooth(workdir: Workdir, inputs: dict, options: dict) -> dict:
    """Stylemaps smoothed over time within shots (N in, N out) -> smgan_smooth/stylemaps.npy."""
    from ganvid.pipeline.smoothing import smooth_ws_file

    smooth_ws_file(
        workdir.root / ENCODE_STAGE / "stylemaps.npy",
        workdir.stage_dir(SMOOTH_STAGE) / "stylemaps.npy",
        _shot_ids(workdir.root),
        smooth=options["smooth"],
    )
    return {"smoothed": options["smooth"]}


def stage_masks(workdir: Workdir, inputs: dict, options: dict) -> dict:
    """The part in every aligned face (face parsing) -> smgan_masks/<part>/*.png (0 / 255)."""
    from ganvid.pipeline.stylemapgan import part_masks

    job: StylemapVideoJob = inputs["job"]
    count = frame_count(workdir)
    aligned = FrameDir(workdir.root / GEOMETRY_STAGE / "aligned")
    masks = FrameDir(workdir.stage_dir(MASKS_STAGE) / options["part"])
    todo = masks.missing(count)
    with stage_bar(f"{options['part']} masks", count, count - len(todo)) as update:
        for chunk in batches(todo, job.options.batch):
            found = part_masks(
                job.parser, np.stack([aligned.read(i) for i in chunk]), options["part"]
            )
            for index, mask in zip(chunk, found[:, 0].numpy(), strict=True):
                masks.write(index, np.repeat((mask * 255).astype(np.uint8)[..., None], 3, axis=2))
            update(len(chunk))
    return {"frames": count, "part": options["part"]}


def stage_render(workdir: Workdir, inputs: dict, options: dict) -> dict:
    """The edited aligned face of every frame -> <tag>_render/frames/*.png."""
    job: StylemapVideoJob = inputs["job"]
    count = frame_count(workdir)
    stylemaps = np.load(workdir.root / SMOOTH_STAGE / "stylemaps.npy", mmap_mode="r")
    renders = FrameDir(workdir.stage_dir(options["stage"]) / "frames")
    todo = renders.missing(count)
    render = job.renderer(stylemaps)
    with stage_bar("render", count, count - len(todo)) as update:
        for chunk in batches(todo, job.options.batch):
            for index, image in zip(chunk, render(chunk), strict=True):
                renders.write(index, image)
            update(len(chunk))
    return {"frames": count}


def stage_encode_video(workdir: Workdir, inputs: dict, options: dict) -> dict:
    """Paste every render into its frame and encode with the source's pts and sound."""
    job: StylemapVideoJob = inputs["job"]
    sources = AlignedSources(job.clip, workdir.root, FrameDir(workdir.root / options["renders"]))
    config = ComposeConfig(
        paste=paste_config(options["paste_mask"]), crf=options["crf"], preset=options["preset"]
    )
    output = Path(options["output"])
    compose_videos(sources, {"video": (output, "frame")}, config)
    return {"output": str(output)}


# ----------------------------------------------------------------------------- the job


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

    @cached_property
    def model(self):
        from ganvid.pipeline.stylemapgan import load_model

        return load_model(self.checkpoint, self.device)

    @cached_property
    def parser(self):
        from ganvid.nn.face_parsing import FaceParser

        return FaceParser.load(self.parsing_file, device=self.device)

    def reference(self):
        """(reference stylemap [1, C, S, S], its aligned face) on the device."""
        from ganvid.pipeline.stylemapgan import encode, find_face

        image = self.options.reference_image
        if image is None:
            from ganvid.io.image import read_rgb

            image = read_rgb(self.options.reference)
        o = self.options
        face = find_face(image, self.model.config.size, o.align_reference, o.reference)
        return encode(self.model, [face.aligned]), face.aligned

    def strengths(self) -> np.ndarray:
        """Strength per frame [N] from the frames' times (s from the first frame)."""
        from ganvid.pipeline.edit import frame_times

        video = read_json(self.workdir_path / "decode" / "video.json")
        return self.strength.at(frame_times(video["pts"], tuple(video["time_base"])))

    def renderer(self, stylemaps: np.ndarray) -> Callable[[list[int]], np.ndarray]:
        """render(frame indices) -> uint8 [B, size, size, 3]: each frame's smoothed stylemap
        blended with the reference's under the frame's union mask and strength."""
        import torch

        from ganvid.pipeline.render import to_tensor
        from ganvid.pipeline.stylemapgan import local_edit, painted_mask, part_masks

        model, size = self.model, self.model.config.size
        reference, reference_face = self.reference()
        strengths = self.strengths()
        if self.options.mask is not None:
            painted = painted_mask(self.options.mask, size)
            fixed = ops.union_mask(painted, painted)
        else:
            reference_part = part_masks(self.parser, reference_face[None], self.options.part)
            masks = FrameDir(self.workdir_path / MASKS_STAGE / self.options.part)

        def render(indices: list[int]) -> np.ndarray:
            source = to_tensor(stylemaps[indices], self.device)
            if self.options.mask is not None:
                union = fixed
            else:
                frame_part = torch.stack(
                    [torch.from_numpy(masks.read(i)[..., 0] > 127).float()[None] for i in indices]
                )
                union = ops.union_mask(frame_part, reference_part)
            weight = torch.tensor(strengths[indices], dtype=torch.float32, device=self.device)
            return local_edit(model, source, reference, union, weight)

        return render

    def run(self) -> StylemapVideoSummary:
        o = self.options
        clip_file = {"clip": self.clip}
        with self.open(job=self, clip=self.clip) as wd:
            self.stage("decode", decode_clip, options={}, files=clip_file, outputs=["video.json"])
            last = f"{frame_count(wd) - 1:06d}"
            size = self.model.config.size
            self.stage(
                GEOMETRY_STAGE,
                stage_geometry,
                options={"face": face_options(o.face), "size": size},
                files=clip_file,
                upstream=["decode"],
                outputs=["geometry.json", f"aligned/{last}.png"],
            )
            self.stage(
                ENCODE_STAGE,
                stage_encode,
                options={},
                files={"checkpoint": self.checkpoint},
                upstream=[GEOMETRY_STAGE],
                outputs=["stylemaps.npy"],
            )
            self.stage(
                SMOOTH_STAGE,
                stage_smooth,
                options={"smooth": o.smooth},
                upstream=[ENCODE_STAGE, GEOMETRY_STAGE],
                outputs=["stylemaps.npy"],
            )
            edit_files = {"checkpoint": self.checkpoint, "reference": o.reference}
            upstream = [SMOOTH_STAGE, "decode"]
            if o.part is not None:
                self.stage(
                    MASKS_STAGE,
                    stage_masks,
                    options={"part": o.part},
                    files={"parsing": self.parsing_file},
                    upstream=[GEOMETRY_STAGE],
                    outputs=[f"{o.part}/{last}.png"],
                )
                upstream.append(MASKS_STAGE)
                edit_files["parsing"] = self.parsing_file
            else:
                edit_files["mask"] = o.mask
            render_stage = f"{self.tag}_render"
            self.stage(
                render_stage,
                stage_render,
                options={
                    "stage": render_stage,
                    "part": o.part,
                    "strength": dataclasses.asdict(self.strength),
                    "align_reference": o.align_reference,
                },
                files=edit_files,
                upstream=upstream,
                outputs=[f"frames/{last}.png"],
            )
            self.stage(
                f"{self.tag}_encode",
                stage_encode_video,
                options={
                    "renders": f"{render_stage}/frames",
                    "output": str(self.output.resolve()),
                    "paste_mask": o.paste_mask,
                    "crf": o.crf,
                    "preset": o.preset,
                },
                files=clip_file,
                upstream=[render_stage, GEOMETRY_STAGE, "decode"],
                outputs=[self.output.resolve()],
            )
            count = frame_count(wd)
        return StylemapVideoSummary(self.workdir_path, count, self.records, self.output)


def run_stylemap_video(options: StylemapVideoOptions) -> StylemapVideoSummary:
    """Local editing of a face video with StyleMapGAN (see the module docstring)."""
    return StylemapVideoJob(options).run()
