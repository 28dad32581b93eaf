"""Stage profile of ``reid index`` on one video: where does the time go?

Runs the indexing pipeline of :class:`~csip_reid.pipeline.indexer.Pipeline` step by step in the
main thread (no background decoding, so every stage is timed on its own) and prints, per stage,
the time per video frame and its share of the total:

decode, detect, track, crop/sample (tracklet building: crops, thumbnails), pose, embed,
gallery write (content hash, thumbnails, SQLite + FAISS). ``--scan full,adaptive`` (the default)
prints the table for both scans; the adaptive one adds its motion gate and the interpolation of the
boxes between keyframes, and runs :func:`~csip_reid.pipeline.extract.extract_tracklets` itself with
each stage wrapped in a timer (decode = the rest of its time: grabbing, converting, the policy).

Run ``python bench/stage_profile.py`` (offline; shared material from ``$REID_TEST_DATA``,
default ``../shared/data``; ``--help`` for options).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from index_throughput import DATA, INTEL, print_table, random_yolo, setup_env, torch_threads, trimmed

STAGES = ("decode", "gate", "detect", "track", "crop/sample", "interpolate", "pose", "embed", "gallery write")


class Profile:
    """Seconds and item counts per stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.items: dict[str, int] = defaultdict(int)

    @contextmanager
    def stage(self, name: str, items: int = 0) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - t0
            self.items[name] += items


def profile_video(video: Path, pipeline: Any, gallery: Any, batch: int = 32) -> tuple[Profile, int, int]:
    """Index one video stage by stage, as ``Indexer.index_video`` does; (profile, frames, tracklets)."""
    from csip_reid.core.video import VideoReader, video_content_hash
    from csip_reid.gallery.videos import VideoRecord
    from csip_reid.pipeline.pose.skeleton import attach_skeletons
    from csip_reid.tracking import create_tracker
    from csip_reid.tracking.builder import TrackletBuilder

    s, prof = pipeline.settings, Profile()
    reader = VideoReader(video, stride=s.stride)
    tracker = create_tracker(s.tracker, frame_rate=reader.fps / s.stride, **s.tracker_opts)
    builder = TrackletBuilder(str(video), video.stem, max_samples=s.max_samples, min_frames=s.min_frames,
                              min_box_height=s.min_box_height, lost_after=tracker.max_lost * s.stride)
    done: list[Any] = []
    pending: list[Any] = []

    def complete(force: bool = False) -> None:
        if not pending or (len(pending) < batch and not force):
            return
        crops = sum(len(t.crops) for t in pending)
        if pipeline.pose is not None or pipeline.detector_has_keypoints:
            with prof.stage("pose", crops):
                attach_skeletons(pending, pipeline.pose, detector_has_keypoints=pipeline.detector_has_keypoints)
        with prof.stage("embed", crops):
            pipeline.embedder.embed_tracklets(list(pending))
        for t in pending:
            t.crops = []
        done.extend(pending)
        pending.clear()

    frames = 0
    frame_iter = iter(reader)
    while True:
        items = []
        with prof.stage("decode"):
            for item in frame_iter:
                items.append(item)
                if len(items) == pipeline.detector.batch_size:
                    break
        if not items:
            break
        frames += len(items)
        prof.items["decode"] += len(items)
        with prof.stage("detect", len(items)):
            dets = pipeline.detector.detect([f for _, _, f in items])
        for (index, ts, frame), d in zip(items, dets, strict=True):
            with prof.stage("track", 1):
                tracked = tracker.update(d, frame)
            with prof.stage("crop/sample", 1):
                pending.extend(builder.update(index, ts, frame, tracked))
            complete()
    with prof.stage("crop/sample"):
        pending.extend(builder.finish())
    complete(force=True)
    with prof.stage("gallery write", len(done)):
        content_hash = video_content_hash(video)
        gallery.add_video(VideoRecord(str(video.resolve()), content_hash, video.stem, fps=reader.fps,
                                      num_frames=reader.frame_count, width=reader.width, height=reader.height),
                                      done)
    return prof, frames, len(done)


@contextmanager
def timed_extract(prof: Profile) -> Iterator[None]:
    """Wrap the detector, tracker, builder, gate and interpolation of ``extract_tracklets`` in timers."""
    import csip_reid.pipeline.extract as ex
    from csip_reid.pipeline.scan import ScanPolicy

    saved = ex.create_tracker, ex.TrackletBuilder, ex.fill_gaps, ScanPolicy.decide

    def create_tracker(*a: Any, **kw: Any) -> Any:
        tracker = saved[0](*a, **kw)
        update = tracker.update

        def timed(dets: Any, frame: Any = None) -> Any:
            with prof.stage("track", 1):
                return update(dets, frame)

        tracker.update = timed
        return tracker

    class Builder(saved[1]):  # type: ignore[misc, valid-type]
        def update(self, *a: Any, **kw: Any) -> Any:
            with prof.stage("crop/sample", 1):
                return super().update(*a, **kw)

    def fill_gaps(*a: Any, **kw: Any) -> Any:
        with prof.stage("interpolate"):
            return saved[2](*a, **kw)

    def decide(self: Any, step: int, frame: Any) -> Any:
        with prof.stage("gate", 1):
            return saved[3](self, step, frame)

    ex.create_tracker, ex.TrackletBuilder, ex.fill_gaps, ScanPolicy.decide = create_tracker, Builder, fill_gaps, decide
    try:
        yield
    finally:
        ex.create_tracker, ex.TrackletBuilder, ex.fill_gaps, ScanPolicy.decide = saved


class TimedDetector:
    """A detector whose ``detect`` calls are timed as the ``detect`` stage."""

    def __init__(self, detector: Any, prof: Profile) -> None:
        self.detector, self.prof, self.batch_size = detector, prof, detector.batch_size

    def detect(self, frames: Any) -> Any:
        with self.prof.stage("detect", len(frames)):
            return self.detector.detect(frames)


def profile_adaptive(video: Path, pipeline: Any, gallery: Any, batch: int = 32) -> tuple[Profile, int, int]:
    """As :func:`profile_video` for ``--scan adaptive``; decode = extraction time not in another stage."""
    from csip_reid.core.video import VideoReader, video_content_hash
    from csip_reid.gallery.videos import VideoRecord
    from csip_reid.pipeline.extract import ExtractStats, extract_tracklets
    from csip_reid.pipeline.pose.skeleton import attach_skeletons

    s, prof, stats = pipeline.settings, Profile(), ExtractStats()
    done: list[Any] = []
    inner = ("gate", "detect", "track", "crop/sample", "interpolate")
    t0 = time.perf_counter()
    with timed_extract(prof):
        tracklets = list(extract_tracklets(
            video, TimedDetector(pipeline.detector, prof), tracker_name=s.tracker, stride=s.stride,  # type: ignore[arg-type]
            builder_opts={"max_samples": s.max_samples, "min_frames": s.min_frames,
                          "min_box_height": s.min_box_height},
            tracker_opts=s.tracker_opts, progress=False, stats=stats, scan="adaptive"))
    prof.seconds["decode"] = time.perf_counter() - t0 - sum(prof.seconds[k] for k in inner)
    prof.items["decode"] = stats.frames_read
    for i in range(0, len(tracklets), batch):
        part = tracklets[i : i + batch]
        crops = sum(len(t.crops) for t in part)
        if pipeline.pose is not None or pipeline.detector_has_keypoints:
            with prof.stage("pose", crops):
                attach_skeletons(part, pipeline.pose, detector_has_keypoints=pipeline.detector_has_keypoints)
        with prof.stage("embed", crops):
            pipeline.embedder.embed_tracklets(list(part))
        for t in part:
            t.crops = []
        done.extend(part)
    reader = VideoReader(video)
    with prof.stage("gallery write", len(done)):
        gallery.add_video(VideoRecord(str(video.resolve()), video_content_hash(video), video.stem,
                                      fps=reader.fps, num_frames=reader.frame_count, width=reader.width,
                                      height=reader.height), done)
    return prof, stats.frames_read, len(done)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--video", type=Path, default=DATA / "videos" / INTEL)
    p.add_argument("--max-frames", type=int, default=700, help="frames of the video (longer ones are cut)")
    p.add_argument("--detector", default="yolox:yolox_nano")
    p.add_argument("--embedder", default="onnx:osnet_x0_25_msmt17")
    p.add_argument("--pose", default="movenet",
                   help="pose back-end ('none' for no pose; 'yolo-pose' uses a random-init yolo11n-pose)")
    p.add_argument("--runs", type=int, default=1, help="runs; the median per stage is reported")
    p.add_argument("--scan", default="full,adaptive", help="comma-separated scans to profile (full, adaptive)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="reid-profile-") as tmpdir:
        tmp = Path(tmpdir)
        setup_env(tmp)
        import numpy as np

        from csip_reid.core.ultralytics_env import import_ultralytics

        import_ultralytics()
        from csip_reid.gallery.store import Gallery
        from csip_reid.pipeline.indexer import Pipeline, embedder_record
        from csip_reid.pipeline.settings import PipelineSettings

        if not args.video.is_file():
            raise SystemExit(f"video not found: {args.video} (set REID_TEST_DATA)")
        video = trimmed(args.video, args.max_frames, tmp)
        pose = args.pose
        if pose == "yolo-pose":
            pose = f"yolo-pose:{random_yolo('yolo11n-pose.yaml', tmp / 'yolo11n-pose_random.pt')}"
        pipeline = Pipeline(PipelineSettings(detector=args.detector, embedder=args.embedder, pose=pose))
        crop = np.full((160, 64, 3), 90, np.uint8)  # warm-up, outside the timing
        pipeline.detector.detect([np.zeros((432, 768, 3), np.uint8)])
        pipeline.embedder.embed_crops([[crop]])
        if pipeline.pose is not None:
            pipeline.pose.estimate([crop])

        scans = [x.strip() for x in args.scan.split(",") if x.strip()]
        results = {}
        for run in range(args.runs):
            for scan in scans:  # interleaved: the load of a shared machine falls on both alike
                with Gallery.create(tmp / f"gallery-{scan}-{run}",
                                    embedder_record(pipeline.embedder, pipeline.settings)) as gallery:
                    fn = profile_adaptive if scan == "adaptive" else profile_video
                    prof, frames, tracklets = fn(video, pipeline, gallery)
                seconds, _, _, _ = results.setdefault(scan, ({k: [] for k in STAGES}, prof, frames, tracklets))
                for k in STAGES:
                    seconds[k].append(prof.seconds.get(k, 0.0))

    totals = {}
    for scan, (seconds, prof, frames, tracklets) in results.items():
        med = {k: statistics.median(v) for k, v in seconds.items()}
        total = totals[scan] = sum(med.values())
        rows = [[k, prof.items.get(k, 0), f"{med[k] / frames * 1e3:.2f}", f"{100 * med[k] / total:.1f}"]
                for k in STAGES]
        rows.append(["total", "", f"{total / frames * 1e3:.2f}", "100.0"])
        print(f"{args.video.name}: {frames} frames, {tracklets} tracklets; --scan {scan}; detector "
              f"{args.detector}, embedder {args.embedder}, pose {args.pose}; torch threads {torch_threads()}")
        runs = f"median of {args.runs} runs" if args.runs > 1 else "1 run"
        print_table(f"Stage profile, --scan {scan} ({runs})", ["stage", "items", "ms/frame", "%"], rows)
    if {"full", "adaptive"} <= set(totals):
        print(f"\nadaptive total / full total: {totals['adaptive'] / totals['full']:.3f} "
              f"(speed-up {totals['full'] / totals['adaptive']:.2f}x)")
    print("\nitems: frames for decode/detect/track/crop-sample, gate checks for gate, crops for pose/embed, "
          "tracklets for gallery write")

if __name__ == "__main__":
    main()
