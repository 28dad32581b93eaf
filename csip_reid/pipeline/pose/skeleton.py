"""COCO-17 → Human3.6M-17 conversion, normalisation, and the pose stage (formats: :mod:`csip_reid.core.skeleton`).

CSIP-ReID's skeleton encoder reads Human3.6M-17 joints (the layout of its HMR2.0 skeletons).
2D pose models give COCO-17 keypoints, so the pose stage converts them (:func:`coco_to_h36m`),
normalises them per tracklet (:func:`normalize_skeleton`) and stores them on the tracklet under a
named *skeleton format*. A model records the format it was trained on, and
:func:`check_skeleton_format` refuses a gallery or dataset of another format.

Joint layouts (indices):

* COCO-17: 0 nose, 1 L eye, 2 R eye, 3 L ear, 4 R ear, 5 L shoulder, 6 R shoulder, 7 L elbow,
  8 R elbow, 9 L wrist, 10 R wrist, 11 L hip, 12 R hip, 13 L knee, 14 R knee, 15 L ankle,
  16 R ankle. "Left" is the person's left.
* H36M-17: 0 pelvis (root), 1-3 R hip/knee/ankle, 4-6 L hip/knee/ankle, 7 spine, 8 thorax,
  9 neck/nose, 10 head, 11-13 L shoulder/elbow/wrist, 14-16 R shoulder/elbow/wrist.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from csip_reid.core.skeleton import H36M_2D, H36M_3D

if TYPE_CHECKING:
    from csip_reid.core.tracklet import Tracklet
    from csip_reid.pipeline.pose.base import PoseEstimator
    from csip_reid.pipeline.pose.lifter import PoseLifter

# H36M joint ← the COCO joints it is the mean of. Score = min of the sources' scores.
_COCO_SOURCES: tuple[tuple[int, ...], ...] = (
    (11, 12),  # 0 pelvis = mid-hips
    (12,),  # 1 R hip
    (14,),  # 2 R knee
    (16,),  # 3 R ankle
    (11,),  # 4 L hip
    (13,),  # 5 L knee
    (15,),  # 6 L ankle
    (),  # 7 spine: midpoint of pelvis and thorax (derived below)
    (5, 6),  # 8 thorax = mid-shoulders
    (0,),  # 9 neck/nose = COCO nose
    (1, 2, 3, 4),  # 10 head = mean of both eyes and both ears (centre of the head)
    (5,),  # 11 L shoulder
    (7,),  # 12 L elbow
    (9,),  # 13 L wrist
    (6,),  # 14 R shoulder
    (8,),  # 15 R elbow
    (10,),  # 16 R wrist
)


def coco_points_to_h36m(points: np.ndarray) -> np.ndarray:
    """Human3.6M-17 joints from points in COCO-17 order, any number of coordinates.

    A joint is the mean of its COCO sources (pelvis = mid-hips, thorax = mid-shoulders, spine =
    midpoint of pelvis and thorax, neck/nose = nose, head = mean of eyes and ears); it is NaN if
    any source is NaN.

    Args:
        points: (..., 17, D) coordinates, e.g. 2D pixels or 3D metres.

    Returns:
        (..., 17, D) float32.
    """
    points = np.asarray(points, np.float32)
    if points.shape[-2] != 17:
        raise ValueError(f"expected (..., 17, D) COCO points, got {points.shape}")
    out = np.empty_like(points)
    for j, src in enumerate(_COCO_SOURCES):
        if src:
            out[..., j, :] = points[..., src, :].mean(axis=-2)
    out[..., 7, :] = (out[..., 0, :] + out[..., 8, :]) / 2
    return out


def coco_to_h36m(kps: np.ndarray) -> np.ndarray:
    """Convert COCO-17 keypoints to Human3.6M-17 joints.

    Joints that exist in both layouts are copied (respecting the person's left/right). Derived
    joints: pelvis = mid-hips, thorax = mid-shoulders, spine = midpoint of pelvis and thorax,
    neck/nose = the COCO nose, head = mean of the eyes and ears. A derived joint's score is the
    minimum of its sources' scores, and it is NaN if any source is NaN.

    Args:
        kps: (..., 17, 3) COCO ``x, y, score``; NaN marks missing keypoints.

    Returns:
        (..., 17, 3) float32 H36M ``x, y, score``.
    """
    kps = np.asarray(kps, np.float32)
    if kps.shape[-2:] != (17, 3):
        raise ValueError(f"expected (..., 17, 3) COCO keypoints, got {kps.shape}")
    out = np.empty_like(kps)
    out[..., :2] = coco_points_to_h36m(kps[..., :2])
    for j, src in enumerate(_COCO_SOURCES):
        if src:
            out[..., j, 2] = kps[..., src, 2].min(axis=-1)
    out[..., 7, 2] = np.minimum(out[..., 0, 2], out[..., 8, 2])
    out[np.isnan(out).any(axis=-1)] = np.nan
    return out


def body_scale(h36m: np.ndarray) -> float:
    """Robust body scale of a sequence: median pelvis→thorax distance over frames (NaN if none)."""
    torso = np.linalg.norm(h36m[:, 8, :2] - h36m[:, 0, :2], axis=-1)
    torso = torso[np.isfinite(torso) & (torso > 0)]
    return float(np.median(torso)) if len(torso) else float("nan")


def normalize_skeleton(h36m: np.ndarray, min_score: float = 0.2) -> np.ndarray:
    """Root-centre and scale-normalise a 2D H36M-17 sequence (format ``h36m17-2d-conf``).

    Joints with score < ``min_score`` become NaN. Each frame is shifted so the pelvis is at the
    origin (a frame without a pelvis becomes all NaN); all frames are divided by one scale, the
    median over frames of the pelvis→thorax distance (so the median torso length becomes 1 and
    relative size changes within the tracklet, e.g. squatting, are kept). Image axes are kept:
    x right, y down. If no frame has both pelvis and thorax, the whole sequence is NaN.

    Args:
        h36m: (S, 17, 3) H36M ``x, y, score`` in pixels, e.g. from :func:`coco_to_h36m`.
        min_score: Confidence below which a joint counts as missing.

    Returns:
        (S, 17, 3) float32: normalised ``x, y`` and the unchanged confidence; NaN = missing.
    """
    sk = np.array(h36m, dtype=np.float32, copy=True).reshape(-1, 17, 3)
    with np.errstate(invalid="ignore"):
        low = ~(sk[..., 2] >= min_score)  # NaN scores count as missing too
    sk[low] = np.nan
    sk[np.isnan(sk[:, 0, 0])] = np.nan  # no root, no frame
    scale = body_scale(sk)
    if not np.isfinite(scale):
        return np.full_like(sk, np.nan)
    sk[..., :2] = (sk[..., :2] - sk[:, :1, :2]) / scale
    return sk


def lift_3d(h36m_2d: np.ndarray, crop_sizes: np.ndarray, lifter: PoseLifter) -> np.ndarray:
    """Lift pixel-space 2D H36M-17 joints to root-centred 3D (format ``h36m17-3d``).

    Args:
        h36m_2d: (S, 17, 3) H36M ``x, y, score`` in crop pixels (not normalised).
        crop_sizes: (S, 2) crop ``width, height`` of each frame.
        lifter: A loaded :class:`~csip_reid.pipeline.pose.lifter.PoseLifter`.

    Returns:
        (S, 17, 3) float32 metres; frames with a missing joint are NaN.
    """
    return lifter.lift(h36m_2d, crop_sizes)


def attach_skeletons(
    tracklets: Sequence[Tracklet],
    pose: PoseEstimator | None,
    detector_has_keypoints: bool = False,
    batch_size: int = 32,
    min_score: float = 0.2,
    lifter: PoseLifter | None = None,
) -> int:
    """Run the pose stage on the tracklets' sampled crops and attach skeletons.

    Only ``tracklet.crops`` (the bounded sample, at most the builder's ``max_samples``) are
    processed, batched across tracklets, so the cost does not grow with tracklet length.
    When the detector was a pose model (``detector_has_keypoints``) and ``pose`` is ``None`` or
    says it takes the detector's keypoints (``pose.uses_detector_keypoints``), the keypoints the
    tracklet builder already attached are used and no pose model runs for those tracklets.

    Sets ``tracklet.keypoints`` (S, 17, 3) COCO in crop pixels, ``tracklet.skeleton`` and
    ``tracklet.skeleton_format`` (``h36m17-2d-conf``, ``h36m17-3d`` when ``lifter`` is given, or
    the estimator's own 3D format, e.g. ``h36m17-3d-world`` from ``blazepose-3d``).

    Args:
        tracklets: Tracklets with their sampled crops.
        pose: The pose estimator, or ``None``: then only detector keypoints are used, and
            tracklets without them are left unchanged.
        detector_has_keypoints: The detector already produced COCO-17 keypoints.
        batch_size: Crops per pose-model call.
        min_score: Keypoint confidence below which a joint is missing.
        lifter: Optional 3D pose lifter.

    Returns:
        Number of crops that went through the pose model.
    """
    reuse = detector_has_keypoints and (pose is None or pose.uses_detector_keypoints)
    todo = [] if pose is None else [t for t in tracklets if not (reuse and t.keypoints is not None)]
    flat = [c for t in todo for c in t.crops]
    parts = [pose.estimate_with_world(flat[s : s + batch_size]) for s in range(0, len(flat), batch_size)]
    kps = np.concatenate([p[0] for p in parts], 0) if parts else np.zeros((0, 17, 3), np.float32)
    world = np.concatenate([p[1] for p in parts], 0) if parts and parts[0][1] is not None else None
    start, own_3d = 0, set[int]()
    for t in todo:
        t.keypoints = kps[start : start + len(t.crops)]
        if world is not None:  # the estimator's own 3D joints are the skeleton
            t.skeleton, t.skeleton_format = world[start : start + len(t.crops)], pose.skeleton_format
            own_3d.add(id(t))
        start += len(t.crops)
    for t in tracklets:
        if t.keypoints is None or id(t) in own_3d:
            continue
        coco = np.asarray(t.keypoints, np.float32).reshape(-1, 17, 3)
        h36m = coco_to_h36m(coco)
        if lifter is not None:
            with np.errstate(invalid="ignore"):
                h36m[~(h36m[..., 2] >= min_score)] = np.nan
            sizes = np.array([c.shape[1::-1] for c in t.crops], np.float32).reshape(-1, 2)
            t.skeleton, t.skeleton_format = lift_3d(h36m, sizes, lifter), H36M_3D
        else:
            t.skeleton, t.skeleton_format = normalize_skeleton(h36m, min_score), H36M_2D
    return len(flat)
