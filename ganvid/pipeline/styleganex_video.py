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
                   sgx_geometry/aligned/*.png    FFHQ-aligned faces at 256 (the w+ input)
                   detections/<clip>-<detector>/ raw detections per frame, shared by the jobs
    sgx_windows    sgx_windows/windows.json      crop window per frame, encoder input size
    <tag>_wplus    <tag>_wplus/frames/*.npy      encoder w+ of the sampled frames [18,512]
                   <tag>_wplus/wplus.npy         the w+ rendered [N,18,512] (per-shot mean or
                                                 smoothed; "smooth" keeps raw.npy beside it)
    <tag>_render   <tag>_render/frames/*.jpg     decoder output per frame (4x the crop)
    <tag>_encode   the output video              pasted back into the frames, or the crops

`tag` names the task (`toon_cartoon`, `edit_age`, ...), so several styles and edits share the
model-independent stages of one work dir without clearing each other.

Crop windows: `ganvid.face.windows` (the official rule, per shot).

w+ (`wplus_samples`, `shot_wplus`). "mean" (default): one w+ per shot, the mean over up to 32
of the shot's frames with a detected face, evenly spread (over all of its frames if none has
one). This is the official fixed w+ (only f varies, which the video models were trained for
with their temporal loss), made robust: it does not hang on one frame's expression or blur,
and a cut gets a new w+; the encoder runs 32 times per shot, not once per frame. "smooth": the
per-frame w+ through the 5-tap temporal filter of `ganvid.pipeline.smoothing` (follows slow
changes of the face's appearance, at the price of some texture flicker).

Output. Default: each render is resized into its window and blended into the source frame at
the source resolution with a feathered mask: "full" (toonify: the whole window is restyled;
edges feathered except where the window touches the frame's border) or "hull" (edits: the window
times the face-and-hair mask of `ganvid.pipeline.paste_back.face_mask`). Pixels outside the mask
are the input's, bit for bit; frames of shots where the face was never detected pass through.
`crop_only` writes the renders themselves (4 W_in x 4 H_in). Frame count, timestamps and sound
are kept.

Editing (`EditSpec`): the decoder adds strength(t) * v to every w+ row and feeds the same vector
to the edit models' fusion attention; v is the checkpoint's `editing_w[0]` (styleganex-edit-age,
-hair) or a given direction. +strength applies v as the official `video_editing.py` does with
`--scale_factor strength`; the official web demo negates it, ganvid does not.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

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
from ganvid.pipeline.align import track_geometry, write_aligned_faces
from ganvid.pipeline.invert import (
    ALIGNED_SIZE,
    frame_count,
    run_decode,
)
from ganvid.pipeline.job import Job, input_clip
from ganvid.pipeline.layout import Layout, Tagged
from ganvid.pipeline.workdir import (
    OMIT_DEFAULT,
    FrameDir,
    StageRecord,
    Workdir,
    atomic_path,
    atomic_save_npz,
    atomic_write_json,
    default_workdir,
    gather_arrays,
    output_folder,
    read_json,
)
from ganvid.ui import stage_bar

WplusMode = Literal["mean", "smooth"]
MaskMode = Literal["full", "hull"]
RenderFormat = Literal[".jpg", ".png"]
WRITER_THREADS = 4
"""Threads encoding render files while the network works."""
STYLES = ("cartoon", "pixar", "arcane")

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


# ----------------------------------------------------------------------------- paste-back


@dataclass(frozen=True)
class PasteOptions:
    mask: MaskMode = "full"
    """full: the whole window (toonify); hull: window x face-and-hair mask (edits)."""
    feather: float = 0.06
    """Width of the window's soft edge, as a fraction of its shorter side."""


def _edge_ramp(
    lo: int, hi: int, start: float, length: float, limit: int, ramp: float
) -> np.ndarray:
    """Per pixel lo..hi-1: 0 outside [start, start+length], rising to 1 over `ramp` px inside;
    an edge lying on the frame border (0 or `limit`) is not feathered."""
    centres = np.arange(lo, hi, dtype=np.float64) + 0.5
    before = centres - start if start > 1e-6 else np.full_like(centres, np.inf)
    end = start + length
    after = end - centres if end < limit - 1e-6 else np.full_like(centres, np.inf)
    return np.clip(np.minimum(before, after) / max(ramp, 1e-6), 0.0, 1.0)


def paste_window(
    frame: np.ndarray,
    render: np.ndarray,
    box: np.ndarray,
    options: PasteOptions = PasteOptions(),
    landmarks: np.ndarray | None = None,
) -> np.ndarray:
    """Blend render uint8 [R_h,R_w,3] (the picture of window `box` = (x0, y0, w, h)) into frame
    uint8 [H,W,3] -> uint8 [H,W,3]; pixels where the mask is 0 are the frame's, bit for bit.

    The render is first resized to about the window's size in frame pixels (area filter when
    shrinking), then placed with the window's sub-pixel offset.
    """
    import cv2

    height, width = frame.shape[:2]
    x0, y0, w, h = (float(v) for v in box)
    rx0, ry0 = max(0, math.floor(x0)), max(0, math.floor(y0))
    rx1, ry1 = min(width, math.ceil(x0 + w)), min(height, math.ceil(y0 + h))
    if rx1 <= rx0 or ry1 <= ry0:
        return frame
    size = (max(1, round(w)), max(1, round(h)))
    shrinking = size[0] < render.shape[1]
    resized = cv2.resize(
        render, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    )
    sx, sy = w / size[0], h / size[1]
    matrix = np.array([[sx, 0.0, x0 + 0.5 * sx - 0.5 - rx0], [0.0, sy, y0 + 0.5 * sy - 0.5 - ry0]])
    placed = cv2.warpAffine(
        resized,
        matrix,
        (rx1 - rx0, ry1 - ry0),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    ).astype(np.float32)
    ramp = options.feather * min(w, h)
    alpha = np.outer(
        _edge_ramp(ry0, ry1, y0, h, height, ramp), _edge_ramp(rx0, rx1, x0, w, width, ramp)
    ).astype(np.float32)
    if options.mask == "hull" and landmarks is not None:
        from ganvid.pipeline.paste_back import PasteConfig, face_mask

        alpha *= face_mask((height, width), landmarks, PasteConfig())[ry0:ry1, rx0:rx1]
    alpha[alpha < 0.5 / 255] = 0.0
    alpha[alpha > 1 - 0.5 / 255] = 1.0
    out = frame.copy()
    region = frame[ry0:ry1, rx0:rx1]
    blended = region + alpha[..., None] * (placed - region)
    mixed = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    keep = alpha == 0
    mixed[keep] = region[keep]
    out[ry0:ry1, rx0:rx1] = mixed
    return out


# ----------------------------------------------------------------------------- w+ per shot


def _chunks(count: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, count, size):
        yield start, min(count, start + size)


MEAN_SAMPLES = 32
"""Frames per shot whose w+ the "mean" mode averages, evenly spread over the shot: the w+ of
one face varies little, so 32 give the mean of all to within a small fraction of its spread
while the encoder runs once per sample, not once per frame."""


def wplus_samples(
    shot_ids: np.ndarray, detected: np.ndarray, mode: WplusMode, per_shot: int = MEAN_SAMPLES
) -> list[int]:
    """Frames whose aligned face goes through the encoder: "smooth" all of them; "mean" up to
    `per_shot` per shot, evenly spread over its frames with a detected face (over all of its
    frames if it has none)."""
    shot_ids = np.asarray(shot_ids).reshape(-1)
    if mode == "smooth":
        return list(range(len(shot_ids)))
    if mode != "mean":
        raise InputError(f"unknown w+ mode {mode!r}: use mean or smooth")
    detected = np.asarray(detected, dtype=bool).reshape(-1)
    samples: list[int] = []
    for start, stop in shot_segments(shot_ids):
        frames = np.arange(start, stop)
        pool = frames[detected[start:stop]] if detected[start:stop].any() else frames
        if len(pool) > per_shot:
            pool = pool[np.round(np.linspace(0, len(pool) - 1, per_shot)).astype(int)]
        samples.extend(int(i) for i in pool)
    return samples


def shot_wplus(
    per_frame: FrameDir,
    target: Path,
    shot_ids: np.ndarray,
    samples: list[int],
    mode: WplusMode = "mean",
) -> None:
    """Per-frame w+ files (those of `samples`) -> the w+ to render, [N,18,512] float32 .npy:
    "mean" = each shot's mean over its samples; "smooth" = every frame through the 5-tap
    temporal filter within its shot (raw values kept beside `target` as raw.npy). Streams:
    memory holds one shot's mean (or one chunk of frames), never the clip."""
    from ganvid.pipeline.smoothing import smooth_ws_file

    shot_ids = np.asarray(shot_ids).reshape(-1)
    count = len(shot_ids)
    if mode == "smooth":
        raw = target.with_name("raw.npy")
        gather_arrays(per_frame, count, raw)
        smooth_ws_file(raw, target, shot_ids, smooth=True)
        return
    sampled = np.asarray(samples)
    first = per_frame.read(int(sampled[0]))
    with atomic_path(target) as tmp:
        out = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.float32, shape=(count, *first.shape)
        )
        for start, stop in shot_segments(shot_ids):
            members = sampled[(sampled >= start) & (sampled < stop)]
            total = np.zeros(first.shape, dtype=np.float64)
            for index in members:
                total += per_frame.read(int(index))
            out[start:stop] = (total / len(members)).astype(np.float32)
        out.flush()
        del out


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
    paste: PasteOptions = PasteOptions()
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
    render_format: RenderFormat = ".jpg"
    """Files of the renders in the work dir: ".jpg" (quality 95; at 2048 px 6x smaller and ~10x
    faster to write than PNG, and below what H.264 at crf 18 loses) or ".png" (lossless)."""


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
    ext: RenderFormat


@dataclass(frozen=True)
class EncodeStageOptions:
    renders: str
    """The renders, relative to the work dir."""
    ext: RenderFormat
    output: str
    crop_only: bool
    paste: PasteOptions
    crf: int
    preset: str
    exact_size: bool = field(default=False, metadata=OMIT_DEFAULT)


def stage_geometry(workdir: Workdir, inputs: dict, options: GeometryOptions) -> dict:
    """Tracked, smoothed landmarks and the FFHQ-aligned faces at 256 (the w+ input)."""
    clip = Path(inputs["clip"])
    count = frame_count(workdir)
    layout = workdir.layout
    records, detections = track_geometry(
        clip, count, layout, layout.sgx_geometry_json, options.face
    )
    write_aligned_faces(clip, records, FrameDir(layout.sgx_aligned), ALIGNED_SIZE)
    track = {
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
    frame_size."""
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
    """Encoder w+ of the sampled aligned faces -> frames/*.npy; per-shot w+ -> wplus.npy.

    inputs: networks (StyleganexNetworks), paths (the stage's Tagged), batch.
    """
    import torch

    from ganvid.pipeline.render import to_float

    networks: StyleganexNetworks = inputs["networks"]
    paths: Tagged = inputs["paths"]
    track = load_track(workdir.root)
    samples = wplus_samples(track["shot_ids"], track["detected"], options.mode)
    aligned = FrameDir(workdir.layout.sgx_aligned)
    per_frame = FrameDir(paths.wplus_frames, ".npy")
    todo = [i for i in samples if not per_frame.has(i)]
    with stage_bar("w+ (encoder)", len(samples), len(samples) - len(todo)) as update:
        for start, stop in _chunks(len(todo), inputs["batch"]):
            chunk = todo[start:stop]
            images = to_float([aligned.read(i) for i in chunk], networks.device)
            with torch.no_grad():
                wplus = networks.model.encode_wplus(images).float().cpu().numpy()
            for index, row in zip(chunk, wplus, strict=True):
                per_frame.write(index, row)
            update(len(chunk))
    shot_wplus(per_frame, paths.wplus_npy, track["shot_ids"], samples, options.mode)
    return {"frames": frame_count(workdir), "encoded": len(samples), "mode": options.mode}


def stage_render(workdir: Workdir, inputs: dict, options: RenderStageOptions) -> dict:
    """Decode every frame's crop -> <tag>_render/frames/* (4x the crop), in batches.

    Files are encoded by a pool of threads while the network draws the next batch (at 2048 px
    an image file takes about as long as a GPU render); at most a few batches wait in memory.
    inputs: networks, strengths (edit strength per frame, or None), clip, batch.
    """
    from concurrent.futures import ThreadPoolExecutor

    from ganvid.io.video import read_frames

    networks: StyleganexNetworks = inputs["networks"]
    count = frame_count(workdir)
    windows = load_windows(workdir.root)
    renders = FrameDir(workdir.layout.frames(options.stage), options.ext)
    todo = set(renders.missing(count))
    wplus = np.load(workdir.root / options.wplus, mmap_mode="r")
    render = networks.renderer(wplus, inputs["strengths"])
    last = max(todo, default=-1)
    batch = inputs["batch"]
    with (
        stage_bar("render", count, count - len(todo)) as update,
        ThreadPoolExecutor(max_workers=WRITER_THREADS) as pool,
    ):
        pending: list[tuple[int, np.ndarray]] = []
        writing: list = []
        for frame in read_frames(inputs["clip"]) if todo else ():
            if frame.index in todo:
                crop = cut_window(frame.image, windows.boxes[frame.index], windows.input_size)
                pending.append((frame.index, crop))
            if pending and (len(pending) == batch or frame.index == last):
                writing += [pool.submit(renders.write, *item) for item in render(pending)]
                while len(writing) > 2 * batch + WRITER_THREADS:
                    writing.pop(0).result()  # raises a failed write here
                update(len(pending))
                pending = []
            if frame.index >= last:
                break
        for future in writing:
            future.result()
    return {"frames": count, "input_size": list(windows.input_size)}


def stage_encode(workdir: Workdir, inputs: dict, options: EncodeStageOptions) -> dict:
    """Paste every render into its frame (or keep the crops) and encode with the source's pts
    and sound."""
    from ganvid.io.video import VideoWriter, probe, read_frames

    clip = Path(inputs["clip"])
    info = probe(clip)
    pts = read_json(workdir.layout.decode_json)["pts"]
    renders = FrameDir(workdir.root / options.renders, options.ext)
    windows = load_windows(workdir.root)
    landmarks = load_track(workdir.root)["landmarks"]
    paste = options.paste
    if options.crop_only:
        height, width = renders.read(0).shape[:2]
    else:
        width, height = info.width, info.height
    output = Path(options.output)
    with (
        VideoWriter(
            output,
            info,
            crf=options.crf,
            preset=options.preset,
            audio_from=clip if info.has_audio else None,
            width=width,
            height=height,
            exact_size=options.exact_size,
        ) as writer,
        stage_bar("encode", len(pts)) as update,
    ):
        for frame in read_frames(clip):
            index = frame.index
            render = renders.read(index)
            if options.crop_only:
                image = render
            elif windows.active[index]:
                box = windows.boxes[index]
                image = paste_window(frame.image, render, box, paste, landmarks[index])
            else:
                image = frame.image
            writer.write(image, pts[index])
            update()
    return {"output": str(output), "size": [width, height], "frames": len(pts)}


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
        if options.render_format not in (".jpg", ".png"):
            raise InputError(f"render_format must be .jpg or .png, not {options.render_format!r}")
        if options.wplus not in ("mean", "smooth"):
            raise InputError(f"unknown w+ mode {options.wplus!r}: use mean or smooth")
        if options.crop.eye_px <= 0 or options.crop.window_eyes <= 0:
            raise InputError("the eye distance and the window size must be positive")
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
                outputs=[layout.sgx_track, FrameDir(layout.sgx_aligned).file(last)],
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
            renders = FrameDir(task.render_frames, o.render_format)
            self.stage(
                task.render,
                stage_render,
                inputs={"strengths": self.strengths(wd.root)},
                options=RenderStageOptions(
                    stage=task.render,
                    wplus=layout.relative(model.wplus_npy),
                    edit=None if o.edit is None else o.edit.describe(),
                    ext=o.render_format,
                ),
                files={"checkpoint": self.checkpoint, **edit_files},
                upstream=[model.wplus, names.SGX_WINDOWS, names.DECODE],
                outputs=[renders.file(last)],
            )
            self.stage(
                task.encode,
                stage_encode,
                options=EncodeStageOptions(
                    renders=layout.relative(task.render_frames),
                    ext=o.render_format,
                    output=str(self.output.resolve()),
                    crop_only=o.crop_only,
                    paste=o.paste,
                    crf=o.crf,
                    preset=o.preset,
                    exact_size=o.exact_size,
                ),
                files=clip_file,
                upstream=[task.render, names.SGX_WINDOWS, names.SGX_GEOMETRY, names.DECODE],
                outputs=[self.output.resolve()],
            )
            count = frame_count(wd)
            windows = load_windows(wd.root)
            render_size = renders.read(0).shape[:2]
        return StyleganexSummary(
            self.workdir_path,
            count,
            self.records,
            self.output,
            windows.input_size,
            (int(render_size[0]), int(render_size[1])),
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
    **options: Any,
) -> StyleganexSummary:
    """Toonify a face video with a StyleGANEX toonify checkpoint.

    style: cartoon | pixar | arcane (names the weights `styleganex-toonify-<style>` and the
    output `<clip>_toon_<style>.mp4`); checkpoint: a file instead of the named weights.
    options: the other fields of `StyleganexVideoOptions` (output, workdir, device, batch,
    crop_only, wplus, crop, crf, preset, fresh, face). The window is pasted back whole
    (feathered "full" mask) unless `paste` says otherwise.
    """
    name = toonify_weights_name(style)
    job = StyleganexVideoJob(
        StyleganexVideoOptions(
            clip=Path(clip),
            checkpoint=str(checkpoint) if checkpoint is not None else name,
            tag=f"toon_{style}",
            **{"paste": PasteOptions(mask="full"), **options},
        )
    )
    return job.run()


def styleganex_edit_video(
    clip: str | Path,
    checkpoint: str | Path = "styleganex-edit-age",
    strength: float | str | Strength = 1.0,
    direction: np.ndarray | str | Path | None = None,
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
    options: the other fields of `StyleganexVideoOptions`; by default the face-and-hair region
    (mask "hull") is pasted back, and the output is `<clip>_edit_<name>_<strength>.mp4`.
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
            **{"paste": PasteOptions(mask="hull"), **options},
        )
    )
    return job.run()
