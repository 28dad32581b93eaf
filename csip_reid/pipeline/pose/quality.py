"""Label-free quality checks of pose output (used by ``bench/pose_quality.py`` and the pose tests).

No ground truth comes with surveillance video, so a pose back-end is judged by what must hold
for any real person:

* :func:`pck`: agreement with a reference back-end (PCK: the share of keypoints, confidently
  found by both, within ``alpha`` times the person box's longer side of each other);
* :func:`lr_symmetry`: left and right bones (upper arm, forearm, thigh, shin) of one frame are
  about equally long (exact in 3D; in 2D only for a person seen from the front or back);
* :func:`bone_cv`: a bone's length does not change along a tracklet (coefficient of variation;
  exact in metric 3D, in 2D perspective and posture change it);
* :func:`head_above_pelvis`: for an upright person the head is above the pelvis (y grows downwards
  in image and in world axes).

All functions take Human3.6M-17 joints (:mod:`csip_reid.core.skeleton`) with NaN for missing ones
and ignore what is missing.
"""

from __future__ import annotations

import numpy as np

from csip_reid.core.skeleton import H36M_EDGES

#: (left bone, right bone) pairs of H36M-17 joints: upper arm, forearm, thigh, shin.
LR_BONES: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = (
    ((11, 12), (14, 15)), ((12, 13), (15, 16)), ((4, 5), (1, 2)), ((5, 6), (2, 3)),
)


def pck(kps: np.ndarray, ref: np.ndarray, box_sides: np.ndarray, alpha: float = 0.2,
        min_score: float = 0.3) -> float:
    """Share of keypoints within ``alpha`` x box side of the reference (NaN if none is comparable).

    Args:
        kps: (N, K, 3) ``x, y, score`` of the back-end under test.
        ref: (N, K, 3) ``x, y, score`` of the reference back-end, same crops.
        box_sides: (N,) the longer side of each crop, in the keypoints' pixels.
        alpha: Distance threshold as a fraction of the box side.
        min_score: Only keypoints both back-ends score at least this count.
    """
    with np.errstate(invalid="ignore"):
        both = (kps[..., 2] >= min_score) & (ref[..., 2] >= min_score)
    if not both.any():
        return float("nan")
    dist = np.linalg.norm(kps[..., :2] - ref[..., :2], axis=-1)
    thr = alpha * np.asarray(box_sides, np.float32)[:, None]
    return float((dist[both] <= np.broadcast_to(thr, dist.shape)[both]).mean())


def _length(sk: np.ndarray, a: int, b: int) -> np.ndarray:
    return np.linalg.norm(sk[..., a, :] - sk[..., b, :], axis=-1)


def lr_symmetry(sk: np.ndarray, dims: int = 3) -> np.ndarray:
    """Relative left/right difference ``|L - R| / mean(L, R)`` of every comparable bone pair.

    Args:
        sk: (S, 17, C) H36M joints; the first ``dims`` channels are coordinates.
        dims: Coordinates per joint (2 for ``x, y, score`` keypoints, 3 for 3D joints).

    Returns:
        1-D array, one value per (frame, bone pair) with both bones present.
    """
    xyz = np.asarray(sk, np.float32)[..., :dims]
    out = []
    for (la, lb), (ra, rb) in LR_BONES:
        left, right = _length(xyz, la, lb), _length(xyz, ra, rb)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.abs(left - right) / ((left + right) / 2)
        out.append(rel[np.isfinite(rel)])
    return np.concatenate(out)


def bone_cv(sk: np.ndarray, dims: int = 3, min_frames: int = 3) -> np.ndarray:
    """Coefficient of variation (std / mean) of each bone's length over a tracklet's frames.

    Args:
        sk: (S, 17, C) H36M joints of one tracklet.
        dims: Coordinates per joint.
        min_frames: Bones present in fewer frames are skipped.

    Returns:
        1-D array, one value per bone of :data:`H36M_EDGES` present often enough.
    """
    xyz = np.asarray(sk, np.float32)[..., :dims]
    out = []
    for a, b in H36M_EDGES:
        length = _length(xyz, a, b)
        length = length[np.isfinite(length)]
        if len(length) >= min_frames and length.mean() > 0:
            out.append(length.std() / length.mean())
    return np.asarray(out, np.float32)


def head_above_pelvis(sk: np.ndarray) -> np.ndarray:
    """Per frame with both joints: is the head (joint 10) above the pelvis (joint 0), y down."""
    y = np.asarray(sk, np.float32)[..., 1]
    ok = np.isfinite(y[:, 10]) & np.isfinite(y[:, 0])
    return y[ok, 10] < y[ok, 0]
