"""The gallery's typed records: a VideoRecord goes in, StoredVideo / VideoRecord / Hit.video_id come out."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from csip_reid.core.errors import GalleryError
from csip_reid.gallery import Gallery, StoredVideo, VideoRecord
from csip_reid.gallery.merge import merge_galleries
from tests.helpers.gallery import fake_embedder_info, make_tracklets, unit_vectors

INFO = fake_embedder_info()


def _record(name: str, **kw) -> VideoRecord:
    return VideoRecord(f"/videos/{name}", f"hash-{name}", "cam2", fps=20.0, num_frames=400, width=320, height=240,
                       stats={"frames_read": 400}, **kw)


def test_video_record_round_trip(empty_gallery: Gallery) -> None:
    gallery = empty_gallery
    rec = _record("a.mp4", start_time="2024-05-01T10:00:00+02:00")
    vid = gallery.add_video(rec, make_tracklets(unit_vectors(3)))
    (back,) = gallery.indexed_videos()
    assert back == dataclasses.replace(rec, start_time="2024-05-01T08:00:00+00:00")  # stored as UTC
    stored = gallery.video(vid)
    assert isinstance(stored, StoredVideo) and stored == gallery.video("a.mp4") == gallery.video("/videos/a.mp4")
    assert (stored.id, stored.status, stored.error, stored.tracklets) == (vid, "indexed", None, 3)
    assert (stored.first_s, stored.last_s) == (0.0, 28 / 25.0)  # make_tracklets: frames 0.. and ..28
    assert stored.duration_s == 20.0 and stored.end_time == "2024-05-01T08:00:20+00:00"
    assert stored.record() == back


def test_failed_video_and_missing_ones(empty_gallery: Gallery) -> None:
    gallery = empty_gallery
    gallery.add_video(_record("a.mp4"), make_tracklets(unit_vectors(2)))
    gallery.mark_failed("/videos/b.mp4", "cannot decode")
    videos = gallery.videos()
    assert [(v.name, v.status, v.tracklets, v.error) for v in videos] == \
        [("a.mp4", "indexed", 2, None), ("b.mp4", "failed", 0, "cannot decode")]
    assert videos[1].first_s is None and videos[1].duration_s is None and videos[1].end_time is None
    assert [v.path for v in gallery.indexed_videos()] == ["/videos/a.mp4"]
    with pytest.raises(GalleryError, match="no video 'c.mp4' in gallery"):
        gallery.video("c.mp4")
    with pytest.raises(GalleryError, match="no video '99'"):
        gallery.tracklet_ids(99)


def test_hits_carry_their_video_id(empty_gallery: Gallery) -> None:
    gallery = empty_gallery
    vecs = unit_vectors(6)
    first = gallery.add_video(_record("a.mp4"), make_tracklets(vecs[:3]))
    second = gallery.add_video(_record("b.mp4"), make_tracklets(vecs[3:]))
    hits = gallery.search(vecs, k=1)
    assert [h[0].video_id for h in hits] == [first] * 3 + [second] * 3
    assert [h[0].tracklet_id for h in hits] == gallery.tracklet_ids(first) + gallery.tracklet_ids(second)
    assert "video_id" not in hits[0][0].to_dict()  # `reid query --json` keeps its keys


def test_tracklets_of_a_video_by_time_and_thumbnails(empty_gallery: Gallery) -> None:
    gallery = empty_gallery
    tracklets = make_tracklets(unit_vectors(4))
    tracklets[0].frames = tracklets[0].frames + 500  # starts last
    tracklets[0].timestamps = tracklets[0].frames / 25.0
    vid = gallery.add_video(_record("a.mp4"), tracklets)
    ids = gallery.tracklet_ids(vid)
    assert [gallery.get_tracklet(i).track_id for i in ids] == [2, 3, 4, 1]
    thumb = gallery.thumbnail(ids[0])
    assert thumb is not None and thumb.is_file() and str(thumb) == gallery.get_tracklet(ids[0]).thumbnail
    assert gallery.thumbnail(10_000) is None


def test_take_writer_holds_the_lock(tmp_path: Path) -> None:
    with Gallery.create(tmp_path / "g", INFO) as g:
        g.take_writer()
        assert g.lock.held
        with Gallery.open(tmp_path / "g", lock_timeout=0.2) as other:
            assert len(other) == 0  # readers are never kept out
            with pytest.raises(GalleryError, match="another process|being written|lock"):
                other.add_video(_record("a.mp4"), make_tracklets(unit_vectors(1)))


def test_merge_hands_video_records_over(tmp_path: Path) -> None:
    with Gallery.create(tmp_path / "src", INFO) as src:
        src.add_video(_record("a.mp4", start_time="2024-05-01T08:00:00"), make_tracklets(unit_vectors(2)))
        expected = src.indexed_videos()
    out = merge_galleries(tmp_path / "dst", [tmp_path / "src"], progress=False)
    assert (out["videos_added"], out["tracklets_added"]) == (1, 2)
    with Gallery.open(tmp_path / "dst") as dst:
        assert dst.indexed_videos() == expected and dst.video("a.mp4").tracklets == 2
