"""The tracker contract: one frame of :class:`Detections` in, the rows its tracks took out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from csip_reid.core.detections import Detections
from csip_reid.core.registry import Registry


class Tracker(ABC):
    """Base class of multi-object trackers (one instance per video).

    Attributes:
        name: Registered back-end name.
        frame_rate: Rate of the frames passed to :meth:`update` (video fps / stride).
        max_lost: Frames (as passed to :meth:`update`) a lost track is kept before it can no
            longer come back.
    """

    name: str = ""
    frame_rate: float = 30.0
    max_lost: int = 30

    @abstractmethod
    def update(self, dets: Detections, frame: np.ndarray | None = None) -> Detections:
        """Advance one frame.

        Args:
            dets: The frame's detections.
            frame: The BGR frame (for trackers that need pixels, e.g. camera-motion compensation).

        Returns:
            The detections that an active track took in this frame, with ``tracker_id`` set and
            sorted by it. Boxes are the detector's (not the motion model's), so crops and
            keypoints line up.
        """

    def set_frame_rate(self, frame_rate: float) -> None:
        """Tell the tracker the rate of the frames it now gets (keyframes of an adaptive scan).

        Time-based settings (how long a lost track is kept) follow the new rate; the default only
        records it.
        """
        self.frame_rate = float(frame_rate)

    @abstractmethod
    def reset(self) -> None:
        """Forget all tracks and restart ids at 1 (call between videos)."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Tracker name and settings (for provenance records)."""


TRACKERS: Registry[Tracker] = Registry("tracker")

