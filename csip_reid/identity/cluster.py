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


def _neighbour_sets(lo: np.ndarray, hi: np.ndarray) -> dict[int, set[int]]:
    """Each node's neighbours, from undirected pairs."""
    if not len(lo):
        return {}
    src, dst = np.concatenate([lo, hi]), np.concatenate([hi, lo])
    order = np.argsort(src, kind="stable")
    src, dst = src[order], dst[order]
    cuts = np.flatnonzero(np.diff(src)) + 1
    starts = np.concatenate([[0], cuts])
    return {int(src[a]): set(part.tolist()) for a, part in zip(starts.tolist(), np.split(dst, cuts), strict=True)
            if len(part)}


@dataclass
class _Cluster:
    members: list[int]
    videos: set[int]  # the members' videos
    timed: bool  # some member has a known wall-clock time
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
        return _Cluster([i], {int(self.t.video[i])}, bool(np.isfinite(self.t.wall_start[i])))

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
        shared = not x.videos.isdisjoint(y.videos)
        if not shared and not (x.timed and y.timed):
            return False  # the common case, decided without arrays
        t = self.t
        ix, iy = np.array(x.members), np.array(y.members)
        same = t.video[ix][:, None] == t.video[iy][None, :]
        if shared:
            s0x, s1x, s0y, s1y = t.start_s[ix], t.end_s[ix], t.start_s[iy], t.end_s[iy]
            overlap = (s0x[:, None] <= s1y[None, :]) & (s0y[None, :] <= s1x[:, None])
            if (same & overlap).any():
                return True
        if x.timed and y.timed:
            w0x, w1x, w0y, w1y = t.wall_start[ix], t.wall_end[ix], t.wall_start[iy], t.wall_end[iy]
            kx, ky = np.isfinite(w0x), np.isfinite(w0y)
            sep = np.maximum(w0y[None, ky] - w1x[kx, None], w0x[kx, None] - w1y[None, ky])
            need = self.gap[t.camera[ix][kx][:, None], t.camera[iy][ky][None, :]]
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
        x.videos |= y.videos
        x.timed = x.timed or y.timed
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

    def agglomerate(self, edges: Edges, threshold: float, app: np.ndarray, skel: np.ndarray | None = None,
                    weight: float = 0.5) -> None:
        """Average-linkage merges between graph neighbours while the best linkage is ``>= threshold``.

        The linkage of two clusters is the mean similarity over *all* their member pairs, exact:
        for unit vectors it is ``sum_A . sum_B / (|A| |B|)``, so only one sum vector per cluster is
        kept; the graph only says which clusters are candidates (those joined by an edge).
        """
        n = len(self.t)
        sums, count, ksum, kcount = self._cluster_sums(app, skel if weight > 0 else None)

        def links(r: int, others: np.ndarray) -> np.ndarray:
            out = (sums[others] @ sums[r]) / (count[others] * count[r])
            if ksum is not None and kcount[r] > 0:
                both = kcount[others] > 0
                ks = (ksum[others] @ ksum[r]) / np.maximum(kcount[others] * kcount[r], 1.0)
                out = np.where(both, (1 - weight) * out + weight * ks, out)
            return out

        roots = np.array([self.root(i) for i in range(n)], np.int64)
        pa, pb, first = self._initial_links(edges, roots, sums, count, ksum, kcount, weight)
        nb = _neighbour_sets(pa, pb)
        version = dict.fromkeys(self.clusters, 0)
        # the first linkages never change, so they are read in sorted order from arrays; only the
        # linkages of merged clusters go through a heap (the order is that of one heap holding all)
        good = np.flatnonzero(first >= threshold)
        good = good[np.lexsort((pb[good], pa[good], -first[good]))]
        stream = list(zip((-first[good]).tolist(), pa[good].tolist(), pb[good].tolist(), strict=True))
        stream.reverse()  # popped from the end
        heap: list[tuple[float, int, int, int, int]] = []
        blocked: set[tuple[int, int]] = set()
        while heap or stream:
            if stream and (not heap or (*stream[-1], 0, 0) < heap[0]):
                _, a, b = stream.pop()
                va = vb = 0
            else:
                _, a, b, va, vb = heapq.heappop(heap)
            if a not in self.clusters or b not in self.clusters or version[a] != va or version[b] != vb:
                continue
            if (a, b) in blocked:
                continue
            r = self.union(a, b)
            if r is None:
                blocked.add((a, b))  # clusters only grow, so a conflict stays a conflict
                continue
            gone = b if r == a else a
            sums[r] += sums[gone]
            count[r] += count[gone]
            if ksum is not None:
                ksum[r] += ksum[gone]
                kcount[r] += kcount[gone]
            theirs = nb.pop(gone, set())
            for x in theirs:  # r's own neighbours already point at r
                other = nb[x]
                other.discard(gone)
                other.add(r)
            mine = nb.setdefault(r, set())
            mine |= theirs
            mine.discard(r)
            mine.discard(gone)
            version[r] += 1
            if not mine:
                continue
            o = np.fromiter(mine, np.int64, len(mine))
            new = links(r, o)
            up = new >= threshold  # only these can ever be popped: the rest need not enter the heap
            for x, link in zip(o[up].tolist(), new[up].tolist(), strict=True):
                lo, hi = (r, x) if r < x else (x, r)
                if (lo, hi) not in blocked:
                    heapq.heappush(heap, (-link, lo, hi, version[lo], version[hi]))

    def _cluster_sums(self, app: np.ndarray, skel: np.ndarray | None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Each cluster's sum of appearance vectors and member count at its root (and of skeleton
        vectors, counting members that have one); a seeded cluster's sums cover all its members."""
        sums = np.array(app, np.float32, copy=True)
        count = np.ones(len(app), np.float64)
        ksum = kcount = None
        if skel is not None:
            ksum = np.array(skel, np.float32, copy=True)
            kcount = (np.abs(ksum).sum(1) > 0).astype(np.float64)
        for root, c in self.clusters.items():
            if len(c.members) > 1:
                sums[root] = app[c.members].sum(0)
                count[root] = len(c.members)
                if ksum is not None:
                    ksum[root] = skel[c.members].sum(0)
                    kcount[root] = float((np.abs(skel[c.members]).sum(1) > 0).sum())
        return sums, count, ksum, kcount

    @staticmethod
    def _initial_links(edges: Edges, roots: np.ndarray, sums: np.ndarray, count: np.ndarray,
                       ksum: np.ndarray | None, kcount: np.ndarray | None, weight: float,
                       chunk: int = 65536) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(lo, hi, link)``: the distinct cluster pairs the edges join (``lo < hi``) and their
        average linkage, all at once; an edge between two unseeded tracklets is its own linkage."""
        n = len(roots)
        ra, rb = roots[edges.a], roots[edges.b]
        keep = ra != rb
        key = np.unique(np.minimum(ra[keep], rb[keep]) * n + np.maximum(ra[keep], rb[keep]))
        lo, hi = key // n, key % n
        link = np.empty(len(key), np.float64)
        single = (count[lo] == 1) & (count[hi] == 1)
        if single.any():  # both alone: the pair is one edge (edges are unique pairs of rows)
            ekey = edges.a * n + edges.b
            order = np.argsort(ekey, kind="stable")
            at = order[np.searchsorted(ekey[order], key[single])]
            link[single] = edges.sim[at]
        rest = np.flatnonzero(~single)
        for s in range(0, len(rest), chunk):
            i = rest[s : s + chunk]
            a, b = lo[i], hi[i]
            out = np.einsum("ij,ij->i", sums[a], sums[b]) / (count[a] * count[b])
            if ksum is not None:
                both = (kcount[a] > 0) & (kcount[b] > 0)
                ks = np.einsum("ij,ij->i", ksum[a], ksum[b]) / np.maximum(kcount[a] * kcount[b], 1.0)
                out = np.where(both, (1 - weight) * out + weight * ks, out)
            link[i] = out
        return lo, hi, link

    def groups(self) -> list[list[int]]:
        """The clusters as sorted row lists, biggest first."""
        out = [sorted(c.members) for c in self.clusters.values()]
        return sorted(out, key=lambda m: (-len(m), m[0]))

    def is_confirmed(self, rows: list[int]) -> bool:
        return self.clusters[self.root(rows[0])].confirmed
