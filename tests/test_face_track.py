"""Temporal geometry on plain arrays: zero-lag smoothing, gaps, face following, shot cuts."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import savgol_filter

from ganvid.errors import NoFaceError
from ganvid.face.landmarks import Face
from ganvid.face.track import (
    FaceTracker,
    TrackConfig,
    detect_shots,
    fill_gaps,
    smooth_series,
)


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


def square_face(cx: float, cy: float, side: float) -> Face:
    box = np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])
    grid = np.linspace(-side / 2, side / 2, 68)
    points = np.stack([cx + grid, cy + grid[::-1] * 0.8], axis=1)
    return Face(box=box, score=1.0, points=points)


def two_faces(k: int, rng) -> list[Face]:
    """Left face shrinks 100 -> 60 px, right grows 60 -> 100 px; listed in random order."""
    faces = [square_face(100 + k, 100, 100 - 4 * k), square_face(300 - k, 110, 60 + 4 * k)]
    rng.shuffle(faces)
    return faces


@pytest.mark.parametrize("index, start_x", [(0, 100.0), (1, 300.0)])
def test_tracker_follows_the_chosen_person(index, start_x):
    rng = np.random.default_rng(3)
    tracker = FaceTracker(TrackConfig(face_index=index))
    followed = []
    for k in range(11):
        faces = [] if k == 4 else two_faces(k, rng)  # one frame with no detection
        followed.append(tracker.update(faces).face)
    assert followed[4] is None
    centres = [f.box[[0, 2]].mean() for f in followed if f is not None]
    direction = 1 if start_x < 200 else -1
    np.testing.assert_allclose(centres, [start_x + direction * k for k in range(11) if k != 4])


def test_tracker_waits_for_the_requested_face_and_reacquires_a_lost_one():
    tracker = FaceTracker(TrackConfig(face_index=1, reacquire_after=3))
    assert tracker.update([square_face(100, 100, 80)]).face is None  # only one face yet
    step = tracker.update([square_face(100, 100, 80), square_face(300, 100, 60)])
    assert step.face is not None and step.face.box[0] == 270
    elsewhere = [square_face(500, 300, 70)]
    steps = [tracker.update(elsewhere) for _ in range(4)]
    assert [s.face is None for s in steps] == [True, True, True, False]
    assert steps[-1].reacquired


def test_shots_cut_on_scene_change_not_on_blank_frames():
    count = 12
    points = np.tile(np.linspace(0, 50, 68)[:, None], (count, 1, 2)).astype(float)
    points[[3, 4]] = np.nan  # blank frames: no face
    scene = np.full(count, 0.01)
    scene[[3, 4]] = np.nan
    frames = np.full(count, 0.01)
    frames[[3, 5]] = 0.6  # into and out of the blank frames
    none = np.zeros(count, bool)
    assert detect_shots(points, scene, frames, none).tolist() == [0] * count
    points[8:] += 80  # the face jumps and the picture changes: a cut
    scene[8], frames[8] = 0.12, 0.2
    assert detect_shots(points, scene, frames, none).tolist() == [0] * 8 + [1] * 4
    scene[8] = 0.3  # a strong scene change alone is a cut
    points[8:] -= 80
    assert detect_shots(points, scene, frames, none).tolist() == [0] * 8 + [1] * 4
