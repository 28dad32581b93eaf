"""A gallery written by csip-reid 0.1 (before the one-way layout) opens, searches and grows.

The fixture ``tests/fixtures/gallery_v0_1`` was made by ``tests/fixtures/make_legacy_gallery.sh``:
two real videos indexed with OSNet (512-d), one tracklet each, and one video that failed. It is
always copied first: opening a gallery may write index files, and the fixture must stay as the
old code left it.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from csip_reid.core.tracklet import Tracklet
from csip_reid.gallery import Gallery, GalleryRecord, VideoRecord
from csip_reid.gallery.schema import SCHEMA_VERSION

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "gallery_v0_1"
FINGERPRINT = "33ae294ac1fd2170"
DIM = 512
INDEX_FILE = "index-00000003-e080c633.faiss"
#: (video path, file name, camera, track id, stored sample stride) of the two indexed videos.
VIDEOS = [
    ("/tmp/legacy_in/cam1/tfjs_pose_1.mp4", "tfjs_pose_1.mp4", "cam1", 1, 8),
    ("/tmp/legacy_in/cam2/intel_part.mp4", "intel_part.mp4", "cam2", 2, 16),
]
HASHES = ["1d5c3880da6137952716e6396b6b8d8d0acf50890bb14d32b122ebb4a0f44c5b",
          "f1104b98b19e15085b393b562f7f71458dd68f6739ec16fa0dc1a206aa9589c7"]
#: Tables and indexes the migration to schema 2 adds.
NEW_OBJECTS = {"identities", "identity_members", "members_by_identity", "labels", "labels_by_a", "resume_points"}
FAILED = ("/tmp/legacy_in/cam2/broken.mp4", "cannot open video /tmp/legacy_in/cam2/broken.mp4: file is empty")


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    """A private copy of the legacy gallery."""
    assert (FIXTURE / "manifest.json").is_file(), f"fixture missing: {FIXTURE}"
    root = tmp_path / "legacy"
    shutil.copytree(FIXTURE, root)
    return root


def _schema(db_path: Path) -> set[tuple[str, str, str]]:
    """``(type, name, sql)`` of every table and index of a SQLite file."""
    db = sqlite3.connect(db_path)
    try:
        rows = db.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").fetchall()
    finally:
        db.close()
    return {(t, n, " ".join((s or "").split())) for t, n, s in rows}


def _new_tracklet(vec: np.ndarray) -> Tracklet:
    frames = np.arange(12) * 3
    rng = np.random.default_rng(5)
    return Tracklet(video="/tmp/legacy_in/cam3/new.mp4", camera="cam3", track_id=7, frames=frames,
                    timestamps=frames / 30.0, boxes=rng.uniform(0, 300, (12, 4)), scores=rng.uniform(0.5, 1, 12),
                    sample_frames=frames[::4], embedding=vec, sample_stride=4,
                    thumbnail=rng.integers(0, 255, (64, 32, 3), dtype=np.uint8))


def test_legacy_gallery_reads(legacy: Path) -> None:
    with Gallery.open(legacy) as g:
        assert g.fingerprint == FINGERPRINT and g.dim == DIM
        assert g.manifest["fingerprint"] == FINGERPRINT and g.manifest["schema_version"] == 1
        assert g.embedder["spec"] == "onnx:osnet_x0_25_msmt17" and g.embedder["dim"] == DIM
        assert len(g) == 2 and g.index.ntotal == 2 and g.index.kind == "flat"

        recs = list(g.iter_tracklets())
        assert all(isinstance(r, GalleryRecord) for r in recs)
        assert [(r.video, r.video_name, r.camera, r.track_id) for r in recs] == [v[:4] for v in VIDEOS]
        for rec, (_, _, _, _, stride) in zip(recs, VIDEOS, strict=True):
            assert rec.embedding.dtype == np.float32 and rec.embedding.shape == (DIM,)
            assert np.linalg.norm(rec.embedding) == pytest.approx(1.0, abs=1e-5)
            assert rec.extra == {"sample_stride": stride}
            assert len(rec.frames) == len(rec.timestamps) == len(rec.boxes) == rec.num_frames > 0
            assert rec.boxes.shape == (rec.num_frames, 4) and len(rec.sample_frames) > 0
            assert rec.skeleton is None and rec.vectors == {}
            assert rec.thumbnail and Path(rec.thumbnail).is_file() and Path(rec.thumbnail).is_relative_to(legacy)
            t = rec.to_tracklet()
            assert (t.gallery_id, t.sample_stride, t.camera, t.video) == (rec.id, stride, rec.camera, rec.video)
            assert t.skeleton_embedding is None
            np.testing.assert_array_equal(t.embedding, rec.embedding)
            again = g.get_tracklet(rec.id)
            np.testing.assert_array_equal(again.embedding, rec.embedding)

            hits = g.search(rec.embedding, k=2)[0]
            assert len(hits) == 2
            top = hits[0]
            assert (top.rank, top.tracklet_id, top.video_name, top.camera) == (1, rec.id, rec.video_name, rec.camera)
            assert top.score == pytest.approx(1.0, abs=1e-4) and hits[1].score < 0.99
            assert g.search(rec.embedding, k=2, exclude_video=rec.video_name)[0][0].tracklet_id != rec.id

        ids, vecs = g.vectors()
        assert ids.tolist() == [r.id for r in recs] and vecs.shape == (2, DIM)
        assert g.vectors("skeleton")[0].shape == (0,)
        assert all(g.is_indexed(h) for h in HASHES) and not g.is_indexed(HASHES[0], "another-fingerprint")
        stored = g.indexed_videos()
        assert [v.path for v in stored] == [v[0] for v in VIDEOS]
        assert [v.content_hash for v in stored] == HASHES and stored[0].stats["tracks"] == 1

        info = g.info()
        assert (info["num_videos"], info["num_tracklets"], info["num_failed"]) == (2, 2, 1)
        assert info["fingerprint"] == FINGERPRINT and info["dim"] == DIM and info["schema_version"] == 1
        assert info["format"] == "csip-reid/gallery" and info["embedder"]["spec"] == "onnx:osnet_x0_25_msmt17"
        assert info["index"]["kind"] == "flat" and info["index"]["ntotal"] == 2 and info["size_bytes"] > 0
        assert [(v["path"], v["name"], v["camera"], v["tracklets"], v["content_hash"]) for v in info["videos"]] \
            == [(p, n, c, 1, h) for (p, n, c, _, _), h in zip(VIDEOS, HASHES, strict=True)]
        assert [(f["path"], f["error"]) for f in info["failed"]] == [FAILED]
        # Read-only use leaves the schema as it is: the new column and tables read as empty.
        assert [v.start_time for v in g.videos()] == [None, None, None]
        assert [(v.name, v.status, v.tracklets) for v in g.videos()] == \
            [("tfjs_pose_1.mp4", "indexed", 1), ("broken.mp4", "failed", 0), ("intel_part.mp4", "indexed", 1)]
        assert not g.identities.available and all(r.start_time is None for r in recs)
    db = sqlite3.connect(legacy / "gallery.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    db.close()
    # The old index file was loaded as it is, not rebuilt (a rebuild saves a new file).
    sidecar = json.loads((legacy / "index.json").read_text())
    assert sidecar["file"] == INDEX_FILE and sorted(p.name for p in legacy.glob("index-*")) == [INDEX_FILE]
    assert json.loads((legacy / "manifest.json").read_text())["fingerprint"] == FINGERPRINT


def test_legacy_gallery_grows_and_reopens(legacy: Path, tmp_path: Path) -> None:
    pristine = tmp_path / "pristine"
    shutil.copytree(FIXTURE, pristine)
    old_manifest = json.loads((legacy / "manifest.json").read_text())
    with Gallery.open(legacy) as g:
        old = {r.id: r.embedding for r in g.iter_tracklets()}
    vec = np.random.default_rng(11).standard_normal(DIM).astype(np.float32)
    vec /= np.linalg.norm(vec)
    with Gallery.open_or_create(legacy, {**old_manifest["embedder"], "fingerprint": FINGERPRINT}) as g:
        video_id = g.add_video(VideoRecord("/tmp/legacy_in/cam3/new.mp4", "hash-new", "cam3", fps=30.0,
                                           num_frames=40, width=640, height=480, stats={"tracks": 1}),
                                           [_new_tracklet(vec)])
        assert len(g) == 3 and video_id == 4

    with Gallery.open(legacy) as g:
        assert len(g) == 3 and g.index.ntotal == 3
        info = g.info()
        assert (info["num_videos"], info["num_tracklets"], info["num_failed"]) == (3, 3, 1)
        assert [(f["path"], f["error"]) for f in info["failed"]] == [FAILED]
        assert [v["camera"] for v in info["videos"]] == ["cam1", "cam2", "cam3"]
        top = g.search(vec, k=3)[0][0]
        assert (top.video_name, top.camera, top.track_id) == ("new.mp4", "cam3", 7)
        assert top.score == pytest.approx(1.0, abs=1e-5) and Path(top.thumbnail).is_file()
        for tid, emb in old.items():
            hit = g.search(emb, k=1)[0][0]
            assert hit.tracklet_id == tid and hit.score == pytest.approx(1.0, abs=1e-4)
        new = g.get_tracklet(top.tracklet_id)
        assert new.extra == {"sample_stride": 4} and new.to_tracklet().sample_stride == 4
        assert g.is_indexed("hash-new") and all(g.is_indexed(h) for h in HASHES)

    # The first writer migrated it to schema 3: every old table and column as it was, plus
    # videos.start_time, the identity tables and resume_points; the manifest says so and is otherwise unchanged.
    manifest = json.loads((legacy / "manifest.json").read_text())
    assert set(manifest) == set(old_manifest) and manifest["schema_version"] == SCHEMA_VERSION == 3
    assert {k: v for k, v in manifest.items() if k not in ("updated", "schema_version")} == \
        {k: v for k, v in old_manifest.items() if k not in ("updated", "schema_version")}
    old_schema, new_schema = _schema(pristine / "gallery.db"), _schema(legacy / "gallery.db")
    assert {n for _, n, _ in new_schema} - {n for _, n, _ in old_schema} == NEW_OBJECTS
    assert {x for x in old_schema if x[1] != "videos"} <= new_schema
    db = sqlite3.connect(legacy / "gallery.db")
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 3
        assert [r[0] for r in db.execute("SELECT start_time FROM videos ORDER BY id")] == [None] * 4
        assert [r[0] for r in db.execute("SELECT extra_json FROM tracklets ORDER BY id")] == \
            ['{"sample_stride": 8}', '{"sample_stride": 16}', '{"sample_stride": 4}']
    finally:
        db.close()
    assert set(json.loads((legacy / "index.json").read_text())) == set(json.loads((pristine / "index.json").read_text()))


def test_new_galleries_have_the_migrated_format(tmp_path: Path) -> None:
    """A gallery created now has the manifest keys of the 0.1 gallery and the tables of a migrated one."""
    old_manifest = json.loads((FIXTURE / "manifest.json").read_text())
    info = {**old_manifest["embedder"], "fingerprint": FINGERPRINT}
    vec = np.random.default_rng(12).standard_normal(DIM).astype(np.float32)
    with Gallery.create(tmp_path / "new", info) as g:
        g.add_video(VideoRecord("/tmp/x/new.mp4", "h", "cam3", 30.0, 40, 640, 480), [_new_tracklet(vec)])
    pristine = tmp_path / "pristine"
    shutil.copytree(FIXTURE, pristine)
    manifest = json.loads((tmp_path / "new" / "manifest.json").read_text())
    assert set(manifest) == set(old_manifest)
    assert (manifest["format"], manifest["schema_version"], manifest["fingerprint"], manifest["dim"]) == \
        (old_manifest["format"], SCHEMA_VERSION, FINGERPRINT, DIM)
    assert manifest["index_policy"] == old_manifest["index_policy"]
    with Gallery.open(pristine) as g:  # migrate a copy of the 0.1 gallery with a harmless write
        g.set_video_time(1, None)
    assert {(t, n) for t, n, _ in _schema(tmp_path / "new" / "gallery.db")} == \
        {(t, n) for t, n, _ in _schema(pristine / "gallery.db")}
    assert set(json.loads((tmp_path / "new" / "index.json").read_text())) == \
        set(json.loads((pristine / "index.json").read_text()))
