"""The identity math at scale: the fast graph + heap agglomeration give the groups of a plain
average-linkage reference, and the automatic threshold follows the model's similarity scale."""

from __future__ import annotations

import numpy as np
import pytest

from csip_reid.identity import TrackletTable, cluster_table
from csip_reid.identity.cluster import Clusterer
from csip_reid.identity.graph import choose_threshold, knn_edges


def _synthetic(people: int, per: int, dim: int, spread: float, seed: int = 0):
    """``people`` centres, ``per`` noisy sightings each; every 3 consecutive rows share a video and
    overlap in time (known-different pairs when they are different people)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((people, dim)).astype(np.float32)
    labels = rng.permutation(np.repeat(np.arange(people), per))
    v = centres[labels] / np.sqrt(dim) + spread * rng.standard_normal((len(labels), dim)).astype(np.float32) / np.sqrt(dim)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    n = len(labels)
    rows = [(i + 1, i // 3, f"cam{i % 4}", float(rng.uniform(0, 5)), float(rng.uniform(6, 9)), None) for i in range(n)]
    return TrackletTable.from_rows(rows), v.astype(np.float32), labels


def _exact_search(vecs: np.ndarray, ids: np.ndarray):
    def search(q: np.ndarray, k: int):
        s = q @ vecs.T
        o = np.argsort(-s, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(s, o, 1), ids[o]

    return search


def _reference(table: TrackletTable, v: np.ndarray, threshold: float) -> list[list[int]]:
    """Average linkage over every pair (the graph complete), best pair first, refusing a merge of
    two clusters that hold two rows of one video at overlapping times; a refused pair stays apart."""
    clusters = [[i] for i in range(len(v))]
    sims = v.astype(np.float64) @ v.T.astype(np.float64)
    blocked: set[tuple[int, ...]] = set()

    def conflict(x: list[int], y: list[int]) -> bool:
        return any(table.video[a] == table.video[b] and table.start_s[a] <= table.end_s[b]
                   and table.start_s[b] <= table.end_s[a] for a in x for b in y)

    while True:
        best, pair = -np.inf, None
        for i in range(len(clusters)):
            for j in range(i + 1, len(clusters)):
                key = (*sorted(clusters[i]), -1, *sorted(clusters[j]))
                link = sims[np.ix_(clusters[i], clusters[j])].mean()
                if key not in blocked and link > best:
                    best, pair = link, (i, j, key)
        if pair is None or best < threshold:
            break
        i, j, key = pair
        if conflict(clusters[i], clusters[j]):
            blocked.add(key)
            continue
        clusters[i] = clusters[i] + clusters[j]
        del clusters[j]
    return sorted((sorted(c) for c in clusters), key=lambda m: (-len(m), m[0]))


@pytest.mark.parametrize("threshold", [0.1, 0.2])
def test_groups_equal_a_plain_average_linkage(threshold: float) -> None:
    table, v, _ = _synthetic(people=12, per=5, dim=24, spread=1.2)
    # k = N - 1: every pair is a candidate, so the graph restricts nothing
    out = cluster_table(table, v, _exact_search(v, table.ids), threshold=threshold, k=len(v) - 1)
    assert out["groups"] == _reference(table, v, threshold)
    assert out["refused"] > 0  # the constraint did act in this case


def test_edges_carry_the_index_scores_once_per_pair() -> None:
    table, v, _ = _synthetic(people=20, per=4, dim=16, spread=1.0)
    e = knn_edges(table, v, _exact_search(v, table.ids), k=5)
    assert (e.a < e.b).all() and len(np.unique(e.a * len(v) + e.b)) == len(e)
    np.testing.assert_allclose(e.sim, np.einsum("ij,ij->i", v[e.a], v[e.b]), atol=1e-5)


def test_initial_links_of_seeded_clusters_are_exact_means() -> None:
    table, v, _ = _synthetic(people=6, per=4, dim=16, spread=1.0)
    c = Clusterer(table, np.zeros((4, 4)))
    c.seed([[0, 1, 2]], confirmed=False, force=True)
    e = knn_edges(table, v, _exact_search(v, table.ids), k=len(v) - 1)
    roots = np.array([c.root(i) for i in range(len(v))])
    sums = v.copy()
    sums[roots[0]] = v[[0, 1, 2]].sum(0)
    count = np.ones(len(v))
    count[roots[0]] = 3
    lo, hi, link = Clusterer._initial_links(e, roots, sums, count, None, None, 0.5)
    r = roots[0]
    other = 5
    got = link[(lo == min(r, other)) & (hi == max(r, other))]
    assert got == pytest.approx(float((v[[0, 1, 2]] @ v[other]).mean()), abs=1e-5)


@pytest.mark.parametrize(("shared", "spread"), [(0.0, 0.8), (1.0, 0.8), (2.0, 1.0)])
def test_automatic_threshold_follows_the_similarity_scale(shared: float, spread: float) -> None:
    """Three "models" with their cosines on very different scales (a direction every vector shares
    lifts different people from ~0 to ~0.4 or ~0.65, as between ReID models): the automatic threshold
    moves with them and finds the people each time, without mixing two."""
    rng = np.random.default_rng(1)
    dim, people, per = 256, 40, 5

    def unit(x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)

    common, centres = unit(rng.standard_normal(dim)), unit(rng.standard_normal((people, dim)))
    labels = rng.permutation(np.repeat(np.arange(people), per))
    v = unit(shared * common + centres[labels] + spread * unit(rng.standard_normal((len(labels), dim))))
    # the k-th sighting of people p, p + 10, p + 20, p + 30 in one video, at once: different people
    seen = np.zeros(people, int)
    rows = []
    for i, p in enumerate(labels.tolist()):
        rows.append((i + 1, int(seen[p]) * 10 + p % 10, f"cam{seen[p] % 4}", 0.0, 5.0, None))
        seen[p] += 1
    table = TrackletTable.from_rows(rows)
    out = cluster_table(table, v, _exact_search(v, table.ids))
    th = out["threshold"]
    assert th.source == "known-different pairs"
    same = labels[:, None] == labels[None, :]
    iu = np.triu_indices(len(v), 1)
    s_same, s_diff = (v @ v.T)[iu][same[iu]], (v @ v.T)[iu][~same[iu]]
    assert np.quantile(s_diff, 0.99) < th.value < np.median(s_same)
    truth = {i: int(labels[i]) for i in range(len(v))}
    assert all(len({truth[i] for i in g}) == 1 for g in out["groups"])  # no person mixed with another
    assert len(out["groups"]) <= people * 1.5


def test_no_candidate_pairs_leave_everyone_apart() -> None:
    table, v, _ = _synthetic(people=3, per=2, dim=8, spread=1.0)
    c = Clusterer(table, np.zeros((4, 4)))
    c.seed([[0, 1, 2, 3, 4, 5]], confirmed=False, force=True)  # one cluster: every edge is inside it
    c.agglomerate(knn_edges(table, v, _exact_search(v, table.ids), k=5), 0.0, v)
    assert c.groups() == [[0, 1, 2, 3, 4, 5]]


def test_too_few_tracklets_merge_only_identical_vectors() -> None:
    table = TrackletTable.from_rows([(1, 0, "a", 0.0, 1.0, None), (2, 1, "b", 0.0, 1.0, None)])
    v = np.eye(2, 8, dtype=np.float32)
    th = choose_threshold(table, v, None, 0.5, np.zeros((2, 2)))
    assert th.source == "default" and th.value == 1.0
