"""BlazePose back-ends on real video: COCO mapping, agreement with MoveNet, the 3D world format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from csip_reid.core.errors import WeightsNotFoundError
from csip_reid.core.skeleton import H36M_2D, H36M_3D_WORLD, SKELETON_FORMATS
from csip_reid.core.tracklet import Tracklet
from csip_reid.data.skeleton_io import coordinate_channels, read_skeleton_json, write_skeleton_json
from csip_reid.pipeline.pose import PoseEstimator, attach_skeletons, create_pose, skeleton_format_for
from csip_reid.pipeline.pose.quality import bone_cv, head_above_pelvis, lr_symmetry, pck
from csip_reid.pipeline.pose.skeleton import coco_to_h36m

REPO = Path(__file__).resolve().parents[2]
VIDEOS = ("tfjs_pose_1.mp4", "tfjs_pose_squats.mp4", "mmaction2_demo_skeleton.mp4")


def _weights(models_dir: Path, variant: str) -> Path:
    p = models_dir / f"pose_landmark_{variant}.tflite"
    if not p.is_file():
        pytest.skip(f"{p.name} missing")
    return p


@pytest.fixture(scope="module")
def blaze3d(models_dir: Path) -> PoseEstimator:
    return create_pose(f"blazepose-3d:{_weights(models_dir, 'full')}", num_threads=1)


@pytest.fixture(scope="module")
def movenet(movenet_path: Path) -> PoseEstimator:
    return create_pose(f"movenet:{movenet_path}", num_threads=1)


_CROPS: dict[tuple[str, int], list[np.ndarray]] = {}


def person_crops(video: Path, n: int) -> list[np.ndarray]:
    """Person-box crops (boxes from YOLOX-nano) of ``n`` evenly spread frames of ``video``."""
    if (video.name, n) not in _CROPS:
        _CROPS[video.name, n] = _detect_people(video, n)
    return _CROPS[video.name, n]


def _detect_people(video: Path, n: int) -> list[np.ndarray]:
    from csip_reid.pipeline.detect import create_detector

    weights = video.parents[1] / "models" / "yolox_nano.onnx"
    if not weights.is_file():
        pytest.skip("yolox_nano.onnx missing")
    det = create_detector(f"yolox:{weights}")
    cap = cv2.VideoCapture(str(video))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    crops = []
    for i in np.linspace(0, total - 1, n).astype(int):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(i))
        ok, frame = cap.read()
        assert ok
        d = det.detect([frame])[0]
        for x1, y1, x2, y2 in d.xyxy[d.conf > 0.5].astype(int):
            if y2 - y1 > 0.3 * frame.shape[0]:  # the full-body people, not background passers-by
                crops.append(frame[max(0, y1):y2, max(0, x1):x2])
    cap.release()
    assert crops, f"no person found in {video.name}"
    return crops


@pytest.mark.parametrize("video", VIDEOS)
def test_blazepose_3d_on_person_crops_agrees_with_movenet_and_is_anatomical(
        video: str, videos_dir: Path, blaze3d: PoseEstimator, movenet: PoseEstimator) -> None:
    crops = person_crops(videos_dir / video, 6)
    kps, world = blaze3d.estimate_with_world(crops)
    ref = movenet.estimate(crops)
    assert kps.shape == world.shape == (len(crops), 17, 3) and world.dtype == np.float32
    assert np.isfinite(kps[:, :, 0]).all(), "a person in every full-body crop"
    sides = np.array([max(c.shape[:2]) for c in crops], np.float32)
    assert pck(kps, ref, sides, 0.2) >= 0.9
    assert (kps[..., 0] > -0.1 * sides[:, None]).all() and (kps[..., 0] < 1.1 * sides[:, None]).all()
    h2d = coco_to_h36m(kps)
    assert head_above_pelvis(h2d).mean() >= 0.95
    # the world skeleton: root-centred metres, y down, a human-sized body
    np.testing.assert_allclose(world[:, 0], 0.0, atol=1e-6)
    assert head_above_pelvis(world).mean() >= 0.95
    torso = np.linalg.norm(world[:, 8] - world[:, 0], axis=-1)
    assert 0.3 < np.median(torso) < 0.8
    assert np.median(lr_symmetry(world)) <= 0.15  # left and right limbs about equally long


def test_blazepose_3d_bones_more_stable_than_2d_on_the_squats(videos_dir: Path, blaze3d: PoseEstimator) -> None:
    crops = person_crops(videos_dir / "tfjs_pose_squats.mp4", 10)
    kps, world = blaze3d.estimate_with_world(crops)
    cv3d = np.median(bone_cv(world))
    cv2d = np.median(bone_cv(coco_to_h36m(kps), dims=2))
    assert cv3d < 0.12  # a metric bone keeps its length while the person squats
    assert cv3d < cv2d  # the 2D projection of the same bones does not


def test_keypoints_follow_the_crop(videos_dir: Path, blaze3d: PoseEstimator) -> None:
    """A crop shifted inside the frame gives keypoints shifted by the same amount."""
    crop = person_crops(videos_dir / "tfjs_pose_squats.mp4", 1)[0]
    h, w = crop.shape[:2]
    padded = cv2.copyMakeBorder(crop, 0, 0, w // 4, 0, cv2.BORDER_REPLICATE)  # a wider box, person offset
    a, b = blaze3d.estimate([crop, padded])
    err = np.linalg.norm(b[:, :2] - [w // 4, 0] - a[:, :2], axis=1)
    assert np.median(err) < 0.05 * h


def test_empty_and_blank_crops_hold_no_person(blaze3d: PoseEstimator) -> None:
    kps, world = blaze3d.estimate_with_world([np.zeros((200, 100, 3), np.uint8), np.zeros((0, 5, 3), np.uint8)])
    assert np.isnan(kps).all() and np.isnan(world).all()
    kps, world = blaze3d.estimate_with_world([])
    assert kps.shape == world.shape == (0, 17, 3)


def test_variants_resolve_by_name_and_wrong_model_is_refused(models_dir: Path, movenet_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _weights(models_dir, "heavy")
    monkeypatch.setenv("REID_WEIGHTS_DIR", str(models_dir))
    heavy = create_pose("blazepose:heavy", num_threads=1)
    assert heavy.weights_file().name == "pose_landmark_heavy.tflite"
    assert heavy.skeleton_format == H36M_2D and heavy.estimate_with_world([])[1] is None
    d = create_pose("blazepose").describe()
    assert d["spec"] == "blazepose:full" and len(d["weights"]) == 64 and d["skeleton_format"] == H36M_2D
    with pytest.raises(WeightsNotFoundError, match="not a BlazePose landmark model"):
        create_pose(f"blazepose:{movenet_path}")


def test_skeleton_format_for_specs() -> None:
    assert skeleton_format_for("none") is None and skeleton_format_for(None) is None
    assert skeleton_format_for("movenet") == skeleton_format_for("blazepose:heavy") == H36M_2D
    assert skeleton_format_for("blazepose-3d:full") == H36M_3D_WORLD and H36M_3D_WORLD in SKELETON_FORMATS


def test_attach_skeletons_stores_world_joints(videos_dir: Path, blaze3d: PoseEstimator, tmp_path: Path) -> None:
    crops = person_crops(videos_dir / "tfjs_pose_1.mp4", 4)
    n = len(crops)
    t = Tracklet(video="v.mp4", camera="c", track_id=1, frames=np.arange(n), timestamps=np.arange(n) / 25.0,
                 boxes=np.zeros((n, 4), np.float32), sample_frames=np.arange(n), crops=crops)
    assert attach_skeletons([t], blaze3d) == len(crops)
    assert t.skeleton_format == H36M_3D_WORLD and t.skeleton.shape == (len(crops), 17, 3)
    assert t.keypoints.shape == (len(crops), 17, 3) and np.isfinite(t.keypoints).all()
    _, world = blaze3d.estimate_with_world(crops)
    np.testing.assert_allclose(t.skeleton, world)  # metres as the model gave them, not rescaled
    # through the per-frame JSON of datasets: three coordinates, the format kept
    assert coordinate_channels(H36M_3D_WORLD) == 3
    write_skeleton_json(tmp_path / "f.json", t.skeleton[0], t.skeleton_format)
    back, fmt = read_skeleton_json(tmp_path / "f.json")
    assert fmt == H36M_3D_WORLD
    np.testing.assert_allclose(back, t.skeleton[0], atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("spec,fmt", [("blazepose:full", H36M_2D), ("blazepose-3d:full", H36M_3D_WORLD)])
def test_reid_index_with_blazepose_records_its_format(spec: str, fmt: str, videos_dir: Path, models_dir: Path,
                                                      tmp_path: Path) -> None:
    _weights(models_dir, "full")
    env = {**os.environ, "REID_WEIGHTS_DIR": str(models_dir), "REID_OFFLINE": "1", "YOLO_OFFLINE": "1",
           "PYTHONPATH": str(REPO)}

    def reid(*args: str) -> subprocess.CompletedProcess:
        p = subprocess.run([sys.executable, "-m", "csip_reid", *args], capture_output=True, text=True, env=env,
                           timeout=600)
        assert p.returncode == 0, p.stderr[-2000:]
        return p

    gallery = tmp_path / "g"
    reid("index", str(videos_dir / "tfjs_pose_1.mp4"), "--gallery", str(gallery), "--detector", "yolox:yolox_nano",
         "--embedder", "onnx:osnet_x0_25_msmt17", "--pose", spec, "-q")
    info = json.loads(reid("gallery", "info", "--gallery", str(gallery), "--json").stdout)
    assert info["num_tracklets"] >= 1 and info["skeleton_format"] == fmt
    assert info["embedder"]["pipeline"]["pose"] == spec
    if fmt == H36M_2D:
        return  # the 2D path is MoveNet's (tests/cli/test_export_pose.py); the 3D one is new
    # a query rebuilds the same pipeline (BlazePose included) from the manifest
    hits = json.loads(reid("query", str(videos_dir / "tfjs_pose_1.mp4"), "--gallery", str(gallery), "--json",
                           "-q").stdout)["hits"]
    assert hits and hits[0]["video"].endswith("tfjs_pose_1.mp4") and hits[0]["score"] > 0.9
    out = tmp_path / "export"
    reid("export-dataset", "--gallery", str(gallery), "--out", str(out))
    files = sorted(out.rglob("*.json"))
    files = [f for f in files if f.name != "dataset.json"]
    assert files
    sks = [read_skeleton_json(f) for f in files]
    assert {fmt for _, fmt in sks} == {H36M_3D_WORLD}
    sk = np.stack([s for s, _ in sks])
    assert np.isfinite(sk).all(-1).mean() > 0.9 and head_above_pelvis(sk).mean() >= 0.95


def test_skeletonize_dataset_writes_world_format(mini_mars: Path, models_dir: Path, tmp_path: Path) -> None:
    from csip_reid.pipeline.skeletonize import skeletonize_dataset

    s = skeletonize_dataset("minimars", mini_mars, pose=f"blazepose-3d:{_weights(models_dir, 'full')}", limit=1,
                            progress=False, out=tmp_path / "sk")
    assert s["format"] == H36M_3D_WORLD and s["tracklets_written"] == 1 and s["frames_written"] > 0
    files = sorted((tmp_path / "sk").rglob("*.json"))
    assert len(files) == s["frames_written"]
    sk, fmt = zip(*(read_skeleton_json(f) for f in files))
    assert set(fmt) == {H36M_3D_WORLD}
    found = np.stack(sk)[np.isfinite(np.stack(sk)[:, 0, 0])]
    assert len(found) >= 0.5 * len(files)  # small, blurry MARS crops: most still hold a person
    np.testing.assert_allclose(found[:, 0], 0.0, atol=1e-5)
    assert head_above_pelvis(found).mean() >= 0.9


def test_detector_roi_follows_a_rotated_person(models_dir: Path, videos_dir: Path, blaze3d: PoseEstimator) -> None:
    """``+detector`` aligns the ROI like MediaPipe: a person turned 90 degrees is still read."""
    if not (models_dir / "pose_detection.tflite").is_file():
        pytest.skip("pose_detection.tflite missing")
    aligned = create_pose(f"blazepose-3d:{_weights(models_dir, 'full')}+detector", num_threads=1)
    assert aligned.describe()["roi"] == "detector" and blaze3d.describe()["roi"] == "box"
    crops = person_crops(videos_dir / "mmaction2_demo_skeleton.mp4", 3) + person_crops(
        videos_dir / "tfjs_pose_squats.mp4", 3)
    upright, _ = blaze3d.estimate_with_world(crops)
    turned = [cv2.rotate(c, cv2.ROTATE_90_CLOCKWISE) for c in crops]
    sides = np.array([max(c.shape[:2]) for c in crops], np.float32)
    results = {}
    for name, pose in (("box", blaze3d), ("detector", aligned)):
        kps, world = pose.estimate_with_world(turned)
        back = kps.copy()  # rotated (x', y') = (h - 1 - y, x)  ->  x = y', y = h - 1 - x'
        back[..., 0] = kps[..., 1]
        back[..., 1] = np.array([c.shape[0] - 1 for c in crops], np.float32)[:, None] - kps[..., 0]
        results[name] = pck(back, upright, sides, 0.1)
    assert results["detector"] >= 0.9 > results["box"] + 0.2
    # world joints are rotated back into camera axes: the head lies to the right of the pelvis
    head = world[np.isfinite(world[:, 10, 0]), 10]
    assert len(head) == len(crops) and (head[:, 0] > 0.3).all() and (np.abs(head[:, 1]) < 0.3).all()


def test_skeleton_embedder_trained_on_world_format_needs_blazepose_3d(
        models_dir: Path, videos_dir: Path, blaze3d: PoseEstimator, tmp_path: Path) -> None:
    import torch

    from csip_reid.core.errors import SkeletonFormatError
    from csip_reid.models import create_model
    from csip_reid.models.checkpoint import save_checkpoint
    from csip_reid.pipeline.indexer import Pipeline
    from csip_reid.pipeline.settings import PipelineSettings

    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp_path / "stage1.pt", create_model("csip_tiny", num_classes=4, num_cameras=1), stage=1,
                           epoch=1, stage_complete=True, skeleton_format=H36M_3D_WORLD)
    det = f"yolox:{models_dir / 'yolox_nano.onnx'}"
    pipe = Pipeline(PipelineSettings(detector=det, pose=f"blazepose-3d:{_weights(models_dir, 'full')}",
                                     embedder=f"skeleton:{ckpt}"))
    assert pipe.skeleton_format == H36M_3D_WORLD and pipe.skeleton_space
    with pytest.raises(SkeletonFormatError, match="h36m17-3d-world"):
        Pipeline(PipelineSettings(detector=det, pose=f"blazepose:{_weights(models_dir, 'full')}",
                                  embedder=f"skeleton:{ckpt}"))
    _, world = blaze3d.estimate_with_world(person_crops(videos_dir / "tfjs_pose_squats.mp4", 10))
    vec = pipe.embedder.embed_crops([[]], skeletons=[world])
    assert vec.shape == (1, pipe.embedder.dim) and np.isclose(np.linalg.norm(vec), 1.0, atol=1e-4)
