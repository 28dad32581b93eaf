"""Per-frame person detections, from the detector through the tracker to the tracklet builder."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Detections:
    """Person detections of one frame (rows are people; every array has one row per person).

    The detector fills ``xyxy``, ``conf`` and, for pose models, ``keypoints``. A tracker returns the
    rows that its tracks took with ``tracker_id`` set (see :class:`csip_reid.tracking.Tracker`);
    indexing keeps the arrays in line, so keypoints follow their track.

    Attributes:
        xyxy: (N, 4) float32 boxes in frame pixels.
        conf: (N,) float32 confidences.
        keypoints: optional (N, 17, 3) float32 COCO-17 ``x, y, score`` in *frame* pixels (pose
            detectors such as YOLO-pose fill it).
        tracker_id: optional (N,) int64 track identities (set by a tracker; stable over frames).
    """

    xyxy: np.ndarray
    conf: np.ndarray
    keypoints: np.ndarray | None = None
    tracker_id: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        self.conf = np.asarray(self.conf, dtype=np.float32).reshape(-1)
        if len(self.conf) != len(self.xyxy):
            raise ValueError("xyxy and conf lengths differ")
        if self.keypoints is not None:
            self.keypoints = np.asarray(self.keypoints, dtype=np.float32).reshape(-1, 17, 3)
            if len(self.keypoints) != len(self.xyxy):
                raise ValueError("keypoints and xyxy lengths differ")
        if self.tracker_id is not None:
            self.tracker_id = np.asarray(self.tracker_id, dtype=np.int64).reshape(-1)
            if len(self.tracker_id) != len(self.xyxy):
                raise ValueError("tracker_id and xyxy lengths differ")

    @classmethod
    def empty(cls, with_keypoints: bool = False) -> Detections:
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros((0, 17, 3), np.float32) if with_keypoints else None,
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, idx: np.ndarray | slice) -> Detections:
        return Detections(
            self.xyxy[idx],
            self.conf[idx],
            None if self.keypoints is None else self.keypoints[idx],
            None if self.tracker_id is None else self.tracker_id[idx],
        )

    def with_tracker_ids(self, rows: np.ndarray, tracker_id: np.ndarray) -> Detections:
        """The detections at ``rows`` (copied) labelled with ``tracker_id``."""
        out = self[np.asarray(rows, np.int64)]
        out.tracker_id = np.asarray(tracker_id, np.int64).reshape(-1)
        return Detections(out.xyxy.copy(), out.conf.copy(), out.keypoints, out.tracker_id)
