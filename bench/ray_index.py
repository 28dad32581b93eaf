"""Throughput of ``reid index --executor ray`` (1 and 2 workers) against the local executor.

The three executors index the same videos into fresh galleries, interleaved (local, ray 1, ray 2,
then again) on one local Ray (``ray.init(num_cpus=...)``), ``--runs`` times; the median wall time
of each is reported. Every timing includes building the pipeline (the local indexer's
constructor, the Ray actors' start), as a user's run does. The 1-worker actor reserves all
``--cpus`` (``--cpus-per-worker``), the 2 workers half each: Ray sets an actor's
``OMP_NUM_THREADS`` to its CPU count, so a 1-CPU actor would run the models on one thread.

The one-off cost of an actor (a new process: imports, models) is measured on its own: the time
from creating a :class:`~csip_reid.distributed.worker.ShardWorker` actor to its first answer. The
*steady-state* overhead of Ray at 1 worker is then ``(ray wall - actor start) / local wall``: what
Ray costs per video (scheduling, the shard write and the merge into the gallery), the figure that
matters for an archive, where one actor start is spread over hours of video. The merge cost per
video is timed separately, and a planned scaling to N GPU nodes is printed from the per-video cost
and the merge cost:

    T(N) ~= max(total_video_cost / (N * workers_per_node), n_videos * merge_cost) + actor start

Usage::

    REID_WEIGHTS_DIR=../shared/data/models REID_OFFLINE=1 \\
        python bench/ray_index.py --videos ../shared/data/videos --cpus 2 --runs 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_OVERHEAD = 0.10


def actor_start(ray: Any, settings: Any, tmp: Path, runs: int, cpus: int) -> float:
    """Median seconds from creating a worker actor to its first answer (process, imports, models)."""
    from csip_reid.distributed.worker import ShardWorker

    times = []
    for i in range(runs):
        t = time.perf_counter()
        actor = ray.remote(ShardWorker).options(num_cpus=cpus).remote(settings.to_dict(), str(tmp / f"start{i}"))
        ray.get(actor.pid.remote())
        times.append(time.perf_counter() - t)
        ray.kill(actor, no_restart=True)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", default=os.path.join(os.environ.get("REID_TEST_DATA", "../shared/data"), "videos"))
    ap.add_argument("--detector", default="yolox:yolox_nano")
    ap.add_argument("--embedder", default="onnx:osnet_x0_25_msmt17")
    ap.add_argument("--scan", default=None, help="full or adaptive (default: the pipeline's default)")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray")
    ap.add_argument("--runs", type=int, default=3, help="interleaved runs of each executor; medians reported")
    ap.add_argument("--nodes", default="1,4,16,64", help="node counts for the planned scaling")
    ap.add_argument("--workers-per-node", type=int, default=4, help="actors per GPU node (0.25 GPU each)")
    args = ap.parse_args()

    import ray

    from csip_reid.core.video import iter_video_files
    from csip_reid.distributed import RayIndexer, RayOptions
    from csip_reid.gallery.merge import merge_galleries
    from csip_reid.pipeline.indexer import Indexer
    from csip_reid.pipeline.settings import PipelineSettings

    videos = iter_video_files([args.videos])
    overrides = {"scan": args.scan} if args.scan else {}
    settings = PipelineSettings.load(None, detector=args.detector, embedder=args.embedder, **overrides)
    tmp = Path(tempfile.mkdtemp(prefix="ray_bench_"))
    quiet = lambda m: None  # noqa: E731
    names = ["local", "ray, 1 worker", "ray, 2 workers"]
    walls: dict[str, list[float]] = {n: [] for n in names}
    summaries: dict[str, Any] = {}
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    try:
        start = actor_start(ray, settings, tmp, args.runs, args.cpus)
        for run in range(args.runs):
            for name in names:
                dest = tmp / f"{name.replace(', ', '-').replace(' ', '')}-{run}"
                t = time.perf_counter()
                if name == "local":
                    s = Indexer(dest, settings, progress=False, log=quiet).index(videos)
                else:
                    w = int(name.split()[1])  # the CPUs split between the workers, as a user would
                    opts = RayOptions(workers=w, cpus_per_worker=max(1, args.cpus // w))
                    s = RayIndexer(dest, settings, opts, progress=False, log=quiet).index(videos)
                walls[name].append(time.perf_counter() - t)
                summaries[name] = s
                print(f"run {run + 1}/{args.runs} {name}: {walls[name][-1]:.1f} s", flush=True)
    finally:
        ray.shutdown()
    local = summaries["local"]
    t = time.perf_counter()
    merged = merge_galleries(tmp / "merge", [tmp / "local-0"], progress=False)
    merge_s = (time.perf_counter() - t) / max(merged["videos_added"], 1)

    frames = local.frames
    med = {n: statistics.median(v) for n, v in walls.items()}
    base = med["local"]
    print(f"\n# {len(videos)} videos, {frames} frames, {local.tracklets} tracklets, scan {settings.scan}; "
          f"{os.cpu_count()} cores; Ray {ray.__version__} num_cpus={args.cpus}; median of {args.runs} runs")
    print("| executor | wall s | frames/s | vs local | indexed | tracklets |")
    print("|---|---|---|---|---|---|")
    for name in names:
        s = summaries[name]
        print(f"| {name} | {med[name]:.1f} | {frames / med[name]:.1f} | {med[name] / base:.2f}x time "
              f"| {s.count('indexed')} | {s.tracklets} |")
    whole = med["ray, 1 worker"] / base - 1
    steady = (med["ray, 1 worker"] - start) / base - 1
    verdict = "met" if steady <= TARGET_OVERHEAD else "MISSED"
    print(f"\nactor start (process, imports, models; once per actor): {start:.1f} s")
    print(f"Ray overhead at 1 worker: {100 * whole:+.0f} % of the whole run; {100 * steady:+.0f} % without the "
          f"one-off actor start (target <= {100 * TARGET_OVERHEAD:.0f} %: {verdict})")
    per_video = sum(r.seconds for r in local.results) / max(len(local.results), 1)
    print(f"per-video cost (local, mean) {per_video:.2f} s; merge cost {1e3 * merge_s:.0f} ms/video; "
          f"the actor start is paid back after {start / max(TARGET_OVERHEAD * per_video, 1e-9):.0f} such videos "
          f"(overhead then under {100 * TARGET_OVERHEAD:.0f} %)")
    print("\nplanned scaling for an archive of 10,000 such videos "
          f"({args.workers_per_node} actors per node):")
    print("| nodes | workers | compute s | merge s (driver, serial) | bound |")
    print("|---|---|---|---|---|")
    n_videos = 10_000
    for n in (int(x) for x in args.nodes.split(",")):
        workers = n * args.workers_per_node
        compute = n_videos * per_video / workers
        merge = n_videos * merge_s
        print(f"| {n} | {workers} | {compute:.0f} | {merge:.0f} | {'merge' if merge > compute else 'compute'} |")


if __name__ == "__main__":
    main()
