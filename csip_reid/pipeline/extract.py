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
        scan: ``full`` (detect every frame) or ``adaptive`` (see :mod:`csip_reid.pipeline.scan`).
        scan_config: Knobs of the adaptive scan.
        decoder: ``opencv``, ``pyav``, ``nvdec`` or ``auto`` (see :mod:`csip_reid.core.nvdec`); with
            ``pyav`` the adaptive scan decodes quiet stretches keyframes only.
        device: Device of the pipeline (``auto`` decodes on it when it is a GPU).

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
    if scan == "adaptive":
        reader = VideoReader(path, stride=stride, start=start, end=end, prefetch=1, decoder=decoder,
                             device=device)
        yield from _extract_adaptive(reader, detector, tracker_name, camera, builder_opts, tracker_opts,
                                     progress, stats, scan_config or ScanConfig(), t0)
        return
    reader = VideoReader(path, stride=stride, start=start, end=end, prefetch=2 * batch, decoder=decoder,
                         device=device)
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
        stats.frames_detected = stats.frames_read
        stats.frames_failed = reader.failed_frames
        stats.decoder = reader.decoder
        stats.tracks_dropped = builder.dropped
        stats.seconds = time.perf_counter() - t0


_NOBODY = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32))


def _extract_adaptive(reader: VideoReader, detector: Detector, tracker_name: str, camera: str | None,
                      builder_opts: dict[str, Any] | None, tracker_opts: dict[str, Any] | None, progress: bool,
                      stats: ExtractStats, config: ScanConfig, t0: float) -> Iterator[Tracklet]:
    """The adaptive scan of :func:`extract_tracklets` over ``reader`` (its ``select`` is set here).

    Each detected frame is detected at once (the detector's batch size is not used): which frame is
    converted and detected next depends on the tracks found so far, and deciding it in frame order
    keeps the scan deterministic and independent of the detector's batch size. A background thread decodes in
    lockstep with this one (``VideoReader(select=..., prefetch=1)``): it grabs the next frame while
    this thread detects and tracks the last one, and asks the policy about it only once this thread
    is done, so the decisions are the same as without the thread.
    """
    path, stride, start = reader.path, reader.stride, reader.start
    policy_box: list[ScanPolicy] = []
    scanned = [0]

    def select(index: int) -> bool:
        scanned[0] += 1
        return policy_box[0].wants((index - start) // stride)

    reader.select = select
    stats.video, stats.fps, stats.fps_assumed = str(path), reader.fps, reader.fps_assumed
    stats.frame_count, stats.width, stats.height = reader.frame_count, reader.width, reader.height
    rate = reader.fps / stride
    tracker = create_tracker(tracker_name, frame_rate=rate, **(tracker_opts or {}))
    policy = ScanPolicy(rate, lost_steps=tracker.max_lost, config=config)
    policy_box.append(policy)
    reader.keyframes = policy if reader.decoder == "pyav" else None  # quiet stretches: keyframes only
    # a track may be kept a little longer than at full rate (its window is counted in keyframes)
    opts = {"lost_after": (tracker.max_lost + 2 * policy.max_interval) * stride, **(builder_opts or {})}
    min_frames = int(opts.pop("min_frames", 5))  # counted after interpolation, as a full scan counts it
    builder = TrackletBuilder(str(path), camera or path.stem, min_frames=min(2, min_frames), **opts)
    max_gap = 2 * policy.max_interval * stride  # one keyframe missed still counts as a gap to fill

    looked = bytearray()  # 1 for each frame (from ``start``) the detector ran on or that aged tracks

    def mark(index: int) -> None:
        i = index - start
        if i >= len(looked):
            looked.extend(bytes(max(i + 1 - len(looked), 4096)))
        looked[i] = 1

    def finished(tracklets: list[Tracklet]) -> Iterator[Tracklet]:
        for t in tracklets:
            seen = t.frames
            t = fill_gaps(t, max_gap, stride)
            # min_frames counts what a full scan would have seen: the tracked frames plus the filled-in
            # frames the scan skipped, not filled-in frames where the detector ran and missed the person
            filled = np.setdiff1d(t.frames, seen, assume_unique=True) - start
            missed = sum(looked[i] for i in filled.tolist() if i < len(looked))
            if len(t) - missed < min_frames:
                builder.dropped += 1
                continue
            stats.tracks += 1
            yield t

    def flush(frames: list[tuple[int, float, Any]]) -> Iterator[Tracklet]:
        for (index, ts, frame), dets in zip(frames, detector.detect([f[2] for f in frames]), strict=True):
            stats.detections += len(dets)
            mark(index)
            tracked = tracker.update(dets, frame)
            policy.observe((index - start) // stride, frame, dets, tracked)
            tracker.set_frame_rate(rate / policy.interval)
            yield from finished(builder.update(index, ts, frame, tracked))

    bar = tqdm(total=reader.expected_frames, desc=path.name, unit="frame", disable=not progress, leave=False)
    try:
        for item in reader:
            step = (item[0] - start) // stride
            action = policy.decide(step, item[2])
            if action == SKIP:
                continue
            if action == AGE:  # only lost tracks, nothing changed: age them without the detector
                index, ts, frame = item
                mark(index)
                yield from finished(builder.update(index, ts, frame, tracker.update(_NOBODY, frame)))
                policy.aged(step)
                tracker.set_frame_rate(rate / policy.interval)
                continue
            # detected at once: the next keyframe is planned from this frame's tracks (holding
            # keyframes back for a batch would plan from stale speeds and fragment tracks)
            yield from flush([item])
            bar.update(step + 1 - bar.n)  # by position: frames skipped to a keyframe count as done
        yield from finished(builder.finish())
    finally:
        bar.close()
        stats.frames_read = scanned[0]
        stats.frames_detected = policy.detected
        stats.gate_checks, stats.motion_onsets = policy.gated, policy.onsets
        stats.frames_failed = reader.failed_frames
        stats.decoder = reader.decoder
        stats.frames_missing = reader.frames_missing
        stats.damage = reader.damage_report() or ""
        if reader.skip_stats:
            off = reader.skip_stats["skip_off"]
            stats.decode_mode = "keyframes while idle" + (f" (then every frame: {off})" if off else "")
            stats.keyframes_only = reader.skip_stats["keyframes_decoded"]
            stats.rewinds = reader.skip_stats["rewinds"]
        stats.tracks_dropped = builder.dropped
        stats.seconds = time.perf_counter() - t0
