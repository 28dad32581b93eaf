"""The pose estimator interface, its registry, and small shared helpers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from csip_reid.core.registry import Registry
from csip_reid.core.skeleton import H36M_2D
from csip_reid.core.weights import file_sha256


class PoseEstimator(ABC):
    """Single-person 2D pose on person crops, COCO-17 keypoints out.

    Attributes:
        name: Registered back-end name (``movenet``, ``yolo-pose``, ``rtmpose``).
        spec: The spec the estimator was built from.
        uses_detector_keypoints: True when, with a pose *detector*, the keypoints the detector
            already produced should be used instead of running this estimator
            (see :func:`csip_reid.pipeline.pose.skeleton.attach_skeletons`).
        skeleton_format: The skeleton format the pose stage makes from this estimator:
            ``h36m17-2d-conf`` from the 2D keypoints, or a 3D format when
            :meth:`estimate_with_world` returns 3D joints.
    """

    name: str = ""
    uses_detector_keypoints: bool = False
    skeleton_format: str = H36M_2D

    def __init__(self, spec: str) -> None:
        self.spec = spec

    @abstractmethod
    def estimate(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Keypoints of the person in each crop.

        Args:
            crops: BGR uint8 images (H, W, 3), each showing one person.

        Returns:
            (N, 17, 3) float32 COCO-17 ``x, y, score`` in crop pixels; a crop in which no
            person was found gets a block of NaN.
        """

    def estimate_with_world(self, crops: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """2D keypoints and, for a 3D back-end, root-centred 3D H36M-17 joints of each crop.

        Returns:
            ``(keypoints, world)``: the :meth:`estimate` keypoints and ``None``, or for a back-end
            whose :attr:`skeleton_format` is 3D, (N, 17, 3) float32 joints in that format.
        """
        return self.estimate(crops), None

    def weights_file(self) -> Path | None:
        """The local weights file, if any (for :meth:`describe`)."""
        return None

    def describe(self) -> dict[str, Any]:
        """What identifies this estimator (stored in gallery manifests)."""
        w = self.weights_file()
        return {
            "kind": self.name,
            "spec": self.spec,
            "keypoints": "coco17",
            "skeleton_format": self.skeleton_format,
            "weights": file_sha256(w) if w is not None else None,
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"


POSES: Registry[PoseEstimator] = Registry("pose estimator")
#: Back-end kind → its skeleton format, for the back-ends whose skeletons are not ``h36m17-2d-conf``
#: (filled where they register; read by :func:`csip_reid.pipeline.pose.skeleton_format_for`).
SKELETON_FORMAT_OF_KIND: dict[str, str] = {}


def nan_keypoints(n: int) -> np.ndarray:
    """(n, 17, 3) float32 block of NaN: n crops without a person."""
    return np.full((n, 17, 3), np.nan, np.float32)


def pad_to_square(img: np.ndarray, value: int = 0) -> np.ndarray:
    """Pad an image at the right/bottom to a square, keeping (0, 0) where it was."""
    h, w = img.shape[:2]
    side = max(h, w)
    if h == w:
        return img
    out = np.full((side, side) + img.shape[2:], value, img.dtype)
    out[:h, :w] = img
    return out
