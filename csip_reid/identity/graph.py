"""The sparse similarity graph, the known-different pairs, and the label-free merge threshold.

The graph holds, for every tracklet, its ``k`` nearest neighbours from the gallery's own FAISS
index (exact up to the gallery's exact limit, IVF above it): ``N * k`` edges at most, never an
``N x N`` matrix. Edge weights are cosine similarities of the appearance vectors, fused with the
skeleton vectors' cosine when both tracklets have one: ``(1 - w) s_app + w s_skel``.

The threshold needs no labels. Two tracklets that overlap in time in the same video are two
people, and so are two tracklets in different, non-overlapping cameras at the same wall-clock
moment. Their similarities are a sample of the *different people* distribution, so the similarity
that only a fraction ``r`` of them exceed is a threshold with a false-merge rate of about ``r`` per
pair. When a gallery has too few such pairs (every video holds one person at a time), random pairs
stand in: in a gallery of many people almost all of them are different people, so their upper tail
gives a conservative threshold (it is pushed up by the few same-person pairs among them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from csip_reid.identity.data import TrackletTable

#: ``(queries (Q, D), k) -> (scores (Q, k), tracklet ids (Q, k))``, ids -1 where missing
Searcher = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
MIN_NEGATIVES = 10
MAX_NEGATIVES = 200_000


@dataclass
class Edges:
    """Undirected edges ``a < b`` (row indices of the :class:`TrackletTable`) with similarities."""

    a: np.ndarray
    b: np.ndarray
    sim: np.ndarray

    def __len__(self) -> int:
        return len(self.a)


def pair_similarity(app: np.ndarray, skel: np.ndarray | None, a: np.ndarray, b: np.ndarray,
                    weight: float, chunk: int = 65536, app_sim: np.ndarray | None = None) -> np.ndarray:
    """Fused similarity of row pairs ``(a[i], b[i])`` (appearance alone where a skeleton is missing).

    ``app_sim``: the pairs' appearance similarities when already known (the index's scores).
    """
    out = np.empty(len(a), np.float32)
    for s in range(0, len(a), chunk):
        ia, ib = a[s : s + chunk], b[s : s + chunk]
        sim = np.einsum("ij,ij->i", app[ia], app[ib]) if app_sim is None else app_sim[s : s + chunk]
        if skel is not None and weight > 0:
            sk = np.einsum("ij,ij->i", skel[ia], skel[ib])
            both = (np.abs(skel[ia]).sum(1) > 0) & (np.abs(skel[ib]).sum(1) > 0)
            sim = np.where(both, (1 - weight) * sim + weight * sk, sim)
        out[s : s + chunk] = sim
    return out


def knn_edges(table: TrackletTable, app: np.ndarray, search: Searcher, k: int = 10,
              skel: np.ndarray | None = None, weight: float = 0.5, batch: int = 4096) -> Edges:
    """The symmetric k-nearest-neighbour graph of every tracklet (self loops dropped, pairs once).

    The appearance similarity of an edge is the index's own score (the inner product of the
    normalised vectors: exact for flat and IVF-flat indexes, as close as the codes allow for
    compressed ones), so the vectors are not read a second time.
    """
    n = len(table)
    k = max(1, min(int(k), n - 1))
    if n < 2:
        return Edges(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
    src, dst, val = [], [], []
    id_to_row = np.full(int(table.ids.max()) + 1, -1, np.int64)
    id_to_row[table.ids] = np.arange(n)
    for s in range(0, n, batch):
        scores, ids = search(app[s : s + batch], k + 1)
        rows = np.where(ids >= 0, id_to_row[np.clip(ids, 0, len(id_to_row) - 1)], -1)
        me = np.arange(s, s + len(rows))[:, None]
        ok = (rows >= 0) & (rows != me)
        src.append(np.broadcast_to(me, rows.shape)[ok])
        dst.append(rows[ok])
        val.append(np.asarray(scores, np.float32)[ok])
    a, b, sim = np.concatenate(src), np.concatenate(dst), np.concatenate(val)
    key, first = np.unique(np.minimum(a, b) * n + np.maximum(a, b), return_index=True)
    lo, hi = key // n, key % n
    return Edges(lo, hi, pair_similarity(app, skel, lo, hi, weight, app_sim=sim[first]))


def known_different(table: TrackletTable, gap: np.ndarray, limit: int = MAX_NEGATIVES,
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Row pairs that cannot be one person: same video and overlapping in time, or (wall-clock
    known) closer in time than the cameras allow. At most ``limit`` pairs (a random subset)."""
    a_out, b_out = [], []
    # same video, overlapping in-file times: sweep each video's tracklets by start time
    order = np.lexsort((table.start_s, table.video))
    a_out.append([]), b_out.append([])
    _sweep(order, table.video, table.start_s, table.end_s, a_out[-1], b_out[-1], limit)
    # wall-clock: sweep everything with a known time, keep the pairs the gap matrix forbids
    known = np.flatnonzero(np.isfinite(table.wall_start))
    if len(known):
        slack = float(np.max(np.where(np.isfinite(gap), gap, 0.0), initial=0.0))
        o = known[np.argsort(table.wall_start[known], kind="stable")]
        pa: list[int] = []
        pb: list[int] = []
        _sweep(o, np.zeros(len(table), np.int64), table.wall_start, table.wall_end + slack, pa, pb, limit)
        if pa:
            pa_, pb_ = np.array(pa), np.array(pb)
            g = gap[table.camera[pa_], table.camera[pb_]]
            sep = np.maximum(table.wall_start[pb_] - table.wall_end[pa_], table.wall_start[pa_] - table.wall_end[pb_])
            bad = (sep < g) & (table.video[pa_] != table.video[pb_])
            a_out.append(list(pa_[bad])), b_out.append(list(pb_[bad]))
    a = np.array([x for part in a_out for x in part], np.int64)
    b = np.array([x for part in b_out for x in part], np.int64)
    if len(a) > limit:
        pick = np.random.default_rng(seed).choice(len(a), limit, replace=False)
        a, b = a[pick], b[pick]
    return a, b


def _sweep(order: np.ndarray, group: np.ndarray, start: np.ndarray, end: np.ndarray,
           out_a: list, out_b: list, limit: int) -> None:
    """Append the pairs of ``order`` (sorted by group, then start) in one group whose intervals overlap."""
    active: list[int] = []
    current = None
    for i in order:
        if group[i] != current:
            active, current = [], group[i]
        active = [j for j in active if end[j] >= start[i]]
        for j in active:
            out_a.append(j)
            out_b.append(i)
        if len(out_a) > 4 * limit:
            return
        active.append(int(i))


@dataclass
class Threshold:
    """The chosen merge threshold and why."""

    value: float
    source: str  # "given", "known-different pairs", "random pairs", "default"
    pairs: int
    rate: float
    reason: str


def _tail(sims: np.ndarray, p: float, robust: bool) -> tuple[float, str]:
    """The similarity that a share ``p`` of the different-people distribution exceeds, and how.

    With at least ``10 / p`` samples the empirical quantile; with fewer, a normal fit (mean and
    standard deviation; median and MAD when ``robust``, for samples that hold some same-person
    pairs), never below the samples' own ``1 - p`` quantile (heavy tails).
    """
    z = NormalDist().inv_cdf(1.0 - p)
    if not robust and len(sims) >= 10 / p:
        q = float(np.quantile(sims, 1.0 - p))
        return q, f"a share {p:.2g} of them exceed {q:.3f}"
    if robust:
        centre = float(np.median(sims))
        spread = 1.4826 * float(np.median(np.abs(sims - centre)))
        return centre + z * spread, f"median {centre:.3f} + {z:.2f} x robust spread (MAD) {spread:.3f}"
    centre, spread = float(np.mean(sims)), float(np.std(sims))
    floor = float(np.quantile(sims, 1.0 - max(p, 1.0 / len(sims))))
    value = max(centre + z * spread, floor)
    return value, (f"too few for a {p:.2g} quantile, so a normal fit: mean {centre:.3f} + {z:.2f} x sd "
                   f"{spread:.3f} (at least their {1 - max(p, 1.0 / len(sims)):.3g} quantile {floor:.3f})")


def choose_threshold(table: TrackletTable, app: np.ndarray, skel: np.ndarray | None, weight: float,
                     gap: np.ndarray, rate: float = 0.01, given: float | None = None,
                     seed: int = 0) -> Threshold:
    """The merge threshold for a target false-merge rate ``rate`` (see the module docstring)."""
    if given is not None:
        return Threshold(float(given), "given", 0, rate, f"threshold {given:.3f} given with --threshold")
    a, b = known_different(table, gap, seed=seed)
    n = len(table)
    p = rate / max(n - 1, 1)  # per pair, so that a tracklet meets a look-alike above it with chance ~rate
    per = (f"for a false-merge rate of {rate:.1%} per tracklet (each tracklet is compared with up to {n - 1} "
           f"others, so {p:.2g} per pair)")
    if len(a) >= MIN_NEGATIVES:
        sims = pair_similarity(app, skel, a, b, weight)
        value, how = _tail(sims, p, robust=False)
        return Threshold(value, "known-different pairs", len(a), rate,
                         f"{len(a)} pairs of tracklets that cannot be one person (same video at the same time, "
                         f"or cameras too far apart in time) have similarity median {np.median(sims):.3f}; "
                         f"{per}: {how}, so merging starts above {value:.3f}")
    if n < 3:
        return Threshold(1.0, "default", len(a), rate,
                         f"only {n} tracklets: too few to learn what different people look like to this model, so "
                         "only identical vectors merge (1.000); give --threshold to merge them")
    rng = np.random.default_rng(seed)
    m = MAX_NEGATIVES // 4
    if n * (n - 1) // 2 <= m:  # every pair
        ra, rb = np.triu_indices(n, 1)
    else:
        ra, rb = rng.integers(0, n, m), rng.integers(0, n, m)
        keep = ra != rb
        ra, rb = ra[keep], rb[keep]
    sims = pair_similarity(app, skel, ra, rb, weight)
    value, how = _tail(sims, p, robust=True)
    return Threshold(value, "random pairs", len(ra), rate,
                     f"only {len(a)} pairs are known to be different people (fewer than {MIN_NEGATIVES}: videos "
                     f"rarely show two people at once, or their start times are unknown), so {len(ra)} random "
                     f"pairs stand in for them; most are different people, and a robust fit ignores the "
                     f"same-person ones; {per}: {how} = {value:.3f}. Give wall-clock times (more "
                     "known-different pairs) or --threshold to do better")
