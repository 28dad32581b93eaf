"""Market-1501-protocol CMC/mAP: hand-worked cases (ties, junk, same-camera removal), chunking."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from csip_reid.core.errors import ConfigError
from csip_reid.engine.metrics import distances, rank_distances, rank_features

# gallery:      g0       g1       g2       g3        g4       g5
G_PIDS = [1, 2, 1, -1, 1, 3]
G_CAMS = [0, 1, 1, 1, 2, 1]
Q_PIDS = [1, 2, 2]
Q_CAMS = [0, 0, 1]
DIST = np.array([
    # A (pid 1, cam 0). Sorted: g3 .05 junk -> removed; g0 .1 same pid+cam -> removed; g1 .2 miss (rank 1);
    # g2 .3 hit (rank 2); g5 .4 miss (rank 3); g4 .5 hit (rank 4). AP = (1/2 + 2/4) / 2 = 0.5.
    [0.1, 0.2, 0.3, 0.05, 0.5, 0.4],
    # B (pid 2, cam 0). g5 .1 first, then the .3 tie in gallery order g1, g3, g4, then g0, g2 at .9.
    # Junk g3 removed -> kept order g5, g1, g4, g0, g2: the only hit g1 is rank 2. AP = 1/2.
    # (Breaking the tie the other way, g4 g3 g1, would put g1 at rank 3: the test pins the stable order.)
    [0.9, 0.3, 0.9, 0.3, 0.3, 0.1],
    # C (pid 2, cam 1): its only match g1 is in its own camera -> removed -> query skipped.
    [0.1, 0.1, 0.1, 0.1, 0.1, 0.1],
])


@pytest.mark.parametrize("chunk", [1, 2, 256])
def test_hand_worked_case(chunk):
    res = rank_distances(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=6, chunk=chunk)
    assert res.num_valid == 2 and res.num_skipped == 1
    # first hits at rank 2 for both valid queries; APs 1/2 and 1/2
    np.testing.assert_allclose(res.cmc, [0.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    assert res.mAP == pytest.approx(0.5)
    assert res.rank(1) == 0.0 and res.rank(2) == 1.0 and res.rank(50) == 1.0


def test_all_queries_skipped():
    res = rank_distances(DIST[2:], Q_PIDS[2:], G_PIDS, Q_CAMS[2:], G_CAMS)
    assert res.num_valid == 0 and res.num_skipped == 1 and res.mAP == 0.0 and not res.cmc.any()


def test_multiple_hits_precision():
    # one query (pid 5, cam 0) against 5 items of other cameras ranked in gallery order:
    # hit, miss, hit, hit, miss -> precisions 1/1, 2/3, 3/4 -> AP = (1 + 2/3 + 3/4) / 3
    d = np.arange(5, dtype=float)[None]
    res = rank_distances(d, [5], [5, 6, 5, 5, 7], [0], [1, 1, 2, 1, 1], max_rank=5)
    assert res.mAP == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    np.testing.assert_allclose(res.cmc, [1, 1, 1, 1, 1])


def _oracle(d, qp, gp, qc, gc, max_rank):
    """Straightforward per-query implementation of the protocol (independent of the library)."""
    cmc, aps, skipped = np.zeros(max_rank), [], 0
    for i in range(len(qp)):
        order = sorted(range(len(gp)), key=lambda j: (d[i][j], j))
        kept = [j for j in order if gp[j] != -1 and not (gp[j] == qp[i] and gc[j] == qc[i])]
        hits = [r for r, j in enumerate(kept) if gp[j] == qp[i]]
        if not hits:
            skipped += 1
            continue
        cmc[hits[0]:] += 1
        aps.append(np.mean([(k + 1) / (r + 1) for k, r in enumerate(hits)]))
    n = len(aps)
    return cmc / n, float(np.mean(aps)), n, skipped


def test_matches_oracle_with_many_ties():
    rng = np.random.default_rng(0)
    q, g = 40, 70
    d = rng.integers(0, 6, size=(q, g)).astype(float)  # coarse distances: ties everywhere
    qp, gp = rng.integers(0, 8, q), rng.integers(-1, 8, g)
    qc, gc = rng.integers(0, 3, q), rng.integers(0, 3, g)
    cmc, m_ap, n, skipped = _oracle(d, qp, gp, qc, gc, 20)
    for chunk in (1, 7, 1000):
        res = rank_distances(d, qp, gp, qc, gc, max_rank=20, chunk=chunk)
        np.testing.assert_allclose(res.cmc, cmc)
        assert res.mAP == pytest.approx(m_ap) and (res.num_valid, res.num_skipped) == (n, skipped)


def test_features_chunking_metrics_and_torch():
    rng = np.random.default_rng(1)
    qf, gf = rng.normal(size=(30, 16)), rng.normal(size=(50, 16))
    qf /= np.linalg.norm(qf, axis=1, keepdims=True)
    gf /= np.linalg.norm(gf, axis=1, keepdims=True)
    labels = (rng.integers(0, 5, 30), rng.integers(0, 5, 50), rng.integers(0, 2, 30), rng.integers(0, 2, 50))
    ref = rank_distances(distances(qf, gf, "cosine"), *labels)
    for chunk in (1, 4, 512):
        res = rank_features(qf, gf, *labels, metric="cosine", chunk=chunk)
        np.testing.assert_allclose(res.cmc, ref.cmc)
        assert res.mAP == pytest.approx(ref.mAP)
    # on unit vectors squared Euclidean distance = 2 - 2 cos: identical ranking
    euc = rank_features(qf, gf, *labels, metric="euclidean")
    np.testing.assert_allclose(euc.cmc, ref.cmc)
    assert euc.mAP == pytest.approx(ref.mAP)
    as_torch = rank_features(torch.from_numpy(qf), torch.from_numpy(gf), *[torch.from_numpy(x) for x in labels])
    assert as_torch.mAP == pytest.approx(ref.mAP)


def test_distances_values():
    q = np.array([[3.0, 4.0]])
    g = np.array([[3.0, 4.0], [0.0, 1.0], [-6.0, -8.0]])
    np.testing.assert_allclose(distances(q, g, "cosine"), [[0.0, 1 - 0.8, 2.0]], atol=1e-12)
    np.testing.assert_allclose(distances(q, g, "euclidean"), [[0.0, 9 + 9, 81 + 144]], atol=1e-9)


def test_bad_inputs():
    with pytest.raises(ConfigError, match="cosine"):
        rank_features(np.ones((1, 2)), np.ones((2, 2)), [0], [0, 1], [0], [1, 1], metric="manhattan")
    with pytest.raises(ValueError, match="labels"):
        rank_features(np.ones((1, 2)), np.ones((2, 2)), [0], [0], [0], [1, 1])
