"""The scan loops of one segment of a video: the full scan and the adaptive scan.

:func:`~csip_reid.pipeline.extract.extract_segments` runs one loop per segment: a loop reads its
reader, runs the detector on what its scan wants, feeds the tracker and the tracklet builder, and
yields the tracklets whose tracks ended. ``FullScan`` detects every frame in batches;
``AdaptiveScan`` detects only what :class:`~csip_reid.pipeline.scan.ScanPolicy` asks for (motion
onsets and keyframes), grabs the other frames without converting them, and interpolates the boxes
between keyframes of each finished tracklet.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from csip_reid.core.detections import Detections
from csip_reid.core.progress import VideoProgress
from csip_reid.core.tracklet import Tracklet
from csip_reid.core.video import VideoReader
from csip_reid.pipeline.detect import Detector
from csip_reid.pipeline.scan import AGE, SKIP, ScanConfig, ScanPolicy
from csip_reid.tracking import TrackletBuilder
from csip_reid.tracking.interpolate import fill_gaps

if TYPE_CHECKING:
    from csip_reid.pipeline.extract import ExtractStats


class SegmentScan:
    """What both scans share: the reader, detector, tracker and tracklet builder of one video."""

    def __init__(self, reader: VideoReader, detector: Detector, tracker: Any, camera: str | None,
                 builder_opts: dict[str, Any], stats: ExtractStats) -> None:
        self.reader, self.detector, self.tracker, self.stats = reader, detector, tracker, stats
        self.builder = TrackletBuilder(str(reader.path), camera or reader.path.stem, **builder_opts)
        self.id_base = self.track_offset = 0
        self.until: int | None = None
        #: Where the segment stopped (None: the scan read to the end of its range).
        self.stopped_at: int | None = None

    def segment(self, track_offset: int, until: int | None) -> None:
        """Scan one segment: ids above ``track_offset``, stop at the first idle frame from ``until``.

        Args:
            track_offset: Track ids used by earlier segments (this segment's tracker counts from 1).
            until: The segment ends at the first frame from this one where nobody is tracked (None: never).
        """
        self.id_base = self.track_offset = int(track_offset)
        self.until = until

    def track(self, dets: Detections, frame: Any) -> Detections:
        """The tracker's output for one frame, ids shifted above the earlier segments' ids."""
        tracked = self.tracker.update(dets, frame)
        if len(tracked):
            tracked.tracker_id = tracked.tracker_id + self.id_base
            self.track_offset = max(self.track_offset, int(tracked.tracker_id.max()))
        return tracked

    def stops(self, index: int, idle: bool) -> bool:
        """Whether the segment ends before frame ``index`` (it is due and nobody is tracked)."""
        if self.until is None or index < self.until or not idle:
            return False
        self.stopped_at = index
        return True

    def detect(self, frames: list[tuple[int, float, Any]]) -> Iterator[tuple[int, float, Any, Detections]]:
        """``(index, timestamp, frame, detections)`` of each frame, detected in one call."""
        for (index, ts, frame), dets in zip(frames, self.detector.detect([f[2] for f in frames]), strict=True):
            self.stats.detections += len(dets)
            yield index, ts, frame, dets

    def run(self, bar: VideoProgress) -> Iterator[Tracklet]:
        """Yield the video's tracklets as their tracks end (``bar`` counts the frames scanned)."""
        raise NotImplementedError

    def count(self) -> None:
        """Add the scan's own counts to the stats (frames read and detected), once, at its end."""
        raise NotImplementedError


class FullScan(SegmentScan):
    """Every frame is detected, in batches of the detector's batch size."""

    def __init__(self, reader: VideoReader, detector: Detector, tracker: Any, camera: str | None,
                 builder_opts: dict[str, Any] | None, stats: ExtractStats, batch: int) -> None:
        opts = {"lost_after": tracker.max_lost * reader.stride, **(builder_opts or {})}
        super().__init__(reader, detector, tracker, camera, opts, stats)
        self.batch = batch
        self.frames_read = 0

    def _flush(self, pending: list[tuple[int, float, Any]], bar: VideoProgress) -> Iterator[Tracklet]:
        for index, ts, frame, dets in self.detect(pending):
            yield from self.builder.update(index, ts, frame, self.track(dets, frame))
        self.frames_read += len(pending)
        bar.update_to(pending[-1][0] + 1 if pending else bar.n)

    def run(self, bar: VideoProgress) -> Iterator[Tracklet]:
        pending: list[tuple[int, float, Any]] = []
        for item in self.reader:
            if not pending and self.stops(item[0], not self.builder.open):  # between two batches
                break
            pending.append(item)
            if len(pending) == self.batch:
                yield from self._flush(pending, bar)
                pending = []
        yield from [*self._flush(pending, bar), *self.builder.finish()]

    def count(self) -> None:
        self.stats.frames_read += self.frames_read
        self.stats.frames_detected += self.frames_read


_NOBODY = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))


class AdaptiveScan(SegmentScan):
    """The adaptive scan: only what :class:`~csip_reid.pipeline.scan.ScanPolicy` asks for is detected.

    Each detected frame is detected at once (the detector's batch size is not used): which frame is
    converted and detected next depends on the tracks found so far, and deciding it in frame order
    keeps the scan deterministic and independent of the detector's batch size. A background thread
    decodes in lockstep with this one (the reader's ``select`` is set here, ``prefetch=1``): it grabs
    the next frame while this thread detects and tracks the last one, and asks the policy about it
    only once this thread is done, so the decisions are the same as without the thread.
    """

    def __init__(self, reader: VideoReader, detector: Detector, tracker: Any, camera: str | None,
                 builder_opts: dict[str, Any] | None, stats: ExtractStats, config: ScanConfig) -> None:
        self.rate = reader.fps / reader.stride
        self.policy = policy = ScanPolicy(self.rate, lost_steps=tracker.max_lost, config=config)
        # a track may be kept a little longer than at full rate (its window is counted in keyframes)
        opts = {"lost_after": (tracker.max_lost + 2 * policy.max_interval) * reader.stride, **(builder_opts or {})}
        self.min_frames = int(opts.pop("min_frames", 5))  # counted after interpolation, as a full scan counts it
        super().__init__(reader, detector, tracker, camera, {**opts, "min_frames": min(2, self.min_frames)}, stats)
        self.max_gap = 2 * policy.max_interval * reader.stride  # one keyframe missed still counts as a gap
        self.scanned = 0
        self.looked = bytearray()  # 1 for each frame (from ``start``) the detector ran on or that aged tracks
        reader.select = self._select
        reader.keyframes = policy if reader.decoder == "pyav" else None  # quiet stretches: keyframes only

    def _step(self, index: int) -> int:
        return (index - self.reader.start) // self.reader.stride

    def _select(self, index: int) -> bool:
        self.scanned += 1
        return self.policy.wants(self._step(index))

    def _mark(self, index: int) -> None:
        i = index - self.reader.start
        if i >= len(self.looked):
            self.looked.extend(bytes(max(i + 1 - len(self.looked), 4096)))
        self.looked[i] = 1

    def _finished(self, tracklets: list[Tracklet]) -> Iterator[Tracklet]:
        for t in tracklets:
            seen = t.frames
            t = fill_gaps(t, self.max_gap, self.reader.stride)
            # min_frames counts what a full scan would have seen: the tracked frames plus the filled-in
            # frames the scan skipped, not filled-in frames where the detector ran and missed the person
            filled = np.setdiff1d(t.frames, seen, assume_unique=True) - self.reader.start
            missed = sum(self.looked[i] for i in filled.tolist() if i < len(self.looked))
            if len(t) - missed < self.min_frames:
                self.builder.dropped += 1
                continue
            yield t

    def _track(self, index: int, ts: float, frame: Any, dets: Detections, aged: bool = False) -> Iterator[Tracklet]:
        """Track one frame's detections (``aged``: an empty frame that only ages lost tracks)."""
        self._mark(index)
        tracked = self.track(dets, frame)
        step = self._step(index)
        if aged:
            self.policy.aged(step)
        else:
            self.policy.observe(step, frame, dets, tracked)
        self.tracker.set_frame_rate(self.rate / self.policy.interval)
        yield from self._finished(self.builder.update(index, ts, frame, tracked))

    def run(self, bar: VideoProgress) -> Iterator[Tracklet]:
        for item in self.reader:
            if self.stops(item[0], self.policy.idle()):
                break
            bar.update_to(item[0] + 1)  # by position: frames skipped to a keyframe count
            action = self.policy.decide(self._step(item[0]), item[2])
            if action == SKIP:
                continue
            if action == AGE:  # only lost tracks, nothing changed: age them without the detector
                yield from self._track(*item, _NOBODY, aged=True)
                continue
            # detected at once: the next keyframe is planned from this frame's tracks (holding
            # keyframes back for a batch would plan from stale speeds and fragment tracks)
            for detected in self.detect([item]):
                yield from self._track(*detected)
        yield from self._finished(self.builder.finish())

    def count(self) -> None:
        self.stats.frames_read += self.scanned - (self.stopped_at is not None)  # the next segment reads it
        self.stats.frames_detected += self.policy.detected
        self.stats.gate_checks += self.policy.gated
        self.stats.motion_onsets += self.policy.onsets
