"""Adding to an ``ivfhnsw-sq8`` index by precomputed lists (``ListAssigner`` + ``IndexIVF.add_core``)."""

from __future__ import annotations

import sys

import faiss
import numpy as np
import pytest

from bench.synthetic import ClusteredSphere
from csip_reid.gallery import compressed as cz
from csip_reid.gallery import index as index_module
from csip_reid.gallery.kinds import IndexPolicy
from csip_reid.gallery.rebuild import build_in_memory

KIND = "ivfhnsw-sq8"
DIM = 32


def _trained(nlist: int, seed: int = 0) -> tuple[faiss.IndexIVF, np.ndarray, ClusteredSphere]:
    sphere = ClusteredSphere(DIM, 4000, seed=seed)
    index = cz.new_ivf(KIND, DIM, nlist)
    cz.train_ivf(index, sphere.sample(20 * nlist)[0], seed)
    quantizer = cz.hnsw_quantizer(index)
    assert quantizer is not None
    return index, quantizer.reconstruct_n(0, nlist), sphere


def _flat_lists(vecs: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    return faiss.knn(vecs, centroids, 1, metric=faiss.METRIC_INNER_PRODUCT)[1].ravel()


def _lists(index: faiss.IndexIVF) -> list[tuple[list[int], bytes]]:
    """Each list's ids (sorted) and codes in id order."""
    out = []
    for i in range(index.nlist):
        n = index.invlists.list_size(i)
        ids = faiss.rev_swig_ptr(index.invlists.get_ids(i), n).copy()
        codes = faiss.rev_swig_ptr(index.invlists.get_codes(i), n * index.code_size).copy()
        order = np.argsort(ids)
        out.append((ids[order].tolist(), codes.reshape(n, index.code_size)[order].tobytes()))
    return out


@pytest.mark.parametrize("bf16", [False, True])
def test_assigner_gives_the_flat_quantizers_lists(bf16: bool) -> None:
    _, centroids, sphere = _trained(1500)  # two-level centroids, as at large N
    vecs = sphere.sample(5000)[0]  # more than one block
    assigner = cz.ListAssigner(centroids, bf16=bf16)
    lists = assigner.assign(vecs)
    assert lists.dtype == np.int64 and len(lists) == 5000 > cz.ASSIGN_BLOCK
    np.testing.assert_array_equal(lists, _flat_lists(vecs, centroids))


def test_it_beats_the_graph_the_index_would_walk() -> None:
    """The premise: at the kind's efSearch the graph misses the nearest list of some vectors."""
    index, centroids, sphere = _trained(1500, seed=1)
    vecs = sphere.sample(5000)[0]
    truth = _flat_lists(vecs, centroids)
    quantizer = cz.hnsw_quantizer(index)
    quantizer.hnsw.efSearch = 16
    assert (quantizer.search(vecs, 1)[1].ravel() == truth).mean() < 0.99
    assert (cz.ListAssigner(centroids).assign(vecs) == truth).all()


def test_bf16_only_when_torch_imports_and_is_faster(monkeypatch: pytest.MonkeyPatch) -> None:
    _, centroids, sphere = _trained(300, seed=2)
    vecs = sphere.sample(100)[0]
    auto = cz.ListAssigner(centroids)
    assert auto.bf16 is None
    auto.assign(vecs)
    assert isinstance(auto.bf16, bool)  # measured once, on the first block
    monkeypatch.setitem(sys.modules, "torch", None)  # torch cannot be imported
    plain = cz.ListAssigner(centroids)
    np.testing.assert_array_equal(plain.assign(vecs), _flat_lists(vecs, centroids))
    assert plain.bf16 is False


def test_bf16_never_loads_torch_into_a_process_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _, centroids, sphere = _trained(300, seed=3)
    vecs = sphere.sample(100)[0]
    monkeypatch.delitem(sys.modules, "torch")  # as in `reid gallery reindex`: torch not loaded
    unloaded = cz.ListAssigner(centroids)
    np.testing.assert_array_equal(unloaded.assign(vecs), _flat_lists(vecs, centroids))
    assert unloaded.bf16 is False and "torch" not in sys.modules


def test_preassigned_adds_equal_the_quantizers_own() -> None:
    index, centroids, sphere = _trained(256, seed=2)
    vecs, ids = sphere.sample(5000)[0], np.arange(5000, dtype=np.int64) * 3 + 1
    by_graph = faiss.deserialize_index(faiss.serialize_index(index))
    cz.set_nprobe(by_graph, 1, ef_search=256)  # the graph explores every centroid: exact
    by_graph.add_with_ids(vecs, ids)
    cz.add_in_chunks(index, ids, vecs, chunk=1200, assigner=cz.ListAssigner(centroids))
    assert index.ntotal == by_graph.ntotal == 5000
    assert _lists(index) == _lists(by_graph)  # same ids in the same lists, same codes


def test_add_assigned_refuses_mismatched_rows() -> None:
    index, _, sphere = _trained(256, seed=3)
    vecs = sphere.sample(10)[0]
    with pytest.raises(ValueError, match="do not match"):
        cz.add_assigned(index, np.arange(10), vecs, np.zeros(9, np.int64))
    assert index.ntotal == 0


def test_no_assigner_for_a_flat_quantizer() -> None:
    index = cz.new_ivf("ivfsq8", DIM, 16)
    index.train(ClusteredSphere(DIM, 100, seed=4).sample(2000)[0])
    assert cz.ListAssigner.for_index(index) is None


def test_rebuild_and_large_batches_add_through_the_assigner(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = cz.ListAssigner.assign

    def counted(self: cz.ListAssigner, vecs: np.ndarray) -> np.ndarray:
        calls.append(len(vecs))
        return original(self, vecs)

    monkeypatch.setattr(cz.ListAssigner, "assign", counted)
    vecs = ClusteredSphere(DIM, 2000, seed=5).sample(24_000)[0]
    policy = IndexPolicy(exact_max=300, compressed_max=500, compressed=KIND, recall_target=0.0)
    built = build_in_memory(np.arange(12_000), vecs[:12_000], DIM, policy)
    assert built.kind == KIND and sum(calls) == 12_000
    calls.clear()
    built.add(np.arange(12_000, 12_100), vecs[12_000:12_100])  # a video's worth: through the graph
    assert calls == []
    monkeypatch.setattr(index_module, "ASSIGN_FROM", 5000)
    built.add(np.arange(12_100, 24_000), vecs[12_100:])  # catching up: through the assigner
    assert sum(calls) == 11_900 and built.ntotal == 24_000
    built.exact_vectors = vecs.__getitem__  # ids are positions; the build's source holds only the first half
    assert built.search(vecs[-5:], 1)[1].ravel().tolist() == list(range(23_995, 24_000))
