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

With ``IndexPolicy.on_disk`` the inverted lists live in a ``lists-*.ivfdata`` file beside the index
(FAISS ``OnDiskInvertedLists``, memory-mapped): resident memory is the coarse centroids plus the
pages the OS caches, and vectors are still added incrementally. That file is changed in place by
additions, so the sidecar is marked ``lists_dirty`` before the first change after a save; a reader
that finds a dirty sidecar (a writer crashed before saving) rebuilds the index from SQLite.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import faiss
import numpy as np

from csip_reid.gallery.kinds import COMPRESSED_KINDS, IVF_KINDS, kind, pq_subquantizers

LISTS_GLOB = "lists-*.ivfdata"
__all__ = ["COMPRESSED_KINDS", "IVF_KINDS", "LISTS_GLOB", "add_in_chunks", "lists_file", "memory_bytes_per_vector",
           "move_lists_to_disk", "new_ivf", "pq_subquantizers", "read_index"]


def new_ivf(kind_name: str, dim: int, nlist: int) -> faiss.IndexIVF:
    """An untrained inner-product IVF index of the given kind (a row of :data:`~csip_reid.gallery.kinds.KINDS`).

    Raises:
        ValueError: Not an IVF kind.
    """
    if kind_name not in IVF_KINDS:
        raise ValueError(f"unknown IVF kind {kind_name!r}; known: {', '.join(IVF_KINDS)}")
    return kind(kind_name).factory(dim, nlist)


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


def add_in_chunks(index: faiss.Index, ids: np.ndarray, vecs: np.ndarray, chunk: int = 100_000) -> None:
    """``add_with_ids`` in chunks (bounded temporary memory for the codes)."""
    for s in range(0, len(ids), chunk):
        index.add_with_ids(np.ascontiguousarray(vecs[s:s + chunk], dtype=np.float32),
                           np.ascontiguousarray(ids[s:s + chunk], dtype=np.int64))
