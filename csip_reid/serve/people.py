"""People in the app: hits grouped by identity, a person's appearances, and feedback labels.

Identities and labels are those of :mod:`csip_reid.identity` (the same tables ``reid identities``
reads and writes). Feedback opens the gallery as a writer only for the one transaction of a label,
so a ``reid index`` run is never kept waiting for long.
"""

from __future__ import annotations

from typing import Any

from csip_reid.core.errors import ReidError
from csip_reid.gallery.store import Gallery
from csip_reid.identity import identity_of, label, labels, list_identities  # noqa: F401 (identity_of: app)
from csip_reid.serve.state import GalleryState


class FeedbackError(ReidError):
    """A feedback request that names no action, or more than one."""


def identities(state: GalleryState) -> list[dict[str, Any]]:
    """Every identity as ``reid identities list --json`` prints it (thumbnail paths replaced by URLs)."""
    out = list_identities(state.gallery())
    for p in out:
        for t in p["tracklets"]:
            t.pop("thumbnail", None)
    return out


def person(state: GalleryState, identity: int) -> dict[str, Any]:
    """One identity with its appearances, video ids added, and lanes (one per camera) for the timeline.

    Raises:
        ReidError: No such identity (a 404).
    """
    found = list_identities(state.gallery(), identity)
    if not found:
        from csip_reid.core.errors import GalleryError

        raise GalleryError(f"no identity {identity} in gallery {state.root}")
    p = found[0]
    video_of = {v["path"]: v for v in state.videos()}
    wall = all(t["start_time"] for t in p["tracklets"])
    for t in p["tracklets"]:
        t.pop("thumbnail", None)
        v = video_of.get(t["video"], {})
        t["video_id"] = v.get("id")
        t["video_name"] = v.get("name")
    p["timeline"] = timeline(p["tracklets"], wall)
    return p


def timeline(tracklets: list[dict[str, Any]], wall: bool) -> dict[str, Any]:
    """Lanes per camera with each appearance's position in [0, 100] % of the covered span.

    With every start time known the axis is wall-clock time (seconds since the first appearance);
    otherwise it is seconds into each video.
    """
    from datetime import datetime

    def t0(t: dict[str, Any]) -> float:
        return datetime.fromisoformat(t["start_time"]).timestamp() if wall else t["start_s"]

    def t1(t: dict[str, Any]) -> float:
        return datetime.fromisoformat(t["end_time"]).timestamp() if wall else t["end_s"]

    if not tracklets:
        return {"axis": "video", "lanes": [], "span_s": 0.0}
    lo = min(t0(t) for t in tracklets)
    hi = max(t1(t) for t in tracklets)
    span = max(hi - lo, 1.0)
    lanes: dict[str, list[dict[str, Any]]] = {}
    for t in tracklets:
        lanes.setdefault(t["camera"], []).append({
            "tracklet_id": t["tracklet_id"], "left": round(100 * (t0(t) - lo) / span, 3),
            "width": round(max(0.6, 100 * (t1(t) - t0(t)) / span), 3), "start_s": t["start_s"],
            "end_s": t["end_s"], "start_time": t["start_time"], "video_name": t.get("video_name")})
    return {"axis": "wall-clock" if wall else "video", "span_s": round(span, 3),
            "start": min((t["start_time"] for t in tracklets), default=None) if wall else None,
            "lanes": [{"camera": c, "items": items} for c, items in sorted(lanes.items())]}


def feedback(state: GalleryState, tracklet_id: int, same_as: int | None = None, not_same: int | None = None,
             name: str | None = None) -> dict[str, Any]:
    """Store one label (as ``reid identities label`` does) and return it with the new identities.

    Raises:
        FeedbackError: Not exactly one of ``same_as``, ``not_same``, ``name``.
        LabelError: Unknown tracklets or a contradiction (from :func:`csip_reid.identity.label`).
    """
    if sum(x is not None for x in (same_as, not_same, name)) != 1:
        raise FeedbackError("send exactly one of same_as, not_same or name")
    with Gallery.open(state.root) as g:  # a writer for this one label only
        out = label(g, tracklet_id, same_as=same_as, not_same=not_same, name=name)
    return out


def all_labels(state: GalleryState) -> list[dict[str, Any]]:
    """Every stored label, oldest first."""
    return labels(state.gallery())
