"""Grouped answers, wall-clock filters, expansion and re-ranking on a gallery with known people."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from csip_reid.identity import build_identities, label
from csip_reid.pipeline.query import answer, run_query_tracklet
from csip_reid.pipeline.query_post import k_reciprocal
from tests.helpers.identity import crowd_gallery, people, sighting


def test_grouped_answer_has_one_row_per_person(tmp_path: Path) -> None:
    g, truth = crowd_gallery(tmp_path / "g", num_people=5, cameras=3)
    with g:
        build_identities(g)
        t = sighting(people(5)[2], "q.mp4", "query", 0, 0, 5, seed=77)
        r = answer(g, t, {"kind": "test"}, top_k=3, group="person")
        d = r.to_dict()
        assert len(d["hits"]) == 3 and all(truth[h["tracklet_id"]] == 2 for h in d["hits"])
        assert len({h["identity"] for h in d["hits"]}) == 1 and d["hits"][0]["identity"] is not None
        top = d["people"][0]
        assert top["identity"] == d["hits"][0]["identity"] and top["appearances"] == 3
        assert top["cameras"] == ["cam0", "cam1", "cam2"] and top["score"] == d["hits"][0]["score"]
        assert top["first_seen"] == "2024-05-01T08:00:07+00:00" and len(top["tracklets"]) == 3
        assert len(d["people"]) == 3 and len({p["identity"] for p in d["people"]}) == 3
        # wall-clock filter: only the sighting of cam1 (08:10-08:11) is left
        r = answer(g, t, {"kind": "test"}, top_k=3, since="2024-05-01T08:09:00", until="2024-05-01T08:15:00")
        assert [h.camera for h in r.hits if truth[h.tracklet_id] == 2] == ["cam1"]
        assert all(h.start_time.startswith("2024-05-01T08:10") for h in r.hits)
        r = answer(g, t, {"kind": "test"}, top_k=3, since="2025-01-01T00:00:00")
        assert r.hits == []


def test_find_this_person_excludes_the_tracklet_and_expands(tmp_path: Path) -> None:
    g, truth = crowd_gallery(tmp_path / "g", num_people=4, cameras=3)
    with g:
        build_identities(g)
        mine = sorted(t for t, p in truth.items() if p == 1)
        label(g, mine[0], same_as=mine[1])
    r = run_query_tracklet(tmp_path / "g", mine[0], top_k=5, group="person", expand=True, rerank=True)
    ids = [h.tracklet_id for h in r.hits]
    assert mine[0] not in ids and set(ids[:2]) == set(mine[1:])
    assert r.query["expanded_with"]["confirmed"] is True and set(r.query["expanded_with"]["tracklets"]) == set(mine)
    assert set(r.people[0]["tracklets"]) == set(mine)
    assert [h.rank for h in r.hits] == list(range(1, len(r.hits) + 1))


def test_k_reciprocal_prefers_mutual_neighbours() -> None:
    rng = np.random.default_rng(0)
    centres = people(6, dim=16, seed=3)
    cand = np.concatenate([c + 0.15 * rng.standard_normal((4, 16)) for c in centres]).astype(np.float32)
    cand /= np.linalg.norm(cand, axis=1, keepdims=True)
    q = centres[0] + 0.15 * rng.standard_normal(16)
    q = (q / np.linalg.norm(q)).astype(np.float32)
    d = k_reciprocal(q, cand, k1=4, k2=2)
    assert d.shape == (24,) and np.all(np.isfinite(d)) and np.all(d >= 0)
    assert set(np.argsort(d)[:4]) == {0, 1, 2, 3}
    assert d[:4].max() < d[4:].min()
    with pytest.raises(ValueError):
        k_reciprocal(q[:8], cand)
