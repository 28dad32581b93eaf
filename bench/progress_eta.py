"""How right the progress bar's ETA is: the run's average speed against tqdm's moving average.

Detection and tracking of the generated archive recording of ``bench/archive.py`` (1080p25, people in
10 % of the time, so the speed swings between keyframe-only stretches and detected people) with the
adaptive scan, recording the bar's position at every ``update_to``. Then, at every tenth of a second
of the run (the bar's redraw interval) from 10 % to 90 % of it, each ETA rule is compared with the
time the run really took to finish:

* ``average``: frames done in this run / seconds of this run (``smoothing=0``, the bar's default);
* ``ema 0.3``: tqdm's default, an exponential moving average of the speed between redraws.

Error = |ETA / actual time left - 1|; the median and the 90th percentile are printed.

Usage::

    nice -n 10 python bench/progress_eta.py --minutes 10
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from archive import CACHE, DATA
from archive_video import ArchiveSpec, generate

import csip_reid.pipeline.extract as extract
from csip_reid.core.progress import VideoProgress

TRACE: list[tuple[float, int]] = []


class Recorded(VideoProgress):
    """The bar, recording ``(time, position)`` at each update."""

    def update_to(self, position: int) -> None:
        TRACE.append((time.perf_counter(), position))
        super().update_to(position)


def etas(trace: np.ndarray, total: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """``(ETA, actual time left)`` at each redraw (every 0.1 s) of a trace, with smoothing ``alpha`` (0: average)."""
    t, n = trace[:, 0] - trace[0, 0], trace[:, 1]
    end = t[-1]
    ema_dn = ema_dt = 0.0
    last_t, last_n = 0.0, n[0]
    out, actual = [], []
    for ti in np.arange(0.1, end, 0.1):
        ni = n[np.searchsorted(t, ti, side="right") - 1]
        if alpha:
            ema_dn = alpha * (ni - last_n) + (1 - alpha) * ema_dn
            ema_dt = alpha * (ti - last_t) + (1 - alpha) * ema_dt
            rate = ema_dn / ema_dt if ema_dt else 0.0
        else:
            rate = (ni - n[0]) / ti
        last_t, last_n = ti, ni
        if 0.1 * end <= ti <= 0.9 * end and rate > 0:
            out.append((total - ni) / rate)
            actual.append(end - ti)
    return np.array(out), np.array(actual)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--decoders", default="pyav,opencv")
    a = p.parse_args(argv)
    spec = ArchiveSpec(minutes=a.minutes)
    video, _ = generate(DATA / "videos" / "intel_one-by-one-person-detection.mp4", spec, CACHE)
    extract.VideoProgress = Recorded  # type: ignore[misc]
    detector = extract.create_detector("yolox:yolox_nano")
    print(f"`nice -n 10 python bench/progress_eta.py --minutes {a.minutes:g}` ({spec.frames} frames)\n")
    print("| decoder | run s | rule | median ETA error | p90 ETA error |")
    print("|---|---|---|---|---|")
    for decoder in a.decoders.split(","):
        TRACE.clear()
        t0 = time.perf_counter()
        for _ in extract.extract_tracklets(video, detector, scan="adaptive", decoder=decoder, progress=True):
            pass
        wall = time.perf_counter() - t0
        trace = np.array(TRACE, dtype=float)
        for rule, alpha in (("average (default)", 0.0), ("ema 0.3 (tqdm's)", 0.3)):
            eta, actual = etas(trace, spec.frames, alpha)
            err = np.abs(eta / actual - 1)
            print(f"| {decoder} | {wall:.1f} | {rule} | {np.median(err):.0%} | {np.percentile(err, 90):.0%} |")


if __name__ == "__main__":
    sys.exit(main())
