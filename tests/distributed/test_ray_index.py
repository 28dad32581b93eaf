"""``reid index --executor ray`` on a local Ray cluster: same gallery as local, faults survived."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from csip_reid.distributed import RayIndexer, RayOptions
from csip_reid.distributed.worker import CRASH_ALWAYS_ENV, CRASH_ONCE_ENV
from csip_reid.gallery.store import Gallery
from tests.helpers.cli import OFFLINE_ARGS, run_reid_process


def _content(root: Path) -> dict[tuple, np.ndarray]:
    """Tracklets keyed by (video, track id, frames) -> embedding."""
    with Gallery.open(root) as g:
        return {(r.video, r.track_id, tuple(int(f) for f in r.frames)): r.embedding
                for r in g.iter_tracklets()}


def _answers(root: Path, queries: np.ndarray) -> list[list[tuple]]:
    with Gallery.open(root) as g:
        return [[(h.video, h.track_id, h.start_frame) for h in hits] for hits in g.search(queries, k=5)]


def _video_rows(root: Path) -> list[tuple[str, str]]:
    with Gallery.open(root) as g:
        return sorted((v.path, v.status) for v in g.videos())


def _starts(root: Path) -> dict[str, str | None]:
    with Gallery.open(root) as g:
        return {v.path: v.start_time for v in g.indexed_videos()}


def test_ray_cli_records_start_times(ray_cluster, short_videos, tmp_path):
    """Start times from file names reach the gallery as with the local executor (read by the driver)."""
    cams = tmp_path / "videos"
    cams.mkdir()
    named = [cams / "20240501_080000_camA.mp4", cams / "20240501_081500_camB.mp4"]
    for src, dst in zip(short_videos[:2], named, strict=True):
        dst.write_bytes(src.read_bytes())  # real files: the names carry the times
    dest = tmp_path / "g"
    run_reid_process("index", str(cams), "--gallery", str(dest), "--executor", "ray", "--ray-address", "auto",
                     "--workers", "1", "--time-from-name", "%Y%m%d_%H%M%S", "-q", *OFFLINE_ARGS, check=True)
    assert _starts(dest) == {str(named[0]): "2024-05-01T08:00:00+00:00",
                             str(named[1]): "2024-05-01T08:15:00+00:00"}
    p = run_reid_process("index", str(cams), "--gallery", str(dest), "--executor", "ray", "--start-time",
                         "2024-05-01T08:00:00", *OFFLINE_ARGS)
    assert p.returncode == 2 and "--start-time names the start of one video" in p.stderr


def test_ray_cli_matches_local(ray_cluster, short_videos, local_gallery, tmp_path):
    """Two workers through the real CLI process (joining the test's cluster) give the local gallery."""
    dest = tmp_path / "g"
    p = run_reid_process("index", *map(str, short_videos), "--gallery", str(dest), "--executor", "ray",
                         "--ray-address", "auto", "--workers", "2", "--json", *OFFLINE_ARGS, check=True)
    summary = json.loads(p.stdout)
    assert (summary["videos"], summary["indexed"], summary["failed"]) == (3, 3, 0)
    local, dist = _content(local_gallery), _content(dest)
    assert sorted(local) == sorted(dist) and len(local) >= 3
    for key, emb in local.items():
        np.testing.assert_allclose(dist[key], emb, atol=1e-5)
    queries = np.stack(list(local.values()))
    assert _answers(dest, queries) == _answers(local_gallery, queries)
    assert not (dest / ".shards").exists(), "merged shards are removed"


def test_worker_crash_is_retried_once_per_video(ray_cluster, short_videos, offline_settings, local_gallery,
                                                tmp_path, monkeypatch):
    """A worker process dies right after committing a video to its shard: still every video once."""
    markers = tmp_path / "crashed"
    markers.mkdir()
    (markers / f"{short_videos[2].name}.crash").touch()
    monkeypatch.setenv(CRASH_ONCE_ENV, str(markers))
    dest = tmp_path / "g"
    summary = RayIndexer(dest, offline_settings, RayOptions(workers=2, retries=2), progress=False,
                         log=lambda m: None).index(short_videos)
    assert summary.count("indexed") == 3, summary.to_dict()
    assert [m.name for m in markers.iterdir()] == [f"{short_videos[2].name}.crashed"]  # it did crash
    assert _video_rows(dest) == sorted((str(v.resolve()), "indexed") for v in short_videos)
    assert sorted(_content(dest)) == sorted(_content(local_gallery))  # no tracklet twice, none lost


def test_always_failing_video_fails_alone(ray_cluster, short_videos, offline_settings, tmp_path, monkeypatch):
    """A video that kills its worker on every attempt, and a corrupt file, fail; the rest is indexed."""
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(os.urandom(4096))
    killer = short_videos[1]
    monkeypatch.setenv(CRASH_ALWAYS_ENV, killer.name)
    dest = tmp_path / "g"
    videos = [*short_videos[:2], broken]
    summary = RayIndexer(dest, offline_settings, RayOptions(workers=2, retries=1), progress=False,
                         log=lambda m: None).index(videos)
    by_path = {Path(r.path).name: r for r in summary.results}
    assert [by_path[v.name].status for v in videos] == ["indexed", "failed", "failed"]
    assert "worker process died" in by_path[killer.name].error
    assert by_path["broken.mp4"].error
    with Gallery.open(dest) as g:
        info = g.info()
    assert info["num_videos"] == 1
    assert sorted(Path(f["path"]).name for f in info["failed"]) == sorted([killer.name, "broken.mp4"])
    assert (dest / ".shards").is_dir() is False or all(
        not Gallery.is_gallery(s) for s in (dest / ".shards").iterdir())


def test_killed_driver_resumes_from_shards(ray_cluster, short_videos, offline_settings, tmp_path):
    """Videos a killed run left in a shard (committed there, not yet merged) are merged by the rerun."""
    from csip_reid.distributed.worker import ShardWorker

    dest = tmp_path / "g"
    worker = ShardWorker(offline_settings.to_dict(), str(dest / ".shards" / "worker-0"))
    with Gallery.create(dest, worker.embedder_record()):
        pass
    out = worker.index_video(str(short_videos[0].resolve()), "cam")
    worker.close()
    assert out["status"] == "indexed"
    summary = RayIndexer(dest, offline_settings, RayOptions(workers=1), progress=False,
                         log=lambda m: None).index(short_videos[:1], start_time="2024-05-01T08:00:00+02:00")
    assert [r.status for r in summary.results] == ["indexed"]
    assert _starts(dest) == {str(short_videos[0].resolve()): "2024-05-01T06:00:00+00:00"}
    assert summary.results[0].tracklets == out["tracklets"] > 0
    with Gallery.open(dest) as g:
        assert len(g) == out["tracklets"]
    assert not (dest / ".shards").exists()
    again = RayIndexer(dest, offline_settings, RayOptions(workers=1), progress=False,
                       log=lambda m: None).index(short_videos[:1])
    assert [r.status for r in again.results] == ["skipped"]


def test_worker_dying_mid_video_resumes_from_its_shard(ray_cluster, videos_dir, tmp_path, monkeypatch):
    """A worker dies right after the first segment of a long video reached its shard: the retry resumes
    there, and the gallery is the one the local executor makes."""
    from csip_reid.distributed.worker import CRASH_SEGMENT_ENV
    from csip_reid.pipeline.indexer import Indexer
    from csip_reid.pipeline.settings import PipelineSettings

    intel = videos_dir / "intel_one-by-one-person-detection.mp4"
    settings = PipelineSettings.load(None, detector="yolox:yolox_nano", embedder="onnx:osnet_x0_25_msmt17",
                                     segment_s=30.0)  # 139 s at 10 fps: a few segments
    Indexer(tmp_path / "local", settings, progress=False, log=lambda m: None).index([intel])
    markers = tmp_path / "crashed"
    markers.mkdir()
    (markers / f"{intel.name}.segment").touch()
    monkeypatch.setenv(CRASH_SEGMENT_ENV, str(markers))
    dest = tmp_path / "g"
    summary = RayIndexer(dest, settings, RayOptions(workers=1, retries=2), progress=False,
                         log=lambda m: None).index([intel])
    assert [r.status for r in summary.results] == ["indexed"], summary.to_dict()
    assert [m.name for m in markers.iterdir()] == [f"{intel.name}.crashed"]  # it did die mid-video
    local, dist = _content(tmp_path / "local"), _content(dest)
    assert sorted(local) == sorted(dist) and len(local) >= 4  # no tracklet twice, none lost
    for key, emb in local.items():
        np.testing.assert_allclose(dist[key], emb, atol=1e-5)
    with Gallery.open(dest) as g:
        (video,) = g.videos()
    assert video.status == "indexed" and video.stats["resumed_at"] > 0 and video.stats["segments"] >= 2


def test_a_video_a_killed_run_left_in_a_shard_goes_back_to_its_worker(ray_cluster, videos_dir, tmp_path):
    """The driver hands a video partly indexed in worker-1's shard to actor 1, which resumes it."""
    import pytest

    from csip_reid.distributed.driver import SHARDS, shard_name
    from csip_reid.pipeline.indexer import Pipeline, embedder_record, index_one_video
    from csip_reid.pipeline.settings import PipelineSettings

    intel = (videos_dir / "intel_one-by-one-person-detection.mp4").resolve()
    settings = PipelineSettings.load(None, detector="yolox:yolox_nano", embedder="onnx:osnet_x0_25_msmt17",
                                     segment_s=30.0)
    pipeline = Pipeline(settings)
    record = embedder_record(pipeline.embedder, settings)
    dest = tmp_path / "g"
    with Gallery.create(dest, record):
        pass

    class Killed(Exception):
        pass

    def killed(point) -> None:
        raise Killed

    with Gallery.create(dest / SHARDS / shard_name(1), record) as shard, pytest.raises(Killed):
        index_one_video(pipeline, shard, intel, committed=killed)  # one segment in worker-1's shard
    lines: list[str] = []
    summary = RayIndexer(dest, settings, RayOptions(workers=2), progress=False, log=lines.append).index([intel])
    assert [r.status for r in summary.results] == ["indexed"], summary.to_dict()
    with Gallery.open(dest) as g:
        (video,) = g.videos()
    assert video.status == "indexed" and video.stats["resumed_at"] > 0
    assert not (dest / SHARDS).exists()
