"""The skeleton and fused search modes: the re-ranking rule on vectors built to disagree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from csip_reid.core.errors import GalleryError
from csip_reid.gallery.fused import search_fused
from csip_reid.gallery.store import Gallery, VideoRecord
from tests.helpers.gallery import fake_embedder_info, make_tracklets

DIM, SDIM = 8, 4


def _unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, np.float32)
    return a / np.linalg.norm(a)


@pytest.fixture()
def gallery(tmp_path: Path):
    """Query q = e0 in both spaces. Candidates (appearance cos, skeleton cos):
    A (0.9, 0.0)  looks alike, walks differently;  B (0.6, 1.0)  looks less alike, walks the same;
    C (0.75, --)  no skeleton vector;               D (0.1, 0.1)  unrelated.
    """
    app = {"A": [0.9, np.sqrt(1 - 0.81)], "B": [0.6, 0.8], "C": [0.75, np.sqrt(1 - 0.5625)], "D": [0.1, np.sqrt(0.99)]}
    skel = {"A": [0.0, 1.0], "B": [1.0, 0.0], "D": [0.1, np.sqrt(0.99)]}
    vecs = np.stack([_unit([*app[k], 0, 0, 0, 0, 0, 0][:DIM]) for k in "ABCD"])
    tracks = make_tracklets(vecs, video="v.mp4", skeleton=True)
    for t, k in zip(tracks, "ABCD", strict=True):
        t.skeleton_embedding = _unit([*skel[k], 0, 0]) if k in skel else None
    g = Gallery.create(tmp_path / "g", fake_embedder_info(dim=DIM))
    g.add_video(VideoRecord("/videos/v.mp4", "hash-v", "cam1", fps=25.0, num_frames=100, width=64, height=64,
                            stats={}), tracks)
    ids, _ = g.vectors()  # ids follow insertion order
    names = dict(zip(ids.tolist(), "ABCD", strict=True))
    yield g, names
    g.close()


Q_APP, Q_SKEL = _unit([1, 0, 0, 0, 0, 0, 0, 0]), _unit([1, 0, 0, 0])


def _order(hits, names) -> list[str]:
    return [names[h.tracklet_id] for h in hits]


def test_weight_flips_the_order(gallery) -> None:
    g, names = gallery
    appearance = g.search(Q_APP[None], k=4)[0]
    assert _order(appearance, names) == ["A", "C", "B", "D"]
    low = search_fused(g, Q_APP, Q_SKEL, k=4, weight=0.1)
    assert _order(low, names) == ["A", "C", "B", "D"]  # 0.81 > 0.75 > 0.64 > 0.1
    high = search_fused(g, Q_APP, Q_SKEL, k=4, weight=0.5)
    assert _order(high, names) == ["B", "C", "A", "D"]  # 0.8 > 0.75 > 0.45 > 0.1: A and B swap
    scores = {names[h.tracklet_id]: h.score for h in high}
    assert scores["B"] == pytest.approx(0.5 * 0.6 + 0.5 * 1.0, abs=1e-5)
    assert scores["A"] == pytest.approx(0.5 * 0.9 + 0.5 * 0.0, abs=1e-5)
    assert [h.rank for h in high] == [1, 2, 3, 4]
    assert all(high[i].score >= high[i + 1].score for i in range(3))


def test_candidate_without_skeleton_keeps_its_appearance_score(gallery) -> None:
    g, names = gallery
    for w in (0.0, 0.3, 0.7, 1.0):
        hits = {names[h.tracklet_id]: h.score for h in search_fused(g, Q_APP, Q_SKEL, k=4, weight=w)}
        assert hits["C"] == pytest.approx(0.75, abs=1e-5), w
    full = search_fused(g, Q_APP, Q_SKEL, k=4, weight=1.0)
    assert _order(full, names) == ["B", "C", "D", "A"]  # pure skeleton, C at its appearance score


def test_skeleton_mode_ranks_only_tracklets_with_skeletons(gallery) -> None:
    g, names = gallery
    hits = search_fused(g, Q_APP, Q_SKEL, k=10, mode="skeleton")
    assert _order(hits, names) == ["B", "D", "A"]
    assert [round(h.score, 4) for h in hits] == [1.0, 0.1, 0.0]


def test_gallery_without_skeleton_vectors_is_a_clear_error(tmp_path: Path) -> None:
    vecs = np.stack([_unit([1, 0, 0, 0, 0, 0, 0, 0])])
    with Gallery.create(tmp_path / "g", fake_embedder_info(dim=DIM)) as g:
        g.add_video(VideoRecord("/videos/v.mp4", "h", "cam1", fps=25.0, num_frames=10, width=8, height=8,
                                stats={}), make_tracklets(vecs))
        with pytest.raises(GalleryError, match="no skeleton vectors"):
            search_fused(g, Q_APP, Q_SKEL, mode="fused")
