"""Pose back-ends: registry, MoveNet on real video, YOLO-pose with random weights, RTMPose."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from csip_reid.core.errors import ConfigError, WeightsNotFoundError
from csip_reid.core.skeleton import H36M_2D, SKELETON_FORMATS
from csip_reid.pipeline.pose import POSES, PoseEstimator, create_pose, skeleton_format_for
from csip_reid.pipeline.pose.skeleton import body_scale, coco_to_h36m
from csip_reid.pipeline.pose.yolo_pose import _box_iou_with_frame

HAS_MMPOSE = importlib.util.find_spec("mmpose") is not None


def read_frames(path: Path, step: int = 1) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    i = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i % step == 0:
            frames.append(frame)
        i += 1
    cap.release()
    assert frames, f"no frames decoded from {path}"
    return frames


@pytest.fixture(scope="module")
def random_yolo_pose(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init yolo11n-pose saved to a file (built offline from ultralytics' yaml)."""
    from csip_reid.core.ultralytics_env import import_ultralytics

    yolo = import_ultralytics().YOLO("yolo11n-pose.yaml")
    path = tmp_path_factory.mktemp("yolo") / "yolo11n-pose-random.pt"
    yolo.save(str(path))
    return path


def offline_spec(name: str, request: pytest.FixtureRequest) -> str:
    """A spec that builds back-end ``name`` offline (real or random weights)."""
    if name == "movenet":
        return f"movenet:{request.getfixturevalue('movenet_path')}"
    if name == "yolo-pose":
        return f"yolo-pose:{request.getfixturevalue('random_yolo_pose')}"
    if name.startswith("rtmpose"):
        if not HAS_MMPOSE:
            pytest.skip("mmpose not installed (scripts/install_mmpose.sh)")
        return "rtmpose-t:random" if name == "rtmpose" else f"{name}:random"
    if name.startswith("blazepose"):
        path = request.getfixturevalue("models_dir") / "pose_landmark_full.tflite"
        if not path.is_file():
            pytest.skip("pose_landmark_full.tflite missing")
        return f"{name}:{path}"
    raise AssertionError(f"new pose back-end {name!r}: add an offline spec for it to this test")


def test_registry_and_none() -> None:
    assert {"movenet", "yolo-pose", "rtmpose", "rtmpose-t", "rtmpose-s", "rtmpose-m", "blazepose",
            "blazepose-3d"} <= set(POSES.names())
    assert create_pose("none") is None and create_pose(None) is None and create_pose(" None ") is None
    with pytest.raises(ConfigError, match="unknown pose estimator 'openpose'"):
        create_pose("openpose")


@pytest.mark.parametrize("name", POSES.names())
def test_every_backend_contract(name: str, request: pytest.FixtureRequest) -> None:
    spec = offline_spec(name, request)
    pose = create_pose(spec)
    assert isinstance(pose, PoseEstimator)
    assert skeleton_format_for(spec) == pose.skeleton_format  # what a manifest records, without the model
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (160, 64, 3), np.uint8), rng.integers(0, 255, (90, 120, 3), np.uint8)]
    out = pose.estimate(crops)
    assert out.shape == (2, 17, 3) and out.dtype == np.float32
    # each crop's row block is either all NaN (no person) or fully finite
    for block in out:
        assert np.isnan(block).all() or np.isfinite(block).all()
    assert pose.estimate([]).shape == (0, 17, 3)
    d = pose.describe()
    assert d["kind"] == pose.name and d["keypoints"] == "coco17"
    # 3D back-ends also return their own joints, in the format they declare
    kps, world = pose.estimate_with_world(crops)
    assert kps.shape == (2, 17, 3) and d["skeleton_format"] == pose.skeleton_format in SKELETON_FORMATS
    assert (world is None) == (pose.skeleton_format == H36M_2D)
    if world is not None:
        assert world.shape == (2, 17, 3) and world.dtype == np.float32


# -- MoveNet -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def movenet(movenet_path: Path) -> PoseEstimator:
    return create_pose(f"movenet:{movenet_path}")


def test_movenet_default_name_resolves_from_weights_dir(movenet_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    monkeypatch.setenv("REID_WEIGHTS_DIR", str(movenet_path.parent))
    pose = create_pose("movenet")
    assert pose.weights_file() == movenet_path
    assert len(pose.describe()["weights"]) == 64
    monkeypatch.setenv("REID_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match="offline"):
        create_pose("movenet")


def anatomical(kps: np.ndarray) -> np.ndarray:
    """Per frame: head above pelvis, ankles below knees (image y grows downwards)."""
    h = coco_to_h36m(kps)
    y = h[..., 1]
    return (y[:, 10] < y[:, 0]) & (y[:, 3] > y[:, 2]) & (y[:, 6] > y[:, 5])


def test_movenet_whole_frames_single_person(movenet: PoseEstimator, videos_dir: Path) -> None:
    frames = read_frames(videos_dir / "tfjs_pose_1.mp4", step=2)
    kps = movenet.estimate(frames)
    assert kps.shape == (len(frames), 17, 3)
    assert np.isfinite(kps).all()  # a person in every frame
    assert anatomical(kps).mean() >= 0.9
    h, w = frames[0].shape[:2]
    assert (kps[..., 0] >= 0).all() and (kps[..., 0] <= w).all()
    assert (kps[..., 1] >= 0).all() and (kps[..., 1] <= h).all()


def test_movenet_squats_pelvis_oscillates(movenet: PoseEstimator, videos_dir: Path) -> None:
    frames = read_frames(videos_dir / "tfjs_pose_squats.mp4", step=2)
    kps = movenet.estimate(frames)
    assert anatomical(kps).mean() >= 0.9
    h36m = coco_to_h36m(kps)
    pelvis_y = h36m[:, 0, 1]
    assert np.isfinite(pelvis_y).all()
    span = pelvis_y.max() - pelvis_y.min()
    assert span > 0.4 * body_scale(h36m)  # large relative to the torso
    # count down/up swings with hysteresis: at least two full squats
    lo, hi = pelvis_y.min() + 0.25 * span, pelvis_y.max() - 0.25 * span
    state, swings = None, 0
    for y in pelvis_y:
        new = "down" if y > hi else "up" if y < lo else state
        swings += state is not None and new != state
        state = new
    assert swings >= 4


def test_movenet_person_box_crops_map_back_to_frame(movenet: PoseEstimator, videos_dir: Path) -> None:
    frames = read_frames(videos_dir / "tfjs_pose_squats.mp4", step=8)
    errors = []
    for frame in frames:
        full = movenet.estimate([frame])[0]
        good = full[:, 2] > 0.3
        (x1, y1), (x2, y2) = full[good, :2].min(0), full[good, :2].max(0)
        m = 0.2 * (y2 - y1)
        bx, by = int(max(0, x1 - m)), int(max(0, y1 - m))
        crop = frame[by : int(min(frame.shape[0], y2 + m)), bx : int(min(frame.shape[1], x2 + m))]
        assert crop.shape[0] != crop.shape[1]  # a tall crop: exercises the square padding
        in_crop = movenet.estimate([crop])[0]
        assert in_crop[:, 0].max() <= crop.shape[1] * 1.05 and in_crop[:, 1].max() <= crop.shape[0] * 1.05
        both = good & (in_crop[:, 2] > 0.3)
        err = np.linalg.norm(in_crop[both, :2] + [bx, by] - full[both, :2], axis=1)
        errors.append(np.median(err) / body_scale(coco_to_h36m(full[None])))
    assert np.median(errors) < 0.25  # same joints, in crop pixels, within a quarter torso


def test_movenet_empty_crop_is_nan(movenet: PoseEstimator) -> None:
    out = movenet.estimate([np.zeros((200, 100, 3), np.uint8)])
    assert np.isnan(out).all()


# -- YOLO-pose ------------------------------------------------------------------------------------


def test_yolo_pose_random_weights_store_missing_not_zeros(random_yolo_pose: Path) -> None:
    import torch

    pose = create_pose(f"yolo-pose:{random_yolo_pose}")
    assert pose.uses_detector_keypoints is True
    threads = torch.get_num_threads()
    rng = np.random.default_rng(1)
    crops = [rng.integers(0, 255, (128 + 16 * i, 64, 3), np.uint8) for i in range(5)]
    out = pose.estimate(crops)
    assert out.shape == (5, 17, 3)
    assert np.isnan(out).all()  # random weights find nobody: stored as missing, never zeros
    assert torch.get_num_threads() == threads  # ultralytics' predictor does not leak its setting


def test_yolo_pose_offline_hub_name_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REID_OFFLINE", "1")
    monkeypatch.setenv("REID_WEIGHTS_DIR", str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match="yolo-pose:/path/to/yolo11n-pose.pt"):
        create_pose("yolo-pose")


def test_best_detection_is_the_one_filling_the_crop() -> None:
    iou = _box_iou_with_frame(np.array([[0, 0, 100, 200], [0, 0, 50, 200], [200, 200, 300, 300]],
                                       np.float32), 100, 200)
    np.testing.assert_allclose(iou, [1.0, 0.5, 0.0], atol=1e-6)


def test_yolo_pose_refuses_a_detection_model(tmp_path: Path) -> None:
    from csip_reid.core.ultralytics_env import import_ultralytics

    path = tmp_path / "yolo11n-random.pt"
    import_ultralytics().YOLO("yolo11n.yaml").save(str(path))
    pose = create_pose(f"yolo-pose:{path}")  # the model loads lazily, on first use
    with pytest.raises(WeightsNotFoundError, match="not a pose model"):
        pose.estimate([np.zeros((64, 32, 3), np.uint8)])
