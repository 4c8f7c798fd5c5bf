"""FFHQ quads, crops that map exactly back into the frame, and the unaligned window."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from support.face_clips import (
    ASTRONAUT_EYES,
    astronaut,
    astronaut_landmarks,
    dlib_detector,
    map_points,
    similarity,
)

from ganvid.face.align import (
    CropConfig,
    WindowConfig,
    align_face,
    alignment_quad,
    crop_from_quad,
    eye_centres,
    ffhq_crop,
    frame_to_quad_matrix,
    quad_angle_deg,
    quad_centre,
    quad_side,
    quad_to_frame_matrix,
    square_quad,
    unaligned_window,
)


def face_points(eye_left, eye_right, mouth_left, mouth_right) -> np.ndarray:
    """68 landmarks with only the points the FFHQ rule reads set (eyes 36-47, mouth 48/54)."""
    points = np.zeros((68, 2))
    points[36:42], points[42:48] = eye_left, eye_right
    points[48], points[54] = mouth_left, mouth_right
    return points


def test_ffhq_and_eyes_rules_by_hand():
    # eyes 40 px apart, mouth 50 px below: x = e2e + e2m turned = (90, 0) -> unit, then
    # ffhq half-side = max(2*40, 1.8*50) = 90, eyes rule 2*40 = 80; centre 0.1*e2m below eyes
    points = face_points((100, 100), (140, 100), (105, 150), (135, 150))
    quad = alignment_quad(points, "ffhq")
    np.testing.assert_allclose(quad, [[30, 15], [30, 195], [210, 195], [210, 15]], atol=1e-12)
    quad = alignment_quad(points, "eyes")
    np.testing.assert_allclose(quad, [[40, 25], [40, 185], [200, 185], [200, 25]], atol=1e-12)


def test_quad_follows_the_face_under_any_similarity():
    points = astronaut_landmarks()
    motion = similarity(23.0, 1.7, (224, 120), (300, 80))
    moved = alignment_quad(map_points(motion, points))
    np.testing.assert_allclose(moved, map_points(motion, alignment_quad(points)), atol=1e-9)
    assert quad_side(moved) == pytest.approx(1.7 * quad_side(alignment_quad(points)))


def blob_frame(centres, width=400, height=300, sigma=12.0) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    image = np.zeros((height, width))
    for cx, cy in centres:
        image += np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))
    return np.repeat(np.clip(image * 250, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def blob_centroids(image: np.ndarray, floor: float = 20.0) -> np.ndarray:
    """[n,2] (x, y) centroids of bright blobs, weighted by brightness above `floor`."""
    grey = image[..., 0].astype(np.float64)
    count, labels = cv2.connectedComponents((grey > floor).astype(np.uint8))
    y, x = np.mgrid[0 : grey.shape[0], 0 : grey.shape[1]]
    centres = []
    for label in range(1, count):
        weight = np.where(labels == label, grey - floor, 0.0)
        centres.append([(weight * x).sum() / weight.sum(), (weight * y).sum() / weight.sum()])
    return np.array(centres)


@pytest.mark.parametrize("size", [64, 256], ids=["shrunk", "direct"])
def test_crop_maps_back_onto_the_original_pixels(size):
    """Blobs at known sub-pixel positions; a turned quad that leaves the frame (so the FFHQ
    padding runs) and, at size 64, is large enough for the FFHQ shrink step. Blob centres found
    in the crop, mapped through the quad, must land on the originals."""
    centres = np.array([[150.3, 140.6], [251.7, 101.2], [205.1, 210.9]])
    frame = blob_frame(centres)
    a = math.radians(15)
    half = np.array([math.cos(a), math.sin(a)]) * 180
    quad = square_quad(np.array([190.0, 150.0]), half, np.array([-half[1], half[0]]))
    assert quad.min() < 0 and quad_side(quad) / size >= (4 if size == 64 else 0)
    crop = ffhq_crop(frame, quad, CropConfig(size=size, fill="ffhq"))
    found = blob_centroids(crop)
    assert len(found) == 3
    matrix = quad_to_frame_matrix(quad, size)
    back = found @ matrix[:2, :2].T + matrix[:2, 2]
    frame_px_per_crop_px = quad_side(quad) / size
    for centre in centres:
        error = np.min(np.hypot(*(back - centre).T))
        assert error < 0.02 * frame_px_per_crop_px + 0.05, error


def test_crop_pasted_back_matches_the_frame():
    frame = cv2.GaussianBlur(astronaut(), (0, 0), 1.5)
    quad = alignment_quad(astronaut_landmarks())
    size = 256
    crop = crop_from_quad(frame, quad, size)
    matrix = quad_to_frame_matrix(quad, size)
    back = cv2.warpAffine(crop, matrix[:2], frame.shape[1::-1], flags=cv2.INTER_LINEAR)
    inside = cv2.warpAffine(np.ones((size, size), np.uint8), matrix[:2], frame.shape[1::-1])
    inside = cv2.erode(inside, np.ones((5, 5), np.uint8)).astype(bool)
    assert inside.sum() > 0.9 * quad_side(quad) ** 2 * 0.8
    assert np.abs(back.astype(float) - frame.astype(float))[inside].mean() < 1.5
    np.testing.assert_allclose(frame_to_quad_matrix(quad, size) @ matrix, np.eye(3), atol=1e-12)


def test_fills_outside_the_frame():
    frame = np.full((40, 40, 3), 200, np.uint8)
    frame[:, :20] = 50
    # crop pixel (i, j) has its centre on frame pixel (i, j - 20): the left half is off-frame
    quad = square_quad(np.array([-0.5, 19.5]), np.array([20.0, 0.0]), np.array([0.0, 20.0]))
    constant = crop_from_quad(frame, quad, 40, fill="constant")
    assert constant[:, :20].max() == 0 and (constant[:, 20:] == 50).all()
    reflect = crop_from_quad(frame, quad, 40, fill="reflect")
    assert (reflect[:, 1:] == 50).all() and (reflect[:, 0] == 200).all()  # x=-k mirrors x=k
    ffhq = ffhq_crop(frame, quad, CropConfig(size=40, fill="ffhq"))
    # mirrored too, then faded towards the median colour far from the frame; never black
    assert ffhq.min() >= 50 and ffhq[:, 0].mean() > ffhq[:, 10].mean() + 5


def test_window_of_a_still_face_is_its_quad():
    quad = alignment_quad(astronaut_landmarks())
    window = unaligned_window(np.stack([quad] * 5))
    np.testing.assert_allclose(window, quad, atol=1e-9)


def test_window_covers_the_motion_and_keeps_the_scale_when_it_can():
    quad = alignment_quad(astronaut_landmarks())
    side = quad_side(quad)
    roll = quad_angle_deg(quad)
    axis = quad[3] - quad[0]
    small = np.stack([quad + axis * f for f in np.linspace(0, 0.3, 7)])  # drifts 0.3 sides
    window = unaligned_window(small)
    assert quad_side(window) == pytest.approx(side)
    np.testing.assert_allclose(quad_centre(window), quad_centre(small).mean(0), atol=1e-9)
    large = np.stack([quad + axis * f for f in np.linspace(0, 1.2, 7)])
    window = unaligned_window(large, WindowConfig(cover=0.5))
    assert quad_side(window) == pytest.approx(1.7 * side)
    to_window = frame_to_quad_matrix(window, 1000)
    for moved in large:  # the central half of every face quad stays inside
        core = quad_centre(moved) + (moved - quad_centre(moved)) * 0.5
        inside = core @ to_window[:2, :2].T + to_window[:2, 2]
        assert inside.min() >= -0.5 - 1e-6 and inside.max() <= 999.5 + 1e-6
    assert quad_angle_deg(window) == pytest.approx(roll)
    upright = unaligned_window(large, WindowConfig(upright=True))
    assert quad_angle_deg(upright) == pytest.approx(0.0)


def test_astronaut_landmarks_and_aligned_crop():
    frame = astronaut()
    faces = dlib_detector().detect(frame)
    assert len(faces) == 2  # the face and a false positive on the mission patch
    face = max(faces, key=lambda f: f.area)
    assert face.points.shape == (68, 2)
    for found, expected in zip(eye_centres(face.points), ASTRONAUT_EYES, strict=True):
        assert np.hypot(*(found - expected)) < 1.5
    size = 256
    aligned = align_face(frame, face.points, "ffhq", CropConfig(size=size))
    assert aligned.image.shape == (size, size, 3)
    again = max(dlib_detector().detect(aligned.image), key=lambda f: f.area)
    left, right = eye_centres(again.points)
    tilt = math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))
    assert abs(tilt) < 1.5  # upright
    middle = (left + right) / 2
    assert abs(middle[0] - (size - 1) / 2) < 0.02 * size  # centred
    # eyes sit where the FFHQ rule puts them: 0.1 eye-to-mouth above the crop's centre
    eyes = np.mean(eye_centres(face.points), axis=0)
    expected = frame_to_quad_matrix(aligned.quad, size) @ [*eyes, 1]
    assert np.hypot(*(middle - expected[:2])) < 2.0
    mouth = (face.points[48] + face.points[54]) / 2
    above = 0.1 * np.hypot(*(mouth - eyes)) * size / quad_side(aligned.quad)
    assert (size - 1) / 2 - middle[1] == pytest.approx(above, abs=1.5)
