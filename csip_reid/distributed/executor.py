"""``reid index --executor ray``: index an archive with Ray actors, merge into one gallery.

The driver (this module) lists the videos, skips those the destination gallery ``G`` already holds
(by content hash, as the local executor does), and hands the others, one whole video at a time, to
``N`` :class:`~csip_reid.distributed.worker.ShardWorker` actors. Worker ``k`` writes into its own
shard gallery ``G/.shards/worker-k`` (so ``G`` must be on storage every node mounts at the same
path); each video it finishes is copied into ``G`` by the driver in one transaction
(:func:`~csip_reid.gallery.merge.merge_video`), so ``G`` always holds whole videos only.

Failures:

* a broken video: the worker records it as failed and goes on; the driver records it in ``G``;
* a worker process that dies (crash, OOM kill, lost node): Ray restarts the actor (``max_restarts``
  unbounded) and retries the video on it up to ``retries`` times (``max_task_retries``); after
  that the video is recorded as failed with the reason and the restarted actor takes the next one;
* a driver that dies: ``G`` holds every video merged so far, whole; videos the workers had already
  committed to their shards are merged by the next run before it indexes anything, the rest are
  indexed again. Shards are deleted once everything in them is in ``G``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csip_reid.core.errors import ConfigError
from csip_reid.distributed.driver import SHARDS, shard_index, shard_name
from csip_reid.pipeline.indexer import camera_for
from csip_reid.pipeline.results import IndexSummary
from csip_reid.pipeline.settings import PipelineSettings

if TYPE_CHECKING:
    from csip_reid.gallery.store import Gallery

#: Environment variables forwarded to the workers (weights folder, offline mode, fault injection ...).
FORWARD_PREFIXES = ("REID_", "YOLO_", "OMP_NUM_THREADS")


@dataclass
class RayOptions:
    """How ``reid index --executor ray`` uses the cluster.

    Attributes:
        address: ``None`` starts a local Ray on this machine; ``auto`` joins the cluster this node
            belongs to (``ray start``); ``ray://HOST:PORT`` connects through Ray Client.
        workers: Actors (None: as many as the cluster's free CPUs/GPUs allow, at most one per video).
        cpus_per_worker: CPUs each actor reserves.
        gpus_per_worker: GPUs (fractions allowed, e.g. 0.25 puts four actors on one GPU).
        retries: Attempts after the first when a worker process dies on a video.
        num_cpus: CPUs of a local Ray started here (None: all).
    """

    address: str | None = None
    workers: int | None = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    retries: int = 2
    num_cpus: int | None = None


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'csip-reid[ray]'") from None
    return ray


def _forwarded_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(FORWARD_PREFIXES)}


class RayIndexer:
    """Indexes videos on Ray actors into ``gallery_dir`` (see the module docstring).

    Args:
        gallery_dir: Destination gallery (created when missing); its folder must be reachable by
            every worker at the same path.
        settings: Pipeline settings (every worker builds the same pipeline).
        options: Cluster options.
        progress: Show the progress bar (videos and frames).
        log: Callable taking one line of text.
    """

    def __init__(self, gallery_dir: str | Path, settings: PipelineSettings, options: RayOptions | None = None,
                 progress: bool = True, log: Callable[[str], None] = print) -> None:
        self.root = Path(gallery_dir).expanduser().absolute()
        self.settings = settings
        self.options = options or RayOptions()
        self.progress = progress
        self.log = log
        if self.options.cpus_per_worker < 0 or self.options.gpus_per_worker < 0:
            raise ConfigError("--cpus-per-worker and --gpus-per-worker must be >= 0")
        if self.options.workers is not None and self.options.workers < 1:
            raise ConfigError("--workers must be at least 1")

    # -- the run -----------------------------------------------------------------------------
    def index(self, paths: Sequence[str | Path], camera: str | None = None, force: bool = False,
              camera_from: str = "stem", start_time: str | None = None,
              time_from_name: str | None = None) -> IndexSummary:
        """Index every video under ``paths``; arguments and summary are the local executor's.

        Start times (``start_time`` for one video, ``time_from_name``, else the container's tag)
        are read here, on the driver, and recorded when each video is merged.
        """
        from csip_reid.core.video import iter_video_files
        from csip_reid.core.walltime import check_times, video_start_time

        files = [str(Path(f).resolve()) for f in iter_video_files(paths)]
        check_times(len(files), start_time, time_from_name)
        ray = _import_ray()
        summary = IndexSummary()
        t0 = time.perf_counter()
        started_ray = self._init_ray(ray)
        actors: list[Any] = []
        gallery = None
        try:
            from csip_reid.distributed.driver import Driver
            from csip_reid.gallery.store import Gallery
            from csip_reid.pipeline.indexer import recorded_embedder

            recorded = recorded_embedder(self.root)  # an existing gallery keeps its crop pooling
            # the actors start (a process each, imports, models) while this process checks the gallery
            # one per video, and up to the highest shard of a killed run (it may hold a video to resume)
            base = self.root / SHARDS
            shards = [shard_index(p.name) for p in base.iterdir()] if base.is_dir() else []
            wanted = max([len(files), *(k + 1 for k in shards if k is not None)])
            actors.extend(self._actor(ray, k, recorded) for k in range(self._worker_count(ray, wanted)))
            record = self._embedder_record(recorded)
            gallery = Gallery.open_or_create(self.root, record)
            gallery.take_writer()  # the writer lock now: one driver per gallery
            driver = Driver(ray, gallery, actors, record["fingerprint"], self.progress, self.log,
                            start_of=lambda p: video_start_time(p, start_time, time_from_name, self.log))
            todo = driver.resume(files, force, summary)
            jobs = [(f, camera_for(f, camera, camera_from)) for f in todo]
            keep = driver.actors_needed(jobs)
            for extra in actors[keep:]:  # fewer videos left than actors started
                ray.kill(extra, no_restart=True)
            del actors[keep:]
            if jobs:
                theirs = ray.get(actors[0].embedder_record.remote())["fingerprint"]
                if theirs != record["fingerprint"]:
                    raise ConfigError(f"the Ray workers build embedder {theirs}, this machine "
                                      f"{record['fingerprint']}: install the same weights on every node")
                try:
                    driver.run(jobs, force, summary, len(files))
                except KeyboardInterrupt:
                    summary.interrupted = True
            driver.close_shards()
            _kill(ray, actors)
            if not summary.interrupted:
                self._drop_merged_shards(gallery)
        finally:
            _kill(ray, actors)
            if gallery is not None:
                gallery.close()
            if started_ray:
                ray.shutdown()
            summary.seconds = time.perf_counter() - t0
        order = {f: i for i, f in enumerate(files)}
        summary.results.sort(key=lambda r: order.get(r.path, len(order)))
        return summary

    # -- helpers -----------------------------------------------------------------------------
    def _init_ray(self, ray: Any) -> bool:
        if ray.is_initialized():
            return False
        kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if self.options.address:
            ray.init(address=self.options.address, **kw)
        else:
            ray.init(num_cpus=self.options.num_cpus, **kw)
        return True

    def _embedder_record(self, recorded: dict[str, Any] | None) -> dict[str, Any]:
        """The gallery manifest's embedder record, from the embedder alone (built on the CPU here)."""
        from csip_reid.pipeline.embed import create_embedder
        from csip_reid.pipeline.indexer import embedder_record

        embedder = create_embedder(self.settings.embedder, device="cpu")
        if recorded is not None:
            embedder.use_recorded_pooling(recorded)
        return embedder_record(embedder, self.settings)

    def _worker_count(self, ray: Any, n_videos: int) -> int:
        if self.options.workers is not None:
            return max(1, min(self.options.workers, max(n_videos, 1)))
        res = ray.cluster_resources()
        fits = []
        if self.options.cpus_per_worker > 0:
            fits.append(int(res.get("CPU", 1) // self.options.cpus_per_worker))
        if self.options.gpus_per_worker > 0:
            fits.append(int(res.get("GPU", 0) // self.options.gpus_per_worker))
            if not fits[-1]:
                raise ConfigError(f"--gpus-per-worker {self.options.gpus_per_worker}: the Ray cluster has "
                                  f"{res.get('GPU', 0)} GPUs")
        return max(1, min([*fits, max(n_videos, 1)]))

    def _actor(self, ray: Any, k: int, recorded: dict[str, Any] | None) -> Any:
        from csip_reid.distributed.worker import ShardWorker

        cls = ray.remote(ShardWorker).options(
            num_cpus=self.options.cpus_per_worker, num_gpus=self.options.gpus_per_worker,
            max_restarts=-1, max_task_retries=self.options.retries, max_concurrency=2,
            runtime_env={"env_vars": _forwarded_env()}, name=None,
        )
        shard = self.root / SHARDS / shard_name(k)
        return cls.remote(self.settings.to_dict(), str(shard), recorded)

    def _drop_merged_shards(self, gallery: Gallery) -> None:
        """Delete the shard folders whose every indexed or partly indexed video is in the destination gallery."""
        from csip_reid.gallery.store import Gallery

        base = self.root / SHARDS
        if not base.is_dir():
            return
        for shard in sorted(base.iterdir()):
            if not Gallery.is_gallery(shard):
                continue
            with Gallery.open(shard) as g:
                pending = [v for v in g.videos() if v.status in ("indexed", "partial")  # partial: resumable
                           and not gallery.is_indexed(v.content_hash or "")]
            if not pending:
                shutil.rmtree(shard, ignore_errors=True)
        if base.is_dir() and not any(base.iterdir()):
            base.rmdir()


def _kill(ray: Any, actors: list[Any]) -> None:
    """End the actors for good (their shard locks are released with their processes)."""
    for a in actors:
        try:
            ray.kill(a, no_restart=True)
        except Exception:  # already gone
            pass
    actors.clear()
