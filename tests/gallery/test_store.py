"""Gallery storage: add/search round trip, reopen, replace, remove, failures, errors."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest

from csip_reid.core.errors import GalleryError
from csip_reid.gallery import Gallery, IndexPolicy, VideoRecord
from tests.helpers.gallery import DIM, POLICIES, add_video, fake_embedder_info, make_tracklets, unit_vectors

INFO = fake_embedder_info()


@pytest.fixture
def gallery(tmp_path: Path):
    g = Gallery.create(tmp_path / "g", INFO)
    yield g
    g.close()


@pytest.mark.parametrize("kind", sorted(POLICIES))
def test_stored_vector_comes_back_first(tmp_path: Path, kind: str) -> None:
    vecs = unit_vectors(300)
    with Gallery.create(tmp_path / "g", INFO, policy=POLICIES[kind]) as g:
        add_video(g, "a.mp4", vecs[:150])
        add_video(g, "b.mp4", vecs[150:])
        assert g.index.kind == kind
        results = g.search(vecs[[5, 160]], k=5)
    assert [len(r) for r in results] == [5, 5]
    for res, want_video, want_track in zip(results, ("a.mp4", "b.mp4"), (6, 11), strict=True):
        top = res[0]
        assert top.rank == 1 and top.score == pytest.approx(1.0, abs=1e-5)
        assert top.video_name == want_video and top.track_id == want_track
        assert [h.rank for h in res] == [1, 2, 3, 4, 5]
        assert all(a.score >= b.score for a, b in zip(res, res[1:], strict=False))


def test_empty_gallery(gallery: Gallery) -> None:
    assert gallery.search(unit_vectors(2), k=5) == [[], []]
    assert len(gallery) == 0 and list(gallery.iter_tracklets()) == []
    assert gallery.vectors()[1].shape == (0, DIM) and gallery.vectors("skeleton")[0].shape == (0,)


def test_hit_fields_and_dict(gallery: Gallery) -> None:
    vecs = unit_vectors(4)
    add_video(gallery, "cam_a.mp4", vecs)
    hit = gallery.search(vecs[2] * 3.0, k=1)[0][0]  # unnormalised queries are normalised
    assert hit.video == "/videos/cam_a.mp4" and hit.camera == "cam1" and hit.track_id == 3
    assert (hit.start_frame, hit.end_frame) == (20, 20 + 2 * (3 + 2 % 4 - 1))
    assert hit.start_s == pytest.approx(20 / 25.0)
    assert Path(hit.thumbnail).is_absolute() and Path(hit.thumbnail).is_file()
    d = hit.to_dict()
    assert set(d) == {"rank", "score", "video", "camera", "track_id", "start_frame", "end_frame",
                      "start_s", "end_s", "start_time", "end_time", "thumbnail", "tracklet_id"}
    assert (d["start_time"], d["end_time"]) == (None, None)  # start of the video unknown
    json.dumps(d)
    gallery.set_video_time("cam_a.mp4", "2024-05-01T10:00:00+02:00")
    hit = gallery.search(vecs[2], k=1)[0][0]
    assert hit.start_time == "2024-05-01T08:00:00.800+00:00"
    assert gallery.get_tracklet(hit.tracklet_id).end_time == hit.end_time > hit.start_time
    assert [v.start_time for v in gallery.videos()] == ["2024-05-01T08:00:00+00:00"]


def test_record_round_trip(gallery: Gallery) -> None:
    vecs = unit_vectors(3)
    tracklets = make_tracklets(vecs * 2.0, video="x.mp4", skeleton=True, thumb_height=300)
    gallery.add_video(VideoRecord("/videos/x.mp4", "h", "cam9", 25.0, 100, 640, 480, {}), tracklets)
    recs = list(gallery.iter_tracklets())
    assert [r.track_id for r in recs] == [1, 2, 3]
    for rec, t, v in zip(recs, tracklets, vecs, strict=True):
        np.testing.assert_array_equal(rec.frames, t.frames)
        np.testing.assert_array_equal(rec.timestamps, t.timestamps)
        np.testing.assert_array_equal(rec.boxes, t.boxes)
        np.testing.assert_array_equal(rec.scores, t.scores)
        np.testing.assert_array_equal(rec.sample_frames, t.sample_frames)
        np.testing.assert_array_equal(rec.skeleton, t.skeleton)
        np.testing.assert_allclose(rec.embedding, v, atol=1e-6)  # stored L2-normalised
        np.testing.assert_array_equal(rec.vectors["skeleton"], t.skeleton_embedding)
        assert rec.skeleton_format == "coco17-2d-conf"
        assert rec.extra == {"sample_stride": t.sample_stride}  # what extra_json stores
        thumb = cv2.imread(rec.thumbnail)
        assert thumb is not None and thumb.shape[0] == 256  # 300-px thumbnails are scaled down
    assert [t.sample_stride for t in tracklets] == [2, 3, 4]  # distinct, so a mix-up would show
    back = gallery.get_tracklet(recs[1].id).to_tracklet()
    assert back.track_id == 2 and len(back) == len(tracklets[1])
    assert back.gallery_id == recs[1].id and back.sample_stride == tracklets[1].sample_stride == 3
    np.testing.assert_array_equal(back.skeleton_embedding, tracklets[1].skeleton_embedding)
    np.testing.assert_allclose(back.embedding, vecs[1], atol=1e-6)
    np.testing.assert_array_equal(back.skeleton, tracklets[1].skeleton)
    assert (back.camera, back.video, back.skeleton_format) == ("cam1", "/videos/x.mp4", "coco17-2d-conf")
    ids, skel = gallery.vectors("skeleton")
    assert ids.tolist() == [r.id for r in recs] and skel.shape == (3, 16)
    ids, app = gallery.vectors()
    assert app.shape == (3, DIM)
    with pytest.raises(GalleryError, match="no tracklet"):
        gallery.get_tracklet(999)


def test_typed_fields_without_skeleton_and_legacy_extra(gallery: Gallery) -> None:
    vecs = unit_vectors(2)
    tracklets = make_tracklets(vecs)
    tracklets[0].sample_stride = 1  # the default stride
    gallery.add_video(VideoRecord("/videos/y.mp4", "h", "c", 25.0, 100, 640, 480, {}), tracklets)
    recs = list(gallery.iter_tracklets())
    assert [r.extra for r in recs] == [{"sample_stride": 1}, {"sample_stride": 3}]
    assert recs[0].vectors == {} and gallery.vectors("skeleton")[0].shape == (0,)
    back = [r.to_tracklet() for r in recs]
    assert [b.sample_stride for b in back] == [1, 3]
    assert [b.gallery_id for b in back] == [r.id for r in recs]
    assert all(b.skeleton_embedding is None and b.skeleton is None for b in back)
    # extra_json of older galleries: other keys are kept in ``extra``; a missing or unusable
    # stride reads as 1.
    for extra, stride in [({}, 1), ({"num_detections": 7, "quality": 0.5}, 1), ({"sample_stride": 8}, 8),
                          ({"sample_stride": "8"}, 1), ({"sample_stride": 0}, 1), ({"sample_stride": 4.0}, 4)]:
        assert dataclasses.replace(recs[0], extra=extra).to_tracklet().sample_stride == stride, extra
    with sqlite3.connect(gallery.root / "gallery.db") as db:  # as an older csip-reid wrote it
        db.execute("UPDATE tracklets SET extra_json = ? WHERE id = ?", ('{"num_detections": 7, "quality": 0.5}',
                                                                        recs[0].id))
    legacy = gallery.get_tracklet(recs[0].id)
    assert legacy.extra == {"num_detections": 7, "quality": 0.5} and legacy.to_tracklet().sample_stride == 1


def test_stats_keep_their_json_part(gallery: Gallery) -> None:
    stats = {"detections": np.int64(12), "seconds": np.float32(0.5), "quality": 0.5, "not_json": object(),
             "array": np.zeros(3)}
    gallery.add_video(VideoRecord("/videos/s.mp4", "hs", "c", 25.0, 100, 640, 480, stats),
                                  make_tracklets(unit_vectors(1)))
    (video,) = gallery.indexed_videos()
    assert video.stats == {"detections": 12, "seconds": 0.5, "quality": 0.5}
    assert type(video.stats["detections"]) is int
    assert video == VideoRecord("/videos/s.mp4", "hs", "c", 25.0, 100, 640, 480, video.stats)
    assert gallery.indexed_hash_at("/videos/s.mp4") == "hs" and gallery.indexed_hash_at("/videos/t.mp4") is None


def test_incremental_add_across_reopen(tmp_path: Path) -> None:
    vecs = unit_vectors(90)
    with Gallery.create(tmp_path / "g", INFO) as g:
        add_video(g, "a.mp4", vecs[:30])
        add_video(g, "b.mp4", vecs[30:60])
    with Gallery.open(tmp_path / "g") as g:
        assert len(g) == 60 and g.index.ntotal == 60
        add_video(g, "c.mp4", vecs[60:])
    with Gallery.open_or_create(tmp_path / "g", INFO) as g:
        assert len(g) == 90 and g.index.ntotal == 90
        tops = [r[0] for r in g.search(vecs, k=1)]
        assert [h.video_name for h in tops] == ["a.mp4"] * 30 + ["b.mp4"] * 30 + ["c.mp4"] * 30
        assert g.info()["num_videos"] == 3


def test_is_indexed(gallery: Gallery) -> None:
    add_video(gallery, "a.mp4", unit_vectors(2), content_hash="abc")
    gallery.mark_failed("/videos/bad.mp4", "decode error", content_hash="bad")
    assert gallery.is_indexed("abc")
    assert gallery.is_indexed("abc", gallery.fingerprint)
    assert not gallery.is_indexed("abc", "another-fingerprint")
    assert not gallery.is_indexed("zzz")
    assert not gallery.is_indexed("bad")


def test_readding_a_path_replaces_it(gallery: Gallery) -> None:
    vecs = unit_vectors(30)
    add_video(gallery, "a.mp4", vecs[:20], content_hash="old")
    old_thumbs = {Path(r.thumbnail).parent for r in gallery.iter_tracklets()}
    add_video(gallery, "a.mp4", vecs[20:], content_hash="new")
    assert len(gallery) == 10 and gallery.index.ntotal == 10
    assert not gallery.is_indexed("old") and gallery.is_indexed("new")
    assert not any(p.exists() for p in old_thumbs)
    assert gallery.search(vecs[3], k=1)[0][0].score < 0.99  # the old vectors are gone
    assert gallery.info()["videos"][0]["tracklets"] == 10


def test_remove_video(gallery: Gallery) -> None:
    vecs = unit_vectors(30)
    vid = add_video(gallery, "a.mp4", vecs[:10])
    add_video(gallery, "b.mp4", vecs[10:20])
    add_video(gallery, "c.mp4", vecs[20:])
    assert gallery.remove_video("a.mp4") == 10  # by file name
    assert gallery.remove_video("/videos/b.mp4") == 10  # by path
    with pytest.raises(GalleryError, match="no video"):
        gallery.remove_video(vid)  # by id, already gone
    assert len(gallery) == 10 and gallery.index.ntotal == 10
    assert {h.video_name for h in gallery.search(vecs, k=1)[0]} == {"c.mp4"}
    assert len(list((gallery.root / "thumbs").iterdir())) == 1


def test_remove_ambiguous_name(gallery: Gallery) -> None:
    vecs = unit_vectors(2)
    for folder in ("day1", "day2"):
        gallery.add_video(VideoRecord(f"/cases/{folder}/cam.mp4", folder, "c", 25, 10, 64, 64),
                                      make_tracklets(vecs[:1]))
    with pytest.raises(GalleryError, match="2 videos are named 'cam.mp4'"):
        gallery.remove_video("cam.mp4")
    assert gallery.remove_video("/cases/day2/cam.mp4") == 1


def test_exclude_video(gallery: Gallery) -> None:
    vecs = unit_vectors(40)
    add_video(gallery, "a.mp4", vecs[:20])
    add_video(gallery, "b.mp4", vecs[20:])
    hits = gallery.search(vecs[0], k=10, exclude_video="a.mp4")[0]
    assert len(hits) == 10 and {h.video_name for h in hits} == {"b.mp4"}
    assert gallery.search(vecs[0], k=1, exclude_video="/not/in/gallery.mp4")[0][0].score == pytest.approx(1.0)
    # Another folder's a.mp4 is not the gallery's a.mp4.
    assert gallery.search(vecs[0], k=1, exclude_video="/elsewhere/a.mp4")[0][0].video_name == "a.mp4"
    with pytest.raises(GalleryError, match="no video"):
        gallery.remove_video("/elsewhere/a.mp4")


def test_failed_videos_listed_then_cleared(gallery: Gallery) -> None:
    gallery.mark_failed("/videos/a.mp4", "cannot decode frame 12")
    info = gallery.info()
    assert info["num_failed"] == 1 and info["failed"][0]["error"] == "cannot decode frame 12"
    add_video(gallery, "a.mp4", unit_vectors(3))
    info = gallery.info()
    assert (info["num_failed"], info["num_videos"], info["num_tracklets"]) == (0, 1, 3)


def test_info(gallery: Gallery) -> None:
    add_video(gallery, "a.mp4", unit_vectors(5))
    info = gallery.info()
    assert info["dim"] == DIM and info["fingerprint"] == INFO["fingerprint"]
    assert info["embedder"]["spec"] == "fake:a"
    assert info["index"]["kind"] == "flat" and info["index"]["ntotal"] == 5
    assert info["size_bytes"] > 0
    assert info["videos"] == [{"id": 1, "path": "/videos/a.mp4", "name": "a.mp4", "camera": "cam1",
                               "tracklets": 5, "indexed_at": info["videos"][0]["indexed_at"],
                               "content_hash": "hash-a.mp4"}]


def test_incompatible_embedder_refused(tmp_path: Path) -> None:
    Gallery.create(tmp_path / "g", INFO).close()
    other = fake_embedder_info(dim=2048, fingerprint="fp-b", spec="csip:best.pt")
    with pytest.raises(GalleryError) as err:
        Gallery.open_or_create(tmp_path / "g", other)
    msg = str(err.value)
    assert "fake:a (dim 32" in msg and "csip:best.pt (dim 2048" in msg and "--gallery" in msg
    same_dim = fake_embedder_info(fingerprint="fp-other-weights")
    with Gallery.open(tmp_path / "g") as g, pytest.raises(GalleryError, match="fp-other-weights"):
        g.check_compatible(same_dim)


def test_bad_tracklets_leave_no_trace(gallery: Gallery) -> None:
    tracklets = make_tracklets(unit_vectors(3))
    tracklets[2].embedding = None
    with pytest.raises(GalleryError, match="no embedding"):
        gallery.add_video(VideoRecord("/videos/a.mp4", "h", "c", 25, 10, 64, 64), tracklets)
    tracklets[2].embedding = np.ones(DIM + 1, np.float32)
    with pytest.raises(GalleryError, match="33-d embedding"):
        gallery.add_video(VideoRecord("/videos/a.mp4", "h", "c", 25, 10, 64, 64), tracklets)
    assert len(gallery) == 0 and gallery.info()["num_videos"] == 0
    assert list((gallery.root / "thumbs").iterdir()) == []
    with pytest.raises(GalleryError, match="dim 32"):
        gallery.search(np.ones((1, 5), np.float32))


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.mkdir(), "not a csip-reid gallery"),
        (lambda p: (p.mkdir(), (p / "manifest.json").write_text("{not json")), "corrupt"),
        (lambda p: (p.mkdir(), (p / "manifest.json").write_text('{"format": "other"}')), "not a csip-reid/gallery"),
    ],
    ids=["missing", "empty-folder", "garbage-manifest", "foreign-manifest"],
)
def test_open_refuses_non_galleries(tmp_path: Path, setup, message: str) -> None:
    setup(tmp_path / "g")
    with pytest.raises(GalleryError, match=message):
        Gallery.open(tmp_path / "g")


def test_corrupt_database(tmp_path: Path) -> None:
    Gallery.create(tmp_path / "g", INFO).close()
    (tmp_path / "g" / "gallery.db").write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(GalleryError, match="cannot read gallery.db"):
        Gallery.open(tmp_path / "g")
    (tmp_path / "g" / "gallery.db").unlink()
    with pytest.raises(GalleryError, match="gallery.db is missing"):
        Gallery.open(tmp_path / "g")


def test_create_refuses_used_folders(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("case notes")
    with pytest.raises(GalleryError, match="not empty"):
        Gallery.create(tmp_path, INFO)
    Gallery.create(tmp_path / "g", INFO).close()
    with pytest.raises(GalleryError, match="already a gallery"):
        Gallery.create(tmp_path / "g", INFO)


def test_policy_is_remembered(tmp_path: Path) -> None:
    Gallery.create(tmp_path / "g", INFO, policy=IndexPolicy(exact_max=123)).close()
    with Gallery.open(tmp_path / "g") as g:
        assert g.policy.exact_max == 123


def test_failure_of_an_indexed_path_keeps_its_tracklets(gallery: Gallery) -> None:
    add_video(gallery, "a.mp4", unit_vectors(4))
    gallery.mark_failed("/videos/a.mp4", "cannot open video: no decodable frame")
    info = gallery.info()
    assert (info["num_videos"], info["num_tracklets"], info["num_failed"]) == (1, 4, 0)
    assert gallery.index.ntotal == 4


def test_report_shows_wall_clock_times(gallery: Gallery, tmp_path: Path) -> None:
    from csip_reid.gallery import write_report

    vecs = unit_vectors(2)
    add_video(gallery, "cam_w.mp4", vecs)
    gallery.set_video_time("cam_w.mp4", "2024-05-01T08:00:00")
    hits = gallery.search(vecs[0], k=2)[0]
    html = write_report(tmp_path / "r.html", {"video": "q.mp4"}, hits).read_text()
    assert f"({hits[0].start_time} – {hits[0].end_time})" in html and "2024-05-01T08:00:0" in html
