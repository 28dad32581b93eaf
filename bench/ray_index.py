"""Throughput of ``reid index --executor ray`` (1 and 2 workers) against the local executor.

All three runs index the same videos into fresh galleries in one process, one after the other,
on one local Ray (``ray.init(num_cpus=...)``); each timing includes building the pipeline (the
local indexer's constructor, the Ray actors' start). The merge cost per video (copying a finished
shard video into the destination gallery, one transaction) is timed separately, and a planned
scaling to N GPU nodes is printed from the per-video cost and the merge cost:

    T(N) ~= max(total_video_cost / (N * workers_per_node), n_videos * merge_cost) + actor start

Usage::

    REID_WEIGHTS_DIR=../shared/data/models REID_OFFLINE=1 \\
        python bench/ray_index.py --videos ../shared/data/videos --cpus 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", default=os.path.join(os.environ.get("REID_TEST_DATA", "../shared/data"), "videos"))
    ap.add_argument("--detector", default="yolox:yolox_nano")
    ap.add_argument("--embedder", default="onnx:osnet_x0_25_msmt17")
    ap.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray")
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
    settings = PipelineSettings.load(None, detector=args.detector, embedder=args.embedder)
    tmp = Path(tempfile.mkdtemp(prefix="ray_bench_"))
    quiet = lambda m: None  # noqa: E731
    rows = []
    t = time.perf_counter()
    local = Indexer(tmp / "local", settings, progress=False, log=quiet).index(videos)
    rows.append(("local", time.perf_counter() - t, local))
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    try:
        for w in (1, 2):
            t = time.perf_counter()
            s = RayIndexer(tmp / f"ray{w}", settings, RayOptions(workers=w), progress=False, log=quiet).index(videos)
            rows.append((f"ray, {w} worker{'s' if w > 1 else ''}", time.perf_counter() - t, s))
    finally:
        ray.shutdown()
    t = time.perf_counter()
    merged = merge_galleries(tmp / "merge", [tmp / "local"], progress=False)
    merge_s = (time.perf_counter() - t) / max(merged["videos_added"], 1)

    frames = local.frames
    base = rows[0][1]
    print(f"# {len(videos)} videos, {frames} frames, {local.tracklets} tracklets; {os.cpu_count()} cores; "
          f"Ray {ray.__version__} num_cpus={args.cpus}")
    print("| executor | wall s | frames/s | vs local | indexed | tracklets |")
    print("|---|---|---|---|---|---|")
    for name, wall, s in rows:
        print(f"| {name} | {wall:.1f} | {frames / wall:.1f} | {wall / base:.2f}x time | {s.count('indexed')} "
              f"| {s.tracklets} |")
    per_video = sum(r.seconds for r in local.results) / max(len(local.results), 1)
    start = rows[1][1] - sum(r.seconds for r in rows[1][2].results)
    print(f"\nper-video cost (local, mean) {per_video:.2f} s; merge cost {1e3 * merge_s:.0f} ms/video; "
          f"ray 1-worker fixed cost (start + merges) {start:.1f} s")
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
