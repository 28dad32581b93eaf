"""A persistent, crash-safe tracklet gallery: SQLite (source of truth) + FAISS (derived cache).

Layout of a gallery directory::

    manifest.json       format, schema version, embedder identity (describe + fingerprint), dim
    gallery.db          SQLite in WAL mode: videos, tracklets, vectors, meta
    thumbs/<dir>/*.jpg  one thumbnail per tracklet, one folder per indexed video
    index.json          sidecar naming the committed FAISS file and which ids it holds
    index-*.faiss       the FAISS index (see :mod:`csip_reid.gallery.index`)
    write.lock          writer lock (see :mod:`csip_reid.gallery.lock`)

Crash safety: a video's thumbnails are written first, then the video row and all its tracklets go
in in ONE SQLite transaction, so after a crash (``kill -9`` included) a video is in the gallery
whole or not at all. The FAISS index is brought in line with SQLite whenever a gallery is opened,
written to, or searched after another process wrote: missing vectors are added from SQLite,
removed ones dropped, an unreadable index rebuilt. Thumbnail folders orphaned by a crash are
deleted by the next writer.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from csip_reid.errors import GalleryError
from csip_reid.gallery.index import IndexPolicy, VectorIndex, read_json, write_json_atomic
from csip_reid.gallery.lock import WriterLock
from csip_reid.gallery.schema import (
    DDL,
    FORMAT,
    HIT_COLUMNS,
    RECORD_COLUMNS,
    SCHEMA_VERSION,
    Hit,
    TrackletRecord,
    from_blob,
    hit_from_row,
    record_from_row,
)
from csip_reid.gallery.writes import THUMBS, GalleryWrites, now_iso

MANIFEST = "manifest.json"
DATABASE = "gallery.db"
LOCK = "write.lock"
_OWN_ENTRIES = {MANIFEST, DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm", f"{DATABASE}-journal", THUMBS, LOCK}
_SQL_CHUNK = 900  # stay under SQLite's host-parameter limit


def embedder_info(embedder: Any) -> dict[str, Any]:
    """The identity of an :class:`~csip_reid.pipeline.embedders.Embedder` as galleries store it."""
    return {**embedder.describe(), "fingerprint": embedder.fingerprint()}


def _identity(info: dict[str, Any]) -> tuple[str, int]:
    try:
        return str(info["fingerprint"]), int(info["dim"])
    except (KeyError, TypeError, ValueError):
        raise GalleryError(
            "embedder info must carry 'fingerprint' and 'dim' (use gallery.store.embedder_info(embedder))"
        ) from None


def _describe_embedder(info: dict[str, Any]) -> str:
    name = info.get("spec") or info.get("kind") or "unknown"
    return f"{name} (dim {info.get('dim')}, fingerprint {info.get('fingerprint')})"


class Gallery(GalleryWrites):
    """A gallery directory. Open with :meth:`create`, :meth:`open` or :meth:`open_or_create`.

    Any number of processes may read (search) a gallery; one process at a time writes. The writer
    lock is taken on the first write and held until :meth:`close`.

    Args:
        root: Gallery directory.
        manifest: Parsed ``manifest.json``.
        policy: Exact/approximate index policy.
        lock_timeout: Seconds a writer waits for another writer to finish before failing.
    """

    def __init__(self, root: Path, manifest: dict[str, Any], policy: IndexPolicy | None = None,
                 lock_timeout: float = 10.0) -> None:
        self.root = root
        self.manifest = manifest
        self.policy = policy or IndexPolicy()
        self.lock_timeout = lock_timeout
        self.fingerprint: str = manifest["fingerprint"]
        self.dim: int = int(manifest["dim"])
        self.lock = WriterLock(root / LOCK, root)
        self._index: VectorIndex | None = None
        self._index_state: dict[str, int] = {}
        self._index_gen = -1
        self._unsaved = 0
        try:
            self.db = sqlite3.connect(root / DATABASE, timeout=30.0, isolation_level=None)
            self.db.execute("PRAGMA foreign_keys = ON")
            self.db.execute("PRAGMA synchronous = NORMAL")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            self.db.execute("SELECT COUNT(*) FROM tracklets").fetchone()
        except sqlite3.DatabaseError as e:
            raise GalleryError(f"gallery {root}: cannot read {DATABASE}: {e}") from e
        if version > SCHEMA_VERSION:
            raise GalleryError(f"gallery {root} has schema version {version}; this csip-reid reads "
                               f"up to {SCHEMA_VERSION}: upgrade csip-reid")
        self._sync_index()

    # -- opening -----------------------------------------------------------------------------
    @staticmethod
    def is_gallery(root: str | Path) -> bool:
        """True if ``root`` holds a gallery manifest."""
        return (Path(root) / MANIFEST).is_file()

    @classmethod
    def create(cls, root: str | Path, embedder_info: dict[str, Any], **kwargs: Any) -> Gallery:
        """Create a new, empty gallery for vectors of the given embedder.

        Args:
            root: Directory to create (may exist if empty).
            embedder_info: ``embedder.describe()`` plus ``fingerprint`` (see :func:`embedder_info`).
            **kwargs: ``policy`` and ``lock_timeout`` (see :class:`Gallery`). The policy is
                stored in the manifest and used by later :meth:`open` calls that give none.

        Raises:
            GalleryError: ``root`` is already a gallery, or a folder with other content.
        """
        root = Path(root).expanduser().absolute()
        fingerprint, dim = _identity(embedder_info)
        if cls.is_gallery(root):
            raise GalleryError(f"{root} is already a gallery; open it or choose another --gallery")
        if root.exists() and not root.is_dir():
            raise GalleryError(f"cannot create gallery {root}: it is a file")
        if root.is_dir():
            foreign = sorted(p.name for p in root.iterdir() if p.name not in _OWN_ENTRIES)
            if foreign:
                raise GalleryError(f"cannot create gallery in {root}: the folder is not empty "
                                   f"({', '.join(foreign[:3])}...); choose an empty or new folder")
        (root / THUMBS).mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(root / DATABASE, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.executescript(DDL)
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', '0')")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        finally:
            db.close()
        describe = {k: v for k, v in embedder_info.items() if k != "fingerprint"}
        policy = kwargs["policy"] = kwargs.get("policy") or IndexPolicy()
        manifest = {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "embedder": describe,
            "fingerprint": fingerprint,
            "dim": dim,
            "skeleton_format": embedder_info.get("skeleton_format"),
            "index_policy": policy.to_dict(),
            "created": now_iso(),
            "updated": now_iso(),
        }
        write_json_atomic(root / MANIFEST, manifest)  # the manifest is written last: it commits creation
        return cls(root, manifest, **kwargs)

    @classmethod
    def open(cls, root: str | Path, **kwargs: Any) -> Gallery:
        """Open an existing gallery.

        Raises:
            GalleryError: Missing folder, not a gallery, corrupt manifest or database.
        """
        root = Path(root).expanduser().absolute()
        if not root.is_dir():
            raise GalleryError(f"gallery {root} does not exist")
        if not cls.is_gallery(root):
            raise GalleryError(f"{root} is not a csip-reid gallery (no {MANIFEST})")
        manifest = read_json(root / MANIFEST)
        if manifest is None:
            raise GalleryError(f"gallery {root}: {MANIFEST} is corrupt (not a JSON object)")
        if manifest.get("format") != FORMAT:
            raise GalleryError(f"gallery {root}: {MANIFEST} is not a {FORMAT} manifest")
        if not isinstance(manifest.get("fingerprint"), str) or not isinstance(manifest.get("dim"), int):
            raise GalleryError(f"gallery {root}: {MANIFEST} is corrupt (no embedder fingerprint/dim)")
        if int(manifest.get("schema_version", 0)) > SCHEMA_VERSION:
            raise GalleryError(f"gallery {root} was written by a newer csip-reid (schema "
                               f"{manifest['schema_version']}); upgrade csip-reid")
        if not (root / DATABASE).is_file():
            raise GalleryError(f"gallery {root} is corrupt: {DATABASE} is missing")
        if kwargs.get("policy") is None:
            kwargs["policy"] = IndexPolicy.from_dict(manifest.get("index_policy") or {})
        return cls(root, manifest, **kwargs)

    @classmethod
    def open_or_create(cls, root: str | Path, embedder_info: dict[str, Any], **kwargs: Any) -> Gallery:
        """Open ``root`` and check it matches the embedder, or create it if it is not a gallery yet."""
        if cls.is_gallery(root):
            gallery = cls.open(root, **kwargs)
            try:
                gallery.check_compatible(embedder_info)
            except GalleryError:
                gallery.close()
                raise
            return gallery
        return cls.create(root, embedder_info, **kwargs)

    def check_compatible(self, embedder_info: dict[str, Any]) -> None:
        """Raise :class:`GalleryError` unless ``embedder_info`` is this gallery's embedder."""
        fingerprint, dim = _identity(embedder_info)
        if fingerprint != self.fingerprint or dim != self.dim:
            built = _describe_embedder({**self.manifest["embedder"], "fingerprint": self.fingerprint,
                                        "dim": self.dim})
            raise GalleryError(f"gallery {self.root} was built with embedder {built}; you asked for "
                               f"{_describe_embedder(embedder_info)}: use another --gallery or the same "
                               "--embedder")

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Save the index if it has unsaved changes, release the writer lock, close the database."""
        if getattr(self, "db", None) is None:
            return
        try:
            if self.lock.held and self._unsaved:
                self._save_index()
        finally:
            self.lock.release()
            self.db.close()
            self.db = None  # type: ignore[assignment]

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM tracklets").fetchone()[0])

    @property
    def embedder(self) -> dict[str, Any]:
        """The embedder's ``describe()`` dict recorded at creation."""
        return dict(self.manifest["embedder"])

    @property
    def index(self) -> VectorIndex:
        """The FAISS index, synchronised with the database."""
        self._sync_index()
        assert self._index is not None
        return self._index

    # -- queries -----------------------------------------------------------------------------
    def is_indexed(self, content_hash: str, embedder_fp: str | None = None) -> bool:
        """Whether a video with this content hash was indexed with this embedder (default: ours)."""
        row = self.db.execute(
            "SELECT 1 FROM videos WHERE content_hash = ? AND embedder_fp = ? AND status = 'indexed' LIMIT 1",
            (content_hash, embedder_fp or self.fingerprint),
        ).fetchone()
        return row is not None

    def search(self, queries: np.ndarray, k: int = 10,
               exclude_video: str | int | Path | None = None) -> list[list[Hit]]:
        """The ``k`` most similar stored tracklets for each query vector.

        Args:
            queries: (Q, D) or (D,) float32 vectors of this gallery's embedder (normalised here).
            k: Results per query.
            exclude_video: Leave out tracklets of this video (path, name or id); a video that is
                not in the gallery excludes nothing.

        Returns:
            One list of :class:`Hit` per query, best first.
        """
        q = np.asarray(queries, dtype=np.float32)
        q = q.reshape(1, -1) if q.ndim == 1 else q
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise GalleryError(f"query vectors have shape {tuple(np.shape(queries))}; gallery {self.root} "
                               f"holds dim {self.dim} vectors of embedder {self.manifest['embedder'].get('spec')}")
        if not np.isfinite(q).all():
            raise GalleryError("query vectors contain NaN or infinite values")
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        exclude = None
        if exclude_video is not None:
            row = self._find_video(exclude_video)
            if row is not None:
                exclude = self._tracklet_ids(row[0])
        scores, ids = self.index.search(q, k, exclude)
        wanted = sorted({int(i) for i in ids.ravel() if i >= 0})
        rows = {}
        for s in range(0, len(wanted), _SQL_CHUNK):
            chunk = wanted[s : s + _SQL_CHUNK]
            sql = (f"SELECT {HIT_COLUMNS} FROM tracklets t JOIN videos v ON v.id = t.video_id "
                   f"WHERE t.id IN ({','.join('?' * len(chunk))})")
            rows.update({r[0]: r for r in self.db.execute(sql, chunk)})
        root = str(self.root)
        results = []
        for srow, irow in zip(scores, ids, strict=True):
            hits = [(float(sc), rows[int(i)]) for sc, i in zip(srow, irow, strict=True) if int(i) in rows]
            results.append([hit_from_row(r, n + 1, sc, root) for n, (sc, r) in enumerate(hits)])
        return results

    def get_tracklet(self, tracklet_id: int) -> TrackletRecord:
        """One stored tracklet with its arrays.

        Raises:
            GalleryError: No such id.
        """
        row = self.db.execute(
            f"SELECT {RECORD_COLUMNS} FROM tracklets t JOIN videos v ON v.id = t.video_id WHERE t.id = ?",
            (int(tracklet_id),),
        ).fetchone()
        if row is None:
            raise GalleryError(f"no tracklet {tracklet_id} in gallery {self.root}")
        rec = record_from_row(row, str(self.root))
        rec.vectors = self._extra_vectors([rec.id]).get(rec.id, {})
        return rec

    def iter_tracklets(self, video: str | int | Path | None = None, chunk: int = 256) -> Iterator[TrackletRecord]:
        """All stored tracklets (of one video if given), by increasing id, with their arrays."""
        where, args = "", []
        if video is not None:
            vid = self._require_video(video)[0]
            where, args = " AND t.video_id = ?", [vid]
        last = 0
        while True:
            rows = self.db.execute(
                f"SELECT {RECORD_COLUMNS} FROM tracklets t JOIN videos v ON v.id = t.video_id "
                f"WHERE t.id > ?{where} ORDER BY t.id LIMIT ?", [last, *args, chunk],
            ).fetchall()
            if not rows:
                return
            recs = [record_from_row(r, str(self.root)) for r in rows]
            extra = self._extra_vectors([r.id for r in recs])
            for rec in recs:
                rec.vectors = extra.get(rec.id, {})
                yield rec
            last = recs[-1].id

    def vectors(self, space: str = "appearance") -> tuple[np.ndarray, np.ndarray]:
        """``(ids (N,) int64, vectors (N, D) float32)`` of one vector space, by increasing id.

        ``"appearance"`` is the embedder's space (the one FAISS indexes); other spaces (e.g.
        ``"skeleton"``) come from the ``vectors`` table and cover only tracklets that have them.
        """
        if space == "appearance":
            return self._read_embeddings()
        rows = self.db.execute("SELECT tracklet_id, vec FROM vectors WHERE space = ? ORDER BY tracklet_id",
                               (space,)).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        if not rows:
            return ids, np.zeros((0, 0), np.float32)
        return ids, np.stack([from_blob(r[1], np.float32) for r in rows])

    def info(self) -> dict[str, Any]:
        """Counts, embedder, index type and size on disk, plus the indexed and failed videos."""
        videos = [
            {"id": r[0], "path": r[1], "name": r[2], "camera": r[3], "tracklets": r[4], "indexed_at": r[5],
             "content_hash": r[6]}
            for r in self.db.execute(
                "SELECT v.id, v.path, v.name, v.camera, COUNT(t.id), v.indexed_at, v.content_hash "
                "FROM videos v LEFT JOIN tracklets t ON t.video_id = v.id WHERE v.status = 'indexed' "
                "GROUP BY v.id ORDER BY v.id")
        ]
        failed = [{"path": r[0], "error": r[1], "failed_at": r[2]} for r in self.db.execute(
            "SELECT path, error, indexed_at FROM videos WHERE status = 'failed' ORDER BY id")]
        size = sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
        return {
            "path": str(self.root),
            "format": FORMAT,
            "schema_version": self.manifest.get("schema_version"),
            "embedder": self.embedder,
            "fingerprint": self.fingerprint,
            "dim": self.dim,
            "skeleton_format": self.manifest.get("skeleton_format"),
            "created": self.manifest.get("created"),
            "updated": self.manifest.get("updated"),
            "num_videos": len(videos),
            "num_tracklets": len(self),
            "num_failed": len(failed),
            "index": {**self.index.describe(), "exact_max": self.policy.exact_limit(self.dim)},
            "size_bytes": size,
            "videos": videos,
            "failed": failed,
        }

    # -- helpers -------------------------------------------------------------------------
    def _tracklet_ids(self, video_id: int) -> np.ndarray:
        rows = self.db.execute("SELECT id FROM tracklets WHERE video_id = ?", (video_id,)).fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)

    def _extra_vectors(self, ids: Sequence[int]) -> dict[int, dict[str, np.ndarray]]:
        out: dict[int, dict[str, np.ndarray]] = {}
        for s in range(0, len(ids), _SQL_CHUNK):
            chunk = list(ids[s : s + _SQL_CHUNK])
            for tid, space, vec in self.db.execute(
                f"SELECT tracklet_id, space, vec FROM vectors WHERE tracklet_id IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                out.setdefault(tid, {})[space] = from_blob(vec, np.float32)
        return out

