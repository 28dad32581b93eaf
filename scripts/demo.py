#!/usr/bin/env python
"""`make demo`: index the sample videos, query a clip cut from one of them, print + write a report.

Offline (no network, or weights in $REID_WEIGHTS_DIR / the test material's models/ folder) it uses
YOLOX-Nano + Intel person-reidentification-retail-0277 (OpenVINO) weights from that folder
(configs/offline_demo.yaml). Online, pass ``--config configs/pipeline.yaml`` to use the default named
weights (yolo11n.pt, Intel 0277).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from csip_reid.core.video import cut_clip

REPO = Path(__file__).resolve().parents[1]
# The Intel sample: six people appear one after another; the second is on screen ~23-44 s.
DEFAULT_QUERY = ("intel_one-by-one-person-detection.mp4", 250, 420)


def reid(*args: str) -> None:
    cmd = [sys.executable, "-m", "csip_reid.cli", *args]
    print("$ reid " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=Path, required=True, help="Folder of videos to index.")
    ap.add_argument("--out", type=Path, default=Path("demo_out"))
    ap.add_argument("--config", type=Path, default=None, help="Pipeline YAML (default: offline demo config).")
    args = ap.parse_args()

    if not args.videos.is_dir():
        print(f"error: video folder not found: {args.videos} (set VIDEOS=... or REID_TEST_DATA=...)", file=sys.stderr)
        return 2
    models = Path(os.environ.get("REID_TEST_DATA", REPO.parent / "shared" / "data")) / "models"
    if models.is_dir():
        os.environ.setdefault("REID_WEIGHTS_DIR", str(models))
    config = args.config or REPO / "configs" / "offline_demo.yaml"
    args.out.mkdir(parents=True, exist_ok=True)
    gallery = args.out / "gallery"

    t0 = time.perf_counter()
    reid("index", str(args.videos), "--gallery", str(gallery), "--config", str(config))
    t_index = time.perf_counter() - t0

    name, start, end = DEFAULT_QUERY
    src = args.videos / name
    if not src.is_file():
        src = sorted(p for p in args.videos.iterdir() if p.suffix.lower() in {".mp4", ".avi", ".mkv", ".mov"})[0]
        start, end = 0, 10**9
    clip = args.out / f"query_{src.stem}_{start}-{end}.mp4"
    cut_clip(src, clip, start, end)
    report = args.out / "report.html"
    reid("query", str(clip), "--gallery", str(gallery), "--top-k", "5", "--report", str(report))
    reid("gallery", "info", "--gallery", str(gallery))
    print(f"\nindexing took {t_index:.1f}s; total {time.perf_counter() - t0:.1f}s")
    print(f"query clip: {clip}  (frames {start}-{end} of {src.name})")
    print(f"open the report: {report.resolve()}")
    print("\nreview the gallery in a browser (search, play, label, export evidence):")
    print(f"  reid serve --gallery {gallery.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
