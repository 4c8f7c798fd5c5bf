"""The detection cache of the video front end (`ganvid.pipeline.align`): the faces it hands
out, and the share of it that a part fills."""

from __future__ import annotations

import numpy as np
from support.face_clips import moving_clip
from support.pipeline_fixtures import write_clip

from ganvid.face.landmarks import Face
from ganvid.pipeline.align import CachedDetector, share_detections
from ganvid.pipeline.claims import Claims
from ganvid.pipeline.layout import GEOMETRY, Layout


class CountingDetector:
    """Two float32 faces per frame (a backend's own dtype), counting the frames searched."""

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image: np.ndarray) -> list[Face]:
        self.calls += 1
        points = np.linspace(0, 40, 136, dtype=np.float32).reshape(68, 2) + self.calls
        box = np.array([1, 2, 30, 40], dtype=np.float32)
        return [Face(box, 0.75, points), Face(box + 50, 0.25, points + 50)]


def _arrays(faces: list[Face]) -> list:
    return [
        (f.box.dtype, f.box.tolist(), f.score, f.points.dtype, f.points.tolist()) for f in faces
    ]


def test_a_detected_frame_gives_the_faces_a_cached_one_gives(tmp_path):
    """The tracker sees the same faces whether this process detected the frame or another
    worker did (split runs track like whole ones)."""
    raw = CountingDetector()
    image = np.zeros((8, 8, 3), np.uint8)
    first = CachedDetector(raw, tmp_path)
    first.seek(3)
    detected = first.detect(image)
    again = CachedDetector(raw, tmp_path)
    again.seek(3)
    assert _arrays(again.detect(image)) == _arrays(detected) and raw.calls == 1
    assert detected[0].box.dtype == np.float64


def test_a_part_fills_its_share_then_the_rest_skipping_blank_frames(tmp_path, monkeypatch):
    clip = write_clip(tmp_path / "clip.mp4", moving_clip(8, (96, 96), blank=(2, 3)).frames)
    raw = CountingDetector()
    monkeypatch.setattr("ganvid.face.landmarks.make_detector", lambda config: raw)
    layout = Layout(tmp_path / "work")
    claims = Claims(layout.claims(GEOMETRY))
    assert share_detections(clip, 8, layout, {}, claims, 3, (2, 2)) == 3
    assert claims.taken == [1, 2, 0]  # units [3, 6) [6, 8) its own, then part 1's [0, 3)
    assert raw.calls == 6  # 8 frames, 2 blank
    cached = sorted(p.name for p in layout.root.glob("detections/*/*.npz"))
    assert cached == [f"{i:06d}.npz" for i in (0, 1, 4, 5, 6, 7)]
    markers = sorted(p.name for p in (layout.stage(GEOMETRY) / "detected").iterdir())
    assert markers == ["000000-000003", "000003-000006", "000006-000008"]
    for part in ((1, 2), None):  # every unit done: nothing decoded or detected again
        assert share_detections(clip, 8, layout, {}, Claims(layout.claims(GEOMETRY)), 3, part) == 0
    assert raw.calls == 6


def test_a_whole_run_without_parts_leaves_detection_to_the_tracker(tmp_path, monkeypatch):
    clip = write_clip(tmp_path / "clip.mp4", moving_clip(4, (96, 96), blank=()).frames)
    raw = CountingDetector()
    monkeypatch.setattr("ganvid.face.landmarks.make_detector", lambda config: raw)
    layout = Layout(tmp_path / "work")
    assert share_detections(clip, 4, layout, {}, Claims(layout.claims(GEOMETRY)), 2, None) == 0
    assert raw.calls == 0 and not layout.stage(GEOMETRY).exists()
