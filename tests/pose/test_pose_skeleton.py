"""COCO→H36M conversion, normalisation, skeleton formats and the pose stage (no models)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from csip_reid.core.errors import SkeletonFormatError
from csip_reid.core.skeleton import (
    H36M_2D,
    H36M_3D,
    H36M_3D_WORLD,
    H36M_EDGES,
    SKELETON_FORMATS,
    check_skeleton_format,
)
from csip_reid.core.tracklet import Tracklet
from csip_reid.pipeline.pose.base import PoseEstimator
from csip_reid.pipeline.pose.skeleton import attach_skeletons, coco_to_h36m, normalize_skeleton

# A person standing upright, facing the camera: their left side is on the image's right (x larger).
COCO_XY = np.array([
    [50, 20],  # 0 nose
    [54, 16], [46, 16],  # 1 L eye, 2 R eye
    [58, 18], [42, 18],  # 3 L ear, 4 R ear
    [70, 40], [30, 40],  # 5 L shoulder, 6 R shoulder
    [76, 70], [24, 70],  # 7 L elbow, 8 R elbow
    [78, 100], [22, 100],  # 9 L wrist, 10 R wrist
    [62, 100], [38, 100],  # 11 L hip, 12 R hip
    [62, 140], [38, 140],  # 13 L knee, 14 R knee
    [62, 180], [38, 180],  # 15 L ankle, 16 R ankle
], np.float32)
COCO_SCORE = 0.5 + 0.02 * np.arange(17, dtype=np.float32)  # s_j = 0.5 + 0.02 j, all distinct


def coco_pose(dx: float = 0.0, dy: float = 0.0, scale: float = 1.0) -> np.ndarray:
    kp = np.empty((17, 3), np.float32)
    kp[:, :2] = COCO_XY * scale + np.array([dx, dy], np.float32)
    kp[:, 2] = COCO_SCORE
    return kp


def s(j: int) -> float:
    return 0.5 + 0.02 * j


# Worked out by hand from COCO_XY / COCO_SCORE (H36M order of the CSIP facts document).
EXPECTED_H36M = np.array([
    [50, 100, s(11)],  # 0 pelvis = mid(L hip, R hip), score min(s11, s12)
    [38, 100, s(12)],  # 1 R hip  = COCO 12
    [38, 140, s(14)],  # 2 R knee = COCO 14
    [38, 180, s(16)],  # 3 R ankle = COCO 16
    [62, 100, s(11)],  # 4 L hip = COCO 11
    [62, 140, s(13)],  # 5 L knee
    [62, 180, s(15)],  # 6 L ankle
    [50, 70, s(5)],  # 7 spine = mid(pelvis (50,100), thorax (50,40)), min(s11, s5)
    [50, 40, s(5)],  # 8 thorax = mid-shoulders, min(s5, s6)
    [50, 20, s(0)],  # 9 neck/nose = COCO nose
    [50, 17, s(1)],  # 10 head = mean of eyes and ears, min(s1..s4)
    [70, 40, s(5)],  # 11 L shoulder
    [76, 70, s(7)],  # 12 L elbow
    [78, 100, s(9)],  # 13 L wrist
    [30, 40, s(6)],  # 14 R shoulder
    [24, 70, s(8)],  # 15 R elbow
    [22, 100, s(10)],  # 16 R wrist
], np.float32)


def test_coco_to_h36m_hand_made_pose() -> None:
    got = coco_to_h36m(coco_pose())
    np.testing.assert_allclose(got, EXPECTED_H36M, atol=1e-5)


def test_coco_to_h36m_left_right_follow_the_person() -> None:
    h = coco_to_h36m(coco_pose())
    # the person faces the camera, so their right limbs are on the image's left
    for right, left in ((1, 4), (2, 5), (3, 6), (14, 11), (15, 12), (16, 13)):
        assert h[right, 0] < h[left, 0]


def test_coco_to_h36m_batch_dims_and_missing_sources() -> None:
    kps = np.stack([coco_pose(), coco_pose(dx=5)])[None]  # (1, 2, 17, 3)
    kps[0, 1, 11] = np.nan  # L hip missing in frame 1
    got = coco_to_h36m(kps)
    assert got.shape == (1, 2, 17, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got[0, 0], EXPECTED_H36M, atol=1e-5)
    missing = {j for j in range(17) if np.isnan(got[0, 1, j]).all()}
    assert missing == {0, 4, 7}  # pelvis and spine derive from the L hip; L hip itself
    assert np.isfinite(got[0, 1, [1, 2, 3, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16]]).all()
    np.testing.assert_allclose(got[0, 1, 8], [55, 40, s(5)], atol=1e-5)


def test_coco_to_h36m_rejects_other_layouts() -> None:
    with pytest.raises(ValueError, match="17, 3"):
        coco_to_h36m(np.zeros((5, 18, 3)))


def test_h36m_edges_form_a_tree_over_17_joints() -> None:
    assert len(H36M_EDGES) == 16
    assert {j for e in H36M_EDGES for j in e} == set(range(17))


def test_normalize_root_centre_and_scale() -> None:
    # torso (pelvis→thorax) is 60 px at scale 1; frames at scales 1, 2, 1 → median torso 60
    frames = [coco_pose(), coco_pose(dx=100, dy=50, scale=2.0), coco_pose(dx=-20, dy=7)]
    h36m = coco_to_h36m(np.stack(frames))
    sk = normalize_skeleton(h36m)
    assert sk.shape == (3, 17, 3) and sk.dtype == np.float32
    np.testing.assert_allclose(sk[:, 0, :2], 0, atol=1e-6)  # root at the origin
    np.testing.assert_allclose(sk[:, 8, :2], [[0, -1], [0, -2], [0, -1]], atol=1e-6)  # y down
    torso = np.linalg.norm(sk[:, 8, :2] - sk[:, 0, :2], axis=-1)
    assert np.median(torso) == pytest.approx(1.0)  # scale 1 by construction
    # translation does not matter, relative size within the tracklet is kept
    np.testing.assert_allclose(sk[2], sk[0], atol=1e-6)
    np.testing.assert_allclose(sk[1, :, :2], 2 * sk[0, :, :2], atol=1e-5)
    # R ankle: (38-50, 180-100) / 60
    np.testing.assert_allclose(sk[0, 3], [-12 / 60, 80 / 60, s(16)], atol=1e-6)
    np.testing.assert_allclose(sk[..., 2], h36m[..., 2])  # confidences unchanged


def test_normalize_missing_joints_and_frames() -> None:
    frames = np.stack([coco_pose(), coco_pose(), coco_pose(), coco_pose()])
    frames[0, 9, 2] = 0.1  # L wrist below min_score
    frames[1, :, 2] = 0.05  # nothing confident: all-missing frame
    frames[2, 12, 2] = 0.0  # R hip missing → no pelvis → frame missing
    sk = normalize_skeleton(coco_to_h36m(frames), min_score=0.2)
    assert np.isnan(sk[0, 13]).all()  # H36M 13 = L wrist
    assert np.isfinite(np.delete(sk[0], 13, axis=0)).all()
    assert np.isnan(sk[1]).all()
    assert np.isnan(sk[2]).all()
    assert np.isfinite(sk[3]).all()


def test_normalize_threshold_is_configurable() -> None:
    h36m = coco_to_h36m(coco_pose()[None])
    sk = normalize_skeleton(h36m, min_score=s(4) + 1e-4)
    # only the joints whose (min) score is below s4 go: neck/nose (s0) and head (s1)
    assert set(np.where(np.isnan(sk[0, :, 0]))[0]) == {9, 10}
    # at s5 the thorax (min of the shoulders, s5) goes too: no torso, so no scale, so nothing
    assert np.isnan(normalize_skeleton(h36m, min_score=s(5) + 1e-4)).all()


def test_normalize_without_any_pelvis_is_all_nan() -> None:
    frames = np.stack([coco_pose(), coco_pose()])
    frames[:, 11] = np.nan
    sk = normalize_skeleton(coco_to_h36m(frames))
    assert sk.shape == (2, 17, 3) and np.isnan(sk).all()


def test_formats_are_documented() -> None:
    assert set(SKELETON_FORMATS) == {H36M_2D, H36M_3D, H36M_3D_WORLD} == {"h36m17-2d-conf", "h36m17-3d",
                                                                          "h36m17-3d-world"}
    assert all(len(doc) > 40 for doc in SKELETON_FORMATS.values())


def test_format_mismatch_is_refused() -> None:
    check_skeleton_format(H36M_3D, H36M_3D)
    check_skeleton_format(None, H36M_2D)  # a model without skeletons accepts anything
    with pytest.raises(SkeletonFormatError, match="trained on h36m17-3d skeletons; this gallery stores h36m17-2d-conf"):
        check_skeleton_format(H36M_3D, H36M_2D)
    with pytest.raises(SkeletonFormatError, match="no skeletons"):
        check_skeleton_format(H36M_2D, None)
    with pytest.raises(SkeletonFormatError, match="unknown skeleton format"):
        check_skeleton_format("coco17-2d", "coco17-2d")


# -- the pose stage -------------------------------------------------------------------------------


class CountingPose(PoseEstimator):
    """Returns the hand-made pose shifted by the crop's marker pixel; counts its work."""

    name = "counting"

    def __init__(self, uses_detector_keypoints: bool = False) -> None:
        super().__init__("counting")
        self.uses_detector_keypoints = uses_detector_keypoints
        self.calls: list[int] = []

    def estimate(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        self.calls.append(len(crops))
        return np.stack([coco_pose(dx=float(c[0, 0, 0])) for c in crops])


def make_tracklet(track_id: int, length: int, n_crops: int, marker: int = 0,
                  keypoints: np.ndarray | None = None) -> Tracklet:
    frames = np.arange(length)
    sample = np.linspace(0, length - 1, n_crops).round().astype(np.int64)
    crops = [np.full((40 + i, 30, 3), marker + i, np.uint8) for i in range(n_crops)]
    return Tracklet("v.mp4", "cam", track_id, frames, frames / 25.0,
                    np.tile([0, 0, 30, 40], (length, 1)), sample_frames=sample, crops=crops,
                    keypoints=keypoints)


def test_attach_processes_only_sampled_crops_batched_across_tracklets() -> None:
    pose = CountingPose()
    tracks = [make_tracklet(i, length, 16, marker=100 * i) for i, length in enumerate((5000, 16, 900))]
    n = attach_skeletons(tracks, pose, batch_size=20)
    assert n == 48 and sum(pose.calls) == 48  # 3 x 16 sampled crops, whatever the lengths
    assert pose.calls == [20, 20, 8]  # batches span tracklet boundaries
    for i, t in enumerate(tracks):
        assert t.keypoints.shape == (16, 17, 3)
        # each tracklet got the keypoints of its own crops, in order
        np.testing.assert_allclose(t.keypoints[:, 0, 0], 50 + 100 * i + np.arange(16))
        assert t.skeleton.shape == (16, 17, 3) and t.skeleton_format == H36M_2D
        np.testing.assert_allclose(t.skeleton[:, 0, :2], 0, atol=1e-6)


def test_attach_reuses_detector_keypoints() -> None:
    pose = CountingPose(uses_detector_keypoints=True)
    kp = np.stack([coco_pose(dx=7)] * 4)
    kp[1] = np.nan  # a sampled frame the detector had no keypoints for
    with_kp = make_tracklet(0, 30, 4, keypoints=kp)
    without = make_tracklet(1, 30, 4, marker=9)
    n = attach_skeletons([with_kp, without], pose, detector_has_keypoints=True)
    assert n == 4 and pose.calls == [4]  # only the tracklet without detector keypoints
    np.testing.assert_allclose(with_kp.keypoints[0, 0, 0], 57)
    assert np.isnan(with_kp.skeleton[1]).all() and np.isfinite(with_kp.skeleton[0]).all()
    np.testing.assert_allclose(without.keypoints[:, 0, 0], 59 + np.arange(4))


def test_attach_runs_the_chosen_model_even_with_detector_keypoints() -> None:
    pose = CountingPose(uses_detector_keypoints=False)
    t = make_tracklet(0, 30, 4, keypoints=np.stack([coco_pose(dx=7)] * 4))
    assert attach_skeletons([t], pose, detector_has_keypoints=True) == 4
    np.testing.assert_allclose(t.keypoints[:, 0, 0], 50 + np.arange(4))


def test_attach_without_pose_model() -> None:
    with_kp = make_tracklet(0, 30, 3, keypoints=np.stack([coco_pose()] * 3))
    without = make_tracklet(1, 30, 3)
    assert attach_skeletons([with_kp, without], None, detector_has_keypoints=True) == 0
    assert with_kp.skeleton_format == H36M_2D and with_kp.skeleton.shape == (3, 17, 3)
    assert without.keypoints is None and without.skeleton is None and without.skeleton_format is None


def test_attach_with_lifter_stores_3d_format() -> None:
    class FakeLifter:
        def __init__(self) -> None:
            self.sizes: np.ndarray | None = None

        def lift(self, h36m_2d: np.ndarray, crop_sizes: np.ndarray) -> np.ndarray:
            self.sizes = crop_sizes
            return np.zeros((len(h36m_2d), 17, 3), np.float32)

    lifter = FakeLifter()
    t = make_tracklet(0, 10, 3)
    attach_skeletons([t], CountingPose(), lifter=lifter)
    assert t.skeleton_format == H36M_3D and t.skeleton.shape == (3, 17, 3)
    np.testing.assert_array_equal(lifter.sizes, [[30, 40], [30, 41], [30, 42]])  # (w, h) per crop
