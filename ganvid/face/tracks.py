"""Face tracks over a whole clip, shot cuts from the picture, and the choice of the face to edit.

One streaming pass (`ClipTracker.update`, once per frame, in order) keeps per frame only a few
numbers and, per face track, its landmarks; no frame is kept beyond the previous one.

- **Blank frames** (black, grey, fades: almost no contrast) are never searched for faces and
  never start or end anything; a cut is judged between the non-blank frames around them.
- **Candidates are verified**: a detection must have a face-like landmark layout (eyes level
  and apart, nose and mouth below them, in proportion); a track whose detections are all weak
  (detector score under `sure_score`, e.g. dlib HOG on a badge or a logo) must be confirmed
  by the detector's second opinion (`recheck`: dlib's CNN detector on an upright crop), asked
  at most once every `verify_every` frames (doubling); tracks never confirmed are dropped.
  Very weak detections of a confirmed face (under `refit_score`) are refitted in the CNN's
  box, whose landmarks are far better than those from a weak HOG box. Every face a confirmed
  track takes is then settled (`settle`: refitted in the box its own landmarks give), so its
  landmarks do not depend on which detector's box it came in (carefully, on the median of
  nearby boxes, for tracks whose detections are weak).
- **Small faces**: while no face is followed, every `small_every` frames the full-resolution
  frame is searched too (the per-frame search runs on the frame scaled to 640 px); once found,
  a small face is followed by the upright re-detection below, at ~110 px. While faces are
  followed, a small face entering is found by a rolling search: every `tile_every` frames one
  `tile_side` square of the full-resolution frame (the next, in turn; they overlap so a face
  on a seam is whole in one), so the cost per frame is bounded whatever the frame size.
- **Tracks**: detections are linked to the live tracks of the current shot by box overlap or,
  failing that, by landmark-centre distance within a reach that grows with the frames missed,
  and a plausible size change. A track that misses a frame is searched for again on an upright
  crop around its last landmarks, scaled so the face is ~110 px (`detect_upright`): this finds
  a face rolled beyond the frontal detector's range, a small face, or one the full-frame pass
  missed. A track ends after `max_gap` frames without its face, or at a cut. Never re-linked
  silently: a face that comes back after its track ended starts a new track.
- **Cuts**: a large colour-histogram change is a cut; a moderate picture change (histogram or
  32x32 thumbnail) is a cut when the faces do not continue (no face where one was, or another
  person where one was: identity vectors differ). Fast motion alone changes neither the
  histogram nor the identity much, so it is not a cut.
- **People**: at the end, tracks of the same person are merged: each track's identity is the
  mean of the identity vectors of its best views (one poor view of a face looking down can
  sit near the threshold; the mean of a few does not), and the closest pair of people whose
  tracks never overlap in time is merged first while their mean identities are under
  `same_person` (average linkage, so the order the tracks come in does not matter). People
  are ranked by a clip-level rule, detected frames x median face size, so
  `--face 0` is the main face of the whole clip, never the largest box of one frame.

Why one module of ~570 lines: the tracker's rules (verification, following, cuts, people) read
one another's state frame by frame in `ClipTracker.update`; apart, each would need the whole
tracker passed in. The picture measures and the contact sheet at either end are small.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ganvid.face.landmarks import Detector, Face, detect_upright

# ----------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class TrackConfig:
    face_index: int = 0
    """Which person to follow: 0 = the main face of the clip (most detected frames x median
    size), 1 = the next, ... (`ganvid faces` lists them)."""
    min_iou: float = 0.3
    """Box overlap that identifies the same face in the next frame."""
    max_shift: float = 0.75
    """Otherwise: largest landmark-centre move per frame missed, in face sizes."""
    max_gap: int = 4
    """Frames a lost track is searched for (full frame and upright crop) before it ends: a
    face missing longer has probably left; if it comes back it starts a new track of the same
    person, and the frames between pass through untouched."""
    sure_score: float = 0.8
    """Detector score at or above which a detection needs no second opinion (dlib HOG: a clear
    face scores ~1; badges and patterns 0.05-0.5)."""
    refit_score: float = 0.3
    """On a confirmed track, detections under this score are refitted in the second opinion's
    box (or dropped when it sees no face there)."""
    verify_every: int = 8
    """Frames before a not-yet-confirmed track is asked about again (doubling after each no)."""
    same_person: float = 0.6
    """Identity-vector distance under which two faces are one person (dlib's face-recognition
    model is trained so that the same person is under 0.6; other people measure 0.75-0.85 on
    the test clips, the same one 0.05-0.55)."""
    cut_histogram: float = 0.45
    """Colour-histogram change (0..1) that alone means a cut."""
    picture_change: float = 0.12
    """Histogram or thumbnail change from which a face that does not continue means a cut."""
    small_every: int = 25
    """While no face is followed, search the full-resolution frame for small faces this often
    (when the detector can: dlib's `detect_small`)."""
    tile_every: int = 10
    """While faces are followed in a frame larger than `tile_side`, search one tile of the
    full-resolution frame for new small faces this often (0 = never): at 1080p a tile costs
    about 0.07 s of CPU, 7 ms a frame, and the 24 tiles are all seen every 10 s at 24 fps."""
    tile_side: int = 384
    """Side of those tiles in frame pixels (searched upsampled twice, like the 640 px frame)."""
    tile_overlap: int = 64
    """Overlap of neighbouring tiles (more than a 40 px face)."""
    blank_contrast: float = 6.0
    """Grey-level standard deviation under which a frame is blank (no face is looked for)."""


# ----------------------------------------------------------------------------- picture facts

THUMB_SIDE = 32
HIST_BINS = 8


def face_size(points: np.ndarray) -> float:
    """A face's size in pixels: the larger extent of its 68 landmarks."""
    return float(np.ptp(np.asarray(points), axis=0).max())


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass
class Picture:
    """Cheap per-frame facts for cut and blank tests."""

    thumb: np.ndarray
    """uint8 [32,32] grey thumbnail."""
    histogram: np.ndarray
    """[8*8*8] float32 RGB histogram, sums to 1."""
    contrast: float
    """Standard deviation of the grey thumbnail."""


def picture(image: np.ndarray) -> Picture:
    import cv2

    small = cv2.resize(np.ascontiguousarray(image), (64, 48), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    thumb = cv2.resize(grey, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA)
    bins = (small // (256 // HIST_BINS)).reshape(-1, 3).astype(np.int64)
    index = (bins[:, 0] * HIST_BINS + bins[:, 1]) * HIST_BINS + bins[:, 2]
    histogram = np.bincount(index, minlength=HIST_BINS**3).astype(np.float32)
    histogram /= histogram.sum()
    return Picture(thumb, histogram, float(grey.std()))


def histogram_change(a: Picture, b: Picture) -> float:
    """Half the L1 distance of the colour histograms, in [0, 1]."""
    return float(np.abs(a.histogram - b.histogram).sum() / 2)


def thumb_change(a: Picture, b: Picture) -> float:
    """Mean absolute difference of the grey thumbnails, in [0, 1]."""
    return float(np.abs(a.thumb.astype(np.float32) - b.thumb.astype(np.float32)).mean() / 255)


def plausible(face: Face) -> bool:
    """Does the landmark layout look like a face (not a detector's guess on a pattern)?

    In the face's own upright frame: the eyes are apart by 0.25-0.6 of the landmark extent,
    the nose tip and the mouth lie below the eye line (mouth 0.6-1.7 eye distances), the mouth
    is below the nose, and the face is turned less than 70 degrees.
    """
    points = np.asarray(face.points, dtype=np.float64)
    if points.shape != (68, 2) or not np.isfinite(points).all():
        return False
    left, right = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
    eye_line = right - left
    eyes = float(np.hypot(*eye_line))
    size = face_size(points)
    if size < 8 or not 0.25 * size <= eyes <= 0.6 * size:
        return False
    if abs(np.degrees(np.arctan2(eye_line[1], eye_line[0]))) > 70:
        return False
    down = np.array([-eye_line[1], eye_line[0]]) / eyes  # eye line turned +90 deg (y down)
    middle = (left + right) / 2
    nose = float((points[30] - middle) @ down) / eyes
    mouth = float((points[48:68].mean(axis=0) - middle) @ down) / eyes
    return 0.2 < nose < mouth and 0.6 <= mouth <= 1.7


# ----------------------------------------------------------------------------- tracks


@dataclass
class FaceTrack:
    """One face followed through consecutive frames of one shot."""

    id: int
    shot: int
    frames: list[int] = field(default_factory=list)
    points: list[np.ndarray] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    confirmed: bool = False
    ask_at: int = 0
    """Frame from which a second opinion may be asked (again)."""
    asked: int = 0
    """Second opinions asked so far (each no doubles the wait)."""
    best: float = -1.0
    """Quality (score x size) of the frame the thumbnail and identity come from."""
    best_frame: int = -1
    described: float = -1.0
    """Quality of the best view an identity vector comes from."""
    thumbnail: np.ndarray | None = None
    identities: list[np.ndarray] = field(default_factory=list)
    """Identity vectors of the track's successively better views."""

    @property
    def identity(self) -> np.ndarray | None:
        """The mean identity vector of the track's views (None: never described)."""
        return np.mean(self.identities, axis=0) if self.identities else None

    @property
    def last_points(self) -> np.ndarray:
        return self.points[-1]

    @property
    def first(self) -> int:
        return self.frames[0]

    @property
    def last(self) -> int:
        return self.frames[-1]

    def median_size(self) -> float:
        return float(np.median([face_size(p) for p in self.points]))

    def summary(self) -> dict[str, Any]:
        centres = np.array([p.mean(axis=0) for p in self.points])
        return {
            "track": self.id,
            "shot": self.shot,
            "first": self.first,
            "last": self.last,
            "frames": len(self.frames),
            "median_size": round(self.median_size(), 1),
            "centre": np.round(np.median(centres, axis=0), 1).tolist(),
            "score": round(float(np.median(self.scores)), 3),
        }


@dataclass
class Person:
    """One or more tracks of the same face (never two at once)."""

    tracks: list[FaceTrack]

    @property
    def frames(self) -> int:
        return sum(len(t.frames) for t in self.tracks)

    def median_size(self) -> float:
        return float(np.median([face_size(p) for t in self.tracks for p in t.points]))

    @property
    def weight(self) -> float:
        """The clip-level rule: detected frames x median face size."""
        return self.frames * self.median_size()

    def best_track(self) -> FaceTrack:
        return max(self.tracks, key=lambda t: t.best)

    def summary(self, index: int) -> dict[str, Any]:
        return {
            "face": index,
            "frames": self.frames,
            "median_size": round(self.median_size(), 1),
            "first": min(t.first for t in self.tracks),
            "last": max(t.last for t in self.tracks),
            "tracks": [t.summary() for t in self.tracks],
        }


THUMBNAIL_SIDE = 128


class ClipTracker:
    """Streams a clip's frames into face tracks, shot ids and blank flags.

    `detector` does the per-frame search (it may cache); `helper` (default: the same) answers
    region searches, second opinions and identities when it has them.
    """

    def __init__(
        self, detector: Detector, config: TrackConfig = TrackConfig(), helper: Any = None
    ) -> None:
        self.detector, self.helper, self.config = detector, helper or detector, config
        self.tracks: list[FaceTrack] = []
        self.live: list[FaceTrack] = []
        self.shot_ids: list[int] = []
        self.blank: list[bool] = []
        self.cuts: list[int] = []
        self.max_faces = 0
        self.width = self.height = 0
        self._previous: tuple[int, np.ndarray, Picture, list[Face]] | None = None
        self._identities: dict[int, np.ndarray] = {}
        """Identity vectors of the previous frame's faces (by object id), reused once."""
        self._small_at = 0
        """Frame from which the next full-resolution search for small faces may run."""
        self._tile = 0
        """The tile the next rolling search looks at."""

    # -- one frame

    def update(self, index: int, image: np.ndarray) -> None:
        self.height, self.width = image.shape[:2]
        facts = picture(image)
        if facts.contrast < self.config.blank_contrast:
            self.blank.append(True)
            self.shot_ids.append(len(self.cuts))
            return
        seek = getattr(self.detector, "seek", None)
        if seek is not None:  # a caching detector keys its store by frame index
            seek(index)
        faces = [f for f in self.detector.detect(image) if plausible(f)]
        faces += self._search_small(index, image, faces)
        if self._previous is not None and self._is_cut(image, facts, faces):
            self.cuts.append(self._previous[0] + 1)  # blank frames before it join the new shot
            self.live = []
            for k in range(self._previous[0] + 1, index):
                self.shot_ids[k] = len(self.cuts)
        self.blank.append(False)
        self.shot_ids.append(len(self.cuts))
        self.max_faces = max(self.max_faces, len(faces))
        self._link(index, image, faces)
        self._previous = (index, image, facts, faces)
        self._identities = {k: v for k, v in self._identities.items() if k in map(id, faces)}

    def _search_small(self, index: int, image: np.ndarray, faces: list[Face]) -> list[Face]:
        """New faces from a full-resolution search, when one is due (see the module notes)."""
        config = self.config
        detect_small = getattr(self.helper, "detect_small", None)
        if detect_small is None:
            return []
        if not faces and not self.live:
            if index < self._small_at:  # upsampling only where needed: no face so far
                return []
            self._small_at = index + config.small_every
            return [f for f in detect_small(image) if plausible(f)]
        tiles = frame_tiles(image.shape[1], image.shape[0], config.tile_side, config.tile_overlap)
        if config.tile_every <= 0 or len(tiles) < 2 or index % config.tile_every:
            return []
        region = tiles[self._tile % len(tiles)]
        self._tile += 1
        known = [g.box for g in faces] + [t.boxes[-1] for t in self.live]
        inner = np.array(region, dtype=np.float64) + (1, 1, -1, -1)
        # a face cut by the tile's edge is whole in the next tile or large enough for the
        # per-frame search; one on a face already known is that face (a part, its badge)
        return [
            f
            for f in detect_small(image, region)
            if plausible(f)
            and (f.box[:2] >= inner[:2]).all()
            and (f.box[2:] <= inner[2:]).all()
            and not any(box_iou(f.box, box) > 0.05 for box in known)
        ]

    def _is_cut(self, image: np.ndarray, facts: Picture, faces: list[Face]) -> bool:
        """A cut between the previous non-blank frame and this one?

        Colour change >= cut_histogram: yes. Picture change under picture_change: no. Else the
        faces decide: none continues (another person, by identity, or by place without an
        identity model): yes; the same person jumped elsewhere with a clear colour change
        (another camera angle): yes; otherwise (fast motion, a light change): no.
        """
        config = self.config
        _, before_image, before, before_faces = self._previous
        colour = histogram_change(before, facts)
        if colour >= config.cut_histogram:
            return True
        if max(colour, thumb_change(before, facts)) < config.picture_change:
            return False
        if not faces and not before_faces:
            return False
        if not faces or not before_faces:  # a face appeared or vanished: a clear change needed
            return colour >= config.cut_histogram / 2
        same = [
            (a, b) for a in before_faces for b in faces if _same_place(a, b, 1, config.max_shift)
        ]
        describe = getattr(self.helper, "describe", None)
        if describe is None:  # no identity model: by place only
            return not same
        known = self._identities
        pairs = same or [(a, b) for a in before_faces for b in faces]
        for a, b in pairs:
            if id(a) not in known:
                known[id(a)] = describe(before_image, a)
            if id(b) not in known:
                known[id(b)] = describe(image, b)
            if np.linalg.norm(known[id(a)] - known[id(b)]) < config.same_person:
                return not same and colour >= config.cut_histogram * 2 / 3
        return True

    def _link(self, index: int, image: np.ndarray, faces: list[Face]) -> None:
        config = self.config
        free = list(faces)
        unmatched = []
        # tracks seen most recently first: they have the tightest reach
        for track in sorted(self.live, key=lambda t: -t.last):
            gap = index - track.last
            face = _closest(track, free, gap, config)
            if face is not None:
                free = [f for f in free if f is not face]
                self._extend(track, index, image, face)
            else:
                unmatched.append(track)
        for track in unmatched:
            if not track.confirmed:  # no effort on what may be a pattern
                continue
            found = [
                f
                for f in detect_upright(self.helper, image, track.last_points)
                if plausible(f) and not any(box_iou(f.box, g.box) > 0.3 for g in faces)
            ]
            face = _closest(track, found, index - track.last, config)
            if face is not None:
                self._extend(track, index, image, face)
        for face in free:
            track = FaceTrack(id=len(self.tracks), shot=len(self.cuts))
            self.tracks.append(track)
            self.live.append(track)
            self._extend(track, index, image, face)
        self.live = [t for t in self.live if index - t.last <= config.max_gap]

    def _extend(self, track: FaceTrack, index: int, image: np.ndarray, face: Face) -> None:
        config = self.config
        recheck = getattr(self.helper, "recheck", None)
        if recheck is not None and face.score < config.sure_score:
            if not track.confirmed and index >= track.ask_at:
                track.ask_at = index + config.verify_every * 2**track.asked
                track.asked += 1
                better = recheck(image, face)
                track.confirmed = better is not None
                face = better or face
            elif track.confirmed and face.score < config.refit_score:
                better = recheck(image, face)
                if better is None:  # a doubtful detection on a known face: count it missed
                    return
                face = better
        elif face.score >= config.sure_score:
            track.confirmed = True
        settle = getattr(self.helper, "settle", None)
        if settle is not None and track.confirmed:  # landmarks that do not follow the box
            careful = float(np.median([*track.scores, face.score])) < config.refit_score
            face = Face(face.box, face.score, settle(image, face.points, careful))
        track.frames.append(index)
        track.points.append(np.asarray(face.points, dtype=np.float64))
        track.boxes.append(np.asarray(face.box, dtype=np.float64))
        track.scores.append(float(face.score))
        quality = min(face.score, 2.0) * face_size(face.points)
        if quality > track.best * 1.1:
            track.best, track.best_frame = quality, index
            track.thumbnail = _thumbnail(image, face.points)
        describe = getattr(self.helper, "describe", None)
        if track.confirmed and describe is not None and quality > track.described * 1.25:
            track.described = quality  # identity from a clearly better view only (~0.1 s)
            track.identities.append(describe(image, face))

    # -- the clip

    def people(self) -> list[Person]:
        """Confirmed tracks grouped into people, main face first."""
        people = [Person([t]) for t in self.tracks if t.confirmed]
        while True:  # average linkage: merge the closest pair first
            pairs = [
                (distance, i, j)
                for i in range(len(people))
                for j in range(i + 1, len(people))
                if (distance := _identity_distance(people[i], people[j])) is not None
            ]
            if not pairs:
                break
            distance, i, j = min(pairs)
            if distance >= self.config.same_person:
                break
            people[i].tracks.extend(people.pop(j).tracks)
        for person in people:
            person.tracks.sort(key=lambda t: t.first)

        def rank(person: Person) -> tuple[float, float]:
            first = min(person.tracks, key=lambda t: t.first)
            # ties (within 5 %) go to the face larger when first seen
            return (
                round(np.log(max(person.weight, 1e-9)) / np.log(1.05)),
                face_size(first.points[0]),
            )

        return sorted(people, key=rank, reverse=True)


def _identity_distance(a: Person, b: Person) -> float | None:
    """Distance of two people's mean identity vectors (over all their tracks' views); None when
    one was never described or when two of their tracks overlap in time (two faces at once are
    two people)."""
    views_a = [v for t in a.tracks for v in t.identities]
    views_b = [v for t in b.tracks for v in t.identities]
    if not views_a or not views_b:
        return None
    for s in a.tracks:
        for t in b.tracks:
            if not (s.last < t.first or t.last < s.first):
                return None
    return float(np.linalg.norm(np.mean(views_a, axis=0) - np.mean(views_b, axis=0)))


def frame_tiles(
    width: int, height: int, side: int, overlap: int
) -> list[tuple[int, int, int, int]]:
    """(x0, y0, x1, y1) squares of `side` px covering a width x height frame, neighbours
    overlapping by at least `overlap` px, row by row (one tile when the frame fits in one)."""

    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        count = int(np.ceil((length - overlap) / (side - overlap)))
        return np.round(np.linspace(0, length - side, count)).astype(int).tolist()

    return [
        (x, y, min(x + side, width), min(y + side, height))
        for y in starts(height)
        for x in starts(width)
    ]


def _centre(points: np.ndarray) -> np.ndarray:
    return np.asarray(points).mean(axis=0)


def _same_place(a: Face, b: Face, gap: int, max_shift: float = 0.5) -> bool:
    size = face_size(a.points)
    ratio = face_size(b.points) / max(size, 1e-6)
    distance = np.hypot(*(_centre(a.points) - _centre(b.points)))
    return bool(distance <= max_shift * min(gap, 4) * size and 0.67 <= ratio <= 1.5)


def _closest(track: FaceTrack, faces: list[Face], gap: int, config: TrackConfig) -> Face | None:
    if not faces:
        return None
    last_box = track.boxes[-1]
    by_iou = max(faces, key=lambda f: box_iou(last_box, f.box))
    if box_iou(last_box, by_iou.box) >= config.min_iou:
        return by_iou
    last = Face(last_box, 0.0, track.last_points)
    centre = _centre(track.last_points)
    nearest = min(faces, key=lambda f: float(np.hypot(*(_centre(f.points) - centre))))
    return nearest if _same_place(last, nearest, gap, config.max_shift) else None


def _thumbnail(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    from ganvid.face.align import CropConfig, alignment_quad, ffhq_crop

    return ffhq_crop(image, alignment_quad(points), CropConfig(THUMBNAIL_SIDE, "reflect"))


def contact_sheet(people: list[Person], columns: int = 6) -> np.ndarray:
    """uint8 RGB image: one labelled thumbnail per person ("face N", what `--face` takes)."""
    import cv2

    side, label = THUMBNAIL_SIDE, 22
    count = max(len(people), 1)
    rows = (count + columns - 1) // columns
    cols = min(count, columns)
    sheet = np.full((rows * (side + label), cols * side, 3), 32, np.uint8)
    for k, person in enumerate(people):
        row, col = divmod(k, columns)
        top, left = row * (side + label), col * side
        thumb = person.best_track().thumbnail
        if thumb is not None:
            sheet[top : top + side, left : left + side] = thumb
        text = f"face {k}: {person.frames} fr"
        cv2.putText(
            sheet,
            text,
            (left + 4, top + side + 16),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    return sheet
