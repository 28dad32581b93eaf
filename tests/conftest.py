"""Shared fixtures. Real material comes from $REID_TEST_DATA (default ../shared/data)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("REID_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


#: A test that uses one of these fixtures reads real video (or starts a Ray cluster that indexes it):
#: it is marked ``video`` and left out of ``make test-fast``.
VIDEO_FIXTURES = frozenset({"videos_dir", "ray_cluster"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``video`` every test whose fixtures (direct or indirect) bring real video; run the tests
    on the in-process Ray cluster last (its core-worker threads stay until the process ends, so no
    other test shares the process with them)."""
    for item in items:
        if VIDEO_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.video)
    items.sort(key=lambda item: "ray_cluster" in getattr(item, "fixturenames", ()))  # stable: order kept

def _data_dir() -> Path:
    return Path(os.environ.get("REID_TEST_DATA", REPO.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session", autouse=True)
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep ultralytics settings and our cache out of $HOME."""
    os.environ.setdefault("YOLO_CONFIG_DIR", str(tmp_path_factory.mktemp("yolo_cfg")))
    os.environ.setdefault("REID_CACHE_DIR", str(tmp_path_factory.mktemp("reid_cache")))


@pytest.fixture(scope="session")
def test_data() -> Path:
    """Root of the shared test material, or skip."""
    d = _data_dir()
    if not d.is_dir():
        pytest.skip(f"test material not found at {d} (set REID_TEST_DATA)")
    return d


@pytest.fixture(scope="session")
def videos_dir(test_data: Path) -> Path:
    d = test_data / "videos"
    if not d.is_dir():
        pytest.skip(f"no videos/ in {test_data}")
    return d


@pytest.fixture(scope="session")
def models_dir(test_data: Path) -> Path:
    d = test_data / "models"
    if not d.is_dir():
        pytest.skip(f"no models/ in {test_data}")
    return d


def _tracklets(test_data: Path, name: str) -> Path:
    d = test_data / "reid_tracklets" / name
    if not (d / "labels.csv").is_file():
        pytest.skip(f"{name} not found under {test_data}")
    return d


@pytest.fixture(scope="session")
def mini_mars(test_data: Path) -> Path:
    return _tracklets(test_data, "mini_mars")


@pytest.fixture(scope="session")
def mini_mars_full(test_data: Path) -> Path:
    """The full-length mini-MARS tracklets with the disjoint training split."""
    return _tracklets(test_data, "mini_mars_full")


@pytest.fixture(scope="session")
def osnet_path(models_dir: Path) -> Path:
    p = models_dir / "osnet_x0_25_msmt17.onnx"
    if not p.is_file():
        pytest.skip("osnet_x0_25_msmt17.onnx missing")
    return p


@pytest.fixture(scope="session")
def yolox_path(models_dir: Path) -> Path:
    p = models_dir / "yolox_nano.onnx"
    if not p.is_file():
        pytest.skip("yolox_nano.onnx missing")
    return p


@pytest.fixture(scope="session")
def movenet_path(models_dir: Path) -> Path:
    p = models_dir / "movenet_singlepose_lightning_int8_4.tflite"
    if not p.is_file():
        pytest.skip("movenet tflite missing")
    return p
