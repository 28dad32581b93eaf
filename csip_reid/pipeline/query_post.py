"""What happens to a query's hits after the vector search: wall-clock filters, k-reciprocal
re-ranking, query expansion with an identity's members, and grouping by person.

k-reciprocal re-ranking (Zhong et al., CVPR 2017) on a short list: the query and its ``shortlist``
best hits form a small set whose pairwise cosine distances are recomputed; two tracklets are
k-reciprocal neighbours when each is among the other's ``k1`` nearest; each item's reciprocal
set (expanded by the half-size sets of its members that overlap it by 2/3) becomes a soft vector of
``exp(-d)`` weights, smoothed over its ``k2`` nearest; the Jaccard distance of those vectors is
mixed with the original distance, ``d* = (1 - lam) d_J + lam d``. The hit score after re-ranking is
``1 - d*`` (``d`` is the cosine distance ``1 - s``), so higher is still better.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from csip_reid.core.walltime import parse_datetime

if TYPE_CHECKING:
    from csip_reid.gallery.store import Gallery


def within(hits: list[Any], since: str | None, until: str | None) -> list[Any]:
    """The hits seen between ``since`` and ``until`` (ISO 8601; a hit whose time is unknown is dropped
    when either is given), re-ranked from 1."""
    if since is None and until is None:
        return hits
    lo = parse_datetime(since) if since else None
    hi = parse_datetime(until) if until else None
    kept = []
    for h in hits:
        if not h.start_time:
            continue
        s, e = datetime.fromisoformat(h.start_time), datetime.fromisoformat(h.end_time)
        if (lo is None or e >= lo) and (hi is None or s <= hi):
            kept.append(h)
    return [replace(h, rank=i) for i, h in enumerate(kept, start=1)]


def _reciprocal_weights(dist: np.ndarray, k1: int, k2: int) -> np.ndarray:
    n = len(dist)
    k1 = max(1, min(k1, n - 1))
    order = np.argsort(dist, axis=1, kind="stable")
    near = order[:, : k1 + 1]
    half = order[:, : max(1, int(round(k1 / 2))) + 1]

    def reciprocal(i: int, nb: np.ndarray, k: int) -> np.ndarray:
        return np.array([j for j in nb[i] if i in nb[j, : k + 1]], np.int64)

    v = np.zeros((n, n), np.float32)
    for i in range(n):
        r = reciprocal(i, near, k1)
        expanded = set(r.tolist())
        for j in r:
            rj = reciprocal(int(j), half, half.shape[1] - 1)
            if len(rj) and len(set(rj.tolist()) & set(r.tolist())) > 2 / 3 * len(rj):
                expanded |= set(rj.tolist())
        idx = np.array(sorted(expanded), np.int64)
        w = np.exp(-dist[i, idx])
        v[i, idx] = w / max(float(w.sum()), 1e-12)
    if k2 > 1:
        v = np.stack([v[order[i, :k2]].mean(0) for i in range(n)])
    return v


def k_reciprocal(query: np.ndarray, cand: np.ndarray, k1: int = 20, k2: int = 6, lam: float = 0.3) -> np.ndarray:
    """Re-ranked distances of the candidates ``cand`` (M, D) to ``query`` (D,), all L2-normalised."""
    allv = np.concatenate([query.reshape(1, -1), cand], 0).astype(np.float32)
    dist = np.clip(1.0 - allv @ allv.T, 0.0, 2.0)
    v = _reciprocal_weights(dist, k1, k2)
    mins = np.minimum(v[0][None, :], v[1:]).sum(1)
    maxs = np.maximum(v[0][None, :], v[1:]).sum(1)
    jaccard = 1.0 - mins / np.maximum(maxs, 1e-12)
    return (1 - lam) * jaccard + lam * dist[0, 1:]


def rerank(gallery: Gallery, query: np.ndarray, hits: list[Any], k1: int = 20, k2: int = 6, lam: float = 0.3) -> list[Any]:
    """``hits`` re-ordered by k-reciprocal distance (see the module docstring)."""
    if len(hits) < 3:
        return hits
    vecs = np.stack([gallery.get_tracklet(h.tracklet_id).embedding for h in hits])
    q = np.asarray(query, np.float32).reshape(-1)
    d = k_reciprocal(q / max(float(np.linalg.norm(q)), 1e-12), vecs, k1, k2, lam)
    order = np.argsort(d, kind="stable")
    return [replace(hits[i], rank=r, score=float(1.0 - d[i])) for r, i in enumerate(order, start=1)]


def expansion(gallery: Gallery, query: np.ndarray, hits: list[Any]) -> tuple[np.ndarray, dict[str, Any]] | None:
    """The query vector expanded with the members of the best hit's identity; None if it has none.

    The new query is the normalised mean of the query vector and the identity's mean vector, so
    the query counts as much as all the confirmed sightings together.
    """
    from csip_reid.identity import identity_of, list_identities

    if not hits:
        return None
    iid = identity_of(gallery, [hits[0].tracklet_id]).get(hits[0].tracklet_id)
    if iid is None:
        return None
    person = list_identities(gallery, iid)[0]
    members = [t["tracklet_id"] for t in person["tracklets"]]
    vecs = np.stack([gallery.get_tracklet(t).embedding for t in members])
    q = np.asarray(query, np.float32).reshape(-1)
    q = q / max(float(np.linalg.norm(q)), 1e-12)
    centre = vecs.mean(0)
    new = q + centre / max(float(np.linalg.norm(centre)), 1e-12)
    info = {"identity": iid, "confirmed": person.get("confirmed", False), "tracklets": members}
    return new / max(float(np.linalg.norm(new)), 1e-12), info


def group_people(gallery: Gallery, hits: list[Any], top_k: int) -> tuple[dict[int, int | None], list[dict[str, Any]]]:
    """``(identity of each hit, people)``: one row per identity, best score first.

    A hit without an identity (identities not built, or built before it was indexed) is a person
    of its own (``identity`` None).
    """
    from csip_reid.identity import identity_of, list_identities

    of = identity_of(gallery, [h.tracklet_id for h in hits])
    people: list[dict[str, Any]] = []
    seen: dict[int, dict[str, Any]] = {}
    for h in hits:
        iid = of.get(h.tracklet_id)
        if iid is not None and iid in seen:
            seen[iid]["hits"].append(h.tracklet_id)
            continue
        if len(people) >= top_k:
            continue
        if iid is None:
            row = {"identity": None, "name": None, "score": round(float(h.score), 6), "appearances": 1,
                   "cameras": [h.camera], "first_seen": h.start_time, "last_seen": h.end_time,
                   "tracklets": [h.tracklet_id], "hits": [h.tracklet_id]}
        else:
            p = list_identities(gallery, iid)[0]
            row = {"identity": iid, "name": p["name"], "score": round(float(h.score), 6),
                   "appearances": p["size"], "cameras": p["cameras"], "first_seen": p["first_seen"],
                   "last_seen": p["last_seen"], "tracklets": [t["tracklet_id"] for t in p["tracklets"]],
                   "hits": [h.tracklet_id]}
            seen[iid] = row
        people.append(row)
    return of, people
