"""Pose back-ends, one file each, behind :data:`POSES`: person crops in, COCO-17 keypoints out.

Specs (``--pose``, the ``KIND[:WEIGHTS]`` grammar of :mod:`csip_reid.core.registry`):
    * ``none``: no pose stage (a pose *detector*'s keypoints are still used).
    * ``movenet[:WEIGHTS]``: MoveNet SinglePose TFLite (default ``movenet_lightning``).
    * ``yolo-pose[:WEIGHTS]``: ultralytics pose model on crops (default ``yolo11n-pose.pt``); with
      a pose detector, the detector's keypoints are used and no second model runs.
    * ``rtmpose-t|s|m[:CHECKPOINT|:random]``: mmpose RTMPose; ``rtmpose:CONFIG.py@CHECKPOINT`` for
      any RTMPose config of the mmpose wheel. Needs ``scripts/install_mmpose.sh``.

COCO-17 → Human3.6M-17 conversion, normalisation and :func:`attach_skeletons` (the pose stage of
``reid index``) live in :mod:`csip_reid.pipeline.pose.skeleton`.
"""

from __future__ import annotations

from typing import Any

from csip_reid.pipeline.pose import movenet as _movenet  # noqa: F401  (registers)
from csip_reid.pipeline.pose import rtmpose as _rtmpose  # noqa: F401
from csip_reid.pipeline.pose import yolo_pose as _yolo_pose  # noqa: F401
from csip_reid.pipeline.pose.base import POSES, PoseEstimator
from csip_reid.pipeline.pose.skeleton import attach_skeletons

__all__ = ["POSES", "PoseEstimator", "attach_skeletons", "create_pose", "is_none"]


def is_none(spec: str | None) -> bool:
    """True for the spellings of "no pose stage" (``None``, ``""``, ``none``)."""
    return spec is None or spec.strip().lower() in ("", "none")


def create_pose(spec: str | None, device: str = "cpu", **options: Any) -> PoseEstimator | None:
    """Build the pose estimator named by ``spec``; ``none`` (or empty) gives ``None``.

    Args:
        spec: ``KIND`` or ``KIND:ARG`` (see the module docstring).
        device: torch device for the torch back-ends (MoveNet always runs on the CPU).
        **options: Passed to the back-end's constructor.

    Raises:
        ConfigError: Unknown back-end name.
        WeightsNotFoundError: Weights missing (and not downloadable).
        ReidError: The back-end's optional dependency (mmpose) is not installed.
    """
    if is_none(spec):
        return None
    return POSES.create(spec, device=device, **options)
