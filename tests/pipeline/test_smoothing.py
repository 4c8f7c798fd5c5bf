"""Temporal smoothing: no frame lost, constants kept, spikes damped, rotations stay rotations."""

from __future__ import annotations

import numpy as np
import pytest

from ganvid.nn.sg3_transforms import user_matrix
from ganvid.pipeline.smoothing import (
    TEMPORAL_TAPS,
    replace_fine_layers,
    shot_wplus,
    smooth_along_time,
    smooth_transform_params,
    smooth_ws_file,
    wplus_samples,
)
from ganvid.pipeline.workdir import FrameDir


@pytest.mark.parametrize("count", [1, 2, 3, 5, 12])
def test_n_frames_in_n_frames_out_and_constants_kept(count):
    ws = np.broadcast_to(np.random.default_rng(0).normal(size=(1, 16, 512)), (count, 16, 512))
    out = smooth_along_time(ws)
    assert out.shape == ws.shape
    np.testing.assert_allclose(out, ws, atol=1e-12)


def test_interior_frames_use_the_anchor_filter_and_edges_renormalise():
    x = np.random.default_rng(1).normal(size=(9, 4))
    out = smooth_along_time(x)
    np.testing.assert_allclose(out[4], TEMPORAL_TAPS @ x[2:7])
    expected_first = (1.0 * x[0] + 0.75 * x[1] + 0.25 * x[2]) / 2.0
    np.testing.assert_allclose(out[0], expected_first)


def test_single_frame_spike_is_attenuated_and_spread_to_neighbours():
    x = np.zeros((12, 16, 512))
    x[6] = 1.0
    out = smooth_along_time(x)
    assert out[6].max() < 0.5
    assert out[5].max() > 0 and out[8].max() > 0
    assert out[0].max() == 0 and out[11].max() == 0


def test_shots_do_not_mix():
    x = np.concatenate([np.zeros((5, 3)), np.ones((5, 3))])
    shots = np.array([0] * 5 + [1] * 5)
    out = smooth_along_time(x, shots)
    np.testing.assert_array_equal(out, x)
    assert smooth_along_time(x)[4].max() > 0  # without shot ids the cut is blurred


def test_transforms_stay_orthonormal_and_angles_wrap():
    rng = np.random.default_rng(2)
    params = np.stack(
        [rng.uniform(-180, 180, 12), rng.normal(0, 0.05, 12), rng.normal(0, 0.05, 12)], axis=1
    )
    out = smooth_transform_params(params)
    assert out.shape == (12, 3)
    for row in out:
        rotation = user_matrix(*row)[:2, :2]
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(2), atol=1e-12)
    wrap = np.array([[179.0, 0, 0], [-179.0, 0, 0], [179.0, 0, 0]])
    assert np.all(np.abs(np.abs(smooth_transform_params(wrap)[:, 0]) - 180) < 1.5)


def test_constant_transform_is_unchanged():
    params = np.tile([[12.5, 0.1, -0.03]], (7, 1))
    np.testing.assert_allclose(smooth_transform_params(params), params, atol=1e-12)


def test_fine_layers_replaced_by_shot_mean_only():
    ws = np.random.default_rng(3).normal(size=(6, 16, 512))
    shots = np.array([0, 0, 0, 1, 1, 1])
    out = replace_fine_layers(ws, shots)
    np.testing.assert_array_equal(out[:, :9], ws[:, :9])
    np.testing.assert_allclose(out[0, 9:], ws[:3, 9:].mean(axis=0))
    np.testing.assert_allclose(out[5, 9:], ws[3:, 9:].mean(axis=0))


@pytest.mark.parametrize("fine", [False, True])
def test_streaming_file_version_matches_in_memory(tmp_path, fine):
    ws = np.random.default_rng(4).normal(size=(23, 16, 512)).astype(np.float32)
    shots = np.array([0] * 10 + [1] * 13)
    np.save(tmp_path / "ws.npy", ws)
    smooth_ws_file(tmp_path / "ws.npy", tmp_path / "out.npy", shots, fine_layer_mean=fine, chunk=4)
    expected = replace_fine_layers(ws, shots) if fine else ws
    expected = smooth_along_time(expected, shots)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, rtol=1e-5, atol=1e-6)


def test_wplus_is_one_mean_per_shot_or_smoothed(tmp_path):
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(9, 18, 8)).astype(np.float32)
    shots = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])
    detected = np.array([1, 0, 1, 1, 1, 1, 1, 0, 1], dtype=bool)
    per_frame = FrameDir(tmp_path / "frames", ".npy")
    for index, row in enumerate(raw):
        per_frame.write(index, row)
    # "mean": frames with a face only, evenly spread, at most per_shot of them per shot
    assert wplus_samples(shots, detected, "mean") == [0, 2, 3, 4, 5, 6, 8]
    samples = wplus_samples(shots, detected, "mean", per_shot=2)
    assert samples == [0, 3, 4, 8]
    shot_wplus(per_frame, tmp_path / "mean.npy", shots, samples, "mean")
    mean = np.load(tmp_path / "mean.npy")
    for rows, frames in ((slice(0, 4), [0, 3]), (slice(4, 9), [4, 8])):
        expected = raw[frames].mean(0)[None].repeat(len(mean[rows]), 0)
        np.testing.assert_allclose(mean[rows], expected, atol=1e-6)
    # "smooth": every frame, the 5-tap filter within each shot
    assert wplus_samples(shots, detected, "smooth") == list(range(9))
    shot_wplus(
        per_frame, tmp_path / "smooth.npy", shots, list(range(9)), "smooth", tmp_path / "raw.npy"
    )
    expected = smooth_along_time(raw, shots)
    np.testing.assert_allclose(np.load(tmp_path / "smooth.npy"), expected, atol=1e-6)
