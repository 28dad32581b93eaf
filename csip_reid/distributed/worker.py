"""The Ray actor of ``reid index --executor ray``: one pipeline, one shard gallery, whole videos.

A :class:`ShardWorker` builds the pipeline once (detector, tracker, pose, embedder) and indexes the
videos it is given into its own shard gallery, a normal gallery folder on shared storage. Each
video is committed to the shard in one transaction, exactly as ``reid index`` does; the driver then
copies it into the destination gallery. The class is plain Python (Ray wraps it with
``ray.remote``), so it also runs, and is tested, without Ray.

Retries are idempotent: a video whose content hash the shard already holds (the worker died after
committing it, before the driver heard back) is answered from the shard without indexing it again.

Fault injection for tests (read from the worker's environment, which the driver forwards):

* ``REID_FAULT_CRASH_ONCE=DIR``: the process exits hard right after committing a video to its
  shard, once, for each video ``NAME`` armed by a file ``DIR/NAME.crash`` (renamed to
  ``NAME.crashed`` when it fires);
* ``REID_FAULT_CRASH_ALWAYS=NAME[,NAME...]``: the process exits hard whenever it starts one of
  these video file names.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csip_reid.core.errors import ReidError
from csip_reid.pipeline.indexer import Pipeline, VideoResult, embedder_record
from csip_reid.pipeline.settings import PipelineSettings

if TYPE_CHECKING:
    from csip_reid.gallery.store import Gallery

CRASH_ONCE_ENV = "REID_FAULT_CRASH_ONCE"
CRASH_ALWAYS_ENV = "REID_FAULT_CRASH_ALWAYS"


def _crash_always(path: str) -> None:
    names = {n.strip() for n in os.environ.get(CRASH_ALWAYS_ENV, "").split(",") if n.strip()}
    if Path(path).name in names:
        os._exit(17)


def _crash_once(path: str) -> None:
    marker_dir = os.environ.get(CRASH_ONCE_ENV)
    if not marker_dir:
        return
    armed = Path(marker_dir) / f"{Path(path).name}.crash"
    try:
        os.rename(armed, armed.with_suffix(".crashed"))  # atomic: fires once
    except OSError:
        return
    os._exit(17)


class ShardWorker:
    """Indexes whole videos into one shard gallery.

    Args:
        settings: ``PipelineSettings.to_dict()`` of the run.
        shard_dir: This worker's shard gallery folder (created on the first video).
    """

    def __init__(self, settings: dict[str, Any], shard_dir: str) -> None:
        self.settings = PipelineSettings.from_dict(settings)
        self.pipeline = Pipeline(self.settings)
        self.record = embedder_record(self.pipeline.embedder, self.settings)
        self.fingerprint = self.pipeline.embedder.fingerprint()
        self.shard_dir = shard_dir
        self._shard: Any = None
        self._stats: Any = None
        # Ray may call methods from several threads (``frames_done`` answers while a video runs);
        # the shard's SQLite connection must stay on one thread, so all indexing runs on this one.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shard")

    def embedder_record(self) -> dict[str, Any]:
        """What the destination gallery's manifest must hold (checked by the driver)."""
        return self.record

    def pid(self) -> int:
        """The worker's process id (tests kill it)."""
        return os.getpid()

    def frames_done(self) -> int:
        """Frames read so far of the video in progress (0 when idle); answered while indexing."""
        stats = self._stats
        return int(stats.frames_read) if stats is not None else 0

    def index_video(self, path: str, camera: str, force: bool = False) -> dict[str, Any]:
        """Index one video into the shard; its errors are returned as a failed result, not raised.

        Returns:
            ``VideoResult`` fields plus ``content_hash`` and ``shard`` (the shard folder), and
            ``worker_pid``.
        """
        return self._thread.submit(self._index_video, path, camera, force).result()

    def _index_video(self, path: str, camera: str, force: bool) -> dict[str, Any]:
        from csip_reid.core.video import VideoReader, video_content_hash
        from csip_reid.gallery.videos import VideoRecord
        from csip_reid.pipeline.extract import ExtractStats

        _crash_always(path)
        t0 = time.perf_counter()
        shard = self._open_shard()
        extra = {"shard": self.shard_dir, "worker_pid": os.getpid(), "content_hash": ""}
        try:
            content_hash = video_content_hash(path)
            extra["content_hash"] = content_hash
            if not force and shard.is_indexed(content_hash, self.fingerprint):
                return {**self._stored_result(shard, path, content_hash), **extra}
            reader = VideoReader(path)
            meta = dict(fps=reader.fps, num_frames=reader.frame_count, width=reader.width,
                        height=reader.height)
            self._stats = stats = ExtractStats()
            tracklets = self.pipeline.run(path, camera=camera, progress=False, stats=stats)
            cam = camera or (tracklets[0].camera if tracklets else Path(path).stem)
            shard.add_video(VideoRecord(path, content_hash, cam, stats=stats.to_dict(), **meta), tracklets)
        except ReidError as e:
            shard.mark_failed(path, str(e))
            return {**VideoResult(path, "failed", error=str(e), seconds=time.perf_counter() - t0).__dict__,
                    **extra}
        finally:
            self._stats = None
        _crash_once(path)
        res = VideoResult(path, "indexed" if tracklets else "empty", tracklets=len(tracklets),
                          frames=stats.frames_read, failed_frames=stats.frames_failed,
                          seconds=time.perf_counter() - t0)
        return {**res.__dict__, **extra}

    def close(self) -> None:
        """Close the shard gallery (releases its writer lock)."""
        def _close() -> None:
            if self._shard is not None:
                self._shard.close()
                self._shard = None

        self._thread.submit(_close).result()

    def _open_shard(self) -> Gallery:
        from csip_reid.gallery.store import Gallery

        if self._shard is None:
            self._shard = Gallery.open_or_create(self.shard_dir, self.record, lock_timeout=60.0)
        return self._shard

    @staticmethod
    def _stored_result(shard: Gallery, path: str, content_hash: str) -> dict[str, Any]:
        """The result of a video committed by an earlier attempt of this worker."""
        video = next(v for v in shard.indexed_videos() if v.content_hash == content_hash)
        n = len(shard.tracklet_ids(video.path))
        stats = video.stats
        return VideoResult(path, "indexed" if n else "empty", tracklets=n,
                           frames=int(stats.get("frames_read", 0)),
                           failed_frames=int(stats.get("frames_failed", 0))).__dict__
