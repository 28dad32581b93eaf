"""Fixtures for end-to-end CLI tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.cli import OFFLINE_ARGS, run_reid


@pytest.fixture(scope="session")
def offline_env(models_dir: Path, tmp_path_factory) -> dict:
    return {
        "REID_WEIGHTS_DIR": str(models_dir),
        "REID_OFFLINE": "1",
        "YOLO_OFFLINE": "1",
        "REID_CACHE_DIR": str(tmp_path_factory.mktemp("cache")),
        "YOLO_CONFIG_DIR": str(tmp_path_factory.mktemp("ycfg")),
    }



@pytest.fixture(scope="session")
def intel_gallery(videos_dir: Path, offline_env: dict, tmp_path_factory) -> tuple[Path, object]:
    """The Intel clip indexed once for the whole session (real YOLOX + OSNet weights)."""
    video = videos_dir / "intel_one-by-one-person-detection.mp4"
    if not video.is_file():
        pytest.skip("intel_one-by-one-person-detection.mp4 missing")
    gallery = tmp_path_factory.mktemp("intel") / "gallery"
    p = run_reid("index", str(video), "--gallery", str(gallery), "--json", *OFFLINE_ARGS,
                 env_extra=offline_env, check=True)
    return gallery, json.loads(p.stdout)
