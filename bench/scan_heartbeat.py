"""The adaptive scan's idle heartbeat on a quiet archive: detections, CPU time and tracklet spans.

Runs ``extract_segments`` (YOLOX-Nano, adaptive scan, 30-s segments) over the generated quiet 1080p
recording of ``bench/archive.py`` once per decoder and heartbeat, in this process, and prints the
CPU seconds of each run, the frames the detector saw and the tracklet spans (which must not change).

Usage::

    nice -n 10 python bench/scan_heartbeat.py --minutes 10 --heartbeats 2,10 --decoders pyav,opencv
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from archive_video import ArchiveSpec, generate

from csip_reid.core.tracklet import Tracklet
from csip_reid.pipeline.detect import create_detector
from csip_reid.pipeline.extract import ExtractStats, extract_segments
from csip_reid.pipeline.scan import ScanConfig

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("REID_TEST_DATA", ROOT.parent / "shared" / "data"))
CACHE = Path(os.environ.get("REID_BENCH_CACHE", "/tmp/csip-reid-bench"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--heartbeats", default="2,10", help="seconds, comma-separated")
    p.add_argument("--decoders", default="pyav,opencv")
    args = p.parse_args()
    os.environ.setdefault("REID_WEIGHTS_DIR", str(DATA / "models"))
    video, stretches = generate(DATA / "videos" / "intel_one-by-one-person-detection.mp4",
                                ArchiveSpec(minutes=args.minutes), CACHE)
    detector = create_detector("yolox:yolox_nano")
    print(f"recording {video.name}, person stretches {stretches}\n")
    print("| decoder | heartbeat | CPU s | frames detected | tracklet spans |\n|---|---|---|---|---|")
    for decoder in args.decoders.split(","):
        for beat in (float(x) for x in args.heartbeats.split(",")):
            stats, t0 = ExtractStats(), time.process_time()
            items = extract_segments(video, detector, scan="adaptive", decoder=decoder, segment_s=30,
                                     progress=False, stats=stats, scan_config=ScanConfig(heartbeat_s=beat))
            spans = sorted((t.start_frame, t.end_frame) for t in items if isinstance(t, Tracklet))
            print(f"| {decoder} | {beat:g} s | {time.process_time() - t0:.1f} | {stats.frames_detected} | {spans} |")


if __name__ == "__main__":
    main()
