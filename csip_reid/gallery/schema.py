"""Gallery on-disk schema (SQLite) and the records read back from it.

SQLite is the gallery's source of truth; the FAISS index is derived from the ``tracklets.embedding``
column. Arrays are stored as raw little-endian blobs (``ndarray.tobytes()``) with fixed dtypes, so
any SQLite client plus numpy can read a gallery without this package:

==================  ================  ===========================================
column              dtype             shape
==================  ================  ===========================================
frames              int64             (N,)
timestamps          float64           (N,)
boxes               float32           (N, 4)  x1, y1, x2, y2 in source pixels
scores              float32           (N,)    may be NULL
sample_frames       int64             (S,)
embedding           float32           (D,)    L2-normalised
skeleton            float32           (S, 17, 3) may be NULL
vectors.vec         float32           (D',)   one row per (tracklet, space)
==================  ================  ===========================================

Schema versions (``PRAGMA user_version``; the full format is in ``docs/gallery-format.md``):

* 1 (csip-reid 0.1): meta, videos, tracklets, vectors.
* 2: ``videos.start_time`` (wall-clock start, ISO 8601 UTC or NULL) and the identity tables
  ``identities``, ``identity_members`` and ``labels``. A version-1 gallery opens read-only as it is
  (the missing column and tables read as empty); its first writer migrates it in one transaction
  (:data:`MIGRATIONS`).
* 3: ``resume_points``: a video being indexed in segments (``reid index`` of a long file) has one
  row, its resume point; the video's stored tracklets are the segments committed so far. Readers
  list it with status ``partial``; it counts as indexed once the row is gone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from csip_reid.core.tracklet import Tracklet
from csip_reid.core.walltime import offset_time as wall_time

FORMAT = "csip-reid/gallery"
SCHEMA_VERSION = 3

DDL = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS videos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    content_hash TEXT,
    camera TEXT,
    fps REAL,
    num_frames INTEGER,
    width INTEGER,
    height INTEGER,
    status TEXT NOT NULL CHECK (status IN ('indexed', 'failed')),
    indexed_at TEXT NOT NULL,
    embedder_fp TEXT,
    stats_json TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    thumb_dir TEXT,
    start_time TEXT
);
CREATE INDEX IF NOT EXISTS videos_by_hash ON videos (content_hash, embedder_fp);
CREATE INDEX IF NOT EXISTS videos_by_name ON videos (name);
CREATE TABLE IF NOT EXISTS tracklets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id INTEGER NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    camera TEXT,
    track_id INTEGER NOT NULL,
    start_frame INTEGER NOT NULL,
    end_frame INTEGER NOT NULL,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    num_frames INTEGER NOT NULL,
    boxes BLOB NOT NULL,
    frames BLOB NOT NULL,
    timestamps BLOB NOT NULL,
    scores BLOB,
    thumb_path TEXT,
    embedding BLOB NOT NULL,
    skeleton BLOB,
    skeleton_format TEXT,
    sample_frames BLOB NOT NULL,
    extra_json TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS tracklets_by_video ON tracklets (video_id);
CREATE TABLE IF NOT EXISTS vectors (
    tracklet_id INTEGER NOT NULL REFERENCES tracklets (id) ON DELETE CASCADE,
    space TEXT NOT NULL,
    vec BLOB NOT NULL,
    PRIMARY KEY (tracklet_id, space)
);
"""
#: Tables of schema version 2: people (identities), which tracklets they hold, and user labels.
IDENTITY_DDL = """
CREATE TABLE IF NOT EXISTS identities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT,
    confirmed INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS identity_members (
    tracklet_id INTEGER PRIMARY KEY REFERENCES tracklets (id) ON DELETE CASCADE,
    identity_id INTEGER NOT NULL REFERENCES identities (id) ON DELETE CASCADE,
    score REAL
);
CREATE INDEX IF NOT EXISTS members_by_identity ON identity_members (identity_id);
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    a INTEGER NOT NULL REFERENCES tracklets (id) ON DELETE CASCADE,
    b INTEGER REFERENCES tracklets (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('same', 'not', 'name')),
    name TEXT,
    created TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS labels_by_a ON labels (a);
"""
#: Table of schema version 3: where the indexing of a partly indexed video goes on (JSON state).
RESUME_DDL = """
CREATE TABLE IF NOT EXISTS resume_points (
    video_id INTEGER PRIMARY KEY REFERENCES videos (id) ON DELETE CASCADE,
    frame INTEGER NOT NULL,
    state_json TEXT NOT NULL,
    updated TEXT NOT NULL
);
"""
DDL = DDL + IDENTITY_DDL + RESUME_DDL
#: Statements that bring a gallery of schema version ``v - 1`` to ``v`` (run in one transaction).
MIGRATIONS: dict[int, str] = {2: "ALTER TABLE videos ADD COLUMN start_time TEXT;\n" + IDENTITY_DDL, 3: RESUME_DDL}

#: Columns of ``tracklets`` joined with their video, in the order :func:`record_from_row` reads.
RECORD_COLUMNS = (
    "t.id, t.video_id, v.path, v.name, t.camera, t.track_id, t.start_frame, t.end_frame, t.start_s, "
    "t.end_s, t.num_frames, t.frames, t.timestamps, t.boxes, t.scores, t.sample_frames, t.embedding, "
    "t.skeleton, t.skeleton_format, t.thumb_path, t.extra_json, {start_time}"
)
HIT_COLUMNS = (
    "t.id, v.path, v.name, t.camera, t.track_id, t.start_frame, t.end_frame, t.start_s, t.end_s, "
    "t.thumb_path, {start_time}, t.video_id"
)


def to_blob(a: np.ndarray | None, dtype: type | np.dtype) -> bytes | None:
    """Array → raw little-endian bytes of ``dtype`` (None stays None)."""
    if a is None:
        return None
    return np.ascontiguousarray(a, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()


def from_blob(b: bytes | None, dtype: type | np.dtype, tail: tuple[int, ...] = ()) -> np.ndarray | None:
    """Raw bytes → array of ``dtype`` shaped ``(-1, *tail)`` (None stays None)."""
    if b is None:
        return None
    a = np.frombuffer(b, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
    return a.reshape(-1, *tail) if tail else a


def jsonable(d: dict[str, Any]) -> dict[str, Any]:
    """The JSON-serialisable entries of ``d`` (numpy scalars become Python numbers).

    Used for the ``stats_json`` column. Arrays and other objects that do not serialise are left out.
    """
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, np.generic):
            value = value.item()
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            continue
        out[str(key)] = value
    return out


def tracklet_extra(t: Tracklet) -> dict[str, Any]:
    """What the ``extra_json`` column stores for a tracklet: ``{"sample_stride": N}``."""
    return {"sample_stride": int(t.sample_stride)}


def _stride(extra: dict[str, Any]) -> int:
    """``sample_stride`` of an ``extra_json`` dict; 1 when absent or not a positive integer."""
    value = extra.get("sample_stride", 1)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < 1:
        return 1
    return int(value)


@dataclass(frozen=True)
class Hit:
    """One search result.

    Attributes:
        rank: 1-based rank in the result list.
        score: Cosine similarity to the query (inner product of L2-normalised vectors).
        tracklet_id: Gallery id of the tracklet.
        video: Path of the source video.
        video_name: File name of the source video.
        camera: Camera label of the video.
        track_id: Track id inside the video.
        start_frame: First frame index of the tracklet.
        end_frame: Last frame index of the tracklet.
        start_s: Start time in seconds from the video start.
        end_s: End time in seconds.
        thumbnail: Absolute path of the thumbnail JPEG, or None.
        start_time: Wall-clock start (ISO 8601 UTC) when the video's start time is known.
        end_time: Wall-clock end, likewise.
        video_id: Gallery id of the source video (None only for a hit not read from a gallery).
    """

    rank: int
    score: float
    tracklet_id: int
    video: str
    video_name: str
    camera: str
    track_id: int
    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    thumbnail: str | None
    start_time: str | None = None
    end_time: str | None = None
    video_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict with the documented result keys (``reid query --json``; no ``video_id``)."""
        return {
            "rank": self.rank,
            "score": round(float(self.score), 6),
            "video": self.video,
            "camera": self.camera,
            "track_id": self.track_id,
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "start_time": self.start_time,
            "end_time": self.end_time,
            "thumbnail": self.thumbnail,
            "tracklet_id": self.tracklet_id,
        }


@dataclass
class GalleryRecord:
    """A tracklet as stored in a gallery, with its arrays (for export, analysis and merging).

    Attributes:
        id: Gallery id of the tracklet (the FAISS id).
        video_id: Gallery id of its video.
        video: Path of the source video.
        video_name: File name of the source video.
        camera: Camera label.
        track_id: Track id inside the video.
        start_frame: First frame index.
        end_frame: Last frame index.
        start_s: Start time in seconds.
        end_s: End time in seconds.
        num_frames: Number of observations.
        frames: (N,) int64 frame indices.
        timestamps: (N,) float64 seconds.
        boxes: (N, 4) float32 boxes.
        scores: (N,) float32 detector scores, or None.
        sample_frames: (S,) int64 frame indices of the kept crops.
        embedding: (D,) float32 L2-normalised appearance vector.
        skeleton: (S, 17, 3) float32 skeleton, or None.
        skeleton_format: Format of ``skeleton``.
        thumbnail: Absolute path of the thumbnail JPEG, or None.
        extra: The ``extra_json`` column (``{"sample_stride": N}``; older galleries may hold
            other keys).
        vectors: Other vector spaces by name (``"skeleton"``), from the ``vectors`` table.
        start_time: Wall-clock start (ISO 8601 UTC) when the video's start time is known.
        end_time: Wall-clock end, likewise.
    """

    id: int
    video_id: int
    video: str
    video_name: str
    camera: str
    track_id: int
    start_frame: int
    end_frame: int
    start_s: float
    end_s: float
    num_frames: int
    frames: np.ndarray
    timestamps: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray | None
    sample_frames: np.ndarray
    embedding: np.ndarray
    skeleton: np.ndarray | None
    skeleton_format: str | None
    thumbnail: str | None
    extra: dict[str, Any] = field(default_factory=dict)
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    start_time: str | None = None
    end_time: str | None = None

    def to_tracklet(self) -> Tracklet:
        """Rebuild a :class:`Tracklet` (without crops; the thumbnail stays a file path).

        The tracklet gets the stored skeleton-space vector as ``skeleton_embedding``, the stored
        ``sample_stride`` (1 if none) and this record's id as ``gallery_id``.
        """
        return Tracklet(
            video=self.video,
            camera=self.camera,
            track_id=self.track_id,
            frames=self.frames,
            timestamps=self.timestamps,
            boxes=self.boxes,
            scores=self.scores,
            sample_frames=self.sample_frames,
            skeleton=self.skeleton,
            skeleton_format=self.skeleton_format,
            embedding=self.embedding,
            skeleton_embedding=self.vectors.get("skeleton"),
            sample_stride=_stride(self.extra),
            gallery_id=self.id,
        )


def record_from_row(row: tuple, thumb_root: str) -> GalleryRecord:
    """Build a :class:`GalleryRecord` from a row selected with :data:`RECORD_COLUMNS`."""
    (tid, vid, path, name, camera, track_id, f0, f1, s0, s1, n, frames, ts, boxes, scores, sf, emb,
     skel, skel_fmt, thumb, extra, video_start) = row
    return GalleryRecord(
        id=int(tid),
        video_id=int(vid),
        video=path,
        video_name=name,
        camera=camera or "",
        track_id=int(track_id),
        start_frame=int(f0),
        end_frame=int(f1),
        start_s=float(s0),
        end_s=float(s1),
        num_frames=int(n),
        frames=from_blob(frames, np.int64),
        timestamps=from_blob(ts, np.float64),
        boxes=from_blob(boxes, np.float32, (4,)),
        scores=from_blob(scores, np.float32),
        sample_frames=from_blob(sf, np.int64),
        embedding=from_blob(emb, np.float32),
        skeleton=from_blob(skel, np.float32, (17, 3)),
        skeleton_format=skel_fmt,
        thumbnail=f"{thumb_root}/{thumb}" if thumb else None,
        extra=json_object(extra),
        start_time=wall_time(video_start, s0),
        end_time=wall_time(video_start, s1),
    )


def json_object(text: str | None) -> dict[str, Any]:
    """An ``extra_json`` value as a dict (anything else that old galleries hold: empty)."""
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def hit_from_row(row: tuple, rank: int, score: float, thumb_root: str) -> Hit:
    """Build a :class:`Hit` from a row selected with :data:`HIT_COLUMNS`."""
    tid, path, name, camera, track_id, f0, f1, s0, s1, thumb, video_start, vid = row
    return Hit(
        rank=rank,
        score=float(score),
        tracklet_id=int(tid),
        video=path,
        video_name=name,
        camera=camera or "",
        track_id=int(track_id),
        start_frame=int(f0),
        end_frame=int(f1),
        start_s=float(s0),
        end_s=float(s1),
        thumbnail=f"{thumb_root}/{thumb}" if thumb else None,
        start_time=wall_time(video_start, s0),
        end_time=wall_time(video_start, s1),
        video_id=int(vid),
    )
