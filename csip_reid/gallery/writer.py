"""Writing to a gallery: add, replace, fail and remove videos, one transaction each.

See :mod:`csip_reid.gallery.store` for the crash-safety model. The :class:`Writer` takes the
gallery's writer lock on its first write and keeps it until the gallery is closed.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from csip_reid.core.errors import GalleryError
from csip_reid.core.tracklet import Tracklet
from csip_reid.core.walltime import now_iso, parse_time
from csip_reid.gallery import thumbs
from csip_reid.gallery.database import Database, norm_path
from csip_reid.gallery.files import THUMBS
from csip_reid.gallery.kinds import IndexPolicy
from csip_reid.gallery.lock import WriterLock
from csip_reid.gallery.manifest import write_manifest
from csip_reid.gallery.schema import SCHEMA_VERSION, from_blob, jsonable, to_blob, tracklet_extra
from csip_reid.gallery.sync import IndexSync
from csip_reid.gallery.videos import VideoRecord

_TRACKLET_INSERT = (
    "INSERT INTO tracklets (video_id, camera, track_id, start_frame, end_frame, start_s, end_s, num_frames, "
    "boxes, frames, timestamps, scores, thumb_path, embedding, skeleton, skeleton_format, sample_frames, "
    "extra_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
#: What deleting a video removed: ``(tracklet ids, thumbnail folder)``.
Removed = tuple[np.ndarray, str | None]


def _slug(text: str | None) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", text or "")[:12] or "video"


class Writer:
    """The write side of one open gallery.

    Args:
        root: Gallery directory.
        db: The gallery's database.
        sync: The gallery's index keeper (told about every committed write).
        lock: The gallery's writer lock.
        manifest: The gallery's manifest (its ``updated`` time is refreshed after each write).
        fingerprint: Fingerprint of the gallery's embedder, recorded with each video.
        lock_timeout: Seconds to wait for another process's writer lock.
    """

    def __init__(self, root: Path, db: Database, sync: IndexSync, lock: WriterLock, manifest: dict[str, Any],
                 fingerprint: str, lock_timeout: float) -> None:
        self.root = root
        self.db = db
        self.sync = sync
        self.lock = lock
        self.manifest = manifest
        self.fingerprint = fingerprint
        self.dim = db.dim
        self.lock_timeout = lock_timeout

    # -- writes ------------------------------------------------------------------------------
    def add_video(self, video: VideoRecord, tracklets: Sequence[Tracklet], resume: dict[str, Any] | None = None,
                  append: bool = False) -> int:
        """Store a video and its tracklets atomically, or one segment of it (see ``Gallery.add_video``); returns its id."""
        self.begin()
        key = norm_path(video.path)
        start_time = None if video.start_time is None else parse_time(video.start_time)  # ISO 8601 UTC
        tracklets = list(tracklets)
        rows = [self._tracklet_row(t, key) for t in tracklets]
        partial = self.db.resume_point(key) if append else None
        if append and (partial is None or partial[1] != video.content_hash):
            raise GalleryError(f"gallery {self.root} holds no partly indexed {key} to add a segment to")
        fresh = partial is None or partial[3] is None  # no thumbnail folder yet
        thumb_dir = f"{_slug(video.content_hash)}-{secrets.token_hex(4)}" if fresh else str(partial[3])
        folder = self.root / THUMBS / thumb_dir
        names = thumbs.write_thumbnails(folder, tracklets)
        if fresh and not any(names):
            thumbs.remove_folder(folder)
        stats_json = json.dumps(jsonable(video.stats or {}))
        try:
            with self.db.transaction() as cur:
                old = None
                if partial is None:  # a new video (a re-index replaces the stored one)
                    if start_time is None:  # a re-index keeps the start time set before
                        row = cur.execute("SELECT start_time FROM videos WHERE path = ?", (key,)).fetchone()
                        start_time = row[0] if row else None
                    old = self._delete_video_rows(cur, key)
                    cur.execute(
                        "INSERT INTO videos (path, name, content_hash, camera, fps, num_frames, width, height, "
                        "status, indexed_at, embedder_fp, stats_json, thumb_dir, start_time) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'indexed', ?, ?, ?, ?, ?)",
                        (key, Path(key).name, video.content_hash, video.camera, float(video.fps),
                         int(video.num_frames), int(video.width), int(video.height), now_iso(), self.fingerprint,
                         stats_json, thumb_dir if any(names) else None, start_time),
                    )
                    video_id = int(cur.lastrowid)
                else:  # the next segment of a partly indexed video
                    video_id = partial[0]
                    cur.execute("UPDATE videos SET indexed_at = ?, stats_json = ?, thumb_dir = COALESCE(thumb_dir, ?) "
                                "WHERE id = ?", (now_iso(), stats_json, thumb_dir if any(names) else None, video_id))
                new_ids = self._insert_tracklets(cur, video_id, tracklets, rows, names, thumb_dir)
                self._set_resume_point(cur, video_id, resume)
        except BaseException:
            if fresh:
                thumbs.remove_folder(folder)
            raise
        vecs = np.stack([from_blob(r[11], np.float32) for r in rows]) if rows else None
        self._after_write(old, np.array(new_ids, np.int64), vecs)
        return video_id

    @staticmethod
    def _insert_tracklets(cur: sqlite3.Cursor, video_id: int, tracklets: list[Tracklet], rows: list[tuple],
                          names: list[str | None], thumb_dir: str) -> list[int]:
        new_ids = []
        for t, row, name in zip(tracklets, rows, names, strict=True):
            thumb = f"{THUMBS}/{thumb_dir}/{name}" if name else None
            cur.execute(_TRACKLET_INSERT, (video_id, *row[:11], thumb, *row[11:]))
            tid = int(cur.lastrowid)
            new_ids.append(tid)
            if t.skeleton_embedding is not None:
                cur.execute("INSERT INTO vectors (tracklet_id, space, vec) VALUES (?, 'skeleton', ?)",
                            (tid, to_blob(np.asarray(t.skeleton_embedding).reshape(-1), np.float32)))
        return new_ids

    @staticmethod
    def _set_resume_point(cur: sqlite3.Cursor, video_id: int, resume: dict[str, Any] | None) -> None:
        """Store where the indexing of a video goes on (None: it is complete)."""
        if resume is None:
            cur.execute("DELETE FROM resume_points WHERE video_id = ?", (video_id,))
            return
        cur.execute("INSERT OR REPLACE INTO resume_points (video_id, frame, state_json, updated) VALUES (?, ?, ?, ?)",
                    (video_id, int(resume.get("frame", 0)), json.dumps(jsonable(resume)), now_iso()))

    def mark_failed(self, path: str | Path, error: str, content_hash: str | None = None) -> None:
        """Record a video that could not be indexed, unless the path is indexed (see ``Gallery.mark_failed``)."""
        self.begin()
        key = norm_path(path)
        if self.db.video_status(key) == "indexed":
            return
        with self.db.transaction() as cur:
            old = self._delete_video_rows(cur, key)
            cur.execute(
                "INSERT INTO videos (path, name, content_hash, status, indexed_at, embedder_fp, error) "
                "VALUES (?, ?, ?, 'failed', ?, ?, ?)",
                (key, Path(key).name, content_hash, now_iso(), self.fingerprint, str(error)),
            )
        self._after_write(old, None, None)

    def set_video_time(self, video: str | int | Path, start_time: str | None) -> int:
        """Set (or clear, with None) the wall-clock start of a video (see ``Gallery.set_video_time``)."""
        iso = None if start_time is None else parse_time(start_time)  # ISO 8601 UTC, as add_video stores it
        self.begin()
        vid = self.db.require_video(video)[0]
        with self.db.transaction() as cur:
            cur.execute("UPDATE videos SET start_time = ? WHERE id = ?", (iso, vid))
        self.touch()
        return int(vid)

    def remove_video(self, video: str | int | Path) -> int:
        """Remove a video and its tracklets; returns the tracklet count (see ``Gallery.remove_video``)."""
        self.begin()
        key = self.db.require_video(video)[1]
        with self.db.transaction() as cur:
            old = self._delete_video_rows(cur, key)
        self._after_write(old, None, None)
        return 0 if old is None else len(old[0])

    # -- plumbing ----------------------------------------------------------------------------
    def begin(self, policy: IndexPolicy | None = None) -> None:
        """Take the writer lock (once), then catch up with other writers and tidy crash leftovers.

        Args:
            policy: A new index policy: stored in the manifest first (the commit point of the
                choice: an index that does not follow it is rebuilt by the next writer), then the
                index is rebuilt under it and saved, even if the lock was already held.
        """
        if self.lock.held and policy is None:
            return
        self.lock.acquire(self.lock_timeout)
        if self.db.migrate():  # an older gallery gets the current schema from its first writer
            self.manifest["schema_version"] = SCHEMA_VERSION
            write_manifest(self.root, self.manifest)
        self.collect_garbage()  # before a rebuild: its new lists file is not named by the sidecar yet
        if policy is None:
            self.sync.rebuild_if_due()
        else:
            self.manifest["index_policy"] = policy.to_dict()
            self.touch()
            self.sync.sync()
            self.sync.policy = policy
            self.sync.rebuild()
        self.sync.flush()

    def touch(self) -> None:
        """Refresh the manifest's ``updated`` time (after a write)."""
        self.manifest["updated"] = now_iso()
        write_manifest(self.root, self.manifest)

    def collect_garbage(self) -> None:
        """Delete thumbnail folders, index files and temp files left by crashed writers."""
        referenced = self.db.thumb_dirs()
        folder = self.root / THUMBS
        folder.mkdir(exist_ok=True)
        for p in folder.iterdir():
            if p.name not in referenced:
                if p.is_dir():
                    thumbs.remove_folder(p)
                else:
                    p.unlink(missing_ok=True)
        self.sync.remove_stale_files()

    def _tracklet_row(self, t: Tracklet, video: str) -> tuple:
        """Validated column values of one tracklet (without video id and thumbnail path)."""
        if t.embedding is None:
            raise GalleryError(f"tracklet {t.track_id} of {video} has no embedding: embed tracklets "
                               "before adding them to a gallery")
        emb = np.asarray(t.embedding, dtype=np.float32).reshape(-1)
        norm = float(np.linalg.norm(emb))
        if emb.shape[0] != self.dim:
            raise GalleryError(f"tracklet {t.track_id} of {video} has a {emb.shape[0]}-d embedding; "
                               f"gallery {self.root} holds {self.dim}-d vectors")
        if not np.isfinite(norm) or norm == 0.0:
            raise GalleryError(f"tracklet {t.track_id} of {video} has an all-zero or non-finite embedding")
        skeleton = None
        if t.skeleton is not None:
            skeleton = np.asarray(t.skeleton, dtype=np.float32)
            if skeleton.ndim != 3 or skeleton.shape[1:] != (17, 3):
                raise GalleryError(f"tracklet {t.track_id} of {video} has a skeleton of shape "
                                   f"{skeleton.shape}; galleries store (S, 17, 3)")
        return (
            t.camera, int(t.track_id), t.start_frame, t.end_frame, t.start_s, t.end_s, len(t),
            to_blob(t.boxes, np.float32), to_blob(t.frames, np.int64), to_blob(t.timestamps, np.float64),
            to_blob(t.scores, np.float32),
            to_blob(emb / norm, np.float32), to_blob(skeleton, np.float32),
            t.skeleton_format if skeleton is not None else None,
            to_blob(t.sample_frames, np.int64), json.dumps(tracklet_extra(t)),
        )

    @staticmethod
    def _delete_video_rows(cur: sqlite3.Cursor, key: str) -> Removed | None:
        """Delete the video stored under ``key`` (tracklets and vectors cascade).

        Returns:
            ``(removed tracklet ids, thumbnail folder)``, or None if there was no such video.
        """
        row = cur.execute("SELECT id, thumb_dir FROM videos WHERE path = ?", (key,)).fetchone()
        if row is None:
            return None
        ids = np.array([r[0] for r in cur.execute("SELECT id FROM tracklets WHERE video_id = ?", (row[0],))],
                       dtype=np.int64)
        cur.execute("DELETE FROM videos WHERE id = ?", (row[0],))
        return ids, row[1]

    def _after_write(self, old: Removed | None, added: np.ndarray | None, vecs: np.ndarray | None) -> None:
        """Apply a committed write to the index, then tidy thumbnails and the manifest."""
        if old is not None and old[1]:
            thumbs.remove_folder(self.root / THUMBS / old[1])
        self.sync.apply(None if old is None else old[0], added, vecs)
        self.touch()
