"""Labels: a person's word on tracklets, kept as constraints by every later build.

``labels (id, a, b, kind, name, created)``: ``same`` (must-link a and b), ``not`` (cannot-link a
and b) or ``name`` (call the identity of a ``name``). A label is checked against the others first
(a ``same`` across a ``not``, or a ``not`` inside a chain of ``same`` labels, is refused; so is a
``same`` between two tracklets seen at the same time in one video), then written together with its
effect on the stored identities in one SQLite transaction: a crash leaves all of it or none.
"""

from __future__ import annotations

from typing import Any

from csip_reid.core.errors import ReidError
from csip_reid.gallery.manifest import now_iso


class LabelError(ReidError):
    """A label names an unknown tracklet or contradicts the labels already given."""


def labels(gallery: Any) -> list[dict[str, Any]]:
    """Every label, oldest first: ``{"id", "a", "b", "kind": "same"|"not"|"name", "name"?, "created"}``."""
    if not gallery.has_identities:
        return []
    out = []
    for lid, a, b, kind, name, created in gallery.read(
            "SELECT id, a, b, kind, name, created FROM labels ORDER BY id"):
        d: dict[str, Any] = {"id": int(lid), "a": int(a), "b": None if b is None else int(b), "kind": kind,
                             "created": created}
        if name is not None:
            d["name"] = name
        out.append(d)
    return out


def must_link_groups(pairs: list[tuple[int, int]]) -> dict[int, int]:
    """``{tracklet: component root}`` of the ``same`` pairs (union-find)."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in list(parent)}


def label(gallery: Any, tracklet_id: int, *, same_as: int | None = None, not_same: int | None = None,
          name: str | None = None) -> dict[str, Any]:
    """Record one label (exactly one of ``same_as``, ``not_same``, ``name``) and apply it.

    Returns:
        ``{"label": {...}, "identity": identity id of the tracklet now, "other_identity": ...}``.

    Raises:
        LabelError: Unknown tracklet, a label of a tracklet with itself, an empty name, or one that
            contradicts earlier labels or the video's timing. Nothing is written then.
    """
    given = [x is not None for x in (same_as, not_same, name)]
    if sum(given) != 1:
        raise LabelError("give exactly one of --same-as OTHER, --not OTHER or --name TEXT")
    a = int(tracklet_id)
    other = same_as if same_as is not None else not_same
    wanted = [a] if other is None else [a, int(other)]
    found = {int(r[0]) for r in gallery.read(f"SELECT id FROM tracklets WHERE id IN ({','.join('?' * len(wanted))})",
                                             wanted)}
    missing = [t for t in wanted if t not in found]
    if missing:
        raise LabelError(f"no tracklet {missing[0]} in gallery {gallery.root} (see `reid identities list`)")
    if other is not None and int(other) == a:
        raise LabelError(f"tracklet {a} cannot be labelled against itself")
    if name is not None and not name.strip():
        raise LabelError("--name needs a non-empty text")
    with gallery.write_transaction() as cur:
        rows = cur.execute("SELECT a, b, kind FROM labels WHERE kind IN ('same', 'not')").fetchall()
        same = [(x, y) for x, y, k in rows if k == "same"]
        nots = [(x, y) for x, y, k in rows if k == "not"]
        if same_as is not None:
            b = int(same_as)
            comp = must_link_groups([*same, (a, b)])
            for x, y in nots:
                if comp.get(x, x) == comp.get(y, y) and comp.get(x) is not None:
                    raise LabelError(f"tracklets {a} and {b} cannot be the same person: tracklets {x} and {y} "
                                     "were labelled different (--not) and the same-as labels join them")
            members = [t for t, r in comp.items() if r == comp[a]]
            _check_timing(cur, members, a, b)
            kind, lb = "same", b
        elif not_same is not None:
            b = int(not_same)
            comp = must_link_groups(same)
            if comp.get(a, a) == comp.get(b, b) and a in comp:
                raise LabelError(f"tracklets {a} and {b} were labelled the same person (--same-as); "
                                 "they cannot also be different")
            kind, lb = "not", b
        else:
            kind, lb, comp = "name", None, must_link_groups(same)
        created = now_iso()
        cur.execute("INSERT INTO labels (a, b, kind, name, created) VALUES (?, ?, ?, ?, ?)",
                    (a, lb, kind, name.strip() if name else None, created))
        lid = int(cur.lastrowid)
        ident = _apply(cur, kind, a, lb, name.strip() if name else None, comp, created)
    out: dict[str, Any] = {"label": {"id": lid, "a": a, "b": lb, "kind": kind, "created": created}, **ident}
    if name:
        out["label"]["name"] = name.strip()
    return out


def _check_timing(cur: Any, members: list[int], a: int, b: int) -> None:
    """Refuse a ``same`` label joining tracklets that overlap in time in one video."""
    q = ",".join("?" * len(members))
    rows = cur.execute(f"SELECT id, video_id, start_s, end_s FROM tracklets WHERE id IN ({q})", members).fetchall()
    for i, (t1, v1, s1, e1) in enumerate(rows):
        for t2, v2, s2, e2 in rows[i + 1:]:
            if v1 == v2 and s1 <= e2 and s2 <= e1:
                raise LabelError(f"tracklets {a} and {b} cannot be the same person: tracklets {t1} and {t2} are "
                                 "in the same video at the same time")


def _identity(cur: Any, tid: int) -> int | None:
    row = cur.execute("SELECT identity_id FROM identity_members WHERE tracklet_id = ?", (tid,)).fetchone()
    return None if row is None else int(row[0])


def _new_identity(cur: Any, created: str, confirmed: bool, name: str | None = None) -> int:
    cur.execute("INSERT INTO identities (name, confirmed, created, updated) VALUES (?, ?, ?, ?)",
                (name, int(confirmed), created, created))
    return int(cur.lastrowid)


def _move(cur: Any, tids: list[int], iid: int) -> None:
    cur.executemany("INSERT OR REPLACE INTO identity_members (tracklet_id, identity_id) VALUES (?, ?)",
                    [(t, iid) for t in tids])


def _apply(cur: Any, kind: str, a: int, b: int | None, name: str | None, comp: dict[int, int],
           created: str) -> dict[str, Any]:
    """Bring the stored identities in line with a new label at once (a build keeps it later)."""
    ia = _identity(cur, a)
    if kind in ("same", "name"):
        if ia is None:
            ia = _new_identity(cur, created, True)
            _move(cur, [a], ia)
        members = [t for t, r in comp.items() if r == comp.get(a, a)] or [a]
        _move(cur, members, ia)
        cur.execute("UPDATE identities SET confirmed = 1, updated = ?, name = COALESCE(?, name) WHERE id = ?",
                    (created, name, ia))
    elif b is not None and ia is not None and _identity(cur, b) == ia:
        moved = [t for t, r in comp.items() if r == comp.get(b, b)] or [b]
        _move(cur, moved, _new_identity(cur, created, False))
    cur.execute("DELETE FROM identities WHERE id NOT IN (SELECT DISTINCT identity_id FROM identity_members)")
    return {"identity": _identity(cur, a), "other_identity": None if b is None else _identity(cur, b)}
