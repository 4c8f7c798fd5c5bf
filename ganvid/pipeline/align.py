"""The one video front end: decode + face geometry, shared by align, invert, toonify and edit.

`detect_geometry` runs the face stage of every video job: each frame's detections are cached in
the work dir's `detections/<clip>-<detector>/`, keyed by the clip's content and the detector's
options, so a killed run resumes where it stopped and `ganvid faces`, `align`, `invert` and the
StyleGANEX / StyleMapGAN jobs on one clip detect each frame once; face tracks are built over the
whole clip (`ganvid.face.tracks`), the face `--face` picks is smoothed into per-frame geometry
and written to the job's geometry.json. `ganvid align` (`run_align`), `ganvid faces`
(`run_faces`), `ganvid invert` and the StyleGANEX jobs all call it. Align and faces are one-stage
jobs (`ClipJob`) run by the `Job` stage runner like the others; paths come from `Layout`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ganvid.errors import InputError
from ganvid.face.geometry import (
    ClipDetections,
    CropsConfig,
    FrameGeometry,
    GeometryConfig,
    GeometryFile,
    build_geometry,
    choose_face,
    crop_pair,
    draw_preview,
    load_geometry,
    save_geometry,
    track_clip,
)
from ganvid.face.landmarks import DetectorConfig, Face
from ganvid.face.tracks import ClipTracker, TrackConfig, contact_sheet
from ganvid.files import absolute, atomic_write_bytes
from ganvid.pipeline import layout as names
from ganvid.pipeline.claims import Claims, frame_units, part_order
from ganvid.pipeline.job import Job
from ganvid.pipeline.layout import Layout
from ganvid.pipeline.workdir import FileHasher, FrameDir, atomic_save_npz


def face_configs(face: dict) -> dict:
    """A job's `face` options -> {'detector': DetectorConfig, 'geometry': GeometryConfig}.

    Keys: detector ('dlib' | 'fan'), cnn (bool), face_index (int), rule ('ffhq' | 'eyes').
    """
    detector = DetectorConfig(
        backend=face.get("detector", "dlib"), cnn=bool(face.get("cnn", False))
    )
    geometry = GeometryConfig(
        track=TrackConfig(face_index=int(face.get("face_index", 0))),
        rule=face.get("rule", "ffhq"),
    )
    return {"detector": detector, "geometry": geometry}


class CachedDetector:
    """Wraps a Detector so each frame's faces are stored in `directory` and reused on resume.

    The frame index comes from `seek(index)` (called by `ClipTracker` before each search; blank
    frames are skipped). Second opinions and identities go to the wrapped detector (`helper`).
    Faces are always those rebuilt from the stored arrays, also when just detected, so a frame
    detected by another worker (`share_detections`) gives the tracker the same faces.
    """

    def __init__(self, detector, directory: Path) -> None:
        self.detector, self.store, self.index = detector, FrameDir(directory, ".npz"), 0

    @property
    def helper(self):
        return self.detector

    def seek(self, index: int) -> None:
        self.index = index

    def detect(self, image: np.ndarray) -> list:
        path = self.store.file(self.index)
        self.index += 1
        if path.exists():
            data = np.load(path)
        else:
            faces = self.detector.detect(image)
            data = {
                "boxes": np.array([f.box for f in faces], dtype=np.float64).reshape(-1, 4),
                "scores": np.array([f.score for f in faces], dtype=np.float64),
                "points": np.array([f.points for f in faces], dtype=np.float64).reshape(-1, 68, 2),
            }
            atomic_save_npz(path, data)
        return [
            Face(box, float(score), points)
            for box, score, points in zip(
                data["boxes"], data["scores"], data["points"], strict=True
            )
        ]


def clip_images(clip: Path) -> Iterator[np.ndarray]:
    """The clip's frames, uint8 RGB [H, W, 3], decoded one at a time."""
    from ganvid.io.video import read_frames

    for frame in read_frames(clip):
        yield frame.image


def detections_dir(layout: Layout, clip: Path, detector: DetectorConfig) -> Path:
    """The folder of the work dir that caches the raw detections of `clip` by `detector`: named
    by the clip's content (SHA-256) and the detector's options, so every job of the work dir
    that runs the same detector on the same clip shares it."""
    clip_digest = FileHasher(layout.hashes).digest(clip)
    options = json.dumps(dataclasses.asdict(detector), sort_keys=True, default=str)
    return layout.detections(clip_digest, hashlib.sha256(options.encode()).hexdigest())


def with_weight_files(detector: DetectorConfig) -> DetectorConfig:
    """`detector` with the files of the fan backend's weights found (`ganvid.weights.resolve`,
    a one-line WeightsError naming the download when missing): face/ loads files, it does not
    look names up. The cache key is the user's config (`detections_dir`), not these paths."""
    if detector.backend != "fan":
        return detector
    from ganvid.face.landmarks import FAN_NAMES
    from ganvid.weights import resolve

    files = {name: str(resolve(name)) for name in FAN_NAMES if name not in detector.fan_weights}
    return dataclasses.replace(detector, fan_weights={**detector.fan_weights, **files})


def share_detections(
    clip: Path,
    count: int,
    layout: Layout,
    face: dict,
    claims: Claims,
    unit_frames: int,
    part: tuple[int, int] | None,
) -> int:
    """Fill the detection cache (`detections_dir`) for units of `unit_frames` frames claimed
    by this worker (`ganvid.pipeline.claims`): with `part`, its share first, then any unit
    that is neither done nor held by a live worker; without, every unit not done, then wait
    for those live workers hold (the barrier before tracking). Frames the tracker takes for
    blank (`TrackConfig.blank_contrast`) are skipped as it skips them. A unit is done when its
    marker (`Layout.detected`) is there. Returns the number of units this worker did.

    Without `part`, when no worker has begun (no marker, no live claim), nothing is done here:
    the tracker detects as it goes, in one decode of the clip instead of two.
    """
    from ganvid.face.landmarks import make_detector
    from ganvid.face.tracks import picture
    from ganvid.pipeline.crops import ClipFrames
    from ganvid.ui import stage_bar

    configs = face_configs(face)
    blank = configs["geometry"].track.blank_contrast
    units = frame_units(count, unit_frames)
    markers = [layout.detected(r.start, r.stop) for r in units]
    if part is None and not claims.live() and not any(m.exists() for m in markers):
        return 0
    cache = detections_dir(layout, clip, configs["detector"])
    store = FrameDir(cache, ".npz")
    frames = ClipFrames.for_workdir(layout, clip)
    detector: CachedDetector | None = None
    waiting = f"waiting for other workers' face detection in {layout.root}"
    todo = claims.take(
        part_order(len(units), part), lambda k: markers[k].exists(), part is None, waiting
    )
    with stage_bar(
        "faces (detect)",
        count,
        sum(len(r) for r, m in zip(units, markers, strict=True) if m.exists()),
    ) as update:
        for k in todo:
            for index in units[k]:
                image = frames.get(index).image
                if picture(image).contrast >= blank and not store.has(index):
                    if detector is None:
                        raw = make_detector(with_weight_files(configs["detector"]))
                        detector = CachedDetector(raw, cache)
                    detector.seek(index)
                    detector.detect(image)
                update()
            markers[k].parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(markers[k], b"")
    return len(claims.taken)


def clip_tracks(
    clip: Path, count: int, layout: Layout, detector: DetectorConfig, track: TrackConfig
) -> ClipTracker:
    """Face tracks of the clip's `count` frames, through the work dir's detection cache
    (`detections_dir`)."""
    from ganvid.face.landmarks import make_detector
    from ganvid.ui import stage_bar

    cache = detections_dir(layout, clip, detector)
    cached = CachedDetector(make_detector(with_weight_files(detector)), cache)
    with stage_bar("faces", count) as update:
        return track_clip(clip_images(clip), cached, track, lambda _: update(), cached.helper)


def detect_geometry(
    clip: Path,
    count: int,
    layout: Layout,
    target: Path,
    detector: DetectorConfig,
    geometry: GeometryConfig,
    facts: dict[str, Any],
) -> tuple[list[FrameGeometry], ClipDetections]:
    """The face stage of every video job: tracks, the chosen face, smoothed geometry, saved to
    `target` (the job's geometry.json, with `facts` and the list of faces). Returns (records,
    detections)."""
    tracker = clip_tracks(clip, count, layout, detector, geometry.track)
    detections = choose_face(tracker, geometry.track)
    records = build_geometry(detections, geometry)
    facts = {**facts, "faces": detections.people}
    save_geometry(target, GeometryFile(records, detections.width, detections.height, facts))
    return records, detections


def track_geometry(
    clip: Path, count: int, layout: Layout, target: Path, face_options: dict
) -> tuple[list[FrameGeometry], ClipDetections]:
    """`detect_geometry` with a job's `face` options dict (`face_configs`)."""
    face = face_configs(face_options)
    facts = {"clip": str(clip), "options": face_options}
    return detect_geometry(clip, count, layout, target, face["detector"], face["geometry"], facts)


# ----------------------------------------------------------------------------- ganvid align


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


class ClipJob(Job):
    """A one-stage job over a clip (`ganvid align`, `ganvid faces`): no network, no device."""

    def __init__(self, clip: str | Path, workdir: str | Path, fresh: bool) -> None:
        super().__init__(None, 1, fresh)
        self.clip = Path(clip)
        self.workdir_path = absolute(workdir)

    def run(self, name: str, function: Any, options: Any, outputs: list[Path]) -> Any:
        """Run (or resume, or skip) stage `name` over the clip -> its record."""
        with self.open(clip=self.clip):
            return self.stage(
                name, function, options=options, files={"clip": self.clip}, outputs=outputs
            )


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
    layout = Layout(absolute(workdir))
    outputs = [layout.align_geometry, *layout.align_videos.values()]
    record = ClipJob(clip, workdir, fresh).run(names.ALIGN, align_stage, options, outputs)
    return layout.stage(names.ALIGN), record.info, record.skipped


def align_stage(workdir: Any, inputs: dict[str, Any], options: AlignOptions) -> dict[str, Any]:
    """Stage function (see `ganvid.pipeline.workdir.run_stage`): geometry, crops, videos.

    Resumes: geometry.json, once written, is reused; PNG crops already on disk are read back
    instead of being cut again; the videos are written in one final pass.
    """
    from ganvid.io.video import probe

    clip = Path(inputs["clip"])
    layout = Layout(workdir.root)
    info = probe(clip)
    geometry_path = layout.align_geometry
    if not geometry_path.exists():
        facts = {"clip": str(clip), "options": dataclasses.asdict(options)}
        detect_geometry(
            clip, info.frame_count, layout, geometry_path, options.detector, options.geometry, facts
        )
    geometry = load_geometry(geometry_path)
    _write_crops(clip, layout, geometry, info, options)
    records = geometry.records
    return {
        "frames": len(records),
        "detected": sum(r.detected for r in records),
        "interpolated": sum(r.interpolated for r in records),
        "absent": sum(r.absent for r in records),
        "shots": len(geometry.shots()),
        "faces": len(geometry.info.get("faces", [])),
    }


def _write_crops(
    clip: Path, layout: Layout, geometry: GeometryFile, info: Any, options: AlignOptions
) -> None:
    """One pass over the frames: PNG crops (resumable) and the three videos."""
    from contextlib import ExitStack

    from ganvid.io.video import VideoWriter, read_frames
    from ganvid.ui import progress

    records = geometry.records
    if info.frame_count != len(records):
        raise InputError(
            f"{clip} has {info.frame_count} frames but its geometry has {len(records)}; "
            "rerun with --fresh"
        )
    aligned_dir, unaligned_dir = FrameDir(layout.align_aligned), FrameDir(layout.align_unaligned)
    videos = layout.align_videos
    size = options.crops.size
    preview_scale = min(1.0, options.preview_side / max(info.width, info.height))
    preview_size = (round(info.width * preview_scale), round(info.height * preview_scale))
    square = {"width": size, "height": size, "crf": options.crf}
    with ExitStack() as stack, progress() as bar:
        aligned_video = stack.enter_context(VideoWriter(videos["aligned"], info, **square))
        unaligned_video = stack.enter_context(VideoWriter(videos["unaligned"], info, **square))
        preview_video = stack.enter_context(
            VideoWriter(
                videos["preview"],
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


# ----------------------------------------------------------------------------- ganvid faces


@dataclass(frozen=True)
class FacesOptions:
    detector: DetectorConfig = DetectorConfig()
    track: TrackConfig = TrackConfig()


def run_faces(
    clip: str | Path,
    workdir: str | Path,
    options: FacesOptions = FacesOptions(),
    fresh: bool = False,
) -> tuple[Path, dict[str, Any], bool]:
    """List the faces of a clip: `<workdir>/faces/faces.json` (one entry per face, main face
    first, with its tracks) and `faces.png` (a contact sheet: one thumbnail per face, labelled
    with the number `--face` takes). Returns (faces.json, its contents, whether skipped)."""
    from ganvid.pipeline.workdir import read_json

    layout = Layout(absolute(workdir))
    outputs = [layout.faces_json, layout.faces_png]
    record = ClipJob(clip, workdir, fresh).run(names.FACES, faces_stage, options, outputs)
    return layout.faces_json, read_json(layout.faces_json), record.skipped


def faces_stage(workdir: Any, inputs: dict[str, Any], options: FacesOptions) -> dict[str, Any]:
    from ganvid.files import atomic_write_bytes
    from ganvid.io.video import probe
    from ganvid.pipeline.workdir import atomic_write_json, encode_image

    clip = Path(inputs["clip"])
    layout = Layout(workdir.root)
    tracker = clip_tracks(clip, probe(clip).frame_count, layout, options.detector, options.track)
    people = tracker.people()
    shots = int(max(tracker.shot_ids, default=0)) + 1
    summary = {
        "clip": str(clip),
        "frames": len(tracker.blank),
        "blank": int(sum(tracker.blank)),
        "shots": shots,
        "cuts": list(tracker.cuts),
        "faces": [p.summary(k) for k, p in enumerate(people)],
    }
    atomic_write_bytes(layout.faces_png, encode_image(contact_sheet(people)))
    atomic_write_json(layout.faces_json, summary)
    return {"faces": len(people), "shots": shots}
