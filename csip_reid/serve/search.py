"""Searches the app runs: by uploaded clip or photo (the gallery's own pipeline) or by a stored tracklet.

Both go through :mod:`csip_reid.pipeline.query` with ``group="person"``, so the answer is what
``reid query --json --group person`` prints: hits, and the people they belong to. Uploaded queries
are heavy (a detector and an embedder run), so one runs at a time; the models are rebuilt from the
gallery's manifest, so index and query cannot disagree.
"""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any

from csip_reid.core.errors import ReidError
from csip_reid.gallery.schema import Hit
from csip_reid.pipeline.query import MODES, answer, run_query
from csip_reid.pipeline.query_post import group_people
from csip_reid.serve.state import GalleryState

_query_lock = threading.Lock()


class QueryError(ReidError):
    """A query the app cannot run (bad option)."""


def check_options(top_k: int, mode: str) -> None:
    """Raise :class:`QueryError` for a top-k or mode the CLI would refuse too."""
    if not 1 <= top_k <= 1000:
        raise QueryError(f"top-k must be between 1 and 1000, got {top_k}")
    if mode not in MODES:
        raise QueryError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")


def query_upload(state: GalleryState, path: Path, top_k: int, mode: str, start_s: float | None = None,
                 end_s: float | None = None, since: str | None = None, until: str | None = None) -> dict[str, Any]:
    """Search with an uploaded clip (its longest track) or photo (its largest person)."""
    check_options(top_k, mode)
    with _query_lock:
        results = run_query(state.root, path, top_k=top_k, mode=mode, progress=False, start_s=start_s,
                            end_s=end_s, group="person", since=since, until=until)
    out = _with_video_ids(results[0].to_dict(), results[0].hits)
    out["query"] = _public_query(out["query"], source="upload")
    return out


def query_tracklet(state: GalleryState, tracklet_id: int, top_k: int, mode: str = "appearance",
                   since: str | None = None, until: str | None = None) -> dict[str, Any]:
    """"Find this person": search with a stored tracklet's vectors, the tracklet itself left out."""
    check_options(top_k, mode)
    g = state.gallery()
    rec = g.get_tracklet(tracklet_id)  # GalleryError "no tracklet ..." -> 404
    t = rec.to_tracklet()
    q = {**t.summary(), "kind": "tracklet", "tracklet_id": rec.id, "start_time": rec.start_time,
         "end_time": rec.end_time}
    result = answer(g, t, q, top_k, mode=mode, group="person", since=since, until=until, exclude=rec.id)
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


def _public_query(q: dict[str, Any], source: str) -> dict[str, Any]:
    """The query summary for the client: the temp paths of an upload are replaced by facts."""
    q = dict(q)
    thumb = q.pop("thumbnail", None)
    if source == "upload":
        q["video"] = f"uploaded {'photo' if q.get('kind') == 'image' else 'clip'}"
        if thumb and Path(thumb).is_file():
            q["thumbnail_data"] = "data:image/jpeg;base64," + base64.b64encode(Path(thumb).read_bytes()).decode()
            Path(thumb).unlink(missing_ok=True)
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
