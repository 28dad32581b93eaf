"""What ``reid index`` reports: the outcome of each video and of a whole run (both executors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class VideoResult:
    """Outcome of one video (``content_hash`` is for the executors; ``to_dict`` leaves it out)."""

    path: str
    status: str  # "indexed", "skipped", "failed", "empty"
    tracklets: int = 0
    frames: int = 0
    failed_frames: int = 0
    missing_frames: int = 0
    promised_frames: int = 0
    seconds: float = 0.0
    error: str = ""
    content_hash: str = ""

    @classmethod
    def stored(cls, path: str, tracklets: int, stats: dict[str, Any] | None) -> VideoResult:
        """The result of a video a gallery already holds, from its stored extraction stats."""
        stats = stats or {}
        return cls(path, "indexed" if tracklets else "empty", tracklets=tracklets,
                   frames=int(stats.get("frames_read", 0)), failed_frames=int(stats.get("frames_failed", 0)),
                   missing_frames=int(stats.get("frames_missing", 0)),
                   promised_frames=int(stats.get("frame_count", 0)))

    def to_dict(self) -> dict[str, Any]:
        """What ``reid index --json`` prints of the video."""
        out = dict(self.__dict__)
        out.pop("content_hash")
        return out


@dataclass
class IndexSummary:
    """Outcome of a whole ``reid index`` run."""

    results: list[VideoResult] = field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    @property
    def frames(self) -> int:
        return sum(r.frames for r in self.results)

    @property
    def tracklets(self) -> int:
        return sum(r.tracklets for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "videos": len(self.results),
            "indexed": self.count("indexed"),
            "empty": self.count("empty"),
            "skipped": self.count("skipped"),
            "failed": self.count("failed"),
            "frames": self.frames,
            "tracklets": self.tracklets,
            "seconds": round(self.seconds, 2),
            "interrupted": self.interrupted,
            "results": [r.to_dict() for r in self.results],
        }
