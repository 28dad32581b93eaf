"""Every registered back-end, timm-style: one parametrised test per registry entry.

Each entry is built offline (real weights from $REID_TEST_DATA, or random weights), and its
declared contract is checked: what it reads (preprocessing / input size), what it returns (shapes,
dtypes) and how the output is normalised. A back-end registered without a recipe here fails
``test_every_registered_backend_has_a_recipe``, so a new back-end cannot land untested. Pose
back-ends have the same kind of test in ``tests/pose/test_pose_backends.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from csip_reid.core.detections import Detections
from csip_reid.core.embedder import CropPreprocess, Embedder
from csip_reid.core.skeleton import H36M_2D
from csip_reid.pipeline import backends
from csip_reid.pipeline.detect import DETECTORS, Detector, create_detector
from csip_reid.pipeline.embed import EMBEDDERS, create_embedder
from csip_reid.tracking import TRACKERS, Tracker, create_tracker

DETECTOR_RECIPES = {"yolox": "offline", "ultralytics": "random"}
EMBEDDER_RECIPES = {"onnx": "offline", "openvino": "offline", "csip": "checkpoint", "skeleton": "checkpoint"}
TRACKER_RECIPES = {"bytetrack": {}, "botsort": {}}
COVERED_ELSEWHERE = {"pose": "tests/pose/test_pose_backends.py", "dataset": "tests/data/test_data_datasets.py",
                     "model": "tests/models/test_model_registry.py"}


@pytest.mark.parametrize("kind,recipes", [("detector", DETECTOR_RECIPES), ("embedder", EMBEDDER_RECIPES),
                                          ("tracker", TRACKER_RECIPES)])
def test_every_registered_backend_has_a_recipe(kind: str, recipes: dict) -> None:
    assert set(backends.names(kind)) == set(recipes), f"add a recipe for every {kind} to this test"


def test_other_kinds_are_tested_elsewhere() -> None:
    root = Path(__file__).resolve().parents[1]
    for kind, test_file in COVERED_ELSEWHERE.items():
        assert backends.names(kind) and (root.parent / test_file).is_file()


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (240, 320, 3), np.uint8) for _ in range(3)]


def _detector(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Detector:
    if name == "yolox":
        return create_detector(f"yolox:{request.getfixturevalue('yolox_path')}")
    from csip_reid.core.ultralytics_env import import_ultralytics

    weights = tmp_path / "yolo11n-random.pt"
    import_ultralytics().YOLO("yolo11n.yaml").save(str(weights))
    return create_detector(f"ultralytics:{weights}")


@pytest.mark.parametrize("name", DETECTORS.names())
def test_detector_contract(name: str, request: pytest.FixtureRequest, tmp_path: Path, frames) -> None:
    det = _detector(name, request, tmp_path)
    assert isinstance(det, Detector) and det.name == name and det.batch_size >= 1
    out = det.detect(frames)
    assert len(out) == len(frames) and det.detect([]) == []
    for d in out:
        assert isinstance(d, Detections) and d.xyxy.dtype == np.float32 and d.xyxy.shape == (len(d), 4)
        assert np.all(np.diff(d.conf) <= 0)  # best first
        assert np.all((d.xyxy[:, [0, 2]] >= 0) & (d.xyxy[:, [0, 2]] <= 320))  # clipped to the frame
        assert (d.keypoints is not None) == det.has_keypoints
    desc = det.describe()
    assert desc["kind"] == name and desc["weights"]
    assert ("input_hw" in desc) or ("imgsz" in desc)  # the input size it resizes frames to


@pytest.mark.parametrize("name", TRACKERS.names())
def test_tracker_contract(name: str) -> None:
    tracker = create_tracker(name, frame_rate=10, **TRACKER_RECIPES[name])
    assert isinstance(tracker, Tracker) and tracker.name == name and tracker.max_lost >= 1
    box = np.array([[10, 10, 50, 110], [200, 20, 240, 130]], np.float32)
    for f in range(4):
        kps = np.full((2, 17, 3), float(f), np.float32)
        out = tracker.update(Detections(box + f, np.array([0.9, 0.8]), kps))
    assert sorted(out.tracker_id.tolist()) == [1, 2]
    np.testing.assert_array_equal(out.keypoints, np.full((2, 17, 3), 3.0, np.float32))  # keypoints follow
    assert tracker.describe()["kind"] == name
    tracker.reset()
    assert tracker.update(Detections(box, np.array([0.9, 0.8]))).tracker_id.tolist() == [1, 2]  # ids restart


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from csip_reid.models import create_model
    from csip_reid.models.checkpoint import save_checkpoint

    torch.manual_seed(0)
    model = create_model("csip_tiny", num_classes=4, num_cameras=2)
    model.pfu.set_prototypes(torch.randn(4, 32), torch.randn(4, 32))
    return save_checkpoint(tmp_path_factory.mktemp("ck") / "best.pt", model, stage=2, epoch=1,
                           stage_complete=True, skeleton_format=H36M_2D)


def _embedder(name: str, request: pytest.FixtureRequest) -> Embedder:
    if name == "onnx":
        return create_embedder(f"onnx:{request.getfixturevalue('osnet_path')}")
    if name == "openvino":
        pytest.importorskip("openvino", reason="the openvino package is not installed")
        xml = request.getfixturevalue("models_dir") / "person-reidentification-retail-0277.xml"
        if not xml.is_file():
            pytest.skip(f"{xml.name} missing")
        return create_embedder(f"openvino:{xml}")
    return create_embedder(f"{name}:{request.getfixturevalue('checkpoint')}")


@pytest.mark.parametrize("name", EMBEDDERS.names())
def test_embedder_contract(name: str, request: pytest.FixtureRequest) -> None:
    emb = _embedder(name, request)
    assert isinstance(emb, Embedder) and emb.dim > 0
    assert isinstance(emb.preprocess, CropPreprocess)  # declared preprocessing
    batch = emb.preprocess([np.zeros((100, 40, 3), np.uint8)])
    assert batch.shape == (1, 3, emb.preprocess.height, emb.preprocess.width) and batch.dtype == np.float32
    rng = np.random.default_rng(1)
    crops = [[rng.integers(0, 255, (120, 50, 3), np.uint8) for _ in range(k)] for k in (1, 5)]
    skels = None
    if emb.needs_skeleton:
        skels = [rng.normal(0, 1, (k, 17, 3)).astype(np.float32) for k in (1, 5)]
    out = emb.embed_crops(crops, None, skels)
    assert out.shape == (2, emb.dim) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)  # L2-normalised
    d = emb.describe()
    assert d["dim"] == emb.dim and d["preprocess"] == emb.preprocess.to_dict() and d["weights"]
    assert emb.fingerprint() == _embedder(name, request).fingerprint()  # same weights, same vector space
