"""What clustering reads from a gallery: per-tracklet facts, vectors, and the camera rules.

Nothing here reads the big blobs except the vectors themselves; the facts (video, camera, in-file
seconds, wall-clock start of the video) come from one read of the gallery's identity tables module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from csip_reid.core.errors import ConfigError

if TYPE_CHECKING:
    from csip_reid.gallery.store import Gallery


@dataclass
class TrackletTable:
    """Column arrays of every tracklet of a gallery, in increasing id order.

    Attributes:
        ids: (N,) int64 tracklet ids.
        video: (N,) int64 video ids.
        camera: (N,) int64 camera codes (index into ``cameras``).
        cameras: Camera names.
        start_s: (N,) float64 in-file start seconds.
        end_s: (N,) float64 in-file end seconds.
        wall_start: (N,) float64 wall-clock start (POSIX seconds), NaN when the video's start is unknown.
        wall_end: (N,) float64 wall-clock end, likewise.
    """

    ids: np.ndarray
    video: np.ndarray
    camera: np.ndarray
    cameras: list[str]
    start_s: np.ndarray
    end_s: np.ndarray
    wall_start: np.ndarray
    wall_end: np.ndarray
    row_of: dict[int, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_rows(cls, rows: list[tuple]) -> TrackletTable:
        """From ``(id, video_id, camera, start_s, end_s, video_start_iso)`` rows sorted by id."""
        names: dict[str, int] = {}
        n = len(rows)
        ids = np.empty(n, np.int64)
        video = np.empty(n, np.int64)
        camera = np.empty(n, np.int64)
        s0 = np.empty(n)
        s1 = np.empty(n)
        w0 = np.full(n, np.nan)
        starts: dict[str, float] = {}
        for i, (tid, vid, cam, a, b, t0) in enumerate(rows):
            ids[i], video[i], s0[i], s1[i] = tid, vid, a, b
            camera[i] = names.setdefault(cam or "", len(names))
            if t0:
                if t0 not in starts:
                    starts[t0] = _posix(t0)
                w0[i] = starts[t0] + a
        w1 = w0 + (s1 - s0)
        return cls(ids, video, camera, list(names), s0, s1, w0, w1, {int(t): i for i, t in enumerate(ids)})

    @classmethod
    def from_gallery(cls, gallery: Gallery) -> TrackletTable:
        """Read the facts of every tracklet of an open gallery."""
        f = gallery.identities.tracklet_facts()
        return cls.from_rows(list(zip(f.ids.tolist(), f.video_ids.tolist(), f.cameras, f.start_s.tolist(),
                                      f.end_s.tolist(), f.video_start, strict=True)))


def _posix(iso: str) -> float:
    t = datetime.fromisoformat(iso)
    return t.timestamp() if t.tzinfo else t.replace(tzinfo=None).timestamp()


@dataclass
class CameraRules:
    """Which cameras see the same place, and how fast a person can walk from one camera to another.

    Attributes:
        overlap: Groups of camera names whose views overlap (a person may be in two at once).
        min_transition_s: Least time between leaving one camera and appearing in another one
            (0: only being in two non-overlapping cameras at the same moment is ruled out).
        transitions: Per camera pair (``"camA|camB"``, either order) minimum transition seconds.
    """

    overlap: list[list[str]] = field(default_factory=list)
    min_transition_s: float = 0.0
    transitions: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None, min_transition_s: float | None = None) -> CameraRules:
        """Rules from a JSON or YAML cameras file (keys as the attributes), or the defaults.

        Raises:
            ConfigError: The file is missing, unreadable or has unknown keys.
        """
        data: dict[str, Any] = {}
        if path is not None:
            p = Path(path)
            if not p.is_file():
                raise ConfigError(f"cameras file {p} does not exist")
            try:
                import yaml

                data = yaml.safe_load(p.read_text()) or {}
            except Exception as e:  # noqa: BLE001 - yaml or json syntax errors alike
                raise ConfigError(f"cameras file {p} is not valid YAML/JSON: {e}") from None
            if not isinstance(data, dict) or set(data) - {"overlap", "min_transition_s", "transitions"}:
                raise ConfigError(f"cameras file {p}: expected keys overlap, min_transition_s, transitions; "
                                  f"got {sorted(data) if isinstance(data, dict) else type(data).__name__}")
        rules = cls(overlap=[[str(c) for c in g] for g in data.get("overlap", [])],
                    min_transition_s=float(data.get("min_transition_s", 0.0)),
                    transitions={str(k): float(v) for k, v in (data.get("transitions") or {}).items()})
        if min_transition_s is not None:
            rules.min_transition_s = float(min_transition_s)
        return rules

    def gap_matrix(self, cameras: list[str]) -> np.ndarray:
        """(C, C) least gap in seconds between two tracklets of these cameras; -inf = no constraint.

        Same camera: 0 (two tracklets at the same moment in one view are two people). Overlapping
        views: no constraint. Other pairs: the pair's transition time or ``min_transition_s``.
        """
        c = len(cameras)
        gap = np.full((c, c), float(self.min_transition_s))
        np.fill_diagonal(gap, 0.0)
        pos = {name: i for i, name in enumerate(cameras)}
        for key, secs in self.transitions.items():
            a, _, b = key.partition("|")
            if a in pos and b in pos:
                gap[pos[a], pos[b]] = gap[pos[b], pos[a]] = secs
        for group in self.overlap:
            idx = [pos[g] for g in group if g in pos]
            for i in idx:
                for j in idx:
                    if i != j:
                        gap[i, j] = -np.inf
        return gap

    def to_dict(self) -> dict[str, Any]:
        return {"overlap": self.overlap, "min_transition_s": self.min_transition_s, "transitions": self.transitions}


def load_vectors(gallery: Gallery, table: TrackletTable, skeleton_weight: float) -> tuple[np.ndarray, np.ndarray | None]:
    """``(appearance (N, D), skeleton (N, D') or None)`` in the table's order, L2-normalised.

    The skeleton matrix is None when the gallery has no skeleton vectors or the weight is 0; rows
    of tracklets without one are zero (their pairs fall back to appearance alone).
    """
    ids, app = gallery.vectors("appearance")
    if not np.array_equal(ids, table.ids):
        order = np.array([table.row_of[int(i)] for i in ids], np.int64)
        full = np.zeros((len(table), app.shape[1]), np.float32)
        full[order] = app
        app = full
    skel = None
    if skeleton_weight > 0:
        sids, svecs = gallery.vectors("skeleton")
        if len(sids):
            skel = np.zeros((len(table), svecs.shape[1]), np.float32)
            rows = [table.row_of.get(int(i), -1) for i in sids]
            keep = np.array([r >= 0 for r in rows])
            svecs = svecs[keep] / np.maximum(np.linalg.norm(svecs[keep], axis=1, keepdims=True), 1e-12)
            skel[np.array([r for r in rows if r >= 0], np.int64)] = svecs
    return app, skel


def dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)
