"""Merging galleries built on different machines (`reid gallery merge`)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from click.testing import CliRunner

from csip_reid.cli import main
from csip_reid.core.errors import GalleryError
from csip_reid.gallery import Gallery
from csip_reid.gallery.merge import merge_galleries
from tests.helpers.gallery import add_video, fake_embedder_info, unit_vectors


@pytest.fixture()
def shards(tmp_path):
    a = Gallery.create(tmp_path / "a", fake_embedder_info())
    b = Gallery.create(tmp_path / "b", fake_embedder_info())
    va, vb = unit_vectors(6, seed=1), unit_vectors(4, seed=2)
    add_video(a, "cam1.mp4", va[:3], content_hash="h1", skeleton=True)
    add_video(a, "cam2.mp4", va[3:], content_hash="h2")
    add_video(b, "cam3.mp4", vb, content_hash="h3")
    add_video(b, "cam1-copy.mp4", va[:3], content_hash="h1")  # the same footage indexed twice
    a.close()
    b.close()
    return tmp_path, va, vb


def test_merge_copies_everything_once(shards):
    root, va, vb = shards
    s = merge_galleries(root / "all", [root / "a", root / "b"], progress=False)
    assert (s["videos_added"], s["tracklets_added"], s["videos_skipped"]) == (3, 10, 1)
    with Gallery.open(root / "all") as g:
        assert len(g) == 10 and g.index.ntotal == 10
        hit = g.search(vb[2], k=1)[0][0]
        assert hit.video_name == "cam3.mp4" and hit.score == pytest.approx(1.0, abs=1e-5)
        ids, skel = g.vectors("skeleton")
        assert len(ids) == 3  # the skeleton space of cam1.mp4 came along
        recs = list(g.iter_tracklets())
        assert all(r.thumbnail and os.path.isfile(r.thumbnail) for r in recs)
        src = {r.track_id: r for r in Gallery.open(root / "a").iter_tracklets(video="cam1.mp4")}
        for r in g.iter_tracklets(video="cam1.mp4"):
            np.testing.assert_array_equal(r.boxes, src[r.track_id].boxes)
            np.testing.assert_array_equal(r.skeleton, src[r.track_id].skeleton)
            assert "gallery_id" not in r.extra
    again = merge_galleries(root / "all", [root / "a", root / "b"], progress=False)
    assert (again["videos_added"], again["videos_skipped"]) == (0, 4)


def test_merge_refuses_other_embedder_before_copying(shards, tmp_path):
    root, *_ = shards
    other = Gallery.create(tmp_path / "other", fake_embedder_info(dim=16, fingerprint="fp-b"))
    other.close()
    with pytest.raises(GalleryError, match="was built with embedder"):
        merge_galleries(root / "dst", [root / "a", tmp_path / "other"], progress=False)
    with Gallery.open(root / "dst") as g:
        assert len(g) == 0


def test_same_path_other_content_is_a_conflict(tmp_path):
    a = Gallery.create(tmp_path / "a", fake_embedder_info())
    b = Gallery.create(tmp_path / "b", fake_embedder_info())
    add_video(a, "x.mp4", unit_vectors(2, seed=3), content_hash="one")
    add_video(b, "x.mp4", unit_vectors(3, seed=4), content_hash="two")
    a.close()
    b.close()
    r = CliRunner().invoke(main, ["gallery", "merge", str(tmp_path / "a"), str(tmp_path / "b"), "--gallery",
                                  str(tmp_path / "dst"), "-q"])
    assert r.exit_code == 0, r.output
    assert "merged 1 videos (2 tracklets); 0 already present" in r.output
    assert "conflict, not merged: /videos/x.mp4 is in the gallery with other content" in r.output
    with Gallery.open(tmp_path / "dst") as g:
        assert len(g) == 2
