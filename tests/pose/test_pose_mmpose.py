"""RTMPose and the 3D lifter through mmpose (random weights, built offline)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from csip_reid.core.errors import CheckpointError, ConfigError, ReidError, WeightsNotFoundError
from csip_reid.core.skeleton import H36M_3D
from csip_reid.core.tracklet import Tracklet
from csip_reid.pipeline.pose import create_pose
from csip_reid.pipeline.pose.skeleton import attach_skeletons, coco_to_h36m

HAS_MMPOSE = importlib.util.find_spec("mmpose") is not None
needs_mmpose = pytest.mark.skipif(not HAS_MMPOSE, reason="mmpose not installed (scripts/install_mmpose.sh)")


def test_missing_mmpose_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mmcv", None)  # makes `import mmcv` fail
    with pytest.raises(ReidError, match="install_mmpose.sh"):
        create_pose("rtmpose-t:random")


@pytest.fixture(scope="module")
def person_crops(videos_dir: Path) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(videos_dir / "tfjs_pose_1.mp4"))
    crops = []
    for _ in range(3):
        ok, frame = cap.read()
        assert ok
        crops.append(frame[60:520, 150:430].copy())
    return crops


@pytest.fixture(scope="module")
def rtmpose_t():
    if not HAS_MMPOSE:
        pytest.skip("mmpose not installed (scripts/install_mmpose.sh)")
    return create_pose("rtmpose-t:random")


@pytest.mark.mmpose
@needs_mmpose
class TestRTMPose:
    def test_random_weights_run_on_crops(self, rtmpose_t, person_crops) -> None:
        out = rtmpose_t.estimate(person_crops)
        assert out.shape == (3, 17, 3) and out.dtype == np.float32
        assert np.isfinite(out).all()
        assert ((out[..., 2] >= 0) & (out[..., 2] <= 1)).all()
        assert rtmpose_t.describe()["random_weights"] is True

    def test_batch_matches_single_crops(self, rtmpose_t, person_crops) -> None:
        batch = rtmpose_t.estimate(person_crops[:2] + [person_crops[2][:200, :100]])
        single = np.concatenate([rtmpose_t.estimate([c]) for c in
                                 (person_crops[0], person_crops[1], person_crops[2][:200, :100])])
        np.testing.assert_allclose(batch, single, rtol=1e-4, atol=1e-3)
        # keypoints are in each crop's own pixels: RTMPose's input box is the crop widened to the
        # model's 192:256 aspect (100x200 -> 150x200) and padded 1.25x, i.e. x in [-43.75, 143.75] and
        # y in [-25, 225] for the 100x200 crop; random weights may put a joint anywhere in that box.
        x, y = batch[2, :, 0], batch[2, :, 1]
        assert x.min() >= -43.75 - 1 and x.max() <= 143.75 + 1
        assert y.min() >= -25 - 1 and y.max() <= 225 + 1

    def test_checkpoint_round_trip(self, rtmpose_t, person_crops, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
        import torch

        # An OpenMMLab-style checkpoint: state_dict + numpy objects in meta.
        meta = {"dataset_meta": dict(rtmpose_t.model.dataset_meta), "seed": np.int64(3)}
        ckpt = tmp_path / "rtm.pth"
        torch.save({"state_dict": rtmpose_t.model.state_dict(), "meta": meta}, ckpt)
        with pytest.raises(Exception):  # noqa: B017 - why the loader is explicit
            torch.load(ckpt)
        loaded = create_pose(f"rtmpose:rtmpose-t@{ckpt}")
        assert loaded.describe()["random_weights"] is False and loaded.describe()["weights"]
        np.testing.assert_allclose(loaded.estimate(person_crops), rtmpose_t.estimate(person_crops),
                                   rtol=1e-5, atol=1e-4)
        # the default checkpoint of a name is looked up by its official file name
        wdir = tmp_path / "weights"
        wdir.mkdir()
        shutil.copy(ckpt, wdir / "rtmpose-tiny_simcc-coco_pt-aic-coco_420e-256x192-e613ba3f_20230127.pth")
        monkeypatch.setenv("REID_WEIGHTS_DIR", str(wdir))
        assert create_pose("rtmpose-t").weights_file().parent == wdir

    def test_weights_errors(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("REID_OFFLINE", "1")
        monkeypatch.setenv("REID_WEIGHTS_DIR", str(tmp_path))
        with pytest.raises(WeightsNotFoundError, match="offline"):
            create_pose("rtmpose-s")
        bad = tmp_path / "bad.pth"
        bad.write_bytes(b"not a checkpoint")
        with pytest.raises(CheckpointError, match="cannot read checkpoint"):
            create_pose(f"rtmpose-t:{bad}")
        with pytest.raises(ConfigError, match="neither a file nor one of"):
            create_pose("rtmpose:no_such_config.py@random")

    def test_mmcv_ops_stand_in(self, rtmpose_t) -> None:
        ops = sys.modules["mmcv.ops"]
        assert not hasattr(ops, "__file__")  # dunder lookups fail normally
        from mmcv.ops import DeformConv2d

        with pytest.raises(ImportError, match="compiled ops"):
            DeformConv2d(3, 3, 3)


@pytest.mark.mmpose
@needs_mmpose
def test_lifter_random_weights(rtmpose_t, person_crops) -> None:
    from csip_reid.pipeline.pose.lifter import PoseLifter

    lifter = PoseLifter(checkpoint="random")
    h36m = coco_to_h36m(rtmpose_t.estimate(person_crops))
    h36m[1, 5] = np.nan  # a frame with a missing joint cannot be lifted
    out = lifter.lift(h36m, np.array([c.shape[1::-1] for c in person_crops]))
    assert out.shape == (3, 17, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out[[0, 2], 0], 0)  # root-centred
    assert np.isfinite(out[[0, 2]]).all() and np.isnan(out[1]).all()
    t = Tracklet("v", "c", 1, [0, 1, 2], [0.0, 0.1, 0.2], np.zeros((3, 4)), sample_frames=[0, 1, 2],
                 crops=list(person_crops))
    attach_skeletons([t], rtmpose_t, lifter=lifter, min_score=0.0)
    assert t.skeleton_format == H36M_3D and t.skeleton.shape == (3, 17, 3)
    with pytest.raises(ConfigError, match="unknown 3D lifter"):
        PoseLifter("motionbert", checkpoint="random")


@pytest.mark.mmpose
@needs_mmpose
@pytest.mark.slow
def test_install_script_is_idempotent() -> None:
    import subprocess

    script = Path(__file__).resolve().parents[2] / "scripts" / "install_mmpose.sh"
    run = subprocess.run(["bash", str(script)], env={**os.environ, "PYTHON": sys.executable},
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "nothing to do" in run.stdout and "mmpose 1." in run.stdout
