"""The videos of a gallery as typed records: what a writer hands in, and what readers get back.

:class:`VideoRecord` is what ``Gallery.add_video`` stores besides the tracklets (built by the
indexer, the Ray workers and driver, and ``reid gallery merge``), and what
``Gallery.indexed_videos`` returns to copy a video into another gallery. :class:`StoredVideo` is
one row of the ``videos`` table with what the readers (``reid gallery info``, the review app) show.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from csip_reid.core.walltime import offset_time
from csip_reid.gallery.schema import json_object


@dataclass
class VideoRecord:
    """The facts of one indexed video that a gallery stores with its tracklets.

    Attributes:
        path: Path of the video (stored absolute and normalised: its key in the gallery).
        content_hash: Hash of the file's content (``reid index`` skips content already indexed).
        camera: Camera label.
        fps: Frames per second.
        num_frames: Frame count.
        width: Frame width in pixels.
        height: Frame height in pixels.
        stats: Indexing statistics (stored as JSON; entries that do not serialise are left out).
        start_time: Wall-clock start (ISO 8601); None keeps the start time stored for the path.
    """

    path: str
    content_hash: str
    camera: str
    fps: float = 0.0
    num_frames: int = 0
    width: int = 0
    height: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    start_time: str | None = None


@dataclass(frozen=True)
class StoredVideo:
    """One video of a gallery (indexed or failed), as the ``videos`` table and its tracklets give it.

    Attributes:
        id: Gallery id of the video.
        path: Stored path.
        name: File name.
        camera: Camera label ("" when a failed video's camera was never read).
        fps: Frames per second (0 when unknown).
        num_frames: Frame count (0 when unknown).
        width: Frame width (0 when unknown).
        height: Frame height (0 when unknown).
        status: ``"indexed"``, ``"failed"`` or ``"partial"`` (being indexed in segments: the
            tracklets of the segments committed so far are stored; ``reid index`` resumes it).
        error: Why indexing failed (None for an indexed video).
        indexed_at: When the row was written (ISO 8601 UTC).
        content_hash: Hash of the file's content (may be None for a failed video).
        tracklets: Number of stored tracklets.
        first_s: Start of the earliest tracklet (seconds into the video), None without tracklets.
        last_s: End of the latest tracklet, likewise.
        start_time: Wall-clock start (ISO 8601 UTC) when known.
        stats: The indexing statistics stored with the video.
    """

    id: int
    path: str
    name: str
    camera: str
    fps: float
    num_frames: int
    width: int
    height: int
    status: str
    error: str | None
    indexed_at: str
    content_hash: str | None
    tracklets: int
    first_s: float | None
    last_s: float | None
    start_time: str | None
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        """Length of the video in seconds (None when the frame rate is unknown)."""
        return round(self.num_frames / self.fps, 3) if self.fps else None

    @property
    def end_time(self) -> str | None:
        """Wall-clock end (ISO 8601 UTC) when the start time and frame rate are known."""
        return offset_time(self.start_time, self.num_frames / self.fps) if self.fps else None

    @classmethod
    def from_row(cls, row: tuple) -> StoredVideo:
        """From a row selected with :data:`VIDEO_COLUMNS`."""
        (vid, path, name, camera, fps, nf, w, h, status, error, at, chash, count, t0, t1, start, stats) = row
        return cls(id=int(vid), path=path, name=name, camera=camera or "", fps=float(fps or 0.0),
                   num_frames=int(nf or 0), width=int(w or 0), height=int(h or 0), status=status, error=error,
                   indexed_at=at, content_hash=chash, tracklets=int(count),
                   first_s=None if t0 is None else float(t0), last_s=None if t1 is None else float(t1),
                   start_time=start, stats=json_object(stats))

    def summary(self) -> dict[str, Any]:
        """What ``reid gallery info`` lists of the video (by its status)."""
        if self.status == "failed":
            return {"path": self.path, "error": self.error, "failed_at": self.indexed_at}
        out = {"id": self.id, "path": self.path, "name": self.name, "camera": self.camera, "tracklets": self.tracklets,
               "indexed_at": self.indexed_at, "content_hash": self.content_hash}
        if self.status == "partial":  # indexed up to here so far (the resume point)
            out["indexed_to_s"] = self.stats.get("indexed_to_s")
        return out

    def record(self) -> VideoRecord:
        """The :class:`VideoRecord` that stores this video again (in another gallery)."""
        return VideoRecord(self.path, self.content_hash or "", self.camera, self.fps, self.num_frames, self.width,
                           self.height, dict(self.stats), self.start_time)


#: Columns of ``videos v`` joined with its tracklets' count and span, as :meth:`StoredVideo.from_row` reads
#: them (``{start_time}``: ``v.start_time``, or NULL in a schema-1 gallery; ``{status}``: ``partial`` for a
#: video with a resume point). Group by ``v.id``.
VIDEO_COLUMNS = ("v.id, v.path, v.name, v.camera, v.fps, v.num_frames, v.width, v.height, {status}, v.error, "
                 "v.indexed_at, v.content_hash, COUNT(t.id), MIN(t.start_s), MAX(t.end_s), {start_time}, "
                 "v.stats_json")
