"""``reid query``: run a clip through the gallery's own pipeline and search the gallery."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from csip_reid.core.errors import GalleryError, NoPersonError
from csip_reid.core.tracklet import Tracklet
from csip_reid.core.weights import cache_dir
from csip_reid.pipeline.settings import PipelineSettings

MODES = ("appearance", "skeleton", "fused")


@dataclass
class QueryResult:
    """One query tracklet and its ranked hits."""

    query: dict[str, Any]
    hits: list[Any] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query, "hits": [h.to_dict() for h in self.hits]}


def gallery_settings(gallery: Any, **overrides: Any) -> PipelineSettings:
    """The pipeline settings stored in a gallery manifest, with explicit overrides applied."""
    emb = gallery.embedder
    stored = dict(emb.get("pipeline") or {})
    stored.setdefault("scan", "full")  # galleries from before adaptive scanning detected every frame
    stored["embedder"] = emb.get("spec", stored.get("embedder"))
    stored.update({k: v for k, v in overrides.items() if v is not None})
    return PipelineSettings.from_dict(stored)


def pick_queries(tracklets: list[Tracklet], track_id: int | None, all_tracks: bool) -> list[Tracklet]:
    """The longest tracklet by default, one by track id, or all of them."""
    if not tracklets:
        raise NoPersonError("no person found in the query clip (no track long enough)")
    if track_id is not None:
        chosen = [t for t in tracklets if t.track_id == track_id]
        if not chosen:
            ids = ", ".join(str(t.track_id) for t in tracklets)
            raise NoPersonError(f"track id {track_id} not found in the query clip; tracks: {ids}")
        return chosen
    if all_tracks:
        return sorted(tracklets, key=lambda t: t.start_frame)
    return [max(tracklets, key=lambda t: (len(t), t.mean_box_height))]


def _save_query_thumb(t: Tracklet, clip: str) -> str:
    if t.thumbnail is None:
        return ""
    out = cache_dir() / "queries"
    out.mkdir(parents=True, exist_ok=True)
    p = out / f"{Path(clip).stem}_t{t.track_id}_{t.start_frame}.jpg"
    cv2.imwrite(str(p), t.thumbnail)
    return str(p)


def search_tracklet(gallery: Any, t: Tracklet, top_k: int, mode: str, fuse_weight: float) -> list[Any]:
    """Search one embedded tracklet; fused/skeleton modes re-rank by skeleton similarity."""
    if mode == "appearance":
        return gallery.search(t.embedding[None], k=top_k)[0]
    skel = t.skeleton_embedding
    if skel is None:
        raise GalleryError(f"--mode {mode} needs a skeleton embedding of the query: index and query with "
                           "--pose and a skeleton-capable embedder")
    from csip_reid.gallery.fused import search_fused

    return search_fused(gallery, t.embedding, np.asarray(skel, np.float32), k=top_k, mode=mode, weight=fuse_weight)


def run_query(gallery_dir: str | Path, clip: str | Path, top_k: int = 10, track_id: int | None = None,
              all_tracks: bool = False, mode: str = "appearance", fuse_weight: float = 0.5,
              progress: bool = True, start_s: float | None = None, end_s: float | None = None,
              camera: str | None = None, **overrides: Any) -> list[QueryResult]:
    """Run ``clip`` (or its ``[start_s, end_s)`` part) through the gallery's pipeline; ranked hits per query.

    ``camera`` names the clip's camera (default: its file stem); the gallery's stored camera map
    turns it into the SIE camera index, as for the gallery's own videos.
    """
    from csip_reid.core.video import VideoReader
    from csip_reid.gallery.store import Gallery, embedder_info
    from csip_reid.pipeline.embed import create_embedder
    from csip_reid.pipeline.indexer import Pipeline

    if mode not in MODES:
        raise GalleryError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    clip = str(clip)
    reader = VideoReader(clip)  # fail early with a clear message on a bad clip
    start = int(round((start_s or 0.0) * reader.fps))
    end = None if end_s is None else int(round(end_s * reader.fps))
    if end is not None and end <= start:
        raise NoPersonError(f"empty time range {start_s}-{end_s} s")
    gallery = Gallery.open(gallery_dir)
    if len(gallery) == 0:
        raise GalleryError(f"gallery {gallery_dir} is empty: run `reid index` first")
    settings = gallery_settings(gallery, **overrides)
    embedder = create_embedder(settings.embedder, device=settings.device)
    gallery.check_compatible(embedder_info(embedder))
    pipe = Pipeline(settings, embedder=embedder)
    tracklets = list(pipe.tracklets(clip, camera=camera, progress=progress, start=start, end=end))
    queries = pick_queries(tracklets, track_id, all_tracks)
    pipe.complete(queries)
    results = []
    try:
        for t in queries:
            q = t.summary()
            q["video"] = str(Path(clip).resolve())
            q["thumbnail"] = _save_query_thumb(t, clip)
            results.append(QueryResult(q, search_tracklet(gallery, t, top_k, mode, fuse_weight)))
    finally:
        gallery.close()
    return results


def format_table(result: QueryResult) -> str:
    """Plain-text ranked table for the terminal."""
    q = result.query
    lines = [
        f"query: {Path(q['video']).name} track {q['track_id']} frames {q['start_frame']}-{q['end_frame']} "
        f"({_mmss(q['start_s'])}-{_mmss(q['end_s'])})",
        f"{'rank':>4}  {'score':>6}  {'video':<32} {'camera':<14} {'track':>5}  {'frames':<13} {'time':<13}",
    ]
    for h in result.hits:
        name = Path(h.video).name
        name = name if len(name) <= 32 else "…" + name[-31:]
        lines.append(
            f"{h.rank:>4}  {h.score:>6.3f}  {name:<32} {str(h.camera)[:14]:<14} {h.track_id:>5}  "
            f"{f'{h.start_frame}-{h.end_frame}':<13} {f'{_mmss(h.start_s)}-{_mmss(h.end_s)}':<13}"
        )
    if not result.hits:
        lines.append("  (no hits)")
    return "\n".join(lines)


def _mmss(s: float) -> str:
    s = max(0.0, float(s))
    return f"{int(s // 60):02d}:{s % 60:04.1f}"
