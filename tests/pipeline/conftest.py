"""Fixtures for the video/detector/tracker/tracklet tests."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

INTEL = "intel_one-by-one-person-detection.mp4"
#: Documented person segments of the Intel clip (frame ranges, one person each).
INTEL_SEGMENTS = [(70, 190), (230, 440), (510, 690), (750, 860), (940, 1190), (1240, 1350)]


@pytest.fixture(scope="session")
def intel_segments() -> list[tuple[int, int]]:
    return list(INTEL_SEGMENTS)


@pytest.fixture(scope="session")
def intel_clip(videos_dir: Path) -> Path:
    p = videos_dir / INTEL
    if not p.is_file():
        pytest.skip(f"{INTEL} missing")
    return p


@pytest.fixture(scope="session")
def intel_frames(intel_clip: Path) -> dict[int, np.ndarray]:
    """A few frames of the Intel clip: 100 and 300 show a person, 0 and 210 show nobody."""
    wanted = {0, 100, 210, 300}
    cap = cv2.VideoCapture(str(intel_clip))
    out = {}
    for i in range(max(wanted) + 1):
        ok, frame = cap.read()
        assert ok, f"frame {i} of {INTEL} did not decode"
        if i in wanted:
            out[i] = frame
    cap.release()
    return out


def _save_random_yolo(cfg: str, dest: Path) -> Path:
    from csip_reid.core.ultralytics_env import import_ultralytics

    import_ultralytics()
    from ultralytics import YOLO

    YOLO(cfg).save(str(dest))
    return dest


@pytest.fixture(scope="session")
def yolo_det_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init yolo11n detection model saved to a .pt file (built offline)."""
    return _save_random_yolo("yolo11n.yaml", tmp_path_factory.mktemp("yolo") / "yolo11n_random.pt")


@pytest.fixture(scope="session")
def yolo_pose_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init yolo11n-pose model saved to a .pt file (built offline)."""
    return _save_random_yolo("yolo11n-pose.yaml", tmp_path_factory.mktemp("yolo") / "yolo11n_pose_random.pt")


def _write_video(path: Path, n: int, fps: float = 5.0, size: tuple[int, int] = (64, 48)) -> Path:
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix == ".avi" else "mp4v"))
    w = cv2.VideoWriter(str(path), fourcc, fps, size)
    assert w.isOpened(), f"OpenCV cannot write {path.suffix} here"
    for i in range(n):
        w.write(np.full((size[1], size[0], 3), (10 * i) % 256, np.uint8))
    w.release()
    return path


@pytest.fixture(scope="session")
def write_video():
    """``write_video(path, n, fps=5.0, size=(64, 48))``: write ``n`` flat grey frames whose intensity
    is ``10 * index`` (MJPG for .avi, mp4v for .mp4) and return the path."""
    return _write_video
