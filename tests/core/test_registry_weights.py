"""Registry, weights resolution, Tracklet and pipeline settings."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from csip_reid.core.errors import ConfigError, WeightsNotFoundError
from csip_reid.core.registry import Registry, split_spec
from csip_reid.core.tracklet import Tracklet
from csip_reid.core.weights import file_sha256, find_local, resolve_weights
from csip_reid.pipeline.settings import PipelineSettings


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("yolox:/a/b.onnx", ("yolox", "/a/b.onnx")),
        ("bytetrack", ("bytetrack", None)),
        ("ONNX:osnet", ("onnx", "osnet")),
        ("csip:C:/w/x.pt", ("csip", "C:/w/x.pt")),
        ("onnx:", ("onnx", None)),
    ],
)
def test_split_spec(spec, expected):
    assert split_spec(spec) == expected


def test_registry_create_and_unknown():
    reg: Registry = Registry("thing")

    @reg.register("echo")
    def _echo(arg, **kw):
        return arg, kw

    assert reg.create("echo:x", a=1) == ("x", {"a": 1})
    assert reg.names() == ["echo"]
    with pytest.raises(ConfigError, match="unknown thing 'nope'; choose one of: echo"):
        reg.create("nope")


def test_resolve_weights_local_and_dirs(tmp_path, monkeypatch):
    f = tmp_path / "w" / "model.onnx"
    f.parent.mkdir()
    f.write_bytes(b"abc")
    assert resolve_weights(str(f)) == f
    monkeypatch.setenv("REID_WEIGHTS_DIR", str(f.parent))
    assert find_local("model.onnx") == f
    assert file_sha256(f) == hashlib.sha256(b"abc").hexdigest()


def test_resolve_weights_offline_named(monkeypatch, tmp_path):
    monkeypatch.setenv("REID_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("REID_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("REID_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match="offline"):
        resolve_weights("osnet_x0_25_msmt17")
    with pytest.raises(WeightsNotFoundError, match="not found"):
        resolve_weights("no_such_weights.onnx")


def test_named_weights_found_in_weights_dir(monkeypatch, models_dir):
    monkeypatch.setenv("REID_WEIGHTS_DIR", str(models_dir))
    p = resolve_weights("osnet_x0_25_msmt17")
    assert p.name == "osnet_x0_25_msmt17.onnx"
    assert file_sha256(p) == "bb2267b23a64675f67bffc3177b7319e3a08de56041d153562c0206699634bce"


def test_tracklet_validates_and_summarises():
    t = Tracklet("v.mp4", "cam1", 3, frames=[10, 11, 13], timestamps=[1.0, 1.1, 1.3],
                 boxes=np.ones((3, 4)), sample_frames=[10, 13], crops=[np.zeros((4, 2, 3), np.uint8)] * 2)
    s = t.summary()
    assert (s["start_frame"], s["end_frame"], s["num_frames"], s["num_samples"]) == (10, 13, 3, 2)
    assert s["end_s"] == pytest.approx(1.3)
    with pytest.raises(ValueError, match="disagree"):
        Tracklet("v", "c", 1, frames=[1, 2], timestamps=[0.1], boxes=np.ones((2, 4)))
    with pytest.raises(ValueError, match="crops"):
        Tracklet("v", "c", 1, frames=[1], timestamps=[0.1], boxes=np.ones((1, 4)), sample_frames=[1, 2],
                 crops=[np.zeros((2, 2, 3), np.uint8)])


def test_settings_precedence(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("pipeline:\n  stride: 3\n  tracker: botsort\n")
    s = PipelineSettings.load(cfg, stride=2, detector=None)
    assert (s.stride, s.tracker) == (2, "botsort")
    bad = tmp_path / "bad.yaml"
    bad.write_text("pipeline:\n  strid: 3\n")
    with pytest.raises(ConfigError, match="unknown pipeline setting"):
        PipelineSettings.load(bad)
    with pytest.raises(ConfigError, match="not found"):
        PipelineSettings.load(tmp_path / "missing.yaml")


def test_camera_names(tmp_path):
    from csip_reid.pipeline.indexer import camera_for

    v = tmp_path / "cam3" / "2024-05-01_0800.mp4"
    assert camera_for(v) == "2024-05-01_0800"
    assert camera_for(v, camera_from="parent") == "cam3"
    assert camera_for(v, camera="lobby", camera_from="parent") == "lobby"
    with pytest.raises(ConfigError, match="camera_from"):
        camera_for(v, camera_from="grandparent")
