"""CMC and mAP under the Market-1501 / MARS protocol, computed in query chunks.

For each query the gallery is sorted by increasing distance; then

* gallery items with the query's pid **and** camera are removed (same-camera matches are too easy),
* gallery items with pid ``-1`` (junk) are removed,
* a query left without any true match is skipped (and counted in ``num_skipped``),
* CMC@k = fraction of the remaining queries with a true match in the top k,
* AP = mean over the true matches of the precision at their rank; mAP = mean AP.

This is the logic of torchreid's ``eval_market1501`` and of CSIP-ReID/CLIP-ReID's ``eval_func``.
Ties in distance are broken by gallery order (stable sort), so results are deterministic.

Distances are computed for ``chunk`` queries at a time (capped so that one chunk holds at most
about 16 M distances), so a large gallery never needs the full query x gallery matrix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from csip_reid.core.errors import ConfigError

METRICS = ("cosine", "euclidean")
_MAX_CHUNK_ELEMENTS = 1 << 24


@dataclass
class RankResult:
    """Ranking quality over the valid queries.

    Attributes:
        cmc: ``(max_rank,)`` CMC curve; ``cmc[k-1]`` is rank-k accuracy.
        mAP: Mean average precision.
        num_valid: Queries with at least one true match left after the removals.
        num_skipped: Queries without one (not counted in ``cmc`` or ``mAP``).
    """

    cmc: np.ndarray
    mAP: float
    num_valid: int
    num_skipped: int

    def rank(self, k: int) -> float:
        """Rank-k accuracy (CMC at k; the last value when k exceeds ``max_rank``)."""
        return float(self.cmc[min(k, len(self.cmc)) - 1]) if len(self.cmc) else 0.0


def as_numpy(x: Any, dtype: Any = None) -> np.ndarray:
    """A numpy view of a numpy array, list, or (CPU or GPU) torch tensor."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def distances(qf: np.ndarray, gf: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """``(Q, G)`` float64 distances.

    Args:
        qf: ``(Q, D)`` query features.
        gf: ``(G, D)`` gallery features.
        metric: ``cosine`` (``1 - cos``; features are L2-normalised here) or ``euclidean``
            (squared Euclidean distance, same ranking as Euclidean).
    """
    q = np.asarray(qf, np.float64)
    g = np.asarray(gf, np.float64)
    if metric == "cosine":
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
        return 1.0 - q @ g.T
    if metric == "euclidean":
        d = (q * q).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2.0 * (q @ g.T)
        return np.maximum(d, 0.0)
    raise ConfigError(f"unknown metric {metric!r}; choose one of: {', '.join(METRICS)}")


class _Accumulator:
    """Sums CMC hits and APs over chunks of queries."""

    def __init__(self, g_pids: np.ndarray, g_cams: np.ndarray, max_rank: int) -> None:
        self.g_pids = g_pids
        self.g_cams = g_cams
        self.max_rank = max_rank
        self.cmc = np.zeros(max_rank, np.float64)
        self.ap_sum = 0.0
        self.valid = 0
        self.skipped = 0

    def add(self, dist: np.ndarray, q_pids: np.ndarray, q_cams: np.ndarray) -> None:
        order = np.argsort(dist, axis=1, kind="stable")
        gp = self.g_pids[order]
        gc = self.g_cams[order]
        qp, qc = q_pids[:, None], q_cams[:, None]
        keep = ~(((gp == qp) & (gc == qc)) | (gp == -1))
        hit = (gp == qp) & keep
        num_hits = hit.sum(1)
        valid = num_hits > 0
        self.skipped += int((~valid).sum())
        if not valid.any():
            return
        keep, hit, num_hits = keep[valid], hit[valid], num_hits[valid]
        rank = np.cumsum(keep, axis=1) - 1  # 0-based rank among the kept items
        first = np.where(hit, rank, np.iinfo(np.int64).max).min(1)
        self.cmc += (first[:, None] <= np.arange(self.max_rank)[None, :]).sum(0)
        precision = np.cumsum(hit, axis=1) / np.maximum(rank + 1.0, 1.0)  # read only where hit
        self.ap_sum += float((np.where(hit, precision, 0.0).sum(1) / num_hits).sum())
        self.valid += int(valid.sum())

    def result(self) -> RankResult:
        if self.valid == 0:
            return RankResult(np.zeros(self.max_rank), 0.0, 0, self.skipped)
        return RankResult(self.cmc / self.valid, self.ap_sum / self.valid, self.valid, self.skipped)


def _labels(q_pids: Any, g_pids: Any, q_cams: Any, g_cams: Any, nq: int, ng: int) -> tuple[np.ndarray, ...]:
    arrays = tuple(as_numpy(a, np.int64).reshape(-1) for a in (q_pids, g_pids, q_cams, g_cams))
    if len(arrays[0]) != nq or len(arrays[2]) != nq or len(arrays[1]) != ng or len(arrays[3]) != ng:
        raise ValueError(
            f"labels do not match the features: {nq} queries / {ng} gallery items, got "
            f"{len(arrays[0])} query pids, {len(arrays[2])} query cams, "
            f"{len(arrays[1])} gallery pids, {len(arrays[3])} gallery cams"
        )
    return arrays


def _chunks(nq: int, ng: int, chunk: int) -> Iterator[slice]:
    step = max(1, min(chunk, _MAX_CHUNK_ELEMENTS // max(ng, 1)))
    for s in range(0, nq, step):
        yield slice(s, min(s + step, nq))


def rank_features(
    qf: Any,
    gf: Any,
    q_pids: Any,
    g_pids: Any,
    q_cams: Any,
    g_cams: Any,
    metric: str = "cosine",
    max_rank: int = 50,
    chunk: int = 256,
) -> RankResult:
    """CMC/mAP of query features against gallery features, ``chunk`` queries at a time.

    Args:
        qf: ``(Q, D)`` query features (numpy or torch).
        gf: ``(G, D)`` gallery features.
        q_pids: ``(Q,)`` query person ids.
        g_pids: ``(G,)`` gallery person ids (``-1`` = junk).
        q_cams: ``(Q,)`` query cameras.
        g_cams: ``(G,)`` gallery cameras.
        metric: ``cosine`` or ``euclidean``.
        max_rank: Length of the CMC curve.
        chunk: Queries per distance block.
    """
    q = as_numpy(qf, np.float32)
    g = as_numpy(gf, np.float32)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise ValueError(f"features must be (Q, D) and (G, D) with the same D, got {q.shape} and {g.shape}")
    qp, gp, qc, gc = _labels(q_pids, g_pids, q_cams, g_cams, len(q), len(g))
    acc = _Accumulator(gp, gc, max_rank)
    for sl in _chunks(len(q), len(g), chunk):
        acc.add(distances(q[sl], g, metric), qp[sl], qc[sl])
    return acc.result()


def rank_distances(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_cams: Any,
    g_cams: Any,
    max_rank: int = 50,
    chunk: int = 256,
) -> RankResult:
    """CMC/mAP from a precomputed ``(Q, G)`` distance matrix (smaller = more similar)."""
    d = as_numpy(distmat, np.float64)
    if d.ndim != 2:
        raise ValueError(f"distmat must be (Q, G), got shape {d.shape}")
    qp, gp, qc, gc = _labels(q_pids, g_pids, q_cams, g_cams, d.shape[0], d.shape[1])
    acc = _Accumulator(gp, gc, max_rank)
    for sl in _chunks(d.shape[0], d.shape[1], chunk):
        acc.add(d[sl], qp[sl], qc[sl])
    return acc.result()
