"""Turn per-frame tracker output (:class:`~csip_reid.core.detections.Detections` with track ids) into :class:`~csip_reid.core.tracklet.Tracklet` objects.

Memory per track is bounded: the observation arrays (frame, time, box, score: a few floats per
frame) are kept in full, but crops are sampled with a stride-doubling scheme. Observation ``k``
(0-based, counted per track) is kept when ``k % s == 0``; when a new crop would exceed
``max_samples``, every other kept crop is dropped and ``s`` doubles. The kept crops are therefore
always evenly spaced, start at the first observation, reach within ``s`` observations of the last
one, and number between ``max_samples / 2`` and ``max_samples`` once the track is long enough.

Each kept crop also records what the embedder's pooling needs to judge it: the detector's
confidence, the share of its box that other tracked people's boxes cover in that frame (a crowd:
the crop may show someone else), and whether the box touches the frame edge (the person may be
cut off).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from csip_reid.core.detections import Detections
from csip_reid.core.tracklet import Tracklet

#: A box within this many pixels of the frame edge counts as cut by it.
EDGE_PX = 2.0


def covered_share(boxes: np.ndarray) -> np.ndarray:
    """(N,) share of each ``x1, y1, x2, y2`` box that the union of the other boxes covers.

    The union is measured exactly, on the grid of the edges of the boxes that meet each box, so
    two people in front of a third are not counted twice.
    """
    n = len(boxes)
    out = np.zeros(n, np.float32)
    if n < 2:
        return out
    x1, y1, x2, y2 = boxes.T
    meets = (x1[:, None] < x2[None, :]) & (x1[None, :] < x2[:, None]) & (y1[:, None] < y2[None, :]) & \
            (y1[None, :] < y2[:, None])
    np.fill_diagonal(meets, False)
    for i in np.flatnonzero(meets.any(1)):
        own = (x2[i] - x1[i]) * (y2[i] - y1[i])
        if own <= 0:
            continue
        o = boxes[meets[i]].copy()
        o[:, [0, 2]] = o[:, [0, 2]].clip(x1[i], x2[i])
        o[:, [1, 3]] = o[:, [1, 3]].clip(y1[i], y2[i])
        xs, ys = np.unique(o[:, [0, 2]]), np.unique(o[:, [1, 3]])
        cx, cy = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2
        cover = (((o[:, 0, None] <= cx) & (cx < o[:, 2, None]))[:, None, :]
                 & ((o[:, 1, None] <= cy) & (cy < o[:, 3, None]))[:, :, None]).any(0)
        out[i] = float((np.diff(ys)[:, None] * np.diff(xs)[None, :] * cover).sum() / own)
    return out


@dataclass
class _Sample:
    obs: int
    frame: int
    crop: np.ndarray
    box: np.ndarray
    keypoints: np.ndarray | None
    score: float = float("nan")
    overlap: float = 0.0
    cut: bool = False


@dataclass
class _Track:
    track_id: int
    frames: list[int] = field(default_factory=list)
    timestamps: list[float] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    samples: list[_Sample] = field(default_factory=list)
    stride: int = 1
    thumb_key: tuple[float, float] = (-1.0, -1.0)
    thumbnail: np.ndarray | None = None

    @property
    def last_frame(self) -> int:
        return self.frames[-1]


class TrackletBuilder:
    """Collect tracker output frame by frame and emit finished tracklets.

    Args:
        video: Video identifier stored in each tracklet (usually its path).
        camera: Camera name stored in each tracklet.
        max_samples: Most crops kept per track (see the module docstring).
        min_frames: Tracks observed in fewer frames are dropped.
        min_box_height: Tracks whose median box height (pixels) is smaller are dropped.
        crop_margin: Crops extend each box by this fraction of its width/height on every side.
        thumb_height: Height in pixels of the thumbnail (crop of the most confident observation).
        lost_after: A track not seen for more than this many frame indices is finished. Set it to
            at least the tracker's lost-track buffer (in frame indices, i.e. times the stride) so a
            finished track can no longer come back.
    """

    def __init__(
        self,
        video: str,
        camera: str,
        max_samples: int = 16,
        min_frames: int = 5,
        min_box_height: float = 32,
        crop_margin: float = 0.0,
        thumb_height: int = 128,
        lost_after: int = 30,
    ) -> None:
        if max_samples < 2:
            raise ValueError("max_samples must be >= 2")
        self.video = video
        self.camera = camera
        self.max_samples = int(max_samples)
        self.min_frames = int(min_frames)
        self.min_box_height = float(min_box_height)
        self.crop_margin = float(crop_margin)
        self.thumb_height = int(thumb_height)
        self.lost_after = int(lost_after)
        self._active: dict[int, _Track] = {}
        #: Tracks dropped by the min_frames / min_box_height filters so far.
        self.dropped = 0

    @property
    def open(self) -> bool:
        """Whether a track is still open (seen within ``lost_after`` frames of the last update)."""
        return bool(self._active)

    # -- per frame ---------------------------------------------------------------------------
    def update(self, frame_index: int, timestamp: float, frame: np.ndarray, tracked: Detections) -> list[Tracklet]:
        """Add one frame of tracker output; return the tracks that finished.

        Args:
            frame_index: Index of ``frame`` in the video.
            timestamp: Its time in seconds.
            frame: BGR uint8 frame (crops are copied out of it).
            tracked: What the tracker returned for this frame: detections with ``tracker_id``
                (and, from a pose detector, COCO-17 ``keypoints`` in frame pixels).
        """
        if tracked.tracker_id is None:
            raise ValueError("TrackletBuilder.update needs tracked detections (tracker_id set)")
        h, w = frame.shape[:2]
        boxes = tracked.xyxy.copy()
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        overlap = covered_share(boxes)
        cut = (boxes[:, 0] <= EDGE_PX) | (boxes[:, 1] <= EDGE_PX) | (boxes[:, 2] >= w - EDGE_PX) | (boxes[:, 3] >= h - EDGE_PX)
        for i, tid in enumerate(tracked.tracker_id):
            track = self._active.get(int(tid))
            if track is None:
                track = self._active[int(tid)] = _Track(int(tid))
            kps = None if tracked.keypoints is None else tracked.keypoints[i]
            self._observe(track, frame_index, timestamp, frame, boxes[i], float(tracked.conf[i]), kps,
                          (float(overlap[i]), bool(cut[i])))
        lost = [t for t in self._active.values() if frame_index - t.last_frame > self.lost_after]
        return self._close(lost)

    def finish(self) -> list[Tracklet]:
        """Close every remaining track (end of the video)."""
        return self._close(list(self._active.values()))

    # -- internals -----------------------------------------------------------------------------
    def _crop_box(self, box: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        h, w = shape[:2]
        bw, bh = box[2] - box[0], box[3] - box[1]
        m = self.crop_margin
        x1, y1 = np.floor([box[0] - m * bw, box[1] - m * bh])
        x2, y2 = np.ceil([box[2] + m * bw, box[3] + m * bh])
        return np.array([max(0, x1), max(0, y1), min(w, x2), min(h, y2)], np.float32)

    def _observe(
        self,
        track: _Track,
        frame_index: int,
        timestamp: float,
        frame: np.ndarray,
        box: np.ndarray,
        score: float,
        kps: np.ndarray | None,
        quality: tuple[float, bool] = (0.0, False),
    ) -> None:
        obs = len(track.frames)
        track.frames.append(int(frame_index))
        track.timestamps.append(float(timestamp))
        track.boxes.append(box)
        track.scores.append(score)
        cbox = self._crop_box(box, frame.shape)
        x1, y1, x2, y2 = cbox.astype(int)
        if x2 <= x1 or y2 <= y1:
            return  # empty after clipping: nothing to crop

        key = (score, float((x2 - x1) * (y2 - y1)))
        if key > track.thumb_key:
            crop = frame[y1:y2, x1:x2]
            tw = max(1, round(crop.shape[1] * self.thumb_height / crop.shape[0]))
            track.thumbnail = cv2.resize(crop, (tw, self.thumb_height), interpolation=cv2.INTER_AREA)
            track.thumb_key = key

        if obs % track.stride:
            return
        if len(track.samples) >= self.max_samples:
            track.stride *= 2
            track.samples = [s for s in track.samples if s.obs % track.stride == 0]
            if obs % track.stride:
                return
        if kps is not None:
            kps = np.asarray(kps, np.float32).reshape(17, 3).copy()
            kps[:, 0] -= cbox[0]
            kps[:, 1] -= cbox[1]
        track.samples.append(_Sample(obs, int(frame_index), frame[y1:y2, x1:x2].copy(), cbox, kps, score, *quality))

    def _close(self, tracks: list[_Track]) -> list[Tracklet]:
        out = []
        for track in sorted(tracks, key=lambda t: (t.frames[0], t.track_id)):
            del self._active[track.track_id]
            tracklet = self._to_tracklet(track)
            if tracklet is None:
                self.dropped += 1
            else:
                out.append(tracklet)
        return out

    def _to_tracklet(self, track: _Track) -> Tracklet | None:
        boxes = np.stack(track.boxes)
        if len(track.frames) < self.min_frames or not track.samples:
            return None
        if float(np.median(boxes[:, 3] - boxes[:, 1])) < self.min_box_height:
            return None
        keypoints = None
        if any(s.keypoints is not None for s in track.samples):
            nan = np.full((17, 3), np.nan, np.float32)
            keypoints = np.stack([nan if s.keypoints is None else s.keypoints for s in track.samples])
        return Tracklet(
            video=self.video,
            camera=self.camera,
            track_id=track.track_id,
            frames=np.asarray(track.frames),
            timestamps=np.asarray(track.timestamps),
            boxes=boxes,
            scores=np.asarray(track.scores),
            sample_frames=np.asarray([s.frame for s in track.samples]),
            crops=[s.crop for s in track.samples],
            sample_boxes=np.stack([s.box for s in track.samples]),
            sample_scores=np.array([s.score for s in track.samples], np.float32),
            sample_overlap=np.array([s.overlap for s in track.samples], np.float32),
            sample_cut=np.array([s.cut for s in track.samples], bool),
            keypoints=keypoints,
            thumbnail=track.thumbnail,
            sample_stride=track.stride,
        )
