"""The identity tables of a gallery: read them, list them, write a build's result.

``identities (id, name, confirmed, created, updated)``: one row per person; ``confirmed`` is set
once a person labelled one of its tracklets (``same`` or ``name``), and a confirmed identity is
never split or merged by a build. ``identity_members (tracklet_id, identity_id, score)``: which
identity each tracklet belongs to (a tracklet is in at most one). A gallery of schema 1, or one
where no build ran, simply has no identities.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from csip_reid.core.walltime import now_iso

if TYPE_CHECKING:
    from csip_reid.gallery.store import Gallery


def memberships(gallery: Gallery) -> dict[int, tuple[int, bool]]:
    """``{tracklet id: (identity id, confirmed)}`` of the stored identities."""
    return gallery.identities.memberships()


def identity_of(gallery: Gallery, tracklet_ids: Sequence[int]) -> dict[int, int | None]:
    """The identity id of each given tracklet (None: not in any identity, or no such tracklet)."""
    return gallery.identities.identity_of(tracklet_ids)


def list_identities(gallery: Gallery, identity: int | None = None) -> list[dict[str, Any]]:
    """Every identity (or one) as ``reid identities list --json`` prints it, most tracklets first.

    Each: ``{"identity", "name", "confirmed", "size", "tracklets": [{"tracklet_id", "video", "camera",
    "track_id", "start_s", "end_s", "start_time", "end_time", "thumbnail"}], "cameras", "first_seen",
    "last_seen"}``; tracklets in time order (wall-clock where known), ``first_seen``/``last_seen``
    the earliest start and latest end wall-clock time (None when no video's start time is known).
    """
    people: dict[int, dict[str, Any]] = {}
    for m in gallery.identities.members(identity):
        p = people.setdefault(m.identity, {"identity": m.identity, "name": m.name, "confirmed": m.confirmed,
                                           "tracklets": []})
        p["tracklets"].append({
            "tracklet_id": m.tracklet_id, "video": m.video, "camera": m.camera, "track_id": m.track_id,
            "start_s": round(m.start_s, 3), "end_s": round(m.end_s, 3),
            "start_time": m.start_time, "end_time": m.end_time, "thumbnail": m.thumbnail,
        })
    out = []
    for p in people.values():
        ts = p["tracklets"]
        ts.sort(key=lambda t: (t["start_time"] or "", t["video"], t["start_s"]))
        starts = [t["start_time"] for t in ts if t["start_time"]]
        ends = [t["end_time"] for t in ts if t["end_time"]]
        cams = sorted({t["camera"] for t in ts})
        out.append({**p, "size": len(ts), "cameras": cams, "first_seen": min(starts) if starts else None,
                    "last_seen": max(ends) if ends else None})
    out.sort(key=lambda p: (-p["size"], p["identity"]))
    return out


def write_identities(gallery: Gallery, groups: list[list[int]], confirmed: list[bool],
                     previous: dict[int, tuple[int, bool]], names: dict[int, tuple[int, str]]) -> list[int]:
    """Replace the stored identities by ``groups`` (lists of tracklet ids) in one transaction.

    Identity ids are kept where they can be: a group holding a confirmed identity keeps its id; any
    other group takes the earlier identity id that most of its members had (each id once), else a
    new one. ``names`` maps a tracklet id to ``(label id, name)`` (the newest label wins in a group).

    Returns:
        The identity id of each group.
    """
    now = now_iso()
    order = sorted(range(len(groups)), key=lambda g: (not confirmed[g], -len(groups[g])))
    taken: set[int] = set()
    chosen: dict[int, int | None] = {}
    for g in order:
        votes: dict[int, int] = {}
        for tid in groups[g]:
            old = previous.get(tid)
            if old is not None and old[0] not in taken:
                votes[old[0]] = votes.get(old[0], 0) + (1000 if old[1] else 1)
        best = max(votes, key=lambda i: (votes[i], -i)) if votes else None
        chosen[g] = best
        if best is not None:
            taken.add(best)
    ids: list[int] = []
    with gallery.identities.write() as tx:
        tx.clear_members()
        for g, members in enumerate(groups):
            labelled = [names[t] for t in members if t in names]
            name = max(labelled)[1] if labelled else None
            iid = chosen[g]
            if iid is None or not tx.identity_exists(iid):
                iid = tx.new_identity(now, confirmed[g], name)
            else:
                tx.update_identity(iid, confirmed[g], now, name)
            tx.move(members, iid)
            ids.append(iid)
        tx.drop_empty_identities()
    return ids
