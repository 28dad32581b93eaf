"""The FAISS side of a gallery: a derived, rebuildable cache of the appearance vectors.

Vectors are L2-normalised float32 and compared by inner product (= cosine similarity); FAISS ids
are the tracklet ids of the SQLite database.

Index choice (measured on the project's shared 2-core x86_64 CPU, FAISS on one thread; figures
and method in ``bench/README.md``):

* up to :attr:`IndexPolicy.exact_max` vectors (default 50,000 at 512-d, scaled by ``512 / dim``)
  an exact ``IndexIDMap2(IndexFlatIP)``: a single query scans everything, ~1.5 ms at 10k x 512,
  ~16 ms at 100k and ~140 ms at 1M, so about 8 ms at the 50,000 limit;
* above it an ``IndexIVFFlat`` with ``nlist = 2 * sqrt(N)`` inverted lists (spherical k-means on
  a sample of 50 vectors per list) and an ``nprobe`` *tuned on the gallery's own vectors* when it
  is trained: the smallest power of two whose leave-one-out recall@10 against exact search
  reaches :attr:`IndexPolicy.recall_target` (0.97). On clustered data at 1M x 512 the build takes
  ~70 s (train + add + tune) and a single query ~0.4 ms at recall@10 1.00. ``nlist = 4 sqrt(N)``
  made k-means ~5x slower at 1M for no latency that matters; HNSW (M=32) took ~50 s to build at
  100k alone (projected ~10 min at 1M), reached a lower recall at equal latency, and cannot remove vectors.
* If no ``nprobe`` up to ``nlist / 2`` reaches the target (weakly clustered vectors), scanning
  would be slower than exact search: the gallery stays exact and tries again after the next
  growth step. The measured recall is kept in the sidecar and shown by ``Gallery.info()``.

Above ``IndexPolicy.compressed_limit`` the lists hold codes (:mod:`csip_reid.gallery.compressed`).
A kind with a refine step (``k_factor`` in :data:`~csip_reid.gallery.kinds.KINDS`: ``ivfhnsw-sq8``)
re-ranks its ``k * k_factor`` best candidates by their exact vectors, read through
:attr:`VectorIndex.exact_vectors` (the gallery's SQLite store), in :meth:`VectorIndex.search` and
while tuning ``nprobe``.
Indexes are built (and rebuilt from SQLite) chunk by chunk, in bounded memory, by
:mod:`csip_reid.gallery.rebuild`; ``reid gallery reindex`` changes a gallery's stored policy.

The index is re-trained when the gallery grows by :attr:`IndexPolicy.retrain_growth` since the last
training, and falls back to exact search when it shrinks below half the exact limit.

Persistence: ``index.json`` (the sidecar) names the current index file and records which tracklet
ids it holds (count, max id, id sum) and the database generation it reflects. A new index is
written under a fresh file name, then the sidecar is replaced atomically; the sidecar is the
commit point, so a crash at any moment leaves either the old or the new index, never a torn one.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from csip_reid.core.walltime import now_iso
from csip_reid.gallery import compressed as cz
from csip_reid.gallery.files import SIDECAR, fsync_file, read_json, write_json_atomic
from csip_reid.gallery.kinds import KINDS, MIN_IVF_VECTORS, IndexPolicy, kind

__all__ = ["SIDECAR", "IndexPolicy", "VectorIndex"]


def nprobe_candidates(nlist: int) -> list[int]:
    """``nprobe`` values tuning tries, in order: powers of two from 4 below ``nlist / 2``, then ``nlist / 2``.

    (Until 2026-12-06 the powers stopped at 2048: at 3M vectors and 27,713 lists ``ivfhnsw-sq8`` went
    from 2048 lists, recall@10 0.936, straight to 13,856, 0.993 at ~5x the time; ``bench/README.md``.)
    """
    half = max(1, nlist // 2)
    powers = [1 << e for e in range(2, max(2, half.bit_length())) if 1 << e < half]
    return [*powers, half]


#: Batches this large are added through a :class:`~csip_reid.gallery.compressed.ListAssigner` (made
#: once per index, it copies the centroids) instead of the HNSW graph (~1 ms per 512-d vector).
ASSIGN_FROM = 10_000
#: Reads the exact (float32, L2-normalised) vectors of stored ids, one row per id in the given order.
ExactVectors = Callable[[np.ndarray], np.ndarray]


def _as_ids(ids: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)


def _as_vecs(vecs: np.ndarray, dim: int) -> np.ndarray:
    return np.ascontiguousarray(vecs, dtype=np.float32).reshape(-1, dim)


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f[f >= 0]) & set(t[t >= 0])) for f, t in zip(found, truth, strict=True))
    total = sum(int((t >= 0).sum()) for t in truth)
    return hits / max(total, 1)


def _drop_self(ids: np.ndarray, self_ids: np.ndarray, k: int) -> np.ndarray:
    """Remove each query's own id from its result row and keep ``k`` columns."""
    out = np.full((len(ids), k), -1, np.int64)
    for i, (row, me) in enumerate(zip(ids, self_ids, strict=True)):
        kept = row[row != me][:k]
        out[i, : len(kept)] = kept
    return out


class VectorIndex:
    """A FAISS index over tracklet ids plus what is needed to save, reload and tune it.

    Build with :meth:`build` or :meth:`load`; do not construct directly.
    """

    def __init__(self, index: faiss.Index, kind: str, dim: int, nlist: int = 0, nprobe: int = 0,
                 trained_size: int = 0, tuned_recall: float | None = None, use_gpu: bool = True) -> None:
        self.index = index
        self.kind = kind
        self.dim = dim
        self.nlist = nlist
        self.nprobe = nprobe
        self.trained_size = trained_size
        self.tuned_recall = tuned_recall
        self.use_gpu = use_gpu and hasattr(faiss, "index_cpu_to_all_gpus") and faiss.get_num_gpus() > 0
        self.use_gpu = self.use_gpu and cz.hnsw_quantizer(index) is None  # GPU IVF needs a flat quantizer
        self._gpu_index: faiss.Index | None = None
        if KINDS[kind].needs_training:
            cz.set_nprobe(faiss.extract_index_ivf(index), nprobe)
        self.directory: Path | None = None  # set for on-disk lists: where the sidecar lives
        #: Where a kind with a refine step (``k_factor``) reads exact vectors; None: codes only.
        self.exact_vectors: ExactVectors | None = None
        self.k_factor = KINDS[kind].k_factor
        self._dirty = False
        self._assigner: cz.ListAssigner | None = None

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def empty(cls, dim: int, policy: IndexPolicy) -> VectorIndex:
        """An exact index with no vectors."""
        return cls(KINDS["flat"].factory(dim, 0), "flat", dim, use_gpu=policy.use_gpu)

    def tune(self, queries: np.ndarray, self_ids: np.ndarray, truth: np.ndarray, policy: IndexPolicy,
             k: int = 10) -> bool:
        """Pick the smallest ``nprobe`` reaching the recall target (leave-one-out on stored vectors).

        ``nprobe`` values up to ``nlist / 2`` are tried; beyond that an exact index is faster.

        Args:
            queries: Stored vectors used as queries.
            self_ids: Their ids (left out of their own results).
            truth: Ids of each query's exact top ``k + 1`` (its own id included), best first.
            policy: Gives the recall target.
            k: Neighbours of the recall@k.

        Returns:
            Whether the target was reached. ``tuned_recall`` holds the best recall measured.
        """
        truth = _drop_self(truth, self_ids, k)
        ivf = faiss.extract_index_ivf(self.index)
        candidates = nprobe_candidates(self.nlist)
        best = (-1.0, candidates[-1])
        for nprobe in candidates:
            cz.set_nprobe(ivf, nprobe)
            _, found = self._refined(self.index, queries, k + 1)
            recall = _recall(_drop_self(found, self_ids, k), truth)
            if recall > best[0]:
                best = (recall, nprobe)
            if recall >= policy.recall_target:
                break
        self.tuned_recall, self.nprobe = best
        cz.set_nprobe(ivf, self.nprobe)
        return best[0] >= policy.recall_target

    # -- contents ----------------------------------------------------------------------------
    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def add(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        """Add vectors under the given tracklet ids.

        A batch of :data:`ASSIGN_FROM` or more vectors (catching up with SQLite) finds the lists of
        an HNSW quantizer with a :class:`~csip_reid.gallery.compressed.ListAssigner`, made once.
        """
        ids = _as_ids(ids)
        if not len(ids):
            return
        self._mark_dirty()
        self._gpu_index = None
        if len(ids) >= ASSIGN_FROM and self._assigner is None:
            self._assigner = cz.ListAssigner.for_index(self.index)
        assigner = self._assigner if len(ids) >= ASSIGN_FROM else None
        cz.add_in_chunks(self.index, ids, _as_vecs(vecs, self.dim), assigner=assigner)

    def remove(self, ids: np.ndarray) -> int:
        """Remove the given ids; returns how many were present."""
        ids = _as_ids(ids)
        if not len(ids):
            return 0
        self._mark_dirty()
        self._gpu_index = None
        return int(self.index.remove_ids(faiss.IDSelectorBatch(ids)))

    def keep_only(self, ids: np.ndarray) -> int:
        """Remove every id not in ``ids``; returns how many were removed."""
        self._mark_dirty()
        self._gpu_index = None
        return int(self.index.remove_ids(faiss.IDSelectorNot(faiss.IDSelectorBatch(_as_ids(ids)))))

    def _mark_dirty(self) -> None:
        """Before on-disk lists change in place: flag the committed sidecar so a crash is detected."""
        if self.directory is None or self._dirty:
            return
        sidecar = read_json(self.directory / SIDECAR)
        if sidecar and sidecar.get("lists_file") == cz.lists_file(self.index):
            write_json_atomic(self.directory / SIDECAR, {**sidecar, "lists_dirty": True})
        self._dirty = True

    def wants_rebuild(self, n: int, policy: IndexPolicy) -> bool:
        """Whether a gallery of ``n`` vectors should get a new index under ``policy``."""
        if not KINDS[self.kind].needs_training:  # trained_size > 0: IVF was tried at that size and rejected
            return policy.use_ivf(n, self.dim) and n > policy.retrain_growth * self.trained_size
        limit = max(policy.exact_limit(self.dim), MIN_IVF_VECTORS)
        return n > policy.retrain_growth * self.trained_size or n < limit // 2 or not self.follows(policy)

    def follows(self, policy: IndexPolicy) -> bool:
        """Whether an IVF index has the kind and list storage the policy gives its trained size.

        False after the policy was changed (``reid gallery reindex``) and the rebuild did not
        finish: the next writer then rebuilds.
        """
        on_disk = cz.lists_file(self.index) is not None
        return (self.kind == policy.ivf_kind(self.trained_size, self.dim)
                and on_disk == policy.lists_on_disk(self.kind))

    def describe(self) -> dict[str, Any]:
        """Kind and parameters (JSON-friendly).

        A ``flat`` index with ``trained_size > 0`` is one where IVF was tried at that size and
        rejected; ``nlist``/``nprobe``/``tuned_recall`` then tell how close it came.
        """
        return {"kind": self.kind, "dim": self.dim, "ntotal": self.ntotal, "nlist": self.nlist,
                "nprobe": self.nprobe, "trained_size": self.trained_size,
                "tuned_recall": self.tuned_recall, "gpu": self.use_gpu}

    # -- search ------------------------------------------------------------------------------
    def search(self, queries: np.ndarray, k: int,
               exclude_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` ``(scores, ids)`` per query; missing results have id -1.

        ``exclude_ids`` are filtered inside FAISS (an ``IDSelector``), so ``k`` results still come
        back when many stored vectors are excluded. Exclusion searches run on the CPU index.
        """
        queries = _as_vecs(queries, self.dim)
        k = max(1, int(k))
        if exclude_ids is None or not len(exclude_ids):
            return self._refined(self._search_index(), queries, k)
        sel = faiss.IDSelectorNot(faiss.IDSelectorBatch(_as_ids(exclude_ids)))
        if KINDS[self.kind].needs_training:
            params: faiss.SearchParameters = faiss.SearchParametersIVF(sel=sel, nprobe=self.nprobe)
        else:
            params = faiss.SearchParameters(sel=sel)
        return self._refined(self.index, queries, k, params)

    def _refined(self, index: faiss.Index, queries: np.ndarray, k: int,
                 params: faiss.SearchParameters | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Search; for a kind with a refine step, re-rank ``k * k_factor`` candidates exactly.

        The candidates' exact vectors come from :attr:`exact_vectors` (the gallery's SQLite
        store); without it the codes' own ranking is returned.
        """
        if self.k_factor <= 1 or self.exact_vectors is None:
            return index.search(queries, k, params=params)
        _, cand = index.search(queries, k * self.k_factor, params=params)
        found = np.unique(cand[cand >= 0])
        if not len(found):
            return np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64)
        exact = _as_vecs(self.exact_vectors(found), self.dim)
        rows = np.searchsorted(found, np.maximum(cand, 0))
        scores = np.einsum("qcd,qd->qc", exact[rows], queries)
        scores[cand < 0] = -np.inf
        best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        scores, ids = np.take_along_axis(scores, best, 1), np.take_along_axis(cand, best, 1)
        ids[~np.isfinite(scores)] = -1
        return scores.astype(np.float32), ids

    def _search_index(self) -> faiss.Index:
        if not self.use_gpu:
            return self.index
        if self._gpu_index is None:
            self._gpu_index = faiss.index_cpu_to_all_gpus(self.index)
        return self._gpu_index

    # -- persistence -------------------------------------------------------------------------
    def save(self, directory: Path, state: dict[str, Any]) -> dict[str, Any]:
        """Write the index under a fresh name, then commit it by replacing the sidecar.

        Args:
            directory: Gallery root.
            state: What the index holds: ``count``, ``max_id``, ``id_sum``, ``generation``.

        Returns:
            The sidecar written.
        """
        name = f"index-{int(state.get('generation', 0)):08d}-{secrets.token_hex(4)}.faiss"
        tmp = directory / f"{name}.tmp"
        faiss.write_index(self.index, str(tmp))
        fsync_file(tmp)
        os.replace(tmp, directory / name)
        lists = cz.lists_file(self.index)
        sidecar = {**self.describe(), **state, "file": name,
                   "saved_at": now_iso()}
        if lists:  # only on-disk lists add keys: the sidecar of other indexes keeps its 0.1 format
            sidecar.update(lists_file=lists, lists_dirty=False)
        write_json_atomic(directory / SIDECAR, sidecar)
        self._dirty = False
        for old in [*directory.glob("index-*.faiss*"), *directory.glob(cz.LISTS_GLOB)]:
            if old.name not in (name, lists):
                old.unlink(missing_ok=True)
        return sidecar

    @classmethod
    def load(cls, directory: Path, dim: int, policy: IndexPolicy) -> tuple[VectorIndex, dict[str, Any]] | None:
        """Load the committed index, or None if it is missing, unreadable or inconsistent."""
        for _ in range(2):  # a writer may replace the sidecar between our two reads: retry once
            sidecar = read_json(directory / SIDECAR)
            if not sidecar or not isinstance(sidecar.get("file"), str):
                return None
            path = directory / Path(sidecar["file"]).name
            if not path.is_file():
                continue
            if sidecar.get("lists_dirty"):
                return None  # a writer changed the on-disk lists and did not save: rebuild
            try:
                index = cz.read_index(path)
            except RuntimeError:
                return None
            name = sidecar.get("kind")
            is_ivf = isinstance(index, faiss.IndexIVF)
            if (index.d != dim or index.ntotal != sidecar.get("count") or name not in KINDS
                    or is_ivf != kind(name).needs_training):
                return None
            out = cls(index, name, dim, nlist=int(sidecar.get("nlist") or 0),
                      nprobe=int(sidecar.get("nprobe") or 0),
                      trained_size=int(sidecar.get("trained_size") or 0),
                      tuned_recall=sidecar.get("tuned_recall"), use_gpu=policy.use_gpu)
            out.directory = directory if cz.lists_file(index) else None
            return out, sidecar
        return None
