"""Skeleton formats: the joint layout CSIP-ReID reads and the named formats skeletons are stored in.

A model records the format it was trained on, galleries and datasets record the format they store,
and :func:`check_skeleton_format` refuses a mismatch. Joint layout (Human3.6M-17, indices):
0 pelvis (root), 1-3 R hip/knee/ankle, 4-6 L hip/knee/ankle, 7 spine, 8 thorax, 9 neck/nose,
10 head, 11-13 L shoulder/elbow/wrist, 14-16 R shoulder/elbow/wrist.
"""

from __future__ import annotations

from csip_reid.core.errors import SkeletonFormatError

H36M_2D = "h36m17-2d-conf"
H36M_3D = "h36m17-3d"
H36M_3D_WORLD = "h36m17-3d-world"

SKELETON_FORMATS: dict[str, str] = {
    H36M_2D: (
        "Human3.6M-17 joints from a 2D pose model (COCO-17 converted by coco_to_h36m). Per frame: "
        "x, y in image axes (x right, y DOWN), root-centred on the pelvis (joint 0 is (0, 0)), "
        "divided by one body scale per tracklet (the median over frames of the pelvis→thorax "
        "distance, so the median torso length is 1); third channel = joint confidence in [0, 1]. "
        "Joints below the confidence threshold, and every joint of a frame without a pelvis, "
        "are NaN in all three channels."
    ),
    H36M_3D: (
        "Human3.6M-17 3D joints x, y, z in metres (camera axes, y down), root-centred on the "
        "pelvis, no scale normalisation: CSIP-ReID's original HMR2.0 skeletons, or 2D skeletons "
        "lifted to 3D (lift_3d). Missing frames are NaN."
    ),
    H36M_3D_WORLD: (
        "Human3.6M-17 3D joints x, y, z in metres from a pose model's metric world landmarks "
        "(BlazePose GHUM: blazepose-3d): x to the person's image right, y DOWN, z away from the "
        "camera, root-centred per frame on the pelvis (mid-hips), no scale normalisation, so a "
        "person's real size and bone lengths are kept. Joints derived as in coco_to_h36m. A joint "
        "the model puts outside its view, and every joint of a frame without a person, is NaN."
    ),
}

H36M_JOINTS = (
    "pelvis", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "spine", "thorax",
    "neck_nose", "head", "l_shoulder", "l_elbow", "l_wrist", "r_shoulder", "r_elbow", "r_wrist",
)
#: Undirected H36M-17 bone list (CSIP-ReID's skeleton graph).
H36M_EDGES = (
    (10, 9), (9, 8), (8, 11), (11, 12), (12, 13), (8, 14), (14, 15), (15, 16),
    (8, 7), (7, 0), (0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6),
)


def check_skeleton_format(expected: str | None, got: str | None) -> None:
    """Refuse skeletons of another format than the model was trained on.

    Args:
        expected: The model's format (``None``: the model uses no skeletons; nothing to check).
        got: The format stored with the skeletons (gallery, dataset, tracklet).

    Raises:
        SkeletonFormatError: ``got`` differs from ``expected`` or is unknown.
    """
    if expected is None:
        return
    if expected not in SKELETON_FORMATS:
        raise SkeletonFormatError(
            f"unknown skeleton format {expected!r}; known: {', '.join(SKELETON_FORMATS)}"
        )
    if got != expected:
        stored = got if got is not None else "no skeletons"
        raise SkeletonFormatError(
            f"model trained on {expected} skeletons; this gallery stores {stored}"
        )
