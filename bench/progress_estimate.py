"""What the progress bar's frame-count estimate costs, beside what indexing the same footage costs.

A raw ``.264`` elementary stream has no frame count, so :class:`~csip_reid.core.progress.VideoProgress`
counts its packets (:func:`~csip_reid.core.progress.count_packets`: demux only, nothing decoded). This
script makes such a stream from the generated archive recording of ``bench/archive.py`` (1080p25, a
keyframe every 2 s; its H.264 packets rewritten to Annex B and the 10-minute stream repeated to
``--hours``), and measures, in one run:

* the header probe (:func:`~csip_reid.core.progress.header_frame_count`) of the MP4 and of the raw stream;
* the packet count of the long raw stream (seconds, MB/s, and the count against the true one);
* ``reid index`` of the 1- and the 10-minute recording, as MP4 with ``--decoder pyav`` (quiet
  stretches keyframes only, the fastest CPU path) and as raw ``.264`` with the default decoder, each
  in its own process; the difference of the two, per 9 minutes, is indexing time without start-up.

It prints the packet count's cost as a share of indexing time, per hour of video.

Usage::

    nice -n 10 python bench/progress_estimate.py --hours 1
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from archive import CACHE, DATA, index_cmd, timed
from archive_video import ArchiveSpec, generate

from csip_reid.core.progress import count_packets, header_frame_count

T = TypeVar("T")


def annexb(mp4: Path) -> Path:
    """The H.264 stream of ``mp4`` as a raw Annex B ``.264`` file (cached beside it)."""
    import av
    from av.bitstream import BitStreamFilterContext

    out = mp4.with_suffix(".264")
    if out.exists():
        return out
    with av.open(str(mp4)) as c, open(out.with_suffix(".part"), "wb") as f:
        stream = c.streams.video[0]
        bsf = BitStreamFilterContext("h264_mp4toannexb", stream)
        for packet in c.demux(stream):
            for p in bsf.filter(packet if packet.size else None):
                f.write(bytes(p))
    out.with_suffix(".part").rename(out)
    return out


def repeated(raw: Path, times: int) -> Path:
    """``raw`` written ``times`` times one after the other (a raw stream may be concatenated)."""
    out = raw.with_name(f"{raw.stem}_x{times}.264")
    if not out.exists():
        data = raw.read_bytes()
        with open(out.with_suffix(".part"), "wb") as f:
            for _ in range(times):
                f.write(data)
        out.with_suffix(".part").rename(out)
    return out


def clock(fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    """``(fn(*args), seconds it took)``."""
    t0 = time.perf_counter()
    value = fn(*args)
    return value, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hours", type=float, default=1.0, help="length of the long raw stream")
    p.add_argument("--no-index", action="store_true", help="measure the estimate only")
    a = p.parse_args(argv)
    spec = ArchiveSpec(minutes=10)
    mp4, _ = generate(DATA / "videos" / "intel_one-by-one-person-detection.mp4", spec, CACHE)
    raw = annexb(mp4)
    copies = max(1, round(a.hours * 6))
    long_raw = repeated(raw, copies)
    truth = spec.frames * copies
    video_h = truth / spec.fps / 3600

    header_mp4, t_hdr_mp4 = clock(header_frame_count, mp4, 25.0)
    header_raw, t_hdr_raw = clock(header_frame_count, long_raw, 25.0)
    count_packets(long_raw)  # once to warm the page cache, as indexing reads the file anyway
    counted, t_count = clock(count_packets, long_raw)
    mb = long_raw.stat().st_size / 1e6
    print(f"header probe, MP4 ({spec.frames} frames): {header_mp4} in {t_hdr_mp4 * 1000:.1f} ms")
    print(f"header probe, raw .264: {header_raw} in {t_hdr_raw * 1000:.1f} ms")
    print(f"packet count, raw .264 of {video_h:.2f} h ({mb:.0f} MB): {counted} of {truth} frames "
          f"in {t_count:.2f} s ({mb / t_count:.0f} MB/s, {t_count / video_h:.2f} s per video hour)")
    if a.no_index:
        return
    short, _ = generate(DATA / "videos" / "intel_one-by-one-person-detection.mp4", ArchiveSpec(minutes=1), CACHE)
    per_hour = t_count / video_h
    print("| row | wall s, 1 min | wall s, 10 min | s per video hour (10 min - 1 min) | packet count / index |")
    print("|---|---|---|---|---|")
    for name, videos, decoder in (("index MP4 --decoder pyav (keyframes while idle)", (short, mp4), "pyav"),
                                  ("index raw .264 --decoder opencv", (annexb(short), raw), "opencv")):
        walls = []
        for video in videos:
            with tempfile.TemporaryDirectory() as tmp:
                walls.append(timed(index_cmd(video, Path(tmp) / "g", "adaptive", decoder), dict(os.environ))[0])
        hour = (walls[1] - walls[0]) / 9 * 60  # start-up (imports, models) cancels out
        print(f"| {name} | {walls[0]:.1f} | {walls[1]:.1f} | {hour:.0f} | {100 * per_hour / hour:.2f} % |")

if __name__ == "__main__":
    sys.exit(main())
