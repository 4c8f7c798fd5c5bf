"""Temporal smoothing of per-frame latents and transforms; w+ per shot for the StyleGANEX jobs.

The filter is the stylegan3-editing video filter: taps [0.25, 0.75, 1, 0.75, 0.25] / 3 over
frames i-2..i+2. Unlike that code (which returns N-4 frames), ganvid keeps every frame: at the
edges of the clip, and of each shot when shot ids are given, the taps that fall outside are
dropped and the remaining ones are rescaled to sum to 1. So frame 0 is
(1*x0 + 0.75*x1 + 0.25*x2) / 2, a constant sequence stays constant, and N frames give N frames.
Shots never mix: a cut is an edge for the frames on both sides of it.

Transforms are smoothed as parameters (angle_deg, tx_frac, ty_frac): the angle through its unit
vector (cos, sin), filtered and renormalised by atan2, so the matrices rebuilt from the result
are exact rotations (orthonormal) and a wrap from 179 to -179 degrees does not average to 0.

Everything streams: `smooth_ws_file` reads a [N,16,512] .npy through a memmap in chunks, so
memory does not grow with the clip.

w+ per shot (the StyleGANEX jobs: `wplus_samples`, `shot_wplus`). "mean" (default): one w+
per shot, the mean over up to 32 of the shot's frames with a detected face, evenly spread (over
all of its frames if none has one). This is the official fixed w+ (only the first-layer feature
varies, which the video models were trained for with their temporal loss), made robust: it does
not hang on one frame's expression or blur, and a cut gets a new w+; the encoder runs 32 times
per shot, not once per frame. "smooth": the per-frame w+ through the 5-tap filter above within
each shot (follows slow changes of the face's appearance, at the price of some texture flicker).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np

from ganvid.errors import InputError
from ganvid.face.track import shot_ranges
from ganvid.pipeline.workdir import FrameDir, atomic_path, gather_arrays

WplusMode = Literal["mean", "smooth"]

TEMPORAL_TAPS = np.array([0.25, 0.75, 1.0, 0.75, 0.25]) / 3.0
"""Weights for frames i-2, i-1, i, i+1, i+2 (sum 1)."""

FINE_LAYERS_FIRST = 9
"""W+ layers 9..15 (the fine ones) can be replaced by their mean over the clip (or shot)."""


def smooth_range(
    x: np.ndarray, start: int, stop: int, shot_ids: np.ndarray | None = None
) -> np.ndarray:
    """Smoothed frames start..stop-1 of x [N, ...] (float64), reading only x[start-2 : stop+2].

    Works on memmaps: only the rows in the window are touched.
    """
    count = len(x)
    half = len(TEMPORAL_TAPS) // 2
    lo_read, hi_read = max(0, start - half), min(count, stop + half)
    window = np.asarray(x[lo_read:hi_read], dtype=np.float64)
    total = np.zeros((stop - start, *x.shape[1:]), dtype=np.float64)
    weight = np.zeros(stop - start, dtype=np.float64)
    for seg_start, seg_stop in shot_ranges(count, shot_ids):
        for tap, w in enumerate(TEMPORAL_TAPS):
            offset = tap - half
            # outputs i with i in [start, stop) ∩ [seg_start, seg_stop) and i+offset in the shot
            lo = max(start, seg_start, seg_start - offset)
            hi = min(stop, seg_stop, seg_stop - offset)
            if lo >= hi:
                continue
            total[lo - start : hi - start] += (
                w * window[lo + offset - lo_read : hi + offset - lo_read]
            )
            weight[lo - start : hi - start] += w
    return total / weight.reshape(-1, *([1] * (x.ndim - 1)))


def smooth_along_time(x: np.ndarray, shot_ids: np.ndarray | None = None) -> np.ndarray:
    """x [N, ...] -> [N, ...] float64, the 5-tap filter along axis 0 (edges renormalised)."""
    return smooth_range(x, 0, len(x), shot_ids)


def smooth_transform_params(params: np.ndarray, shot_ids: np.ndarray | None = None) -> np.ndarray:
    """params [N,3] = (angle_deg, tx_frac, ty_frac) per frame -> smoothed [N,3] float64.

    The angle is smoothed as a unit vector and renormalised (atan2), so rotations stay exact;
    the translations are smoothed linearly.
    """
    params = np.asarray(params, dtype=np.float64).reshape(-1, 3)
    angle = np.radians(params[:, 0])
    stacked = np.stack([np.cos(angle), np.sin(angle), params[:, 1], params[:, 2]], axis=1)
    smooth = smooth_along_time(stacked, shot_ids)
    out = np.empty_like(params)
    out[:, 0] = np.degrees(np.arctan2(smooth[:, 1], smooth[:, 0]))
    out[:, 1:] = smooth[:, 2:]
    return out


def _chunks(count: int, chunk: int) -> Iterator[tuple[int, int]]:
    for start in range(0, count, chunk):
        yield start, min(count, start + chunk)


def fine_layer_means(
    ws: np.ndarray,
    shot_ids: np.ndarray | None = None,
    first_layer: int = FINE_LAYERS_FIRST,
    chunk: int = 256,
) -> np.ndarray:
    """Mean of ws[:, first_layer:] over each frame's shot -> [S, L, 512] for the S segments."""
    segments = shot_ranges(len(ws), shot_ids)
    means = np.zeros((len(segments), *ws[:1, first_layer:].shape[1:]), dtype=np.float64)
    for k, (seg_start, seg_stop) in enumerate(segments):
        for lo, hi in _chunks(seg_stop - seg_start, chunk):
            rows = np.asarray(ws[seg_start + lo : seg_start + hi, first_layer:], dtype=np.float64)
            means[k] += rows.sum(axis=0)
        means[k] /= seg_stop - seg_start
    return means


def replace_fine_layers(
    ws: np.ndarray, shot_ids: np.ndarray | None = None, first_layer: int = FINE_LAYERS_FIRST
) -> np.ndarray:
    """ws [N,16,512] with layers first_layer.. replaced by their mean over the clip (or shot)."""
    out = np.array(ws, dtype=np.float64, copy=True)
    means = fine_layer_means(ws, shot_ids, first_layer)
    for k, (seg_start, seg_stop) in enumerate(shot_ranges(len(ws), shot_ids)):
        out[seg_start:seg_stop, first_layer:] = means[k]
    return out


def smooth_ws_file(
    source: Path,
    target: Path,
    shot_ids: np.ndarray | None = None,
    fine_layer_mean: bool = False,
    smooth: bool = True,
    chunk: int = 256,
) -> None:
    """Stream ws [N,16,512] from `source` .npy to `target` .npy (float32), smoothed.

    fine_layer_mean: first replace layers 9..15 by their mean over the shot (as the anchor does
    over the whole clip), then filter. smooth=False only copies (and applies the mean).
    """
    ws = np.load(source, mmap_mode="r")
    shot_ids = None if shot_ids is None else np.asarray(shot_ids).reshape(-1)
    segments = shot_ranges(len(ws), shot_ids)
    means = fine_layer_means(ws, shot_ids, chunk=chunk) if fine_layer_mean else None
    segment_of = np.zeros(len(ws), dtype=np.int64)
    for k, (seg_start, seg_stop) in enumerate(segments):
        segment_of[seg_start:seg_stop] = k
    with atomic_path(target) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=ws.shape)
        for lo, hi in _chunks(len(ws), chunk):
            half = len(TEMPORAL_TAPS) // 2
            lo_read, hi_read = max(0, lo - half), min(len(ws), hi + half)
            rows = np.array(ws[lo_read:hi_read], dtype=np.float64)
            if means is not None:
                rows[:, FINE_LAYERS_FIRST:] = means[segment_of[lo_read:hi_read]]
            if smooth:
                ids = None if shot_ids is None else shot_ids[lo_read:hi_read]
                rows = smooth_range(rows, lo - lo_read, hi - lo_read, ids)
            else:
                rows = rows[lo - lo_read : hi - lo_read]
            out[lo:hi] = rows.astype(np.float32)
        out.flush()
        del out


# ----------------------------------------------------------------------------- w+ per shot

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
    for start, stop in shot_ranges(len(shot_ids), shot_ids):
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
    raw: Path | None = None,
) -> None:
    """Per-frame w+ files (those of `samples`) -> the w+ to render, [N,18,512] float32 .npy:
    "mean" = each shot's mean over its samples; "smooth" = every frame through the 5-tap
    temporal filter within its shot (the raw values are kept in `raw`, which "smooth" needs).
    Streams: memory holds one shot's mean (or one chunk of frames), never the clip."""
    shot_ids = np.asarray(shot_ids).reshape(-1)
    count = len(shot_ids)
    if mode == "smooth":
        if raw is None:
            raise ValueError('shot_wplus(mode="smooth") needs the path of the raw w+ (`raw`)')
        gather_arrays(per_frame, count, raw)
        smooth_ws_file(raw, target, shot_ids, smooth=True)
        return
    sampled = np.asarray(samples)
    first = per_frame.read(int(sampled[0]))
    with atomic_path(target) as tmp:
        out = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.float32, shape=(count, *first.shape)
        )
        for start, stop in shot_ranges(count, shot_ids):
            members = sampled[(sampled >= start) & (sampled < stop)]
            total = np.zeros(first.shape, dtype=np.float64)
            for index in members:
                total += per_frame.read(int(index))
            out[start:stop] = (total / len(members)).astype(np.float32)
        out.flush()
        del out
