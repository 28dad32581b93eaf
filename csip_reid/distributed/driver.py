"""The driver loop of ``reid index --executor ray``: schedule videos, merge results, show progress."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from csip_reid.gallery.merge import merge_video
from csip_reid.pipeline.results import IndexSummary, VideoResult

if TYPE_CHECKING:
    from csip_reid.gallery.store import Gallery

_POLL_S = 0.5

#: The folder (inside the gallery) holding the workers' shard galleries.
SHARDS = ".shards"


def shard_name(k: int) -> str:
    """Folder name of worker ``k``'s shard gallery (under :data:`SHARDS`)."""
    return f"worker-{k}"


def shard_index(name: str) -> int | None:
    """The worker number of a shard folder name (None: not a worker's shard)."""
    number = name.removeprefix("worker-")
    return int(number) if number != name and number.isdigit() else None


def _frame_count(path: str) -> int:
    from csip_reid.core.video import VideoReader

    try:
        return max(0, int(VideoReader(path).frame_count))
    except Exception:  # unreadable: the worker will record why
        return 0


class Driver:
    """Hands videos to idle actors, merges each finished one into the gallery, updates one bar.

    Args:
        ray: The ``ray`` module (initialised).
        gallery: The destination gallery (open; this process is its writer).
        actors: The :class:`~csip_reid.distributed.worker.ShardWorker` actors.
        fingerprint: The embedder fingerprint (skip test).
        progress: Show the bar.
        log: One line of text per event.
        start_of: A video's wall-clock start (ISO 8601 or None), recorded when it is merged.
    """

    def __init__(self, ray: Any, gallery: Gallery, actors: list[Any], fingerprint: str, progress: bool,
                 log: Callable[[str], None], start_of: Callable[[str], str | None] = lambda path: None) -> None:
        self.ray = ray
        self.gallery = gallery
        self.actors = actors
        self.fingerprint = fingerprint
        self.progress = progress
        self.log = log
        self.start_of = start_of
        self._shards: dict[str, Gallery] = {}
        #: Videos partly indexed in a shard by a killed run: path -> the worker whose shard holds it (it resumes it).
        self.partial_in: dict[str, int] = {}

    # -- before the run ----------------------------------------------------------------------
    def actors_needed(self, jobs: list[tuple[str, str]]) -> int:
        """Actors to keep for ``jobs``: one per job, and every actor whose shard holds one of them partly indexed."""
        return max(1, len(jobs), *(self.partial_in.get(path, -1) + 1 for path, _ in jobs))

    def resume(self, files: list[str], force: bool, summary: IndexSummary) -> list[str]:
        """Skip what the gallery holds and merge what a killed run left in the shards; the rest is to do."""
        from csip_reid.core.video import video_content_hash
        from csip_reid.gallery.store import Gallery

        wanted = set(files)
        done: set[str] = set()
        if not force:
            base = self.gallery.root / SHARDS
            for shard in sorted(base.iterdir()) if base.is_dir() else []:
                if not Gallery.is_gallery(shard):
                    continue
                src = self._shard(str(shard))
                k = shard_index(shard.name)
                self.partial_in.update((v.path, k) for v in src.videos() if v.status == "partial" and k is not None)
                for video in src.indexed_videos():
                    if video.path in wanted and not self.gallery.is_indexed(video.content_hash):
                        outcome, n = merge_video(self.gallery, src, video, start_time=self.start_of(video.path))
                        if outcome == "added":
                            summary.results.append(VideoResult.stored(video.path, n, video.stats))
                            done.add(video.path)
                            self.log(f"merged {video.path} from a previous run's {shard.name}")
        todo = []
        for f in files:
            if f in done:
                continue
            try:
                h = video_content_hash(f)
            except OSError:
                h = None
            if h is not None and not force and self.gallery.is_indexed(h, self.fingerprint):
                self.log(f"skip {f}: already indexed with this embedder")
                summary.results.append(VideoResult(f, "skipped"))
                continue
            todo.append(f)
        return todo

    # -- the run -----------------------------------------------------------------------------
    def run(self, jobs: list[tuple[str, str]], force: bool, summary: IndexSummary, total_videos: int) -> None:
        """Index ``(path, camera)`` jobs on the actors until all are merged or recorded as failed."""
        from tqdm import tqdm

        ray = self.ray
        frames: dict[str, int] = {}  # frame counts, read in a thread (10,000 files on shared storage take a while)
        counter = threading.Thread(target=lambda: frames.update((p, _frame_count(p)) for p, _ in jobs),
                                   name="frame-count", daemon=True)
        counter.start()
        bar = tqdm(total=0, unit="frame", disable=not self.progress, dynamic_ncols=True)
        # a video a killed run left partly indexed in worker-k's shard goes to actor k, which resumes it
        own: dict[int, deque[tuple[str, str]]] = {k: deque() for k in range(len(self.actors))}
        pending: deque[tuple[str, str]] = deque()
        for job in jobs:
            k = self.partial_in.get(job[0])
            (own[k] if not force and k in own else pending).append(job)
        running: dict[Any, tuple[int, str]] = {}
        finished: list[str] = []
        done = len(summary.results)

        def hand_out(k: int) -> None:
            queue = own[k] or pending
            if queue:
                path, cam = queue.popleft()
                running[self.actors[k].index_video.remote(path, cam, force)] = (k, path)

        try:
            for k in range(len(self.actors)):
                hand_out(k)
            while running:
                ready, _ = ray.wait(list(running), num_returns=1, timeout=_POLL_S)
                for ref in ready:
                    k, path = running.pop(ref)
                    hand_out(k)  # the actor starts its next video while this process merges the last
                    res = self._finish(ref, path, force)
                    summary.results.append(res)
                    finished.append(path)
                    done += 1
                live = self._live_frames([k for k, _ in running.values()])
                bar.set_description(f"videos {done}/{total_videos}", refresh=False)
                counted = frames.copy()  # the counting thread may be adding to it
                bar.total = sum(counted.values())
                bar.n = min(bar.total, sum(counted.get(p, 0) for p in finished) + live)
                bar.refresh()
        finally:
            bar.close()

    def _finish(self, ref: Any, path: str, force: bool) -> VideoResult:
        """Collect one video's outcome: merge it into the gallery, or record the failure."""
        ray = self.ray
        t0 = time.perf_counter()
        try:
            out = ray.get(ref)
        except ray.exceptions.RayActorError as e:
            return self._failed(path, f"worker process died on this video (after retries): {_short(e)}")
        except ray.exceptions.RayTaskError as e:
            cause = getattr(e, "cause", None) or e
            return self._failed(path, f"worker error: {type(cause).__name__}: {_short(cause)}")
        shard, lines = out.pop("shard"), out.pop("log", [])
        out.pop("worker_pid", None)
        res = VideoResult(**out)
        if res.status == "failed":
            self.gallery.mark_failed(path, res.error)
            for line in lines:  # the worker's own words: "failed PATH: why"
                self.log(line)
            return res
        src = self._shard(shard)
        video = next((v for v in src.indexed_videos() if v.content_hash == res.content_hash), None)
        if video is None:
            return self._failed(path, f"the worker's shard {shard} does not hold the video it reported")
        if not force and self.gallery.is_indexed(res.content_hash, self.fingerprint):
            self.log(f"skip {path}: the same content was indexed from another path")
            return VideoResult(path, "skipped")
        # one transaction; replaces the path
        merge_video(self.gallery, src, video, replace=True, start_time=self.start_of(path))
        for line in lines:  # what the worker saw of the video: damaged, no person found
            self.log(line)
        res.seconds += time.perf_counter() - t0
        return res

    def _failed(self, path: str, error: str) -> VideoResult:
        self.gallery.mark_failed(path, error)
        self.log(f"failed {path}: {error}")
        return VideoResult(path, "failed", error=error)

    def _live_frames(self, busy: list[int]) -> int:
        """Frames read so far of the videos in progress (actors that do not answer count 0)."""
        if not busy:
            return 0
        refs = [self.actors[k].frames_done.remote() for k in busy]
        ready, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0.2)
        total = 0
        for r in ready:
            try:
                total += int(self.ray.get(r))
            except Exception:  # the actor is restarting
                pass
        return total

    def _shard(self, shard: str) -> Gallery:
        from csip_reid.gallery.store import Gallery

        if shard not in self._shards:
            self._shards[shard] = Gallery.open(Path(shard))
        return self._shards[shard]

    def close_shards(self) -> None:
        """Close the shard galleries opened for reading."""
        for g in self._shards.values():
            g.close()
        self._shards.clear()


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__
