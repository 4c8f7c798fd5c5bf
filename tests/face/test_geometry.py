"""The per-clip geometry stage on synthetic clips with known motion (dlib, small frames)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from support.face_clips import (
    blank_clip,
    dlib_detector,
    map_points,
    moving_clip,
    reference_landmarks,
    two_face_clip,
    two_shot_clip,
)

from ganvid.errors import NoFaceError
from ganvid.face.align import alignment_quad
from ganvid.face.geometry import (
    GeometryConfig,
    GeometryFile,
    build_geometry,
    clip_geometry,
    detect_clip,
    load_geometry,
    save_geometry,
)
from ganvid.face.tracks import TrackConfig
from ganvid.face.transforms import transform_from_quads


@functools.cache
def moving():
    clip = moving_clip()
    return clip, build_geometry(detect_clip(clip.frames, dlib_detector()))


def test_every_frame_gets_a_record_and_blank_frames_have_no_face():
    """Blank frames are not faces: marked absent (passed through), not interpolated (before
    issue 19 they were 'interpolated', and paste-back could put a face into them)."""
    clip, records = moving()
    assert [r.index for r in records] == list(range(len(clip.frames)))
    blank = [m is None for m in clip.truth]
    assert [r.absent for r in records] == blank
    assert not any(r.interpolated for r in records)
    assert [r.detected for r in records] == [not b for b in blank]
    assert all(r.landmarks_raw is None for r in records if r.absent)
    assert {r.shot for r in records} == {0}  # blank frames are not cuts


def test_recovered_transforms_match_the_known_motion():
    """Truth: the astronaut's landmarks moved by each frame's known similarity give the face's
    true aligned quad; seen through the shot's crop window it gives the true transform."""
    clip, records = moving()
    reference = reference_landmarks("astronaut")
    for record, truth in zip(records, clip.truth, strict=True):
        if truth is None:
            continue
        true_quad = alignment_quad(map_points(truth, reference))
        expected = transform_from_quads(true_quad, record.unaligned_quad)
        assert record.transform.angle_deg == pytest.approx(expected.angle_deg, abs=0.5)
        assert record.transform.tx_frac == pytest.approx(expected.tx_frac, abs=0.01)
        assert record.transform.ty_frac == pytest.approx(expected.ty_frac, abs=0.01)
        assert record.transform.scale == pytest.approx(expected.scale, rel=0.01)
    angles = [r.transform.angle_deg for r in records]
    assert max(angles) - min(angles) > 12  # the clip turns by ±8 degrees: the test has teeth


def test_interpolated_frames_stay_on_the_motion():
    clip, records = moving()
    reference = reference_landmarks("astronaut")
    for k in (5, 6, 15):  # blank frames: held geometry where the face would have been
        true_points = map_points(clip.extra["motion"][k], reference)
        error = np.hypot(*(records[k].landmarks - true_points).T).mean()
        assert error < 3.0, (k, error)


@pytest.mark.parametrize("face_index, side", [(0, "left"), (1, "right")])
def test_two_faces_the_chosen_one_is_followed(face_index, side):
    """The left face is the larger at first, the right one at the end: following must not
    switch to whichever is largest (or listed last) now."""
    clip = two_face_clip()
    truth = clip.truth if side == "left" else clip.extra["right"]
    config = GeometryConfig(track=TrackConfig(face_index=face_index))
    records = clip_geometry(clip.frames, dlib_detector(), config)
    reference = reference_landmarks("astronaut")
    for record, matrix in zip(records, truth, strict=True):
        assert record.detected
        error = np.hypot(*(record.landmarks - map_points(matrix, reference)).T).mean()
        assert error < 3.0


def test_a_cut_starts_a_new_shot_with_its_own_window():
    clip = two_shot_clip()
    records = clip_geometry(clip.frames, dlib_detector())
    cut = clip.extra["cut"]
    assert [r.shot for r in records] == [0] * cut + [1] * (len(records) - cut)
    assert not np.allclose(records[0].unaligned_quad, records[-1].unaligned_quad)
    reference_centre = reference_landmarks("astronaut").mean(axis=0)
    for record, matrix in zip(records, clip.truth, strict=True):  # no smoothing across the cut
        centre = map_points(matrix, reference_centre)
        assert np.hypot(*(record.landmarks.mean(axis=0) - centre)) < 5.0  # a leak: ~70 px


def test_no_face_anywhere_is_a_clear_error():
    with pytest.raises(NoFaceError, match="no face was found in any of the 5 frames"):
        detect_clip(blank_clip(), dlib_detector())
    clip = two_shot_clip(n_each=2)
    with pytest.raises(NoFaceError, match="--face 2"):
        detect_clip(clip.frames, dlib_detector(), TrackConfig(face_index=2))


def test_geometry_json_round_trip(tmp_path):
    _, records = moving()
    path = tmp_path / "geometry.json"
    save_geometry(path, GeometryFile(records, 256, 256, {"clip": "x.mp4"}))
    loaded = load_geometry(path)
    assert (loaded.width, loaded.height, loaded.info) == (256, 256, {"clip": "x.mp4"})
    assert len(loaded.records) == len(records)
    for a, b in zip(loaded.records, records, strict=True):
        assert (a.index, a.shot, a.detected, a.interpolated) == (
            b.index,
            b.shot,
            b.detected,
            b.interpolated,
        )
        np.testing.assert_allclose(a.aligned_quad, b.aligned_quad, atol=1e-4)
        np.testing.assert_allclose(a.unaligned_quad, b.unaligned_quad, atol=1e-4)
        assert (a.landmarks_raw is None) == (b.landmarks_raw is None)
        assert a.transform == b.transform
