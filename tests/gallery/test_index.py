"""Exact → approximate switch, re-training, and the VectorIndex operations for both index kinds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.synthetic import ClusteredSphere, clustered_unit_vectors
from csip_reid.gallery import Gallery, IndexPolicy, VideoRecord
from csip_reid.gallery.index import VectorIndex
from csip_reid.gallery.rebuild import build_in_memory
from tests.helpers.gallery import POLICIES, add_video, fake_embedder_info, make_tracklets, unit_vectors


def _recall_at_10(hits, truth: np.ndarray) -> float:
    return float(np.mean([len({h.tracklet_id for h in r} & set(t)) / 10 for r, t in zip(hits, truth, strict=True)]))


def test_switch_to_ivf_keeps_recall(tmp_path: Path) -> None:
    dim = 64
    sphere = ClusteredSphere(dim, num_ids=300, seed=1)
    vecs, _ = sphere.sample(3000)
    queries, _ = sphere.sample(100)  # new tracklets of people already in the gallery
    g = Gallery.create(tmp_path / "g", fake_embedder_info(dim=dim), policy=IndexPolicy(exact_max=2000))
    kinds = []
    for i in range(30):
        g.add_video(VideoRecord(f"/v/{i}.mp4", f"h{i}", "c", 25, 10, 64, 64),
                                make_tracklets(vecs[i * 100 : (i + 1) * 100]))
        kinds.append(g.index.kind)
    assert kinds == ["flat"] * 19 + ["ivf"] * 11  # switched when the 2,000th vector arrived
    desc = g.index.describe()
    assert desc["nprobe"] < desc["nlist"]  # really approximate: not every list is scanned
    assert desc["tuned_recall"] >= 0.97
    ids, stored = g.vectors()
    truth = ids[np.argsort(-(queries @ stored.T), axis=1)[:, :10]]
    assert _recall_at_10(g.search(queries, k=10), truth) >= 0.95
    g.close()
    with Gallery.open(tmp_path / "g") as again:  # the trained index is what gets reloaded
        assert again.index.describe() == desc


def test_retrain_on_growth_and_back_to_exact(tmp_path: Path) -> None:
    vecs, _ = clustered_unit_vectors(2000, 32, seed=3)
    with Gallery.create(tmp_path / "g", fake_embedder_info(), policy=IndexPolicy(exact_max=300, recall_target=0.0)) as g:
        add_video(g, "0.mp4", vecs[:400])
        assert (g.index.kind, g.index.trained_size) == ("ivf", 400)
        add_video(g, "1.mp4", vecs[400:1200])
        assert g.index.trained_size == 400  # 1,200 < 4 x 400: no re-training yet
        add_video(g, "2.mp4", vecs[1200:1700])
        assert (g.index.trained_size, g.index.nlist) == (1700, 42)  # grew 4x: re-trained, more lists
        for name in ("2.mp4", "1.mp4", "0.mp4"):
            g.remove_video(name)
        add_video(g, "3.mp4", vecs[1700:1800])
        assert g.index.kind == "flat" and g.index.ntotal == 100


def test_unclusterable_data_stays_exact(tmp_path: Path) -> None:
    """Uniform random vectors: no nprobe up to nlist/2 reaches the recall target, so search stays exact."""
    vecs = unit_vectors(1700, seed=4)
    with Gallery.create(tmp_path / "g", fake_embedder_info(), policy=IndexPolicy(exact_max=300)) as g:
        add_video(g, "0.mp4", vecs[:400])
        desc = g.index.describe()
        assert (desc["kind"], desc["trained_size"]) == ("flat", 400) and desc["tuned_recall"] < 0.97
        add_video(g, "1.mp4", vecs[400:1200])
        assert g.index.trained_size == 400  # not re-tried before the gallery grows 4x
        add_video(g, "2.mp4", vecs[1200:])
        assert (g.index.kind, g.index.trained_size) == ("flat", 1700)  # re-tried, rejected again
        assert g.search(vecs[7], k=1)[0][0].score == pytest.approx(1.0)


@pytest.mark.parametrize("kind", sorted(POLICIES))
def test_exclusion_filters_inside_faiss(kind: str) -> None:
    vecs, _ = clustered_unit_vectors(1000, 32, seed=5)
    ids = np.arange(1000, 2000)
    index = build_in_memory(ids, vecs, 32, POLICIES[kind])
    assert index.kind == kind and index.ntotal == 1000
    excluded = ids[:900]  # most of the gallery, including the query itself
    scores, found = index.search(vecs[:3], k=10, exclude_ids=excluded)
    assert found.shape == (3, 10)
    assert (found >= 1900).all()  # k results, none of them excluded
    assert (np.diff(scores, axis=1) <= 1e-6).all()


@pytest.mark.parametrize("kind", sorted(POLICIES))
def test_remove_keep_only_save_load(kind: str, tmp_path: Path) -> None:
    vecs = unit_vectors(600)
    ids = np.arange(10, 610)
    index = build_in_memory(ids, vecs, 32, POLICIES[kind])
    assert index.remove(np.array([10, 11, 12, 99999])) == 3
    assert index.keep_only(ids[100:]) == 97
    assert index.ntotal == 500
    _, found = index.search(vecs[:100], k=1)
    assert (found[:, 0] != ids[:100]).all()  # removed vectors are never returned
    state = {"count": 500, "max_id": 609, "id_sum": int(ids[100:].sum()), "generation": 7}
    sidecar = index.save(tmp_path, state)
    loaded, side = VectorIndex.load(tmp_path, 32, POLICIES[kind])
    assert side == sidecar and loaded.kind == kind and loaded.nprobe == index.nprobe
    np.testing.assert_array_equal(loaded.search(vecs[200:260], 5)[1], index.search(vecs[200:260], 5)[1])
    assert VectorIndex.load(tmp_path, 64, POLICIES[kind]) is None  # another dimension: not ours
    (tmp_path / sidecar["file"]).write_bytes(b"garbage")
    assert VectorIndex.load(tmp_path, 32, POLICIES[kind]) is None


def test_exact_limit_scales_with_dim() -> None:
    policy = IndexPolicy()
    assert policy.exact_limit(512) == 50_000
    assert policy.exact_limit(2048) == 12_500
    assert IndexPolicy(exact_max=10).exact_limit(2048) == 10
    assert not policy.use_ivf(49_999, 512) and policy.use_ivf(50_000, 512)
    assert not IndexPolicy(exact_max=0).use_ivf(255, 512)  # never IVF on a handful of vectors
