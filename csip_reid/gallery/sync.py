"""Keeping a gallery's FAISS index in line with its SQLite database, for readers and writers.

The index (:class:`~csip_reid.gallery.index.VectorIndex`) is a cache of ``tracklets.embedding``.
The sidecar of a saved index records which tracklets it holds (count, max id, id sum); SQLite's
``generation`` counter tells whether any process has written since the index was last brought up
to date. :meth:`IndexSync.sync` compares the two and then does the least work that restores
agreement: nothing, add the missing vectors and drop the removed ones, or rebuild from SQLite.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from csip_reid.core.errors import GalleryError
from csip_reid.gallery.compressed import LISTS_GLOB, lists_file, memory_bytes_per_vector
from csip_reid.gallery.database import Database
from csip_reid.gallery.files import SIDECAR, read_json
from csip_reid.gallery.index import VectorIndex
from csip_reid.gallery.kinds import IndexPolicy
from csip_reid.gallery.lock import WriterLock
from csip_reid.gallery.rebuild import REBUILD_CHUNK, DatabaseSource, build_index

#: Indexes up to this size are saved after every write; larger ones after 10% new vectors and on close.
AUTOSAVE_BYTES = 64 << 20
_STATE_KEYS = ("count", "max_id", "id_sum")


class IndexSync:
    """The in-memory index of one open gallery and the bookkeeping that keeps it current.

    Args:
        root: Gallery directory (where index files live).
        db: The gallery's database.
        policy: Exact/approximate index policy.
        lock: The gallery's writer lock. Only its holder saves the index, except that a reader
            that had to rebuild it saves it when no writer is busy.

    Attributes:
        rebuild_chunk: Rows per SQLite read when the index is rebuilt.
    """

    def __init__(self, root: Path, db: Database, policy: IndexPolicy, lock: WriterLock) -> None:
        self.root = root
        self.db = db
        self.dim = db.dim
        self.policy = policy
        self.lock = lock
        self._index: VectorIndex | None = None
        self._state: dict[str, int] = {}
        self._generation = -1
        self.unsaved = 0
        self.rebuild_chunk = REBUILD_CHUNK

    @property
    def index(self) -> VectorIndex:
        """The index, synchronised with the database first."""
        self.sync()
        assert self._index is not None
        return self._index

    def sync(self) -> None:
        """Bring the in-memory index in line with SQLite (cheap when nothing changed)."""
        if self._index is not None and self.db.generation() == self._generation:
            return
        with self.db.snapshot():
            gen, state = self.db.generation(), self.db.state()
            if self._index is None:
                loaded = VectorIndex.load(self.root, self.dim, self.policy)
                if loaded is not None:
                    self._index = loaded[0]
                    self._index.exact_vectors = self.db.embeddings_of  # the refine step's reads
                    self._state = {k: int(loaded[1].get(k, -1)) for k in _STATE_KEYS}
            rebuilt = self._index is None
            if rebuilt:
                self.rebuild()
            elif state != self._state:
                self._catch_up(state)
            self._state, self._generation = state, gen
        if rebuilt and not self.lock.held:
            self._save_opportunistically()

    def rebuild(self) -> None:
        """Build the index from scratch from SQLite (the kind the policy asks for at this size).

        The vectors are read :attr:`rebuild_chunk` rows at a time in one read snapshot (see
        :mod:`csip_reid.gallery.rebuild`): memory stays bounded whatever the gallery's size. The
        old index is let go first (if the build fails, the next access loads the saved one).
        """
        self._index = None
        with self.db.snapshot():
            self._index = build_index(DatabaseSource(self.db, self.rebuild_chunk), self.dim, self.policy,
                                      directory=self.root)
        self.unsaved = max(1, self._index.ntotal)

    def rebuild_if_due(self) -> None:
        """Rebuild if the policy wants another index kind or a re-training at the current size."""
        index = self.index
        if index.wants_rebuild(index.ntotal, self.policy):
            self.rebuild()

    def apply(self, removed: np.ndarray | None, added: np.ndarray | None, vecs: np.ndarray | None) -> None:
        """Apply a write this process has just committed, then save the index when it is due.

        Args:
            removed: Ids of the tracklets the write deleted, or None.
            added: Ids of the tracklets it inserted, or None.
            vecs: Their (L2-normalised) appearance vectors, one row per id in ``added``.
        """
        assert self._index is not None
        changes = 0
        if removed is not None:
            changes += self._index.remove(removed)
        if added is not None and len(added):
            self._index.add(added, vecs)
            changes += len(added)
        self._state, self._generation = self.db.state(), self.db.generation()
        self.unsaved += changes
        n = self._index.ntotal
        if n != self._state["count"] or self._index.wants_rebuild(n, self.policy):
            self.rebuild()
        index_bytes = self._index.ntotal * self.dim * 4
        if self.unsaved and (index_bytes <= AUTOSAVE_BYTES or self.unsaved >= 0.1 * self._index.ntotal):
            self.save()

    def save(self) -> None:
        """Commit the index to disk (writer lock required; skipped if SQLite moved on meanwhile)."""
        if self._index is None or not self.lock.held or self.db.state() != self._state:
            return
        self._index.save(self.root, {**self._state, "generation": self._generation})
        self.unsaved = 0

    def flush(self) -> None:
        """Save the index now if it has changes not on disk and this process is the writer."""
        if self.lock.held and self.unsaved:
            self.save()

    def remove_stale_files(self) -> None:
        """Delete index, on-disk list and temp files that the sidecar does not name (crashed writers')."""
        sidecar = read_json(self.root / SIDECAR) or {}
        current = {sidecar.get("file"), sidecar.get("lists_file")}
        for p in [*self.root.glob("index-*.faiss*"), *self.root.glob(LISTS_GLOB), *self.root.glob(".*.tmp")]:
            if p.name not in current:
                p.unlink(missing_ok=True)

    def describe(self) -> dict[str, Any]:
        """The index's ``describe()``, its lists file (None: in memory) and the policy's limits."""
        index, dim = self.index, self.dim
        return {**index.describe(), "lists_file": lists_file(index.index),
                "bytes_per_vector": memory_bytes_per_vector(index.kind, dim),
                "exact_max": self.policy.exact_limit(dim), "compressed_max": self.policy.compressed_limit(dim),
                "compressed": self.policy.compressed, "on_disk": self.policy.on_disk}

    def _catch_up(self, state: dict[str, int]) -> None:
        """Apply to the loaded index the removals and additions SQLite has that it lacks."""
        assert self._index is not None
        old = self._state
        if old["count"] < 0 or old["max_id"] < 0:
            self.rebuild()
            return
        changes = 0
        if self.db.state(old["max_id"]) != old:
            changes += self._index.keep_only(self.db.ids_up_to(old["max_id"]))
        ids, vecs = self.db.read_embeddings(old["max_id"])
        self._index.add(ids, vecs)
        changes += len(ids)
        if self._index.ntotal != state["count"]:
            self.rebuild()
            return
        self.unsaved += changes

    def _save_opportunistically(self) -> None:
        """A reader that had to rebuild the index saves it if no writer is busy (else the next writer will)."""
        try:
            self.lock.acquire(0.0)
        except GalleryError:
            return
        try:
            self.save()
        finally:
            self.lock.release()
