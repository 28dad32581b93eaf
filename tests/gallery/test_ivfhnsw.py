"""``ivfhnsw-sq8``: many lists behind an HNSW quantizer, SQ8 codes re-ranked by the exact vectors."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest
from click.testing import CliRunner

from bench.synthetic import ClusteredSphere
from csip_reid.cli import main
from csip_reid.gallery import Gallery
from csip_reid.gallery import compressed as cz
from csip_reid.gallery.index import VectorIndex
from csip_reid.gallery.kinds import KINDS, IndexPolicy
from csip_reid.gallery.rebuild import build_in_memory
from tests.helpers.gallery import add_video, fake_embedder_info

KIND = "ivfhnsw-sq8"
DIM = 32


def _policy(**kw) -> IndexPolicy:
    return IndexPolicy(exact_max=300, compressed_max=500, compressed=KIND, **kw)


def _exact_topk(vecs: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    return ids[np.argsort(-(q @ vecs.T), axis=1, kind="stable")[:, :k]]


def test_policy_picks_it_only_where_the_table_says() -> None:
    p = _policy()
    assert p.ivf_kind(400, 512) == "ivf" and p.ivf_kind(501, 512) == KIND
    assert IndexPolicy().ivf_kind(10**8, 512) == "ivfsq8"  # the default compressed kind is unchanged
    n = 1_000_000
    assert p.nlist_for(n, KIND) == 16_000 == 8 * p.nlist_for(n, "ivfsq8")  # lists_scale 8
    assert p.train_sample(n, KIND) == 16_000 * 20  # 20 per list, not the policy's 50
    assert p.train_sample(n, "ivfsq8") == 2_000 * 50
    assert p.nlist_for(20_000, KIND) == 1_000  # at least 20 vectors per list


def test_two_level_training_gives_every_list_a_unit_centroid() -> None:
    vecs, _ = ClusteredSphere(DIM, 3000, seed=1).sample(30_000)
    nlist = _policy().nlist_for(len(vecs), KIND)
    assert nlist >= cz.TWO_LEVEL_FROM  # the two-level path
    index = cz.new_ivf(KIND, DIM, nlist)
    cz.train_ivf(index, vecs)
    quantizer = cz.hnsw_quantizer(index)
    assert index.is_trained and quantizer is not None and quantizer.ntotal == nlist
    centroids = quantizer.reconstruct_n(0, nlist)
    np.testing.assert_allclose(np.linalg.norm(centroids, axis=1), 1.0, atol=1e-5)
    index.add_with_ids(vecs, np.arange(len(vecs)))
    sizes = np.array([index.invlists.list_size(i) for i in range(nlist)])
    assert sizes.sum() == len(vecs) and (sizes > 0).mean() > 0.9  # no collapsed partition
    for nprobe in (8, 64):
        cz.set_nprobe(index, nprobe)
        assert index.nprobe == nprobe and quantizer.hnsw.efSearch == max(cz.EF_MIN, cz.EF_PER_PROBE * nprobe)
    cz.set_nprobe(index, 8, ef_search=300)
    assert quantizer.hnsw.efSearch == 300


def _same_sets(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of rows whose ids are the same set."""
    return float(np.mean([set(f) == set(t) for f, t in zip(found, truth, strict=True)]))


def _near_ties(n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Groups of 20 vectors within 0.02 of each other: their order is finer than 8-bit codes resolve.

    A query's group (20) fits in the ``k * k_factor`` = 40 candidates, so the refine step sees all of it.
    """
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n // 20, DIM)).astype(np.float32)
    v = np.repeat(centres, 20, axis=0) + 0.02 * rng.standard_normal((n, DIM)).astype(np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    queries = v[rng.choice(n, 40, replace=False)] + 0.01 * rng.standard_normal((40, DIM)).astype(np.float32)
    return v, queries / np.linalg.norm(queries, axis=1, keepdims=True)


def test_refine_restores_the_exact_top_k_where_the_codes_err() -> None:
    vecs, queries = _near_ties()
    ids = np.arange(1, len(vecs) + 1, dtype=np.int64) * 3
    built = build_in_memory(ids, vecs, DIM, _policy(recall_target=0.0))
    assert built.kind == KIND and built.k_factor == KINDS[KIND].k_factor == 4
    cz.set_nprobe(built.index, built.nlist)  # every list: only the codes can err
    truth = _exact_topk(vecs, ids, queries, 10)
    reader = built.exact_vectors
    built.exact_vectors = None
    _, codes_only = built.search(queries, 10)
    assert _same_sets(codes_only, truth) < 0.9  # the premise: 8-bit codes pick the wrong near-ties
    built.exact_vectors = reader
    scores, refined = built.search(queries, 10)
    assert _same_sets(refined, truth) == 1.0  # (the order of scores equal to 1e-7 may differ)
    np.testing.assert_allclose(scores, np.sort(queries @ vecs.T, axis=1)[:, ::-1][:, :10], atol=1e-5)
    excluded = truth[:, 0]  # the exclusion path is refined too
    _, without = built.search(queries, 10, exclude_ids=excluded)
    assert not np.isin(without, excluded).any()
    assert _same_sets(without[:, :9], truth[:, 1:10]) == 1.0


def test_tuning_reaches_the_target_and_the_index_saves_and_loads(tmp_path: Path) -> None:
    vecs, _ = ClusteredSphere(DIM, 2000, seed=2).sample(20_000)
    ids = np.arange(1, len(vecs) + 1, dtype=np.int64)
    policy = _policy(on_disk=True)
    built = build_in_memory(ids, vecs, DIM, policy, directory=tmp_path)
    assert built.kind == KIND and built.tuned_recall is not None and built.tuned_recall >= 0.97
    assert cz.lists_file(built.index) is not None
    built.save(tmp_path, {"count": len(ids), "max_id": len(ids), "id_sum": int(ids.sum()), "generation": 1})
    loaded = VectorIndex.load(tmp_path, DIM, policy)
    assert loaded is not None
    index, sidecar = loaded
    assert index.kind == sidecar["kind"] == KIND and index.nprobe == built.nprobe == sidecar["nprobe"]
    quantizer = cz.hnsw_quantizer(index.index)
    assert quantizer is not None and quantizer.hnsw.efSearch == max(cz.EF_MIN, cz.EF_PER_PROBE * index.nprobe)
    index.exact_vectors = built.exact_vectors
    np.testing.assert_array_equal(index.search(vecs[:20], 10)[1], built.search(vecs[:20], 10)[1])
    assert index.search(vecs[:20], 1)[1].ravel().tolist() == ids[:20].tolist()
    assert not index.wants_rebuild(len(ids), policy)


def test_gallery_rebuilds_it_from_sqlite_and_refines_after_reopening(tmp_path: Path) -> None:
    vecs, _ = _near_ties(n=2000, seed=4)
    root = tmp_path / "g"
    with Gallery.create(root, fake_embedder_info(dim=DIM)) as g:
        for i in range(2):
            add_video(g, f"{i}.mp4", vecs[i * 1000:(i + 1) * 1000])
    out = CliRunner().invoke(main, ["gallery", "reindex", "--gallery", str(root), "--compressed", KIND,
                                    "--compressed-above", "500", "--exact-below", "300", "--json"])
    assert out.exit_code == 0, out.output
    d = json.loads(out.output)
    assert d["kind"] == KIND and d["ntotal"] == 2000 and d["bytes_per_vector"] == DIM + 8
    with Gallery.open(root) as g:  # the saved index, refined from the gallery's SQLite store
        assert g.index.kind == KIND and g.index.exact_vectors is not None
        ids, stored = g.vectors()
        queries = stored[::97]
        cz.set_nprobe(g.index.index, g.index.nlist)
        truth = _exact_topk(stored, ids, queries, 10)
        found = [[h.tracklet_id for h in hits] for hits in g.search(queries, k=10)]
        assert _same_sets(np.array(found), truth) == 1.0


def test_exact_vector_reads_stay_bounded_by_the_candidates() -> None:
    """The refine step reads k * k_factor candidates per query, not the gallery."""
    vecs, _ = ClusteredSphere(DIM, 2000, seed=6).sample(20_000)
    ids = np.arange(len(vecs), dtype=np.int64)
    built = build_in_memory(ids, vecs, DIM, _policy(recall_target=0.0))
    reads: list[int] = []
    reader = built.exact_vectors
    assert reader is not None

    def counting(wanted: np.ndarray) -> np.ndarray:
        reads.append(len(wanted))
        return reader(wanted)

    built.exact_vectors = counting
    built.search(vecs[:5], 10)
    assert reads and reads[0] <= 5 * 10 * built.k_factor
    assert isinstance(built.index, faiss.IndexIVF)


@pytest.mark.parametrize("k_factor", [0, 1])
def test_no_refine_without_a_factor(k_factor: int) -> None:
    vecs, _ = ClusteredSphere(DIM, 2000, seed=7).sample(20_000)
    built = build_in_memory(np.arange(len(vecs)), vecs, DIM, _policy(recall_target=0.0))
    built.k_factor = k_factor
    built.exact_vectors = lambda ids: pytest.fail("read exact vectors without a refine step")
    assert built.search(vecs[:3], 5)[1].shape == (3, 5)
