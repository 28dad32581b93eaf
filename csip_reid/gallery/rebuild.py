"""Building a gallery index from a source of vectors read in chunks: bounded memory at any size.

:func:`build_index` is the one implementation behind :func:`build_in_memory` (vectors already in
memory, :class:`ArraySource`) and the rebuild of a gallery from SQLite (:class:`DatabaseSource`).
It never holds more than one chunk of the source at a time, besides what the index it builds
holds itself:

* exact (``flat``): the vectors are added chunk by chunk (the flat index holds them all: it is
  only chosen below the exact limit);
* IVF / compressed: the training sample (``nlist * train_per_list`` vectors, the per-list count
  capped by the kind's ``max_train_per_list`` (20 for ``ivfhnsw-sq8``, whose lists are many), at
  least its ``min_train``, 10,000 for ``ivfpq``) and the ``tune_queries`` tuning queries are read by
  position, the index is trained, then one pass over the chunks adds them (an HNSW quantizer's
  lists are found by :class:`~csip_reid.gallery.compressed.ListAssigner`, not by the graph) and computes the
  tuning ground truth (exact top-k per query, merged chunk by chunk). At 100M x 512 with the
  default policy that is a 1M-vector sample (2 GB) and 100k-row chunks (200 MB) instead of one
  200 GB array.
* The fallback to exact search (the data is too weakly clustered for the recall target) streams
  the source a second time into a flat index. It only happens for kinds that fall back
  (``falls_back_to_exact`` in :data:`~csip_reid.gallery.kinds.KINDS`: ``ivf``), chosen below
  :meth:`IndexPolicy.compressed_limit <csip_reid.gallery.kinds.IndexPolicy.compressed_limit>`,
  i.e. at sizes whose float32 vectors fit in memory by construction; compressed kinds keep their
  best ``nprobe`` instead.

The random draws (sample positions, then tuning query positions, both from
``np.random.default_rng(policy.seed)``) do not depend on the data, so for the same vectors in the
same order both sources give the same index. A kind with a refine step reads the exact vectors
of its candidates through the source (``vectors_of``: SQLite for a gallery), during the tuning and
afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import faiss
import numpy as np

from csip_reid.gallery import compressed as cz
from csip_reid.gallery.database import Database
from csip_reid.gallery.index import VectorIndex
from csip_reid.gallery.kinds import KINDS, IndexPolicy

#: Rows per chunk when a gallery's index is rebuilt from SQLite.
REBUILD_CHUNK = 100_000


class VectorSource(Protocol):
    """Vectors with their ids, in a fixed order, readable in chunks or by position."""

    def count(self) -> int:
        """Number of vectors."""
        ...

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(ids, vectors)`` of consecutive chunks, in source order."""
        ...

    def rows_at(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, vectors)`` at the given distinct positions (in the order given)."""
        ...

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The vectors of stored ids, one row per id in the order given (the refine step's reads)."""
        ...


class ArraySource:
    """Vectors already in memory (:func:`build_in_memory`)."""

    def __init__(self, ids: np.ndarray, vecs: np.ndarray, chunk: int = REBUILD_CHUNK) -> None:
        self.ids, self.vecs, self.chunk = ids, vecs, chunk
        self._order: np.ndarray | None = None

    def count(self) -> int:
        """Number of vectors."""
        return len(self.ids)

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Views of ``chunk`` consecutive rows."""
        for s in range(0, len(self.ids), self.chunk):
            yield self.ids[s : s + self.chunk], self.vecs[s : s + self.chunk]

    def rows_at(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows at ``positions``."""
        if len(positions) == len(self.ids) and np.array_equal(positions, np.arange(len(self.ids))):
            return self.ids, self.vecs
        return self.ids[positions], self.vecs[positions]

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The vectors of stored ids, one row per id in the order given."""
        if self._order is None:
            self._order = np.argsort(self.ids, kind="stable")
        return self.vecs[self._order[np.searchsorted(self.ids, ids, sorter=self._order)]]


class DatabaseSource:
    """The appearance vectors of a gallery's SQLite database, by increasing tracklet id.

    Use inside one read snapshot (``Database.snapshot``) so every read sees the same rows.

    Attributes:
        largest_read: Most rows read at once by :meth:`chunks` (checks that memory stays bounded).
    """

    def __init__(self, db: Database, chunk: int = REBUILD_CHUNK) -> None:
        self.db, self.chunk = db, chunk
        self.largest_read = 0

    def count(self) -> int:
        """Number of stored tracklets."""
        return self.db.count()

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``chunk`` tracklets at a time (keyset pagination on the id)."""
        for ids, vecs in self.db.embedding_chunks(self.chunk):
            self.largest_read = max(self.largest_read, len(ids))
            yield ids, vecs

    def rows_at(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The tracklets at ``positions`` in id order: ids streamed in chunks, then their vectors."""
        order = np.argsort(positions, kind="stable")
        wanted = np.asarray(positions)[order]
        picked = np.empty(len(wanted), np.int64)
        start = done = 0
        for ids in self.db.id_chunks(self.chunk):
            end = start + len(ids)
            stop = int(np.searchsorted(wanted, end))
            picked[done:stop] = ids[wanted[done:stop] - start]
            done, start = stop, end
            if done == len(wanted):
                break
        ids = np.empty_like(picked)
        ids[order] = picked[:done]
        return ids, self.db.embeddings_of(ids)

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of these tracklet ids (``Database.embeddings_of``)."""
        return self.db.embeddings_of(ids)


class StreamedKnn:
    """Exact inner-product top-``k`` of fixed queries over vectors seen chunk by chunk."""

    def __init__(self, queries: np.ndarray, k: int) -> None:
        self.queries, self.k = queries, k
        self.scores = np.full((len(queries), 0), -np.inf, np.float32)
        self.ids = np.full((len(queries), 0), -1, np.int64)

    def update(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        """Merge one chunk into the running top-``k`` (earlier rows win ties)."""
        if not len(ids):
            return
        d, pos = faiss.knn(self.queries, np.ascontiguousarray(vecs, np.float32), min(self.k, len(ids)),
                           metric=faiss.METRIC_INNER_PRODUCT)
        scores = np.concatenate([self.scores, d], axis=1)
        found = np.concatenate([self.ids, np.where(pos >= 0, ids[np.maximum(pos, 0)], -1)], axis=1)
        best = np.argsort(-scores, axis=1, kind="stable")[:, : self.k]
        self.scores = np.take_along_axis(scores, best, axis=1)
        self.ids = np.take_along_axis(found, best, axis=1)


def _fill(index: VectorIndex, source: VectorSource) -> VectorIndex:
    for ids, vecs in source.chunks():
        index.add(ids, vecs)
    return index


def build_index(source: VectorSource, dim: int, policy: IndexPolicy, directory: Path | None = None,
                k: int = 10) -> VectorIndex:
    """Build the index the policy asks for at the source's size (exact, or trained + tuned IVF).

    Args:
        source: The vectors and their ids.
        dim: Vector dimension.
        policy: Which index at which size, training sample and tuning.
        directory: Gallery root, where on-disk lists go when the policy asks for them.
        k: Neighbours of the recall@k that ``nprobe`` is tuned for.

    Returns:
        The index, holding every vector of the source.
    """
    n = source.count()
    if not policy.use_ivf(n, dim):
        return _fill(VectorIndex.empty(dim, policy), source)
    kind = KINDS[policy.ivf_kind(n, dim)]
    nlist = policy.nlist_for(n, kind.name)
    rng = np.random.default_rng(policy.seed)
    sample = policy.train_sample(n, kind.name)
    train_at = np.arange(n) if sample == n else np.sort(rng.choice(n, sample, replace=False))
    self_ids, queries = source.rows_at(rng.choice(n, min(policy.tune_queries, n), replace=False))
    queries = np.ascontiguousarray(queries, np.float32)
    ivf = cz.new_ivf(kind.name, dim, nlist)
    cz.train_ivf(ivf, source.rows_at(train_at)[1], policy.seed)
    if policy.lists_on_disk(kind.name) and directory is not None:
        cz.move_lists_to_disk(ivf, directory)
    knn = StreamedKnn(queries, k + 1)
    assigner = cz.ListAssigner.for_index(ivf)  # HNSW quantizer: lists found by BLAS, not by the graph
    for ids, vecs in source.chunks():
        cz.add_in_chunks(ivf, ids, vecs, assigner=assigner)
        knn.update(ids, vecs)
    out = VectorIndex(ivf, kind.name, dim, nlist=nlist, nprobe=1, trained_size=n, use_gpu=policy.use_gpu)
    out.directory = directory if cz.lists_file(ivf) else None
    out.exact_vectors = source.vectors_of
    if out.tune(queries, self_ids, knn.ids, policy, k) or not kind.falls_back_to_exact:
        return out
    exact = VectorIndex(KINDS["flat"].factory(dim, 0), "flat", dim, nlist=out.nlist,
                        nprobe=out.nprobe, trained_size=n, tuned_recall=out.tuned_recall, use_gpu=policy.use_gpu)
    return _fill(exact, source)


def build_in_memory(ids: np.ndarray, vecs: np.ndarray, dim: int, policy: IndexPolicy,
                    directory: Path | None = None) -> VectorIndex:
    """Build the index the policy asks for at this size over vectors already in memory.

    ``directory`` (a gallery root) is where on-disk lists go when the policy asks for them. The
    same index as a rebuild from SQLite over the same vectors in this order.
    """
    ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
    vecs = np.ascontiguousarray(vecs, dtype=np.float32).reshape(-1, dim)
    return build_index(ArraySource(ids, vecs), dim, policy, directory)
