"""Per-frame detections passed from a detector back-end to the tracker."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Detections:
    """Person detections of one frame.

    Attributes:
        xyxy: (N, 4) float32 boxes in frame pixels.
        conf: (N,) float32 confidences.
        keypoints: optional (N, 17, 3) float32 COCO-17 ``x, y, score`` in *frame* pixels, paired
            row-for-row with ``xyxy`` (pose detectors such as YOLO-pose fill it).
    """

    xyxy: np.ndarray
    conf: np.ndarray
    keypoints: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        self.conf = np.asarray(self.conf, dtype=np.float32).reshape(-1)
        if len(self.conf) != len(self.xyxy):
            raise ValueError("xyxy and conf lengths differ")
        if self.keypoints is not None:
            self.keypoints = np.asarray(self.keypoints, dtype=np.float32).reshape(-1, 17, 3)
            if len(self.keypoints) != len(self.xyxy):
                raise ValueError("keypoints and xyxy lengths differ")

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
            self.xyxy[idx], self.conf[idx], None if self.keypoints is None else self.keypoints[idx]
        )
