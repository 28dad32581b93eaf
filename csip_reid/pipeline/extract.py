"""Video → tracklets, streaming: decode → batched detection → per-frame tracking → tracklets.

Frames are decoded, detected in batches of ``detector.batch_size``, and tracked one by one; each
tracklet is yielded as soon as its track is lost for good (or at the end of the video), so memory
does not grow with the video's length. Both scans decode in a background thread. ``scan="full"``
detects every frame; ``scan="adaptive"`` detects only what :class:`~csip_reid.pipeline.scan.ScanPolicy` asks
for (motion onsets and keyframes), grabs the other frames without converting them, and
interpolates the boxes between keyframes of each finished tracklet.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from csip_reid.core.detections import Detections
from csip_reid.core.tracklet import Tracklet
from csip_reid.core.video import VideoReader
from csip_reid.pipeline.detect import Detector, create_detector
from csip_reid.pipeline.scan import AGE, SKIP, ScanConfig, ScanPolicy, check_scan
from csip_reid.tracking import TrackletBuilder, create_tracker
from csip_reid.tracking.interpolate import fill_gaps


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
        frames_detected: Frames the detector ran on (all of ``frames_read`` with ``scan="full"``).
        scan: ``full`` or ``adaptive``.
        decoder: The decoder that read the video: ``opencv``, ``pyav`` or ``nvdec``.
        decode_mode: ``every frame``, or ``keyframes while idle`` (adaptive scan with ``pyav``:
            quiet stretches decoded keyframes only), with why skipping stopped if it did.
        keyframes_only: Frames decoded while skipping to keyframes.
        rewinds: Times a keyframe showed a change and the frames before it were decoded again.
        gate_checks: Adaptive scan: frames the motion gate compared.
        motion_onsets: Adaptive scan: gate checks that saw motion (and were detected).
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
    frames_detected: int = 0
    scan: str = "full"
    decoder: str = ""
    decode_mode: str = "every frame"
    keyframes_only: int = 0
    rewinds: int = 0
    gate_checks: int = 0
    motion_onsets: int = 0
    frames_failed: int = 0
    frames_missing: int = 0
    damage: str = ""
    detections: int = 0
    tracks: int = 0
    tracks_dropped: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def opened(self, reader: VideoReader) -> None:
        """The video's facts, from the reader that decodes it."""
        self.video, self.fps, self.fps_assumed = str(reader.path), reader.fps, reader.fps_assumed
        self.frame_count, self.width, self.height = reader.frame_count, reader.width, reader.height

    def closed(self, reader: VideoReader, dropped: int, seconds: float) -> None:
        """What the pass over ``reader`` decoded, failed and dropped, and how long it took."""
        self.frames_failed, self.frames_missing = reader.failed_frames, reader.frames_missing
        self.damage = reader.damage_report() or ""
        self.decoder = reader.decoder
        if reader.skip_stats:
            off = reader.skip_stats["skip_off"]
            self.decode_mode = "keyframes while idle" + (f" (then every frame: {off})" if off else "")
            self.keyframes_only, self.rewinds = reader.skip_stats["keyframes_decoded"], reader.skip_stats["rewinds"]
        self.tracks_dropped = dropped
        self.seconds = seconds


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
    scan: str = "full",
    scan_config: ScanConfig | None = None,
    decoder: str = "opencv",
    device: str = "cpu",
    span_s: tuple[float | None, float | None] | None = None,
) -> Iterator[Tracklet]:
    """Yield the person tracklets of one video as their tracks finish.

    The video is opened once, here; what the caller needs of it (frame rate, size, frame count,
    damage) is in ``stats`` once the iterator is exhausted (or closed).

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
        batch_size: Frames per detector call (default ``detector.batch_size``; full scan only).
        start: First frame index.
        end: Frame index to stop before (None: the end).
        stats: An :class:`ExtractStats` to fill in (read it after the iterator is exhausted).
        scan: ``full`` (detect every frame) or ``adaptive`` (see :mod:`csip_reid.pipeline.scan`).
        scan_config: Knobs of the adaptive scan.
        decoder: ``opencv``, ``pyav``, ``nvdec`` or ``auto`` (see :mod:`csip_reid.core.nvdec`); with
            ``pyav`` the adaptive scan decodes quiet stretches keyframes only.
        device: Device of the pipeline (``auto`` decodes on it when it is a GPU).
        span_s: ``(start_s, end_s)``: only this part of the video, in seconds (None: its start or
            end), converted to frames with the video's own frame rate; overrides ``start``/``end``.

    Raises:
        VideoError: The video cannot be opened or has no decodable frame.
    """
    t0 = time.perf_counter()
    path = Path(path)
    check_scan(scan)
    if isinstance(detector, str):
        detector = create_detector(detector)
    batch = max(1, batch_size or detector.batch_size)
    stats = stats if stats is not None else ExtractStats()
    stats.scan = scan
    reader = VideoReader(path, stride=stride, start=start, end=end, decoder=decoder, device=device,
                         prefetch=1 if scan == "adaptive" else 2 * batch)
    if span_s is not None:
        reader.set_span(*span_s)
    stats.opened(reader)
    tracker = create_tracker(tracker_name, frame_rate=reader.fps / stride, **(tracker_opts or {}))
    loop: _FullScan | _AdaptiveScan
    if scan == "adaptive":
        loop = _AdaptiveScan(reader, detector, tracker, camera, builder_opts, stats, scan_config or ScanConfig())
    else:
        loop = _FullScan(reader, detector, tracker, camera, builder_opts, stats, batch)
    bar = tqdm(total=reader.expected_frames, desc=path.name, unit="frame", disable=not progress, leave=False)
    try:
        for t in loop.run(bar):
            stats.tracks += 1
            yield t
    finally:  # also when the consumer stops early or fails: what was seen is counted
        bar.close()
        loop.count()
        stats.closed(reader, loop.builder.dropped, time.perf_counter() - t0)


class _Scan:
    """What both scans share: the reader, detector, tracker and tracklet builder of one video."""

    def __init__(self, reader: VideoReader, detector: Detector, tracker: Any, camera: str | None,
                 builder_opts: dict[str, Any], stats: ExtractStats) -> None:
        self.reader, self.detector, self.tracker, self.stats = reader, detector, tracker, stats
        self.builder = TrackletBuilder(str(reader.path), camera or reader.path.stem, **builder_opts)

    def detect(self, frames: list[tuple[int, float, Any]]) -> Iterator[tuple[int, float, Any, Detections]]:
        """``(index, timestamp, frame, detections)`` of each frame, detected in one call."""
        for (index, ts, frame), dets in zip(frames, self.detector.detect([f[2] for f in frames]), strict=True):
            self.stats.detections += len(dets)
            yield index, ts, frame, dets

    def run(self, bar: tqdm) -> Iterator[Tracklet]:
        """Yield the video's tracklets as their tracks end (``bar`` counts the frames scanned)."""
        raise NotImplementedError

    def count(self) -> None:
        """Fill the scan's own counts into the stats (frames read and detected)."""
        raise NotImplementedError


class _FullScan(_Scan):
    """Every frame is detected, in batches of the detector's batch size."""

    def __init__(self, reader: VideoReader, detector: Detector, tracker: Any, camera: str | None,
                 builder_opts: dict[str, Any] | None, stats: ExtractStats, batch: int) -> None:
        opts = {"lost_after": tracker.max_lost * reader.stride, **(builder_opts or {})}
        super().__init__(reader, detector, tracker, camera, opts, stats)
        self.batch = batch
        self.frames_read = 0

    def _flush(self, pending: list[tuple[int, float, Any]], bar: tqdm) -> Iterator[Tracklet]:
        for index, ts, frame, dets in self.detect(pending):
            yield from self.builder.update(index, ts, frame, self.tracker.update(dets, frame))
        self.frames_read += len(pending)
        bar.update(len(pending))

    def run(self, bar: tqdm) -> Iterator[Tracklet]:
        pending: list[tuple[int, float, Any]] = []
        for item in self.reader:
            pending.append(item)
            if len(pending) == self.batch:
                yield from self._flush(pending, bar)
                pending = []
        yield from [*self._flush(pending, bar), *self.builder.finish()]

    def count(self) -> None:
        self.stats.frames_read = self.stats.frames_detected = self.frames_read


_NOBODY = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))


class _AdaptiveScan(_Scan):
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
        tracked = self.tracker.update(dets, frame)
        step = self._step(index)
        if aged:
            self.policy.aged(step)
        else:
            self.policy.observe(step, frame, dets, tracked)
        self.tracker.set_frame_rate(self.rate / self.policy.interval)
        yield from self._finished(self.builder.update(index, ts, frame, tracked))

    def run(self, bar: tqdm) -> Iterator[Tracklet]:
        for item in self.reader:
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
            bar.update(self._step(item[0]) + 1 - bar.n)  # by position: frames skipped to a keyframe count
        yield from self._finished(self.builder.finish())

    def count(self) -> None:
        self.stats.frames_read = self.scanned
        self.stats.frames_detected = self.policy.detected
        self.stats.gate_checks, self.stats.motion_onsets = self.policy.gated, self.policy.onsets
