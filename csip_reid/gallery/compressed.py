"""Compressed IVF indexes for galleries beyond what fits in RAM as float32 (tens of millions of vectors).

Above :meth:`IndexPolicy.compressed_limit <csip_reid.gallery.kinds.IndexPolicy.compressed_limit>`
vectors the gallery stores codes instead of vectors in its inverted lists:

* ``ivfsq8`` (default): ``IndexIVFScalarQuantizer`` with 8-bit scalar quantisation, ``dim`` bytes
  per vector plus an 8-byte id (520 B at 512-d, 4x smaller than IVF-Flat). Its recall@10 against
  exact search stays within a point of IVF-Flat at the same ``nprobe`` (``bench/README.md``), so
  the same ``nprobe`` tuning reaches the same recall target.
* ``ivfpq``: ``IndexIVFPQ`` with ``dim / 8`` sub-quantisers of 8 bits (72 B per vector at 512-d),
  for when even SQ8 codes do not fit; its recall@10 is much lower (measured in ``bench/``), so the
  gallery keeps it with the best ``nprobe`` found rather than falling back to exact search.

* ``ivfhnsw-sq8``: the standard FAISS recipe for large galleries (``IVF..._HNSW32,SQ8`` with a
  refine step): ``8 x`` more lists than the other kinds (``16 sqrt(N)`` by default) so that data
  whose look-alike groups outnumber ``2 sqrt(N)`` lists is still partitioned finely, an HNSW
  graph over the centroids to find a query's ``nprobe`` nearest lists without scanning them all
  (its ``efSearch`` follows ``nprobe``: :func:`set_nprobe`), centroids trained by two-level
  k-means on a sample (:func:`train_ivf`: ``sqrt(nlist)`` coarse clusters, each split in
  proportion to its size), and the top ``k * k_factor`` candidates of the 8-bit codes re-ranked
  by their exact vectors, read from the gallery's SQLite store (``VectorIndex.exact_vectors``).
  Vectors added in bulk (a rebuild, a catch-up) find their list by :class:`ListAssigner` (a
  blocked matrix product against all centroids, exact) and go in through ``IndexIVF.add_core``,
  not through the graph, which is slower per vector and misses the nearest list of some.

With ``IndexPolicy.on_disk`` the inverted lists live in a ``lists-*.ivfdata`` file beside the index
(FAISS ``OnDiskInvertedLists``, memory-mapped): resident memory is the coarse centroids plus the
pages the OS caches, and vectors are still added incrementally. That file is changed in place by
additions, so the sidecar is marked ``lists_dirty`` before the first change after a save; a reader
that finds a dirty sidecar (a writer crashed before saving) rebuilds the index from SQLite.
"""

from __future__ import annotations

import secrets
import sys
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from csip_reid.gallery.kinds import COMPRESSED_KINDS, IVF_KINDS, kind, pq_subquantizers

LISTS_GLOB = "lists-*.ivfdata"
#: HNSW coarse quantizer: ``efSearch = max(EF_MIN, EF_PER_PROBE * nprobe)`` (``bench/README.md``).
EF_PER_PROBE, EF_MIN = 1, 128
#: Below this many lists plain k-means is cheap enough; above it centroids come from two-level k-means.
TWO_LEVEL_FROM = 1024
#: :class:`ListAssigner`: vectors per matrix product (a block's similarities: ``nlist`` values per row),
#: and centroids per vector shortlisted in bfloat16, then compared in float32.
ASSIGN_BLOCK, RESCORED = 2048, 8
__all__ = ["COMPRESSED_KINDS", "IVF_KINDS", "LISTS_GLOB", "ListAssigner", "add_assigned", "add_in_chunks",
           "hnsw_quantizer", "lists_file", "memory_bytes_per_vector", "move_lists_to_disk", "new_ivf", "pq_subquantizers", "read_index",
           "set_nprobe", "train_ivf", "two_level_centroids"]


def new_ivf(kind_name: str, dim: int, nlist: int) -> faiss.IndexIVF:
    """An untrained inner-product IVF index of the given kind (a row of :data:`~csip_reid.gallery.kinds.KINDS`).

    Raises:
        ValueError: Not an IVF kind.
    """
    if kind_name not in IVF_KINDS:
        raise ValueError(f"unknown IVF kind {kind_name!r}; known: {', '.join(IVF_KINDS)}")
    return kind(kind_name).factory(dim, nlist)


def hnsw_quantizer(index: faiss.Index) -> faiss.IndexHNSW | None:
    """The HNSW coarse quantizer of an IVF index, or None (flat quantizer, or not IVF)."""
    if not isinstance(index, faiss.IndexIVF):
        return None
    quantizer = faiss.downcast_index(index.quantizer)
    return quantizer if isinstance(quantizer, faiss.IndexHNSW) else None


def set_nprobe(index: faiss.IndexIVF, nprobe: int, ef_search: int | None = None) -> None:
    """Probe ``nprobe`` lists; an HNSW quantizer explores ``ef_search`` (default: follows nprobe) nodes."""
    index.nprobe = nprobe
    quantizer = hnsw_quantizer(index)
    if quantizer is not None:
        quantizer.hnsw.efSearch = ef_search or max(EF_MIN, EF_PER_PROBE * nprobe)


def two_level_centroids(sample: np.ndarray, nlist: int, seed: int = 0, niter: int = 10) -> np.ndarray:
    """``nlist`` unit centroids by two-level spherical k-means (as ``faiss.contrib.clustering``).

    ``sqrt(nlist)`` coarse clusters first, then each is split into a number of centroids
    proportional to its share of the sample: ``2 sqrt(nlist)`` distances per vector and iteration
    instead of ``nlist``.
    """
    n, dim = sample.shape
    coarse = max(1, int(round(nlist**0.5)))
    km = faiss.Kmeans(dim, coarse, niter=niter, spherical=True, seed=seed, max_points_per_centroid=2000)
    km.train(sample)
    assign = km.index.search(sample, 1)[1].ravel()
    order = np.argsort(assign, kind="stable")
    ends = np.cumsum(np.bincount(assign, minlength=coarse))
    shares = np.diff(ends * nlist // n, prepend=0)  # sums to nlist; never more than a cluster's size
    parts, start = [], 0
    for c in range(coarse):
        members, start = order[start:ends[c]], int(ends[c])
        if shares[c] == 0:
            continue
        sub = faiss.Kmeans(dim, int(shares[c]), niter=niter, spherical=True, seed=seed + c,
                           min_points_per_centroid=1, max_points_per_centroid=256)
        sub.train(np.ascontiguousarray(sample[members]))
        parts.append(sub.centroids)
    centroids = np.concatenate(parts)
    return centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)


def train_ivf(index: faiss.IndexIVF, sample: np.ndarray, seed: int = 0) -> None:
    """Train an IVF index on a sample (L2-normalised float32 rows).

    A flat quantizer trains as FAISS does (spherical k-means over all lists). An HNSW quantizer
    gets centroids from spherical k-means on a flat index, two-level (:func:`two_level_centroids`,
    what makes 16k-50k lists trainable on a CPU) from :data:`TWO_LEVEL_FROM` lists on; they are
    added to the graph, then the codes are trained on the sample.
    """
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    quantizer = hnsw_quantizer(index)
    if quantizer is not None:  # k-means on a flat index (FAISS would search a rebuilt graph each iteration)
        if index.nlist >= TWO_LEVEL_FROM:
            centroids = two_level_centroids(sample, index.nlist, seed)
        else:
            km = faiss.Kmeans(index.d, index.nlist, niter=10, spherical=True, seed=seed, min_points_per_centroid=1)
            km.train(sample)
            centroids = km.centroids / np.maximum(np.linalg.norm(km.centroids, axis=1, keepdims=True), 1e-12)
        quantizer.add(np.ascontiguousarray(centroids, dtype=np.float32))
    index.train(sample)
    if quantizer is not None:
        quantizer.hnsw.efSearch = EF_MIN  # assigning added vectors to lists


def move_lists_to_disk(index: faiss.IndexIVF, directory: Path) -> str:
    """Give a (trained) IVF index empty on-disk inverted lists in ``directory``; returns the file name.

    Vectors already in the index are kept (copied to the new lists).
    """
    name = f"lists-{secrets.token_hex(6)}.ivfdata"
    lists = faiss.OnDiskInvertedLists(index.nlist, index.code_size, str(directory / name))
    old = index.invlists
    if index.ntotal:
        for i in range(index.nlist):
            n = old.list_size(i)
            if n:
                lists.add_entries(i, n, old.get_ids(i), old.get_codes(i))
    index.replace_invlists(lists, True)
    lists.this.disown()
    return name


def lists_file(index: faiss.Index) -> str | None:
    """File name of an index's on-disk inverted lists, or None if they are in memory."""
    if not isinstance(index, faiss.IndexIVF):
        return None
    lists = faiss.downcast_InvertedLists(index.invlists)
    if isinstance(lists, faiss.OnDiskInvertedLists):
        return Path(lists.filename).name
    return None


def read_index(path: Path) -> faiss.Index:
    """Read an index file; on-disk lists are looked up beside it (the gallery may have moved)."""
    return faiss.read_index(str(path), faiss.IO_FLAG_ONDISK_SAME_DIR)


def memory_bytes_per_vector(kind_name: str, dim: int) -> int:
    """Bytes per stored vector in the inverted lists (codes + 8-byte id), excluding centroids."""
    return kind(kind_name).bytes_per_vector(dim)


class ListAssigner:
    """The nearest list of many vectors at once, by matrix products against every centroid.

    An HNSW quantizer walks its graph one vector at a time (~1 ms per 512-d vector at
    ``efSearch`` 128 and 16,000 lists on 2 cores) and finds the nearest centroid for ~95 % of
    them; this compares every vector with all centroids by matrix products (FAISS's blocked
    float32 search), which is exact and several times faster (``bench/README.md``,
    ``bench/list_assign.py``). Where torch's bfloat16 product is faster than that on this CPU
    (measured on the first block: CPUs with AVX512-BF16 or AMX), it shortlists :data:`RESCORED`
    centroids per vector in bfloat16, :data:`ASSIGN_BLOCK` vectors at a time, and picks among them
    in float32, so the answer is still the float32 nearest centroid unless more than that many
    centroids tie within bfloat16's rounding.

    Args:
        centroids: ``(nlist, dim)`` centroids of the index (its quantizer's vectors).
        bf16: Use the bfloat16 shortlist: None = when measured faster (and torch is loaded already).
    """

    def __init__(self, centroids: np.ndarray, bf16: bool | None = None) -> None:
        self.centroids = np.ascontiguousarray(centroids, dtype=np.float32)
        self.bf16 = bf16
        self._bf16_centroids: Any = None

    @classmethod
    def for_index(cls, index: faiss.Index) -> ListAssigner | None:
        """An assigner for an IVF index with an HNSW quantizer (None for others: their search is flat)."""
        quantizer = hnsw_quantizer(index)
        if quantizer is None or quantizer.ntotal == 0:
            return None
        return cls(quantizer.reconstruct_n(0, quantizer.ntotal))

    def assign(self, vecs: np.ndarray) -> np.ndarray:
        """The list number of each row of ``vecs`` (``(n,)`` int64)."""
        vecs = np.ascontiguousarray(vecs, dtype=np.float32)
        if self.bf16 is None and len(vecs):
            self.bf16 = self._bf16_is_faster(vecs[:ASSIGN_BLOCK])
        if not self.bf16:
            return self._flat(vecs)  # FAISS blocks the product itself
        out = np.empty(len(vecs), np.int64)
        for s in range(0, len(vecs), ASSIGN_BLOCK):
            out[s:s + ASSIGN_BLOCK] = self._shortlisted(vecs[s:s + ASSIGN_BLOCK])
        return out

    def _flat(self, vecs: np.ndarray) -> np.ndarray:
        return faiss.knn(vecs, self.centroids, 1, metric=faiss.METRIC_INNER_PRODUCT)[1].ravel().astype(np.int64)

    def _shortlisted(self, block: np.ndarray) -> np.ndarray:
        import torch

        if self._bf16_centroids is None:
            self._bf16_centroids = torch.from_numpy(self.centroids).to(torch.bfloat16).T.contiguous()
        with torch.no_grad():
            sims = torch.from_numpy(block).to(torch.bfloat16) @ self._bf16_centroids
            short = torch.topk(sims, min(RESCORED, sims.shape[1]), dim=1).indices.numpy()
        exact = np.einsum("nd,nkd->nk", block, self.centroids[short])
        return short[np.arange(len(block)), exact.argmax(axis=1)].astype(np.int64)

    def _bf16_is_faster(self, block: np.ndarray) -> bool:
        """Time both ways on (part of) the first block; False when torch is missing, not loaded yet, or slower.

        A process that has not loaded torch (``reid gallery reindex``) is not made to: the import
        costs seconds and ~0.5 GB of resident memory, and the float32 path is already exact and
        several times faster than the graph. ``reid index`` has torch loaded (the trackers).
        """
        if "torch" not in sys.modules:
            return False
        try:
            import torch  # noqa: F401
        except ImportError:
            return False
        probe = block[:1024]
        self._shortlisted(probe)  # warm-up (conversion of the centroids, oneDNN kernels)
        took = []
        for way in (self._flat, self._shortlisted):
            t = time.perf_counter()
            way(probe)
            took.append(time.perf_counter() - t)
        return took[1] < took[0]


def add_assigned(index: faiss.IndexIVF, ids: np.ndarray, vecs: np.ndarray, lists: np.ndarray) -> None:
    """Add vectors to the given lists of an IVF index (``IndexIVF.add_core``: no quantizer search)."""
    vecs = np.ascontiguousarray(vecs, dtype=np.float32)
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    lists = np.ascontiguousarray(lists, dtype=np.int64)
    if not len(ids):
        return
    if len(vecs) != len(ids) or len(lists) != len(ids) or vecs.shape[1] != index.d:
        raise ValueError(f"{len(ids)} ids, {vecs.shape} vectors and {lists.shape} lists do not match")
    index.add_core(len(ids), faiss.swig_ptr(vecs), faiss.swig_ptr(ids), faiss.swig_ptr(lists))


def add_in_chunks(index: faiss.Index, ids: np.ndarray, vecs: np.ndarray, chunk: int = 100_000,
                  assigner: ListAssigner | None = None) -> None:
    """``add_with_ids`` in chunks (bounded temporary memory for the codes).

    With an ``assigner`` (:class:`ListAssigner`) each chunk's lists are found by it, not by the
    index's quantizer.
    """
    for s in range(0, len(ids), chunk):
        x = np.ascontiguousarray(vecs[s:s + chunk], dtype=np.float32)
        xids = np.ascontiguousarray(ids[s:s + chunk], dtype=np.int64)
        if assigner is None:
            index.add_with_ids(x, xids)
        else:
            add_assigned(faiss.extract_index_ivf(index), xids, x, assigner.assign(x))
