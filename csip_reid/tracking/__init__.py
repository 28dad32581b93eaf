"""Multi-object tracking: the :class:`Tracker` contract, ultralytics' trackers, and the builder
that turns tracked detections into :class:`~csip_reid.core.tracklet.Tracklet` objects."""

from __future__ import annotations

from typing import Any

from csip_reid.tracking import ultralytics as _ultralytics  # noqa: F401  (registers)
from csip_reid.tracking.base import TRACKERS, Tracker
from csip_reid.tracking.builder import TrackletBuilder

__all__ = ["TRACKERS", "Tracker", "TrackletBuilder", "create_tracker"]


def create_tracker(spec: str = "bytetrack", frame_rate: float = 30.0, **overrides: Any) -> Tracker:
    """Build a tracker from ``bytetrack``, ``botsort`` or ``KIND:settings.yaml`` plus overrides."""
    return TRACKERS.create(spec, frame_rate=frame_rate, **overrides)
