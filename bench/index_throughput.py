"""Indexing throughput: what does ``reid index`` cost on top of detection + tracking?

On the same real videos and the same detector, times

* (a) decoding alone,
* (b) detection + tracking alone: our detector + our tracker, no crops, no embedding (the floor
  that ``yolo track`` stands for),
* (c) ``reid index`` without pose (:class:`~csip_reid.pipeline.indexer.Indexer` into a fresh
  gallery per run),
* (d) ``reid index`` with each pose back-end,

and prints frames/s, tracklets found and each stage's wall and CPU time relative to (b), next to
the targets (index <= 1.3x, index with pose <= 1.5x). Stages are interleaved video by video (in a
rotating order) so that the load of a shared machine falls on all of them alike; the median of
``--runs`` runs is reported. Two further tables show ultralytics' own ``model.track`` loop beside
our detection + tracking of the same random-init model, and the embedding + pose time of one
tracklet for two tracklet lengths.

Run ``python bench/index_throughput.py`` (offline; shared material from ``$REID_TEST_DATA``,
default ``../shared/data``; ``--help`` for options). Models are built and warmed up outside the
timed region. The timed region of (c)/(d) is ``Indexer.index_video`` for each video (hashing,
decoding, detection, tracking, cropping, pose, embedding, gallery write) plus closing the gallery,
which is what ``Indexer.index`` (``reid index``) does.
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("REID_TEST_DATA", REPO.parent / "shared" / "data")).resolve()
INTEL = "intel_one-by-one-person-detection.mp4"
SHORT = ("tfjs_pose_1.mp4", "tfjs_pose_squats.mp4", "mmaction2_demo_skeleton.mp4", "mmpose_demo.mp4",
         "mmtracking_demo.mp4")
DEFAULT_POSES = ("movenet", "yolo-pose", "rtmpose-t:random")
TARGET_INDEX, TARGET_POSE = 1.3, 1.5


def setup_env(tmp: Path) -> None:
    """Offline, isolated settings; must run before csip_reid / ultralytics are imported."""
    for key, value in (("REID_OFFLINE", "1"), ("YOLO_OFFLINE", "1"), ("HF_HUB_OFFLINE", "1"),
                       ("YOLO_AUTOINSTALL", "false"), ("REID_WEIGHTS_DIR", str(DATA / "models")),
                       ("YOLO_CONFIG_DIR", str(tmp / "yolo_cfg")), ("REID_CACHE_DIR", str(tmp / "cache"))):
        os.environ.setdefault(key, value)
    Path(os.environ["YOLO_CONFIG_DIR"]).mkdir(parents=True, exist_ok=True)
    import logging

    logging.getLogger("csip_reid").setLevel(logging.ERROR)  # random-init detectors warn once each


def torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def machine() -> str:
    """One line: date, CPU, core count, load average (the figures depend on all of them)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    load = "/".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (f"{date.today().isoformat()}, {cpu}, {len(os.sched_getaffinity(0))} usable CPUs, "
            f"load average {load}, torch threads {torch_threads()}")


def trimmed(video: Path, max_frames: int, tmp: Path) -> Path:
    """``video`` itself, or a copy of its first ``max_frames`` frames (mp4v) when it is longer."""
    import cv2

    from csip_reid.core.video import VideoReader

    reader = VideoReader(video, end=max_frames)
    if reader.frame_count and reader.frame_count <= max_frames:
        return video
    out = tmp / f"first{max_frames}" / video.name
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), reader.fps, (reader.width, reader.height))
    for _, _, frame in reader:
        writer.write(frame)
    writer.release()
    return out


def frame_at(video: Path, index: int) -> Any:
    """Frame ``index`` of a video (its last frame if it is shorter)."""
    from csip_reid.core.video import VideoReader

    frame = None
    for _, _, frame in VideoReader(video, end=index + 1):  # noqa: B007 - keeps the last one
        pass
    return frame


def random_yolo(cfg: str, dest: Path) -> Path:
    """Build a random-init ultralytics model offline, save it, return the file."""
    from csip_reid.core.ultralytics_env import import_ultralytics, keep_torch_threads

    import_ultralytics()
    from ultralytics import YOLO

    if not dest.is_file():
        with keep_torch_threads():
            YOLO(cfg).save(str(dest))
    return dest


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    sys.stdout.flush()


# -- stages ---------------------------------------------------------------------------------------
class Stage:
    """Something timed video by video. Subclasses implement :meth:`video`.

    Attributes:
        name: Row label.
        threads: Smallest torch thread count seen (checked after each video).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.threads = 10**6

    def begin_run(self) -> None:
        """Set-up before a run (not timed)."""

    def video(self, path: Path) -> tuple[int, int]:
        """Process one video; (frames, tracklets)."""
        raise NotImplementedError

    def end_run(self) -> None:
        """Work that ends a run (timed)."""


class Decode(Stage):
    """(a): iterate every frame."""

    def video(self, path: Path) -> tuple[int, int]:
        from csip_reid.core.video import VideoReader

        return sum(1 for _ in VideoReader(path)), 0


class DetectTrack(Stage):
    """(b): our detector + our tracker, frames batched and decoded ahead as in ``extract_tracklets``.

    Tracklets = track ids seen in at least ``min_frames`` frames (no size filter, no crops).
    """

    def __init__(self, name: str, detector: Any, tracker: str = "bytetrack", min_frames: int = 5) -> None:
        super().__init__(name)
        self.detector, self.tracker, self.min_frames = detector, tracker, min_frames

    def video(self, path: Path) -> tuple[int, int]:
        from csip_reid.core.video import VideoReader
        from csip_reid.tracking import create_tracker

        batch = max(1, self.detector.batch_size)
        reader = VideoReader(path, prefetch=2 * batch)
        trk = create_tracker(self.tracker, frame_rate=reader.fps)
        seen: Counter[int] = Counter()
        frames = 0
        pending: list[Any] = []
        for item in itertools.chain(reader, [None]):  # None: flush the last batch
            if item is not None:
                pending.append(item)
                frames += 1
            if pending and (item is None or len(pending) == batch):
                dets = self.detector.detect([f[2] for f in pending])
                for (_, _, frame), d in zip(pending, dets, strict=True):
                    seen.update(trk.update(d, frame).tracker_id.tolist())
                pending = []
        return frames, sum(n >= self.min_frames for n in seen.values())


class Index(Stage):
    """(c)/(d): ``reid index``, one fresh gallery per run, built and warmed up in :meth:`begin_run`."""

    def __init__(self, name: str, settings: Any, tmp: Path) -> None:
        super().__init__(name)
        self.settings, self.tmp, self.runs = settings, tmp, 0
        self.indexer: Any = None

    def begin_run(self) -> None:
        import numpy as np

        from csip_reid.pipeline.indexer import Indexer

        self.runs += 1
        folder = self.tmp / f"gallery-{len(os.listdir(self.tmp))}"
        self.indexer = Indexer(folder, self.settings, progress=False, log=lambda _line: None)
        pipe, crop = self.indexer.pipeline, np.full((160, 64, 3), 90, np.uint8)
        pipe.detector.detect([np.zeros((432, 768, 3), np.uint8)])
        pipe.embedder.embed_crops([[crop]])
        if pipe.pose is not None:
            pipe.pose.estimate([crop])

    def video(self, path: Path) -> tuple[int, int]:
        res = self.indexer.index_video(path)  # what Indexer.index does per video
        if res.status == "failed":
            raise SystemExit(f"{self.name}: {res.path} failed: {res.error}")
        return res.frames, res.tracklets

    def end_run(self) -> None:
        self.indexer.gallery.close()  # as at the end of Indexer.index: saves the FAISS index
        self.indexer = None


def run_stages(stages: Sequence[Stage], videos: Sequence[Path], runs: int) -> dict[str, dict[str, Any]]:
    """Time every stage on every video, ``runs`` times, interleaved; medians per stage.

    Returns:
        ``{name: {"wall": s, "cpu": s, "frames": n, "tracklets": n, "threads": n}}``; wall and CPU
        seconds are medians over runs of the per-run sums, CPU = process time of all threads.
    """
    wall: dict[str, list[float]] = {s.name: [] for s in stages}
    cpu: dict[str, list[float]] = {s.name: [] for s in stages}
    counts: dict[str, tuple[int, int]] = {}
    for run in range(runs):
        for s in stages:
            s.begin_run()
        totals = {s.name: [0.0, 0.0, 0, 0] for s in stages}
        for i, path in enumerate(videos):
            k = (run * len(videos) + i) % len(stages)
            for s in [*stages[k:], *stages[:k]]:  # rotate the order: no stage always goes first
                w0, c0 = time.perf_counter(), time.process_time()
                frames, tracks = s.video(path)
                t = totals[s.name]
                t[0] += time.perf_counter() - w0
                t[1] += time.process_time() - c0
                t[2] += frames
                t[3] += tracks
                s.threads = min(s.threads, torch_threads())
        for s in stages:
            w0, c0 = time.perf_counter(), time.process_time()
            s.end_run()
            totals[s.name][0] += time.perf_counter() - w0
            totals[s.name][1] += time.process_time() - c0
        for s in stages:
            w, c, frames, tracks = totals[s.name]
            wall[s.name].append(w)
            cpu[s.name].append(c)
            counts[s.name] = (frames, tracks)
            print(f"run {run + 1}/{runs} {s.name}: {w:.1f} s wall, {c:.1f} s CPU, {frames} frames, "
                  f"{tracks} tracklets", flush=True)
    return {s.name: {"wall": statistics.median(wall[s.name]), "cpu": statistics.median(cpu[s.name]),
                     "frames": counts[s.name][0], "tracklets": counts[s.name][1], "threads": s.threads}
            for s in stages}


# -- per-tracklet cost -------------------------------------------------------------------------------
def synthetic_tracklet(frame: Any, box: Any, length: int, max_samples: int) -> tuple[Any, float]:
    """A tracklet of ``length`` observations of one (jittered) box, built through TrackletBuilder."""
    import numpy as np

    from csip_reid.core.detections import Detections
    from csip_reid.tracking.builder import TrackletBuilder

    builder = TrackletBuilder("synthetic", "cam", max_samples=max_samples, lost_after=10**9)
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for i in range(length):
        jitter = rng.normal(0, 2, 4).astype(np.float32)
        dets = Detections((box + jitter)[None], np.array([0.9]), tracker_id=np.array([1]))
        builder.update(i, i / 10, frame, dets)
    (tracklet,) = builder.finish()
    return tracklet, time.perf_counter() - t0


def per_tracklet(embedder: Any, poses: dict[str, Any], frame: Any, box: Any, lengths: Sequence[int],
                 runs: int, max_samples: int) -> list[list[Any]]:
    """Rows: length, crops sampled, build ms, embed ms, pose ms per back-end (medians)."""
    from csip_reid.pipeline.pose.skeleton import attach_skeletons

    rows = []
    for n in lengths:
        build, embed, pose = [], [], {k: [] for k in poses}
        for _ in range(runs):
            t, seconds = synthetic_tracklet(frame, box, n, max_samples)
            build.append(seconds)
            t0 = time.perf_counter()
            embedder.embed_tracklets([t])
            embed.append(time.perf_counter() - t0)
            for name, est in poses.items():
                t0 = time.perf_counter()
                attach_skeletons([t], est)
                pose[name].append(time.perf_counter() - t0)
        ms = [f"{statistics.median(v) * 1e3:.0f}" for v in (build, embed, *pose.values())]
        rows.append([n, len(t.crops), *ms])
    return rows


# -- main ---------------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--videos", nargs="+", type=Path,
                   help=f"video files (default: {INTEL} and the short clips in $REID_TEST_DATA/videos)")
    p.add_argument("--max-frames", type=int, default=700, help="frames per video (longer videos are cut)")
    p.add_argument("--runs", type=int, default=3, help="runs per stage; the median is reported")
    p.add_argument("--pose", default=",".join(DEFAULT_POSES),
                   help="comma-separated pose back-ends for (d); 'yolo-pose' alone uses a random-init "
                        "yolo11n-pose; 'none' skips (d)")
    p.add_argument("--detector", default="yolox:yolox_nano", help="detector spec for (b)-(d)")
    p.add_argument("--embedder", default="onnx:osnet_x0_25_msmt17", help="embedder spec for (c)/(d)")
    p.add_argument("--ultra-frames", type=int, default=50,
                   help="frames of the first video for the ultralytics comparison (0: skip it)")
    p.add_argument("--lengths", default="50,1000", help="tracklet lengths for the per-tracklet table ('': skip)")
    p.add_argument("--scan-videos", nargs="*", type=Path,
                   help=f"videos (full length) for the adaptive-vs-full scan table (default: {INTEL}, "
                        "mmtracking_demo.mp4 and the other short clips; none given: skip it)")
    p.add_argument("--main", action=argparse.BooleanOptionalAction, default=True,
                   help="the main table (--no-main: only the other tables)")
    return p.parse_args(argv)


def resolve_poses(spec: str, tmp: Path) -> list[str]:
    """Pose specs to run; ``yolo-pose`` gets a random-init model, unavailable back-ends are skipped."""
    from csip_reid.core.errors import ReidError
    from csip_reid.pipeline.pose import create_pose

    out = []
    for name in (s.strip() for s in spec.split(",")):
        if not name or name == "none":
            continue
        if name == "yolo-pose":
            name = f"yolo-pose:{random_yolo('yolo11n-pose.yaml', tmp / 'yolo11n-pose_random.pt')}"
        try:
            create_pose(name)
        except ReidError as e:
            print(f"skipping pose {name}: {e}")
            continue
        out.append(name)
    return out


def short_name(spec: str) -> str:
    return "yolo-pose (random yolo11n-pose)" if spec.startswith("yolo-pose:") else spec


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="reid-bench-") as tmpdir:
        tmp = Path(tmpdir)
        setup_env(tmp)
        from csip_reid.core.ultralytics_env import import_ultralytics

        import_ultralytics()
        sources = args.videos or [DATA / "videos" / n for n in (INTEL, *SHORT)]
        missing = [str(v) for v in sources if not Path(v).is_file()]
        if missing:
            raise SystemExit(f"videos not found: {', '.join(missing)} (set REID_TEST_DATA)")
        videos = [trimmed(Path(v), args.max_frames, tmp) for v in sources]
        print(f"machine: {machine()}")
        print(f"videos: {', '.join(v.name for v in sources)} (at most {args.max_frames} frames each); "
              f"detector {args.detector}; embedder {args.embedder}; {args.runs} runs")
        detector = throughput(args, videos, tmp) if args.main else None
        if args.ultra_frames > 0:
            from ultralytics_rows import compare_ultralytics

            compare_ultralytics(videos[0], args, tmp)
        if args.lengths and detector is not None:
            tracklet_cost(args, videos[0], detector, tmp)
        scan_videos = ([DATA / "videos" / n for n in (INTEL, "mmtracking_demo.mp4", *SHORT[:-1])]
                       if args.scan_videos is None else args.scan_videos)
        if scan_videos:
            from scan_rows import scan_table

            scan_table(args, [Path(v) for v in scan_videos], tmp)
        env = ", ".join(f"{k}={os.environ.get(k, '(unset)')}" for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY"))
        print(f"\nmachine at the end: {machine()}; {env}")


def throughput(args: argparse.Namespace, videos: Sequence[Path], tmp: Path) -> Any:
    """The main table; returns the (b) detector for reuse."""
    import numpy as np

    from csip_reid.pipeline.detect import create_detector
    from csip_reid.pipeline.settings import PipelineSettings

    base = PipelineSettings(detector=args.detector, embedder=args.embedder, scan="full")  # every frame, as (b)
    detector = create_detector(base.detector, conf=base.detector_conf, batch_size=base.detector_batch)
    detector.detect([np.zeros((432, 768, 3), np.uint8)])
    stages: list[Stage] = [Decode("(a) decode"), DetectTrack("(b) detect + track", detector, base.tracker,
                                                             base.min_frames),
                           Index("(c) index, no pose", base, tmp)]
    for spec in resolve_poses(args.pose, tmp):
        settings = PipelineSettings(detector=args.detector, embedder=args.embedder, pose=spec, scan="full")
        stages.append(Index(f"(d) index, pose {short_name(spec)}", settings, tmp))
    res = run_stages(stages, videos, args.runs)
    floor = res["(b) detect + track"]
    rows = []
    for name, r in res.items():
        ratio, cpu_ratio = r["wall"] / floor["wall"], r["cpu"] / floor["cpu"]
        target = TARGET_POSE if name.startswith("(d)") else TARGET_INDEX if name.startswith("(c)") else None
        verdict = "" if target is None else (
            f"<= {target}x: {'met' if ratio <= target else 'MISSED'} (CPU: "
            f"{'met' if cpu_ratio <= target else 'MISSED'})")
        rows.append([name, f"{r['frames'] / r['wall']:.1f}", r["tracklets"], f"{r['wall']:.1f}",
                     f"{ratio:.2f}x", f"{r['cpu']:.1f}", f"{cpu_ratio:.2f}x", verdict, r["threads"]])
    print_table("Indexing throughput (median of runs; ratio = time / time of (b))",
                ["stage", "frames/s", "tracklets", "wall s", "wall ratio", "CPU s", "CPU ratio", "target",
                 "torch threads (min)"], rows)
    return detector


def tracklet_cost(args: argparse.Namespace, video: Path, detector: Any, tmp: Path) -> None:
    """Embedding + pose time of one tracklet for each length in ``--lengths``."""
    import numpy as np

    from csip_reid.pipeline.embed import create_embedder
    from csip_reid.pipeline.pose import create_pose
    from csip_reid.pipeline.settings import PipelineSettings

    frame = frame_at(video, 300)  # frame 300 of the Intel clip shows a person
    found = detector.detect([frame])[0]
    box = found.xyxy[0] if len(found) else np.array([300, 60, 380, 260], np.float32)
    embedder = create_embedder(args.embedder)
    estimators = {short_name(s): create_pose(s) for s in resolve_poses(args.pose, tmp)}
    lengths = [int(x) for x in args.lengths.split(",") if x]
    rows = per_tracklet(embedder, estimators, frame, box, lengths, max(3, args.runs),
                        PipelineSettings().max_samples)
    print_table("Cost of one tracklet vs its length (ms, median)",
                ["observations", "crops sampled", "build (all observations)", "embed",
                 *[f"pose {k}" for k in estimators]], rows)


if __name__ == "__main__":
    main()
