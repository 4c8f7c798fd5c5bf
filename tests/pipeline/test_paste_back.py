import numpy as np
import pytest
from skimage.data import astronaut

from ganvid.face.align import alignment_quad, crop_from_quad
from ganvid.face.landmarks import make_detector
from ganvid.pipeline.paste_back import PasteBack, PasteConfig


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
