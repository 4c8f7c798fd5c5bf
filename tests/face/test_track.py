"""Temporal geometry on plain arrays: zero-lag smoothing and gaps (face tracks and shot cuts on
real photos: tests/face/test_tracks.py)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import savgol_filter

from ganvid.errors import NoFaceError
from ganvid.face.track import fill_gaps, smooth_series


def test_without_gaps_it_is_the_savitzky_golay_filter():
    x = np.random.default_rng(0).normal(size=(40, 3))
    expected = savgol_filter(x, 9, 2, axis=0, mode="interp")
    np.testing.assert_allclose(smooth_series(x, 9, 2, despike=False), expected, atol=1e-10)


def test_removes_jitter_without_lagging_motion():
    """Why this smoother: a head moving at constant speed (and accelerating) comes out exactly,
    with no delay even at the clip's ends, while per-frame detector jitter loses most of its
    variance. A causal filter (exponential average) of similar strength lags by frames."""
    frames = np.arange(120, dtype=np.float64)
    linear = 3.0 * frames  # 3 px per frame
    quadratic = 0.05 * (frames - 30) ** 2
    for motion in (linear, quadratic):
        exact = smooth_series(motion[:, None], despike=False)[:, 0]
        np.testing.assert_allclose(exact, motion, atol=1e-8)
    np.testing.assert_allclose(smooth_series(linear[:, None])[:, 0], linear, atol=1e-8)
    # the glitch-removing median only shaves the turning point (step there: 0.05 px)
    np.testing.assert_allclose(smooth_series(quadratic[:, None])[:, 0], quadratic, atol=0.02)
    jitter = np.random.default_rng(1).normal(0.0, 1.0, 120)
    smoothed = smooth_series((linear + jitter)[:, None])[:, 0]
    residual = smoothed - linear
    assert jitter.var() / residual.var() > 3.0
    # lag: where the smoothed curve crosses a level, versus the truth (in frames)
    lag = np.mean(np.interp(linear[10:-10], smoothed, frames) - frames[10:-10])
    assert abs(lag) < 1.0
    ema = np.zeros(120)
    ema[0] = linear[0] + jitter[0]
    for i in range(1, 120):
        ema[i] = 0.75 * ema[i - 1] + 0.25 * (linear[i] + jitter[i])
    assert np.mean(np.interp(linear[10:-10], ema, frames) - frames[10:-10]) > 2.0


def test_a_one_frame_glitch_is_removed():
    x = np.linspace(0, 20, 30)[:, None]
    glitched = x.copy()
    glitched[12] += 25.0  # the detector jumped onto something else for one frame
    assert np.abs(smooth_series(glitched) - x).max() < 0.5


def test_gaps_are_filled_along_the_motion_and_held_at_the_ends():
    frames = np.arange(30, dtype=np.float64)
    motion = 0.1 * (frames - 10) ** 2  # accelerating
    x = motion[:, None].copy()
    x[[0, 1, 11, 12, 20, 21, 22, 23, 24, 25, 26, 29]] = np.nan
    out = smooth_series(x, window=9)[:, 0]
    assert np.isfinite(out).all() and len(out) == 30
    np.testing.assert_allclose(out[[11, 12]], motion[[11, 12]], atol=1e-8)  # short: on the curve
    known = np.array([19, 27])  # long gap: a straight line between its ends
    np.testing.assert_allclose(out[20:27], np.interp(frames[20:27], known, out[known]))
    assert out[0] == out[1] == pytest.approx(out[2])  # held before the first detection
    assert out[29] == pytest.approx(out[28])


def test_smoothing_never_mixes_shots():
    x = np.concatenate([np.zeros(10), np.full(10, 100.0)])[:, None]
    shots = np.repeat([0, 1], 10)
    np.testing.assert_allclose(smooth_series(x, shot_ids=shots), x, atol=1e-9)
    assert np.abs(smooth_series(x) - x).max() > 10  # what would happen across the cut


def test_fill_gaps_borrows_for_a_shot_without_face_and_fails_without_any():
    x = np.full((6, 2), np.nan)
    x[:3] = [[1.0, 2.0]]
    filled, missing = fill_gaps(x, np.repeat([0, 1], 3))
    np.testing.assert_allclose(filled, [[1.0, 2.0]] * 6)
    assert missing.tolist() == [False] * 3 + [True] * 3
    with pytest.raises(NoFaceError, match="no face"):
        fill_gaps(np.full((4, 2), np.nan))
