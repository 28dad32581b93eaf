"""Searches the app runs: by uploaded clip or photo (the gallery's own pipeline) or by a stored tracklet.

Both go through :mod:`csip_reid.pipeline.query` (``run_query`` and ``run_query_tracklet``, the
functions ``reid query`` uses) with ``group="person"``, so the answer is what ``reid query --json
--group person`` prints: hits, and the people they belong to. Uploaded queries are heavy (a
detector and an embedder run), so one runs at a time; the models are built from the gallery's
manifest once, on the first upload, so index and query cannot disagree, and each search uses the
gallery the calling thread already has open.
"""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any

from csip_reid.core.errors import ReidError
from csip_reid.gallery.schema import Hit
from csip_reid.pipeline.query import MODES, query_pipeline, run_query, run_query_tracklet
from csip_reid.pipeline.query_post import group_people
from csip_reid.serve.state import GalleryState


class QueryError(ReidError):
    """A query the app cannot run (bad option)."""


def check_options(top_k: int, mode: str) -> None:
    """Raise :class:`QueryError` for a top-k or mode the CLI would refuse too."""
    if not 1 <= top_k <= 1000:
        raise QueryError(f"top-k must be between 1 and 1000, got {top_k}")
    if mode not in MODES:
        raise QueryError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")


class UploadSearch:
    """Searches by an uploaded clip (its longest track) or photo (its largest person).

    The gallery's pipeline (detector, tracker, pose, embedder) is built on the first upload and
    kept for the life of the app; one upload is searched at a time.

    Args:
        state: The served gallery.
    """

    def __init__(self, state: GalleryState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self._pipeline: Any = None

    def pipeline(self) -> Any:
        """The gallery's pipeline, built once (call with the lock held)."""
        if self._pipeline is None:
            self._pipeline = query_pipeline(self.state.gallery())
        return self._pipeline

    def __call__(self, path: Path, top_k: int, mode: str, start_s: float | None = None, end_s: float | None = None,
                 since: str | None = None, until: str | None = None) -> dict[str, Any]:
        """Search with the uploaded file at ``path``; the answer of ``/api/query``."""
        check_options(top_k, mode)
        with self._lock:
            result = run_query(self.state.gallery(), path, top_k=top_k, mode=mode, start_s=start_s, end_s=end_s,
                               group="person", since=since, until=until, pipeline=self.pipeline(),
                               thumbs=False)[0]
        out = _with_video_ids(result.to_dict(), result.hits)
        out["query"] = _public_query(out["query"], source="upload", thumbnail=result.thumbnail)
        return out


def query_tracklet(state: GalleryState, tracklet_id: int, top_k: int, mode: str = "appearance",
                   since: str | None = None, until: str | None = None) -> dict[str, Any]:
    """"Find this person": search with a stored tracklet's vectors, the tracklet itself left out."""
    check_options(top_k, mode)
    result = run_query_tracklet(state.gallery(), tracklet_id, top_k, group="person", since=since, until=until,
                                mode=mode)  # GalleryError "no tracklet ..." -> 404
    out = _with_video_ids(result.to_dict(), result.hits)
    out["query"] = _public_query(out["query"], source="tracklet")
    return out


def regroup(state: GalleryState, result: dict[str, Any]) -> dict[str, Any]:
    """The hits of an earlier answer (by tracklet id and score) grouped by the identities stored now.

    Everything but the ids, scores and the query comes from the gallery again, not from the client.
    """
    hits = []
    for h in result.get("hits", []):
        if not isinstance(h, dict) or not isinstance(h.get("tracklet_id"), int):
            continue
        t = state.tracklet(h["tracklet_id"])
        hits.append(Hit(rank=len(hits) + 1, score=float(h.get("score") or 0.0), tracklet_id=t["tracklet_id"],
                        video=t["video"], video_name=t["video_name"], camera=t["camera"], track_id=t["track_id"],
                        start_frame=t["start_frame"], end_frame=t["end_frame"], start_s=t["start_s"],
                        end_s=t["end_s"], thumbnail=t["thumbnail"], start_time=t["start_time"],
                        end_time=t["end_time"], video_id=t["video_id"]))
    identities, people = group_people(state.gallery(), hits, len(hits))
    out_hits = []
    for h in hits:
        d = {**h.to_dict(), "video_id": h.video_id}
        d["identity"] = identities.get(h.tracklet_id)
        out_hits.append(d)
    query = result.get("query") if isinstance(result.get("query"), dict) else {}
    return {"query": query, "hits": out_hits, "people": people}


def _with_video_ids(out: dict[str, Any], hits: list[Hit]) -> dict[str, Any]:
    """An answer's dict (``reid query --json``) with each hit's ``video_id`` added for the pages."""
    for d, h in zip(out["hits"], hits, strict=True):
        d["video_id"] = h.video_id
    return out


def _public_query(q: dict[str, Any], source: str, thumbnail: bytes | None = None) -> dict[str, Any]:
    """The query summary for the client: no server path; an upload's picture inline (JPEG data URL)."""
    q = dict(q)
    q.pop("thumbnail", None)
    if source == "upload":
        q["video"] = f"uploaded {'photo' if q.get('kind') == 'image' else 'clip'}"
        if thumbnail:
            q["thumbnail_data"] = "data:image/jpeg;base64," + base64.b64encode(thumbnail).decode()
    q["source"] = source
    return q


def decorate(state: GalleryState, result: dict[str, Any]) -> dict[str, Any]:
    """Add what the pages need to each hit (its ``video_id`` from :class:`Hit`): media URLs (the paths stay)."""
    for h in result["hits"]:
        tid = h["tracklet_id"]
        h["video_id"] = h.get("video_id")
        h["thumb_url"] = f"/media/thumb/{tid}" if h.get("thumbnail") else None
        h["crops_url"] = f"/media/crops/{tid}"
        h["video_url"] = None if h["video_id"] is None else f"/media/video/{h['video_id']}"
    return result
