import cv2
import numpy as np
import pytest
from skimage.data import astronaut

from ganvid.face.align import alignment_quad, crop_from_quad
from ganvid.face.landmarks import make_detector
from ganvid.face.windows import cut_window
from ganvid.pipeline.paste_back import PasteBack, PasteConfig, paste_config


@pytest.fixture(scope="module")
def scene():
    frame = np.ascontiguousarray(astronaut()[:, 60:420])  # 512x360, not square
    (face,) = sorted(make_detector().detect(frame), key=lambda f: -f.area)[:1]
    quad = alignment_quad(face.points)
    return frame, face.points, quad


def test_output_keeps_size_and_outside_pixels(scene):
    frame, points, quad = scene
    render = np.full((64, 64, 3), 200, np.uint8)  # a render that differs everywhere
    paste = PasteBack()
    out = paste(frame, render, quad, points)
    assert out.shape == frame.shape and out.dtype == np.uint8
    outside = paste.last_mask == 0
    assert np.array_equal(out[outside], frame[outside])
    changed = np.any(out != frame, axis=-1)
    assert changed.sum() > 500  # the face region was replaced
    ys, xs = np.nonzero(changed)
    centre = points.mean(axis=0)
    assert abs(xs.mean() - centre[0]) < 25 and abs(ys.mean() - centre[1]) < 40
    # Far from the face and hair (the top rows, the body) nothing changes.
    assert not changed[:10].any() and not changed[-150:].any()


def test_round_trip_with_full_mask_reproduces_the_frame(scene):
    frame, points, quad = scene
    crop = crop_from_quad(frame, quad, 256)
    out = PasteBack(PasteConfig(mask="full", temporal=0))(frame, crop, quad, points)
    # Compare well inside the crop footprint (its border is feathered on purpose).
    from ganvid.face.align import frame_to_quad_matrix

    to_crop = frame_to_quad_matrix(quad, 256)
    ys, xs = np.mgrid[0 : frame.shape[0], 0 : frame.shape[1]]
    u = to_crop[0, 0] * xs + to_crop[0, 1] * ys + to_crop[0, 2]
    v = to_crop[1, 0] * xs + to_crop[1, 1] * ys + to_crop[1, 2]
    inside = (u > 20) & (u < 236) & (v > 20) & (v < 236)
    error = np.abs(out[inside].astype(int) - frame[inside].astype(int))
    assert inside.sum() > 5000
    assert error.mean() < 4.0 and np.percentile(error, 99) < 40


def test_frame_without_face_passes_through_bit_exact(scene):
    frame, _, quad = scene
    out = PasteBack()(frame, np.zeros((64, 64, 3), np.uint8), quad, None)
    assert out is frame or np.array_equal(out, frame)


def test_mask_is_smoothed_over_time(scene):
    frame, points, quad = scene
    paste = PasteBack(PasteConfig(temporal=0.5))
    render = np.full((64, 64, 3), 255, np.uint8)
    first = paste(frame, render, quad, points)
    moved = points + np.array([30.0, 0.0])
    second = paste(frame, render, quad + np.array([30.0, 0.0]), moved)
    still = PasteBack(PasteConfig(temporal=0))(frame, render, quad + np.array([30.0, 0.0]), moved)
    # With temporal smoothing the second frame still blends part of the first frame's mask.
    assert not np.array_equal(second, still)
    assert first.shape == second.shape


def test_crop_partly_or_wholly_outside_the_frame(scene):
    frame, points, quad = scene
    render = np.full((64, 64, 3), 200, np.uint8)
    shift = np.array([-quad[:, 0].mean(), 0.0])  # the crop's centre on the left edge
    paste = PasteBack(PasteConfig(mask="full", temporal=0))
    out = paste(frame, render, quad + shift, points + shift)
    outside = paste.last_mask == 0
    assert out.shape == frame.shape and np.array_equal(out[outside], frame[outside])
    assert (~outside[:, :5]).any() and outside[:, -5:].all()
    far = np.array([-10_000.0, 0.0])
    assert np.array_equal(paste(frame, render, quad + far, points + far), frame)


# ----------------------------------------------------------------------------- window placement


def window_around(points: np.ndarray, shape: tuple[int, int], scale: float = 2.6) -> np.ndarray:
    """A sub-pixel window (x0, y0, w, h) around the landmarks, kept inside the frame."""
    centre = points.mean(axis=0) + np.array([0.37, -0.21])
    side = scale * np.ptp(points, axis=0)
    x0, y0 = np.clip(centre - side / 2, 0, None)
    w, h = np.minimum(side, np.array([shape[1] - x0, shape[0] - y0]))
    return np.array([x0, y0, w, h])


def outside_window(shape: tuple[int, int], box: np.ndarray) -> np.ndarray:
    """True for the frame pixels no part of the window (x0, y0, w, h) covers."""
    x0, y0, w, h = box
    outside = np.ones(shape, bool)
    outside[int(y0) : int(np.ceil(y0 + h)), int(x0) : int(np.ceil(x0 + w))] = False
    return outside


def test_window_round_trip_and_untouched_outside():
    noise = np.random.default_rng(1).integers(0, 256, (120, 200, 3), np.uint8)
    frame = cv2.GaussianBlur(noise, (0, 0), 3)
    box = np.array([30.4, 0.0, 100.8, 84.0])  # touches the top border
    crop = cut_window(frame, box, (48, 56))
    render = cv2.resize(crop, (224, 192), interpolation=cv2.INTER_CUBIC)  # the "4x" render
    config = paste_config("full", restyle=True, edge_feather_px=0.06)
    landmarks = np.full((68, 2), 60.0)  # "full" needs no face shape, only a face
    out = PasteBack(config).window(frame, render, box, landmarks)
    outside = outside_window(frame.shape[:2], box)
    assert np.array_equal(out[outside], frame[outside])
    interior = (slice(0, 70), slice(45, 115))  # feathered only away from the frame border
    assert np.abs(out[interior].astype(int) - frame[interior].astype(int)).mean() < 2.0


@pytest.mark.parametrize("mask", ["full", "hull"])
def test_moving_window_keeps_every_pixel_outside_it_bit_for_bit(scene, mask):
    """With temporal smoothing the previous frame's mask is blended in: it must never reach
    outside the current window."""
    frame, points, _ = scene
    paste = PasteBack(PasteConfig(mask=mask, temporal=0.6))
    render = np.full((150, 110, 3), 250, np.uint8)
    for step in range(4):
        shift = np.array([24.0 * step, 9.0 * step])
        box = window_around(points + shift, frame.shape[:2], scale=1.6)
        out = paste.window(frame, render, box, points + shift, shot=0)
        outside = outside_window(frame.shape[:2], box)
        assert np.array_equal(out[outside], frame[outside])
        assert np.any(out[~outside] != frame[~outside])
    assert paste.window(frame, render, box, None, shot=0) is frame  # no face: passed through


def seam_error(paste: PasteBack, frame: np.ndarray, out: np.ndarray) -> float:
    """Mean absolute difference from the frame in the blend's seam band (0.1 < mask < 0.9)."""
    band = (paste.last_mask > 0.1) & (paste.last_mask < 0.9)
    assert band.sum() > 200
    return float(np.abs(out[band].astype(int) - frame[band].astype(int)).mean())


def test_colour_match_hides_a_colour_shifted_render_in_the_seam(scene):
    frame, points, _ = scene
    box = window_around(points, frame.shape[:2])
    crop = cut_window(frame, box, (96, 96))
    shifted = np.clip(crop.astype(int) + (35, -25, 20), 0, 255).astype(np.uint8)
    render = cv2.resize(shifted, (384, 384), interpolation=cv2.INTER_CUBIC)
    errors = {}
    for match in (True, False):
        paste = PasteBack(PasteConfig(colour_match=match, temporal=0))
        errors[match] = seam_error(paste, frame, paste.window(frame, render, box, points))
    assert errors[False] > 10
    assert errors[True] < 0.4 * errors[False]


def test_temporal_smoothing_steadies_the_mask_of_jittered_landmarks(scene):
    frame, points, _ = scene
    jitter = np.random.default_rng(3).normal(0, 2.5, (12, 68, 2))
    box = window_around(points, frame.shape[:2])
    render = np.full((128, 128, 3), 200, np.uint8)
    change = {}
    for temporal in (0.0, 0.5):
        paste = PasteBack(PasteConfig(temporal=temporal))
        masks = []
        for noise in jitter:
            paste.window(frame, render, box, points + noise, shot=0)
            masks.append(paste.last_mask)
        change[temporal] = np.abs(np.diff(np.stack(masks), axis=0)).mean()
    assert change[0.5] < 0.6 * change[0.0]
    # a new shot starts from a fresh mask: as if nothing came before
    fresh = PasteBack(PasteConfig(temporal=0.5))
    expected = fresh.window(frame, render, box, points, shot=7)
    assert np.array_equal(paste.window(frame, render, box, points, shot=1), expected)
