"""The Ray actor of ``reid index --executor ray``: one pipeline, one shard gallery, whole videos.

A :class:`ShardWorker` builds the pipeline once (detector, tracker, pose, embedder) and indexes the
videos it is given into its own shard gallery, a normal gallery folder on shared storage. Each
video is committed to the shard exactly as ``reid index`` commits it (in one transaction, or segment
by segment with resume points for a long one); the driver then copies each finished video into the
destination gallery. The class is plain Python (Ray wraps it with
``ray.remote``), so it also runs, and is tested, without Ray.

Retries are idempotent: a video whose content hash the shard already holds (the worker died after
committing it, before the driver heard back) is answered from the shard without indexing it again,
and a video the worker died in the middle of is resumed from the shard's resume point (Ray retries
it on the restarted actor, which owns the same shard).

Fault injection for tests (read from the worker's environment, which the driver forwards):

* ``REID_FAULT_CRASH_ONCE=DIR``: the process exits hard right after committing a video to its
  shard, once, for each video ``NAME`` armed by a file ``DIR/NAME.crash`` (renamed to
  ``NAME.crashed`` when it fires);
* ``REID_FAULT_CRASH_ALWAYS=NAME[,NAME...]``: the process exits hard whenever it starts one of
  these video file names;
* ``REID_FAULT_CRASH_SEGMENT=DIR``: the process exits hard right after committing the first segment
  of a long video to its shard (mid-video), once, for each video armed by ``DIR/NAME.segment``; the
  retry resumes the video from the shard's resume point.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csip_reid.pipeline.indexer import Pipeline, embedder_record, index_one_video
from csip_reid.pipeline.results import VideoResult
from csip_reid.pipeline.settings import PipelineSettings

if TYPE_CHECKING:
    from csip_reid.gallery.store import Gallery

CRASH_ONCE_ENV = "REID_FAULT_CRASH_ONCE"
CRASH_ALWAYS_ENV = "REID_FAULT_CRASH_ALWAYS"
CRASH_SEGMENT_ENV = "REID_FAULT_CRASH_SEGMENT"


def _crash_always(path: str) -> None:
    names = {n.strip() for n in os.environ.get(CRASH_ALWAYS_ENV, "").split(",") if n.strip()}
    if Path(path).name in names:
        os._exit(17)


def _crash_once(path: str, env: str = CRASH_ONCE_ENV, suffix: str = ".crash") -> None:
    marker_dir = os.environ.get(env)
    if not marker_dir:
        return
    armed = Path(marker_dir) / f"{Path(path).name}{suffix}"
    try:
        os.rename(armed, armed.with_suffix(".crashed"))  # atomic: fires once
    except OSError:
        return
    os._exit(17)


def _crash_mid_video(path: str, point: Any) -> None:
    """After a segment of a video is committed (``point`` is its resume point; None: the video is done)."""
    if point is not None:
        _crash_once(path, CRASH_SEGMENT_ENV, ".segment")


class ShardWorker:
    """Indexes whole videos into one shard gallery.

    Args:
        settings: ``PipelineSettings.to_dict()`` of the run.
        shard_dir: This worker's shard gallery folder (created on the first video).
        recorded: The destination gallery's embedder record, when it exists: its crop pooling is kept.
    """

    def __init__(self, settings: dict[str, Any], shard_dir: str, recorded: dict[str, Any] | None = None) -> None:
        self.settings = PipelineSettings.from_dict(settings)
        self.pipeline = Pipeline(self.settings)
        if recorded is not None:
            self.pipeline.embedder.use_recorded_pooling(recorded)
        self.record = embedder_record(self.pipeline.embedder, self.settings)
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
            ``VideoResult`` fields (``content_hash`` among them), ``shard`` (the shard folder),
            ``worker_pid``, and ``log``: the lines ``reid index`` would print about the video.
        """
        return self._thread.submit(self._index_video, path, camera, force).result()

    def _index_video(self, path: str, camera: str, force: bool) -> dict[str, Any]:
        from csip_reid.pipeline.extract import ExtractStats

        _crash_always(path)
        shard = self._open_shard()
        lines: list[str] = []
        self._stats = stats = ExtractStats()
        try:
            res = index_one_video(self.pipeline, shard, path, camera, force=force, log=lines.append, stats=stats,
                                  committed=lambda point: _crash_mid_video(path, point))
        finally:
            self._stats = None
        if res.status == "skipped":  # committed by an earlier attempt (died before the driver heard back)
            res, lines = self._stored_result(shard, res), []
        elif res.status != "failed":
            _crash_once(path)
        return {**res.__dict__, "shard": self.shard_dir, "worker_pid": os.getpid(), "log": lines}

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
    def _stored_result(shard: Gallery, res: VideoResult) -> VideoResult:
        """The result of a video committed to the shard by an earlier attempt of this worker."""
        video = next(v for v in shard.indexed_videos() if v.content_hash == res.content_hash)
        n = len(shard.tracklet_ids(video.path))
        stored = VideoResult.stored(res.path, n, video.stats)
        stored.content_hash = res.content_hash
        return stored
