"""Per-clip face geometry: tracks -> the chosen face, smoothed -> quads -> transforms.

Two passes over the frames, both streaming (memory grows by ~1 KB per frame and face, never by
frames):

1. `detect_clip(frames, detector)`: face tracks over the whole clip, shot cuts and blank frames
   (`ganvid.face.tracks.ClipTracker`), then the person `--face` picks -> `ClipDetections`
   (raw, NaN where that face was not detected).
2. `build_geometry(detections)`: gap filling and smoothing inside each of the face's tracks,
   aligned quads, one unaligned window per shot, and the exact SG3 transform per frame -> one
   `FrameGeometry` per frame. Frames where the face is absent (before its first or after its
   last sighting in a shot, between two of its tracks, blank frames, shots without it) are
   marked `absent`: they keep the nearest geometry so every per-frame array stays dense, but
   nothing is drawn or pasted on them.

`crop_pair` cuts a frame's aligned and unaligned crops.
`save_geometry` / `load_geometry` store everything as `geometry.json`. The stage that runs
all this on a clip in a work dir is `ganvid.pipeline.align`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ganvid.errors import InputError, NoFaceError
from ganvid.face.align import (
    CropConfig,
    Fill,
    Rule,
    WindowConfig,
    alignment_quad,
    ffhq_crop,
    unaligned_window,
)
from ganvid.face.landmarks import Detector
from ganvid.face.track import fill_gaps, shot_ranges, smooth_series
from ganvid.face.tracks import ClipTracker, Person, TrackConfig
from ganvid.face.transforms import CropTransform, transform_from_quads
from ganvid.files import atomic_write_bytes

GEOMETRY_VERSION = 1


@dataclass(frozen=True)
class GeometryConfig:
    """Everything `build_geometry` decides with (detection options live in DetectorConfig)."""

    track: TrackConfig = TrackConfig()
    rule: Rule = "ffhq"
    """Aligned-crop rule: "ffhq" (dataset rule) or "eyes" (stylegan3-editing video rule)."""
    smooth_window: int = 9
    """Frames in the landmark smoother's window (odd; 0 or 1 = no smoothing)."""
    smooth_order: int = 4
    """Degree of the smoother's local polynomial. 4 follows a head rolling +-12 deg in half a
    second (eye error p95 1.2 px, where degree 2 lagged 4.6 px) and still averages the
    detector's jitter over 9 frames; tracks too short for 9 frames fall back to degree 2."""
    window: WindowConfig = WindowConfig()


@dataclass
class FrameGeometry:
    """Geometry of one frame (every frame of the clip has one)."""

    index: int
    """0-based frame index in decode order."""
    shot: int
    detected: bool
    """The tracked face was found in this frame."""
    interpolated: bool
    """Inside one of the face's tracks but not detected: landmarks filled from its neighbours."""
    landmarks: np.ndarray
    """[68,2] smoothed (and gap-filled) landmarks, frame pixel-index coordinates."""
    landmarks_raw: np.ndarray | None
    """[68,2] detector output, None where not detected."""
    aligned_quad: np.ndarray
    """[4,2] FFHQ quad of the smoothed landmarks (corner order of `ganvid.face.align`)."""
    unaligned_quad: np.ndarray
    """[4,2] the shot's unaligned crop window."""
    transform: CropTransform
    """SG3 input transform: aligned render -> unaligned crop."""
    absent: bool = False
    """The face is not in this frame (blank frame, before/after its tracks, another shot): the
    geometry is the nearest one, held, and the frame passes through untouched."""

    def to_json(self) -> dict[str, Any]:
        def rounded(a: np.ndarray | None) -> list | None:
            return None if a is None else np.round(a, 4).tolist()

        return {
            "index": self.index,
            "shot": self.shot,
            "detected": self.detected,
            "interpolated": self.interpolated,
            "absent": self.absent,
            "landmarks": rounded(self.landmarks),
            "landmarks_raw": rounded(self.landmarks_raw),
            "aligned_quad": rounded(self.aligned_quad),
            "unaligned_quad": rounded(self.unaligned_quad),
            "transform": dataclasses.asdict(self.transform),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FrameGeometry:
        raw = data.get("landmarks_raw")
        return cls(
            index=int(data["index"]),
            shot=int(data["shot"]),
            detected=bool(data["detected"]),
            interpolated=bool(data["interpolated"]),
            landmarks=np.asarray(data["landmarks"], dtype=np.float64),
            landmarks_raw=None if raw is None else np.asarray(raw, dtype=np.float64),
            aligned_quad=np.asarray(data["aligned_quad"], dtype=np.float64),
            unaligned_quad=np.asarray(data["unaligned_quad"], dtype=np.float64),
            transform=CropTransform(**data["transform"]),
            absent=bool(data.get("absent", False)),
        )


@dataclass
class ClipDetections:
    """Raw per-frame output of `detect_clip` for the chosen face ([N, ...] arrays)."""

    points: np.ndarray
    """[N,68,2] landmarks of the chosen face, NaN where it was not detected."""
    boxes: np.ndarray
    """[N,4] its boxes (NaN where not detected)."""
    shot_ids: np.ndarray
    """[N] int shot of every frame (cuts from the picture)."""
    segment_ids: np.ndarray
    """[N] int: the face's track covering the frame (first to last sighting), -1 outside."""
    blank: np.ndarray
    """[N] bool: blank frame (never a face)."""
    width: int = 0
    height: int = 0
    max_faces: int = 0
    """The most faces any frame showed."""
    people: list[dict[str, Any]] = field(default_factory=list)
    """Summaries of every face of the clip, main face first (`Person.summary`)."""

    @property
    def detected(self) -> np.ndarray:
        return ~np.isnan(self.points.reshape(len(self.points), -1)).any(axis=1)


def track_clip(
    frames: Iterable[np.ndarray],
    detector: Detector,
    track: TrackConfig = TrackConfig(),
    on_frame: Callable[[int], None] | None = None,
    helper: Any = None,
) -> ClipTracker:
    """Stream the frames (uint8 [H,W,3] RGB, in order) through a `ClipTracker`."""
    tracker = ClipTracker(detector, track, helper)
    for index, frame in enumerate(frames):
        tracker.update(index, frame)
        if on_frame is not None:
            on_frame(index)
    if not tracker.blank:
        raise InputError("the clip has no frames")
    return tracker


def choose_face(tracker: ClipTracker, track: TrackConfig = TrackConfig()) -> ClipDetections:
    """The detections of the person `track.face_index` picks (NoFaceError if there is none)."""
    people = tracker.people()
    count = len(tracker.blank)
    _check_found(people, tracker, track, count)
    person: Person = people[track.face_index]
    points = np.full((count, 68, 2), np.nan)
    boxes = np.full((count, 4), np.nan)
    segments = np.full(count, -1, dtype=np.int64)
    for face_track in person.tracks:
        segments[face_track.first : face_track.last + 1] = face_track.id
        for frame, p, b in zip(face_track.frames, face_track.points, face_track.boxes, strict=True):
            points[frame], boxes[frame] = p, b
    return ClipDetections(
        points=points,
        boxes=boxes,
        shot_ids=np.array(tracker.shot_ids, dtype=np.int64),
        segment_ids=segments,
        blank=np.array(tracker.blank, dtype=bool),
        width=tracker.width,
        height=tracker.height,
        max_faces=tracker.max_faces,
        people=[p.summary(k) for k, p in enumerate(people)],
    )


def detect_clip(
    frames: Iterable[np.ndarray],
    detector: Detector,
    track: TrackConfig = TrackConfig(),
    on_frame: Callable[[int], None] | None = None,
    helper: Any = None,
) -> ClipDetections:
    """`track_clip` then `choose_face`."""
    return choose_face(track_clip(frames, detector, track, on_frame, helper), track)


def _check_found(
    people: list[Person], tracker: ClipTracker, track: TrackConfig, count: int
) -> None:
    if len(people) > track.face_index:
        return
    if not people:
        raise NoFaceError(
            f"no face was found in any of the {count} frames; the face must be frontal enough "
            "and at least ~40 px wide (try --detector fan or --cnn)"
        )
    raise NoFaceError(
        f"--face {track.face_index} asks for face number {track.face_index + 1}, but the clip "
        f"shows {len(people)} face(s) (see `ganvid faces`)"
    )


def build_geometry(
    detections: ClipDetections, config: GeometryConfig = GeometryConfig()
) -> list[FrameGeometry]:
    """One FrameGeometry per frame from raw detections (pure arithmetic, no pixels)."""
    shot_ids = detections.shot_ids
    segments = detections.segment_ids
    smoothed = smooth_series(  # inside each track only: never across an absence or a cut
        detections.points,
        window=config.smooth_window,
        order=config.smooth_order,
        shot_ids=segments,
    )
    smoothed, _ = fill_gaps(smoothed, shot_ids)  # held values for absent frames (dense arrays)
    quads = np.stack([alignment_quad(p, config.rule) for p in smoothed])
    windows = np.zeros_like(quads)
    for start, stop in shot_ranges(len(quads), shot_ids):
        windows[start:stop] = unaligned_window(quads[start:stop], config.window)
    detected = detections.detected
    interpolated = ~detected & (segments >= 0) & ~detections.blank
    return [
        FrameGeometry(
            index=i,
            shot=int(shot_ids[i]),
            detected=bool(detected[i]),
            interpolated=bool(interpolated[i]),
            landmarks=smoothed[i],
            landmarks_raw=detections.points[i].copy() if detected[i] else None,
            aligned_quad=quads[i],
            unaligned_quad=windows[i],
            transform=transform_from_quads(quads[i], windows[i]),
            absent=not (detected[i] or interpolated[i]),
        )
        for i in range(len(quads))
    ]


def clip_geometry(
    frames: Iterable[np.ndarray],
    detector: Detector,
    config: GeometryConfig = GeometryConfig(),
    on_frame: Callable[[int], None] | None = None,
) -> list[FrameGeometry]:
    """`detect_clip` then `build_geometry`."""
    return build_geometry(detect_clip(frames, detector, config.track, on_frame), config)


# ----------------------------------------------------------------------------- crops


@dataclass(frozen=True)
class CropsConfig:
    """Sizes and fills of the two crops cut per frame."""

    size: int = 1024
    aligned_fill: Fill = "ffhq"
    unaligned_fill: Fill = "ffhq"
    supersample: int = 1

    def aligned(self) -> CropConfig:
        return CropConfig(self.size, self.aligned_fill, self.supersample)

    def unaligned(self) -> CropConfig:
        return CropConfig(self.size, self.unaligned_fill, self.supersample)


def crop_pair(
    frame: np.ndarray, record: FrameGeometry, config: CropsConfig = CropsConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """(aligned, unaligned) uint8 [size,size,3] crops of one frame."""
    aligned = ffhq_crop(frame, record.aligned_quad, config.aligned())
    unaligned = ffhq_crop(frame, record.unaligned_quad, config.unaligned())
    return aligned, unaligned


# ----------------------------------------------------------------------------- storage


@dataclass
class GeometryFile:
    """Contents of geometry.json."""

    records: list[FrameGeometry]
    width: int
    height: int
    info: dict[str, Any] = field(default_factory=dict)
    """Free-form facts (options, source file, counts)."""

    def shots(self) -> list[dict[str, Any]]:
        ids = np.array([r.shot for r in self.records])
        return [
            {
                "shot": int(ids[start]),
                "start": start,
                "stop": stop,
                "unaligned_quad": np.round(self.records[start].unaligned_quad, 4).tolist(),
            }
            for start, stop in shot_ranges(len(ids), ids)
        ]


def save_geometry(path: str | Path, geometry: GeometryFile) -> None:
    """Write geometry.json atomically."""
    payload = {
        "version": GEOMETRY_VERSION,
        "frames": len(geometry.records),
        "width": geometry.width,
        "height": geometry.height,
        "info": geometry.info,
        "shots": geometry.shots(),
        "records": [r.to_json() for r in geometry.records],
    }
    atomic_write_bytes(path, (json.dumps(payload, separators=(",", ":")) + "\n").encode())


def load_geometry(path: str | Path) -> GeometryFile:
    """Read geometry.json (InputError if it is missing or not a ganvid geometry file)."""
    try:
        payload = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise InputError(f"cannot read the geometry file {path}: {error}") from None
    if payload.get("version") != GEOMETRY_VERSION or "records" not in payload:
        raise InputError(f"{path} is not a ganvid geometry file (version {GEOMETRY_VERSION})")
    records = [FrameGeometry.from_json(r) for r in payload["records"]]
    return GeometryFile(records, int(payload["width"]), int(payload["height"]), payload["info"])


# ----------------------------------------------------------------------------- preview


def draw_preview(frame: np.ndarray, record: FrameGeometry, max_side: int = 960) -> np.ndarray:
    """The frame (scaled to max_side) with landmarks, the aligned quad and the crop window.

    Green: detected landmarks and aligned quad; orange: interpolated; blue: unaligned window;
    nothing on frames where the face is absent.
    """
    import cv2

    scale = min(1.0, max_side / max(frame.shape[:2]))
    image = frame
    if scale < 1.0:
        size = (round(frame.shape[1] * scale), round(frame.shape[0] * scale))
        image = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    image = np.ascontiguousarray(image).copy()
    if record.absent:
        label = f"{record.index} shot {record.shot} no face"
        grey = (200, 200, 200)
        cv2.putText(image, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, grey, 2, cv2.LINE_AA)
        return image
    colour = (255, 160, 0) if record.interpolated else (0, 220, 0)
    shift = 4  # sub-pixel drawing: coordinates in 1/16 px

    def fixed(points: np.ndarray) -> np.ndarray:
        return np.round(((points + 0.5) * scale - 0.5) * (1 << shift)).astype(np.int32)

    thick = max(1, round(2 * max(image.shape[:2]) / 960))
    cv2.polylines(
        image, [fixed(record.unaligned_quad)], True, (60, 120, 255), thick, cv2.LINE_AA, shift
    )
    cv2.polylines(image, [fixed(record.aligned_quad)], True, colour, thick, cv2.LINE_AA, shift)
    cv2.line(
        image,
        *map(tuple, fixed(record.aligned_quad[[0, 3]])),
        (255, 255, 0),
        thick,
        cv2.LINE_AA,
        shift,
    )
    for point in fixed(record.landmarks):
        cv2.circle(image, tuple(point), thick * (1 << shift), colour, -1, cv2.LINE_AA, shift)
    label = f"{record.index} shot {record.shot}" + (" interp" if record.interpolated else "")
    cv2.putText(image, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, colour, 2, cv2.LINE_AA)
    return image
