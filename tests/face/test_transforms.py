"""The SG3 transform between aligned and unaligned crops, checked against independent models:
NVIDIA's SynthesisInput arithmetic (nvidia-sg3.md §2.5), a pixel-space warp of real crops, and
stylegan3-editing's eye-based rule (anchors-pipeline.md §1.3)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from support.face_clips import astronaut

from ganvid.face.align import crop_from_quad, quad_to_frame_matrix, square_quad
from ganvid.face.transforms import (
    CropTransform,
    aligned_to_unaligned_matrix,
    input_transforms,
    params_from_input_transforms,
    quad_basis,
    render_matrix,
    transform_from_quads,
)
from ganvid.nn import sg3_transforms


def turned_square(centre, side, angle_deg):
    """Square quad (FFHQ corner order) whose x axis points at angle_deg (y-down frame)."""
    a = math.radians(angle_deg)
    x = np.array([math.cos(a), math.sin(a)]) * side / 2
    y = np.array([-x[1], x[0]])
    return square_quad(np.asarray(centre, float), x, y)


# A face quad and two windows over the same frame: one of the same side (SG3 can render it
# exactly) and one 1.3x larger (the transform then reports scale 1/1.3).
ALIGNED = turned_square((230.0, 125.0), 180.0, 7.0)
WINDOW = turned_square((210.0, 140.0), 180.0, -12.0)
WIDE_WINDOW = turned_square((210.0, 140.0), 234.0, -12.0)


def test_quad_basis_is_the_crop_pixel_convention():
    size = 64
    centre, basis = quad_basis(ALIGNED)
    matrix = quad_to_frame_matrix(ALIGNED, size)
    for j, i in [(0, 0), (63, 0), (17, 40), (63, 63)]:
        p = (np.array([j, i]) + 0.5) / size - 0.5  # SG3 coordinates of crop pixel (i, j)
        np.testing.assert_allclose(matrix @ [j, i, 1], [*(centre + basis @ p), 1], atol=1e-9)


def render_fourier(freqs, phases, amps, transform, points):
    """NVIDIA SynthesisInput steps 3 and 6 (learned rotation/translation = identity): features
    sin(2π(x·f'x + y·f'y + phase')) with phase' = phase + f·T[:2,2], f' = f·T[:2,:2], at SG3
    points [..., 2] (x, y), summed with amplitudes."""
    phases = phases + freqs @ transform[:2, 2]
    freqs = freqs @ transform[:2, :2]
    arg = points[..., :1] * freqs[:, 0] + points[..., 1:] * freqs[:, 1] + phases
    return (np.sin(2 * np.pi * arg) * amps).sum(-1)


def pixel_grid(size):
    """SG3 coordinates of every pixel centre, [size, size, 2] (x, y): (j + 0.5)/size − 0.5."""
    p = (np.arange(size) + 0.5) / size - 0.5
    return np.stack(np.meshgrid(p, p), -1)


@pytest.mark.parametrize("window", [WINDOW, WIDE_WINDOW], ids=["same-size", "wider"])
def test_sg3_render_with_the_transform_is_the_unaligned_crop(window):
    """A frame made of sinusoids G(f). Its aligned crop is itself a sum of Fourier features, so
    SG3's own input-transform arithmetic can render it under our transform; the result must be
    the unaligned crop of G: everywhere when the window has the face quad's size, at the
    aligned crop's centre when the window is wider (SG3 cannot scale)."""
    rng = np.random.default_rng(0)
    omega = rng.normal(0, 0.02, (6, 2))  # cycles per frame pixel
    phase0 = rng.uniform(0, 1, 6)
    amps = rng.uniform(0.5, 1.0, 6)
    c_a, b_a = quad_basis(ALIGNED)
    c_u, b_u = quad_basis(window)
    transform = transform_from_quads(ALIGNED, window)

    def rendered(points):
        return render_fourier(
            omega @ b_a, omega @ c_a + phase0, amps, transform.input_transform(), points
        )

    def truth(points):  # the unaligned crop of G at SG3 points
        frame_points = c_u + points @ b_u.T
        return (np.sin(2 * np.pi * (frame_points @ omega.T + phase0)) * amps).sum(-1)

    if window is WINDOW:
        assert transform.scale == pytest.approx(1.0, abs=1e-12)
        grid = pixel_grid(48)
        np.testing.assert_allclose(rendered(grid), truth(grid), atol=1e-9)
    else:
        assert transform.scale == pytest.approx(1 / 1.3, abs=1e-12)
        centre = np.array([transform.tx_frac, transform.ty_frac])
        assert rendered(centre) == pytest.approx(truth(centre), abs=1e-9)
        assert abs(rendered(centre + 0.2) - truth(centre + 0.2)) > 1e-3  # scale is lost
    # the face's axis is 19 degrees clockwise of the window's (y-down angles grow clockwise):
    # SG3 angles are counter-clockwise on screen
    assert transform.angle_deg == pytest.approx(-(7.0 - (-12.0)), abs=1e-9)


def test_pixel_warp_of_the_aligned_crop_matches_the_unaligned_crop():
    frame = cv2.GaussianBlur(astronaut(), (0, 0), 2.0)
    size = 128
    aligned = crop_from_quad(frame, ALIGNED, size)
    unaligned = crop_from_quad(frame, WINDOW, size)
    transform = transform_from_quads(ALIGNED, WINDOW)
    for matrix in (
        render_matrix(transform, size),
        aligned_to_unaligned_matrix(ALIGNED, WINDOW, size),
    ):
        moved = cv2.warpAffine(aligned, matrix[:2], (size, size), flags=cv2.INTER_LINEAR)
        inside = cv2.warpAffine(np.ones((size, size), np.uint8), matrix[:2], (size, size))
        inside = cv2.erode(inside, np.ones((5, 5), np.uint8)).astype(bool)
        assert inside.mean() > 0.5
        error = np.abs(moved.astype(float) - unaligned.astype(float))[inside].mean()
        assert error < 2.0, error


def test_wider_window_pixel_map_keeps_the_scale():
    frame = cv2.GaussianBlur(astronaut(), (0, 0), 2.0)
    size = 128
    aligned = crop_from_quad(frame, ALIGNED, size)
    unaligned = crop_from_quad(frame, WIDE_WINDOW, size)
    matrix = aligned_to_unaligned_matrix(ALIGNED, WIDE_WINDOW, size)
    moved = cv2.warpAffine(aligned, matrix[:2], (size, size), flags=cv2.INTER_LINEAR)
    inside = cv2.warpAffine(np.ones((size, size), np.uint8), matrix[:2], (size, size))
    inside = cv2.erode(inside, np.ones((5, 5), np.uint8)).astype(bool)
    assert np.abs(moved.astype(float) - unaligned.astype(float))[inside].mean() < 2.5


def stylegan3_editing_rule(left_a, right_a, left_u, right_u, size):
    """anchors-pipeline.md §1.3 on exact eye positions (continuous crop pixels): r from arccos
    of the eye directions, 360 − r when the right eye is lower in the unaligned crop; the
    aligned image turned counter-clockwise by r about its centre; translation = (left eye in
    the unaligned crop − turned aligned left eye) / width."""
    u = (right_u - left_u) / np.linalg.norm(right_u - left_u)
    a = (right_a - left_a) / np.linalg.norm(right_a - left_a)
    r = math.degrees(math.acos(np.clip(u @ a, -1, 1)))
    if right_u[1] > left_u[1]:
        r = 360 - r
    c, s = math.cos(math.radians(r)), math.sin(math.radians(r))
    centre = np.array([size / 2, size / 2])
    turned = centre + np.array([[c, s], [-s, c]]) @ (left_a - centre)
    return r, *((left_u - turned) / size)


@pytest.mark.parametrize("roll", [-25.0, -3.0, 4.0, 30.0])
def test_matches_stylegan3_editing_rule_without_redetection(roll):
    size = 1024
    eyes = np.array([[203.2, 101.5], [246.5, 104.2]])
    aligned = turned_square((225.0, 120.0), 176.0, 3.5)
    # window axis turned clockwise by roll: the face looks turned counter-clockwise by roll
    window = turned_square((215.0, 131.0), 176.0, 3.5 + roll)

    def in_crop(quad, point):  # frame point -> continuous crop pixel coordinates
        return np.linalg.solve(quad_to_frame_matrix(quad, size), [*point, 1])[:2] + 0.5

    left_a, right_a = (in_crop(aligned, e) for e in eyes)
    left_u, right_u = (in_crop(window, e) for e in eyes)
    r, tx, ty = stylegan3_editing_rule(left_a, right_a, left_u, right_u, size)
    ours = transform_from_quads(aligned, window)
    assert ours.angle_deg % 360 == pytest.approx(r % 360, abs=1e-6)
    assert ours.angle_deg == pytest.approx(roll, abs=1e-9)
    assert (ours.tx_frac, ours.ty_frac) == pytest.approx((tx, ty), abs=1e-9)


def test_matrices_round_trip_and_follow_the_sg3_convention():
    rng = np.random.default_rng(1)
    params = np.column_stack(
        [rng.uniform(-170, 170, 5), rng.uniform(-0.3, 0.3, 5), rng.uniform(-0.3, 0.3, 5)]
    )
    matrices = input_transforms(params)
    assert matrices.shape == (5, 3, 3)
    np.testing.assert_allclose(params_from_input_transforms(matrices), params, atol=1e-9)
    one = CropTransform(*params[0])
    np.testing.assert_allclose(one.input_transform(), np.linalg.inv(one.user_matrix()))
    np.testing.assert_allclose(one.input_transform(), sg3_transforms.input_transform(*params[0]))
