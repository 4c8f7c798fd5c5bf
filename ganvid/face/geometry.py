"""The per-clip geometry stage: landmarks -> tracked, smoothed, gap-filled -> quads -> transforms.

Two passes over the frames, both streaming (memory grows by ~1 KB per frame, never by frames):

1. `detect_clip(frames, detector)`: detection, face choice and tracking, a 32x32 thumbnail
   change per frame for shot detection -> `ClipDetections` (raw, NaN where no face).
2. `build_geometry(detections)`: shots, gap filling, smoothing, aligned quads, one unaligned
   window per shot, and the exact SG3 transform per frame -> one `FrameGeometry` per frame.

Then `crop_frames` (another pass over the frames) cuts the aligned and unaligned crops.
`save_geometry` / `load_geometry` store everything as `geometry.json`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator
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
from ganvid.face.landmarks import Detector, DetectorConfig
from ganvid.face.track import (
    FaceTracker,
    ShotConfig,
    TrackConfig,
    detect_shots,
    fill_gaps,
    frame_signature,
    shot_ranges,
    signature_change,
    smooth_series,
)
from ganvid.face.transforms import CropTransform, transform_from_quads

GEOMETRY_VERSION = 1


@dataclass(frozen=True)
class GeometryConfig:
    """Everything `build_geometry` decides with (detection options live in DetectorConfig)."""

    track: TrackConfig = TrackConfig()
    shots: ShotConfig = ShotConfig()
    rule: Rule = "ffhq"
    """Aligned-crop rule: "ffhq" (dataset rule) or "eyes" (stylegan3-editing video rule)."""
    smooth_window: int = 9
    """Frames in the landmark smoother's window (odd; 0 or 1 = no smoothing)."""
    smooth_order: int = 2
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
    """Landmarks were filled in from neighbouring frames (not detected)."""
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

    def to_json(self) -> dict[str, Any]:
        def rounded(a: np.ndarray | None) -> list | None:
            return None if a is None else np.round(a, 4).tolist()

        return {
            "index": self.index,
            "shot": self.shot,
            "detected": self.detected,
            "interpolated": self.interpolated,
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
        )


@dataclass
class ClipDetections:
    """Raw per-frame output of `detect_clip` ([N, ...] arrays, NaN where no face)."""

    points: np.ndarray
    """[N,68,2] landmarks of the tracked face."""
    boxes: np.ndarray
    """[N,4] its boxes."""
    reacquired: np.ndarray
    """[N] bool: the tracker picked its face again here (a cut)."""
    scene_change: np.ndarray
    """[N] thumbnail change from the previous frame with the face (NaN where no face)."""
    frame_change: np.ndarray
    """[N] thumbnail change from the previous frame."""
    width: int = 0
    height: int = 0
    max_faces: int = 0
    """The most faces any frame showed."""

    @property
    def detected(self) -> np.ndarray:
        return ~np.isnan(self.points.reshape(len(self.points), -1)).any(axis=1)


def detect_clip(
    frames: Iterable[np.ndarray],
    detector: Detector,
    track: TrackConfig = TrackConfig(),
    on_frame: Callable[[int], None] | None = None,
) -> ClipDetections:
    """Detect and track the chosen face in every frame (uint8 [H,W,3] RGB, in order)."""
    tracker = FaceTracker(track)
    points, boxes, reacquired, scene, change = [], [], [], [], []
    previous_signature = last_face_signature = None
    height = width = 0
    for index, frame in enumerate(frames):
        height, width = frame.shape[:2]
        signature = frame_signature(frame)
        step = tracker.update(detector.detect(frame))
        change.append(
            0.0 if previous_signature is None else signature_change(signature, previous_signature)
        )
        previous_signature = signature
        if step.face is None:
            points.append(np.full((68, 2), np.nan))
            boxes.append(np.full(4, np.nan))
            scene.append(np.nan)
        else:
            points.append(step.face.points)
            boxes.append(step.face.box)
            scene.append(
                0.0
                if last_face_signature is None
                else signature_change(signature, last_face_signature)
            )
            last_face_signature = signature
        reacquired.append(step.reacquired)
        if on_frame is not None:
            on_frame(index)
    if not points:
        raise InputError("the clip has no frames")
    detections = ClipDetections(
        points=np.stack(points),
        boxes=np.stack(boxes),
        reacquired=np.array(reacquired, dtype=bool),
        scene_change=np.array(scene, dtype=np.float64),
        frame_change=np.array(change, dtype=np.float64),
        width=width,
        height=height,
        max_faces=tracker.max_faces_seen,
    )
    _check_found(detections, track)
    return detections


def _check_found(detections: ClipDetections, track: TrackConfig) -> None:
    if detections.detected.any():
        return
    count = len(detections.points)
    if detections.max_faces == 0:
        raise NoFaceError(
            f"no face was found in any of the {count} frames; the face must be frontal enough "
            "and at least ~40 px wide (try --detector fan or --cnn)"
        )
    raise NoFaceError(
        f"--face {track.face_index} asks for face number {track.face_index + 1} by size, but "
        f"no frame shows more than {detections.max_faces} face(s)"
    )


def build_geometry(
    detections: ClipDetections, config: GeometryConfig = GeometryConfig()
) -> list[FrameGeometry]:
    """One FrameGeometry per frame from raw detections (pure arithmetic, no pixels)."""
    shot_ids = detect_shots(
        detections.points,
        detections.scene_change,
        detections.frame_change,
        detections.reacquired,
        config.shots,
    )
    smoothed = smooth_series(
        detections.points,
        window=config.smooth_window,
        order=config.smooth_order,
        shot_ids=shot_ids,
    )
    smoothed, _ = fill_gaps(smoothed, shot_ids)  # shots where the face never shows
    quads = np.stack([alignment_quad(p, config.rule) for p in smoothed])
    windows = np.zeros_like(quads)
    for start, stop in shot_ranges(len(quads), shot_ids):
        windows[start:stop] = unaligned_window(quads[start:stop], config.window)
    detected = detections.detected
    return [
        FrameGeometry(
            index=i,
            shot=int(shot_ids[i]),
            detected=bool(detected[i]),
            interpolated=not bool(detected[i]),
            landmarks=smoothed[i],
            landmarks_raw=detections.points[i].copy() if detected[i] else None,
            aligned_quad=quads[i],
            unaligned_quad=windows[i],
            transform=transform_from_quads(quads[i], windows[i]),
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


def crop_frames(
    frames: Iterable[np.ndarray], records: list[FrameGeometry], config: CropsConfig = CropsConfig()
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stream (aligned, unaligned) crops, one pair per frame."""
    for frame, record in zip(frames, records, strict=True):
        yield crop_pair(frame, record, config)


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
    from ganvid.pipeline.workdir import atomic_write_bytes

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

    Green: detected landmarks and aligned quad; orange: interpolated; blue: unaligned window.
    """
    import cv2

    scale = min(1.0, max_side / max(frame.shape[:2]))
    image = frame
    if scale < 1.0:
        size = (round(frame.shape[1] * scale), round(frame.shape[0] * scale))
        image = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    image = np.ascontiguousarray(image).copy()
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


# ----------------------------------------------------------------------------- the align stage


ALIGN_STAGE = "align"
"""Stage name (and sub-directory of the work dir) of `ganvid align`."""
ALIGN_OUTPUTS = ("geometry.json", "aligned.mp4", "unaligned.mp4", "preview.mp4")


@dataclass(frozen=True)
class AlignOptions:
    """Everything the align stage's result depends on (hashed into its key)."""

    detector: DetectorConfig = DetectorConfig()
    geometry: GeometryConfig = GeometryConfig()
    crops: CropsConfig = CropsConfig()
    crf: int = 18
    """Quality of the three videos (libx264 CRF)."""
    preview_side: int = 960
    """Longest side of the preview video."""


def run_align(
    clip: str | Path,
    workdir: str | Path,
    options: AlignOptions = AlignOptions(),
    fresh: bool = False,
) -> tuple[Path, dict[str, Any], bool]:
    """Run (or resume, or skip) the align stage of `clip` in `workdir`.

    Writes into `<workdir>/align/`: geometry.json, aligned/ and unaligned/ (one PNG per frame,
    `000000.png` ...), aligned.mp4, unaligned.mp4 and preview.mp4 (source timing; the preview
    also keeps the sound). Returns (that directory, summary facts, whether it was skipped).
    """
    from ganvid.pipeline.workdir import Workdir, run_stage

    clip = Path(clip)
    with Workdir(workdir) as wd:
        record = run_stage(
            wd,
            ALIGN_STAGE,
            align_stage,
            inputs={"clip": clip},
            options=options,
            files={"clip": clip},
            outputs=ALIGN_OUTPUTS,
            fresh=fresh,
        )
        return wd.root / ALIGN_STAGE, record.info, record.skipped


def align_stage(workdir: Any, inputs: dict[str, Any], options: AlignOptions) -> dict[str, Any]:
    """Stage function (see `ganvid.pipeline.workdir.run_stage`): geometry, crops, videos.

    Resumes: geometry.json, once written, is reused; PNG crops already on disk are read back
    instead of being cut again; the videos are written in one final pass.
    """
    from ganvid.io.video import probe

    clip = Path(inputs["clip"])
    out = workdir.stage_dir(ALIGN_STAGE)
    info = probe(clip)
    geometry_path = out / "geometry.json"
    if geometry_path.exists():
        geometry = load_geometry(geometry_path)
    else:
        geometry = _detect_stage(clip, info.frame_count, options)
        save_geometry(geometry_path, geometry)
    _write_crops(clip, out, geometry, info, options)
    records = geometry.records
    return {
        "frames": len(records),
        "detected": sum(r.detected for r in records),
        "interpolated": sum(r.interpolated for r in records),
        "shots": len(geometry.shots()),
    }


def _detect_stage(clip: Path, count: int, options: AlignOptions) -> GeometryFile:
    from ganvid.face.landmarks import make_detector
    from ganvid.io.video import read_frames
    from ganvid.ui import progress

    detector = make_detector(options.detector)
    with progress() as bar:
        task = bar.add_task("landmarks", total=count)
        frames = (frame.image for frame in read_frames(clip))
        detections = detect_clip(
            frames, detector, options.geometry.track, lambda _: bar.advance(task)
        )
    records = build_geometry(detections, options.geometry)
    facts = {"clip": str(clip), "options": dataclasses.asdict(options)}
    return GeometryFile(records, detections.width, detections.height, facts)


def _write_crops(
    clip: Path, out: Path, geometry: GeometryFile, info: Any, options: AlignOptions
) -> None:
    """One pass over the frames: PNG crops (resumable) and the three videos."""
    from contextlib import ExitStack

    from ganvid.io.video import VideoWriter, read_frames
    from ganvid.pipeline.workdir import FrameDir
    from ganvid.ui import progress

    records = geometry.records
    if info.frame_count != len(records):
        raise InputError(
            f"{clip} has {info.frame_count} frames but its geometry has {len(records)}; "
            "rerun with --fresh"
        )
    aligned_dir, unaligned_dir = FrameDir(out / "aligned"), FrameDir(out / "unaligned")
    size = options.crops.size
    preview_scale = min(1.0, options.preview_side / max(info.width, info.height))
    preview_size = (round(info.width * preview_scale), round(info.height * preview_scale))
    square = {"width": size, "height": size, "crf": options.crf}
    with ExitStack() as stack, progress() as bar:
        aligned_video = stack.enter_context(VideoWriter(out / "aligned.mp4", info, **square))
        unaligned_video = stack.enter_context(VideoWriter(out / "unaligned.mp4", info, **square))
        preview_video = stack.enter_context(
            VideoWriter(
                out / "preview.mp4",
                info,
                width=preview_size[0],
                height=preview_size[1],
                crf=options.crf,
                audio_from=clip if info.has_audio else None,
            )
        )
        task = bar.add_task("crops", total=len(records))
        for frame, record in zip(read_frames(clip), records, strict=True):
            index = frame.index
            if aligned_dir.has(index) and unaligned_dir.has(index):
                aligned, unaligned = aligned_dir.read(index), unaligned_dir.read(index)
            else:
                aligned, unaligned = crop_pair(frame.image, record, options.crops)
                aligned_dir.write(index, aligned)
                unaligned_dir.write(index, unaligned)
            aligned_video.write(aligned, frame.pts)
            unaligned_video.write(unaligned, frame.pts)
            preview = draw_preview(frame.image, record, options.preview_side)
            preview_video.write(_fit(preview, preview_size), frame.pts)
            bar.advance(task)


def _fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to exactly (width, height) if rounding made it differ by a pixel."""
    import cv2

    if image.shape[1] == size[0] and image.shape[0] == size[1]:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
