"""``reid gallery merge``: join galleries indexed on different machines into one.

Archives too big for one machine are indexed in shards, for example one machine per camera
folder, each with the same embedder. The shards are then merged. Merging copies every indexed
video with its tracklets, thumbnails and extra vector spaces (skeleton) into the destination,
one video per transaction, just as `reid index` adds them. Merges are therefore crash-safe and
can be rerun:

* a video whose content hash the destination already holds is skipped;
* a path the destination already holds with *other* content is a conflict. It is reported and
  skipped, never overwritten (two machines may mount different footage at the same path);
* every source must have been built with the destination's embedder (same fingerprint and
  dimension), or the merge is refused before anything is copied.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import EllipsisType
from typing import Any

import cv2
from tqdm import tqdm

from csip_reid.gallery.store import Gallery
from csip_reid.gallery.videos import VideoRecord


def _source_info(g: Gallery) -> dict[str, Any]:
    return {**g.embedder, "fingerprint": g.fingerprint, "dim": g.dim,
            "skeleton_format": g.manifest.get("skeleton_format")}


def merge_galleries(dest: str | Path, sources: list[str | Path], progress: bool = True) -> dict[str, Any]:
    """Copy the indexed videos of ``sources`` into the gallery ``dest`` (created if missing).

    Returns:
        Counts: ``videos_added``, ``tracklets_added``, ``videos_skipped`` (already there),
        ``conflicts`` (list of paths held with other content).

    Raises:
        GalleryError: A source is not a gallery, or was built with another embedder.
    """
    srcs = [Gallery.open(s) for s in sources]
    try:
        if not srcs:
            return {"videos_added": 0, "tracklets_added": 0, "videos_skipped": 0, "conflicts": []}
        dst = Gallery.open_or_create(dest, _source_info(srcs[0]))
        try:
            for s in srcs:
                dst.check_compatible(_source_info(s))
            return _copy_all(dst, srcs, progress)
        finally:
            dst.close()
    finally:
        for s in srcs:
            s.close()


def merge_video(dst: Gallery, src: Gallery, video: VideoRecord, replace: bool = False,
                start_time: str | None | EllipsisType = ...) -> tuple[str, int]:
    """Copy one indexed video of ``src`` (one of ``src.indexed_videos()``) into ``dst`` atomically.

    Args:
        dst: Destination gallery (written).
        src: Source gallery (read only).
        video: The video's stored facts, as :meth:`Gallery.indexed_videos` lists them (not changed).
        replace: Copy even if ``dst`` holds this content or other content at this path (the copy
            replaces it in the same transaction), as ``reid index --force`` does.
        start_time: The video's wall-clock start in ``dst`` (ISO 8601 or None); default: the
            source's.

    Returns:
        ``(outcome, tracklets copied)``; outcome is ``"added"``, ``"skipped"`` (the destination
        already holds this content) or ``"conflict"`` (it holds other content at this path).
    """
    path = video.path
    if not replace:
        if dst.is_indexed(video.content_hash):
            return "skipped", 0
        if dst.indexed_hash_at(path) is not None:
            return "conflict", 0
    items = []
    for rec in src.iter_tracklets(video=path):
        t = rec.to_tracklet()
        t.gallery_id = None  # the destination gives it its own id
        if rec.thumbnail and Path(rec.thumbnail).is_file():
            t.thumbnail = cv2.imread(rec.thumbnail)
        items.append(t)
    dst.add_video(video if start_time is ... else dataclasses.replace(video, start_time=start_time), items)
    return "added", len(items)


def _copy_all(dst: Gallery, srcs: list[Gallery], progress: bool) -> dict[str, Any]:
    added = tracklets = skipped = 0
    conflicts: list[str] = []
    for src in srcs:
        for video in tqdm(src.indexed_videos(), desc=f"merge {src.root.name}", unit="video",
                          disable=not progress):
            outcome, n = merge_video(dst, src, video)
            if outcome == "skipped":
                skipped += 1
            elif outcome == "conflict":
                conflicts.append(video.path)
            else:
                added += 1
                tracklets += n
    return {"videos_added": added, "tracklets_added": tracklets, "videos_skipped": skipped,
            "conflicts": conflicts}
