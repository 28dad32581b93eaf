"""The identity tables of a gallery (schema 2), read and written only here.

``identities (id, name, confirmed, created, updated)``, ``identity_members (tracklet_id,
identity_id, score)`` and ``labels (id, a, b, kind, name, created)`` (see ``docs/gallery-format.md``).
:mod:`csip_reid.identity` decides *what* to store (clustering, label rules); this module is how it
reads and writes the tables, so no SQL lives outside the gallery. A gallery of schema 1 has none of
these tables: it reads as having no identities or labels, and its first write migrates it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from csip_reid.core.walltime import offset_time
from csip_reid.gallery.database import Database, rows_in
from csip_reid.gallery.writer import Writer


@dataclass(frozen=True)
class Member:
    """One tracklet of a stored identity, with what ``reid identities list`` shows of it."""

    identity: int
    name: str | None
    confirmed: bool
    tracklet_id: int
    video: str
    camera: str
    track_id: int
    start_s: float
    end_s: float
    start_time: str | None
    end_time: str | None
    thumbnail: str | None


@dataclass(frozen=True)
class Label:
    """One stored label: ``same`` (a and b are one person), ``not`` (they are not) or ``name`` (of a)."""

    id: int
    a: int
    b: int | None
    kind: str
    name: str | None
    created: str


@dataclass(frozen=True)
class TrackletFacts:
    """Per-tracklet facts that clustering reads, as columns in increasing id order."""

    ids: np.ndarray
    video_ids: np.ndarray
    cameras: list[str]
    start_s: np.ndarray
    end_s: np.ndarray
    video_start: list[str | None]


class IdentityWrite:
    """The identity tables inside one write transaction (see :meth:`IdentityTables.write`)."""

    def __init__(self, cur: sqlite3.Cursor) -> None:
        self._cur = cur

    def _run(self, sql: str, args: Sequence[object] = ()) -> list[tuple]:
        return self._cur.execute(sql, args).fetchall()

    def constraint_labels(self) -> list[tuple[int, int, str]]:
        """``(a, b, kind)`` of every ``same`` and ``not`` label."""
        return [(int(a), int(b), k) for a, b, k in self._run("SELECT a, b, kind FROM labels WHERE kind IN "
                                                                 "('same', 'not')")]

    def tracklet_spans(self, ids: Sequence[int]) -> list[tuple[int, int, float, float]]:
        """``(id, video id, start_s, end_s)`` of the given tracklets."""
        sql = "SELECT id, video_id, start_s, end_s FROM tracklets WHERE id IN ({ids})"
        return list(rows_in(self._cur.execute, sql, ids))

    def identity_of(self, tracklet_id: int) -> int | None:
        """The identity a tracklet is in (None: none)."""
        rows = self._run("SELECT identity_id FROM identity_members WHERE tracklet_id = ?", (int(tracklet_id),))
        return int(rows[0][0]) if rows else None

    def identity_exists(self, identity: int) -> bool:
        """Whether an identity with this id is stored."""
        return bool(self._run("SELECT 1 FROM identities WHERE id = ?", (int(identity),)))

    def new_identity(self, created: str, confirmed: bool, name: str | None = None) -> int:
        """Insert an identity; returns its id."""
        self._cur.execute("INSERT INTO identities (name, confirmed, created, updated) VALUES (?, ?, ?, ?)",
                          (name, int(confirmed), created, created))
        return int(self._cur.lastrowid)

    def update_identity(self, identity: int, confirmed: bool, updated: str, name: str | None) -> None:
        """Set an identity's confirmed flag and updated time, and its name when ``name`` is given."""
        self._run("UPDATE identities SET confirmed = ?, updated = ?, name = COALESCE(?, name) WHERE id = ?",
                  (int(confirmed), updated, name, int(identity)))

    def move(self, tracklet_ids: Sequence[int], identity: int) -> None:
        """Put tracklets in an identity (out of any other)."""
        self._cur.executemany("INSERT OR REPLACE INTO identity_members (tracklet_id, identity_id) VALUES (?, ?)",
                              [(int(t), int(identity)) for t in tracklet_ids])

    def clear_members(self) -> None:
        """Take every tracklet out of every identity (before a build writes its groups)."""
        self._run("DELETE FROM identity_members")

    def drop_empty_identities(self) -> None:
        """Delete the identities left without a tracklet."""
        self._run("DELETE FROM identities WHERE id NOT IN (SELECT DISTINCT identity_id FROM identity_members)")

    def add_label(self, a: int, b: int | None, kind: str, name: str | None, created: str) -> int:
        """Insert a label; returns its id."""
        self._cur.execute("INSERT INTO labels (a, b, kind, name, created) VALUES (?, ?, ?, ?, ?)",
                          (int(a), b, kind, name, created))
        return int(self._cur.lastrowid)


class IdentityTables:
    """Typed reads of the identity tables of one open gallery, and their write transaction.

    Args:
        db: The gallery's database.
        writer: The gallery's writer (its lock is taken by :meth:`write`).
    """

    def __init__(self, db: Database, writer: Writer) -> None:
        self._db = db
        self._writer = writer

    @property
    def available(self) -> bool:
        """Whether the tables exist (a gallery of schema 1 not yet written has none)."""
        return self._db.has_identities

    def memberships(self) -> dict[int, tuple[int, bool]]:
        """``{tracklet id: (identity id, confirmed)}`` of the stored identities."""
        if not self.available:
            return {}
        rows = self._db.execute("SELECT m.tracklet_id, m.identity_id, i.confirmed FROM identity_members m "
                                "JOIN identities i ON i.id = m.identity_id")
        return {int(t): (int(i), bool(c)) for t, i, c in rows}

    def identity_of(self, tracklet_ids: Sequence[int]) -> dict[int, int | None]:
        """The identity id of each given tracklet (None: in no identity, or no such tracklet)."""
        out: dict[int, int | None] = dict.fromkeys(int(t) for t in tracklet_ids)
        if self.available:
            sql = "SELECT tracklet_id, identity_id FROM identity_members WHERE tracklet_id IN ({ids})"
            out.update({int(t): int(i) for t, i in self._db.rows_in(sql, list(out))})
        return out

    def members(self, identity: int | None = None) -> list[Member]:
        """The tracklets of every identity (or of one), with their video's path and times."""
        if not self.available:
            return []
        where, args = ("", ()) if identity is None else (" WHERE m.identity_id = ?", (int(identity),))
        rows = self._db.execute(
            "SELECT m.identity_id, i.name, i.confirmed, t.id, v.path, t.camera, t.track_id, t.start_s, t.end_s, "
            "v.start_time, t.thumb_path FROM identity_members m JOIN identities i ON i.id = m.identity_id "
            "JOIN tracklets t ON t.id = m.tracklet_id JOIN videos v ON v.id = t.video_id" + where, args)
        root = str(self._db.root)
        return [Member(int(iid), name, bool(conf), int(tid), path, camera or "", int(track), float(s0), float(s1),
                       offset_time(t0, s0), offset_time(t0, s1), f"{root}/{thumb}" if thumb else None)
                for iid, name, conf, tid, path, camera, track, s0, s1, t0, thumb in rows]

    def labels(self) -> list[Label]:
        """Every label, oldest first."""
        if not self.available:
            return []
        rows = self._db.execute("SELECT id, a, b, kind, name, created FROM labels ORDER BY id")
        return [Label(int(i), int(a), None if b is None else int(b), k, n, c) for i, a, b, k, n, c in rows]

    def existing(self, tracklet_ids: Sequence[int]) -> set[int]:
        """Those of the given tracklet ids that the gallery holds."""
        return {int(r[0]) for r in self._db.rows_in("SELECT id FROM tracklets WHERE id IN ({ids})", tracklet_ids)}

    def tracklet_facts(self) -> TrackletFacts:
        """Video, camera, in-file seconds and video start time of every tracklet, by increasing id."""
        start = "v.start_time" if self.available else "NULL"
        rows = self._db.execute(f"SELECT t.id, t.video_id, t.camera, t.start_s, t.end_s, {start} FROM tracklets t "
                                "JOIN videos v ON v.id = t.video_id ORDER BY t.id").fetchall()
        return TrackletFacts(np.array([r[0] for r in rows], np.int64), np.array([r[1] for r in rows], np.int64),
                             [r[2] or "" for r in rows], np.array([r[3] for r in rows], np.float64),
                             np.array([r[4] for r in rows], np.float64), [r[5] for r in rows])

    @contextmanager
    def write(self) -> Iterator[IdentityWrite]:
        """One write transaction on the tables under the writer lock (an old gallery is migrated first).

        Rolls back on any error; the manifest's ``updated`` time follows a committed write.
        """
        self._writer.begin()
        with self._db.transaction() as cur:
            yield IdentityWrite(cur)
        self._writer.touch()
