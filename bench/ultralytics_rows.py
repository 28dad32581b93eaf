"""ultralytics' own ``model.track`` loop beside our detection + tracking (a table of ``index_throughput``).

Both run the same random-init yolo11n on the first benchmark video, so the comparison is of the
loops (decoding, batching, tracker calls), not of trained weights.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

from index_throughput import DetectTrack, Stage, print_table, random_yolo, run_stages, torch_threads, trimmed


class UltralyticsTrack(Stage):
    """ultralytics' ``model.track`` loop (stream, person class, ByteTrack), as users write it.

    Their predictor sets torch's thread count when it is built (on the warm-up video); the count
    seen inside the loop is recorded and the previous count restored after each video.
    """

    def __init__(self, name: str, weights: Path) -> None:
        from ultralytics import YOLO

        super().__init__(name)
        self.model = YOLO(str(weights))

    def video(self, path: Path) -> tuple[int, int]:
        from csip_reid.core.ultralytics_env import keep_torch_threads

        seen: Counter[int] = Counter()
        frames = 0
        with keep_torch_threads():
            for r in self.model.track(source=str(path), stream=True, classes=[0], tracker="bytetrack.yaml",
                                      verbose=False):
                frames += 1
                self.threads = min(self.threads, torch_threads())
                if r.boxes is not None and r.boxes.is_track:
                    seen.update(r.boxes.id.int().tolist())
        return frames, sum(n >= 5 for n in seen.values())



def compare_ultralytics(video: Path, args: argparse.Namespace, tmp: Path) -> None:
    """ultralytics' ``model.track`` beside our detection + tracking of the same random model."""
    import numpy as np

    from csip_reid.pipeline.detect import create_detector
    from csip_reid.pipeline.settings import PipelineSettings

    clip = trimmed(video, args.ultra_frames, tmp)
    weights = random_yolo("yolo11n.yaml", tmp / "yolo11n_random.pt")
    base = PipelineSettings()
    ours = create_detector(f"ultralytics:{weights}", conf=base.detector_conf, batch_size=base.detector_batch)
    theirs = UltralyticsTrack("ultralytics model.track", weights)
    theirs.video(clip)  # warm-up: builds their predictor (which resets torch's thread count)
    theirs.threads = 10**6
    ours.detect([np.zeros((432, 768, 3), np.uint8)])
    res = run_stages([theirs, DetectTrack("ours: detect + track", ours)], [clip], args.runs)
    ref = res[theirs.name]
    rows = [[k, f"{r['frames'] / r['wall']:.1f}", f"{r['wall']:.1f}", f"{r['wall'] / ref['wall']:.2f}x",
             f"{r['cpu']:.1f}", f"{r['cpu'] / ref['cpu']:.2f}x", r["threads"]] for k, r in res.items()]
    print_table(f"ultralytics' own tracking loop vs ours (random-init yolo11n, {args.ultra_frames} frames of "
                f"{video.name}, imgsz 640, conf 0.1, ByteTrack; theirs batch 1, ours batch "
                f"{ours.batch_size})",
                ["loop", "frames/s", "wall s", "wall ratio", "CPU s", "CPU ratio", "torch threads (min)"], rows)
