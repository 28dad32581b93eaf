"""Video → tracklets, streaming: decode → batched detection → per-frame tracking → tracklets.

Frames are decoded, detected, and tracked one by one; each tracklet is yielded as soon as its
track is lost for good (or at the end of the video), so memory does not grow with the video's
length. Both scans decode in a background thread (:mod:`csip_reid.pipeline.scanloop`):
``scan="full"`` detects every frame; ``scan="adaptive"`` detects only what
:class:`~csip_reid.pipeline.scan.ScanPolicy` asks for.

**Segments** (:func:`extract_segments`, ``segment_s``): a long video is scanned in segments of at
least ``segment_s`` seconds, each ending at the first frame after that where nobody is tracked.
There the scan starts over as a resumed run would: a new reader seeks to that frame, and the tracker,
scan policy and tracklet builder are new (track ids go on from the last). Because an uninterrupted
run and a run resumed from a :class:`ResumePoint` do exactly the same thing from that frame on,
resuming gives the tracklets the uninterrupted run gives, and nobody tracked is cut in two.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from csip_reid.core.progress import VideoProgress
from csip_reid.core.tracklet import Tracklet
from csip_reid.core.video import VideoReader
from csip_reid.pipeline.detect import Detector, create_detector
from csip_reid.pipeline.scan import ScanConfig, check_scan
from csip_reid.pipeline.scanloop import AdaptiveScan, FullScan
from csip_reid.tracking import create_tracker


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
        segments: Segments finished before the last one (0: the video was one segment).
        resumed_at: Frame this run resumed from (0: it started at the beginning).
        seconds: Wall time so far (of this run: a resumed run's earlier part is not counted).
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
    segments: int = 0
    resumed_at: int = 0
    seconds: float = 0.0

    #: Counters a resume point carries over (what the run before the resume point saw).
    COUNTERS = ("frames_read", "frames_detected", "keyframes_only", "rewinds", "gate_checks", "motion_onsets",
                "frames_failed", "detections", "tracks", "tracks_dropped", "segments")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def counters(self) -> dict[str, int]:
        """The counters so far (stored with a resume point)."""
        return {k: int(getattr(self, k)) for k in self.COUNTERS}

    def restore(self, counters: dict[str, Any]) -> None:
        """Add the counters of the run a resume point was written by."""
        for k in self.COUNTERS:
            setattr(self, k, getattr(self, k) + int(counters.get(k, 0)))

    def opened(self, reader: VideoReader) -> None:
        """The video's facts, from the reader that decodes it."""
        self.video, self.fps, self.fps_assumed = str(reader.path), reader.fps, reader.fps_assumed
        self.frame_count, self.width, self.height = reader.frame_count, reader.width, reader.height

    def closed(self, reader: VideoReader, dropped: int) -> None:
        """Add what one pass over ``reader`` (a segment) decoded, failed and dropped."""
        self.frames_failed += reader.failed_frames
        self.frames_missing = reader.frames_missing  # the end of the file is in the last pass
        self.damage = self._damage() if self.segments else reader.damage_report() or ""
        self.decoder = reader.decoder
        if reader.skip_stats:
            off = reader.skip_stats["skip_off"]
            self.decode_mode = "keyframes while idle" + (f" (then every frame: {off})" if off else "")
            self.keyframes_only += reader.skip_stats["keyframes_decoded"]
            self.rewinds += reader.skip_stats["rewinds"]
        self.tracks_dropped += dropped

    def _damage(self) -> str:
        """The damage line of a video read in several segments (the reader's own covers its segment)."""
        if not self.frames_failed and not self.frames_missing:
            return ""
        of = f" of the {self.frame_count} frames the header promises" if self.frame_count else ""
        return (f"{self.frames_missing} frames missing at the end{of}, {self.frames_failed} failed mid-file "
                f"(read in {self.segments + 1} segments): the file looks truncated or damaged")


@dataclass(frozen=True)
class ResumePoint:
    """Where a segmented scan of a video can start over (stored with each segment's tracklets).

    Attributes:
        frame: First frame of the next segment.
        track_offset: Track ids used so far (the next segment's ids are above).
        segment: Segments finished.
        skip_off: Why keyframe skipping was turned off for this file ("" while it is allowed).
        counters: :meth:`ExtractStats.counters` up to ``frame``.
    """

    frame: int
    track_offset: int
    segment: int
    skip_off: str = ""
    counters: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResumePoint:
        return cls(int(data["frame"]), int(data["track_offset"]), int(data["segment"]),
                   str(data.get("skip_off", "")), {k: int(v) for k, v in dict(data.get("counters", {})).items()})


def extract_tracklets(path: str | Path, detector: Detector | str, **options: Any) -> Iterator[Tracklet]:
    """Yield the person tracklets of one video as their tracks finish (one segment: the whole range).

    Takes the arguments of :func:`extract_segments` but ``segment_s`` and ``resume``.
    """
    for item in extract_segments(path, detector, **options):
        assert isinstance(item, Tracklet)  # no resume points without segment_s
        yield item


def extract_segments(
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
    segment_s: float = 0.0,
    resume: ResumePoint | None = None,
) -> Iterator[Tracklet | ResumePoint]:
    """Yield the tracklets of one video as their tracks finish, and a :class:`ResumePoint` after each segment.

    What the caller needs of the video (frame rate, size, frame count, damage) is in ``stats`` once
    the iterator is exhausted (or closed). The tracklets before a resume point are its segments'.

    Args:
        path: Video file.
        detector: A :class:`Detector` or a detector spec (built on CPU).
        tracker_name: Tracker spec (``bytetrack``, ``botsort``, ``KIND:settings.yaml``).
        camera: Camera name stored in the tracklets (default: the file stem, ``cam03`` of ``/data/cam03.mp4``).
        stride: Process every ``stride``-th frame. The tracker is told the reduced frame rate.
        builder_opts: :class:`TrackletBuilder` options (``lost_after``: the tracker's lost-track buffer).
        tracker_opts: Tracker setting overrides (``track_buffer``, ``match_thresh``, ...).
        progress: Show a tqdm bar for the video.
        batch_size: Frames per detector call (default ``detector.batch_size``; full scan only).
        start: First frame index.
        end: Frame index to stop before (None: the end).
        stats: An :class:`ExtractStats` to fill in (read it after the iterator is exhausted).
        scan: ``full`` (detect every frame) or ``adaptive`` (see :mod:`csip_reid.pipeline.scan`).
        scan_config: Knobs of the adaptive scan.
        decoder: ``opencv``, ``pyav`` (keyframes only while the adaptive scan is idle), ``nvdec`` or ``auto``.
        device: Device of the pipeline (``auto`` decodes on it when it is a GPU).
        span_s: ``(start_s, end_s)`` in seconds (None: start or end), overrides ``start``/``end``.
        segment_s: Shortest segment in seconds of video (0: one segment, no resume points).
        resume: Start from this point of an earlier run (with the same arguments) instead of ``start``.

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

    def open_reader(first: int, seek: bool, skip_off: str = "", probe: VideoReader | None = None) -> VideoReader:
        return VideoReader(path, stride=stride, start=first, end=end, decoder=decoder, device=device,
                           prefetch=1 if scan == "adaptive" else 2 * batch, seek=seek, skip_off=skip_off,
                           probe=probe)

    reader = open_reader(start, False)
    if span_s is not None:
        reader.set_span(*span_s)
    end = reader.end  # set by a span: the readers of later segments stop there too
    stats.opened(reader)

    def make_loop(reader: VideoReader) -> FullScan | AdaptiveScan:
        tracker = create_tracker(tracker_name, frame_rate=reader.fps / stride, **(tracker_opts or {}))
        if scan == "adaptive":
            return AdaptiveScan(reader, detector, tracker, camera, builder_opts, stats, scan_config or ScanConfig())
        return FullScan(reader, detector, tracker, camera, builder_opts, stats, batch)

    try:
        yield from _segments(reader, open_reader, make_loop, resume, segment_s, stats, progress)
    finally:
        stats.seconds = time.perf_counter() - t0


def _segments(reader: VideoReader, open_reader: Callable[..., VideoReader],
              make_loop: Callable[[VideoReader], FullScan | AdaptiveScan], resume: ResumePoint | None,
              segment_s: float, stats: ExtractStats, progress: bool) -> Iterator[Tracklet | ResumePoint]:
    """Scan segment after segment from ``reader`` or from ``resume`` (see :func:`extract_segments`)."""
    point = resume or ResumePoint(reader.start, 0, 0)
    if resume is not None:
        stats.restore(resume.counters)
        stats.resumed_at = resume.frame
        reader = open_reader(resume.frame, True, resume.skip_off, reader)
    every = max(1, round(segment_s * reader.fps)) if segment_s > 0 else 0
    bar = VideoProgress(reader.path, reader.fps, reader.frame_count, initial=reader.start, end=reader.end,
                        disable=not progress)  # in video time from the resume point, a total estimated if none
    try:
        yield from _scan(reader, open_reader, make_loop, point, every, stats, bar)
    finally:
        bar.close()


def _scan(reader: VideoReader, open_reader: Callable[..., VideoReader],
          make_loop: Callable[[VideoReader], FullScan | AdaptiveScan], point: ResumePoint, every: int,
          stats: ExtractStats, bar: VideoProgress) -> Iterator[Tracklet | ResumePoint]:
    while True:
        loop = make_loop(reader)
        loop.segment(point.track_offset, reader.start + every if every else None)
        try:
            for t in loop.run(bar):
                stats.tracks += 1
                yield t
        finally:  # also when the consumer stops early or fails: what was seen is counted
            loop.count()
            stats.closed(reader, loop.builder.dropped)
        if loop.stopped_at is None:
            return
        stats.segments += 1
        point = ResumePoint(loop.stopped_at, loop.track_offset, point.segment + 1,
                            reader.skip_stats.get("skip_off", "") or reader.skip_off, stats.counters())
        yield point
        reader = open_reader(point.frame, True, point.skip_off, reader)
