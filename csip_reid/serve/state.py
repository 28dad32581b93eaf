"""The gallery the app serves: one read connection per worker thread, and read helpers.

SQLite connections cannot cross threads, and FastAPI runs plain ``def`` endpoints in a thread
pool, so each worker thread opens the gallery once and keeps it. Readers never take the writer
lock: a ``reid index`` run may write the same gallery meanwhile (SQLite WAL; one transaction per
video), and every multi-row read below runs in one read snapshot.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from csip_reid.core.errors import GalleryError
from csip_reid.gallery.store import Gallery
from csip_reid.gallery.videos import StoredVideo


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
        if g is None or g.closed:
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
        with g.snapshot():
            yield g

    # -- reads ---------------------------------------------------------------------------------
    def videos(self) -> list[dict[str, Any]]:
        """Every video (indexed and failed) with its tracklet count and covered span."""
        return [_video_dict(v) for v in self.gallery().videos()]

    def video(self, video_id: int) -> dict[str, Any]:
        """One video by id.

        Raises:
            GalleryError: No such video.
        """
        return _video_dict(self.gallery().video(int(video_id)))

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
        return self.gallery().tracklet_ids(int(video_id))

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
        try:
            v = self.gallery().video(int(video_id))
        except GalleryError:
            return None
        return v.path if v.status == "indexed" else None

    def thumb_path(self, tracklet_id: int) -> Path | None:
        """The stored thumbnail file of a tracklet; None if none."""
        return self.gallery().thumbnail(int(tracklet_id))


def _video_dict(v: StoredVideo) -> dict[str, Any]:
    """A video as the app's API gives it."""
    return {
        "id": v.id, "path": v.path, "name": v.name, "camera": v.camera, "fps": v.fps, "num_frames": v.num_frames,
        "width": v.width, "height": v.height, "duration_s": v.duration_s, "status": v.status, "error": v.error,
        "indexed_at": v.indexed_at, "tracklets": v.tracklets,
        "first_s": None if v.first_s is None else round(v.first_s, 3),
        "last_s": None if v.last_s is None else round(v.last_s, 3),
        "start_time": v.start_time, "end_time": v.end_time,
    }
