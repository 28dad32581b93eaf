"""The detector contract: batches of BGR frames in, one :class:`Detections` per frame out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from csip_reid.core.detections import Detections
from csip_reid.core.registry import Registry

DEFAULT_DETECTOR = "ultralytics:yolo11n.pt"
#: Default confidence threshold. Low on purpose: ByteTrack uses detections between 0.1 and its
#: high threshold (0.25) to keep tracks alive through occlusions.
DEFAULT_CONF = 0.1


class Detector(ABC):
    """Base class of person detectors.

    Attributes:
        name: Short back-end name (``ultralytics``, ``yolox``).
        batch_size: How many frames callers should pass to :meth:`detect` at once.
        has_keypoints: True when the returned detections carry COCO-17 keypoints.
    """

    name: str = ""
    batch_size: int = 1
    has_keypoints: bool = False

    @abstractmethod
    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Detect people in BGR uint8 frames; one :class:`Detections` per frame, best first."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-friendly settings that define this detector's output (stored with a gallery)."""


DETECTORS: Registry[Detector] = Registry("detector")


def clip_boxes(xyxy: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape[:2]
    xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, w)
    xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, h)
    return xyxy
