"""``reid export-dataset``: a gallery's tracklets → the custom training layout.

Output (the ``custom`` dataset layout, see ``docs/datasets.md``)::

    OUT/
      dataset.json                         source gallery, embedder, skeleton format, counts
      labels_template.csv                  one row per tracklet to fill in (when no labels given)
      train|query|gallery/<person>/<camera>_<tracklet>/<frame>.jpg
                                           /<frame>.json   (skeleton {"keypoints": 17x3, "format": ...})

Crops are cut again from the source videos at the tracklet's sampled frames (the gallery keeps
only thumbnails), so the videos must still be at their indexed paths. Identities come from a CSV
(``tracklet_id,person[,split]``) or, without one, each tracklet is its own provisional identity
``t<id>`` in ``train`` and a template CSV is written for labelling.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from csip_reid.core.errors import DatasetError, VideoError
from csip_reid.data.skeleton_io import write_skeleton_json

SPLITS = ("train", "query", "gallery")


def _safe(name: str) -> str:
    """A file-system and layout-safe name (no path separators, no underscores)."""
    s = re.sub(r"[^A-Za-z0-9.-]+", "-", str(name)).strip("-.")
    return s or "x"


def read_labels(path: str | Path) -> dict[int, tuple[str, str]]:
    """``tracklet_id → (person, split)`` from a CSV with columns ``tracklet_id, person[, split]``."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"labels file not found: {p}")
    out: dict[int, tuple[str, str]] = {}
    with p.open(newline="") as f:
        reader = csv.DictReader(f)
        cols = set(reader.fieldnames or [])
        if not {"tracklet_id", "person"} <= cols:
            raise DatasetError(f"labels file {p} needs columns tracklet_id,person[,split]; has {sorted(cols)}")
        for i, row in enumerate(reader, start=2):
            person = (row.get("person") or "").strip()
            if not person:
                continue  # unlabelled rows are skipped
            split = (row.get("split") or "train").strip().lower()
            if split not in SPLITS:
                raise DatasetError(f"{p}:{i}: split must be one of {', '.join(SPLITS)}, got {split!r}")
            try:
                out[int(row["tracklet_id"])] = (_safe(person), split)
            except ValueError:
                raise DatasetError(f"{p}:{i}: tracklet_id must be an integer") from None
    return out


def _sample_boxes(rec: Any) -> np.ndarray:
    """Boxes at the sampled frames (looked up among all observations)."""
    frames = np.asarray(rec.frames)
    boxes = np.asarray(rec.boxes, np.float32)
    idx = np.searchsorted(frames, rec.sample_frames)
    idx = np.clip(idx, 0, len(frames) - 1)
    return boxes[idx]


def _crop(frame: np.ndarray, box: np.ndarray) -> np.ndarray | None:
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = np.round(box).astype(int)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    return frame[y1:y2, x1:x2]


def export_gallery(gallery_dir: str | Path, out: str | Path, labels: str | Path | None = None,
                   progress: bool = True) -> dict[str, Any]:
    """Write the gallery's tracklets in the custom layout; returns counts.

    Args:
        gallery_dir: A gallery built by ``reid index``.
        out: Output folder (created; existing files are overwritten).
        labels: Optional CSV ``tracklet_id,person[,split]``; only labelled tracklets are exported.
        progress: Show a progress bar per video.
    """
    from csip_reid.core.video import VideoReader
    from csip_reid.gallery.store import Gallery

    gallery = Gallery.open(gallery_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lab = read_labels(labels) if labels else None
    by_video: dict[str, list[Any]] = defaultdict(list)
    template = []
    for rec in gallery.iter_tracklets():
        template.append(rec)
        if lab is not None and rec.id not in lab:
            continue
        by_video[rec.video].append(rec)
    if lab is None:
        with (out / "labels_template.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["tracklet_id", "person", "split", "video", "camera", "track_id", "start_s", "end_s",
                        "thumbnail"])
            for r in template:
                w.writerow([r.id, "", "train", r.video, r.camera, r.track_id, f"{r.start_s:.2f}", f"{r.end_s:.2f}",
                            r.thumbnail or ""])
    counts = {s: 0 for s in SPLITS}
    persons: dict[str, set[str]] = {s: set() for s in SPLITS}
    frames_written = skeleton_files = 0
    missing_videos = []
    skel_formats = set()
    for video, recs in sorted(by_video.items()):
        wanted: dict[int, list[tuple[Any, int, np.ndarray]]] = defaultdict(list)
        for r in recs:
            for j, (fi, box) in enumerate(zip(np.asarray(r.sample_frames), _sample_boxes(r))):
                wanted[int(fi)].append((r, j, box))
        try:
            reader = VideoReader(video)
        except VideoError:
            missing_videos.append(video)
            continue
        last = max(wanted) + 1
        reader.end = last
        dest: dict[int, Path] = {}
        for r in recs:
            person, split = lab[r.id] if lab else (f"t{r.id:06d}", "train")
            d = out / split / person / f"{_safe(r.camera)}_{r.id:06d}"
            d.mkdir(parents=True, exist_ok=True)
            dest[r.id] = d
            counts[split] += 1
            persons[split].add(person)
        bar = tqdm(total=len(wanted), desc=Path(video).name, unit="frame", disable=not progress, leave=False)
        for fi, _ts, frame in reader:
            for r, j, box in wanted.get(fi, ()):
                crop = _crop(frame, box)
                if crop is None:
                    continue
                stem = dest[r.id] / f"{fi:06d}"
                cv2.imwrite(str(stem.with_suffix(".jpg")), crop)
                frames_written += 1
                sk = r.skeleton
                if sk is not None and j < len(sk):
                    write_skeleton_json(stem.with_suffix(".json"), np.asarray(sk[j]), r.skeleton_format)
                    skeleton_files += 1
                    skel_formats.add(r.skeleton_format)
            if fi in wanted:
                bar.update(1)
        bar.close()
    if len(skel_formats) > 1:
        raise DatasetError(f"gallery mixes skeleton formats {sorted(map(str, skel_formats))}")
    summary = {
        "out": str(out.resolve()),
        "tracklets": counts,
        "persons": {s: len(p) for s, p in persons.items()},
        "frames": frames_written,
        "skeleton_files": skeleton_files,
        "skeleton_format": next(iter(skel_formats), None),
        "missing_videos": missing_videos,
        "labelled": lab is not None,
    }
    manifest = {"format": "csip-reid/custom-dataset", "source_gallery": str(Path(gallery_dir).resolve()),
                "embedder": gallery.embedder.get("spec"), **summary}
    (out / "dataset.json").write_text(json.dumps(manifest, indent=2))
    return summary
