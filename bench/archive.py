"""Archive benchmark: a long, mostly empty 1080p25 H.264 recording, decoded and indexed several ways.

The recording is generated (``bench/archive_video.py``: the Intel clip's empty corridor with its six
people played at known times, people in at most 10 % of the time, a keyframe every 2 s) and cached.
Rows, all in one run, each in its own process (timed, with its peak RSS):

* decode only: OpenCV, every frame (``read``); PyAV, every frame (threads); PyAV, keyframes only;
* ``reid index --scan full`` (``--with-full``: slow, every frame detected);
* ``reid index --scan adaptive --decoder opencv`` (the adaptive scan as it was);
* ``reid index --scan adaptive --decoder pyav`` (quiet stretches decoded keyframes only).

For each index row: tracklets, and the person stretches found (a tracklet overlapping the stretch).
Targets: keyframe-skipping index >= 2x faster than decoding every frame with OpenCV, >= 5x faster
than the adaptive scan with OpenCV, every stretch found. ``--rss-minutes 5,60`` also indexes a 5- and
a 60-minute recording with the new path and prints both peak RSS (target: 60 min <= 1.2x 5 min).

Usage::

    nice -n 10 python bench/archive.py --minutes 10
    nice -n 10 python bench/archive.py --minutes 10 --with-full --rss-minutes 5,60
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from archive_video import ArchiveSpec, generate

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("REID_TEST_DATA", ROOT.parent / "shared" / "data"))
CACHE = Path(os.environ.get("REID_BENCH_CACHE", Path(tempfile.gettempdir()) / "csip-reid-bench"))

DECODE = """
import sys, time
path, how = sys.argv[1], sys.argv[2]
n = 0
if how == "opencv":
    import cv2
    cap = cv2.VideoCapture(path)
    while True:
        ok, f = cap.read()
        if not ok:
            break
        n += 1
else:
    import av
    with av.open(path) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        if how == "pyav-keyframes":
            s.codec_context.skip_frame = "NONKEY"
        for f in c.decode(s):
            f.to_ndarray(format="bgr24")
            n += 1
print(n)
"""


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of one process.

    The peak is the child's own ``VmHWM``, polled from ``/proc`` (``wait4``'s ``ru_maxrss`` would
    include the parent's high-water mark, which ``fork`` + ``exec`` carry over).
    """
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, env=env, text=True)
        peak = 0.0
        while p.poll() is None:
            try:
                status = Path(f"/proc/{p.pid}/status").read_text()
                peak = max(peak, next(float(x.split()[1]) for x in status.splitlines() if x.startswith("VmHWM")))
            except (OSError, StopIteration):
                pass
            time.sleep(0.2)
        wall = time.perf_counter() - t0
        out.seek(0)
        text = out.read()
    if p.returncode:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}")
    return wall, peak / 1024, text


def index_cmd(video: Path, gallery: Path, scan: str, decoder: str) -> list[str]:
    return [sys.executable, "-m", "csip_reid.cli", "index", str(video), "--gallery", str(gallery),
            "--config", "offline_demo", "--scan", scan, "--decoder", decoder, "--json"]


def stretches_found(gallery: Path, stretches: list[tuple[int, int]]) -> tuple[int, int]:
    """(tracklets, stretches overlapped by at least one tracklet)."""
    from csip_reid.gallery.store import Gallery

    with Gallery.open(gallery) as g:
        spans = [(r.start_frame, r.end_frame) for r in g.iter_tracklets()]
    found = sum(any(a <= e and s <= b for s, e in spans) for a, b in stretches)
    return len(spans), found


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--gop-s", type=float, default=2.0)
    p.add_argument("--with-full", action="store_true", help="also index with --scan full (slow)")
    p.add_argument("--rss-minutes", default="", help="e.g. 5,60: peak RSS of the new path on these lengths")
    args = p.parse_args(argv)
    source = DATA / "videos" / "intel_one-by-one-person-detection.mp4"
    if not source.is_file():
        raise SystemExit(f"{source} not found (set REID_TEST_DATA)")
    env = {**os.environ, "REID_WEIGHTS_DIR": str(DATA / "models"), "REID_OFFLINE": "1", "YOLO_OFFLINE": "1",
           "PYTHONPATH": str(ROOT)}
    spec = ArchiveSpec(minutes=args.minutes, gop_s=args.gop_s)
    t0 = time.perf_counter()
    video, stretches = generate(source, spec, CACHE)
    print(f"recording: {video} ({video.stat().st_size / 1e6:.0f} MB, {spec.frames} frames, "
          f"{len(stretches)} person stretches; made or found in {time.perf_counter() - t0:.0f} s)")
    rows: list[tuple[str, float, float, str, str]] = []
    for how in ("opencv", "pyav", "pyav-keyframes"):
        wall, rss, out = timed([sys.executable, "-c", DECODE, str(video), how], env)
        rows.append((f"decode only, {how}", wall, rss, out.strip(), ""))
    scans = ([("full", "opencv")] if args.with_full else []) + [("adaptive", "opencv"), ("adaptive", "pyav")]
    with tempfile.TemporaryDirectory() as tmp:
        for scan, decoder in scans:
            gallery = Path(tmp) / f"{scan}_{decoder}"
            wall, rss, out = timed(index_cmd(video, gallery, scan, decoder), env)
            n, found = stretches_found(gallery, stretches)
            frames = json.loads(out)["frames"]
            rows.append((f"index --scan {scan} --decoder {decoder}", wall, rss, str(frames),
                         f"{n} tracklets, {found}/{len(stretches)} stretches"))
    base = rows[0][1]
    adaptive = next(r[1] for r in rows if r[0] == "index --scan adaptive --decoder opencv")
    video_s = spec.frames / spec.fps
    print("\n| row | wall s | x real time | OpenCV decode / row | adaptive(opencv) / row | peak RSS MB | "
          "frames | found |\n|---|---|---|---|---|---|---|---|")
    for name, wall, rss, frames, found in rows:
        print(f"| {name} | {wall:.1f} | {video_s / wall:.0f} | {base / wall:.2f} | {adaptive / wall:.2f} | "
              f"{rss:.0f} | {frames} | {found} |")
    if args.rss_minutes:
        peaks = []
        for m in [float(x) for x in args.rss_minutes.split(",")]:
            v, _ = generate(source, ArchiveSpec(minutes=m, gop_s=args.gop_s), CACHE)
            with tempfile.TemporaryDirectory() as tmp:
                wall, rss, _ = timed(index_cmd(v, Path(tmp) / "g", "adaptive", "pyav"), env)
            peaks.append((m, rss, wall))
        print("\n| recording | index wall s | peak RSS MB |\n|---|---|---|")
        for m, rss, wall in peaks:
            print(f"| {m:g} min | {wall:.0f} | {rss:.0f} |")
        print(f"RSS ratio {peaks[-1][0]:g} min / {peaks[0][0]:g} min: {peaks[-1][1] / peaks[0][1]:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
