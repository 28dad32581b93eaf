"""YOLOv8n int8 TFLite (``ultralytics:yolov8n_int8``) loads by name through the ultralytics back-end
(its LiteRT runner, ``ai-edge-litert``) and finds people on real frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from csip_reid.pipeline.detect import create_detector


@pytest.fixture(scope="module")
def yolov8n(models_dir: Path) -> object:
    if not (models_dir / "yolov8n_integer_quant.tflite").is_file():
        pytest.skip("yolov8n_integer_quant.tflite missing")
    mp = pytest.MonkeyPatch()
    mp.setenv("REID_WEIGHTS_DIR", str(models_dir))
    mp.setenv("REID_OFFLINE", "1")
    try:
        yield create_detector("ultralytics:yolov8n_int8")
    finally:
        mp.undo()


def _first_frame(path: Path) -> np.ndarray:
    cap = cv2.VideoCapture(str(path))
    ok, frame = cap.read()
    cap.release()
    assert ok, f"{path} did not decode"
    return frame


def test_loads_by_name_with_its_metadata(yolov8n) -> None:
    desc = yolov8n.describe()
    assert desc["weights"] == "yolov8n_integer_quant.tflite" and desc["task"] == "detect"
    assert desc["class_id"] == 0 and desc["imgsz"] == 640  # COCO person, the export's input size


def test_finds_the_people(yolov8n, intel_frames: dict[int, np.ndarray], videos_dir: Path) -> None:
    empty, one = yolov8n.detect([intel_frames[0], intel_frames[300]])
    assert int((empty.conf >= 0.25).sum()) == 0 and int((one.conf >= 0.25).sum()) == 1
    x1, y1, x2, y2 = one.xyxy[0]
    assert 0 <= x1 < x2 <= 768 and 0 <= y1 < y2 <= 432 and y2 - y1 > 40  # a person-sized box in the frame
    (two,) = yolov8n.detect([_first_frame(videos_dir / "mmaction2_demo_skeleton.mp4")])
    assert int((two.conf >= 0.25).sum()) == 2
    (crowd,) = yolov8n.detect([_first_frame(videos_dir / "mmtracking_demo.mp4")])
    assert int((crowd.conf >= 0.25).sum()) >= 15  # dense night street, ~30 people
