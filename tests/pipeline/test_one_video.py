"""One "index this video" for both executors: one decoding per video, damage reported by every scan."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from csip_reid.core.detections import Detections
from csip_reid.core.video import VideoReader, cut_clip
from csip_reid.gallery.store import Gallery
from csip_reid.pipeline.detect import Detector
from csip_reid.pipeline.extract import ExtractStats, extract_tracklets
from csip_reid.pipeline.settings import PipelineSettings

INTEL = "intel_one-by-one-person-detection.mp4"


class NobodyDetector(Detector):
    """Finds nobody (the scans still decode, track and count every frame)."""

    name = "nobody"
    batch_size = 8

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        return [Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32)) for _ in frames]

    def describe(self) -> dict:
        return {"kind": self.name}


@pytest.fixture(scope="module")
def damaged(videos_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """80 frames of a person walking in, the second half of the frame data zeroed (the header kept)."""
    video = videos_dir / INTEL
    if not video.is_file():
        pytest.skip(f"{INTEL} missing")
    d = tmp_path_factory.mktemp("damaged")
    data = cut_clip(video, d / "full.mp4", 70, 150).read_bytes()
    moov = data.rfind(b"moov") - 4  # cut_clip writes the frame table at the end: keep it
    out = d / "cam_truncated.mp4"
    out.write_bytes(data[: moov // 2] + b"\0" * (moov - moov // 2) + data[moov:])
    return out


@pytest.fixture
def offline(models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> PipelineSettings:
    monkeypatch.setenv("REID_WEIGHTS_DIR", str(models_dir))
    return PipelineSettings.load(None, detector="yolox:yolox_nano", embedder="onnx:osnet_x0_25_msmt17")


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """Counts VideoReader constructions (each opens the file) and decoding passes over a file."""
    seen = SimpleNamespace(readers=[], passes=[])
    init, frames = VideoReader.__init__, VideoReader._frames

    def counted_init(self, path, *a, **kw) -> None:
        seen.readers.append(Path(path).name)
        init(self, path, *a, **kw)

    def counted_frames(self):
        seen.passes.append(self.path.name)
        return frames(self)

    monkeypatch.setattr(VideoReader, "__init__", counted_init)
    monkeypatch.setattr(VideoReader, "_frames", counted_frames)
    return seen


@pytest.mark.parametrize("scan", ["full", "adaptive"])
def test_both_scans_record_damage(damaged: Path, scan: str) -> None:
    """A truncated file is reported by the full scan too (it used to report it as intact)."""
    stats = ExtractStats()
    assert list(extract_tracklets(damaged, NobodyDetector(), scan=scan, stats=stats, progress=False)) == []
    assert stats.frame_count == 80 and 0 < stats.frames_read < 80
    assert stats.frames_read + stats.frames_failed + stats.frames_missing == 80
    assert stats.frames_missing > 0 and f"decoded {stats.frames_read} of the 80 frames" in stats.damage
    intact = ExtractStats()
    list(extract_tracklets(damaged.with_name("full.mp4"), NobodyDetector(), scan=scan, stats=intact, progress=False))
    assert (intact.frames_read, intact.frames_missing, intact.damage) == (80, 0, "")


class FailingDetector(NobodyDetector):
    """Fails on its third call (a crash in the middle of a video)."""

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("detector died")
        return super().detect(frames)


@pytest.mark.parametrize("scan", ["full", "adaptive"])
def test_stats_are_filled_when_a_scan_fails(damaged: Path, scan: str) -> None:
    """The one ``finally`` of both scans: a video that fails half-way still has its facts counted."""
    stats = ExtractStats()
    with pytest.raises(RuntimeError, match="detector died"):
        list(extract_tracklets(damaged.with_name("full.mp4"), FailingDetector(), scan=scan, stats=stats,
                               progress=False))
    assert stats.decoder == "opencv" and stats.seconds > 0 and stats.damage == ""
    assert stats.frames_read == (16 if scan == "full" else stats.frames_read) and 0 < stats.frames_read < 80
    assert stats.frames_detected == (16 if scan == "full" else 2)


def test_span_in_seconds_on_the_one_open(damaged: Path) -> None:
    stats = ExtractStats()
    got = extract_tracklets(damaged.with_name("full.mp4"), NobodyDetector(), stats=stats, progress=False,
                            span_s=(1.0, 3.0))
    assert list(got) == []
    assert (stats.fps, stats.frames_read, stats.frames_missing) == (10.0, 20, 0)  # frames 10-29 at 10 fps
    from csip_reid.core.errors import VideoError

    with pytest.raises(VideoError, match="holds no frame"):
        list(extract_tracklets(damaged, NobodyDetector(), progress=False, span_s=(2.0, 2.01)))


def test_index_decodes_each_video_once(damaged: Path, offline: PipelineSettings, opens: SimpleNamespace,
                                       tmp_path: Path) -> None:
    from csip_reid.pipeline.indexer import Indexer

    lines: list[str] = []
    offline.scan = "full"
    summary = Indexer(tmp_path / "g", offline, progress=False, log=lines.append).index([damaged])
    assert opens.readers == [damaged.name] and opens.passes == [damaged.name]
    res = summary.results[0]
    assert res.status in ("indexed", "empty") and res.promised_frames == 80
    assert 0 < res.missing_frames < 80 and res.frames + res.failed_frames + res.missing_frames == 80
    assert [ln for ln in lines if ln.startswith(f"damaged {damaged}")], lines
    assert "content_hash" not in summary.to_dict()["results"][0]  # `reid index --json` is unchanged
    with Gallery.open(tmp_path / "g") as g:
        (video,) = g.videos()
        stored = g.indexed_videos()[0].stats
    # the gallery's video facts come from the one decoding
    assert (video.fps, video.num_frames, video.width, video.height) == (10.0, 80, 768, 432)
    assert stored["frames_missing"] == res.missing_frames and stored["scan"] == "full"


def test_ray_worker_reports_damage_like_local(damaged: Path, offline: PipelineSettings, tmp_path: Path) -> None:
    """The Ray actor runs the same function: missing/promised frames and the damage line reach the driver."""
    from csip_reid.distributed.driver import Driver
    from csip_reid.distributed.worker import ShardWorker

    dest = tmp_path / "g"
    worker = ShardWorker(offline.to_dict(), str(dest / ".shards" / "w0"))
    with Gallery.create(dest, worker.embedder_record()):
        pass
    try:
        out = worker.index_video(str(damaged), "cam")
        again = worker.index_video(str(damaged), "cam")  # a retry: answered from the shard
    finally:
        worker.close()
    assert out["promised_frames"] == 80 and out["missing_frames"] > 0 and len(out["content_hash"]) == 64
    assert [ln for ln in out["log"] if ln.startswith(f"damaged {damaged}")]
    assert again["log"] == [] and {k: again[k] for k in ("status", "tracklets", "frames", "missing_frames")} == \
        {k: out[k] for k in ("status", "tracklets", "frames", "missing_frames")}

    class FakeRay:  # the driver's merge step without a cluster: the "ref" is the actor's answer
        exceptions = SimpleNamespace(RayActorError=RuntimeError, RayTaskError=RuntimeError)

        @staticmethod
        def get(ref: dict) -> dict:
            return dict(ref)

    lines: list[str] = []
    with Gallery.open(dest) as g:
        driver = Driver(FakeRay, g, [], worker.record["fingerprint"], False, lines.append)
        res = driver._finish(out, str(damaged), force=False)
        driver.close_shards()
        assert len(g) == res.tracklets
    assert (res.missing_frames, res.promised_frames) == (out["missing_frames"], 80)
    assert len([ln for ln in lines if ln.startswith("damaged ")]) == 1, lines


@pytest.fixture(scope="module")
def person_gallery(damaged: Path, models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The intact 80-frame clip (a person walking in) indexed into a fresh gallery."""
    import os

    from csip_reid.pipeline.indexer import Indexer

    os.environ["REID_WEIGHTS_DIR"] = str(models_dir)
    settings = PipelineSettings.load(None, detector="yolox:yolox_nano", embedder="onnx:osnet_x0_25_msmt17")
    root = tmp_path_factory.mktemp("people") / "g"
    summary = Indexer(root, settings, progress=False, log=lambda m: None).index([damaged.with_name("full.mp4")])
    assert summary.tracklets > 0, summary.to_dict()
    return root


def test_run_query_opens_the_clip_once(person_gallery: Path, damaged: Path, opens: SimpleNamespace,
                                       tmp_path: Path) -> None:
    from csip_reid.pipeline.query import run_query

    clip = damaged.with_name("full.mp4")
    (r,) = run_query(person_gallery, clip, top_k=3, start_s=1.0, end_s=7.5, thumbs=tmp_path / "thumbs")
    assert opens.readers == [clip.name] and opens.passes == [clip.name]
    assert 10 <= r.query["start_frame"] and r.query["end_frame"] < 75  # the span, in the clip's own fps
    assert r.hits and r.hits[0].video == str(clip)
    # the thumbnail is JPEG bytes; `reid query` (thumbs=a folder) also names the file it wrote
    assert r.thumbnail[:2] == b"\xff\xd8" and Path(r.query["thumbnail"]).read_bytes() == r.thumbnail
    (r2,) = run_query(person_gallery, clip, top_k=3, start_s=1.0, end_s=7.5, thumbs=False)
    assert "thumbnail" not in r2.query and r2.thumbnail == r.thumbnail
    assert len(list((tmp_path / "thumbs").iterdir())) == 1


def test_run_query_with_an_open_gallery_and_built_pipeline(person_gallery: Path, damaged: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """What `reid serve` does: the models are built once, every query uses the gallery it is given."""
    from csip_reid.pipeline import indexer
    from csip_reid.pipeline.query import query_pipeline, run_query, run_query_tracklet

    clip = damaged.with_name("full.mp4")
    with Gallery.open(person_gallery) as g:
        pipeline = query_pipeline(g)
        built: list[int] = []
        monkeypatch.setattr(indexer.Pipeline, "__init__", lambda *a, **kw: built.append(1))
        monkeypatch.setattr(Gallery, "open", classmethod(lambda *a, **kw: pytest.fail("a second gallery")))
        first = run_query(g, clip, top_k=2, pipeline=pipeline, thumbs=False)
        again = run_query(g, clip, top_k=2, pipeline=pipeline, thumbs=False)
        found = run_query_tracklet(g, first[0].hits[0].tracklet_id, top_k=2)
        assert not g.closed  # still open: run_query leaves a gallery it was given open
    assert built == []
    assert [h.tracklet_id for h in first[0].hits] == [h.tracklet_id for h in again[0].hits]
    assert first[0].hits[0].score == pytest.approx(again[0].hits[0].score)
    assert first[0].hits[0].tracklet_id not in [h.tracklet_id for h in found.hits]
