"""The compressed (IVF-SQ8 / IVF-PQ) gallery index, in memory and with on-disk inverted lists."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.synthetic import ClusteredSphere
from csip_reid.gallery import Gallery, IndexPolicy
from csip_reid.gallery.compressed import lists_file, memory_bytes_per_vector
from csip_reid.gallery.rebuild import build_in_memory
from tests.helpers.gallery import add_video, fake_embedder_info

DIM = 64


def _policy(kind: str = "ivfsq8", on_disk: bool = False) -> IndexPolicy:
    return IndexPolicy(exact_max=500, compressed_max=1000, compressed=kind, on_disk=on_disk)


def _data(n: int = 4000, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    sphere = ClusteredSphere(DIM, num_ids=400, seed=seed)
    vecs, _ = sphere.sample(n)
    queries, _ = sphere.sample(100)
    return vecs.astype(np.float32), queries.astype(np.float32)


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


@pytest.mark.parametrize("kind,floor", [("ivfsq8", 0.95), ("ivfpq", 0.5)])
def test_compressed_recall_against_exact(kind: str, floor: float) -> None:
    vecs, queries = _data()
    ids = np.arange(4000) + 100
    index = build_in_memory(ids, vecs, DIM, _policy(kind))
    assert index.kind == kind and index.ntotal == 4000
    truth = ids[np.argsort(-(queries @ vecs.T), axis=1)[:, :10]]
    recall = _recall(index.search(queries, 10)[1], truth)
    assert recall >= floor, recall
    # the codes really are smaller than float32 vectors
    assert memory_bytes_per_vector(kind, DIM) < memory_bytes_per_vector("ivf", DIM) // 3


def test_policy_sizes() -> None:
    p = IndexPolicy()
    assert p.ivf_kind(1_000_000, 512) == "ivf" and p.ivf_kind(3_000_000, 512) == "ivfsq8"
    assert p.compressed_limit(128) == 8_000_000  # scaled by 512 / dim like the exact limit
    assert memory_bytes_per_vector("ivfsq8", 512) == 520 and memory_bytes_per_vector("ivfpq", 512) == 72


def test_gallery_grows_into_compressed_on_disk_index(tmp_path: Path) -> None:
    """Add incrementally, remove, save, reload: the lists live in a file and survive reopening."""
    vecs, queries = _data(3000)
    root = tmp_path / "g"
    with Gallery.create(root, fake_embedder_info(dim=DIM), policy=_policy(on_disk=True)) as g:
        for i in range(6):
            add_video(g, f"{i}.mp4", vecs[i * 500:(i + 1) * 500])
        assert g.index.kind == "ivfsq8" and lists_file(g.index.index) is not None
        trained = g.index.trained_size
        # incremental adds go into the same trained index (no re-training below 4x growth)
        assert trained <= 3000 and g.index.ntotal == 3000
        n_removed = g.remove_video("1.mp4")
        assert n_removed == 500 and g.index.ntotal == 2500
        ids, stored = g.vectors()
        truth = ids[np.argsort(-(queries @ stored.T), axis=1)[:, :10]]
        found = np.array([[h.tracklet_id for h in hits] for hits in g.search(queries, k=10)])
        assert _recall(found, truth) >= 0.9
        desc = g.index.describe()
    sidecar = json.loads((root / "index.json").read_text())
    assert sidecar["lists_file"] and (root / sidecar["lists_file"]).is_file()
    assert sidecar["lists_dirty"] is False and len(list(root.glob("lists-*.ivfdata"))) == 1
    with Gallery.open(root) as again:
        assert again.index.describe() == desc and lists_file(again.index.index) == sidecar["lists_file"]
        found2 = np.array([[h.tracklet_id for h in hits] for hits in again.search(queries, k=10)])
    np.testing.assert_array_equal(found, found2)


def test_dirty_on_disk_lists_are_rebuilt(tmp_path: Path) -> None:
    """A writer that changed the on-disk lists and died before saving: the next open rebuilds."""
    vecs, queries = _data(2000)
    root = tmp_path / "g"
    with Gallery.create(root, fake_embedder_info(dim=DIM), policy=_policy(on_disk=True)) as g:
        add_video(g, "a.mp4", vecs[:1500])
        g.flush()
        g.index.add(np.array([10**9]), vecs[1500:1501])  # changes the lists in place, not saved
        assert json.loads((root / "index.json").read_text())["lists_dirty"] is True
        g._sync._index = None  # simulate the crash: this process forgets its index (no save)
        g.lock.release()
    with Gallery.open(root) as again:
        assert again.index.ntotal == 1500  # rebuilt from SQLite: the unsaved id is gone
        _, found = again.index.search(vecs[1500:1501], 1)
        assert found[0, 0] != 10**9
