"""Pose back-ends: person crops in, COCO-17 keypoints out.

Specs (``--pose``):
    * ``none`` no pose stage (a pose *detector*'s keypoints are still used).
    * ``movenet[:PATH]`` MoveNet SinglePose TFLite (default weights ``movenet_lightning``).
    * ``yolo-pose[:WEIGHTS]`` ultralytics pose model on crops (default ``yolo11n-pose.pt``); with
      a pose detector, the detector's keypoints are used and no second model runs.
    * ``rtmpose[:NAME_OR_CONFIG[@CHECKPOINT]]`` mmpose RTMPose (``rtmpose-t``/``-s``/``-m``;
      ``@random`` for untrained weights), also spelled ``rtmpose-s``, ``rtmpose-s:CHECKPOINT``,
      ``rtmpose-t@random``. Needs ``scripts/install_mmpose.sh``.

The skeleton formats and :func:`attach_skeletons` (the pose stage of ``reid index``) live in
:mod:`csip_reid.pipeline.skeleton` and are re-exported here.
"""

from __future__ import annotations

from typing import Any

from csip_reid.pipeline.pose_backends import movenet as _movenet  # noqa: F401  (registers)
from csip_reid.pipeline.pose_backends import rtmpose as _rtmpose  # noqa: F401
from csip_reid.pipeline.pose_backends import yolo_pose as _yolo_pose  # noqa: F401
from csip_reid.pipeline.pose_backends.base import POSES, PoseEstimator
from csip_reid.pipeline.skeleton import attach_skeletons
from csip_reid.registry import split_spec

__all__ = ["POSES", "PoseEstimator", "attach_skeletons", "create_pose"]


def create_pose(spec: str | None, device: str = "cpu", **options: Any) -> PoseEstimator | None:
    """Build the pose estimator named by ``spec``; ``none`` (or empty) gives ``None``.

    Args:
        spec: ``KIND``, ``KIND:ARG`` or ``NAME@CHECKPOINT`` (see the module docstring).
        device: torch device for the torch back-ends (MoveNet always runs on the CPU).
        **options: Passed to the back-end's constructor.

    Raises:
        ConfigError: Unknown back-end name.
        WeightsNotFoundError: Weights missing (and not downloadable).
        ReidError: The back-end's optional dependency (mmpose) is not installed.
    """
    if spec is None or spec.strip().lower() in ("", "none"):
        return None
    head, at, tail = spec.strip().partition("@")
    if at and ":" not in head:  # NAME@CHECKPOINT
        kind, arg = head.lower(), "@" + tail
    else:
        kind, arg = split_spec(spec)
    return POSES.entry(kind).factory(arg, device=device, **options)
