"""Pose back-ends on the tracker's person crops: agreement, anatomy checks and ms per person.

Each video goes through the real detector and tracker (``yolox:yolox_nano`` + ByteTrack, every
frame); every back-end then runs on the same sampled crops of every tracklet. Printed per back-end:

* ``PCK@0.2`` (and the stricter ``PCK@0.1``): agreement with the reference back-end (default MoveNet
  Lightning) within 0.2 (0.1) of the crop's longer side, over keypoints both score >= 0.3;
  ``found``: crops in which the back-end found a person;
* ``head>pelvis 2D``: frames whose head is above the pelvis in the image;
* ``L/R<=15% 2D``: (frame, bone pair) shares whose left and right bone differ by at most 15 %;
  ``bone CV 2D``: median coefficient of variation of bone lengths over a tracklet (pixels);
* for back-ends with 3D joints (``blazepose-3d``): the same three checks on the metric world
  skeleton (``3D`` columns; head above pelvis in world axes, y down), and the median L/R difference;
* ``ms/person``: wall time of ``estimate`` per crop, one interpreter thread by default.

Usage::

    REID_WEIGHTS_DIR=/work/shared/data/models REID_OFFLINE=1 \\
        python bench/pose_quality.py --poses movenet,blazepose-3d:full,blazepose-3d:heavy
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

VIDEOS = ("tfjs_pose_1.mp4", "tfjs_pose_squats.mp4", "mmaction2_demo_skeleton.mp4")


def tracklet_crops(video: Path, detector: str, max_samples: int) -> list[list[np.ndarray]]:
    """The sampled crops of each tracklet of ``video`` (real detector + ByteTrack)."""
    from csip_reid.pipeline.extract import extract_tracklets

    tracks = extract_tracklets(str(video), detector, builder_opts={"max_samples": max_samples, "min_frames": 5},
                               progress=False)
    return [list(t.crops) for t in tracks if len(t.crops) >= 3]


def run_pose(spec: str, crops: list[list[np.ndarray]], threads: int, roi_scale: float | None, roi: str) -> dict:
    """Keypoints, optional world joints and seconds of one back-end on every tracklet's crops."""
    from csip_reid.pipeline.pose import create_pose

    extra: dict = {}
    if spec.startswith("blazepose"):
        extra = {"roi": roi, **({"roi_scale": roi_scale} if roi_scale else {})}
    pose = create_pose(spec, num_threads=threads, **extra)
    pose.estimate_with_world(crops[0][:1])  # warm-up (XNNPACK packs weights on the first call)
    t0 = time.perf_counter()
    out = [pose.estimate_with_world(c) for c in crops]
    return {"kps": [o[0] for o in out], "world": [o[1] for o in out], "s": time.perf_counter() - t0}


def scores(res: dict, ref: dict, crops: list[list[np.ndarray]]) -> dict[str, float]:
    """The printed metrics of one back-end (``res``) against the reference (``ref``)."""
    from csip_reid.pipeline.pose.quality import bone_cv, head_above_pelvis, lr_symmetry, pck
    from csip_reid.pipeline.pose.skeleton import coco_to_h36m

    sides = np.concatenate([[max(c.shape[:2]) for c in cs] for cs in crops]).astype(np.float32)
    kps, rkps = np.concatenate(res["kps"]), np.concatenate(ref["kps"])
    h2d = [coco_to_h36m(k) for k in res["kps"]]
    for h in h2d:
        with np.errstate(invalid="ignore"):
            h[~(h[..., 2] >= 0.3)] = np.nan
    n = len(kps)
    row = {"crops": n, "PCK@0.2": pck(kps, rkps, sides), "PCK@0.1": pck(kps, rkps, sides, 0.1), "found": float(np.isfinite(kps[:, 0, 0]).mean()),
           "head>pelvis 2D": float(np.concatenate([head_above_pelvis(h) for h in h2d]).mean()),
           "L/R<=15% 2D": float((np.concatenate([lr_symmetry(h, 2) for h in h2d]) <= 0.15).mean()),
           "bone CV 2D": float(np.median(np.concatenate([bone_cv(h, 2) for h in h2d])))}
    if res["world"][0] is not None:
        w = res["world"]
        row.update({"head>pelvis 3D": float(np.concatenate([head_above_pelvis(s) for s in w]).mean()),
                    "L/R<=15% 3D": float((np.concatenate([lr_symmetry(s) for s in w]) <= 0.15).mean()),
                    "L/R med 3D": float(np.median(np.concatenate([lr_symmetry(s) for s in w]))),
                    "bone CV 3D": float(np.median(np.concatenate([bone_cv(s) for s in w])))})
    row["ms/person"] = 1000 * res["s"] / max(n, 1)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("REID_TEST_DATA", "../shared/data"))
    ap.add_argument("--videos", default=",".join(VIDEOS))
    ap.add_argument("--poses", default="movenet,blazepose-3d:full,blazepose-3d:heavy")
    ap.add_argument("--reference", default="movenet")
    ap.add_argument("--detector", default="yolox:yolox_nano")
    ap.add_argument("--max-samples", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--roi-scale", type=float, default=None, help="BlazePose ROI side / crop side (default 1.25)")
    ap.add_argument("--roi", default="box", choices=("box", "detector"),
                    help="BlazePose ROI: the tracker's box, or aligned by MediaPipe's ROI detector")
    args = ap.parse_args()
    poses = [p for p in args.poses.split(",") if p]
    if args.reference not in poses:
        poses.insert(0, args.reference)
    totals: dict[str, list[dict[str, float]]] = {p: [] for p in poses}
    for name in args.videos.split(","):
        crops = tracklet_crops(Path(args.data) / "videos" / name, args.detector, args.max_samples)
        if not crops:
            print(f"{name}: no tracklet")
            continue
        results = {p: run_pose(p, crops, args.threads, args.roi_scale, args.roi) for p in poses}
        print(f"\n{name}: {len(crops)} tracklets, {sum(map(len, crops))} crops")
        for p in poses:
            row = scores(results[p], results[args.reference], crops)
            totals[p].append(row)
            print(f"  {p:<22} " + "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                           for k, v in row.items()))
    base = totals[args.reference]
    print("\nall videos (crop-weighted mean; ms ratio to the reference):")
    for p in poses:
        rows = totals[p]
        if not rows:
            continue
        wts = np.array([r["crops"] for r in rows], np.float64)
        line = {k: float(np.average([r[k] for r in rows], weights=wts)) for k in rows[0] if k != "crops"}
        ref_ms = float(np.average([r["ms/person"] for r in base], weights=wts))
        line["x ref ms"] = line["ms/person"] / ref_ms
        print(f"  {p:<22} " + "  ".join(f"{k} {v:.3f}" for k, v in line.items()))


if __name__ == "__main__":
    main()
