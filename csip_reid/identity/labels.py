"""Labels: a person's word on tracklets, kept as constraints by every later build.

``labels (id, a, b, kind, name, created)``: ``same`` (must-link a and b), ``not`` (cannot-link a
and b) or ``name`` (call the identity of a ``name``). A label is checked against the others first
(a ``same`` across a ``not``, or a ``not`` inside a chain of ``same`` labels, is refused; so is a
``same`` between two tracklets seen at the same time in one video), then written together with its
effect on the stored identities in one SQLite transaction: a crash leaves all of it or none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from csip_reid.core.errors import ReidError
from csip_reid.core.walltime import now_iso

if TYPE_CHECKING:
    from csip_reid.gallery.identities import IdentityWrite
    from csip_reid.gallery.store import Gallery


class LabelError(ReidError):
    """A label names an unknown tracklet or contradicts the labels already given."""


def labels(gallery: Gallery) -> list[dict[str, Any]]:
    """Every label, oldest first: ``{"id", "a", "b", "kind": "same"|"not"|"name", "name"?, "created"}``."""
    out = []
    for lb in gallery.identities.labels():
        d: dict[str, Any] = {"id": lb.id, "a": lb.a, "b": lb.b, "kind": lb.kind, "created": lb.created}
        if lb.name is not None:
            d["name"] = lb.name
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


def label(gallery: Gallery, tracklet_id: int, *, same_as: int | None = None, not_same: int | None = None,
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
    found = gallery.identities.existing(wanted)
    missing = [t for t in wanted if t not in found]
    if missing:
        raise LabelError(f"no tracklet {missing[0]} in gallery {gallery.root} (see `reid identities list`)")
    if other is not None and int(other) == a:
        raise LabelError(f"tracklet {a} cannot be labelled against itself")
    if name is not None and not name.strip():
        raise LabelError("--name needs a non-empty text")
    with gallery.identities.write() as tx:
        rows = tx.constraint_labels()
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
            _check_timing(tx, members, a, b)
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
        lid = tx.add_label(a, lb, kind, name.strip() if name else None, created)
        ident = _apply(tx, kind, a, lb, name.strip() if name else None, comp, created)
    out: dict[str, Any] = {"label": {"id": lid, "a": a, "b": lb, "kind": kind, "created": created}, **ident}
    if name:
        out["label"]["name"] = name.strip()
    return out


def _check_timing(tx: IdentityWrite, members: list[int], a: int, b: int) -> None:
    """Refuse a ``same`` label joining tracklets that overlap in time in one video."""
    rows = tx.tracklet_spans(members)
    for i, (t1, v1, s1, e1) in enumerate(rows):
        for t2, v2, s2, e2 in rows[i + 1:]:
            if v1 == v2 and s1 <= e2 and s2 <= e1:
                raise LabelError(f"tracklets {a} and {b} cannot be the same person: tracklets {t1} and {t2} are "
                                 "in the same video at the same time")


def _apply(tx: IdentityWrite, kind: str, a: int, b: int | None, name: str | None, comp: dict[int, int],
           created: str) -> dict[str, Any]:
    """Bring the stored identities in line with a new label at once (a build keeps it later)."""
    ia = tx.identity_of(a)
    if kind in ("same", "name"):
        if ia is None:
            ia = tx.new_identity(created, True)
            tx.move([a], ia)
        members = [t for t, r in comp.items() if r == comp.get(a, a)] or [a]
        tx.move(members, ia)
        tx.update_identity(ia, True, created, name)
    elif b is not None and ia is not None and tx.identity_of(b) == ia:
        moved = [t for t, r in comp.items() if r == comp.get(b, b)] or [b]
        tx.move(moved, tx.new_identity(created, False))
    tx.drop_empty_identities()
    return {"identity": tx.identity_of(a), "other_identity": None if b is None else tx.identity_of(b)}
