"""The identity tables of a gallery: read them, list them, write a build's result.

``identities (id, name, confirmed, created, updated)``: one row per person; ``confirmed`` is set
once a person labelled one of its tracklets (``same`` or ``name``), and a confirmed identity is
never split or merged by a build. ``identity_members (tracklet_id, identity_id, score)``: which
identity each tracklet belongs to (a tracklet is in at most one). A gallery of schema 1, or one
where no build ran, simply has no identities.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from csip_reid.gallery.manifest import now_iso
from csip_reid.gallery.schema import wall_time

_MEMBER_SQL = (
    "SELECT m.identity_id, i.name, i.confirmed, t.id, v.path, t.camera, t.track_id, t.start_s, t.end_s, "
    "v.start_time, t.thumb_path FROM identity_members m JOIN identities i ON i.id = m.identity_id "
    "JOIN tracklets t ON t.id = m.tracklet_id JOIN videos v ON v.id = t.video_id"
)


def memberships(gallery: Any) -> dict[int, tuple[int, bool]]:
    """``{tracklet id: (identity id, confirmed)}`` of the stored identities."""
    if not gallery.has_identities:
        return {}
    rows = gallery.read("SELECT m.tracklet_id, m.identity_id, i.confirmed FROM identity_members m "
                        "JOIN identities i ON i.id = m.identity_id")
    return {int(t): (int(i), bool(c)) for t, i, c in rows}


def identity_of(gallery: Any, tracklet_ids: Sequence[int]) -> dict[int, int | None]:
    """The identity id of each given tracklet (None: not in any identity, or no such tracklet)."""
    wanted = [int(t) for t in tracklet_ids]
    out: dict[int, int | None] = dict.fromkeys(wanted)
    if not gallery.has_identities or not wanted:
        return out
    for s in range(0, len(wanted), 900):
        chunk = wanted[s : s + 900]
        rows = gallery.read(f"SELECT tracklet_id, identity_id FROM identity_members WHERE tracklet_id IN "
                            f"({','.join('?' * len(chunk))})", chunk)
        out.update({int(t): int(i) for t, i in rows})
    return out


def list_identities(gallery: Any, identity: int | None = None) -> list[dict[str, Any]]:
    """Every identity (or one) as ``reid identities list --json`` prints it, most tracklets first.

    Each: ``{"identity", "name", "confirmed", "size", "tracklets": [{"tracklet_id", "video", "camera",
    "track_id", "start_s", "end_s", "start_time", "end_time", "thumbnail"}], "cameras", "first_seen",
    "last_seen"}``; tracklets in time order (wall-clock where known), ``first_seen``/``last_seen``
    the earliest start and latest end wall-clock time (None when no video's start time is known).
    """
    if not gallery.has_identities:
        return []
    where, args = ("", []) if identity is None else (" WHERE m.identity_id = ?", [int(identity)])
    people: dict[int, dict[str, Any]] = {}
    root = str(gallery.root)
    for iid, name, confirmed, tid, path, camera, track, s0, s1, t0, thumb in gallery.read(_MEMBER_SQL + where, args):
        p = people.setdefault(int(iid), {"identity": int(iid), "name": name, "confirmed": bool(confirmed),
                                         "tracklets": []})
        p["tracklets"].append({
            "tracklet_id": int(tid), "video": path, "camera": camera or "", "track_id": int(track),
            "start_s": round(float(s0), 3), "end_s": round(float(s1), 3),
            "start_time": wall_time(t0, s0), "end_time": wall_time(t0, s1),
            "thumbnail": f"{root}/{thumb}" if thumb else None,
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


def write_identities(gallery: Any, groups: list[list[int]], confirmed: list[bool],
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
    with gallery.write_transaction() as cur:
        cur.execute("DELETE FROM identity_members")
        for g, members in enumerate(groups):
            labelled = [names[t] for t in members if t in names]
            name = max(labelled)[1] if labelled else None
            iid = chosen[g]
            if iid is None or cur.execute("SELECT 1 FROM identities WHERE id = ?", (iid,)).fetchone() is None:
                cur.execute("INSERT INTO identities (name, confirmed, created, updated) VALUES (?, ?, ?, ?)",
                            (name, int(confirmed[g]), now, now))
                iid = int(cur.lastrowid)
            else:
                cur.execute("UPDATE identities SET confirmed = ?, updated = ?, name = COALESCE(?, name) "
                            "WHERE id = ?", (int(confirmed[g]), now, name, iid))
            cur.executemany("INSERT INTO identity_members (tracklet_id, identity_id) VALUES (?, ?)",
                            [(int(t), iid) for t in members])
            ids.append(iid)
        cur.execute("DELETE FROM identities WHERE id NOT IN (SELECT DISTINCT identity_id FROM identity_members)")
    return ids
