"""Searches the app runs: by uploaded clip (the gallery's own pipeline) or by a stored tracklet.

Queries are heavy (a detector and an embedder run over the clip), so one runs at a time; the
models are loaded by :func:`csip_reid.pipeline.query.run_query` from the gallery's manifest, so
index and query cannot disagree.
"""

from __future__ import annotations

import base64
import dataclasses
import threading
from pathlib import Path
from typing import Any

from csip_reid.core.errors import ReidError
from csip_reid.pipeline.query import MODES, QueryResult, run_query, search_tracklet
from csip_reid.serve.state import GalleryState

_query_lock = threading.Lock()


class QueryError(ReidError):
    """A query the app cannot run (bad option, unknown tracklet)."""


def check_options(top_k: int, mode: str) -> None:
    """Raise :class:`QueryError` for a top-k or mode the CLI would refuse too."""
    if not 1 <= top_k <= 1000:
        raise QueryError(f"top-k must be between 1 and 1000, got {top_k}")
    if mode not in MODES:
        raise QueryError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")


def query_clip(state: GalleryState, clip: Path, top_k: int, mode: str, start_s: float | None = None,
               end_s: float | None = None) -> dict[str, Any]:
    """Search with the longest track of an uploaded clip; the JSON of ``reid query --json``."""
    check_options(top_k, mode)
    with _query_lock:
        results = run_query(state.root, clip, top_k=top_k, mode=mode, progress=False, start_s=start_s,
                            end_s=end_s)
    out = results[0].to_dict()
    out["query"] = _public_query(out["query"], source="upload")
    return out


def query_tracklet(state: GalleryState, tracklet_id: int, top_k: int, mode: str = "appearance") -> dict[str, Any]:
    """"Find this person": search with a stored tracklet's vectors, the tracklet itself left out."""
    check_options(top_k, mode)
    g = state.gallery()
    rec = g.get_tracklet(tracklet_id)  # GalleryError "no tracklet ..." -> 404
    found = search_tracklet(g, rec.to_tracklet(), top_k + 1, mode, 0.5)
    hits = [h for h in found if h.tracklet_id != rec.id][:top_k]
    hits = [dataclasses.replace(h, rank=n) for n, h in enumerate(hits, 1)]
    q = rec.to_tracklet().summary()
    q.update({"video": rec.video, "tracklet_id": rec.id})
    out = QueryResult(q, hits).to_dict()
    out["query"] = _public_query(out["query"], source="tracklet")
    return out


def _public_query(q: dict[str, Any], source: str) -> dict[str, Any]:
    """The query summary for the client: the temp paths of an upload are replaced by facts."""
    q = dict(q)
    thumb = q.pop("thumbnail", None)
    if source == "upload":
        q["video"] = "uploaded clip"
        if thumb and Path(thumb).is_file():
            q["thumbnail_data"] = "data:image/jpeg;base64," + base64.b64encode(Path(thumb).read_bytes()).decode()
            Path(thumb).unlink(missing_ok=True)
    q["source"] = source
    return q


def decorate(state: GalleryState, result: dict[str, Any]) -> dict[str, Any]:
    """Add what the pages need to each hit: video id and media URLs (the paths stay for scripts)."""
    ids = [h["tracklet_id"] for h in result["hits"]]
    if ids:
        rows = state.conn().execute(
            f"SELECT id, video_id FROM tracklets WHERE id IN ({','.join('?' * len(ids))})", ids).fetchall()
        video_of = {int(a): int(b) for a, b in rows}
    else:
        video_of = {}
    for h in result["hits"]:
        tid = h["tracklet_id"]
        h["video_id"] = video_of.get(tid)
        h["thumb_url"] = f"/media/thumb/{tid}" if h.get("thumbnail") else None
        h["crops_url"] = f"/media/crops/{tid}"
        h["video_url"] = None if h["video_id"] is None else f"/media/video/{h['video_id']}"
    return result
