"""The SQLite side of a gallery: connection, schema, transactions and every read.

SQLite is the gallery's source of truth (tables in :mod:`csip_reid.gallery.schema`). This module
holds the connection and the queries that read it; the inserts and deletes of a write are issued
by :class:`~csip_reid.gallery.writer.Writer` inside :meth:`Database.transaction`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from csip_reid.core.errors import GalleryError
from csip_reid.gallery.files import DATABASE
from csip_reid.gallery.schema import (
    DDL,
    HIT_COLUMNS,
    MIGRATIONS,
    RECORD_COLUMNS,
    SCHEMA_VERSION,
    GalleryRecord,
    from_blob,
    json_object,
    record_from_row,
)
from csip_reid.gallery.videos import VIDEO_COLUMNS, StoredVideo

_SQL_CHUNK = 900  # stay under SQLite's host-parameter limit
#: ``(id, path, name, thumb_dir)`` of a video, as :meth:`Database.find_video` returns it.
VideoRow = tuple[int, str, str, str | None]


def rows_in(execute: Callable[[str, Sequence[Any]], sqlite3.Cursor], sql: str,
            ids: Sequence[int]) -> Iterator[tuple]:
    """Rows of ``sql`` for the given ids, its ``{ids}`` replaced by ``?`` placeholders.

    The ids are bound in chunks that stay under SQLite's host-parameter limit (the one place that
    chunks an ``IN (...)``).
    """
    wanted = [int(i) for i in ids]
    for s in range(0, len(wanted), _SQL_CHUNK):
        chunk = wanted[s : s + _SQL_CHUNK]
        yield from execute(sql.format(ids=",".join("?" * len(chunk))), chunk)


def norm_path(path: str | Path) -> str:
    """Absolute, normalised path string (symlinks kept): the key of a video in the gallery."""
    return os.path.normpath(Path(path).expanduser().absolute())


class Database:
    """The open ``gallery.db`` of one gallery.

    Args:
        root: Gallery directory.
        dim: Dimension of the appearance vectors.

    Raises:
        GalleryError: The file is not a readable gallery database, or one of a newer schema.
    """

    def __init__(self, root: Path, dim: int) -> None:
        self.root = root
        self.dim = dim
        self.conn: sqlite3.Connection | None = None
        try:
            self.conn = sqlite3.connect(root / DATABASE, timeout=30.0, isolation_level=None)
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            self.conn.execute("SELECT COUNT(*) FROM tracklets").fetchone()
        except sqlite3.DatabaseError as e:
            self.close()
            raise GalleryError(f"gallery {root}: cannot read {DATABASE}: {e}") from e
        if version > SCHEMA_VERSION:
            self.close()
            raise GalleryError(f"gallery {root} has schema version {version}; this csip-reid reads "
                               f"up to {SCHEMA_VERSION}: upgrade csip-reid")
        self.version = max(int(version), 1)

    @property
    def has_identities(self) -> bool:
        """Whether the database has the version-2 tables and columns (a version-1 one reads them as empty)."""
        return self.version >= 2

    @property
    def has_resume(self) -> bool:
        """Whether the database has the version-3 ``resume_points`` table (an older one has no partial video)."""
        return self.version >= 3

    def _cols(self, template: str) -> str:
        status = ("(CASE WHEN v.id IN (SELECT video_id FROM resume_points) THEN 'partial' ELSE v.status END)"
                  if self.has_resume else "v.status")
        return template.format(start_time="v.start_time" if self.has_identities else "NULL", status=status)

    def _complete(self) -> str:
        """SQL condition on ``videos``: not a partly indexed video."""
        return " AND id NOT IN (SELECT video_id FROM resume_points)" if self.has_resume else ""

    def migrate(self) -> bool:
        """Bring an older schema up to :data:`SCHEMA_VERSION` in one transaction (writers only).

        Returns:
            True if the database was migrated.
        """
        if self.version >= SCHEMA_VERSION:
            return False
        assert self.conn is not None
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            version = int(cur.execute("PRAGMA user_version").fetchone()[0])
            for v in range(max(version, 1) + 1, SCHEMA_VERSION + 1):
                for stmt in MIGRATIONS[v].split(";"):
                    if stmt.strip():
                        cur.execute(stmt)
            cur.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        self.version = SCHEMA_VERSION
        return True

    @staticmethod
    def initialise(root: Path) -> None:
        """Create the tables of a new gallery in ``root/gallery.db`` (WAL mode, generation 0)."""
        db = sqlite3.connect(root / DATABASE, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.executescript(DDL)
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', '0')")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        finally:
            db.close()

    # -- connection --------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self.conn is None

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def execute(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Run one statement on the connection."""
        if self.conn is None:
            raise GalleryError(f"gallery {self.root} is closed")
        return self.conn.execute(sql, args)

    def rows_in(self, sql: str, ids: Sequence[int]) -> Iterator[tuple]:
        """:func:`rows_in` on this connection."""
        return rows_in(self.execute, sql, ids)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read snapshot for every query inside the block (inside another one: that one)."""
        if self.conn is not None and self.conn.in_transaction:
            yield
            return
        self.execute("BEGIN")
        try:
            yield
        finally:
            self.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """A write transaction that bumps the generation on commit and rolls back on any error."""
        assert self.conn is not None
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
            cur.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'")
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    # -- state of the tracklets table --------------------------------------------------------
    def count(self) -> int:
        """Number of stored tracklets."""
        return int(self.execute("SELECT COUNT(*) FROM tracklets").fetchone()[0])

    def generation(self) -> int:
        """Counter bumped by every committed write (any process)."""
        return int(self.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])

    def state(self, max_id: int | None = None) -> dict[str, int]:
        """Count, max id and id sum of the stored tracklets (those with ``id <= max_id`` if given)."""
        where, args = ("WHERE id <= ?", (max_id,)) if max_id is not None else ("", ())
        c, m, s = self.execute(
            f"SELECT COUNT(*), COALESCE(MAX(id), 0), COALESCE(SUM(id), 0) FROM tracklets {where}", args
        ).fetchone()
        return {"count": int(c), "max_id": int(m), "id_sum": int(s)}

    def ids_up_to(self, max_id: int) -> np.ndarray:
        """Ids of the stored tracklets with ``id <= max_id``."""
        rows = self.execute("SELECT id FROM tracklets WHERE id <= ?", (max_id,)).fetchall()
        return np.array([r[0] for r in rows], np.int64)

    def read_embeddings(self, min_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, vectors)`` of the tracklets with ``id > min_id``, filled without a list of blobs."""
        n = self.execute("SELECT COUNT(*) FROM tracklets WHERE id > ?", (min_id,)).fetchone()[0]
        ids = np.empty(n, np.int64)
        vecs = np.empty((n, self.dim), np.float32)
        i = 0
        for tid, blob in self.execute("SELECT id, embedding FROM tracklets WHERE id > ? ORDER BY id", (min_id,)):
            if i == n:
                break
            ids[i], vecs[i] = tid, np.frombuffer(blob, dtype="<f4")
            i += 1
        return ids[:i], vecs[:i]

    def embedding_chunks(self, chunk: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(ids, vectors)`` of every tracklet by increasing id, at most ``chunk`` rows at a time."""
        last = 0
        while True:
            ids, vecs, n = np.empty(chunk, np.int64), np.empty((chunk, self.dim), np.float32), 0
            for tid, blob in self.execute("SELECT id, embedding FROM tracklets WHERE id > ? ORDER BY id LIMIT ?",
                                          (last, chunk)):
                ids[n], vecs[n] = tid, np.frombuffer(blob, dtype="<f4")
                n += 1
            if not n:
                return
            last = int(ids[n - 1])
            yield ids[:n], vecs[:n]

    def id_chunks(self, chunk: int) -> Iterator[np.ndarray]:
        """Ids of every tracklet by increasing id, at most ``chunk`` at a time."""
        last = 0
        while True:
            rows = self.execute("SELECT id FROM tracklets WHERE id > ? ORDER BY id LIMIT ?", (last, chunk)).fetchall()
            if not rows:
                return
            last = int(rows[-1][0])
            yield np.array([r[0] for r in rows], np.int64)

    def embeddings_of(self, ids: np.ndarray) -> np.ndarray:
        """Vectors of the given (existing) tracklet ids, one row per id in the given order."""
        out = np.empty((len(ids), self.dim), np.float32)
        row = {int(t): i for i, t in enumerate(ids)}
        for tid, blob in self.rows_in("SELECT id, embedding FROM tracklets WHERE id IN ({ids})", ids):
            out[row[tid]] = np.frombuffer(blob, "<f4")
        return out

    # -- videos ------------------------------------------------------------------------------
    def is_indexed(self, content_hash: str, embedder_fp: str) -> bool:
        """Whether a video with this content hash was indexed with this embedder."""
        row = self.execute(
            "SELECT 1 FROM videos WHERE content_hash = ? AND embedder_fp = ? AND status = 'indexed'"
            f"{self._complete()} LIMIT 1",
            (content_hash, embedder_fp),
        ).fetchone()
        return row is not None

    def resume_point(self, key: str) -> tuple[int, str, str, str | None, dict[str, Any]] | None:
        """``(video id, content hash, embedder fingerprint, thumbnail folder, state)`` of a partly indexed video."""
        if not self.has_resume:
            return None
        row = self.execute("SELECT v.id, v.content_hash, v.embedder_fp, v.thumb_dir, r.state_json FROM videos v "
                           "JOIN resume_points r ON r.video_id = v.id WHERE v.path = ?", (key,)).fetchone()
        return None if row is None else (int(row[0]), row[1] or "", row[2] or "", row[3], json_object(row[4]))

    def video_status(self, key: str) -> str | None:
        """``'indexed'`` or ``'failed'`` for the video stored under ``key``; None if absent."""
        row = self.execute("SELECT status FROM videos WHERE path = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def indexed_hash_at(self, path: str) -> str | None:
        """Content hash of the indexed video stored at ``path``; None if there is none."""
        row = self.execute(f"SELECT content_hash FROM videos WHERE path = ? AND status = 'indexed'{self._complete()}",
                           (path,)).fetchone()
        return None if row is None else row[0]

    def videos(self, video_id: int | None = None) -> list[StoredVideo]:
        """Every video (or the one with this id), indexed and failed, with its tracklets' count and span."""
        where, args = ("", ()) if video_id is None else ("WHERE v.id = ? ", (int(video_id),))
        rows = self.execute(self._cols(f"SELECT {VIDEO_COLUMNS} FROM videos v LEFT JOIN tracklets t ON "
                                       f"t.video_id = v.id {where}GROUP BY v.id ORDER BY v.id"), args)
        return [StoredVideo.from_row(r) for r in rows]

    def thumb_dirs(self) -> set[str]:
        """Thumbnail folders referenced by a stored video."""
        return {r[0] for r in self.execute("SELECT thumb_dir FROM videos WHERE thumb_dir IS NOT NULL")}

    def find_video(self, ref: str | int | Path) -> VideoRow | None:
        """``(id, path, name, thumb_dir)`` of a video by path, bare file name or id; None if absent.

        Raises:
            GalleryError: A bare file name that several videos have.
        """
        cols = "SELECT id, path, name, thumb_dir FROM videos"
        if isinstance(ref, (str, Path)):
            text = str(ref)
            for cand in (text, norm_path(text)):
                row = self.execute(f"{cols} WHERE path = ?", (cand,)).fetchone()
                if row:
                    return row
            if Path(text).name != text:  # a path that is not in the gallery names no video
                return None
            rows = self.execute(f"{cols} WHERE name = ?", (text,)).fetchall()
            if len(rows) > 1:
                raise GalleryError(f"{len(rows)} videos are named {text!r} in gallery {self.root}: "
                                   f"give the full path ({rows[0][1]}, {rows[1][1]}, ...)")
            if rows:
                return rows[0]
            if not text.isdigit():
                return None
        try:
            return self.execute(f"{cols} WHERE id = ?", (int(ref),)).fetchone()
        except (TypeError, ValueError):
            return None

    def require_video(self, ref: str | int | Path) -> VideoRow:
        """Like :meth:`find_video`, but a missing video is an error.

        Raises:
            GalleryError: No such video, or an ambiguous file name.
        """
        row = self.find_video(ref)
        if row is None:
            raise GalleryError(f"no video {str(ref)!r} in gallery {self.root}")
        return row

    def tracklet_ids(self, video_id: int) -> np.ndarray:
        """Ids of the tracklets of one video, by start time."""
        rows = self.execute("SELECT id FROM tracklets WHERE video_id = ? ORDER BY start_s, id", (int(video_id),))
        return np.array([r[0] for r in rows], dtype=np.int64)

    def thumb_path(self, tracklet_id: int) -> str | None:
        """The stored thumbnail path (relative to the gallery) of a tracklet; None if none or no such id."""
        row = self.execute("SELECT thumb_path FROM tracklets WHERE id = ?", (int(tracklet_id),)).fetchone()
        return None if row is None or not row[0] else str(row[0])

    # -- tracklets ---------------------------------------------------------------------------
    def hit_rows(self, ids: Sequence[int]) -> dict[int, tuple]:
        """Rows selected with :data:`~csip_reid.gallery.schema.HIT_COLUMNS`, by tracklet id."""
        sql = (f"SELECT {self._cols(HIT_COLUMNS)} FROM tracklets t JOIN videos v ON v.id = t.video_id "
               "WHERE t.id IN ({ids})")
        return {r[0]: r for r in self.rows_in(sql, sorted({int(i) for i in ids}))}

    def record(self, tracklet_id: int) -> GalleryRecord | None:
        """One stored tracklet with its arrays and extra vectors; None if there is no such id."""
        row = self.execute(
            f"SELECT {self._cols(RECORD_COLUMNS)} FROM tracklets t JOIN videos v ON v.id = t.video_id WHERE t.id = ?",
            (int(tracklet_id),),
        ).fetchone()
        if row is None:
            return None
        rec = record_from_row(row, str(self.root))
        rec.vectors = self.extra_vectors([rec.id]).get(rec.id, {})
        return rec

    def iter_records(self, video_id: int | None = None, chunk: int = 256) -> Iterator[GalleryRecord]:
        """All stored tracklets (of one video if given), by increasing id, read ``chunk`` at a time."""
        where, args = ("", []) if video_id is None else (" AND t.video_id = ?", [video_id])
        last = 0
        while True:
            rows = self.execute(
                f"SELECT {self._cols(RECORD_COLUMNS)} FROM tracklets t JOIN videos v ON v.id = t.video_id "
                f"WHERE t.id > ?{where} ORDER BY t.id LIMIT ?", [last, *args, chunk],
            ).fetchall()
            if not rows:
                return
            recs = [record_from_row(r, str(self.root)) for r in rows]
            extra = self.extra_vectors([r.id for r in recs])
            for rec in recs:
                rec.vectors = extra.get(rec.id, {})
                yield rec
            last = recs[-1].id

    def vectors(self, space: str) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, vectors)`` of one space of the ``vectors`` table, by increasing id."""
        rows = self.execute("SELECT tracklet_id, vec FROM vectors WHERE space = ? ORDER BY tracklet_id",
                            (space,)).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        if not rows:
            return ids, np.zeros((0, 0), np.float32)
        return ids, np.stack([from_blob(r[1], np.float32) for r in rows])

    def extra_vectors(self, ids: Sequence[int]) -> dict[int, dict[str, np.ndarray]]:
        """The ``vectors`` table rows of the given tracklets: ``{id: {space: vector}}``."""
        out: dict[int, dict[str, np.ndarray]] = {}
        sql = "SELECT tracklet_id, space, vec FROM vectors WHERE tracklet_id IN ({ids})"
        for tid, space, vec in self.rows_in(sql, ids):
            out.setdefault(tid, {})[space] = from_blob(vec, np.float32)
        return out
