"""Video → tracklets, streaming: decode → batched detection → per-frame tracking → tracklets.

Frames are decoded in a background thread, detected in batches of ``detector.batch_size``, and
tracked one by one; each tracklet is yielded as soon as its track is lost for good (or at the end
of the video), so memory does not grow with the video's length.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from csip_reid.core.tracklet import Tracklet
from csip_reid.core.video import VideoReader
from csip_reid.pipeline.detect import Detector, create_detector
from csip_reid.tracking import TrackletBuilder, create_tracker


@dataclass
class ExtractStats:
    """What one :func:`extract_tracklets` run saw (filled in place while it runs).

    Attributes:
        video: The video path.
        fps: Container frame rate (or the 25 fps fallback, see ``fps_assumed``).
        fps_assumed: True when the container reported no frame rate.
        frame_count: Frames the container claims.
        width: Frame width.
        height: Frame height.
        frames_read: Frames decoded and processed (after the stride).
        frames_failed: Frames that failed to decode and were skipped.
        frames_missing: Frames the header promised that never decoded at the end of the file.
        damage: The reader's one-line report on a damaged file (``""`` when intact).
        detections: Person detections over all processed frames.
        tracks: Tracklets yielded.
        tracks_dropped: Tracks dropped as too short or too small.
        seconds: Wall time so far.
    """

    video: str = ""
    fps: float = 0.0
    fps_assumed: bool = False
    frame_count: int = 0
    width: int = 0
    height: int = 0
    frames_read: int = 0
    frames_failed: int = 0
    frames_missing: int = 0
    damage: str = ""
    detections: int = 0
    tracks: int = 0
    tracks_dropped: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def extract_tracklets(
    path: str | Path,
    detector: Detector | str,
    tracker_name: str = "bytetrack",
    camera: str | None = None,
    stride: int = 1,
    builder_opts: dict[str, Any] | None = None,
    tracker_opts: dict[str, Any] | None = None,
    progress: bool = True,
    batch_size: int | None = None,
    start: int = 0,
    end: int | None = None,
    stats: ExtractStats | None = None,
) -> Iterator[Tracklet]:
    """Yield the person tracklets of one video as their tracks finish.

    Args:
        path: Video file.
        detector: A :class:`Detector` or a detector spec (built on CPU).
        tracker_name: Tracker spec (``bytetrack``, ``botsort``, ``KIND:settings.yaml``).
        camera: Camera name stored in the tracklets; default: the video file's stem
            (``/data/cam03.mp4`` → ``cam03``).
        stride: Process every ``stride``-th frame. The tracker is told the reduced frame rate.
        builder_opts: Options of :class:`TrackletBuilder` (``max_samples``, ``min_frames``, ...);
            ``lost_after`` defaults to the tracker's lost-track buffer.
        tracker_opts: Tracker setting overrides (``track_buffer``, ``match_thresh``, ...).
        progress: Show a tqdm bar for the video.
        batch_size: Frames per detector call (default ``detector.batch_size``).
        start: First frame index.
        end: Frame index to stop before (None: the end).
        stats: An :class:`ExtractStats` to fill in (read it after the iterator is exhausted).

    Raises:
        VideoError: The video cannot be opened or has no decodable frame.
    """
    t0 = time.perf_counter()
    path = Path(path)
    if isinstance(detector, str):
        detector = create_detector(detector)
    batch = max(1, batch_size or detector.batch_size)
    reader = VideoReader(path, stride=stride, start=start, end=end, prefetch=2 * batch)
    stats = stats if stats is not None else ExtractStats()
    stats.video, stats.fps, stats.fps_assumed = str(path), reader.fps, reader.fps_assumed
    stats.frame_count, stats.width, stats.height = reader.frame_count, reader.width, reader.height

    tracker = create_tracker(tracker_name, frame_rate=reader.fps / stride, **(tracker_opts or {}))
    opts = {"lost_after": tracker.max_lost * stride, **(builder_opts or {})}
    builder = TrackletBuilder(str(path), camera or path.stem, **opts)

    def flush(frames: list[tuple[int, float, Any]]) -> Iterator[Tracklet]:
        for (index, ts, frame), dets in zip(frames, detector.detect([f[2] for f in frames]), strict=True):
            stats.detections += len(dets)
            yield from builder.update(index, ts, frame, tracker.update(dets, frame))

    bar = tqdm(total=reader.expected_frames, desc=path.name, unit="frame", disable=not progress, leave=False)
    pending: list[tuple[int, float, Any]] = []
    try:
        for item in reader:
            pending.append(item)
            if len(pending) == batch:
                for t in flush(pending):
                    stats.tracks += 1
                    yield t
                stats.frames_read += len(pending)
                bar.update(len(pending))
                pending = []
        for t in [*flush(pending), *builder.finish()]:
            stats.tracks += 1
            yield t
        stats.frames_read += len(pending)
        bar.update(len(pending))
    finally:
        bar.close()
        stats.frames_failed = reader.failed_frames
        stats.frames_missing = reader.frames_missing
        stats.damage = reader.damage_report() or ""
        stats.tracks_dropped = builder.dropped
        stats.seconds = time.perf_counter() - t0
