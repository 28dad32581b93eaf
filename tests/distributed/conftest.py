"""One local Ray cluster (2 CPUs) shared by every Ray test of the session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHORT_VIDEOS = ("tfjs_pose_1.mp4", "mmpose_demo.mp4", "tfjs_pose_squats.mp4")


@pytest.fixture(scope="session")
def ray_cluster(models_dir: Path):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'csip-reid[ray]')")
    os.environ["REID_WEIGHTS_DIR"] = str(models_dir)  # forwarded to the actors by the driver
    os.environ["REID_OFFLINE"] = "1"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def short_videos(videos_dir: Path) -> list[Path]:
    paths = [videos_dir / n for n in SHORT_VIDEOS]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        pytest.skip(f"test videos missing: {', '.join(missing)}")
    return paths


@pytest.fixture(scope="session")
def offline_settings():
    from csip_reid.pipeline.settings import PipelineSettings

    return PipelineSettings.load(None, detector="yolox:yolox_nano", embedder="onnx:osnet_x0_25_msmt17")


@pytest.fixture(scope="session")
def local_gallery(short_videos, offline_settings, models_dir: Path, tmp_path_factory) -> Path:
    """The short videos indexed by the local executor (the reference)."""
    from csip_reid.pipeline.indexer import Indexer

    os.environ["REID_WEIGHTS_DIR"] = str(models_dir)
    root = tmp_path_factory.mktemp("local") / "gallery"
    summary = Indexer(root, offline_settings, progress=False, log=lambda m: None).index(short_videos)
    assert summary.count("indexed") == 3, summary.to_dict()
    return root
