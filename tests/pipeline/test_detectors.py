"""Detector back-ends: YOLOX ONNX on real frames, ultralytics with random weights built offline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from csip_reid.core.detections import Detections
from csip_reid.core.errors import ConfigError, WeightsNotFoundError
from csip_reid.pipeline.detect import DETECTORS, create_detector
from csip_reid.pipeline.detect.ultralytics import UltralyticsDetector
from csip_reid.pipeline.detect.yolox import YoloxDetector, is_yolox_onnx


@pytest.fixture(scope="module")
def yolox(yolox_path: Path) -> YoloxDetector:
    det = create_detector(f"yolox:{yolox_path}")
    assert isinstance(det, YoloxDetector)
    return det


@pytest.fixture
def backend_spec(request: pytest.FixtureRequest) -> str:
    """A working spec for each registered detector back-end (offline test models)."""
    name = request.param
    if name == "yolox":
        return f"yolox:{request.getfixturevalue('yolox_path')}"
    if name == "ultralytics":
        return f"ultralytics:{request.getfixturevalue('yolo_det_weights')}"
    raise AssertionError(f"no test model for detector back-end {name!r}: add one here")


@pytest.mark.parametrize("backend_spec", DETECTORS.names(), indirect=True)
def test_every_backend_contract(backend_spec: str, intel_frames: dict[int, np.ndarray]) -> None:
    det = create_detector(backend_spec)
    frames = [intel_frames[0], intel_frames[300], intel_frames[100]]
    out = det.detect(frames)
    assert len(out) == 3 and all(isinstance(d, Detections) for d in out)
    for d in out:
        assert d.xyxy.dtype == np.float32 and d.xyxy.shape == (len(d), 4)
        assert d.conf.dtype == np.float32 and d.conf.shape == (len(d),)
        assert np.all(np.diff(d.conf) <= 0), "detections are sorted best first"
        assert np.all(d.xyxy[:, 2] >= d.xyxy[:, 0]) and np.all(d.xyxy[:, 3] >= d.xyxy[:, 1])
        assert np.all(d.xyxy >= 0) and np.all(d.xyxy[:, [0, 2]] <= 768) and np.all(d.xyxy[:, [1, 3]] <= 432)
        assert (d.keypoints is not None) == det.has_keypoints
    assert det.detect([]) == []
    assert det.batch_size >= 1 and det.name == backend_spec.split(":")[0]
    json.dumps(det.describe())


# -- YOLOX -----------------------------------------------------------------------------------
@pytest.mark.parametrize("index", [100, 300])
def test_yolox_finds_the_person(
    yolox: YoloxDetector, intel_frames: dict[int, np.ndarray], index: int
) -> None:
    (d,) = yolox.detect([intel_frames[index]])
    assert len(d) >= 1 and d.conf[0] > 0.5
    x1, y1, x2, y2 = d.xyxy[0]
    assert y2 - y1 > 0.6 * 432  # a standing person filling most of the frame height
    assert 1.5 < (y2 - y1) / (x2 - x1) < 4.0  # upright box


def test_yolox_finds_nobody_on_empty_frames(
    yolox: YoloxDetector, intel_frames: dict[int, np.ndarray]
) -> None:
    black = np.zeros((432, 768, 3), np.uint8)
    out = yolox.detect([black, intel_frames[0]])
    assert [len(d) for d in out] == [0, 0]


def test_yolox_letterbox_maps_boxes_back(yolox: YoloxDetector, intel_frames: dict[int, np.ndarray]) -> None:
    """The same person pasted into a larger canvas is found at the shifted position."""
    frame = intel_frames[300]
    (ref,) = yolox.detect([frame])
    canvas = np.full((600, 1100, 3), 0, np.uint8)
    canvas[100:532, 200:968] = frame
    (moved,) = yolox.detect([canvas])
    assert len(moved) >= 1
    np.testing.assert_allclose(moved.xyxy[0], ref.xyxy[0] + [200, 100, 200, 100], atol=25)


def test_bare_onnx_spec_rule(yolox_path: Path, osnet_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_yolox_onnx(yolox_path)
    assert not is_yolox_onnx(osnet_path)  # a ReID model: output (1, 512)
    assert isinstance(create_detector(str(yolox_path)), YoloxDetector)
    monkeypatch.setenv("REID_WEIGHTS_DIR", str(yolox_path.parent))
    assert isinstance(create_detector("yolox_nano"), YoloxDetector)  # registered name, resolved offline
    assert isinstance(create_detector("yolox"), YoloxDetector)  # default weights of the back-end


# -- ultralytics -------------------------------------------------------------------------------
def test_ultralytics_random_model_batched(
    yolo_det_weights: Path, intel_frames: dict[int, np.ndarray]
) -> None:
    det = create_detector(str(yolo_det_weights), batch_size=2)  # bare .pt → ultralytics
    assert isinstance(det, UltralyticsDetector) and det.task == "detect" and not det.has_keypoints
    out = det.detect([intel_frames[i] for i in (0, 100, 210, 300)])
    assert len(out) == 4
    assert all(len(d) == 0 and d.keypoints is None for d in out)  # random weights find nobody


def test_ultralytics_pose_keypoints_are_paired(
    yolo_pose_weights: Path, intel_frames: dict[int, np.ndarray]
) -> None:
    from ultralytics import YOLO

    det = create_detector(f"ultralytics:{yolo_pose_weights}", conf=1e-6, max_det=50)
    assert det.has_keypoints and det.task == "pose"
    frames = [intel_frames[100], intel_frames[300]]
    out = det.detect(frames)
    raw = YOLO(str(yolo_pose_weights)).predict(frames, conf=1e-6, max_det=50, classes=[0], verbose=False)
    for d, r in zip(out, raw, strict=True):
        # random weights give near-zero scores: a tiny threshold still yields rows to check
        assert len(d) > 0 and d.keypoints.shape == (len(d), 17, 3) and d.keypoints.dtype == np.float32
        boxes = r.boxes.xyxy.numpy()
        kps = r.keypoints.data.numpy()
        for box, kp in zip(d.xyxy, d.keypoints, strict=True):
            j = int(np.argmin(np.abs(boxes - box).sum(1)))
            np.testing.assert_allclose(boxes[j], box, atol=1e-3)
            np.testing.assert_allclose(kps[j], kp, atol=1e-3)  # each box keeps its own keypoints


def test_detect_restores_torch_threads(yolo_det_weights: Path, intel_frames: dict[int, np.ndarray]) -> None:
    from ultralytics.utils import NUM_THREADS

    before = torch.get_num_threads()
    wanted = NUM_THREADS + 1  # differs from what an ultralytics predictor sets
    torch.set_num_threads(wanted)
    try:
        det = create_detector(f"ultralytics:{yolo_det_weights}")
        det.detect([intel_frames[100]])  # first call builds the predictor
        assert torch.get_num_threads() == wanted
        det.detect([intel_frames[300]])
        assert torch.get_num_threads() == wanted
    finally:
        torch.set_num_threads(before)


def test_offline_hub_name_fails_before_ultralytics(monkeypatch: pytest.MonkeyPatch) -> None:
    import ultralytics

    def no_call(*a, **k):
        raise AssertionError("ultralytics must not be asked to download offline")

    monkeypatch.setenv("REID_OFFLINE", "1")
    monkeypatch.setattr(ultralytics, "YOLO", no_call)
    for spec in ("yolo11n.pt", "ultralytics:yolo11n.pt", "ultralytics"):
        with pytest.raises(WeightsNotFoundError, match=r"offline.*REID_WEIGHTS_DIR"):
            create_detector(spec)


def test_download_failure_becomes_weights_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import ultralytics

    from csip_reid.pipeline.detect import ultralytics as detectors

    asked = []

    def fail(source, *a, **k):
        asked.append(Path(source))
        raise ConnectionError("Download failure for https://github.com/.../yolo11n.pt")

    monkeypatch.setenv("REID_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(detectors, "is_offline", lambda: False)
    monkeypatch.setattr(ultralytics, "YOLO", fail)
    with pytest.raises(WeightsNotFoundError, match="yolo11n.pt.*Download failure.*REID_WEIGHTS_DIR"):
        create_detector("ultralytics:yolo11n.pt")
    assert asked == [tmp_path / "weights" / "yolo11n.pt"]  # downloads go to the cache, not the cwd


def test_unreadable_weights_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.pt"
    bad.write_text("not a checkpoint")
    with pytest.raises(WeightsNotFoundError, match="broken.pt"):
        create_detector(f"ultralytics:{bad}")


def test_unsuitable_model_and_missing_file() -> None:
    with pytest.raises(ConfigError, match="yolo11n-cls"):
        create_detector("ultralytics:yolo11n-cls.yaml")
    with pytest.raises(WeightsNotFoundError):
        create_detector("no_such_model.onnx")


def test_onnx_session_shares_the_cpu(yolox_path):
    """ONNX sessions use torch's thread count and sleeping (not spinning) idle threads."""
    import torch

    from csip_reid.core.onnx import onnx_session

    sess = onnx_session(yolox_path)
    opts = sess.get_session_options()
    assert opts.intra_op_num_threads == torch.get_num_threads()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert onnx_session(yolox_path, threads=1).get_session_options().intra_op_num_threads == 1


def test_package_import_sets_passive_omp_wait():
    """Importing csip_reid makes idle OpenMP threads sleep, unless the user chose a policy."""
    import os
    import subprocess
    import sys

    code = "import os, csip_reid; print(os.environ.get('OMP_WAIT_POLICY'))"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "PASSIVE"
    out = subprocess.run([sys.executable, "-c", code], env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ACTIVE"
