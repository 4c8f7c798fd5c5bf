"""Following one face through a clip, and the temporal side of its geometry.

- `FaceTracker`: picks the face to edit (the N-th largest in the first frame that has N+1
  faces) and then follows that person frame to frame by box overlap and landmark distance,
  never by the order a detector lists faces in.
- `smooth_series`: zero-lag temporal smoothing and gap filling of landmarks (or transform
  parameters): a 3-frame median (removes one-frame glitches), then at every frame the value of
  a least-squares quadratic fitted to the detected frames of a `window`-frame neighbourhood
  (the Savitzky-Golay filter when no frame is missing). A symmetric local polynomial fit
  reproduces any motion that is linear or quadratic over the window exactly, so real motion is
  not delayed (a causal filter such as an exponential average or a One-Euro filter always lags
  a moving head), while independent per-frame jitter loses most of its variance (about 4x for
  9 frames). Clip and shot edges use the fit of the first/last full window, so they do not lag
  either. Short gaps (no detection) follow the fitted curve, longer ones a straight line, and
  the ends of a shot are held. The median changes nothing where motion is monotone and shaves
  at most part of one frame's step at a turning point. N frames in, N frames out.
- `fill_gaps`: frames still without landmarks (a whole shot without the face) are filled from
  the nearest frames; NoFaceError when the clip has no face at all.
- `detect_shots`: cuts from a tiny per-frame thumbnail (scene change) combined with landmark
  jumps and tracker re-acquisitions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ganvid.errors import NoFaceError
from ganvid.face.landmarks import Face

# ----------------------------------------------------------------------------- tracking


@dataclass(frozen=True)
class TrackConfig:
    face_index: int = 0
    """0 = the largest face, 1 = the second largest, ... (in the first frame that has them)."""
    min_iou: float = 0.3
    """Box overlap that identifies the same face in the next frame."""
    max_shift: float = 0.5
    """Otherwise: largest landmark-centre move per frame, in face sizes."""
    reacquire_after: int = 15
    """Frames without the tracked face (while other faces are visible) before picking again."""


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def face_size(points: np.ndarray) -> float:
    """A face's size in pixels: the larger extent of its 68 landmarks."""
    return float(np.ptp(np.asarray(points), axis=0).max())


@dataclass
class TrackStep:
    face: Face | None
    """The tracked face in this frame, or None (not found / not chosen yet)."""
    reacquired: bool = False
    """True when the tracker lost its face and picked one again (treated as a shot cut)."""


class FaceTracker:
    """Online face choice and following; call `update` once per frame, in order."""

    def __init__(self, config: TrackConfig = TrackConfig()) -> None:
        self.config = config
        self.last: Face | None = None
        self.since_seen = 0
        self.max_faces_seen = 0

    def _pick(self, faces: list[Face], strict: bool) -> Face | None:
        ranked = sorted(faces, key=lambda f: f.area, reverse=True)
        index = self.config.face_index
        if index < len(ranked):
            return ranked[index]
        return None if strict else ranked[-1]

    def _match(self, faces: list[Face]) -> Face | None:
        last = self.last
        assert last is not None
        by_iou = max(faces, key=lambda f: box_iou(last.box, f.box))
        if box_iou(last.box, by_iou.box) >= self.config.min_iou:
            return by_iou
        centre = last.points.mean(axis=0)
        size = face_size(last.points)
        reach = self.config.max_shift * min(self.since_seen, 4) * size

        def distance(face: Face) -> float:
            return float(np.hypot(*(face.points.mean(axis=0) - centre)))

        nearest = min(faces, key=distance)
        ratio = face_size(nearest.points) / max(size, 1e-6)
        return nearest if distance(nearest) <= reach and 0.67 <= ratio <= 1.5 else None

    def update(self, faces: list[Face]) -> TrackStep:
        self.max_faces_seen = max(self.max_faces_seen, len(faces))
        self.since_seen += 1
        if not faces:
            return TrackStep(None)
        if self.last is None:
            chosen = self._pick(faces, strict=True)
            reacquired = False
        else:
            chosen = self._match(faces)
            reacquired = False
            if chosen is None and self.since_seen > self.config.reacquire_after:
                chosen, reacquired = self._pick(faces, strict=False), True
        if chosen is not None:
            self.last, self.since_seen = chosen, 0
        return TrackStep(chosen, reacquired)


# ----------------------------------------------------------------------------- smoothing


def shot_ranges(count: int, shot_ids: np.ndarray | None = None) -> list[tuple[int, int]]:
    """[start, stop) ranges of equal consecutive shot ids (the whole clip if None).

    shot_ids: [count] or None. ValueError when there are not `count` of them.
    """
    if count == 0:
        return []
    if shot_ids is None:
        return [(0, count)]
    ids = np.asarray(shot_ids).reshape(-1)
    if len(ids) != count:
        raise ValueError(f"{len(ids)} shot ids for {count} frames")
    cuts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    bounds = [0, *cuts.tolist(), count]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def _despike(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """3-frame running median along axis 0, where a frame and both neighbours are valid."""
    out = x.copy()
    if len(x) < 3:
        return out
    inner = valid[:-2] & valid[1:-1] & valid[2:]
    middle = np.median(np.stack([x[:-2], x[1:-1], x[2:]]), axis=0)
    out[1:-1][inner] = middle[inner]
    return out


def _fit_row(valid: np.ndarray, lo: int, hi: int, at: int, order: int) -> np.ndarray | None:
    """Weights over frames lo..hi-1 whose dot product with the values there gives the value
    at frame `at` of the least-squares polynomial (degree <= order) through the valid ones."""
    positions = np.arange(lo, hi)[valid[lo:hi]] - at
    if len(positions) == 0:
        return None
    degree = min(order, len(positions) - 1)
    vander = np.vander(positions.astype(np.float64), degree + 1, increasing=True)
    row = np.zeros(hi - lo)
    row[valid[lo:hi]] = np.linalg.pinv(vander)[0]
    return row


def _smooth_segment(x: np.ndarray, valid: np.ndarray, window: int, order: int) -> np.ndarray:
    """Local polynomial smoothing of one shot (rows where valid is False are ignored)."""
    length = len(x)
    span = min(window | 1, length if length % 2 else length - 1)
    flat = x.reshape(length, -1)
    out = np.full_like(flat, np.nan)
    if span < 3:
        out[valid] = flat[valid]
    else:
        half = span // 2
        known = np.flatnonzero(valid)
        for i in range(length):
            # a gap frame is fitted only when detected frames surround it within the window
            if not valid[i]:
                after = np.searchsorted(known, i)
                if after == 0 or after == len(known):
                    continue
                if i - known[after - 1] > half or known[after] - i > half:
                    continue
            lo = min(max(i - half, 0), length - span)  # full window, shifted at the edges
            row = _fit_row(valid, lo, lo + span, i, order)
            if row is not None:
                out[i] = row @ np.where(valid[lo : lo + span, None], flat[lo : lo + span], 0.0)
    fitted = np.flatnonzero(~np.isnan(out).any(axis=1))
    if len(fitted):  # longer gaps: straight lines between fitted frames, held at the ends
        frames = np.arange(length)
        for column in range(flat.shape[1]):
            out[:, column] = np.interp(frames, fitted, out[fitted, column])
    return out.reshape(x.shape)


def smooth_series(
    x: np.ndarray,
    window: int = 9,
    order: int = 2,
    shot_ids: np.ndarray | None = None,
    despike: bool = True,
) -> np.ndarray:
    """Zero-lag smoothing and gap filling of x [N, ...] along time (axis 0), shot by shot.

    Rows containing NaN are missing (face not detected). Each frame gets the value at that frame
    of a least-squares polynomial of degree `order` fitted to the present frames of a `window`
    (odd) frames long window around it: with every frame present this is the Savitzky-Golay
    filter (scipy's savgol_filter, mode "interp", edges fitted on the first/last full window).
    A missing frame with present frames on both sides within the window is fitted the same way
    (a short gap follows the curve of the motion); longer gaps are bridged by straight lines;
    before the first and after the last present frame of a shot values are held. `despike`
    first replaces each present frame by the median of itself and its two neighbours (removes
    one-frame detector glitches). window < 3: no smoothing, gaps bridged by straight lines.
    Returns float64; rows stay NaN only in shots with no present frame (see `fill_gaps`).
    """
    x = np.asarray(x, dtype=np.float64)
    valid = ~np.isnan(x.reshape(len(x), -1)).any(axis=1)
    out = np.full_like(x, np.nan)
    for start, stop in shot_ranges(len(x), shot_ids):
        segment, present = x[start:stop], valid[start:stop]
        if not present.any():
            continue
        if despike:
            segment = _despike(segment, present)
        out[start:stop] = _smooth_segment(segment, present, window, order)
    return out


# ----------------------------------------------------------------------------- gaps


def fill_gaps(
    points: np.ndarray, shot_ids: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fill missing frames of points [N, ...] (rows of NaN = not detected).

    Returns (filled [N, ...] float64, interpolated [N] bool). Inside a shot: linear
    interpolation between the nearest detected frames, held at the shot's ends. A shot with no
    detection at all holds the nearest detected frame of the clip. Raises NoFaceError when no
    frame has a face.
    """
    points = np.asarray(points, dtype=np.float64)
    count = len(points)
    flat = points.reshape(count, -1)
    valid = ~np.isnan(flat).any(axis=1)
    if not valid.any():
        raise NoFaceError(f"no face was found in any of the {count} frames")
    filled = flat.copy()
    empty_shots = []
    frames = np.arange(count)
    for start, stop in shot_ranges(count, shot_ids):
        known = frames[start:stop][valid[start:stop]]
        if len(known) == 0:
            empty_shots.append((start, stop))
            continue
        for column in range(flat.shape[1]):
            filled[start:stop, column] = np.interp(frames[start:stop], known, flat[known, column])
    known = frames[valid]
    for start, stop in empty_shots:
        for i in range(start, stop):
            nearest = known[np.argmin(np.abs(known - i))]
            filled[i] = flat[nearest]
    return filled.reshape(points.shape), ~valid


# ----------------------------------------------------------------------------- shots


SIGNATURE_SIDE = 32


def frame_signature(image: np.ndarray) -> np.ndarray:
    """uint8 [32,32] grey thumbnail of a frame, for cheap scene-change tests."""
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    side = (SIGNATURE_SIDE, SIGNATURE_SIDE)
    return cv2.resize(grey, side, interpolation=cv2.INTER_AREA)


def signature_change(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two signatures, in [0, 1]."""
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean() / 255.0)


@dataclass(frozen=True)
class ShotConfig:
    scene_cut: float = 0.25
    """Thumbnail change between two frames with the face that alone means a cut."""
    scene_change: float = 0.08
    """Thumbnail change that means a cut when the face also jumps."""
    face_jump: float = 0.5
    """Landmark-centre jump, in face sizes, between consecutive frames with the face."""


def detect_shots(
    points: np.ndarray,
    scene_change: np.ndarray,
    frame_change: np.ndarray,
    reacquired: np.ndarray,
    config: ShotConfig = ShotConfig(),
) -> np.ndarray:
    """Shot id [N] int (0, 1, ...) per frame.

    points [N,68,2]: raw landmarks, NaN where not detected. scene_change [N]: thumbnail change
    from the previous frame *with the face* (NaN where no face). frame_change [N]: thumbnail
    change from the previous frame (any). reacquired [N]: tracker re-picked its face.
    Frames without a face between two shots go with the later shot unless the frame-to-frame
    change shows the cut earlier: the cut is put where that change peaks.
    """
    count = len(points)
    detected = ~np.isnan(np.asarray(points).reshape(count, -1)).any(axis=1)
    shot_ids = np.zeros(count, dtype=np.int64)
    previous = None
    for j in np.flatnonzero(detected):
        if previous is not None and _is_cut(
            points[previous], points[j], scene_change[j], bool(reacquired[j]), config
        ):
            between = np.asarray(frame_change[previous + 1 : j + 1], dtype=np.float64)
            cut = previous + 1 + int(np.argmax(between))
            shot_ids[cut:] += 1
        previous = j
    return shot_ids


def _is_cut(
    before: np.ndarray, after: np.ndarray, change: float, reacquired: bool, config: ShotConfig
) -> bool:
    if reacquired or change > config.scene_cut:
        return True
    jump = np.hypot(*(after.mean(axis=0) - before.mean(axis=0))) / max(face_size(before), 1e-6)
    return bool(change > config.scene_change and jump > config.face_jump)
