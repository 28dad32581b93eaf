"""Resume inside a video: a run stopped after any segment commit, then rerun, gives the gallery of a clean run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from csip_reid.gallery.store import Gallery
from csip_reid.pipeline.extract import ExtractStats, ResumePoint
from csip_reid.pipeline.indexer import Pipeline, embedder_record, index_one_video
from csip_reid.pipeline.settings import PipelineSettings
from tests.helpers.walkers import SEGMENT_S, WALKERS, BlobDetector, write_walkers

pytest.importorskip("av")


class Killed(Exception):
    """Stands for kill -9 right after a commit (nothing after it reaches the gallery)."""


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_walkers(tmp_path_factory.mktemp("resume") / "cam.mp4")


def _pipeline(models_dir: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> Pipeline:
    monkeypatch.setenv("REID_WEIGHTS_DIR", str(models_dir))
    settings = PipelineSettings(detector="yolox:yolox_nano", embedder="onnx:osnet_x0_25_msmt17",
                                segment_s=SEGMENT_S, min_box_height=32, **kw)
    pipeline = Pipeline(settings)
    pipeline.detector = BlobDetector()
    return pipeline


def _index(pipeline: Pipeline, root: Path, video: Path, after: int | None = None,
           log: list[str] | None = None) -> Any:
    """Index ``video`` into ``root``; with ``after``, stop (as if killed) right after that many commits."""
    commits: list[ResumePoint | None] = []

    def committed(point: ResumePoint | None) -> None:
        commits.append(point)
        if after is not None and len(commits) == after:
            raise Killed

    with Gallery.open_or_create(root, embedder_record(pipeline.embedder, pipeline.settings)) as g:
        try:
            res = index_one_video(pipeline, g, video, log=(log if log is not None else []).append,
                                  committed=committed, stats=ExtractStats())
        except Killed:
            return None
    return res, commits


def _stored(root: Path) -> list[tuple]:
    with Gallery.open(root) as g:
        recs = sorted(g.iter_tracklets(), key=lambda r: r.track_id)
        assert g.index.ntotal == len(recs), "the FAISS index holds every stored tracklet"
        return [(r.track_id, r.frames.tolist(), np.round(r.boxes, 3).tolist(), r.embedding) for r in recs]


def _same(a: list[tuple], b: list[tuple]) -> None:
    assert [x[:3] for x in a] == [x[:3] for x in b]
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x[3], y[3], atol=1e-5)


def test_stopped_after_any_commit_then_rerun_equals_a_clean_run(video: Path, models_dir: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = _pipeline(models_dir, monkeypatch)
    res, commits = _index(pipeline, tmp_path / "clean", video)
    assert res.status == "indexed" and res.tracklets == len(WALKERS)
    assert len(commits) >= 3 and commits[-1] is None, "several segments, then the completing commit"
    clean = _stored(tmp_path / "clean")
    assert len(clean) == len(WALKERS)
    for k in range(1, len(commits)):
        root = tmp_path / f"killed{k}"
        assert _index(pipeline, root, video, after=k) is None
        with Gallery.open(root) as g:
            (v,) = g.videos()
            assert v.status == "partial" and not g.is_indexed(v.content_hash or "")
            assert g.resume_point(video)[2]["frame"] == commits[k - 1].frame
            assert g.info()["partial"][0]["indexed_to_s"] == pytest.approx(commits[k - 1].frame / 10)
            assert g.indexed_videos() == [], "a partial video is not copied into other galleries"
        log: list[str] = []
        res2, _ = _index(pipeline, root, video, log=log)
        assert any(f"at frame {commits[k - 1].frame}" in line for line in log), log
        assert res2.status == "indexed" and res2.tracklets == res.tracklets and res2.frames == res.frames
        _same(_stored(root), clean)
        with Gallery.open(root) as g:
            (v,) = g.videos()
            assert v.status == "indexed" and g.resume_point(video) is None and g.is_indexed(v.content_hash or "")
            assert v.stats["resumed_at"] == commits[k - 1].frame and v.stats["segments"] == len(commits) - 1
        assert _index(pipeline, root, video)[0].status == "skipped"


def test_changed_settings_or_force_start_over(video: Path, models_dir: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "g"
    pipeline = _pipeline(models_dir, monkeypatch)
    assert _index(pipeline, root, video, after=1) is None
    other = _pipeline(models_dir, monkeypatch, min_frames=4)
    log: list[str] = []
    res, commits = _index(other, root, video, log=log)
    assert any("restart" in line and "pipeline settings changed" in line for line in log), log
    with Gallery.open(root) as g:
        (v,) = g.videos()
        assert v.status == "indexed" and v.stats["resumed_at"] == 0 and v.tracklets == res.tracklets
    root2 = tmp_path / "g2"
    assert _index(pipeline, root2, video, after=2) is None
    with Gallery.open(root2) as g:
        forced = index_one_video(pipeline, g, video, force=True, log=log.append)
        (v,) = g.videos()
    assert forced.status == "indexed" and v.stats["resumed_at"] == 0 and v.tracklets == len(WALKERS)


def test_one_commit_per_video_without_segments(video: Path, models_dir: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = _pipeline(models_dir, monkeypatch)
    pipeline.settings.segment_s = 0
    res, commits = _index(pipeline, tmp_path / "g", video)
    assert commits == [None] and res.tracklets == len(WALKERS)
