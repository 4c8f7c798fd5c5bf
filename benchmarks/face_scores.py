"""Issue 19's per-clip table: how close the tracked geometry comes to the truth, and how much
the cameraman's landmarks depend on the box they are fitted in.

    python benchmarks/face_scores.py [--clips cuts_clip two_people_clip] [--boxes]

For each test clip of `tests/support/face_clips.py` and each person in it: eye-centre error
(px) median / p95 on detected frames, the largest on interpolated frames, the SG3 transform's
relative-roll error (deg) median / max, frames on the wrong thing or missed, and false / missed
cuts (`face_clips.score_geometry`).

`--boxes`: dlib's fit follows its box, most on the cameraman (looking down). This fits single
frames of his clips in his CNN box from the photo and in the same box moved by a few pixels,
then settles each fit (`DlibDetector.settle`), and compares both with his reference (the
settled fit on the photo, `face_clips.reference_landmarks`): how much the box still matters.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support import face_clips  # noqa: E402

from ganvid.face.align import alignment_quad  # noqa: E402
from ganvid.face.geometry import build_geometry, choose_face, track_clip  # noqa: E402
from ganvid.face.tracks import TrackConfig  # noqa: E402

CLIPS = {
    "astronaut_path_clip": (
        {"n_frames": 24, "blank": (10, 11), "occluded": (5, 6)},
        ["astronaut"],
    ),
    "roll_scale_clip": ({"n_frames": 24}, ["astronaut"]),
    "small_face_clip": ({"n_frames": 10}, ["astronaut"]),
    "two_people_clip": ({}, ["astronaut", "cameraman"]),
    "cuts_clip": ({}, ["astronaut", "cameraman"]),
}


def score_table(names: list[str]) -> None:
    detector = face_clips.dlib_detector()
    print("clip / person: eye median / p95 px, interpolated max px (frames), roll median / max")
    print("deg, wrong, missed, false cuts, missed cuts, seconds to track")
    for name in names:
        kwargs, people = CLIPS[name]
        clip = getattr(face_clips, name)(**kwargs)
        start = time.perf_counter()
        tracker = track_clip(clip.frames, detector)
        seconds = time.perf_counter() - start
        for face, person in enumerate(people):
            records = build_geometry(choose_face(tracker, TrackConfig(face_index=face)))
            s = face_clips.score_geometry(clip, records, person)
            print(
                f"{name:20s} {person:10s} {s['detected_median']:5.2f} / {s['detected_p95']:5.2f}"
                f"  {s['interpolated_max']:5.2f} ({s['interpolated']})"
                f"  {s['roll_median']:5.2f} / {s['roll_max']:5.2f}"
                f"  {s['wrong']} {s['missed']} {s['false_cuts']} {s['missed_cuts']}  {seconds:.1f}"
            )


def _quad_angle(points: np.ndarray) -> float:
    quad = alignment_quad(points)
    return float(np.degrees(np.arctan2(*(quad[3] - quad[0])[::-1])))


def _eyes(points: np.ndarray) -> np.ndarray:
    return np.stack([points[36:42].mean(axis=0), points[42:48].mean(axis=0)])


def box_sensitivity() -> None:
    detector = face_clips.dlib_detector()
    reference = face_clips.reference_landmarks("cameraman")
    corners = np.array([face_clips.CAMERAMAN_BOX[:2], face_clips.CAMERAMAN_BOX[2:]], float)
    moves = {"CNN box on the photo": 0, "moved 4 px down": 4, "moved 8 px down": 8}
    moves["moved 4 px up"] = -4
    found: dict[str, list[tuple[float, ...]]] = {label: [] for label in moves}
    for name in ("cuts_clip", "two_people_clip"):
        clip = getattr(face_clips, name)()
        for frame, scene in zip(clip.frames, clip.scenes, strict=True):
            matrix = scene.people.get("cameraman")
            if matrix is None:
                continue
            truth = face_clips.map_points(matrix, reference)
            box = face_clips.map_points(matrix, corners)
            side, middle = np.abs(box[1] - box[0]).max(), box.mean(axis=0)
            for label, down in moves.items():
                raw = detector._fit_upright(frame, middle + (0, down), side, 0.0)
                row = []
                for points in (raw, detector.settle(frame, raw, careful=True)):
                    row.append(float(np.hypot(*(_eyes(points) - _eyes(truth)).T).max()))
                    row.append(abs(_quad_angle(points) - _quad_angle(truth)))
                found[label].append(tuple(row))
    print("cameraman, one fit per frame (no smoothing), box side ~88 px, vs the settled reference:")
    print("  start box: eye median / p95 px, roll median / max deg; fitted in it | settled")
    for label, values in found.items():
        v = np.array(values)
        cells = [
            f"{np.median(v[:, k]):5.2f} / {np.percentile(v[:, k], 95):5.2f} px, "
            f"{np.median(v[:, k + 1]):5.2f} / {v[:, k + 1].max():5.2f} deg"
            for k in (0, 2)
        ]
        print(f"  {label:21s} {cells[0]} | {cells[1]}  ({len(v)} frames)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", nargs="*", default=list(CLIPS), choices=list(CLIPS))
    parser.add_argument("--boxes", action="store_true", help="the cameraman's box sensitivity")
    args = parser.parse_args()
    score_table(args.clips)
    if args.boxes:
        box_sensitivity()


if __name__ == "__main__":
    main()
