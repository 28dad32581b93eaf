"""Changing the default embedder does not change an existing gallery: a gallery made with
``onnx:osnet_x0_25_msmt17`` (the csip-reid 0.1 fixture) answers ``reid query`` with that model,
whatever today's default is."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "gallery_v0_1"


def test_query_uses_the_gallerys_embedder(models_dir: Path, videos_dir: Path, tmp_path: Path) -> None:
    if not (models_dir / "osnet_x0_25_msmt17.onnx").is_file() or not (models_dir / "yolox_nano.onnx").is_file():
        pytest.skip("OSNet x0.25 / YOLOX-Nano weights missing")
    gallery = tmp_path / "g"
    shutil.copytree(FIXTURE, gallery)
    stored = json.loads((gallery / "manifest.json").read_text())["embedder"]
    assert stored["spec"] == "onnx:osnet_x0_25_msmt17" and stored["dim"] == 512
    env = {**os.environ, "REID_WEIGHTS_DIR": str(models_dir), "REID_OFFLINE": "1", "YOLO_OFFLINE": "1",
           "REID_CACHE_DIR": str(tmp_path / "cache"), "YOLO_CONFIG_DIR": str(tmp_path / "ycfg")}
    p = subprocess.run([sys.executable, "-m", "csip_reid.cli", "query", str(videos_dir / "tfjs_pose_1.mp4"),
                        "--gallery", str(gallery), "--json", "--top-k", "2"],
                       capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    (result,) = out if isinstance(out, list) else [out]
    top = result["hits"][0]
    # the same person scores > 0.9 only when the query is embedded by the gallery's own 512-d model
    # (a vector of any other model is refused or lands elsewhere)
    assert Path(top["video"]).name == "tfjs_pose_1.mp4" and top["score"] > 0.9


def test_index_grows_an_old_gallery_with_its_own_pipeline(models_dir: Path, videos_dir: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`reid index` into the 0.1 gallery without --embedder/--config uses the pipeline it records
    (OSNet x0.25, full scan), not today's defaults, which it would refuse."""
    from tests.helpers.cli import gallery_info, run_reid

    if not (models_dir / "osnet_x0_25_msmt17.onnx").is_file() or not (models_dir / "yolox_nano.onnx").is_file():
        pytest.skip("OSNet x0.25 / YOLOX-Nano weights missing")
    gallery = tmp_path / "g"
    shutil.copytree(FIXTURE, gallery)
    for k, v in {"REID_WEIGHTS_DIR": str(models_dir), "REID_OFFLINE": "1", "YOLO_OFFLINE": "1"}.items():
        monkeypatch.setenv(k, v)
    before = gallery_info(gallery)
    p = run_reid("index", str(videos_dir / "tfjs_pose_squats.mp4"), "--gallery", str(gallery), "--json", "-q")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["indexed"] == 1
    after = gallery_info(gallery)
    assert after["embedder"]["spec"] == "onnx:osnet_x0_25_msmt17" and after["dim"] == 512
    assert after["num_videos"] == before["num_videos"] + 1
    stats = next(v for v in after["videos"] if v["path"].endswith("tfjs_pose_squats.mp4"))
    assert stats["tracklets"] >= 1
    # an explicit other embedder is still refused with the usual one-line error
    p = run_reid("index", str(videos_dir / "tfjs_pose_1.mp4"), "--gallery", str(gallery), "-q",
                 "--embedder", "openvino:person-reidentification-retail-0277")
    assert p.returncode == 2 and "embedder" in p.stderr and "\n" not in p.stderr.strip()
