"""The `ganvid invert` job: a clip in, its StyleGAN3 reconstruction out, every step on disk.

Stages (each a function `stage_x(workdir, inputs, options)`, run by `run_stage`, so a second run
skips what is done and a killed run resumes):

    decode    decode/video.json          frame count, pts, size (one streaming pass: a corrupt
                                         file fails here, before any model is loaded)
    geometry  geometry/geometry.npz      landmarks, quads, windows, transforms, shot ids, and
                                         the exact quads and sizes of the two crops of every
                                         frame: the aligned crop at the encoder's input size and
                                         the unaligned one (per-shot window) at the generator's,
                                         cut from the clip on demand (`ganvid.pipeline.crops`)
    invert    invert/ws.npy              ReStyle W+ per frame [N,num_ws,w_dim] (invert/ws/*.npy
                                         while it runs, for resuming)
    smooth    smooth/ws.npy              smoothed W+ (optionally fine layers -> shot mean)
              smooth/params.npy          smoothed (angle_deg, tx_frac, ty_frac) [N,3]
              smooth/transforms.npy      input-transform matrices [N,3,3]
    pti       pti/generator.pt           tuned synthesis weights (+ checkpoint.pt and the
                                         targets/*.png crops while running)
              pti/log.json               loss per step
              (--pti-per-shot: pti/shots/<shot>.pt, one generator tuned per shot, and the
              log per shot; every consumer draws through `ganvid.pipeline.pti.TunedWeights`)
    render    render/segments/<output>/*.mp4  the reconstruction (tuned G, smoothed pivots)
                                         composed into every output and encoded in resumable
                                         segments (`ganvid.pipeline.segments`), with each
                                         segment's LPIPS / PSNR; --keep-frames: also
                                         render/frames/*.png
    encode    <clip>_inverted.mp4 (+ _crop.mp4, _sbs.mp4) joined from the segments by stream
              copy, and encode/metrics.json; the main video is pasted back into the source
              frames (`ganvid.pipeline.compose`) unless paste_back is off, then it is the crop
              render

Every output video keeps the source's frame count, timestamps and sound.

PTI tunes on the SMOOTHED pivots and transforms, the ones that are rendered: the tuned generator
is then fitted to exactly the latents it will be asked to draw (stylegan3-editing tunes on the
raw latents, renders smoothed ones, and re-runs the encoder after PTI, so its final latents are
not the PTI pivots).

Why ~750 lines: one job module, read top to bottom (options, seven stages with their frozen
options, the lazy networks, the job with its whole-run and `--part` paths). What a finished run
leaves for `ganvid edit` is `ganvid.pipeline.inversion`; crops, segments, paste-back, PTI and
smoothing live in their own modules.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from ganvid.errors import WorkdirError
from ganvid.files import absolute
from ganvid.pipeline import layout as names
from ganvid.pipeline.align import share_detections, track_geometry
from ganvid.pipeline.claims import part_order
from ganvid.pipeline.inversion import INVERSION_VERSION
from ganvid.pipeline.job import Job, input_clip, resolve_weights
from ganvid.pipeline.layout import Layout
from ganvid.pipeline.paste_back import PasteConfig, paste_config
from ganvid.pipeline.segments import SEGMENT_FRAMES, segment_ranges
from ganvid.pipeline.workdir import (
    OMIT_DEFAULT,
    FrameDir,
    StageRecord,
    Workdir,
    atomic_save_npy,
    atomic_save_npz,
    atomic_write_json,
    default_workdir,
    gather_arrays,
    output_folder,
    read_json,
)
from ganvid.ui import stage_bar

DEFAULT_GENERATOR = "sg3-r-ffhq-1024"
DEFAULT_ENCODER = "restyle-e4e-ffhq"
DEFAULT_LPIPS = "lpips-alex"
WEIGHTS_GROUP = "invert"
"""`ganvid weights download invert` fetches everything this job needs."""

STAGES = names.INVERT_STAGES


@dataclass(frozen=True)
class InvertOptions:
    """Everything `ganvid invert` can be told. Paths are resolved by `InvertJob`.

    generator, encoder, lpips: weights-manager names or file paths.
    pti_steps: None = 8000 on CUDA, a small number on CPU (with a warning).
    batch: frames per batch for the encoder, PTI, rendering and metrics.
    max_memory_bytes: memory budget for PTI (lowers its batch).
    """

    clip: Path
    output: Path | None = None
    workdir: Path | None = None
    generator: str = DEFAULT_GENERATOR
    encoder: str = DEFAULT_ENCODER
    lpips: str = DEFAULT_LPIPS
    device: str = "auto"
    batch: int = 4
    encoder_iters: int | None = None
    pti_steps: int | None = None
    pti_checkpoint_every: int = 100
    pti_lr: float = 3e-4
    pti_early_stop_lpips: float | None = 0.06
    pti_per_shot: bool = False
    """Tune one copy of the generator per shot, each on its shot's frames (one tuning per
    shot), instead of one for the whole clip."""
    seed: int = 0
    max_memory_bytes: int | None = None
    smooth: bool = True
    fine_layer_mean: bool = False
    side_by_side: bool = False
    paste_back: bool = True
    """The main output is the reconstruction pasted back into the source frames (False: the
    crop render)."""
    mask: str = "hull"
    """Paste-back mask: hull (landmarks) or parsing (face-parsing network)."""
    crf: int = 18
    preset: str = "medium"
    exact_size: bool = False
    """Odd frame sizes: False pads to even yuv420p (plays everywhere), True keeps them (4:4:4)."""
    fresh: bool = False
    face: dict = field(default_factory=dict)
    """Options for `ganvid.face` (detector backend, face choice, window size...)."""
    keep_frames: bool = False
    """Also keep the renders as PNGs (render/frames/) for inspection; the videos are the same."""
    segment_frames: int = SEGMENT_FRAMES
    """Frames per resumable output segment (`ganvid.pipeline.segments`), and per unit of the
    face detection that parts share."""
    part: tuple[int, int] | None = None
    """(K, N): do share K of N of the detection, encoder and render beside the other parts
    (tracking and PTI once), and stop before joining (`InvertJob.run_part`)."""


@dataclass
class InvertSummary:
    """What a run did: per-stage records, output files, PTI and reconstruction figures."""

    workdir: Path
    frames: int
    records: list[StageRecord]
    outputs: dict[str, Path]
    pti: dict[str, Any]
    metrics: dict[str, Any]


# ----------------------------------------------------------------------------- helpers


def output_paths(
    clip: Path, output: Path | None, side_by_side: bool, folder: Path | None = None
) -> dict[str, Path]:
    """{'video': <clip>_inverted.mp4, 'crop': ..._crop.mp4[, 'side_by_side': ..._sbs.mp4]},
    absolute; the defaults go into `folder` (default: the clip's)."""
    folder = absolute(clip).parent if folder is None else folder
    main = absolute(output) if output is not None else folder / f"{clip.stem}_inverted.mp4"
    paths = {"video": main, "crop": main.with_name(f"{main.stem}_crop{main.suffix}")}
    if side_by_side:
        paths["side_by_side"] = main.with_name(f"{main.stem}_sbs{main.suffix}")
    return paths


def batches(indices: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(indices), max(1, size)):
        yield indices[start : start + size]


def frame_count(workdir: Workdir) -> int:
    return int(read_json(workdir.layout.decode_json)["frame_count"])


def run_decode(job: Job, clip: Path) -> int:
    """Run (or skip) the decode stage in the job's open work dir: one stage, one key for every
    video job, so the jobs of a work dir share it. Returns the frame count."""
    layout = Layout(job.workdir_path)
    files = {"clip": clip}
    job.stage(names.DECODE, stage_decode, options={}, files=files, outputs=[layout.decode_json])
    return int(read_json(layout.decode_json)["frame_count"])


class Models:
    """Networks of the job, loaded on first use (a skipped stage loads nothing)."""

    def __init__(self, weights: dict[str, Path], device) -> None:
        self.weights, self.device = weights, device

    def generator(self):
        """A fresh copy of the pretrained generator (PTI tunes its copy in place)."""
        from ganvid.nn.checkpoints import load_generator

        return load_generator(self.weights["generator"], device=self.device).eval()

    @cached_property
    def base_generator(self):
        return self.generator().requires_grad_(False)

    @cached_property
    def restyle(self):
        from ganvid.nn.restyle_checkpoints import load_restyle

        return load_restyle(self.weights["encoder"], device=self.device, with_decoder=False)

    @cached_property
    def lpips(self):
        from ganvid.nn.lpips import build_lpips

        return build_lpips("alex", backbone=self.weights["lpips"]).to(self.device)


# ----------------------------------------------------------------------------- stage options


@dataclass(frozen=True)
class GeometryOptions:
    face: dict
    """Options for `ganvid.face` (detector backend, face choice, window size...)."""
    aligned_size: int
    crop_size: int
    """The generator's resolution."""
    unaligned_fill: str


@dataclass(frozen=True)
class EncoderOptions:
    n_iters: int | None
    """ReStyle iterations (None: the encoder's own)."""


@dataclass(frozen=True)
class SmoothOptions:
    smooth: bool
    fine_layer_mean: bool


@dataclass(frozen=True)
class PtiOptions:
    pti: Any
    """A `ganvid.pipeline.pti.PTIConfig` (that module imports torch)."""
    per_shot: bool = field(default=False, metadata=OMIT_DEFAULT)
    """One generator tuned per shot (`ganvid.pipeline.pti.tune_shots`)."""


@dataclass(frozen=True)
class RenderOptions:
    layouts: dict[str, str]
    """{'video' | 'crop' | 'side_by_side': compose layout}."""
    compose: Any
    """A `ganvid.pipeline.compose.ComposeConfig`."""
    segment_frames: int
    keep_frames: bool = field(default=False, metadata=OMIT_DEFAULT)
    pti_per_shot: bool = field(default=False, metadata=OMIT_DEFAULT)
    """Draw each shot with its own tuned weights (`ganvid.pipeline.pti.TunedWeights`)."""


def pti_outputs(layout: Layout, per_shot: bool) -> list[Path]:
    """The files whose presence means the PTI stage is done: the tuned generator, or (per shot)
    every shot's weights and the log."""
    if not per_shot:
        return [layout.pti_generator]
    shots = np.unique(np.load(layout.geometry_npz)["shot_ids"])
    return [layout.pti_log, *(layout.pti_shot(shot) for shot in shots)]


@dataclass(frozen=True)
class EncodeOptions:
    outputs: dict[str, str]
    """{'video' | 'crop' | 'side_by_side': absolute path}."""
    crf: int
    preset: str
    paste_back: bool
    exact_size: bool = field(default=False, metadata=OMIT_DEFAULT)
    mask: str = field(default="hull", metadata=OMIT_DEFAULT)
    segment_frames: int = field(default=SEGMENT_FRAMES, metadata=OMIT_DEFAULT)


# ----------------------------------------------------------------------------- stages


def stage_decode(workdir: Workdir, inputs: dict, options: dict) -> dict:
    """Decode the clip once: frame count, pts and sizes into decode/video.json."""
    from ganvid.io.video import probe, read_frames

    clip = Path(inputs["clip"])
    info = probe(clip)
    pts: list[int] = []
    rebuilt = 0
    with stage_bar("decode", info.frame_count) as update:
        for frame in read_frames(clip):
            pts.append(frame.pts)
            rebuilt += frame.rebuilt
            update()
    video = {
        "frame_count": len(pts),
        "pts": pts,
        "rebuilt": rebuilt,  # 0: the stored pts are these, a reader may seek by them
        "time_base": [info.time_base.numerator, info.time_base.denominator],
        "fps": float(info.fps),
        "width": info.width,
        "height": info.height,
        "has_audio": info.has_audio,
    }
    atomic_write_json(workdir.layout.decode_json, video)
    return {"frames": len(pts), "fps": float(info.fps), "size": [info.width, info.height]}


ALIGNED_SIZE = 256
"""Side of the stored aligned crops: the published ReStyle encoders' input (others resize)."""


def stage_geometry(workdir: Workdir, inputs: dict, options: GeometryOptions) -> dict:
    """Landmarks, tracking, shots, windows and transforms, and the exact quads and sizes the
    crops are cut over (`ganvid.pipeline.crops`: cut from the clip on demand, not stored).

    The per-frame detection is shared among workers in units of `inputs['unit_frames']`
    frames (`share_detections`): with `inputs['part']` this worker only detects its share;
    without, the missing units are detected (or waited for), then the faces are tracked over
    the whole clip in this one process, from the detection cache."""
    from ganvid.pipeline.crops import CropSizes, quad_arrays

    clip = Path(inputs["clip"])
    count = frame_count(workdir)
    layout = workdir.layout
    part = inputs.get("part")
    units = share_detections(
        clip,
        count,
        layout,
        options.face,
        inputs["claims"],
        inputs.get("unit_frames", SEGMENT_FRAMES),
        part,
    )
    if part is not None:  # this worker's share of the detection; the run without part tracks
        return {"units": units}
    records, _ = track_geometry(clip, count, layout, layout.geometry_json, options.face)
    sizes = CropSizes(options.aligned_size, options.crop_size, options.unaligned_fill)
    arrays = {
        "params": np.array([r.transform.params for r in records], dtype=np.float64),
        "scale": np.array([r.transform.scale for r in records], dtype=np.float64),
        "shot_ids": np.array([r.shot for r in records], dtype=np.int64),
        "detected": np.array([r.detected for r in records], dtype=bool),
        "interpolated": np.array([r.interpolated for r in records], dtype=bool),
        **quad_arrays(records),
        **sizes.arrays(),
    }
    atomic_save_npz(layout.geometry_npz, arrays)
    return {
        "frames": count,
        "shots": int(len(np.unique(arrays["shot_ids"]))),
        "interpolated": int(arrays["interpolated"].sum()),
    }


def crop_cutter(layout, clip: Path):
    """The crops of the work dir (its `Layout`), cut from `clip` on demand (`CropCutter`)."""
    from ganvid.pipeline.crops import ClipFrames, CropCutter

    return CropCutter.load(layout.geometry_npz, clip, ClipFrames.for_workdir(layout, clip))


def stage_invert(workdir: Workdir, inputs: dict, options: EncoderOptions) -> dict:
    """ReStyle inversion of every aligned crop -> invert/ws.npy [N,num_ws,w_dim].

    The frames are encoded in batches of `inputs['batch']` aligned to the clip's start, the
    units workers claim (`ganvid.pipeline.claims`), so every batch holds the frames it holds
    in one whole run, and the latents are the same bits however the work was shared. With
    `inputs['part']` this worker encodes its share (then any free unit) and stops; without,
    it encodes the rest, waits for those live workers hold, and gathers ws.npy."""
    import torch

    from ganvid.pipeline.render import to_float

    models: Models = inputs["models"]
    count = frame_count(workdir)
    aligned = crop_cutter(workdir.layout, Path(inputs["clip"]))
    per_frame = FrameDir(workdir.layout.invert_frames, ".npy")
    units = segment_ranges(count, inputs["batch"])
    part = inputs.get("part")

    def done(k: int) -> bool:
        return all(per_frame.has(i) for i in units[k])

    inverter = None
    waiting = f"waiting for other workers' encoder batches in {workdir.root}"
    todo = inputs["claims"].take(part_order(len(units), part), done, part is None, waiting)
    with stage_bar("invert (encoder)", count, count - len(per_frame.missing(count))) as update:
        for k in todo:
            if inverter is None:
                inverter = models.restyle.inverter(
                    n_iters=options.n_iters, generator=models.base_generator
                )
            chunk = list(units[k])
            images = to_float([aligned.aligned(i) for i in chunk], models.device)
            with torch.no_grad():
                ws = inverter.invert(images, return_images=False).ws.float().cpu().numpy()
            for index, w in zip(chunk, ws, strict=True):
                per_frame.write(index, w)
            update(len(chunk))
    units_done = len(inputs["claims"].taken)
    if part is not None:
        return {"units": units_done}
    gather_arrays(per_frame, count, workdir.layout.invert_ws)
    shutil.rmtree(per_frame.path)  # resume files: ws.npy holds the same rows
    iterations = models.restyle.n_iters if options.n_iters is None else options.n_iters
    return {"frames": count, "iterations": iterations, "units": units_done}


def stage_smooth(workdir: Workdir, inputs: dict, options: SmoothOptions) -> dict:
    """Smooth latents and transforms (N in, N out) -> smooth/{ws,params,transforms}.npy."""
    from ganvid.face.transforms import input_transforms
    from ganvid.pipeline.smoothing import smooth_transform_params, smooth_ws_file

    layout = workdir.layout
    geometry = np.load(layout.geometry_npz)
    shot_ids = geometry["shot_ids"]
    smooth_ws_file(
        layout.invert_ws,
        layout.smooth_ws,
        shot_ids,
        fine_layer_mean=options.fine_layer_mean,
        smooth=options.smooth,
    )
    params = geometry["params"]
    if options.smooth:
        params = smooth_transform_params(params, shot_ids)
    atomic_save_npy(layout.smooth_params, params)
    atomic_save_npy(layout.smooth_transforms, input_transforms(params))
    return {"frames": len(params), "shots": int(len(np.unique(shot_ids)))}


def stage_pti(workdir: Workdir, inputs: dict, options: PtiOptions) -> dict:
    """Tune the generator on the unaligned crops -> pti/generator.pt, pti/log.json (per shot:
    one copy per shot on its frames -> pti/shots/<shot>.pt, `ganvid.pipeline.pti.tune_shots`).

    PTI reads its targets many times in random order, so they are cut from the clip once into
    pti/targets/*.png (resumable; per shot, one shot's at a time) and deleted when the tuned
    weights are written."""
    from ganvid.pipeline.pti import save_tuned, tune_frames, tune_shots

    models: Models = inputs["models"]
    config = options.pti
    layout = workdir.layout
    cutter = crop_cutter(layout, Path(inputs["clip"]))
    pivots = np.load(layout.smooth_ws, mmap_mode="r")
    transforms = np.load(layout.smooth_transforms)
    if options.per_shot:
        shot_ids = np.load(layout.geometry_npz)["shot_ids"]
        return tune_shots(
            models.generator,
            models.lpips,
            pivots,
            transforms,
            shot_ids,
            cutter,
            layout,
            config,
            models.device,
        )
    generator = models.generator()
    cache = FrameDir(layout.pti_targets)
    result = tune_frames(
        generator,
        models.lpips,
        pivots,
        transforms,
        cutter,
        cache,
        config,
        models.device,
        layout.pti_checkpoint,
    )
    save_tuned(generator, layout.pti_generator)
    atomic_write_json(layout.pti_log, asdict(result))
    layout.pti_checkpoint.unlink(missing_ok=True)
    shutil.rmtree(cache.path, ignore_errors=True)
    summary = asdict(result)
    summary.pop("log")
    return summary


def stage_render(workdir: Workdir, inputs: dict, options: RenderOptions) -> dict:
    """Render every frame with the tuned generator, compose the outputs and encode them into
    render/segments/<output>/*.mp4 (`ganvid.pipeline.segments`), with each segment's LPIPS /
    PSNR against the crops in render/segments/metrics/*.json; --keep-frames also keeps
    render/frames/*.png."""
    from ganvid.pipeline.compose import ComposeSources
    from ganvid.pipeline.pti import TunedWeights
    from ganvid.pipeline.render import RenderJob
    from ganvid.pipeline.segments import encode_segments

    models: Models = inputs["models"]
    generator = models.generator()
    layout = workdir.layout
    tuned = TunedWeights(generator, layout, options.pti_per_shot)
    job = RenderJob(np.load(layout.smooth_ws, mmap_mode="r"), np.load(layout.smooth_transforms))
    out = workdir.stage_dir(names.RENDER)
    sources = ComposeSources(Path(inputs["clip"]), workdir.root, None)
    meter = ReconstructionMeter(models, inputs["batch"])

    def measure(index: int, render: np.ndarray, crop: np.ndarray) -> None:
        meter.add(render, crop if crop.shape == render.shape else _resize(crop, render.shape[0]))

    def segment_done(k: int) -> None:
        atomic_write_json(layout.segment_metrics(names.RENDER, k), meter.finish())
        meter.reset()

    info = encode_segments(
        out,
        sources,
        lambda frames: tuned.render_frames(job, models.device, inputs["batch"], frames),
        options.layouts,
        options.compose,
        options.segment_frames,
        options.keep_frames,
        on_frame=measure,
        on_segment=segment_done,
        part=inputs.get("part"),
        claims=inputs["claims"],
    )
    return {"frames": len(job), "resolution": int(generator.img_resolution), **info}


def compose_config(options: EncodeOptions):
    """The ComposeConfig of the encode stage's options (the render stage's)."""
    from ganvid.pipeline.compose import ComposeConfig

    return ComposeConfig(
        paste=PasteConfig(mask=options.mask),
        crf=options.crf,
        preset=options.preset,
        exact_size=options.exact_size,
    )


def stage_encode(workdir: Workdir, inputs: dict, options: EncodeOptions) -> dict:
    """Join the render's segments into the output videos (stream copy, the source's pts and
    sound) and gather the per-frame LPIPS / PSNR into encode/metrics.json."""
    from ganvid.pipeline.segments import join_segments, segment_ranges

    layout = workdir.layout
    render = layout.stage(names.RENDER)
    outputs = {name: Path(path) for name, path in options.outputs.items()}
    join_segments(
        render, Path(inputs["clip"]), outputs, compose_config(options), options.segment_frames
    )
    lpips, psnr = [], []
    for k in range(len(segment_ranges(frame_count(workdir), options.segment_frames))):
        part = read_json(layout.segment_metrics(names.RENDER, k))
        if part is None:
            raise WorkdirError(f"{render} lacks the metrics of segment {k}; rerun with --fresh")
        lpips.extend(part["lpips"])
        psnr.extend(part["psnr_db"])
    metrics = {
        "lpips_mean": float(np.mean(lpips)),
        "psnr_mean_db": float(np.mean(psnr)),
        "lpips": lpips,
        "psnr_db": psnr,
    }
    atomic_write_json(layout.metrics, metrics)
    return {
        "lpips": metrics["lpips_mean"],
        "psnr_db": metrics["psnr_mean_db"],
        "outputs": {k: str(path) for k, path in outputs.items()},
    }


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    import cv2

    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


class ReconstructionMeter:
    """Per-frame PSNR (dB, on uint8) and LPIPS between render and target, batched on device."""

    def __init__(self, models: Models, batch: int) -> None:
        self.models, self.batch = models, max(1, batch)
        self.psnr: list[float] = []
        self.lpips: list[float] = []
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, render: np.ndarray, target: np.ndarray) -> None:
        error = np.mean((render.astype(np.float64) - target.astype(np.float64)) ** 2)
        self.psnr.append(float(10 * math.log10(255.0**2 / max(error, 1e-10))))
        self._pending.append((render, target))
        if len(self._pending) >= self.batch:
            self._flush()

    def _flush(self) -> None:
        import torch

        from ganvid.pipeline.render import to_float

        if not self._pending:
            return
        renders, targets = zip(*self._pending, strict=True)
        device = self.models.device
        with torch.no_grad():
            values = self.models.lpips(to_float(renders, device), to_float(targets, device))
        self.lpips.extend(values.float().cpu().numpy().tolist())
        self._pending = []

    def reset(self) -> None:
        self.psnr, self.lpips, self._pending = [], [], []

    def finish(self) -> dict:
        self._flush()
        return {
            "lpips_mean": float(np.mean(self.lpips)),
            "psnr_mean_db": float(np.mean(self.psnr)),
            "lpips": self.lpips,
            "psnr_db": self.psnr,
        }


# ----------------------------------------------------------------------------- the job


class InvertJob(Job):
    """Resolve options, then run the stages in order. `run()` returns an InvertSummary."""

    def __init__(self, options: InvertOptions) -> None:
        super().__init__(options.device, options.batch, options.fresh)
        self.options = options
        self.clip = input_clip(options.clip)
        self.workdir_path = absolute(options.workdir or default_workdir(self.clip))
        folder = output_folder(self.clip, self.workdir_path)
        self.outputs = output_paths(self.clip, options.output, options.side_by_side, folder)
        self.weights = resolve_weights(
            {"generator": options.generator, "encoder": options.encoder, "lpips": options.lpips},
            "--generator/--encoder/--lpips",
            WEIGHTS_GROUP,
        )
        self.paste = paste_config(options.mask if options.paste_back else "hull")
        self.models = Models(self.weights, self.device)
        self._limit_cuda_memory()

    def _record_inversion(self, count: int) -> None:
        """inversion.json: what `load_inversion` (ganvid edit, FoV, paste-back) reads."""
        record = {
            "version": INVERSION_VERSION,
            "clip": str(self.clip.resolve()),
            "frames": count,
            "generator": str(self.weights["generator"].resolve()),
            "encoder": str(self.weights["encoder"].resolve()),
            "smooth": self.options.smooth,
            "fine_layer_mean": self.options.fine_layer_mean,
            "outputs": {k: str(v.resolve()) for k, v in self.outputs.items()},
        }
        if self.options.pti_per_shot:  # absent: per clip (and work dirs made before the option)
            record["pti_per_shot"] = True
        atomic_write_json(Layout(self.workdir_path).inversion_json, record)

    def _limit_cuda_memory(self) -> None:
        """Make CUDA allocations beyond --max-memory fail, so PTI's OOM handling halves the
        batch instead of the GPU's other tenants paying for it."""
        import torch

        budget = self.options.max_memory_bytes
        if budget is None or self.device.type != "cuda":
            return
        total = torch.cuda.get_device_properties(self.device).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, budget / total), self.device)

    def pti_config(self):
        """The PTIConfig of this run (steps default to the device's)."""
        from ganvid.pipeline.pti import PTIConfig, default_steps

        o = self.options
        steps = default_steps(self.device) if o.pti_steps is None else o.pti_steps
        if o.pti_steps is None and self.device.type == "cpu":
            from ganvid.ui import warn

            warn(
                f"no GPU: PTI runs only {steps} steps on the CPU (8000 on a GPU), so the "
                "reconstruction will be rough; pass --pti-steps to choose"
            )
        config = PTIConfig(
            steps=steps,
            batch=o.batch,
            lr=o.pti_lr,
            early_stop_lpips=o.pti_early_stop_lpips,
            checkpoint_every=o.pti_checkpoint_every,
            seed=o.seed,
            amp=self.device.type == "cuda",
            max_memory_bytes=o.max_memory_bytes,
        )
        return config

    def geometry_options(self) -> GeometryOptions:
        return GeometryOptions(
            face=dict(self.options.face),
            aligned_size=ALIGNED_SIZE,
            crop_size=int(self.models.base_generator.img_resolution),
            unaligned_fill="ffhq",
        )

    def inputs(self) -> dict[str, Any]:
        """What every stage of the job gets besides its options (not hashed)."""
        o = self.options
        return {
            "models": self.models,
            "batch": o.batch,
            "clip": self.clip,
            "unit_frames": o.segment_frames,
        }

    def run(self) -> InvertSummary:
        if self.options.part is not None:
            return self.run_part(self.options.part)
        o = self.options
        with self.open(**self.inputs()) as wd:
            layout = wd.layout
            pti = self._up_to_pti(wd)
            self._render(wd)
            encode = self.stage(
                names.ENCODE,
                stage_encode,
                options=EncodeOptions(
                    outputs={k: str(v) for k, v in self.outputs.items()},
                    crf=o.crf,
                    preset=o.preset,
                    paste_back=o.paste_back,
                    exact_size=o.exact_size,
                    mask=self.paste.mask,
                    segment_frames=o.segment_frames,
                ),
                files={"clip": self.clip},
                upstream=[names.RENDER, names.DECODE],
                outputs=[layout.metrics, *self.outputs.values()],
            )
            count = frame_count(wd)
            self._record_inversion(count)
        metrics = {"lpips": encode.info.get("lpips"), "psnr_db": encode.info.get("psnr_db")}
        return InvertSummary(
            self.workdir_path, count, self.records, self.outputs, pti.info, metrics
        )

    def run_part(self, part: tuple[int, int]) -> InvertSummary:
        """One worker's share of the clip, beside the other parts (`ganvid.pipeline.claims`):

            decode                      under the work dir's lock (the first part decodes)
            its share of the detection  outside the lock
            geometry (tracking)         under the lock: the barrier, once all units are in
            its share of the encoder    outside the lock
            smooth, PTI                 under the lock: the barrier, PTI once per clip
            its share of the render     outside the lock

        A part that finishes its share early goes on with units no live worker holds (a dead
        part's). A run without a part then finds the segments and joins them."""
        inputs = self.inputs()
        with self.open(lock="wait", **inputs):
            run_decode(self, self.clip)
        with self.open(lock="none", part=part, **inputs) as wd:
            self._geometry(wd, part=True)
        with self.open(lock="wait", **inputs) as wd:
            self._geometry(wd)
        with self.open(lock="none", part=part, **inputs) as wd:
            self._encoder(wd, part=True)
        with self.open(lock="wait", **inputs) as wd:
            pti = self._up_to_pti(wd)
        with self.open(lock="none", part=part, **inputs) as wd:
            self._render(wd, part=True)
            count = frame_count(wd)
        return InvertSummary(self.workdir_path, count, self.records, {}, pti.info, {})

    def _geometry(self, wd: Workdir, part: bool = False) -> StageRecord:
        """The geometry stage (`part`: this worker's share of the detection)."""
        return self.stage(
            names.GEOMETRY,
            stage_geometry,
            options=self.geometry_options(),
            files={"clip": self.clip},
            upstream=[names.DECODE],
            outputs=[wd.layout.geometry_npz],
            version="2",  # 2: crops cut on demand from the stored quads
            part=part,
        )

    def _encoder(self, wd: Workdir, part: bool = False) -> StageRecord:
        """The encoder stage (`part`: this worker's share of the batches)."""
        return self.stage(
            names.INVERT,
            stage_invert,
            options=EncoderOptions(self.options.encoder_iters),
            files={"encoder": self.weights["encoder"], "generator": self.weights["generator"]},
            upstream=[names.GEOMETRY],
            outputs=[wd.layout.invert_ws],
            part=part,
        )

    def _up_to_pti(self, wd: Workdir) -> StageRecord:
        """decode, geometry, invert, smooth, pti in the open work dir; the PTI stage's record."""
        o = self.options
        # not hashed: the clip's content is (files=), so moving or renaming it costs nothing
        weights = self.weights
        layout = wd.layout
        run_decode(self, self.clip)
        self._geometry(wd)
        self._encoder(wd)
        self.stage(
            names.SMOOTH,
            stage_smooth,
            options=SmoothOptions(o.smooth, o.fine_layer_mean),
            upstream=[names.INVERT, names.GEOMETRY],
            outputs=[layout.smooth_ws, layout.smooth_transforms],
        )
        return self.stage(
            names.PTI,
            stage_pti,
            options=PtiOptions(self.pti_config(), per_shot=o.pti_per_shot),
            files={"generator": weights["generator"], "lpips": weights["lpips"]},
            upstream=[names.SMOOTH, names.GEOMETRY],
            outputs=pti_outputs(layout, o.pti_per_shot),
        )

    def _render(self, wd: Workdir, part: bool = False) -> StageRecord:
        """The render stage in the open work dir (`part`: this worker's share, see
        `run_stage`)."""
        from ganvid.pipeline.compose import ComposeConfig, main_layouts
        from ganvid.pipeline.segments import last_segments

        o = self.options
        layout = wd.layout
        last = frame_count(wd) - 1

        layouts = {**main_layouts(o.paste_back, o.side_by_side), "crop": "crop"}
        compose = ComposeConfig(
            paste=PasteConfig(mask=self.paste.mask),
            crf=o.crf,
            preset=o.preset,
            exact_size=o.exact_size,
        )
        render = RenderOptions(
            layouts={name: layouts[name] for name in self.outputs},
            compose=compose,
            segment_frames=o.segment_frames,
            keep_frames=o.keep_frames,
            pti_per_shot=o.pti_per_shot,
        )
        kept = [FrameDir(layout.render_frames).file(last)] if o.keep_frames else []
        segments = last_segments(frame_count(wd), o.segment_frames, list(self.outputs))
        files = {"clip": self.clip, **{k: self.weights[k] for k in ("generator", "lpips")}}
        return self.stage(
            names.RENDER,
            stage_render,
            options=render,
            files=files,
            upstream=[names.PTI, names.SMOOTH, names.DECODE, names.GEOMETRY],
            outputs=[layout.stage(names.RENDER) / p for p in segments] + kept,
            part=part,
        )
