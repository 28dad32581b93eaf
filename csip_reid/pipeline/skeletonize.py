"""``reid skeletons``: CSIP-format skeleton JSON for every frame of an existing dataset.

CSIP-ReID trained on HMR2.0 skeletons whose conversion script was never released. This command
makes an equivalent input with our pose back-ends. Each frame of a dataset is already a person
crop, so the pose model runs on the whole frame. The COCO-17 keypoints become H36M-17 joints,
normalised per tracklet (``h36m17-2d-conf``, see ``docs/skeletons.md``), and are written as one
JSON per frame:

* ``custom`` datasets: next to the frame (``<frame stem>.json``);
* every other dataset: ``<root>/skeletons/<frame folder relative to root>/<frame stem>.json``,
  where the dataset readers look for them;
* with ``out``: ``<out>/<frame folder relative to root>/<frame stem>.json`` (read-only datasets;
  ``reid train --skeletons <out>`` then reads them).

A tracklet whose files all exist is skipped, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from csip_reid.core.errors import DatasetError
from csip_reid.data.records import SequenceRecord
from csip_reid.data.skeleton_io import write_skeleton_json


def skeleton_target(root: Path, frame: str, dataset: str, out: Path | None = None) -> Path:
    """Where the skeleton JSON of ``frame`` goes (``out`` overrides ``<root>/skeletons``)."""
    f = Path(frame)
    if dataset == "custom" and out is None:
        return f.with_suffix(".json")
    rel = Path(os.path.relpath(f.parent, root))
    return (out or root / "skeletons") / rel / (f.stem + ".json")


def _unique_records(ds: Any) -> list[SequenceRecord]:
    seen: set[tuple[str, ...]] = set()
    out = []
    for rec in [*ds.train, *ds.query, *ds.gallery]:
        key = tuple(rec.frames)
        if key not in seen:
            seen.add(key)
            out.append(rec)
    return out


def skeletonize_dataset(dataset: str, data_root: str | Path, pose: str = "movenet", device: str = "cpu",
                        limit: int | None = None, batch_size: int = 32, min_score: float = 0.2,
                        progress: bool = True, out: str | Path | None = None) -> dict[str, Any]:
    """Write skeleton JSON for the frames of ``dataset`` under ``data_root``; returns counts.

    Args:
        dataset: Dataset kind (``mars``, ``lsvid``, ``ilidsvid``, ``prid``, ``custom``, ``minimars``).
        data_root: Dataset root (must be writable).
        pose: Pose back-end spec (``movenet``, ``yolo-pose``, ``rtmpose-s`` ...).
        device: Device of the pose model.
        limit: Only the first ``limit`` tracklets (trial runs).
        batch_size: Frames per pose-model call.
        min_score: Keypoint confidence below which a joint is missing.
        progress: Show a progress bar.
        out: Write under this folder instead (for read-only datasets); pass the same folder to
            ``reid train --skeletons``.
    """
    from csip_reid.core.skeleton import H36M_2D
    from csip_reid.data import build_dataset
    from csip_reid.data.loaders import read_bgr
    from csip_reid.pipeline.pose import create_pose
    from csip_reid.pipeline.pose.skeleton import coco_to_h36m, normalize_skeleton

    root = Path(data_root).resolve()
    estimator = create_pose(pose, device=device)
    if estimator is None:
        raise DatasetError("reid skeletons needs a pose back-end, not 'none'")
    fmt = estimator.skeleton_format
    ds = build_dataset(dataset, root, skeletons="none")
    records = _unique_records(ds)[: limit or None]
    out_dir = Path(out).resolve() if out else None
    probe = out_dir or (root / "skeletons" if dataset != "custom" else root)
    try:
        probe.mkdir(parents=True, exist_ok=True)
        test = probe / ".write_test"
        test.write_text("")
        test.unlink()
    except OSError as e:
        raise DatasetError(f"cannot write skeletons under {probe}: {e}") from None
    done = skipped = frames = 0
    for rec in tqdm(records, desc=f"skeletons ({pose})", unit="tracklet", disable=not progress):
        targets = [skeleton_target(root, f, dataset, out_dir) for f in rec.frames]
        if all(t.is_file() for t in targets):
            skipped += 1
            continue
        parts = [estimator.estimate_with_world([read_bgr(f) for f in rec.frames[s : s + batch_size]])
                 for s in range(0, len(rec.frames), batch_size)]
        if fmt == H36M_2D:
            seq = normalize_skeleton(coco_to_h36m(np.concatenate([p[0] for p in parts], 0)), min_score=min_score)
        else:  # a 3D back-end's own joints
            seq = np.concatenate([p[1] for p in parts], 0)
        for t, sk in zip(targets, seq):
            write_skeleton_json(t, sk, fmt)
        done += 1
        frames += len(targets)
    return {"dataset": dataset, "root": str(root), "out": str(probe), "pose": pose, "tracklets_written": done,
            "tracklets_skipped": skipped, "frames_written": frames, "format": fmt}
