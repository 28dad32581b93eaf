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
than the adaptive scan with OpenCV, every stretch found. ``--resume 1,0.5`` first runs ``reid index``
uninterrupted with each ``--segment-minutes``, then again killed (``kill -9``) at ``--kill-at`` of
that time, then reruns it: the rerun's share of the uninterrupted time (target <= 0.3 at 0.8) and
whether the resumed gallery has the uninterrupted run's tracklets. ``--rss-minutes 5,60`` also indexes a 5- and
a 60-minute recording with the new path and prints both peak RSS (target: 60 min <= 1.2x 5 min).

Usage::

    nice -n 10 python bench/archive.py --minutes 10
    nice -n 10 python bench/archive.py --minutes 10 --with-full --rss-minutes 5,60
    nice -n 10 python bench/archive.py --minutes 10 --resume 1,0.5,0 --no-table
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(cmd: list[str], env: dict[str, str], cpu: list[float] | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of one process; its CPU seconds are appended to ``cpu``.

    The peak is the child's own ``VmHWM``, polled from ``/proc`` (``wait4``'s ``ru_maxrss`` would
    include the parent's high-water mark, which ``fork`` + ``exec`` carry over). CPU time comes from
    ``wait4``'s rusage of the child: on a shared machine it moves less than the wall time.
    """
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.DEVNULL, env=env, text=True)
        peak = 0.0
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                p.returncode = os.waitstatus_to_exitcode(status)
                break
            try:
                text = Path(f"/proc/{p.pid}/status").read_text()
                peak = max(peak, next(float(x.split()[1]) for x in text.splitlines() if x.startswith("VmHWM")))
            except (OSError, StopIteration):
                pass
            time.sleep(0.2)
        wall = time.perf_counter() - t0
        out.seek(0)
        text = out.read()
    if p.returncode:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}")
    if cpu is not None:
        cpu.append(usage.ru_utime + usage.ru_stime)
    return wall, peak / 1024, text


def index_cmd(video: Path, gallery: Path, scan: str, decoder: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "csip_reid.cli", "index", str(video), "--gallery", str(gallery),
            "--config", "offline_demo", "--scan", scan, "--decoder", decoder, "--json", *extra]


def killed_at(cmd: list[str], env: dict[str, str], cpu: float) -> float:
    """Run ``cmd`` and kill -9 it once it has used ``cpu`` CPU seconds; returns its wall seconds then.

    CPU time, not wall time, marks the point: on a shared machine the share of the work done by a
    given wall time varies from run to run, the CPU time spent on it much less.
    """
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    while p.poll() is None and cpu_seconds(p.pid) < cpu:
        time.sleep(0.05)
    if p.poll() is not None:
        raise SystemExit(f"finished before the kill at {cpu:.1f} CPU s: {' '.join(cmd)}")
    p.kill()
    p.wait()
    return time.perf_counter() - t0


def tracklet_table(gallery: Path) -> list[tuple]:
    """(track id, frames, boxes, embedding) of every stored tracklet, by track id."""
    import numpy as np

    from csip_reid.gallery.store import Gallery

    with Gallery.open(gallery) as g:
        return sorted((r.track_id, r.frames.tolist(), np.round(r.boxes, 2).tolist(), r.embedding)
                      for r in g.iter_tracklets())


def resume_rows(video: Path, env: dict[str, str], decoder: str, segments: list[float], at: float,
                tmp: Path) -> None:
    """Uninterrupted runs (one per segment length) and, for each, kill -9 at ``at`` of its time, then the rerun."""
    import numpy as np

    from csip_reid.gallery.store import Gallery

    print("\n| --segment-minutes | uninterrupted s (CPU s) | killed at CPU s | resume point (video s) | "
          "rerun s (CPU s) | rerun / uninterrupted, CPU (wall) | same tracklets |\n|---|---|---|---|---|---|---|")
    for minutes in segments:
        extra = ("--segment-minutes", f"{minutes:g}")
        clean, cut, cpu = tmp / f"clean_{minutes:g}", tmp / f"cut_{minutes:g}", []
        whole, _, _ = timed(index_cmd(video, clean, "adaptive", decoder, *extra), env, cpu)
        killed_at(index_cmd(video, cut, "adaptive", decoder, *extra), env, at * cpu[0])
        with Gallery.open(cut) as g:
            partial = g.info()["partial"]
        resumed_s = partial[0]["indexed_to_s"] if partial else 0.0
        rerun, _, _ = timed(index_cmd(video, cut, "adaptive", decoder, *extra), env, cpu)
        a, b = tracklet_table(clean), tracklet_table(cut)
        same = [x[:3] for x in a] == [x[:3] for x in b] and all(
            np.allclose(x[3], y[3], atol=1e-5) for x, y in zip(a, b, strict=True))
        print(f"| {minutes:g} | {whole:.1f} ({cpu[0]:.1f}) | {at * cpu[0]:.1f} | {resumed_s:.0f} | "
              f"{rerun:.1f} ({cpu[1]:.1f}) | {cpu[1] / cpu[0]:.2f} ({rerun / whole:.2f}) | {same} ({len(a)}) |")


def busy_rows(video: Path, env: dict[str, str], runs: int) -> None:
    """``reid index`` of a busy clip with each decoder, interleaved ``runs`` times: median wall and CPU."""
    import statistics

    got: dict[str, list[tuple[float, float]]] = {"opencv": [], "pyav": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            for decoder, rows in got.items():
                cpu: list[float] = []
                wall, _, out = timed(index_cmd(video, Path(tmp) / f"{decoder}{i}", "adaptive", decoder), env, cpu)
                rows.append((wall, cpu[0]))
    print(f"\n| {video.name}, {runs} runs | median wall s | median CPU s | tracklets |\n|---|---|---|---|")
    for decoder, rows in got.items():
        print(f"| --decoder {decoder} | {statistics.median(w for w, _ in rows):.1f} | "
              f"{statistics.median(c for _, c in rows):.1f} | |")


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
    p.add_argument("--resume", default="", help="e.g. 1,0.5: --segment-minutes to kill -9 and resume with")
    p.add_argument("--resume-decoder", default="auto", help="decoder of the resume rows")
    p.add_argument("--kill-at", type=float, default=0.8, help="kill after this share of an uninterrupted run")
    p.add_argument("--no-table", action="store_true", help="only the --resume, --rss-minutes and --busy parts")
    p.add_argument("--busy", type=int, default=0, help="also index the busy Intel clip with both decoders N times")
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
    if args.resume:
        with tempfile.TemporaryDirectory() as tmp:
            resume_rows(video, env, args.resume_decoder, [float(x) for x in args.resume.split(",")], args.kill_at,
                        Path(tmp))
    if not args.no_table:
        rows: list[tuple[str, float, float, float, str, str]] = []
        for how in ("opencv", "pyav", "pyav-keyframes"):
            cpu: list[float] = []
            wall, rss, out = timed([sys.executable, "-c", DECODE, str(video), how], env, cpu)
            rows.append((f"decode only, {how}", wall, cpu[0], rss, out.strip(), ""))
        scans = ([("full", "opencv")] if args.with_full else []) + [("adaptive", "opencv"), ("adaptive", "pyav")]
        with tempfile.TemporaryDirectory() as tmp:
            for scan, decoder in scans:
                gallery, cpu = Path(tmp) / f"{scan}_{decoder}", []
                wall, rss, out = timed(index_cmd(video, gallery, scan, decoder), env, cpu)
                n, found = stretches_found(gallery, stretches)
                frames = json.loads(out)["frames"]
                rows.append((f"index --scan {scan} --decoder {decoder}", wall, cpu[0], rss, str(frames),
                             f"{n} tracklets, {found}/{len(stretches)} stretches"))
        base = rows[0]
        adaptive = next(r for r in rows if r[0] == "index --scan adaptive --decoder opencv")
        video_s = spec.frames / spec.fps
        print("\n| row | wall s | CPU s | x real time | OpenCV decode / row, wall (CPU) | adaptive(opencv) / row, "
              "wall (CPU) | peak RSS MB | frames | found |\n|---|---|---|---|---|---|---|---|---|")
        for name, wall, cpu_s, rss, frames, found in rows:
            print(f"| {name} | {wall:.1f} | {cpu_s:.1f} | {video_s / wall:.0f} | {base[1] / wall:.2f} "
                  f"({base[2] / cpu_s:.2f}) | {adaptive[1] / wall:.2f} ({adaptive[2] / cpu_s:.2f}) | {rss:.0f} | "
                  f"{frames} | {found} |")
    if args.busy:
        busy_rows(DATA / "videos" / "intel_one-by-one-person-detection.mp4", env, args.busy)
    if args.rss_minutes:
        peaks: dict[str, list[tuple[float, float, float]]] = {"auto": [], "pyav": []}
        for m in [float(x) for x in args.rss_minutes.split(",")]:
            v, _ = generate(source, ArchiveSpec(minutes=m, gop_s=args.gop_s), CACHE)
            for decoder, rows_ in peaks.items():
                with tempfile.TemporaryDirectory() as tmp:
                    wall, rss, _ = timed(index_cmd(v, Path(tmp) / "g", "adaptive", decoder), env)
                rows_.append((m, rss, wall))
        print("\n| recording | --decoder | index wall s | peak RSS MB |\n|---|---|---|---|")
        for decoder, rows_ in peaks.items():
            for m, rss, wall in rows_:
                print(f"| {m:g} min | {decoder} | {wall:.0f} | {rss:.0f} |")
            print(f"RSS ratio --decoder {decoder}, {rows_[-1][0]:g} min / {rows_[0][0]:g} min: "
                  f"{rows_[-1][1] / rows_[0][1]:.2f} (target <= 1.2)")

if __name__ == "__main__":
    main()
