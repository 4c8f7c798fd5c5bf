"""Landmark backends: dlib (HOG and CNN) offline, face-alignment only through given files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support import face_clips
from support.face_clips import ASTRONAUT_EYES, astronaut, dlib_detector, map_points, similarity

from ganvid.errors import WeightsError
from ganvid.face.align import eye_centres
from ganvid.face.landmarks import (
    DLIB_LANDMARKS_FILE,
    DetectorConfig,
    DlibDetector,
    FanDetector,
    dlib_model_dir,
    face_box,
    face_roll_deg,
    make_detector,
    predictor_start_shape,
)


def test_dlib_models_are_found_without_importing_their_package():
    import sys

    assert (dlib_model_dir() / "shape_predictor_68_face_landmarks.dat").is_file()
    assert "face_recognition_models" not in sys.modules


def test_dlib_cnn_detector_on_a_downscaled_frame():
    detector = DlibDetector(DetectorConfig(cnn=True, max_side=384, upsample=0))
    faces = detector.detect(astronaut())
    assert len(faces) == 1  # the CNN detector does not see a face in the mission patch
    for found, expected in zip(eye_centres(faces[0].points), ASTRONAUT_EYES, strict=True):
        assert np.hypot(*(found - expected)) < 2.0  # box found at 384 px, landmarks at 512


def test_the_predictors_start_shape_is_a_mean_face_in_its_box(tmp_path):
    shape = predictor_start_shape(dlib_model_dir() / DLIB_LANDMARKS_FILE)
    assert shape.shape == (68, 2)
    assert (shape > -0.1).all() and (shape < 1.1).all()  # in the unit box, chin just below
    left_eye, right_eye = shape[36:42].mean(axis=0), shape[42:48].mean(axis=0)
    assert left_eye[0] + right_eye[0] == pytest.approx(1.0, abs=0.01)  # mirror symmetric
    assert left_eye[1] < shape[30, 1] < shape[48:68, 1].mean() < shape[8, 1]  # eyes, nose...
    broken = tmp_path / "broken.dat"
    broken.write_bytes(b"\x01\x02")
    with pytest.raises(WeightsError, match="not dlib's 68-point shape predictor"):
        predictor_start_shape(broken)


def test_face_box_finds_the_box_of_a_placed_start_shape():
    shape = predictor_start_shape(dlib_model_dir() / DLIB_LANDMARKS_FILE)
    matrix = similarity(-12.0, 90.0, (0.5, 0.5), (300.0, 200.0))  # unit box -> 90 px, turned
    centre, side, roll = face_box(map_points(matrix, shape), shape)
    np.testing.assert_allclose(centre, (300.0, 200.0), atol=1e-6)
    assert side == pytest.approx(90.0) and roll == pytest.approx(12.0)  # clockwise: positive


def _eye_spread(fits: list[np.ndarray]) -> float:
    """Largest distance (px) of a fit's eye centre from the median fit's."""
    eyes = np.array([eye_centres(points) for points in fits])
    return float(np.hypot(*(eyes - np.median(eyes, axis=0)).transpose(2, 0, 1)).max())


def test_a_settled_fit_does_not_depend_on_the_box_it_started_in():
    """The cameraman (looking down, eyes half closed) fitted in his CNN box moved by 5 % or
    scaled by 5-10 %: dlib's fits scatter by ~4 px at the eyes and 5.5 deg in roll; settled,
    they agree within 2 px and 2.5 deg. (Starts whose fit has collapsed, eye line off by 10+
    deg, do not all recover.) On the astronaut's clear face settling changes next to nothing.
    """
    detector = dlib_detector()
    starts = [(0, 0, 1.0), (0, 0.05, 1.0), (-0.05, 0, 1.0), (0.05, 0.05, 1.05), (0, 0, 1.1)]
    # person, careful, raw spread at least (px, deg), settled spread at most (px, deg)
    for name, careful, raw_least, settled_most in [
        ("cameraman", True, (3.0, 4.0), (2.0, 2.5)),
        ("astronaut", False, (0.0, 0.0), (0.7, 1.0)),
    ]:
        make_photo, centre, box = face_clips.PHOTOS[name]
        matrix = similarity(0.0, 1.3, centre, (200.0, 200.0))
        image = face_clips.warp(make_photo(), matrix, (400, 400))
        corners = map_points(matrix, np.array([box[:2], box[2:]], dtype=np.float64))
        side, middle = float(np.abs(corners[1] - corners[0]).max()), corners.mean(axis=0)
        raw = [
            detector._fit_upright(image, middle + np.array([dx, dy]) * side, side * scale, 0.0)
            for dx, dy, scale in starts
        ]
        settled = [detector.settle(image, points, careful) for points in raw]
        raw_roll = np.ptp([face_roll_deg(points) for points in raw])
        settled_roll = np.ptp([face_roll_deg(points) for points in settled])
        assert _eye_spread(raw) >= raw_least[0] and raw_roll >= raw_least[1], name
        assert _eye_spread(settled) <= settled_most[0], name
        assert settled_roll <= settled_most[1], name


def test_unknown_backend_is_a_user_error():
    from ganvid.errors import InputError

    with pytest.raises(InputError, match="'dlib' or 'fan'"):
        make_detector(DetectorConfig(backend="mediapipe"))


def test_fan_without_weights_says_how_to_get_them(tmp_path, monkeypatch):
    """face/ loads the files it is given; the pipeline finds them by name and says how to get
    a missing one."""
    from ganvid.pipeline.align import with_weight_files

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsError, match="no file given for the 'fa-2dfan4'"):
        FanDetector(DetectorConfig(backend="fan"))
    with pytest.raises(WeightsError, match="weights download fa-"):
        with_weight_files(DetectorConfig(backend="fan"))


@pytest.mark.slow
def test_fan_loads_the_given_files_and_never_downloads(tmp_path, monkeypatch):
    """Random weights in face-alignment's layout; any download attempt fails the test."""
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    def no_download(*args, **kwargs):
        raise AssertionError("face-alignment tried to download")

    monkeypatch.setattr("torch.hub.load_state_dict_from_url", no_download)
    monkeypatch.setattr("face_alignment.api.load_file_from_url", no_download)
    monkeypatch.setattr(
        "face_alignment.detection.sfd.sfd_detector.load_state_dict_from_url", no_download
    )
    torch.manual_seed(0)
    fan, detector = FAN(4), s3fd()
    torch.save(fan.state_dict(), tmp_path / "fan.pth.tar")
    torch.save(detector.state_dict(), tmp_path / "s3fd.pth")
    files = {"fa-2dfan4": str(tmp_path / "fan.pth.tar"), "fa-s3fd": str(tmp_path / "s3fd.pth")}
    loaded = FanDetector(DetectorConfig(backend="fan", fan_weights=files))
    ours = loaded._fa.face_alignment_net.state_dict()
    assert all(torch.equal(ours[k], v) for k, v in fan.state_dict().items())
    theirs = loaded._fa.face_detector.face_detector.state_dict()
    assert all(torch.equal(theirs[k], v) for k, v in detector.state_dict().items())
