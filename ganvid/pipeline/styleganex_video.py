"""StyleGANEX on video: `ganvid toonify` and `ganvid edit --backend styleganex`.

StyleGANEX renders a whole unaligned crop: its encoder reads w+ from the FFHQ-aligned face and
the first-layer feature f (1/8 of the crop) from the crop itself, and the decoder draws a picture
4x the crop. The official scripts cut one crop window from frame 0 and read w+ from frame 0's
face only; here the window follows the tracked face, and w+ is taken per shot.

Stages (a work dir, default `<clip>.ganvid/`, shared with `ganvid invert`: the decode stage is the
same one, so it is reused; names and paths are `ganvid.pipeline.layout.Layout`'s, each stage gets
its frozen options, hashed, and the loaded network, never the job):

    decode         decode/video.json             frame count, pts, size
    sgx_geometry   sgx_geometry/geometry.json    tracked, smoothed, gap-filled landmarks, shots
                   sgx_geometry/track.npz        the same as arrays (landmarks, shot_ids, detected)
                                                 and the exact FFHQ quads: the aligned faces at 256
                                                 (the w+ input) are cut from the clip on demand
                                                 (`ganvid.pipeline.crops`), not stored
                   detections/<clip>-<detector>/ raw detections per frame, shared by the jobs
    sgx_windows    sgx_windows/windows.json      crop window per frame, encoder input size
    <tag>_wplus    <tag>_wplus/frames/*.npy      encoder w+ of the sampled frames [18,512]
                   <tag>_wplus/wplus.npy         the w+ rendered [N,18,512] (per-shot mean or
                                                 smoothed; "smooth" keeps raw.npy beside it)
    <tag>_render   <tag>_render/segments/video/*.mp4  decoder output per frame (4x the crop,
                                                 from crops cut on demand) pasted back into its
                                                 frame, or the crop itself, encoded in resumable
                                                 segments (`ganvid.pipeline.segments`);
                                                 --keep-frames: also <tag>_render/frames/*.png
    <tag>_encode   the output video              joined from the segments by stream copy

`tag` names the task (`toon_cartoon`, `edit_age`, ...), so several styles and edits share the
model-independent stages of one work dir without clearing each other.

Crop windows: `ganvid.face.windows` (the official rule, per shot).

w+ per shot: `ganvid.pipeline.smoothing` ("mean", the default: one w+ per shot, the official
fixed w+ made robust; "smooth": per frame through the temporal filter).

Output. Default: each render is pasted into its frame at the source resolution by
`ganvid.pipeline.paste_back.PasteBack.window` (resized into its window, feathered edges except
where the window touches the frame's border). Toonify pastes the whole window ("full": the
restyle is the point, so no colour match; `--mask hull|parsing` keeps the rest of the window
as it was); edits paste face and hair ("hull", or "parsing" with `--mask parsing`), colour
matched in the seam and smoothed over time within a shot, like `ganvid edit`. Pixels outside
the mask are the input's, bit for bit; frames of shots where the face was never detected pass
through. `crop_only` writes the renders themselves (4 W_in x 4 H_in). Frame count, timestamps
and sound are kept. As in `ganvid invert`, the paste-back's temporal mask starts afresh with
every segment (and at every cut).

Editing (`EditSpec`): the decoder adds strength(t) * v to every w+ row and feeds the same vector
to the edit models' fusion attention; v is the checkpoint's `editing_w[0]` (styleganex-edit-age,
-hair) or a given direction. +strength applies v as the official `video_editing.py` does with
`--scale_factor strength`; the official web demo negates it, ganvid does not.

Why ~660 lines: one job module (options, five stages with their frozen options, the lazy
networks, the job, the two entry points); crop windows, paste-back, w+ per shot, segments and
crops live in their own modules.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ganvid.edit.keyframes import Strength
from ganvid.errors import InputError
from ganvid.face.windows import (
    CropRule,
    CropWindows,
    crop_windows,
    cut_window,
    shot_segments,
)
from ganvid.files import absolute
from ganvid.pipeline import layout as names
from ganvid.pipeline.align import track_geometry
from ganvid.pipeline.compose import ComposeConfig, ComposeSources
from ganvid.pipeline.compose import Layout as VideoLayout
from ganvid.pipeline.crops import ClipFrames, CropCutter, aligned_arrays, aligned_batches
from ganvid.pipeline.edit import EncodeStageOptions, stage_encode
from ganvid.pipeline.invert import (
    ALIGNED_SIZE,
    batches,
    frame_count,
    run_decode,
)
from ganvid.pipeline.job import Job, input_clip
from ganvid.pipeline.layout import Layout, Tagged
from ganvid.pipeline.paste_back import (
    RESTYLE_MASK_CHOICES,
    PasteBack,
    PasteConfig,
    paste_config,
    require_mask,
)
from ganvid.pipeline.segments import SEGMENT_FRAMES, last_segments
from ganvid.pipeline.smoothing import WplusMode, shot_wplus, wplus_samples
from ganvid.pipeline.workdir import (
    OMIT_DEFAULT,
    FrameDir,
    StageRecord,
    Workdir,
    atomic_save_npz,
    atomic_write_json,
    default_workdir,
    output_folder,
    read_json,
)
from ganvid.ui import stage_bar

STYLES = ("cartoon", "pixar", "arcane")
WINDOW_FEATHER = 0.06
"""Soft edge of a pasted window, as a fraction of its shorter side."""

EDIT_SIGN_HELP = (
    "StyleGANEX edits add strength x v to every w+ row (and feed it to the edit model's "
    "attention); v is the checkpoint's stored editing_w (styleganex-edit-age, -hair) or the "
    "given direction. +strength applies v as the official video_editing.py does with "
    "--scale_factor strength (the official web demo uses the opposite sign; ganvid does not)."
)


def toonify_weights_name(style: str) -> str:
    """'cartoon' -> 'styleganex-toonify-cartoon' (InputError for unknown styles)."""
    if style not in STYLES:
        raise InputError(f"unknown toonify style {style!r}: use {', '.join(STYLES)}")
    return f"styleganex-toonify-{style}"


# ----------------------------------------------------------------------------- options


@dataclass(frozen=True)
class EditSpec:
    """An edit: editing_w(t) = strength(t) * v, v = the checkpoint's editing_w[0] (direction
    None) or `direction` ([w_dim], [1, w_dim] or [n_styles, w_dim]; an array or a .npy/.pt file).
    Times t are seconds from the first frame."""

    strength: Strength = Strength.constant(1.0)
    direction: np.ndarray | Path | None = None

    def describe(self) -> dict[str, Any]:
        """JSON-able identity of the edit (hashed into the render stage's key)."""
        direction: Any = None
        if isinstance(self.direction, Path):
            direction = {"file": str(self.direction)}
        elif self.direction is not None:
            array = np.ascontiguousarray(self.direction, dtype=np.float32)
            digest = hashlib.sha256(array.tobytes() + str(array.shape).encode()).hexdigest()
            direction = {"sha256": digest}
        return {"strength": asdict(self.strength), "direction": direction}


@dataclass(frozen=True)
class StyleganexVideoOptions:
    """Everything a StyleGANEX video job can be told (paths are resolved by the job).

    checkpoint: a weights-manager name or a file. tag: names the render/encode stages and the
    output, default `<clip>_<tag>.mp4` (`_crop` added with crop_only). model_tag: names the w+
    stage (default: tag), so edits of one checkpoint at several strengths share their w+.
    """

    clip: Path
    checkpoint: str
    tag: str
    model_tag: str | None = None
    output: Path | None = None
    workdir: Path | None = None
    device: str = "auto"
    batch: int = 4
    crop_only: bool = False
    paste: PasteConfig = paste_config("full", restyle=True, edge_feather_px=WINDOW_FEATHER)
    """The paste-back (`ganvid.pipeline.paste_back`); the entry points pick each task's."""
    edit: EditSpec | None = None
    wplus: WplusMode = "mean"
    crop: CropRule = CropRule()
    crf: int = 18
    preset: str = "medium"
    exact_size: bool = False
    """Odd frame sizes: False pads to even yuv420p (plays everywhere), True keeps them (4:4:4)."""
    fresh: bool = False
    face: dict = field(default_factory=dict)
    """Options for `ganvid.face` (detector, cnn, face_index, rule), as for `ganvid invert`."""
    keep_frames: bool = False
    """Also keep the renders as PNGs (<tag>_render/frames/) for inspection; the video is the
    same."""
    segment_frames: int = SEGMENT_FRAMES
    """Frames per resumable output segment (`ganvid.pipeline.segments`)."""


@dataclass
class StyleganexSummary:
    """What a run did: stage records, the output file and the crop geometry."""

    workdir: Path
    frames: int
    records: list[StageRecord]
    output: Path
    input_size: tuple[int, int]
    """(height, width) of the encoder input."""
    render_size: tuple[int, int]
    """(height, width) of each render (4x the input for the 1024 px decoders)."""


def default_output(clip: Path, tag: str, crop_only: bool, folder: Path | None = None) -> Path:
    """`<clip>_<tag>[_crop].mp4` in `folder` (default: beside the clip)."""
    suffix = "_crop" if crop_only else ""
    folder = clip.parent if folder is None else folder
    return folder / f"{clip.stem}_{tag}{suffix}.mp4"


# ----------------------------------------------------------------------------- stages


@dataclass(frozen=True)
class GeometryOptions:
    face: dict
    """`face_options(...)`: detector, cnn, face_index, rule."""


@dataclass(frozen=True)
class WindowsOptions:
    crop: CropRule
    """The window rule (eye distance, window size...)."""


@dataclass(frozen=True)
class WplusOptions:
    stage: str
    """`<model tag>_wplus`, hashed since the first runs (earlier work dirs stay cached)."""
    mode: WplusMode


@dataclass(frozen=True)
class RenderStageOptions:
    stage: str
    wplus: str
    """The w+ rendered, relative to the work dir."""
    edit: dict | None
    """`EditSpec.describe()`, or None."""
    layout: VideoLayout
    """"frame" (pasted back) or "render" (the crops, `crop_only`)."""
    compose: ComposeConfig
    """The paste-back and the segments' encoder settings."""
    segment_frames: int
    keep_frames: bool = field(default=False, metadata=OMIT_DEFAULT)


def stage_geometry(workdir: Workdir, inputs: dict, options: GeometryOptions) -> dict:
    """Tracked, smoothed landmarks and the exact quads of the FFHQ-aligned faces at 256 (the w+
    input, cut from the clip on demand)."""
    clip = Path(inputs["clip"])
    count = frame_count(workdir)
    layout = workdir.layout
    records, detections = track_geometry(
        clip, count, layout, layout.sgx_geometry_json, options.face
    )
    track = {
        **aligned_arrays(records, ALIGNED_SIZE),
        "landmarks": np.stack([r.landmarks for r in records]),
        "shot_ids": np.array([r.shot for r in records], dtype=np.int64),
        "detected": np.array([r.detected for r in records], dtype=bool),
        "present": np.array([not r.absent for r in records], dtype=bool),
        "frame_size": np.array([detections.width, detections.height], dtype=np.int64),
    }
    atomic_save_npz(layout.sgx_track, track)
    return {"frames": count, "shots": len(shot_segments(np.array([r.shot for r in records])))}


def load_track(workdir: Path) -> dict[str, np.ndarray]:
    """sgx_geometry/track.npz: landmarks [N,68,2], shot_ids [N], detected [N], present [N],
    frame_size, and the aligned faces' quads and sizes (`crops.aligned_arrays`)."""
    with np.load(Layout(workdir).sgx_track) as data:
        return {key: data[key] for key in data.files}


def load_windows(workdir: Path) -> CropWindows:
    return CropWindows.from_json(read_json(Layout(workdir).sgx_windows))


def stage_windows(workdir: Workdir, inputs: dict, options: WindowsOptions) -> dict:
    """One crop window per frame -> sgx_windows/windows.json."""
    track = load_track(workdir.root)
    width, height = (int(v) for v in track["frame_size"])
    windows = crop_windows(
        track["landmarks"],
        track["shot_ids"],
        track["detected"],
        (width, height),
        options.crop,
        track.get("present"),
    )
    atomic_write_json(workdir.layout.sgx_windows, windows.to_json())
    return {"input_size": list(windows.input_size), "frames": len(windows.boxes)}


def stage_wplus(workdir: Workdir, inputs: dict, options: WplusOptions) -> dict:
    """Encoder w+ of the sampled aligned faces (cut from the clip) -> frames/*.npy; per-shot
    w+ -> wplus.npy.

    inputs: networks (StyleganexNetworks), paths (the stage's Tagged), batch, clip.
    """
    import torch

    from ganvid.pipeline.render import to_float

    networks: StyleganexNetworks = inputs["networks"]
    paths: Tagged = inputs["paths"]
    track = load_track(workdir.root)
    samples = wplus_samples(track["shot_ids"], track["detected"], options.mode)
    layout, clip = workdir.layout, Path(inputs["clip"])
    cutter = CropCutter.load(layout.sgx_track, clip, ClipFrames.for_workdir(layout, clip))
    per_frame = FrameDir(paths.wplus_frames, ".npy")
    todo = [i for i in samples if not per_frame.has(i)]
    with stage_bar("w+ (encoder)", len(samples), len(samples) - len(todo)) as update:
        for chunk, faces in aligned_batches(cutter, todo, inputs["batch"]):
            images = to_float(faces, networks.device)
            with torch.no_grad():
                wplus = networks.model.encode_wplus(images).float().cpu().numpy()
            for index, row in zip(chunk, wplus, strict=True):
                per_frame.write(index, row)
            update(len(chunk))
    shot_wplus(
        per_frame, paths.wplus_npy, track["shot_ids"], samples, options.mode, paths.wplus_raw_npy
    )
    return {"frames": frame_count(workdir), "encoded": len(samples), "mode": options.mode}


def stage_render(workdir: Workdir, inputs: dict, options: RenderStageOptions) -> dict:
    """Decode every frame's crop (4x the crop, in batches), paste it back into its frame (or
    keep it, layout "render") and encode it into <tag>_render/segments/video/*.mp4
    (`ganvid.pipeline.segments`); --keep-frames also keeps <tag>_render/frames/*.png.

    inputs: networks, strengths (edit strength per frame, or None), clip, batch.
    """
    from ganvid.pipeline.segments import encode_segments

    networks: StyleganexNetworks = inputs["networks"]
    clip = Path(inputs["clip"])
    windows = load_windows(workdir.root)
    wplus = np.load(workdir.root / options.wplus, mmap_mode="r")
    render = networks.renderer(wplus, inputs["strengths"])
    frames = ClipFrames.for_workdir(workdir.layout, clip)  # forward, segment after segment
    boxes = windows.boxes

    def render_range(indices: range):
        for chunk in batches(list(indices), inputs["batch"]):
            crops = [
                (i, cut_window(frames.get(i).image, boxes[i], windows.input_size)) for i in chunk
            ]
            yield from render(crops)

    info = encode_segments(
        workdir.stage_dir(options.stage),
        WindowSources(clip, workdir.root, None),
        render_range,
        {"video": options.layout},
        options.compose,
        options.segment_frames,
        options.keep_frames,
    )
    return {"frames": frame_count(workdir), "input_size": list(windows.input_size), **info}


class WindowSources(ComposeSources):
    """The renders are crop windows: the paste-back resizes each into its window
    (`PasteBack.window`; ComposeSources pastes through `ganvid invert`'s unaligned quads)."""

    def paster(self, config: PasteConfig) -> Callable[[int, np.ndarray, np.ndarray], np.ndarray]:
        windows = load_windows(self.workdir)
        track = load_track(self.workdir)
        paste = PasteBack(config)

        def paste_window(index: int, frame: np.ndarray, render: np.ndarray) -> np.ndarray:
            # frames of shots without a face (no landmarks) pass through
            face = track["landmarks"][index] if windows.active[index] else None
            box, shot = windows.boxes[index], track["shot_ids"][index]
            return paste.window(frame, render, box, face, shot)

        return paste_window


# ----------------------------------------------------------------------------- the job


class StyleganexNetworks:
    """The StyleGANEX network of a job and its edit, loaded on first use (a fully cached run
    loads nothing): what the w+ and render stages need."""

    def __init__(self, checkpoint: Path, device, edit: EditSpec | None) -> None:
        self.checkpoint, self.device, self.edit = checkpoint, device, edit

    @cached_property
    def model(self):
        """The StyleGANEX network."""
        from ganvid.nn.styleganex_checkpoints import load_styleganex

        model = load_styleganex(self.checkpoint, device=self.device)
        if self.edit is not None and self.edit.direction is None:
            model.edit_vector(1.0)  # InputError when the checkpoint has no editing_w
        return model

    def edit_vector(self):
        """v [n_styles, w_dim] on the device, or None (no edit)."""
        import torch

        edit = self.edit
        if edit is None:
            return None
        model = self.model
        if edit.direction is None:
            return model.edit_vector(1.0)[0]
        from ganvid.edit.directions import as_direction, load_direction_file

        n_styles, w_dim = model.config.encoder.n_styles, model.config.encoder.style_dim
        if isinstance(edit.direction, Path):
            vector = load_direction_file(edit.direction, n_styles, w_dim)
        else:
            vector = as_direction(np.asarray(edit.direction), n_styles, w_dim, "--direction")
        return torch.tensor(vector, dtype=torch.float32, device=self.device)

    def renderer(self, wplus: np.ndarray, strengths: np.ndarray | None) -> Callable[[list], list]:
        """render([(frame index, crop uint8 [H_in,W_in,3]), ...]) -> [(frame index, uint8
        [4 H_in, 4 W_in, 3]), ...] with w+ rows `wplus[index]` and the edit, if any, at
        `strengths[index]`."""
        import torch

        from ganvid.pipeline.render import to_float, to_tensor, to_uint8

        model, device = self.model, self.device
        vector = self.edit_vector()

        def render(batch: list[tuple[int, np.ndarray]]) -> list[tuple[int, np.ndarray]]:
            indices = [index for index, _ in batch]
            crops = to_float([crop for _, crop in batch], device)
            rows = to_tensor(wplus[indices], device)
            editing_w = None
            if vector is not None:
                scale = to_tensor(strengths[indices], device)
                editing_w = scale[:, None, None] * vector[None]
            with torch.no_grad():
                features = model.encode_features(crops)
                images = model.decode(rows, features, editing_w, noise_mode="none")
            return list(zip(indices, to_uint8(images.clamp(-1.0, 1.0)), strict=True))

        return render


class StyleganexVideoJob(Job):
    """Resolve options (weights first: a missing file fails before any work), then run the
    stages. `run()` returns a StyleganexSummary."""

    def __init__(self, options: StyleganexVideoOptions) -> None:
        from ganvid.weights import resolve

        super().__init__(options.device, options.batch, options.fresh)
        self.options = options
        self.clip = input_clip(options.clip)
        if options.wplus not in ("mean", "smooth"):
            raise InputError(f"unknown w+ mode {options.wplus!r}: use mean or smooth")
        if options.crop.eye_px <= 0 or options.crop.window_eyes <= 0:
            raise InputError("the eye distance and the window size must be positive")
        if not options.crop_only:
            require_mask(options.paste.mask, RESTYLE_MASK_CHOICES)
        self.checkpoint = resolve(options.checkpoint)
        self.workdir_path = absolute(options.workdir or default_workdir(self.clip))
        folder = output_folder(self.clip, self.workdir_path)
        self.output = absolute(
            options.output or default_output(self.clip, options.tag, options.crop_only, folder)
        )
        self.networks = StyleganexNetworks(self.checkpoint, self.device, options.edit)

    @property
    def model(self):
        """The StyleGANEX network, loaded on first use (a fully cached run loads nothing)."""
        return self.networks.model

    def edit_vector(self):
        """v [n_styles, w_dim] on the device, or None (no edit)."""
        return self.networks.edit_vector()

    def strengths(self, workdir: Path) -> np.ndarray | None:
        """Edit strength per frame [N] from the frames' times (s from the first frame)."""
        if self.options.edit is None:
            return None
        video = read_json(Layout(workdir).decode_json)
        numerator, denominator = video["time_base"]
        pts = np.asarray(video["pts"], dtype=np.float64)
        return self.options.edit.strength.at((pts - pts[0]) * numerator / denominator)

    def run(self) -> StyleganexSummary:
        o = self.options
        # the clip's path is not hashed, its content is (files=): moving the clip costs nothing
        clip_file = {"clip": self.clip}
        with self.open(clip=self.clip, networks=self.networks, batch=o.batch) as wd:
            layout = wd.layout
            last = run_decode(self, self.clip) - 1
            self.stage(
                names.SGX_GEOMETRY,
                stage_geometry,
                options=GeometryOptions(face_options(o.face)),
                files=clip_file,
                upstream=[names.DECODE],
                outputs=[layout.sgx_track],
                version="2",  # 2: aligned faces cut on demand from the stored quads
            )
            self.stage(
                names.SGX_WINDOWS,
                stage_windows,
                options=WindowsOptions(o.crop),
                upstream=[names.SGX_GEOMETRY],
                outputs=[layout.sgx_windows],
            )
            model, task = layout.tagged(o.model_tag or o.tag), layout.tagged(o.tag)
            self.stage(
                model.wplus,
                stage_wplus,
                inputs={"paths": model},
                options=WplusOptions(model.wplus, o.wplus),
                files={"checkpoint": self.checkpoint},
                upstream=[names.SGX_GEOMETRY],
                outputs=[model.wplus_npy],
            )
            edit_files = {}
            if o.edit is not None and isinstance(o.edit.direction, Path):
                edit_files["direction"] = o.edit.direction
            compose = ComposeConfig(
                paste=o.paste, crf=o.crf, preset=o.preset, exact_size=o.exact_size
            )
            video_layout: VideoLayout = "render" if o.crop_only else "frame"
            count = frame_count(wd)
            segments = last_segments(count, o.segment_frames, ["video"])
            kept = [FrameDir(task.render_frames).file(last)] if o.keep_frames else []
            render = self.stage(
                task.render,
                stage_render,
                inputs={"strengths": self.strengths(wd.root)},
                options=RenderStageOptions(
                    stage=task.render,
                    wplus=layout.relative(model.wplus_npy),
                    edit=None if o.edit is None else o.edit.describe(),
                    layout=video_layout,
                    compose=compose,
                    segment_frames=o.segment_frames,
                    keep_frames=o.keep_frames,
                ),
                files={"checkpoint": self.checkpoint, **clip_file, **edit_files},
                upstream=[model.wplus, names.SGX_WINDOWS, names.SGX_GEOMETRY, names.DECODE],
                outputs=[layout.stage(task.render) / p for p in segments] + kept,
            )
            output = str(self.output.resolve())
            self.stage(
                task.encode,
                stage_encode,
                options=EncodeStageOptions(
                    render=task.render,
                    outputs={"video": (output, video_layout)},
                    compose=compose,
                    segment_frames=o.segment_frames,
                ),
                files=clip_file,
                upstream=[task.render, names.DECODE],
                outputs=[self.output.resolve()],
            )
            windows = load_windows(wd.root)
        height, width = render.info["size"]
        return StyleganexSummary(
            self.workdir_path,
            count,
            self.records,
            self.output,
            windows.input_size,
            (int(height), int(width)),
        )


def face_options(face: dict) -> dict:
    """The face options with their defaults filled in (so equal choices hash equally); the
    alignment rule is always FFHQ's, the one the StyleGANEX encoders were trained on."""
    return {
        "detector": face.get("detector", "dlib"),
        "cnn": bool(face.get("cnn", False)),
        "face_index": int(face.get("face_index", 0)),
        "rule": "ffhq",
    }


# ----------------------------------------------------------------------------- entry points


def toonify_video(
    clip: str | Path,
    style: str = "cartoon",
    checkpoint: str | Path | None = None,
    mask: str = "full",
    **options: Any,
) -> StyleganexSummary:
    """Toonify a face video with a StyleGANEX toonify checkpoint.

    style: cartoon | pixar | arcane (names the weights `styleganex-toonify-<style>` and the
    output `<clip>_toon_<style>.mp4`); checkpoint: a file instead of the named weights.
    mask: full (default: the whole window is restyled, its edges feathered), hull or parsing
    (only face and hair); never colour-matched: the style is the point (`paste_config`).
    options: the other fields of `StyleganexVideoOptions` (output, workdir, device, batch,
    crop_only, wplus, crop, crf, preset, fresh, face; `paste` instead of mask).
    """
    name = toonify_weights_name(style)
    paste = paste_config(mask, restyle=True, edge_feather_px=WINDOW_FEATHER)
    job = StyleganexVideoJob(
        StyleganexVideoOptions(
            clip=Path(clip),
            checkpoint=str(checkpoint) if checkpoint is not None else name,
            tag=f"toon_{style}",
            **{"paste": paste, **options},
        )
    )
    return job.run()


def styleganex_edit_video(
    clip: str | Path,
    checkpoint: str | Path = "styleganex-edit-age",
    strength: float | str | Strength = 1.0,
    direction: np.ndarray | str | Path | None = None,
    mask: str = "hull",
    **options: Any,
) -> StyleganexSummary:
    """Edit a face video with StyleGANEX (`ganvid edit --backend styleganex`).

    checkpoint: 'styleganex-edit-age' | 'styleganex-edit-hair' (or a file): video edit models
        whose stored editing_w is the edit; any StyleGANEX checkpoint with `direction`.
    strength: a number, keyframes '0s:0,2s:1.5' (seconds from the first frame) or a Strength.
    direction: None = the checkpoint's editing_w[0]; else an array or .npy/.pt file of shape
        [512], [1, 512] or [18, 512] (e.g. an InterFaceGAN boundary for StyleGAN2-FFHQ).
    Sign: the decoder renders w+ + strength x v (every row; the edit models' attention sees the
    same vector). +strength applies v as the official video_editing.py does with
    `--scale_factor strength`; its web demo uses the opposite sign, ganvid does not.
    mask: hull (default) or parsing, as `ganvid edit --mask`: the face-and-hair region is pasted
    back, its colour matched to the frame's in the seam and the mask smoothed over time.
    options: the other fields of `StyleganexVideoOptions` (`paste` instead of mask); the output
    is `<clip>_edit_<name>_<strength>.mp4`.
    """
    if not isinstance(strength, Strength):
        strength = Strength.parse(str(strength))
    if isinstance(direction, str):
        direction = Path(direction)
    name = (
        Path(str(checkpoint)).stem.removeprefix("styleganex-edit-").removeprefix("styleganex_edit_")
    )
    if direction is not None:
        name = f"{name}_dir"
    job = StyleganexVideoJob(
        StyleganexVideoOptions(
            clip=Path(clip),
            checkpoint=str(checkpoint),
            tag=f"edit_{name}_{strength.label()}",
            model_tag=f"edit_{name}",
            edit=EditSpec(strength, direction),
            **{"paste": paste_config(mask, edge_feather_px=WINDOW_FEATHER), **options},
        )
    )
    return job.run()
