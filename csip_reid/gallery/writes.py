"""Writing to a gallery, and keeping its FAISS index in line with SQLite.

Mixed into :class:`csip_reid.gallery.store.Gallery`; see that module for the crash-safety model.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from csip_reid.errors import GalleryError
from csip_reid.gallery import thumbs
from csip_reid.gallery.index import SIDECAR, IndexPolicy, VectorIndex, read_json, write_json_atomic
from csip_reid.gallery.lock import WriterLock
from csip_reid.gallery.schema import from_blob, jsonable_meta, to_blob
from csip_reid.tracklet import Tracklet

THUMBS = "thumbs"
#: Indexes up to this size are saved after every write; larger ones after 10% new vectors and on close.
AUTOSAVE_BYTES = 64 << 20

_TRACKLET_INSERT = (
    "INSERT INTO tracklets (video_id, camera, track_id, start_frame, end_frame, start_s, end_s, num_frames, "
    "boxes, frames, timestamps, scores, thumb_path, embedding, skeleton, skeleton_format, sample_frames, "
    "extra_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def now_iso() -> str:
    """Current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def norm_path(path: str | Path) -> str:
    """Absolute, normalised path string (symlinks kept): the key of a video in the gallery."""
    return os.path.normpath(Path(path).expanduser().absolute())


def _slug(text: str | None) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", text or "")[:12] or "video"


class GalleryWrites:
    """Write operations and index maintenance (a mixin of :class:`~csip_reid.gallery.store.Gallery`)."""

    root: Path
    db: sqlite3.Connection
    dim: int
    fingerprint: str
    manifest: dict[str, Any]
    policy: IndexPolicy
    lock: WriterLock
    lock_timeout: float
    _index: VectorIndex | None
    _index_state: dict[str, int]
    _index_gen: int
    _unsaved: int

    # -- public writes -----------------------------------------------------------------------
    def add_video(
        self,
        path: str | Path,
        content_hash: str,
        camera: str,
        tracklets: Sequence[Tracklet],
        fps: float,
        num_frames: int,
        width: int,
        height: int,
        stats: dict[str, Any] | None = None,
    ) -> int:
        """Store one indexed video and all its tracklets atomically; returns the video id.

        Thumbnails are written first, then the video row and every tracklet (embedding required)
        are inserted in one transaction: readers see all of the video's tracklets or none. Adding
        a path that is already in the gallery (indexed or failed) replaces it.

        Raises:
            GalleryError: A tracklet has no embedding or one of the wrong size, or another
                process is writing the gallery.
        """
        self._begin_write()
        key = norm_path(path)
        tracklets = list(tracklets)
        rows = [self._tracklet_row(t, key) for t in tracklets]
        thumb_dir = f"{_slug(content_hash)}-{secrets.token_hex(4)}"
        folder = self.root / THUMBS / thumb_dir
        names = thumbs.write_thumbnails(folder, tracklets)
        if not any(names):
            thumbs.remove_folder(folder)
        stats_json = json.dumps(jsonable_meta(stats or {}))
        try:
            with self._transaction() as cur:
                old = self._delete_video_rows(cur, key)
                cur.execute(
                    "INSERT INTO videos (path, name, content_hash, camera, fps, num_frames, width, height, "
                    "status, indexed_at, embedder_fp, stats_json, thumb_dir) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'indexed', ?, ?, ?, ?)",
                    (key, Path(key).name, content_hash, camera, float(fps), int(num_frames), int(width),
                     int(height), now_iso(), self.fingerprint, stats_json,
                     thumb_dir if any(names) else None),
                )
                video_id = int(cur.lastrowid)
                new_ids = []
                for t, row, name in zip(tracklets, rows, names, strict=True):
                    thumb = f"{THUMBS}/{thumb_dir}/{name}" if name else None
                    cur.execute(_TRACKLET_INSERT, (video_id, *row[:11], thumb, *row[11:]))
                    tid = int(cur.lastrowid)
                    new_ids.append(tid)
                    skel_vec = t.meta.get("skeleton_embedding")
                    if skel_vec is not None:
                        cur.execute("INSERT INTO vectors (tracklet_id, space, vec) VALUES (?, 'skeleton', ?)",
                                    (tid, to_blob(np.asarray(skel_vec).reshape(-1), np.float32)))
        except BaseException:
            thumbs.remove_folder(folder)
            raise
        vecs = np.stack([from_blob(r[11], np.float32) for r in rows]) if rows else None
        self._after_write(old, np.array(new_ids, np.int64), vecs)
        return video_id

    def mark_failed(self, path: str | Path, error: str, content_hash: str | None = None) -> None:
        """Record that a video could not be indexed (listed by ``info()``).

        Bad input never costs indexed data: if the path was indexed before (the file has since
        been damaged or replaced), its tracklets are kept and only this run reports the failure.
        An earlier failure record of the same path is replaced.
        """
        self._begin_write()
        key = norm_path(path)
        row = self.db.execute("SELECT status FROM videos WHERE path = ?", (key,)).fetchone()
        if row is not None and row[0] == "indexed":
            return
        with self._transaction() as cur:
            old = self._delete_video_rows(cur, key)
            cur.execute(
                "INSERT INTO videos (path, name, content_hash, status, indexed_at, embedder_fp, error) "
                "VALUES (?, ?, ?, 'failed', ?, ?, ?)",
                (key, Path(key).name, content_hash, now_iso(), self.fingerprint, str(error)),
            )
        self._after_write(old, None, None)

    def remove_video(self, video: str | int | Path) -> int:
        """Remove a video (by path, file name or id) and its tracklets; returns the tracklet count.

        Raises:
            GalleryError: No such video, or the name matches several videos.
        """
        self._begin_write()
        key = self._require_video(video)[1]
        with self._transaction() as cur:
            old = self._delete_video_rows(cur, key)
        self._after_write(old, None, None)
        return 0 if old is None else len(old[0])

    def flush(self) -> None:
        """Write the FAISS index now if it has changes not on disk (writers only)."""
        if self.lock.held and self._unsaved:
            self._save_index()

    # -- lookups -----------------------------------------------------------------------------
    def _find_video(self, ref: str | int | Path) -> tuple | None:
        """``(id, path, name, thumb_dir)`` of a video by path, bare file name or id; None if absent."""
        cols = "SELECT id, path, name, thumb_dir FROM videos"
        if isinstance(ref, (str, Path)):
            text = str(ref)
            for cand in (text, norm_path(text)):
                row = self.db.execute(f"{cols} WHERE path = ?", (cand,)).fetchone()
                if row:
                    return row
            if Path(text).name != text:  # a path that is not in the gallery names no video
                return None
            rows = self.db.execute(f"{cols} WHERE name = ?", (text,)).fetchall()
            if len(rows) > 1:
                raise GalleryError(f"{len(rows)} videos are named {text!r} in gallery {self.root}: "
                                   f"give the full path ({rows[0][1]}, {rows[1][1]}, ...)")
            if rows:
                return rows[0]
            if not text.isdigit():
                return None
        try:
            return self.db.execute(f"{cols} WHERE id = ?", (int(ref),)).fetchone()
        except (TypeError, ValueError):
            return None

    def _require_video(self, ref: str | int | Path) -> tuple:
        row = self._find_video(ref)
        if row is None:
            raise GalleryError(f"no video {str(ref)!r} in gallery {self.root}")
        return row

    # -- write plumbing ----------------------------------------------------------------------
    def _begin_write(self) -> None:
        """Take the writer lock (once), then catch up with other writers and tidy crash leftovers."""
        if self.lock.held:
            return
        self.lock.acquire(self.lock_timeout)
        self._sync_index()
        assert self._index is not None
        if self._index.wants_rebuild(self._index.ntotal, self.policy):
            self._rebuild_index()
        self._collect_garbage()
        self.flush()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
            cur.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

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
            to_blob(t.sample_frames, np.int64), json.dumps(jsonable_meta(t.meta)),
        )

    @staticmethod
    def _delete_video_rows(cur: sqlite3.Cursor, key: str) -> tuple[np.ndarray, str | None] | None:
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

    def _after_write(self, old: tuple[np.ndarray, str | None] | None, added: np.ndarray | None,
                     vecs: np.ndarray | None) -> None:
        """Apply a committed write to the index, then tidy thumbnails and the manifest."""
        assert self._index is not None
        changes = 0
        if old is not None:
            changes += self._index.remove(old[0])
            if old[1]:
                thumbs.remove_folder(self.root / THUMBS / old[1])
        if added is not None and len(added):
            self._index.add(added, vecs)
            changes += len(added)
        self._index_state, self._index_gen = self._db_state(), self._generation()
        self._unsaved += changes
        n = self._index.ntotal
        if n != self._index_state["count"] or self._index.wants_rebuild(n, self.policy):
            self._rebuild_index()
        index_bytes = self._index.ntotal * self.dim * 4
        if self._unsaved and (index_bytes <= AUTOSAVE_BYTES or self._unsaved >= 0.1 * self._index.ntotal):
            self._save_index()
        self.manifest["updated"] = now_iso()
        write_json_atomic(self.root / "manifest.json", self.manifest)

    def _collect_garbage(self) -> None:
        """Delete thumbnail folders, index files and temp files left by crashed writers."""
        referenced = {r[0] for r in self.db.execute("SELECT thumb_dir FROM videos WHERE thumb_dir IS NOT NULL")}
        folder = self.root / THUMBS
        folder.mkdir(exist_ok=True)
        for p in folder.iterdir():
            if p.name not in referenced:
                if p.is_dir():
                    thumbs.remove_folder(p)
                else:
                    p.unlink(missing_ok=True)
        current = (read_json(self.root / SIDECAR) or {}).get("file")
        for p in [*self.root.glob("index-*.faiss*"), *self.root.glob(".*.tmp")]:
            if p.name != current:
                p.unlink(missing_ok=True)

    # -- index maintenance -------------------------------------------------------------------
    def _generation(self) -> int:
        return int(self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    def _db_state(self, max_id: int | None = None) -> dict[str, int]:
        """Count, max id and id sum of the stored tracklets (those with ``id <= max_id`` if given)."""
        where, args = ("WHERE id <= ?", (max_id,)) if max_id is not None else ("", ())
        c, m, s = self.db.execute(
            f"SELECT COUNT(*), COALESCE(MAX(id), 0), COALESCE(SUM(id), 0) FROM tracklets {where}", args
        ).fetchone()
        return {"count": int(c), "max_id": int(m), "id_sum": int(s)}

    def _read_embeddings(self, min_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, vectors)`` of the tracklets with ``id > min_id``, filled without a list of blobs."""
        n = self.db.execute("SELECT COUNT(*) FROM tracklets WHERE id > ?", (min_id,)).fetchone()[0]
        ids = np.empty(n, np.int64)
        vecs = np.empty((n, self.dim), np.float32)
        i = 0
        for tid, blob in self.db.execute("SELECT id, embedding FROM tracklets WHERE id > ? ORDER BY id", (min_id,)):
            if i == n:
                break
            ids[i], vecs[i] = tid, np.frombuffer(blob, dtype="<f4")
            i += 1
        return ids[:i], vecs[:i]

    def _rebuild_index(self) -> None:
        """Build the index from scratch from SQLite (the kind the policy asks for at this size)."""
        ids, vecs = self._read_embeddings()
        self._index = VectorIndex.build(ids, vecs, self.dim, self.policy)
        self._unsaved = max(1, len(ids))

    def _sync_index(self) -> None:
        """Bring the in-memory index in line with SQLite (cheap when nothing changed)."""
        if self._index is not None and self._generation() == self._index_gen:
            return
        self.db.execute("BEGIN")  # one read snapshot for everything below
        try:
            gen, state = self._generation(), self._db_state()
            if self._index is None:
                loaded = VectorIndex.load(self.root, self.dim, self.policy)
                if loaded is not None:
                    self._index = loaded[0]
                    self._index_state = {k: int(loaded[1].get(k, -1)) for k in ("count", "max_id", "id_sum")}
            rebuilt = self._index is None
            if rebuilt:
                self._rebuild_index()
            elif state != self._index_state:
                self._catch_up(state)
            self._index_state, self._index_gen = state, gen
        finally:
            self.db.execute("COMMIT")
        if rebuilt and not self.lock.held:
            self._save_opportunistically()

    def _catch_up(self, state: dict[str, int]) -> None:
        """Apply to the loaded index the removals and additions SQLite has that it lacks."""
        assert self._index is not None
        old = self._index_state
        if old["count"] < 0 or old["max_id"] < 0:
            self._rebuild_index()
            return
        changes = 0
        if self._db_state(old["max_id"]) != old:
            kept = self.db.execute("SELECT id FROM tracklets WHERE id <= ?", (old["max_id"],)).fetchall()
            changes += self._index.keep_only(np.array([r[0] for r in kept], np.int64))
        ids, vecs = self._read_embeddings(old["max_id"])
        self._index.add(ids, vecs)
        changes += len(ids)
        if self._index.ntotal != state["count"]:
            self._rebuild_index()
            return
        self._unsaved += changes

    def _save_index(self) -> None:
        """Commit the index to disk (writer lock required; skipped if SQLite moved on meanwhile)."""
        if self._index is None or not self.lock.held or self._db_state() != self._index_state:
            return
        self._index.save(self.root, {**self._index_state, "generation": self._index_gen})
        self._unsaved = 0

    def _save_opportunistically(self) -> None:
        """A reader that had to rebuild the index saves it if no writer is busy (else the next writer will)."""
        try:
            self.lock.acquire(0.0)
        except GalleryError:
            return
        try:
            self._save_index()
        finally:
            self.lock.release()
