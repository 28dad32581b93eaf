"""Two small measurements on the generated quiet 1080p recording of ``bench/archive.py``.

* ``segments``: what a segment end costs. ``extract_segments`` with a detector that finds nobody
  (decoding and the motion gate only, so the cost of starting over shows most), adaptive scan, once
  per segment length, in this process; prints CPU seconds and segment ends.
* ``packets``: the packet sizes of predicted frames outside and inside the person stretches (what
  the PyAV reader's packet-size check tells apart), read by demuxing only.

Usage::

    nice -n 10 python bench/archive_costs.py segments --minutes 10 --lengths 0,30,0,30,10
    python bench/archive_costs.py packets --minutes 10
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from archive_video import ArchiveSpec, generate

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("REID_TEST_DATA", ROOT.parent / "shared" / "data"))
CACHE = Path(os.environ.get("REID_BENCH_CACHE", "/tmp/csip-reid-bench"))


def segments(video: Path, lengths: list[float], decoder: str) -> None:
    from csip_reid.core.detections import Detections
    from csip_reid.pipeline.detect import Detector
    from csip_reid.pipeline.extract import ExtractStats, extract_segments

    class Nobody(Detector):
        name, batch_size = "nobody", 8

        def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
            return [Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32)) for _ in frames]

        def describe(self) -> dict:
            return {"kind": self.name}

    print(f"| --decoder {decoder}: segment s | segment ends | CPU s |\n|---|---|---|")
    for seconds in lengths:
        stats, t0 = ExtractStats(), time.process_time()
        for _ in extract_segments(video, Nobody(), scan="adaptive", decoder=decoder, segment_s=seconds,
                                  progress=False, stats=stats):
            pass
        print(f"| {seconds:g} | {stats.segments} | {time.process_time() - t0:.2f} |", flush=True)


def packets(video: Path, stretches: list[tuple[int, int]]) -> None:
    import av

    with av.open(str(video)) as c:
        s = c.streams.video[0]
        fps, tb, t0 = float(s.average_rate), float(s.time_base), s.start_time or 0
        rows = [(round((p.pts - t0) * tb * fps), p.size, p.is_keyframe) for p in c.demux(s) if p.pts is not None]
    pos = np.array([r[0] for r in rows])
    size = np.array([r[1] for r in rows])
    key = np.array([r[2] for r in rows])
    inside = np.zeros(len(pos), bool)
    for a, b in stretches:
        inside |= (pos >= a) & (pos <= b)
    quiet, person = size[~key & ~inside], size[~key & inside]
    print("| predicted frames | median bytes | 10th pct | 99th pct | max |\n|---|---|---|---|---|")
    for name, x in (("nobody in the picture", quiet), ("a person in the picture", person)):
        print(f"| {name} | {np.median(x):.0f} | {np.percentile(x, 10):.0f} | {np.percentile(x, 99):.0f} | {x.max()} |")
    print(f"keyframes: median {np.median(size[key]):.0f} bytes")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["segments", "packets"])
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--lengths", default="0,30,0,30,10", help="segments: segment lengths in seconds")
    p.add_argument("--decoder", default="opencv", help="segments: the decoder")
    args = p.parse_args()
    video, stretches = generate(DATA / "videos" / "intel_one-by-one-person-detection.mp4",
                                ArchiveSpec(minutes=args.minutes), CACHE)
    if args.what == "segments":
        segments(video, [float(x) for x in args.lengths.split(",")], args.decoder)
    else:
        packets(video, stretches)


if __name__ == "__main__":
    main()
