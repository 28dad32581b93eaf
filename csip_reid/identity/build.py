"""``reid identities build``: every tracklet of a gallery into identities, stored in the gallery.

Steps: read the tracklet facts and vectors; the k-NN graph from the gallery's FAISS index; the
threshold (label-free unless given); seed the clusters with the labels (``same`` groups), the
confirmed identities, and (unless ``rebuild``) the identities of the last build; agglomerate under
the constraints; store, keeping identity ids stable.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from csip_reid.identity.cluster import Clusterer
from csip_reid.identity.data import CameraRules, TrackletTable, load_vectors
from csip_reid.identity.graph import Searcher, choose_threshold, knn_edges
from csip_reid.identity.labels import labels as read_labels
from csip_reid.identity.labels import must_link_groups
from csip_reid.identity.store import memberships, write_identities

if TYPE_CHECKING:
    from csip_reid.gallery.store import Gallery


def cluster_table(table: TrackletTable, app: np.ndarray, search: Searcher, *, threshold: float | None = None,
                  rate: float = 0.01, k: int = 10, rules: CameraRules | None = None,
                  skel: np.ndarray | None = None, skeleton_weight: float = 0.5,
                  same: list[tuple[int, int]] = (), cannot: list[tuple[int, int]] = (),
                  confirmed: list[list[int]] = (), seeds: list[list[int]] = ()) -> dict[str, Any]:
    """Cluster the rows of ``table`` (labels and seeds given as row indices); no gallery needed.

    Returns:
        ``{"groups": [[rows]], "confirmed": [bool], "threshold": Threshold, "edges": E, "merges",
        "refused", "seconds": {...}}``.
    """
    rules = rules or CameraRules()
    gap = rules.gap_matrix(table.cameras)
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    edges = knn_edges(table, app, search, k=k, skel=skel, weight=skeleton_weight)
    times["graph"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    chosen = choose_threshold(table, app, skel, skeleton_weight, gap, rate=rate, given=threshold)
    times["threshold"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    c = Clusterer(table, gap, list(cannot))
    comp = must_link_groups(list(same))
    by_root: dict[int, list[int]] = {}
    for r, root in comp.items():
        by_root.setdefault(root, []).append(r)
    c.seed(list(by_root.values()), confirmed=True, force=True)
    c.seed(list(confirmed), confirmed=True, force=True)
    c.seed(list(seeds), confirmed=False)
    c.agglomerate(edges, chosen.value, app, skel, skeleton_weight)
    times["cluster"] = time.perf_counter() - t0
    groups = c.groups()
    return {"groups": groups, "confirmed": [c.is_confirmed(g) for g in groups], "threshold": chosen,
            "edges": len(edges), "merges": c.stats.merges, "refused": c.stats.refused, "seconds": times}


def build_identities(gallery: Gallery, threshold: float | None = None, *, rate: float = 0.01, k: int = 10,
                     cameras: str | None = None, min_transition_s: float | None = None,
                     skeleton_weight: float = 0.5, rebuild: bool = False) -> dict[str, Any]:
    """Cluster every tracklet of an open gallery into identities and store them.

    Args:
        gallery: An open :class:`~csip_reid.gallery.Gallery`.
        threshold: Merge threshold (cosine); None = chosen from known-different pairs for ``rate``.
        rate: Target false-merge rate of the automatic threshold.
        k: Neighbours per tracklet in the similarity graph.
        cameras: A cameras file (overlapping views, transition times; see ``CameraRules``).
        min_transition_s: Least seconds between two non-overlapping cameras (overrides the file).
        skeleton_weight: Weight of skeleton similarity where the gallery has skeleton vectors.
        rebuild: Re-cluster every identity a person did not confirm (default: keep the last
            build's identities and attach new tracklets to them).

    Returns:
        The report: identities, tracklets, threshold, how it was chosen (``threshold_reason``),
        confirmed, attached, new identities, edges, merges, refused merges, seconds.
    """
    t_start = time.perf_counter()
    table = TrackletTable.from_gallery(gallery)
    rules = CameraRules.load(cameras, min_transition_s)
    report: dict[str, Any] = {"tracklets": len(table), "identities": 0, "cameras": rules.to_dict()}
    if not len(table):
        write_identities(gallery, [], [], {}, {})
        report.update(threshold=None, threshold_source="none", threshold_reason="the gallery has no tracklets")
        return report
    app, skel = load_vectors(gallery, table, skeleton_weight)
    prev = memberships(gallery)
    rows = table.row_of
    lab = read_labels(gallery)
    same = [(rows[x["a"]], rows[x["b"]]) for x in lab if x["kind"] == "same" and x["a"] in rows and x["b"] in rows]
    cannot = [(rows[x["a"]], rows[x["b"]]) for x in lab if x["kind"] == "not" and x["a"] in rows and x["b"] in rows]
    names = {x["a"]: (x["id"], x["name"]) for x in lab if x["kind"] == "name"}
    by_identity: dict[tuple[int, bool], list[int]] = {}
    for tid, key in prev.items():
        if tid in rows:
            by_identity.setdefault(key, []).append(rows[tid])
    confirmed = [g for (_, conf), g in by_identity.items() if conf]
    seeds = [] if rebuild else [g for (_, conf), g in by_identity.items() if not conf]
    index = gallery.index

    def search(q: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
        return index.search(q, kk)

    out = cluster_table(table, app, search, threshold=threshold, rate=rate, k=k, rules=rules, skel=skel,
                        skeleton_weight=skeleton_weight, same=same, cannot=cannot, confirmed=confirmed,
                        seeds=seeds)
    groups = [[int(table.ids[r]) for r in g] for g in out["groups"]]
    ids = write_identities(gallery, groups, out["confirmed"], prev, names)
    old_ids = {i for i, _ in prev.values()}
    new_tracklets = [t for t in map(int, table.ids) if t not in prev]
    group_of = {t: ids[g] for g, members in enumerate(groups) for t in members}
    th = out["threshold"]
    report.update(
        identities=len(groups), multi=sum(len(g) > 1 for g in groups), confirmed=sum(out["confirmed"]),
        new_tracklets=len(new_tracklets), attached=sum(group_of[t] in old_ids for t in new_tracklets),
        new_identities=len(set(ids) - old_ids), threshold=round(th.value, 4), threshold_source=th.source,
        threshold_reason=th.reason, known_different_pairs=th.pairs, target_false_merge_rate=rate,
        skeleton_fused=skel is not None, k=k, edges=out["edges"], merges=out["merges"], refused=out["refused"],
        rebuild=rebuild, seconds={**{a: round(b, 3) for a, b in out["seconds"].items()},
                                  "total": round(time.perf_counter() - t_start, 3)},
    )
    return report
