"""The gallery the app serves: one read connection per worker thread, and read helpers.

SQLite connections cannot cross threads, and FastAPI runs plain ``def`` endpoints in a thread
pool, so each worker thread opens the gallery once and keeps it. Readers never take the writer
lock: a ``reid index`` run may write the same gallery meanwhile (SQLite WAL; one transaction per
video), and every multi-row read below runs in one read snapshot.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from csip_reid.core.errors import GalleryError
from csip_reid.gallery.schema import wall_time
from csip_reid.gallery.store import Gallery

_VIDEO_SQL = (
    "SELECT v.id, v.path, v.name, v.camera, v.fps, v.num_frames, v.width, v.height, v.status, v.error, "
    "v.indexed_at, COUNT(t.id), MIN(t.start_s), MAX(t.end_s) "
    "FROM videos v LEFT JOIN tracklets t ON t.video_id = v.id GROUP BY v.id ORDER BY v.id"
)


class GalleryState:
    """Opens ``root`` lazily, once per thread.

    Args:
        root: Gallery directory (must exist).

    Raises:
        GalleryError: ``root`` is not a readable gallery.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().absolute()
        self._local = threading.local()
        self._all: list[Gallery] = []
        self._lock = threading.Lock()
        self.epoch = 0
        self.gallery()  # open once now: a bad --gallery fails at start, not on the first request

    def gallery(self) -> Gallery:
        """This thread's open gallery."""
        g = getattr(self._local, "gallery", None)
        if g is not None and getattr(self._local, "epoch", 0) != self.epoch:
            g.close()  # opened before a migration (feedback on an old gallery): reopen
            g = None
        if g is None or g.db is None:
            g = Gallery.open(self.root)
            self._local.gallery = g
            self._local.epoch = self.epoch
            with self._lock:
                self._all.append(g)
        return g

    def reset(self) -> None:
        """Make every thread reopen the gallery on its next read (after the schema changed)."""
        self.epoch += 1

    def close(self) -> None:
        """Close every connection this state opened."""
        with self._lock:
            for g in self._all:
                try:
                    g.close()
                except Exception:  # noqa: BLE001 - closing at shutdown must not raise
                    pass
            self._all.clear()

    @contextmanager
    def snapshot(self) -> Iterator[Gallery]:
        """This thread's gallery with one read snapshot for the block (no torn reads)."""
        g = self.gallery()
        conn = self.conn(g)
        conn.execute("BEGIN")
        try:
            yield g
        finally:
            conn.execute("COMMIT")

    def conn(self, g: Gallery | None = None) -> sqlite3.Connection:
        """This thread's raw SQLite connection (reads only)."""
        c = (g or self.gallery()).db
        if c is None:
            raise GalleryError(f"gallery {self.root} is closed")
        return c

    # -- reads ---------------------------------------------------------------------------------
    def videos(self) -> list[dict[str, Any]]:
        """Every video (indexed and failed) with its tracklet count and covered span."""
        with self.snapshot() as g:
            rows = self.conn(g).execute(_VIDEO_SQL).fetchall()
            start = {v["id"]: v.get("start_time") for v in g.videos()}
        out = []
        for (vid, path, name, camera, fps, nf, w, h, status, error, at, count, t0, t1) in rows:
            fps = float(fps or 0.0)
            out.append({
                "id": vid, "path": path, "name": name, "camera": camera or "", "fps": fps,
                "num_frames": int(nf or 0), "width": int(w or 0), "height": int(h or 0),
                "duration_s": round((nf or 0) / fps, 3) if fps else None, "status": status,
                "error": error, "indexed_at": at, "tracklets": int(count),
                "first_s": None if t0 is None else round(float(t0), 3),
                "last_s": None if t1 is None else round(float(t1), 3),
                "start_time": start.get(vid),
                "end_time": wall_time(start.get(vid), (nf or 0) / fps) if fps else None,
            })
        return out

    def video(self, video_id: int) -> dict[str, Any]:
        """One video by id.

        Raises:
            GalleryError: No such video.
        """
        for v in self.videos():
            if v["id"] == video_id:
                return v
        raise GalleryError(f"no video {video_id} in gallery {self.root}")

    def cameras(self, videos: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Per camera: indexed videos, tracklets, total duration, failures (of videos with a camera)."""
        cams: dict[str, dict[str, Any]] = {}
        for v in videos if videos is not None else self.videos():
            if v["status"] == "failed" and not v["camera"]:
                continue  # a failed video whose camera was never read: counted in the gallery's failures
            c = cams.setdefault(v["camera"], {"camera": v["camera"], "videos": 0, "tracklets": 0,
                                              "duration_s": 0.0, "failed": 0})
            if v["status"] == "failed":
                c["failed"] += 1
                continue
            c["videos"] += 1
            c["tracklets"] += v["tracklets"]
            c["duration_s"] = round(c["duration_s"] + (v["duration_s"] or 0.0), 3)
        return sorted(cams.values(), key=lambda c: c["camera"])

    def tracklet_ids(self, video_id: int) -> list[int]:
        """Ids of a video's tracklets, by start time."""
        rows = self.conn().execute(
            "SELECT id FROM tracklets WHERE video_id = ? ORDER BY start_s, id", (video_id,)).fetchall()
        return [int(r[0]) for r in rows]

    def tracklet(self, tracklet_id: int) -> dict[str, Any]:
        """One tracklet with its boxes per frame (what the player draws).

        Raises:
            GalleryError: No such tracklet.
        """
        with self.snapshot() as g:
            rec = g.get_tracklet(tracklet_id)
        v = self.video(rec.video_id)
        boxes = [[int(f), round(float(t), 3), *(round(float(x), 1) for x in b)]
                 for f, t, b in zip(rec.frames, rec.timestamps, rec.boxes)]
        return {
            "tracklet_id": rec.id, "video_id": rec.video_id, "video": rec.video, "video_name": rec.video_name,
            "camera": rec.camera, "track_id": rec.track_id, "start_frame": rec.start_frame,
            "end_frame": rec.end_frame, "start_s": round(rec.start_s, 3), "end_s": round(rec.end_s, 3),
            "start_time": rec.start_time, "end_time": rec.end_time,
            "num_frames": rec.num_frames, "fps": v["fps"], "width": v["width"], "height": v["height"],
            "video_frames": v["num_frames"],
            "sample_frames": [int(f) for f in rec.sample_frames], "thumbnail": rec.thumbnail,
            "has_skeleton": rec.skeleton is not None, "boxes": boxes,
            "box_columns": ["frame", "t", "x1", "y1", "x2", "y2"],
        }

    def video_path(self, video_id: int) -> str | None:
        """Stored path of an indexed video; None if the id is unknown."""
        row = self.conn().execute(
            "SELECT path FROM videos WHERE id = ? AND status = 'indexed'", (int(video_id),)).fetchone()
        return None if row is None else str(row[0])

    def thumb_path(self, tracklet_id: int) -> Path | None:
        """The stored thumbnail file name of a tracklet, joined to the gallery; None if none."""
        row = self.conn().execute(
            "SELECT thumb_path FROM tracklets WHERE id = ?", (int(tracklet_id),)).fetchone()
        if row is None or not row[0]:
            return None
        return self.root / str(row[0])
