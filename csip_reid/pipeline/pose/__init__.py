"""Pose back-ends, one file each, behind :data:`POSES`: person crops in, COCO-17 keypoints out.

Specs (``--pose``, the ``KIND[:WEIGHTS]`` grammar of :mod:`csip_reid.core.registry`):
    * ``none``: no pose stage (a pose *detector*'s keypoints are still used).
    * ``movenet[:WEIGHTS]``: MoveNet SinglePose TFLite (default ``movenet_lightning``).
    * ``yolo-pose[:WEIGHTS]``: ultralytics pose model on crops (default ``yolo11n-pose.pt``); with
      a pose detector, the detector's keypoints are used and no second model runs.
    * ``rtmpose-t|s|m[:CHECKPOINT|:random]``: mmpose RTMPose; ``rtmpose:CONFIG.py@CHECKPOINT`` for
      any RTMPose config of the mmpose wheel. Needs ``scripts/install_mmpose.sh``.
    * ``blazepose[:full|heavy|PATH][+detector]``: BlazePose GHUM TFLite (default ``full``), 33
      keypoints → COCO-17; ``+detector`` aligns the ROI with MediaPipe's detector.
    * ``blazepose-3d[:full|heavy|PATH][+detector]``: the same model; its metric 3D world landmarks
      become the skeletons (format ``h36m17-3d-world``) instead of normalised 2D joints.

COCO-17 → Human3.6M-17 conversion, normalisation and :func:`attach_skeletons` (the pose stage of
``reid index``) live in :mod:`csip_reid.pipeline.pose.skeleton`.
"""

from __future__ import annotations

from typing import Any

from csip_reid.core.skeleton import H36M_2D
from csip_reid.pipeline.pose import blazepose as _blazepose  # noqa: F401  (registers)
from csip_reid.pipeline.pose import movenet as _movenet  # noqa: F401
from csip_reid.pipeline.pose import rtmpose as _rtmpose  # noqa: F401
from csip_reid.pipeline.pose import yolo_pose as _yolo_pose  # noqa: F401
from csip_reid.pipeline.pose.base import POSES, SKELETON_FORMAT_OF_KIND, PoseEstimator
from csip_reid.pipeline.pose.skeleton import attach_skeletons

__all__ = ["POSES", "PoseEstimator", "attach_skeletons", "create_pose", "is_none", "skeleton_format_for"]


def is_none(spec: str | None) -> bool:
    """True for the spellings of "no pose stage" (``None``, ``""``, ``none``)."""
    return spec is None or spec.strip().lower() in ("", "none")


def skeleton_format_for(spec: str | None) -> str | None:
    """The skeleton format the pose stage makes with back-end ``spec`` (``None``: no pose stage).

    Known without loading the model, so a gallery manifest can record it.

    Raises:
        ConfigError: Unknown back-end name.
    """
    if is_none(spec):
        return None
    kind, _ = POSES.parse(str(spec))
    return SKELETON_FORMAT_OF_KIND.get(kind, H36M_2D)


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
