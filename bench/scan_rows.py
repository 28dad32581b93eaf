"""The adaptive-scan rows of ``bench/index_throughput.py``: ``--scan adaptive`` against ``--scan full``.

For each scan video (default: the Intel clip at full length, the crowd clip ``mmtracking_demo.mp4``,
then the other real test videos), times, interleaved and median of ``--runs``:

* decoding alone (the physical limit of an adaptive scan on this machine),
* ``reid index --scan full`` and ``reid index --scan adaptive`` (``Indexer.index_video`` into a
  fresh gallery, as in the main table),

and prints frames/s, frames detected, tracklets, the speed-up of adaptive over full, adaptive's
time over decoding alone, and the IoU coverage: for every full-scan tracklet, the share of its
frames on which the best-matching adaptive tracklet has a box with IoU >= 0.5 (interpolated boxes
included), read back from the two galleries. Targets: 3x on the Intel clip, never slower on the
others; nothing lost on any (no more tracklets than the full scan, coverage >= 0.9).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TARGET_SPEEDUP = 3.0
#: Share of a full-scan tracklet's frames an adaptive box must cover (IoU >= 0.5).
MIN_COVERAGE = 0.9


def scan_stages(args: Any, tmp: Path) -> tuple[Any, Any, Any]:
    """Decode, index full and index adaptive stages (built from ``index_throughput``'s classes)."""
    from index_throughput import Decode, Index

    from csip_reid.pipeline.settings import PipelineSettings

    class ScanIndex(Index):
        """``Index`` that remembers its gallery folder and the frames its detector saw."""

        def begin_run(self) -> None:
            super().begin_run()
            self.folder = Path(self.indexer.gallery.root)
            self.detected = 0
            segments = self.indexer.pipeline.segments

            def counted(path: Any, *a: Any, stats: Any = None, **kw: Any) -> Any:
                yield from segments(path, *a, stats=stats, **kw)
                self.detected += stats.frames_detected if stats is not None else 0

            self.indexer.pipeline.segments = counted

    def settings(scan: str) -> Any:
        return PipelineSettings(detector=args.detector, embedder=args.embedder, scan=scan)

    return (Decode("decode"), ScanIndex("index --scan full", settings("full"), tmp),
            ScanIndex("index --scan adaptive", settings("adaptive"), tmp))


def coverage_of(full_gallery: Path, adaptive_gallery: Path) -> tuple[int, int, float]:
    """(full tracklets, adaptive tracklets, lowest IoU>=0.5 coverage of a full-scan tracklet)."""
    from csip_reid.gallery.store import Gallery
    from csip_reid.tracking.interpolate import match_scans

    tracks = []
    for root in (full_gallery, adaptive_gallery):
        g = Gallery.open(root)
        try:
            tracks.append([r.to_tracklet() for r in g.iter_tracklets()])
        finally:
            g.close()
    full, ada = tracks
    cover = [c for _, c in match_scans(full, ada)]
    return len(full), len(ada), min(cover) if cover else 1.0


def scan_table(args: Any, videos: list[Path], tmp: Path) -> None:
    """Print the adaptive-vs-full table (one row group per video)."""
    from index_throughput import print_table, run_stages

    rows = []
    for video in videos:
        decode, full, ada = scan_stages(args, tmp)
        from csip_reid.core.video import VideoReader

        short = VideoReader(video).frame_count < 100  # seconds of wall time: more runs against the noise
        res = run_stages([decode, full, ada], [video], max(args.runs, 7) if short else args.runs)
        n_full, n_ada, cover = coverage_of(full.folder, ada.folder)
        f, a, d = res[full.name], res[ada.name], res[decode.name]
        speedup, cpu_speedup = f["wall"] / a["wall"], f["cpu"] / a["cpu"]
        goal = TARGET_SPEEDUP if "intel" in video.name else 1.0  # the brief's 3x is for the Intel clip
        name = "never slower" if goal == 1.0 else f">= {goal:.0f}x"
        kept = n_ada <= n_full and cover >= MIN_COVERAGE
        target = (f"{name}: {'met' if speedup >= goal else 'MISSED'} (CPU {cpu_speedup:.2f}x: "
                  f"{'met' if cpu_speedup >= goal else 'MISSED'}); nothing lost: {'met' if kept else 'MISSED'}")
        for stage, r, detected in ((decode, d, 0), (full, f, full.detected), (ada, a, ada.detected)):
            extra = ["", "", "", ""]
            if stage is ada:
                extra = [f"{speedup:.2f}x", f"{a['wall'] / d['wall']:.2f}x", f"{cover:.3f} ({n_ada} vs {n_full})",
                         target]
            rows.append([video.name, stage.name, f"{r['frames'] / r['wall']:.1f}", detected or "", r["tracklets"],
                         f"{r['wall']:.1f}", f"{r['cpu']:.1f}", *extra])
    print_table("Adaptive scan vs full scan (median of runs; speed-up = full wall / adaptive wall)",
                ["video", "stage", "frames/s", "frames detected", "tracklets", "wall s", "CPU s",
                 "speed-up vs full", "adaptive / decode", "min IoU coverage (tracklets ada vs full)", "target"],
                rows)
