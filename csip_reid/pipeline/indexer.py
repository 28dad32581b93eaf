"""``reid index``: videos → tracklets → (skeletons) → embeddings → gallery, resumably.

A video's tracklets are added to the gallery in one transaction when the video is finished, or, for
a video longer than ``segment_s``, segment by segment, each transaction with the point where the
next segment starts. A crash or Ctrl-C loses at most the segment in progress: a rerun skips every
video whose content hash is already indexed with the same embedder and resumes a partly indexed
one from its resume point, with the result an uninterrupted run gives.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from csip_reid.core.errors import ConfigError, ReidError
from csip_reid.core.skeleton import check_skeleton_format
from csip_reid.core.tracklet import Tracklet
from csip_reid.pipeline.pose import skeleton_format_for
from csip_reid.pipeline.pose.skeleton import attach_skeletons
from csip_reid.pipeline.results import IndexSummary, VideoResult
from csip_reid.pipeline.settings import PipelineSettings

if TYPE_CHECKING:
    from csip_reid.gallery.store import Gallery
    from csip_reid.pipeline.extract import ExtractStats, ResumePoint


def camera_for(path: str | Path, camera: str | None = None, camera_from: str = "stem") -> str:
    """Camera name of a video: the given one, else its file stem or its folder's name."""
    if camera:
        return camera
    if camera_from == "parent":
        return Path(path).resolve().parent.name
    if camera_from != "stem":
        raise ConfigError(f"camera_from must be 'stem' or 'parent', got {camera_from!r}")
    return Path(path).stem


def embedder_record(embedder: Any, settings: PipelineSettings) -> dict[str, Any]:
    """What a gallery manifest stores about the embedder and the pipeline that fed it."""
    from csip_reid.gallery.store import embedder_info

    info = embedder_info(embedder)
    info["pipeline"] = settings.to_dict()
    info["model_skeleton_format"] = info.get("skeleton_format")
    # what the gallery stores: skeletons from our pose stage, or none
    info["skeleton_format"] = skeleton_format_for(settings.pose)
    return info


class Pipeline:
    """Detector + tracker + pose + embedder built once from :class:`PipelineSettings`."""

    def __init__(self, settings: PipelineSettings, embedder: Any | None = None) -> None:
        from csip_reid.core.nvdec import resolve_decoder
        from csip_reid.pipeline.detect import create_detector
        from csip_reid.pipeline.embed import create_embedder
        from csip_reid.pipeline.pose import create_pose

        self.settings = settings
        #: ``opencv`` or ``nvdec``: what ``settings.decoder`` means on this machine (fails early if unusable).
        self.decoder = resolve_decoder(settings.decoder, settings.device)
        self.embedder = embedder or create_embedder(settings.embedder, device=settings.device)
        self.detector = create_detector(
            settings.detector, device=settings.device, conf=settings.detector_conf,
            batch_size=settings.detector_batch,
        )
        self.pose = create_pose(settings.pose, device=settings.device)
        self.detector_has_keypoints = bool(getattr(self.detector, "has_keypoints", False))
        self.skeleton_format = self.pose.skeleton_format if self.pose is not None else None
        if self.embedder.needs_skeleton:
            if self.pose is None:
                raise ConfigError(
                    f"embedder {self.embedder.spec} needs skeletons: choose a pose back-end with --pose"
                )
            check_skeleton_format(self.embedder.skeleton_format, self.skeleton_format)
        # A second, skeleton vector space (for `reid query --mode fused`) when the model's skeleton
        # encoder was trained on the skeletons this pipeline makes.
        self.skeleton_space = bool(
            self.pose is not None and hasattr(self.embedder, "embed_skeletons")
            and self.embedder.skeleton_format == self.skeleton_format
        )

    @property
    def fingerprint(self) -> str:
        """The embedder's fingerprint (as it pools now): a video indexed with it is skipped by a rerun."""
        return self.embedder.fingerprint()

    def tracklets(self, path: str | Path, camera: str | None = None, progress: bool = True,
                  stats: Any | None = None, start: int = 0, end: int | None = None,
                  span_s: tuple[float | None, float | None] | None = None) -> Iterable[Tracklet]:
        """Finished tracklets of a video, of frames ``[start, end)`` or of the seconds ``span_s``
        (crops sampled, not embedded)."""
        from csip_reid.pipeline.extract import extract_tracklets

        return extract_tracklets(str(path), self.detector, **self._scan_options(camera, progress, stats),
                                 start=start, end=end, span_s=span_s)

    def _scan_options(self, camera: str | None, progress: bool, stats: Any | None) -> dict[str, Any]:
        s = self.settings
        return {"tracker_name": s.tracker, "camera": camera, "stride": s.stride, "tracker_opts": s.tracker_opts,
                "builder_opts": {"max_samples": s.max_samples, "min_frames": s.min_frames,
                                 "min_box_height": s.min_box_height},
                "progress": progress, "stats": stats, "scan": s.scan, "decoder": self.decoder, "device": s.device}

    def complete(self, tracklets: Sequence[Tracklet]) -> None:
        """Attach skeletons (if a pose back-end is set) and embeddings, in batches."""
        if not tracklets:
            return
        if self.pose is not None:
            attach_skeletons(tracklets, self.pose, detector_has_keypoints=self.detector_has_keypoints)
        for t in tracklets:  # SIE camera index from the camera map (None: the model's mean camera)
            if t.camera_index is None:
                t.camera_index = self.settings.camera_map.get(t.camera)
        self.embedder.embed_tracklets(list(tracklets))
        if self.skeleton_space:
            vecs = self.embedder.embed_skeletons([t.skeleton for t in tracklets])
            for t, v in zip(tracklets, vecs):
                if np.any(v):
                    t.skeleton_embedding = v

    def segments(self, path: str | Path, camera: str | None = None, progress: bool = True, batch: int = 32,
                 stats: Any | None = None, resume: ResumePoint | None = None
                 ) -> Iterator[tuple[list[Tracklet], ResumePoint | None]]:
        """The completed tracklets of a video segment by segment (``settings.segment_s``), each with
        the point the next segment starts at (None after the last); from ``resume`` when given."""
        from csip_reid.pipeline.extract import ResumePoint, extract_segments

        done: list[Tracklet] = []
        pending: list[Tracklet] = []
        for item in extract_segments(str(path), self.detector, **self._scan_options(camera, progress, stats),
                                     segment_s=self.settings.segment_s, resume=resume):
            if isinstance(item, ResumePoint):
                self._flush(pending, done, False)
                yield done, item
                done = []
                continue
            pending.append(item)
            if len(pending) >= batch:
                self._flush(pending, done, False)
        self._flush(pending, done, False)
        yield done, None

    def _flush(self, pending: list[Tracklet], done: list[Tracklet], keep_crops: bool) -> None:
        self.complete(pending)
        if not keep_crops:
            for t in pending:
                t.crops = []  # bounded memory: keep thumbnail, skeleton and embedding only
        done.extend(pending)
        pending.clear()


class Indexer:
    """Adds videos to a gallery with a :class:`Pipeline`.

    Args:
        gallery_dir: Gallery folder (created when missing).
        settings: Pipeline settings.
        progress: Show progress bars.
        log: Callable taking one line of text (status messages).
    """

    def __init__(self, gallery_dir: str | Path, settings: PipelineSettings, progress: bool = True,
                 log: Callable[[str], None] = print) -> None:
        from csip_reid.gallery.store import Gallery

        self.settings = settings
        self.progress = progress
        self.log = log
        self.pipeline = Pipeline(settings)
        recorded = recorded_embedder(gallery_dir)
        if recorded is not None:  # an existing gallery keeps the crop pooling it was built with
            self.pipeline.embedder.use_recorded_pooling(recorded)
        self.gallery = Gallery.open_or_create(gallery_dir, embedder_record(self.pipeline.embedder, settings))
        self._use_stored_camera_map()

    def _use_stored_camera_map(self) -> None:
        """An existing gallery keeps the camera map it was built with (its vectors depend on it)."""
        stored = dict((self.gallery.embedder.get("pipeline") or {}).get("camera_map") or {})
        given = self.settings.camera_map
        if given and given != stored:
            self.gallery.close()
            raise ConfigError(f"gallery {self.gallery.root} was indexed with "
                              f"{'camera map ' + str(stored) if stored else 'no camera map'}; "
                              "its vectors depend on it: use the same --camera-map or another --gallery")
        self.settings.camera_map = stored
        self.times: dict[str, str | None] = {}

    def index(self, paths: Sequence[str | Path], camera: str | None = None, force: bool = False,
              camera_from: str = "stem", start_time: str | None = None,
              time_from_name: str | None = None) -> IndexSummary:
        """Index every video under ``paths`` (files or folders, recursive).

        Args:
            paths: Video files and folders.
            camera: One camera name for all these videos.
            force: Re-index videos already in the gallery.
            camera_from: Without ``camera``: ``stem`` names each video's camera after its file stem,
                ``parent`` after its folder (archives laid out as ``cam3/2024-05-01_0800.mp4``).
            start_time: Wall-clock start (ISO 8601) of the one video given.
            time_from_name: strftime-style pattern of the start time in each file stem; videos
                it does not match fall back to the container's ``creation_time`` (see
                :mod:`csip_reid.core.walltime`).
        """
        from csip_reid.core.progress import ArchiveProgress
        from csip_reid.core.video import iter_video_files

        files = iter_video_files(paths)
        if start_time is not None and len(files) != 1:
            raise ConfigError(f"--start-time names the start of one video; {len(files)} were given "
                              "(use --time-from-name or `reid gallery set-time` for several)")
        self.times = {"start_time": start_time, "pattern": time_from_name}
        summary = IndexSummary()
        t0 = time.perf_counter()
        bar = ArchiveProgress(files, disable=not self.progress or len(files) < 2)  # in video time, with an ETA
        try:
            for f in files:
                summary.results.append(self.index_video(f, camera=camera_for(f, camera, camera_from), force=force))
                bar.finished(f, skipped=summary.results[-1].status == "skipped")
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            bar.close()
            self.gallery.close()  # saves the FAISS index; committed videos are safe either way
            summary.seconds = time.perf_counter() - t0
        return summary

    def video_start(self, path: str) -> str | None:
        """Wall-clock start of a video: ``--start-time``, ``--time-from-name``, the container's tag, or None."""
        from csip_reid.core.walltime import video_start_time

        times = getattr(self, "times", {})
        return video_start_time(path, times.get("start_time"), times.get("pattern"), self.log)

    def index_video(self, path: str | Path, camera: str | None = None, force: bool = False) -> VideoResult:
        """Index one video (:func:`index_one_video`); errors of this video are recorded, not raised."""
        return index_one_video(self.pipeline, self.gallery, path, camera, force=force, progress=self.progress,
                               log=self.log, start_of=self.video_start)


def recorded_embedder(gallery_dir: str | Path) -> dict[str, Any] | None:
    """The embedder record of an existing gallery (None where there is none yet).

    Indexing into it pools crops as it records (:meth:`~csip_reid.core.embedder.Embedder.use_recorded_pooling`),
    for the local and the Ray executor alike.
    """
    from csip_reid.gallery.manifest import read_manifest
    from csip_reid.gallery.store import Gallery

    return read_manifest(Path(gallery_dir))["embedder"] if Gallery.is_gallery(gallery_dir) else None


def index_one_video(pipeline: Pipeline, gallery: Gallery, path: str | Path, camera: str | None = None, *,
                    force: bool = False, progress: bool = False, log: Callable[[str], None] = print,
                    start_of: Callable[[str], str | None] | None = None, stats: ExtractStats | None = None,
                    committed: Callable[[ResumePoint | None], None] | None = None) -> VideoResult:
    """Index one video into ``gallery``: the one place a video's tracklets are made and handed to a gallery.

    Both executors call it: ``reid index`` (:class:`Indexer`) into the destination gallery, a Ray
    actor (:class:`~csip_reid.distributed.worker.ShardWorker`) into its shard. The video is decoded
    once, streaming (tracklets are completed in batches as their tracks end, their crops dropped);
    its frame rate, size and damage come from that one decoding. A video longer than the pipeline's
    ``segment_s`` is committed segment by segment with its resume point; a partly indexed video
    (an earlier run was killed) is resumed from its point when the file, embedder and pipeline
    settings are the same, else indexed again from the start. A video whose content the gallery
    holds with this embedder is skipped unless ``force``; errors of the video are recorded in the
    gallery and returned as a ``failed`` result, not raised (segments already committed are kept).

    Args:
        pipeline: The built pipeline.
        gallery: An open, writable gallery.
        path: The video file.
        camera: Its camera name (default: the file stem).
        force: Index it again from its first frame even if the gallery holds it (or part of it).
        progress: Show the video's progress bar.
        log: Told, one line each, what the caller's user should know: skipped, resumed, failed, damaged, empty.
        start_of: The video's wall-clock start (ISO 8601 or None), asked only when it is stored.
        stats: An :class:`~csip_reid.pipeline.extract.ExtractStats` to fill while it runs (read it from
            another thread for live progress).
        committed: Called after each commit with its resume point (None: the video is complete).
    """
    from csip_reid.core.video import video_content_hash
    from csip_reid.gallery.videos import VideoRecord
    from csip_reid.pipeline.extract import ExtractStats

    path = str(Path(path).resolve())
    t0 = time.perf_counter()
    stats = stats if stats is not None else ExtractStats()
    content_hash = ""
    try:
        content_hash = video_content_hash(path)
        if not force and gallery.is_indexed(content_hash, pipeline.fingerprint):
            log(f"skip {path}: already indexed with this embedder")
            return VideoResult(path, "skipped", content_hash=content_hash)
        key = _settings_key(pipeline)  # stored with each resume point, checked before resuming from one
        resume = None if force else _resume_point(pipeline, gallery, path, content_hash, key, log)
        append, cam = resume is not None, camera or Path(path).stem
        for tracklets, point in pipeline.segments(path, camera=camera, progress=progress, stats=stats, resume=resume):
            state = None if point is None else {**point.to_dict(), "settings": key}
            record = VideoRecord(path, content_hash, cam, fps=stats.fps, num_frames=stats.frame_count,
                                 width=stats.width, height=stats.height,
                                 stats={**stats.to_dict(), **({} if point is None else
                                                              {"indexed_to_s": round(point.frame / stats.fps, 3)})},
                                 start_time=start_of(path) if start_of is not None and not append else None)
            gallery.add_video(record, tracklets, resume=state, append=append)
            append = True
            if committed is not None:
                committed(point)
    except ReidError as e:
        gallery.mark_failed(path, str(e))
        log(f"failed {path}: {e}")
        return VideoResult(path, "failed", error=str(e), seconds=time.perf_counter() - t0,
                           content_hash=content_hash)
    if stats.damage:
        log(f"damaged {path}: {stats.damage}")
    if not stats.tracks:
        log(f"no person found in {path} (recorded as indexed with 0 tracklets)")
    return VideoResult(
        path, "indexed" if stats.tracks else "empty", tracklets=stats.tracks,
        frames=stats.frames_read, failed_frames=stats.frames_failed, missing_frames=stats.frames_missing,
        promised_frames=stats.frame_count, seconds=time.perf_counter() - t0, content_hash=content_hash,
    )


def _settings_key(pipeline: Pipeline) -> str:
    """What a resume point must have been written with: the pipeline settings and the decoder they resolved to."""
    import hashlib
    import json

    text = json.dumps({**pipeline.settings.to_dict(), "decoder": pipeline.decoder}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _resume_point(pipeline: Pipeline, gallery: Gallery, path: str, content_hash: str, key: str,
                  log: Callable[[str], None]) -> ResumePoint | None:
    """Where an earlier, interrupted run of this video stopped, if this run can go on from there."""
    from csip_reid.pipeline.extract import ResumePoint

    stored = gallery.resume_point(path)
    if stored is None:
        return None
    why = ("the file changed" if stored[0] != content_hash else
           "the embedder changed" if stored[1] != pipeline.fingerprint else
           "the pipeline settings changed" if stored[2].get("settings") != key else "")
    if why:
        log(f"restart {path} from its first frame: {why} since it was partly indexed")
        return None
    point = ResumePoint.from_dict(stored[2])
    log(f"resume {path} at frame {point.frame} (segment {point.segment + 1}; earlier segments are kept)")
    return point
