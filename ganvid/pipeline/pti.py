"""Pivotal Tuning (Roich et al. 2022) over a whole clip, as stylegan3-editing does for video, or
over each shot of it (`--pti-per-shot`).

The generator's synthesis layers are tuned so that each frame's pivot latent, rendered with
that frame's input transform, reproduces the frame's unaligned crop. Frozen: the mapping network
and the Fourier input (`synthesis.input.*`), as in stylegan3-editing's video PTI. Loss: MSE +
LPIPS(alex), Adam, batch 4.

What ganvid adds to the anchor:
- The loop always advances: the early stop ("every frame's latest LPIPS averages below the
  threshold, over a full pass") ends the run instead of an inner loop only (anchor bug 5).
- Deterministic for a seed: batch b of epoch e is a slice of a permutation seeded by
  (seed, e), so the order depends only on how many samples were drawn, never on process state.
- Checkpoints (tuned weights, optimiser, AMP scaler, RNG, step, sample cursor, per-frame LPIPS,
  loss log) are written atomically every `checkpoint_every` steps; a run killed at any moment
  resumes from the last one and ends with exactly the weights an uninterrupted run would have.
- Frames are read from disk per batch through a small LRU cache: memory does not grow with the
  clip.
- A memory budget picks the batch from a measured per-sample cost; on CUDA an out-of-memory
  error halves the batch and retries the same step.
- Per shot (`tune_shots`): a shot may show another person than the one before it, and one
  generator tuned on every shot has to compromise between them. Each shot then gets its own copy
  of the pretrained generator, tuned on that shot's frames only with the full step count (one
  tuning per shot: a short shot needs as many steps to converge as a clip does), and
  `TunedWeights` gives every consumer (the invert render, `ganvid edit`, expand-fov, previews)
  the right weights at each shot boundary.
"""

from __future__ import annotations

import shutil
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganvid.errors import InputError, WorkdirError
from ganvid.pipeline.layout import Layout
from ganvid.pipeline.render import RenderJob, render_frames, synthesize, to_float, to_tensor
from ganvid.pipeline.workdir import FrameDir, atomic_path, atomic_write_json, read_json

CHECKPOINT_VERSION = 1
GPU_DEFAULT_STEPS = 8000
"""stylegan3-editing's README runs 8000 PTI steps per video."""
CPU_DEFAULT_STEPS = 50
"""On CPU a full PTI takes days; the default only nudges the generator (with a warning)."""


@dataclass(frozen=True)
class PTIConfig:
    """PTI settings (all of them part of the stage's cache key).

    steps: optimiser steps (each one batch).
    batch: frames per step (lowered by `max_memory_bytes` or by out-of-memory on CUDA).
    lr: Adam learning rate.
    early_stop_lpips: stop when every frame's most recent LPIPS averages below this (None: off).
    checkpoint_every: steps between checkpoints.
    seed: seeds the sampling order and torch's RNG.
    amp: mixed precision (float16 autocast + gradient scaling), CUDA only.
    max_memory_bytes: budget for the tuning's memory (None: no limit).
    cache_frames: frames kept in the read cache.
    """

    steps: int = GPU_DEFAULT_STEPS
    batch: int = 4
    lr: float = 3e-4
    mse_weight: float = 1.0
    lpips_weight: float = 1.0
    early_stop_lpips: float | None = 0.06
    checkpoint_every: int = 100
    seed: int = 0
    amp: bool = True
    max_memory_bytes: int | None = None
    cache_frames: int = 32

    def __post_init__(self) -> None:
        if self.steps < 0 or self.batch < 1 or self.checkpoint_every < 1 or self.lr <= 0:
            raise InputError("PTI needs steps >= 0, batch >= 1, checkpoint interval >= 1, lr > 0")


@dataclass
class PTIResult:
    """Summary of a PTI run (also stored as JSON beside the tuned weights)."""

    steps: int
    batch: int
    stopped_early: bool
    loss_first: float | None
    loss_last: float | None
    lpips_first: float | None
    lpips_last: float | None
    log: list[tuple[float, float]] = field(default_factory=list)
    """(mse, lpips) per step."""


def pti_parameters(generator: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The tuned parameters: every synthesis parameter except the Fourier input's."""
    return [
        (name, param)
        for name, param in generator.synthesis.named_parameters()
        if not name.startswith("input.")
    ]


def freeze_for_pti(generator: nn.Module) -> list[nn.Parameter]:
    """requires_grad only on `pti_parameters`; returns them in a fixed order."""
    generator.requires_grad_(False)
    params = [param for _, param in pti_parameters(generator)]
    for param in params:
        param.requires_grad_(True)
    return params


# ----------------------------------------------------------------------------- data


class TargetFrames:
    """Unaligned crops read from a FrameDir per batch, with a small LRU cache.

    Returns float32 [B,3,R,R] in [-1, 1] at the generator's resolution R (resized if the
    stored crops have another size). `frame_of`: the clip frame of each sample (one shot's), so
    sample k is the file of frame frames[k] (None: sample k is frame k).
    """

    def __init__(
        self,
        frames: FrameDir,
        count: int,
        resolution: int,
        cache: int = 32,
        frame_of: Sequence[int] | None = None,
    ) -> None:
        if frame_of is not None and len(frame_of) != count:
            raise ValueError(f"{count} samples but {len(frame_of)} frames")
        self.frames, self.count, self.resolution, self.cache_size = frames, count, resolution, cache
        self.frame_of = frame_of
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return self.count

    def _read(self, index: int) -> np.ndarray:
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        image = self.frames.read(index if self.frame_of is None else int(self.frame_of[index]))
        self._cache[index] = image
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return image

    def batch(self, indices: np.ndarray, device: torch.device) -> torch.Tensor:
        images = to_float([self._read(int(i)) for i in indices], device)
        if images.shape[-1] != self.resolution or images.shape[-2] != self.resolution:
            size = (self.resolution, self.resolution)
            images = F.interpolate(images, size, mode="bilinear", antialias=True)
        return images


class FrameRows:
    """Rows `frames` of a per-frame array, read on indexing (a memmap stays on disk): one shot's
    pivots or transforms, indexed by the shot's sample numbers 0..len(frames)-1."""

    def __init__(self, array: np.ndarray, frames: np.ndarray) -> None:
        self.array, self.frames = array, np.asarray(frames, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, samples: np.ndarray) -> np.ndarray:
        return self.array[self.frames[samples]]


def sample_indices(seed: int, count: int, cursor: int, batch: int) -> np.ndarray:
    """Frames for samples cursor..cursor+batch-1 of the endless stream of seeded permutations.

    Epoch e is the permutation of range(count) seeded by (seed, e); the stream is the epochs
    one after the other. Depends only on the arguments, so a resumed run draws the same frames.
    """
    picks = []
    for k in range(cursor, cursor + batch):
        epoch, position = divmod(k, count)
        picks.append(np.random.default_rng([seed, epoch]).permutation(count)[position])
    return np.asarray(picks, dtype=np.int64)


# ----------------------------------------------------------------------------- memory


def measure_sample_bytes(step: Callable[[int], torch.Tensor]) -> int:
    """Bytes autograd keeps for backward in one step at batch 1 (activations), deduplicated.

    `step(batch)` must build the loss; it is run once and not back-propagated.
    """
    seen: dict[tuple[int, int], int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        if tensor.device.type != "meta":
            key = (tensor.untyped_storage().data_ptr(), tensor.untyped_storage().nbytes())
            seen[key] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = step(1)
    del loss
    return sum(seen.values())


def batch_for_budget(
    requested: int, budget: int, fixed_bytes: int, sample_bytes: int, headroom: float = 1.5
) -> int:
    """Largest batch <= requested whose estimated peak fits in `budget` bytes.

    peak = fixed (weights, gradients, Adam moments, loss network) + batch * sample * headroom
    (headroom covers the gradients of the activations during backward).
    """
    per_sample = max(1, int(sample_bytes * headroom))
    fits = (budget - fixed_bytes) // per_sample
    if fits < 1:
        need = (fixed_bytes + per_sample) / 2**30
        raise InputError(
            f"--max-memory {budget / 2**30:.2f} GiB is too small for PTI: batch 1 needs about "
            f"{need:.2f} GiB; raise it"
        )
    return int(min(requested, fits))


def _fixed_bytes(params: list[nn.Parameter], others: list[nn.Module]) -> int:
    tuned = sum(p.numel() * p.element_size() for p in params)
    frozen = sum(p.numel() * p.element_size() for m in others for p in m.parameters())
    return 4 * tuned + frozen  # weights + gradients + two Adam moments


# ----------------------------------------------------------------------------- the loop


class PivotalTuner:
    """Tunes `generator` in place over a clip. Call `run()`; it resumes from `checkpoint`.

    generator: StyleGAN3 generator (synthesis(ws, transform=[B,3,3])).
    perceptual: LPIPS module, perceptual(x, y) for images in [-1, 1] -> [B] or [B,1,1,1].
    pivots: [N,num_ws,512] latents (memmap fine); transforms: [N,3,3] input transforms.
    targets: the unaligned crops, TargetFrames.
    """

    def __init__(
        self,
        generator: nn.Module,
        perceptual: nn.Module,
        pivots: np.ndarray,
        transforms: np.ndarray,
        targets: TargetFrames,
        config: PTIConfig,
        device: torch.device,
        checkpoint: Path,
    ) -> None:
        if not (len(pivots) == len(transforms) == len(targets) > 0):
            raise ValueError(f"{len(pivots)} pivots, {len(transforms)} transforms, {len(targets)}")
        self.generator, self.perceptual = generator, perceptual
        self.pivots, self.transforms, self.targets = pivots, transforms, targets
        self.config, self.device, self.checkpoint = config, device, checkpoint
        self.params = freeze_for_pti(generator)
        perceptual.requires_grad_(False).eval()
        self.optimizer = torch.optim.Adam(self.params, lr=config.lr)
        self.amp = config.amp and device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.step = 0
        self.cursor = 0
        self.batch = config.batch
        self.latest_lpips = np.full(len(targets), np.inf)
        self.log: list[tuple[float, float]] = []
        self.stopped_early = False

    # -- one step ------------------------------------------------------------------------

    def _losses(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(total loss, per-sample mse [B], per-sample lpips [B]) for the frames `indices`."""
        ws = to_tensor(self.pivots[indices], self.device)
        transforms = to_tensor(self.transforms[indices], self.device)
        target = self.targets.batch(indices, self.device)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            image = synthesize(self.generator, ws, transforms, force_fp32=not self.amp)
            lpips = self.perceptual(image, target).float().reshape(len(indices), -1).mean(1)
        mse = (image.float() - target).square().flatten(1).mean(1)
        total = self.config.mse_weight * mse.mean() + self.config.lpips_weight * lpips.mean()
        return total, mse, lpips

    def _train_step(self, indices: np.ndarray) -> tuple[float, float]:
        self.optimizer.zero_grad(set_to_none=True)
        total, mse, lpips = self._losses(indices)
        self.scaler.scale(total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        values = lpips.detach().cpu().numpy().astype(np.float64)
        self.latest_lpips[indices] = values
        return float(mse.detach().mean()), float(values.mean())

    def _should_stop(self) -> bool:
        threshold = self.config.early_stop_lpips
        if threshold is None or not np.all(np.isfinite(self.latest_lpips)):
            return False
        return float(self.latest_lpips.mean()) < threshold

    def fit_batch_to_budget(self) -> None:
        """Lower self.batch to what `config.max_memory_bytes` allows (measured at batch 1)."""
        budget = self.config.max_memory_bytes
        if budget is None:
            return
        first = sample_indices(self.config.seed, len(self.targets), 0, 1)
        sample = measure_sample_bytes(lambda _: self._losses(first)[0])
        fixed = _fixed_bytes(self.params, [self.perceptual, self.generator.mapping])
        self.batch = batch_for_budget(self.batch, budget, fixed, sample)

    # -- checkpoints ---------------------------------------------------------------------

    def _fingerprint(self) -> list:
        return [CHECKPOINT_VERSION, len(self.targets), self.config.seed, self.config.lr]

    def save(self) -> None:
        state = {
            "fingerprint": self._fingerprint(),
            "step": self.step,
            "cursor": self.cursor,
            "batch": self.batch,
            "stopped_early": self.stopped_early,
            "synthesis": tuned_state(self.generator),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "latest_lpips": torch.from_numpy(self.latest_lpips.copy()),
            "log": torch.tensor(self.log, dtype=torch.float64).reshape(-1, 2),
            "torch_rng": torch.get_rng_state(),
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        with atomic_path(self.checkpoint) as tmp:
            torch.save(state, tmp)

    def load(self) -> bool:
        """Restore from the checkpoint if there is a usable one; True if restored."""
        if not self.checkpoint.exists():
            return False
        state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
        if state.get("fingerprint") != self._fingerprint():
            return False
        load_tuned_state(self.generator, state["synthesis"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.step, self.cursor, self.batch = state["step"], state["cursor"], state["batch"]
        self.stopped_early = bool(state["stopped_early"])
        self.latest_lpips = state["latest_lpips"].numpy().copy()
        self.log = [tuple(row) for row in state["log"].tolist()]
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        return True

    # -- the run -------------------------------------------------------------------------

    def steps(self) -> Iterator[int]:
        """Run to the end (or early stop), yielding the step number after each step."""
        config = self.config
        if self.device.type == "cuda":
            # Same seed, same result: no autotuned (run-dependent) convolution algorithms.
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        if not self.load():
            torch.manual_seed(config.seed)
            self.fit_batch_to_budget()
        self.generator.eval()  # SG3 has no train-time behaviour; eval keeps EMAs frozen
        while self.step < config.steps and not self.stopped_early:
            indices = sample_indices(config.seed, len(self.targets), self.cursor, self.batch)
            try:
                self.log.append(self._train_step(indices))
            except torch.OutOfMemoryError:
                if self.batch == 1:
                    raise
                self.batch //= 2  # retry the same samples with half the batch
                self.optimizer.zero_grad(set_to_none=True)
                torch.cuda.empty_cache()
                continue
            self.cursor += self.batch
            self.step += 1
            self.stopped_early = self._should_stop()
            if self.step % config.checkpoint_every == 0 or self.stopped_early:
                self.save()
            yield self.step
        self.generator.requires_grad_(False)

    def run(self) -> PTIResult:
        for _ in self.steps():
            pass
        return self.result()

    def result(self) -> PTIResult:
        def at(k: int, j: int) -> float | None:
            if not self.log:
                return None
            mse, lpips = self.log[k]
            return [mse, lpips, self.config.mse_weight * mse + self.config.lpips_weight * lpips][j]

        return PTIResult(
            steps=self.step,
            batch=self.batch,
            stopped_early=self.stopped_early,
            loss_first=at(0, 2),
            loss_last=at(-1, 2),
            lpips_first=at(0, 1),
            lpips_last=at(-1, 1),
            log=[tuple(map(float, row)) for row in self.log],
        )


# ----------------------------------------------------------------------------- weights


def tuned_state(generator: nn.Module) -> dict[str, torch.Tensor]:
    """The synthesis state that PTI changes, on CPU (the transform buffer is left out)."""
    names = {name for name, _ in pti_parameters(generator)}
    return {
        name: tensor.detach().cpu().clone()
        for name, tensor in generator.synthesis.state_dict().items()
        if name in names
    }


def load_tuned_state(generator: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy tuned synthesis weights (from `tuned_state`) into `generator`."""
    expected = {name for name, _ in pti_parameters(generator)}
    if set(state) != expected:
        from ganvid.errors import CheckpointError

        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise CheckpointError(
            f"tuned weights do not match the generator (missing {missing[:3]}, extra {extra[:3]}); "
            "rerun with --fresh"
        )
    with torch.no_grad():
        for name, param in pti_parameters(generator):
            param.copy_(state[name].to(param.device, param.dtype))


def save_tuned(generator: nn.Module, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(tuned_state(generator), tmp)


def load_tuned(generator: nn.Module, path: Path) -> None:
    load_tuned_state(generator, torch.load(path, map_location="cpu", weights_only=True))


def default_steps(device: torch.device) -> int:
    return GPU_DEFAULT_STEPS if device.type == "cuda" else CPU_DEFAULT_STEPS


# ----------------------------------------------------------------------------- clip and shots


def tune_frames(
    generator: nn.Module,
    perceptual: nn.Module,
    pivots: np.ndarray,
    transforms: np.ndarray,
    cutter,
    cache: FrameDir,
    config: PTIConfig,
    device: torch.device,
    checkpoint: Path,
    frames: np.ndarray | None = None,
    label: str = "pti",
) -> PTIResult:
    """Tune `generator` in place on the clip's `frames` (None: every frame), with a progress bar.

    pivots [N,num_ws,512], transforms [N,3,3]: every frame's (only the rows of `frames` are read).
    cutter: the work dir's `ganvid.pipeline.crops.CropCutter`; the targets are cut from the clip
    once into `cache` (resumable), which the caller deletes when the weights are saved.
    checkpoint: where the run resumes from.
    """
    from ganvid.pipeline.crops import cache_unaligned
    from ganvid.ui import stage_bar

    if config.steps > 0:
        cache_unaligned(cutter, cache, f"{label} targets", frames)
    resolution = generator.img_resolution
    if frames is None:
        targets = TargetFrames(cache, len(transforms), resolution, config.cache_frames)
    else:
        pivots, transforms = FrameRows(pivots, frames), FrameRows(transforms, frames)
        targets = TargetFrames(cache, len(frames), resolution, config.cache_frames, frames)
    tuner = PivotalTuner(
        generator, perceptual, pivots, transforms, targets, config, device, checkpoint
    )
    with stage_bar(label, config.steps) as update:
        for step in tuner.steps():
            update(completed=step)
    return tuner.result()


def tune_shots(
    new_generator: Callable[[], nn.Module],
    perceptual: nn.Module,
    pivots: np.ndarray,
    transforms: np.ndarray,
    shot_ids: np.ndarray,
    cutter,
    layout: Layout,
    config: PTIConfig,
    device: torch.device,
) -> dict:
    """PTI per shot: a fresh copy of the pretrained generator (`new_generator()`) per shot,
    tuned with `config` on that shot's frames only (pivots, transforms, crops) ->
    pti/shots/<shot>.pt, and pti/log.json ({"per_shot": true, "shots": [each finished shot's
    PTIResult with its shot id, frame count and first frame]}) rewritten after every shot.

    Resumable: a shot whose weights and log entry are there is skipped; the shot being tuned
    resumes from its own checkpoint. The targets cache holds one shot's crops at a time.
    Returns the stage summary (`shots_summary`).
    """
    shots = [int(shot) for shot in np.unique(shot_ids)]
    logged = (read_json(layout.pti_log) or {}).get("shots", [])
    done = {int(e["shot"]): e for e in logged if layout.pti_shot(e["shot"]).exists()}
    cache = FrameDir(layout.pti_targets)
    for number, shot in enumerate(shots, 1):
        if shot in done:
            continue
        frames = np.flatnonzero(shot_ids == shot)
        generator = new_generator()
        checkpoint = layout.pti_shot_checkpoint(shot)
        label = f"pti shot {number}/{len(shots)}"
        result = tune_frames(
            generator,
            perceptual,
            pivots,
            transforms,
            cutter,
            cache,
            config,
            device,
            checkpoint,
            frames,
            label,
        )
        entry = {"shot": shot, "frames": len(frames), "first_frame": int(frames[0])}
        done[shot] = {**entry, **asdict(result)}
        # the log first: weights on disk always have their entry (a kill in between retunes
        # the shot from its checkpoint, to the same weights)
        atomic_write_json(
            layout.pti_log, {"per_shot": True, "shots": [done[s] for s in sorted(done)]}
        )
        save_tuned(generator, layout.pti_shot(shot))
        checkpoint.unlink(missing_ok=True)
        shutil.rmtree(cache.path, ignore_errors=True)
    for shot in shots:  # left by a kill between a shot's weights and its checkpoint's removal
        layout.pti_shot_checkpoint(shot).unlink(missing_ok=True)
    return shots_summary([done[shot] for shot in shots])


def shots_summary(entries: list[dict]) -> dict:
    """The PTI stage's summary over shots (the keys of a per-clip PTIResult, without its log):
    shot count, steps in all, the smallest batch, whether every shot stopped early, and the
    first and last losses as means over the shots weighted by their frame counts."""

    def mean(key: str) -> float | None:
        pairs = [(e[key], e["frames"]) for e in entries if e[key] is not None]
        if not pairs:
            return None
        return float(sum(v * n for v, n in pairs) / sum(n for _, n in pairs))

    return {
        "shots": len(entries),
        "steps": int(sum(e["steps"] for e in entries)),
        "batch": int(min(e["batch"] for e in entries)),
        "stopped_early": all(e["stopped_early"] for e in entries),
        **{key: mean(key) for key in ("loss_first", "loss_last", "lpips_first", "lpips_last")},
    }


class TunedWeights:
    """A generator holding a work dir's PTI weights for whatever frames it draws: the one
    machinery every consumer of the tuned weights renders through.

    Per clip: pti/generator.pt, loaded once. Per shot (`tune_shots`): the weights of the shot
    being drawn, loaded when the shot changes (one state copy; the current shot is kept, so
    batches do not reload), and `render_frames` never puts two shots in one batch.
    """

    def __init__(self, generator: nn.Module, layout: Layout, per_shot: bool) -> None:
        self.generator, self.layout = generator, layout
        self.shot_ids = np.load(layout.geometry_npz)["shot_ids"] if per_shot else None
        self.shot: int | None = None
        """The shot whose weights are loaded (per shot)."""
        self.loads = 0
        """Weight loads so far (per shot: one per change of shot)."""
        if not per_shot:
            load_tuned(generator, layout.pti_generator)
            self.loads = 1

    @property
    def per_shot(self) -> bool:
        return self.shot_ids is not None

    def use_shot(self, shot: int) -> None:
        """Load shot `shot`'s weights unless they are the ones loaded."""
        if shot == self.shot:
            return
        path = self.layout.pti_shot(shot)
        if not path.exists():
            raise WorkdirError(
                f"{path} is missing: the per-shot PTI is incomplete; rerun `ganvid invert` "
                "with --pti-per-shot"
            )
        load_tuned(self.generator, path)
        self.shot = shot
        self.loads += 1

    def shot_runs(self, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        """(shot, frames) for each run of consecutive `indices` in one shot (per shot)."""
        indices = np.asarray(list(indices), dtype=np.int64)
        if len(indices) == 0:
            return
        starts = np.flatnonzero(np.diff(self.shot_ids[indices])) + 1
        for run in np.split(indices, starts):
            yield int(self.shot_ids[run[0]]), run

    def render_frames(
        self,
        job: RenderJob,
        device: torch.device,
        batch: int = 4,
        indices: Sequence[int] | None = None,
    ) -> Iterator[tuple[int, np.ndarray]]:
        """`ganvid.pipeline.render.render_frames` through this generator, each batch drawn
        with its shot's weights (per clip: exactly that function's batches)."""
        if not self.per_shot:
            yield from render_frames(self.generator, job, device, batch, indices)
            return
        for shot, run in self.shot_runs(range(len(job)) if indices is None else indices):
            self.use_shot(shot)
            yield from render_frames(self.generator, job, device, batch, run)
