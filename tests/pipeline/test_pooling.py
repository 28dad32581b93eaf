"""Crop pooling: per-crop facts from the TrackletBuilder, which crops count, flip, and the record."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from csip_reid.core.arrays import l2_normalize
from csip_reid.core.detections import Detections
from csip_reid.core.pooling import DEFAULT_POOLING, CropPooling, as_pooling
from csip_reid.core.tracklet import Tracklet
from csip_reid.tracking.builder import TrackletBuilder, covered_share

H, W = 240, 320


def test_covered_share_counts_the_union_once() -> None:
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [0, 5, 10, 15], [100, 100, 110, 110]], np.float32)
    # box 0: its right half (box 1) and its bottom half (box 2) overlap in one quarter -> 3/4
    np.testing.assert_allclose(covered_share(boxes), [0.75, 0.5, 0.5, 0.0])
    assert covered_share(boxes[:1]).tolist() == [0.0]
    inner = np.array([[0, 0, 100, 100], [10, 10, 20, 20], [15, 15, 25, 25]], np.float32)
    assert covered_share(inner)[0] == pytest.approx(175 / 10_000)  # 100 + 100 - 25 overlap


def test_builder_records_overlap_edge_and_score_per_crop() -> None:
    b = TrackletBuilder("v.mp4", "cam", max_samples=16, min_frames=1)
    for f in range(10):
        # person 1 stands still; person 2 walks in front of it from frame 5; person 3 is cut by the left edge
        p2 = [150, 40, 190, 200] if f >= 5 else [250, 40, 290, 200]
        boxes = np.array([[140, 40, 180, 200], p2, [0, 50, 30, 210]], np.float32)
        conf = np.array([0.9, 0.8, 0.3 + 0.01 * f])
        out = b.update(f, f / 10, np.zeros((H, W, 3), np.uint8), Detections(boxes, conf, None, np.array([1, 2, 3])))
        assert out == []
    t1, t2, t3 = sorted(b.finish(), key=lambda t: t.track_id)
    assert t1.sample_overlap.dtype == np.float32 and len(t1.sample_overlap) == len(t1.crops) == 10
    np.testing.assert_allclose(t1.sample_overlap[:5], 0.0)
    np.testing.assert_allclose(t1.sample_overlap[5:], 30 / 40)  # x 150-180 of 140-180, full height
    assert not t1.sample_cut.any() and t3.sample_cut.all()
    np.testing.assert_allclose(t3.sample_scores, 0.3 + 0.01 * np.arange(10), rtol=1e-6)
    assert t2.sample_overlap[5:].min() > 0


def _tracklet(n: int = 8, **facts) -> Tracklet:
    fr = np.arange(n)
    crops = [np.full((64, 32, 3), i * 20, np.uint8) for i in range(n)]
    return Tracklet("v.mp4", "cam", 1, fr, fr / 10.0, np.tile([0, 0, 32, 64], (n, 1)), sample_frames=fr,
                    crops=crops, **facts)


def test_quality_skips_bad_crops_and_keeps_a_few() -> None:
    q = CropPooling(kind="quality", min_crops=3)
    overlap = np.array([0, 0.9, 0, 0.5, 0, 0, 0.2, 0], np.float32)
    cut = np.array([0, 0, 1, 0, 0, 0, 0, 0], bool)
    scores = np.array([0.9, 0.9, 0.9, 0.9, 0.2, 0.8, 0.9, 0.9], np.float32)
    boxes = np.tile(np.array([0, 0, 32, 100], np.float32), (8, 1))
    boxes[7, 3] = 40  # a much shorter box than the rest
    t = _tracklet(sample_overlap=overlap, sample_cut=cut, sample_scores=scores, sample_boxes=boxes)
    assert q.select(t, None).tolist() == [0, 5, 6]  # crowd 1, 3; edge 2; unsure 4; small 7 left out
    assert q.select(t, 2).tolist() == [0, 6]  # then evenly spread
    assert CropPooling().select(t, None).tolist() == list(range(8))  # mean: every crop
    # every crop bad: the best min_crops by the product of the facts, in time order
    bad = replace(t, sample_overlap=np.linspace(0.95, 0.4, 8).astype(np.float32))
    assert q.select(bad, None).tolist() == [3, 5, 6]  # 7 is least covered but short
    # no facts (a crop folder, a dataset): nothing to judge, every crop counts
    assert q.select(_tracklet(), None).tolist() == list(range(8))


def test_tracklet_rejects_facts_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="sample_overlap"):
        _tracklet(sample_overlap=np.zeros(3))


def test_pooling_names_and_records() -> None:
    assert CropPooling.parse("quality+flip") == CropPooling(kind="quality", flip=True)
    assert as_pooling(None) == DEFAULT_POOLING and as_pooling("mean").is_mean
    assert as_pooling({"kind": "quality", "unknown": 1}).kind == "quality"
    edge = CropPooling.parse("quality:edge")
    assert edge.edge and edge.max_overlap == 1.0 and edge.min_height == 0 and edge.min_score == 0
    assert edge.name == "quality:edge" and CropPooling.parse("quality+flip").name == "quality+flip"
    for bad in ("median", "mean+blur", "quality:blur", "mean:edge"):
        with pytest.raises(ValueError, match="pooling"):
            CropPooling.parse(bad)


@pytest.fixture(scope="module")
def osnet(models_dir: Path):
    from csip_reid.pipeline.embed import create_embedder

    p = models_dir / "osnet_x0_25_msmt17.onnx"
    if not p.is_file():
        pytest.skip("osnet_x0_25_msmt17.onnx missing")
    return lambda pooling: create_embedder(f"onnx:{p}", pooling=pooling)


def _person_crops(mini_mars: Path, n: int = 6) -> list[np.ndarray]:
    files = sorted((mini_mars / "bbox_test").rglob("*.jpg"))[:n]
    return [cv2.imread(str(f)) for f in files]


def test_recorded_pooling_keeps_old_fingerprints(osnet) -> None:
    mean, quality = osnet("mean"), osnet("quality")
    assert "pooling" not in mean.describe()  # what csip-reid 0.x recorded: old galleries still match
    assert quality.describe()["pooling"]["kind"] == "quality"
    assert mean.fingerprint() != quality.fingerprint()
    quality.use_recorded_pooling(mean.describe())  # a gallery without a pooling entry: plain mean
    assert quality.pooling.is_mean and quality.fingerprint() == mean.fingerprint()
    mean.use_recorded_pooling(osnet("quality+flip").describe())
    assert mean.pooling == CropPooling(kind="quality", flip=True)


def test_flip_averages_mirror_features(osnet, mini_mars: Path) -> None:
    crops = _person_crops(mini_mars)
    emb = osnet("mean+flip")
    f = l2_normalize(emb.embed_frames(crops))
    g = l2_normalize(emb.embed_frames([c[:, ::-1] for c in crops]))
    want = l2_normalize((f + g).mean(0))
    np.testing.assert_allclose(emb.embed_crops([crops])[0], want, atol=1e-5)
    plain = osnet("mean").embed_crops([crops])[0]
    assert not np.allclose(plain, want, atol=1e-3)  # mirror images do change the vector


def test_quality_pooling_ignores_a_covered_crop(osnet, mini_mars: Path) -> None:
    crops = _person_crops(mini_mars)
    stranger = np.random.default_rng(0).integers(0, 255, crops[0].shape, np.uint8)
    n = len(crops) + 1
    fr = np.arange(n)
    t = Tracklet("v.mp4", "cam", 1, fr, fr / 10.0, np.tile([0, 0, 128, 256], (n, 1)), sample_frames=fr,
                 crops=[*crops[:3], stranger, *crops[3:]],
                 sample_overlap=np.array([0, 0, 0, 0.8, 0, 0, 0], np.float32))
    clean = osnet("mean").embed_crops([crops])[0]
    quality = osnet("quality").embed_tracklets([replace(t)])[0]
    mean = osnet("mean").embed_tracklets([replace(t)])[0]
    np.testing.assert_allclose(quality, clean, atol=1e-5)
    assert float(mean @ clean) < 1 - 1e-4


def test_an_old_gallery_keeps_mean_pooling_for_new_videos(models_dir: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from csip_reid.gallery import Gallery
    from csip_reid.pipeline.embed import create_embedder
    from csip_reid.pipeline.indexer import Indexer, embedder_record
    from csip_reid.pipeline.settings import PipelineSettings

    monkeypatch.setenv("REID_WEIGHTS_DIR", str(models_dir))
    settings = PipelineSettings.load("offline_demo", detector="yolox:yolox_nano")
    old = create_embedder(settings.embedder, pooling="mean")  # what csip-reid 0.x built galleries with
    Gallery.create(tmp_path / "g", embedder_record(old, settings)).close()
    indexer = Indexer(tmp_path / "g", settings, progress=False, log=lambda m: None)
    try:
        assert indexer.pipeline.embedder.pooling.is_mean and indexer.pipeline.fingerprint == old.fingerprint()
    finally:
        indexer.gallery.close()
    fresh = Indexer(tmp_path / "new", settings, progress=False, log=lambda m: None)
    try:  # a new gallery gets today's default and records it
        assert fresh.pipeline.embedder.pooling == DEFAULT_POOLING
        assert fresh.gallery.embedder["pooling"]["kind"] == DEFAULT_POOLING.kind
    finally:
        fresh.gallery.close()
