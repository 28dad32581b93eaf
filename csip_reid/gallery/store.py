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
whole or not at all; a long video indexed in segments is stored segment by segment, each with its
resume point in the same transaction (status ``partial`` until the last). The FAISS index is brought in line with SQLite whenever a gallery is opened,
written to, or searched after another process wrote: missing vectors are added from SQLite,
removed ones dropped, an unreadable index rebuilt. Thumbnail folders orphaned by a crash are
deleted by the next writer.

:class:`Gallery` is a facade over four parts, one of each per open gallery:

* :class:`~csip_reid.gallery.database.Database`: the SQLite connection and every read;
* :class:`~csip_reid.gallery.sync.IndexSync`: the FAISS index, kept in line with SQLite (readers
  use it to search, the writer tells it about each write);
* :class:`~csip_reid.gallery.writer.Writer`: the writer lock and every write (taken for a whole
  run with :meth:`Gallery.take_writer`);
* :class:`~csip_reid.gallery.identities.IdentityTables`: the people found across videos and the
  user's labels (:attr:`Gallery.identities`).

No SQL runs outside this package: readers get typed records (:class:`VideoRecord`,
:class:`StoredVideo`, :class:`~csip_reid.gallery.schema.GalleryRecord`, :class:`Hit`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np

from csip_reid.core.errors import GalleryError
from csip_reid.core.tracklet import Tracklet
from csip_reid.gallery.database import Database, norm_path
from csip_reid.gallery.files import LOCK, MANIFEST, THUMBS
from csip_reid.gallery.identities import IdentityTables
from csip_reid.gallery.index import VectorIndex
from csip_reid.gallery.kinds import IndexPolicy
from csip_reid.gallery.lock import WriterLock
from csip_reid.gallery.manifest import (
    check_new_folder,
    describe_embedder,
    embedder_identity,
    embedder_info,
    new_manifest,
    read_manifest,
    write_manifest,
)
from csip_reid.gallery.schema import FORMAT, GalleryRecord, Hit, hit_from_row
from csip_reid.gallery.sync import IndexSync
from csip_reid.gallery.videos import StoredVideo, VideoRecord
from csip_reid.gallery.writer import Writer

__all__ = ["Gallery", "StoredVideo", "VideoRecord", "embedder_info"]


class Gallery:
    """A gallery directory. Open with :meth:`create`, :meth:`open` or :meth:`open_or_create`.

    Any number of processes may read (search) a gallery; one process at a time writes. The writer
    lock is taken on the first write and held until :meth:`close`.

    Args:
        root: Gallery directory.
        manifest: Parsed ``manifest.json``.
        policy: Exact/approximate index policy.
        lock_timeout: Seconds a writer waits for another writer to finish before failing.

    Attributes:
        root, policy, lock_timeout: As given (``policy`` is replaced by :meth:`reindex`).
        manifest: Parsed ``manifest.json`` (its ``updated`` time follows the writes).
        fingerprint: Fingerprint of the embedder the gallery was built with.
        dim: Dimension of its vectors.
        lock: The writer lock.
        identities: The identity and label tables (:mod:`csip_reid.identity` reads and writes them).
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
        self._db = Database(root, self.dim)
        self._sync = IndexSync(root, self._db, self.policy, self.lock)
        self._writer = Writer(root, self._db, self._sync, self.lock, manifest, self.fingerprint, lock_timeout)
        self.identities = IdentityTables(self._db, self._writer)
        self._sync.sync()

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
        embedder_identity(embedder_info)
        check_new_folder(root)
        (root / THUMBS).mkdir(parents=True, exist_ok=True)
        Database.initialise(root)
        policy = kwargs["policy"] = kwargs.get("policy") or IndexPolicy()
        manifest = new_manifest(embedder_info, policy)
        write_manifest(root, manifest)  # the manifest is written last: it commits creation
        return cls(root, manifest, **kwargs)

    @classmethod
    def open(cls, root: str | Path, **kwargs: Any) -> Gallery:
        """Open an existing gallery.

        Args:
            root: The gallery directory.
            **kwargs: ``policy`` (default: the one stored in the manifest) and ``lock_timeout``.

        Raises:
            GalleryError: Missing folder, not a gallery, corrupt manifest or database.
        """
        root = Path(root).expanduser().absolute()
        manifest = read_manifest(root)
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
        fingerprint, dim = embedder_identity(embedder_info)
        if fingerprint != self.fingerprint or dim != self.dim:
            built = describe_embedder({**self.manifest["embedder"], "fingerprint": self.fingerprint,
                                       "dim": self.dim})
            raise GalleryError(f"gallery {self.root} was built with embedder {built}; you asked for "
                               f"{describe_embedder(embedder_info)}: use another --gallery or the same "
                               "--embedder")

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Save the index if it has unsaved changes, release the writer lock, close the database."""
        if self._db.closed:
            return
        try:
            self._sync.flush()
        finally:
            self.lock.release()
            self._db.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self._db.count()

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._db.closed

    def snapshot(self) -> AbstractContextManager[None]:
        """A block in which every read sees the same committed state (one SQLite read snapshot)."""
        return self._db.snapshot()

    @property
    def embedder(self) -> dict[str, Any]:
        """The embedder's ``describe()`` dict recorded at creation."""
        return dict(self.manifest["embedder"])

    @property
    def index(self) -> VectorIndex:
        """The FAISS index, synchronised with the database."""
        return self._sync.index

    # -- queries -----------------------------------------------------------------------------
    def is_indexed(self, content_hash: str, embedder_fp: str | None = None) -> bool:
        """Whether a video with this content hash was indexed with this embedder (default: ours)."""
        return self._db.is_indexed(content_hash, embedder_fp or self.fingerprint)

    def indexed_hash_at(self, path: str | Path) -> str | None:
        """Content hash of the indexed video stored under ``path`` (as given); None if none is."""
        return self._db.indexed_hash_at(str(path))

    def indexed_videos(self) -> list[VideoRecord]:
        """The indexed videos as :meth:`add_video` takes them (to copy them into another gallery), by id."""
        return [v.record() for v in self._db.videos() if v.status == "indexed"]

    def videos(self) -> list[StoredVideo]:
        """Every video (indexed, partial and failed) with its tracklets' count and span, by id."""
        return self._db.videos()

    def video(self, video: str | int | Path) -> StoredVideo:
        """One video by path, file name or id (GalleryError: none, or a file name several videos have)."""
        return self._db.videos(self._db.require_video(video)[0])[0]

    def tracklet_ids(self, video: str | int | Path) -> list[int]:
        """Ids of a video's tracklets by start time (the video as :meth:`video` takes it)."""
        return [int(i) for i in self._db.tracklet_ids(self._db.require_video(video)[0])]

    def thumbnail(self, tracklet_id: int) -> Path | None:
        """The thumbnail file of a tracklet (None: it has none, or there is no such tracklet)."""
        rel = self._db.thumb_path(tracklet_id)
        return None if rel is None else self.root / rel

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
            row = self._db.find_video(exclude_video)
            if row is not None:
                exclude = self._db.tracklet_ids(row[0])
        scores, ids = self.index.search(q, k, exclude)
        rows = self._db.hit_rows([int(i) for i in ids.ravel() if i >= 0])
        root = str(self.root)
        results = []
        for srow, irow in zip(scores, ids, strict=True):
            hits = [(float(sc), rows[int(i)]) for sc, i in zip(srow, irow, strict=True) if int(i) in rows]
            results.append([hit_from_row(r, n + 1, sc, root) for n, (sc, r) in enumerate(hits)])
        return results

    def get_tracklet(self, tracklet_id: int) -> GalleryRecord:
        """One stored tracklet with its arrays.

        Raises:
            GalleryError: No such id.
        """
        rec = self._db.record(tracklet_id)
        if rec is None:
            raise GalleryError(f"no tracklet {tracklet_id} in gallery {self.root}")
        return rec

    def iter_tracklets(self, video: str | int | Path | None = None, chunk: int = 256) -> Iterator[GalleryRecord]:
        """All stored tracklets (of one video if given), by increasing id, with their arrays.

        Raises:
            GalleryError: ``video`` is not in the gallery, or names several videos.
        """
        video_id = None if video is None else self._db.require_video(video)[0]
        return self._db.iter_records(video_id, chunk)

    def vectors(self, space: str = "appearance") -> tuple[np.ndarray, np.ndarray]:
        """``(ids (N,) int64, vectors (N, D) float32)`` of one vector space, by increasing id.

        ``"appearance"`` is the embedder's space (the one FAISS indexes); other spaces (e.g.
        ``"skeleton"``) come from the ``vectors`` table and cover only tracklets that have them.
        """
        if space == "appearance":
            return self._db.read_embeddings()
        return self._db.vectors(space)

    def info(self) -> dict[str, Any]:
        """Counts, embedder, index type and size on disk, plus the indexed, partial and failed videos."""
        by: dict[str, list[dict[str, Any]]] = {"indexed": [], "partial": [], "failed": []}
        for v in self._db.videos():
            by[v.status].append(v.summary())
        m, size = self.manifest, sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())
        return {"path": str(self.root), "format": FORMAT, "schema_version": m.get("schema_version"),
                "embedder": self.embedder, "fingerprint": self.fingerprint, "dim": self.dim,
                "skeleton_format": m.get("skeleton_format"), "created": m.get("created"), "updated": m.get("updated"),
                "num_videos": len(by["indexed"]), "num_tracklets": len(self), "num_failed": len(by["failed"]),
                "index": self._sync.describe(), "size_bytes": size,
                "videos": by["indexed"], "failed": by["failed"], "partial": by["partial"]}

    # -- writes ------------------------------------------------------------------------------
    def add_video(self, video: VideoRecord, tracklets: Sequence[Tracklet], resume: dict[str, Any] | None = None,
                  append: bool = False) -> int:
        """Store one indexed video and all its tracklets atomically, or one segment of it; returns the video id.

        Thumbnails are written first, then the video row and every tracklet (embedding required)
        are inserted in one transaction: readers see all of the video's tracklets or none. Adding
        a path that is already in the gallery (indexed or failed) replaces it. Each tracklet's
        ``skeleton_embedding`` (if any) is stored as its ``"skeleton"`` vector and its
        ``sample_stride`` in ``extra_json``; the video's ``stats`` are stored as JSON (entries that
        do not serialise are left out). A re-index without a ``start_time`` keeps the stored one.

        Args:
            video: The video's facts.
            tracklets: Its tracklets (of this segment).
            resume: The video is not finished: where its indexing goes on (JSON-able, ``frame``
                first), stored in the same transaction; :meth:`resume_point` returns it.
            append: Add a segment to the partly indexed video at ``video.path`` (same content hash)
                instead of replacing it; ``resume`` None completes it.

        Raises:
            GalleryError: A tracklet has no embedding or one of the wrong size, another process is
                writing the gallery, or ``append`` without a partly indexed video.
        """
        return self._writer.add_video(video, tracklets, resume, append)

    def resume_point(self, path: str | Path) -> tuple[str, str, dict[str, Any]] | None:
        """``(content hash, embedder fingerprint, resume point)`` of the partly indexed video at ``path``, or None."""
        row = self._db.resume_point(norm_path(path))
        return None if row is None else (row[1], row[2], row[4])

    def set_video_time(self, video: str | int | Path, start_time: str | None) -> int:
        """Set the wall-clock start (ISO 8601, normalised to UTC; None clears it) of a video; returns its id.

        Raises:
            GalleryError: No such video, an ambiguous name, or a time that is not ISO 8601.
        """
        return self._writer.set_video_time(video, start_time)

    def take_writer(self) -> None:
        """Take the writer lock now (else the first write takes it) and keep it until :meth:`close`.

        For a run that must be the only writer from its start (the Ray driver: one per gallery).

        Raises:
            GalleryError: Another process is writing the gallery.
        """
        self._writer.begin()

    def mark_failed(self, path: str | Path, error: str, content_hash: str | None = None) -> None:
        """Record that a video could not be indexed (listed by ``info()``).

        Bad input never costs indexed data: if the path was indexed before (the file has since
        been damaged or replaced), its tracklets are kept and only this run reports the failure.
        An earlier failure record of the same path is replaced.
        """
        self._writer.mark_failed(path, error, content_hash)

    def remove_video(self, video: str | int | Path) -> int:
        """Remove a video (by path, file name or id) and its tracklets; returns the tracklet count.

        Raises:
            GalleryError: No such video, or the name matches several videos.
        """
        return self._writer.remove_video(video)

    def reindex(self, policy: IndexPolicy) -> dict[str, Any]:
        """Make ``policy`` the stored policy (later opens use it), rebuild the index; returns ``info()["index"]``."""
        self.policy = policy
        self._writer.begin(policy)
        return self._sync.describe()

    def flush(self) -> None:
        """Write the FAISS index now if it has changes not on disk (writers only)."""
        self._sync.flush()
