"""Constraint-aware agglomerative clustering on a sparse similarity graph.

Average linkage over the graph's edges: the similarity of two clusters is the mean of the edge
similarities between their members (only edges of the k-NN graph count, so the cost follows the
edges, not ``N^2``). Clusters are merged best pair first while that mean is at least the threshold,
and a merge is refused when it would put together two tracklets that cannot be one person:

* same video, overlapping in time;
* wall-clock times known, closer in time than their cameras allow (``CameraRules``);
* a ``not`` label between them; two clusters that a person confirmed separately.

``same`` labels and confirmed identities are merged before anything else and are never split;
clusters kept from an earlier build are seeds that new tracklets attach to.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from csip_reid.identity.data import TrackletTable
from csip_reid.identity.graph import Edges


@dataclass
class _Cluster:
    members: list[int]
    video: np.ndarray
    s0: np.ndarray
    s1: np.ndarray
    cam: np.ndarray
    w0: np.ndarray
    w1: np.ndarray
    confirmed: bool = False
    forbidden: set[int] = field(default_factory=set)  # rows a `not` label keeps out


@dataclass
class ClusterStats:
    merges: int = 0
    refused: int = 0


class Clusterer:
    """Clusters the rows of a :class:`TrackletTable`.

    Args:
        table: The tracklets.
        gap: (C, C) least gap in seconds between cameras (``CameraRules.gap_matrix``).
        cannot: Row pairs with a ``not`` label.
    """

    def __init__(self, table: TrackletTable, gap: np.ndarray, cannot: list[tuple[int, int]] = ()) -> None:
        self.t = table
        self.gap = gap
        self.parent = np.arange(len(table))
        self.clusters: dict[int, _Cluster] = {}
        for i in range(len(table)):
            self.clusters[i] = self._single(i)
        for a, b in cannot:
            self.clusters[a].forbidden.add(b)
            self.clusters[b].forbidden.add(a)
        self.stats = ClusterStats()

    def _single(self, i: int) -> _Cluster:
        t = self.t
        sl = slice(i, i + 1)
        return _Cluster([i], t.video[sl], t.start_s[sl], t.end_s[sl], t.camera[sl], t.wall_start[sl],
                        t.wall_end[sl])

    def root(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return int(i)

    # -- constraints -------------------------------------------------------------------------
    def conflict(self, x: _Cluster, y: _Cluster) -> bool:
        """Whether the two clusters hold two tracklets that cannot be one person."""
        if x.confirmed and y.confirmed:
            return True
        if len(x.members) > len(y.members):
            x, y = y, x
        if x.forbidden and x.forbidden.intersection(y.members):
            return True
        if y.forbidden and y.forbidden.intersection(x.members):
            return True
        same = x.video[:, None] == y.video[None, :]
        if same.any():
            overlap = (x.s0[:, None] <= y.s1[None, :]) & (y.s0[None, :] <= x.s1[:, None])
            if (same & overlap).any():
                return True
        kx, ky = np.isfinite(x.w0), np.isfinite(y.w0)
        if kx.any() and ky.any():
            sep = np.maximum(y.w0[None, ky] - x.w1[kx, None], x.w0[kx, None] - y.w1[None, ky])
            need = self.gap[x.cam[kx][:, None], y.cam[ky][None, :]]
            if ((sep < need) & ~same[np.ix_(kx, ky)]).any():
                return True
        return False

    # -- merging -----------------------------------------------------------------------------
    def union(self, a: int, b: int, force: bool = False) -> int | None:
        """Merge the clusters of rows ``a`` and ``b``; returns the new root, or None if refused."""
        ra, rb = self.root(a), self.root(b)
        if ra == rb:
            return ra
        x, y = self.clusters[ra], self.clusters[rb]
        if not force and self.conflict(x, y):
            self.stats.refused += 1
            return None
        if len(x.members) < len(y.members):
            ra, rb, x, y = rb, ra, y, x
        x.members += y.members
        for name in ("video", "s0", "s1", "cam", "w0", "w1"):
            setattr(x, name, np.concatenate([getattr(x, name), getattr(y, name)]))
        x.confirmed = x.confirmed or y.confirmed
        x.forbidden |= y.forbidden
        self.parent[rb] = ra
        del self.clusters[rb]
        self.stats.merges += 1
        return ra

    def seed(self, groups: list[list[int]], confirmed: bool, force: bool = False) -> None:
        """Pre-merge groups of rows (labels, confirmed or earlier identities); a member that
        conflicts with its group stays out (unless ``force``)."""
        for g in groups:
            if not g:
                continue
            for r in g[1:]:
                self.union(g[0], r, force=force)
            if confirmed:
                self.clusters[self.root(g[0])].confirmed = True

    def agglomerate(self, edges: Edges, threshold: float) -> None:
        """Average-linkage merges over ``edges`` while the best linkage is ``>= threshold``."""
        nb: dict[int, dict[int, list[float]]] = {}
        for a, b, s in zip(edges.a.tolist(), edges.b.tolist(), edges.sim.tolist(), strict=True):
            ra, rb = self.root(a), self.root(b)
            if ra == rb:
                continue
            cell = nb.setdefault(ra, {}).setdefault(rb, [0.0, 0])
            cell[0] += s
            cell[1] += 1
            nb.setdefault(rb, {})[ra] = cell
        version = dict.fromkeys(self.clusters, 0)
        heap = [(-c[0] / c[1], a, b, 0, 0) for a, d in nb.items() for b, c in d.items()
                if a < b and c[0] / c[1] >= threshold]
        heapq.heapify(heap)
        blocked: set[tuple[int, int]] = set()
        while heap:
            neg, a, b, va, vb = heapq.heappop(heap)
            if a not in self.clusters or b not in self.clusters or version[a] != va or version[b] != vb:
                continue
            if (a, b) in blocked:
                continue
            r = self.union(a, b)
            if r is None:
                blocked.add((a, b))
                continue
            gone = b if r == a else a
            mine, theirs = nb.setdefault(r, {}), nb.pop(gone, {})
            mine.pop(gone, None)
            for x, cell in theirs.items():
                if x == r:
                    continue
                nbx = nb[x]
                nbx.pop(gone, None)
                if x in mine:
                    merged = [mine[x][0] + cell[0], mine[x][1] + cell[1]]
                else:
                    merged = list(cell)
                mine[x] = nbx[r] = merged
            version[r] += 1
            for x, cell in mine.items():
                lo, hi = (r, x) if r < x else (x, r)
                if (lo, hi) in blocked:  # clusters only grow, so a conflict stays a conflict
                    continue
                link = cell[0] / cell[1]
                if link >= threshold:
                    heapq.heappush(heap, (-link, lo, hi, version[lo], version[hi]))

    def groups(self) -> list[list[int]]:
        """The clusters as sorted row lists, biggest first."""
        out = [sorted(c.members) for c in self.clusters.values()]
        return sorted(out, key=lambda m: (-len(m), m[0]))

    def is_confirmed(self, rows: list[int]) -> bool:
        return self.clusters[self.root(rows[0])].confirmed
