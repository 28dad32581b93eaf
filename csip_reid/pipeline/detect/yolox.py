"""``yolox:WEIGHTS``: a YOLOX ONNX export (``yolox:yolox_nano``) run with onnxruntime."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from csip_reid.core.detections import Detections
from csip_reid.core.onnx import onnx_session, run_onnx
from csip_reid.core.weights import resolve_weights
from csip_reid.pipeline.detect.base import DEFAULT_CONF, DETECTORS, Detector, clip_boxes

YOLOX_STRIDES = (8, 16, 32)


def _num_anchors(h: int, w: int) -> int:
    return sum((h // s) * (w // s) for s in YOLOX_STRIDES)


def is_yolox_onnx(path: str | Path) -> bool:
    """True if the ONNX file looks like a YOLOX export (the rule for bare ``.onnx`` specs).

    Rule: one image input ``(B, 3, H, W)`` and a first output ``(B, A, 5 + C)`` whose anchor count
    ``A`` equals the number of grid cells at strides 8/16/32 for ``H x W``. Ultralytics exports
    put the anchors last (``(B, 4 + C, A)``) and are therefore not YOLOX-shaped.
    """
    sess = onnx_session(path, "cpu", threads=1)
    inp, out = sess.get_inputs()[0].shape, sess.get_outputs()[0].shape
    if len(inp) != 4 or len(out) != 3:
        return False
    if isinstance(inp[2], int) and isinstance(inp[3], int) and isinstance(out[1], int):
        return out[1] == _num_anchors(inp[2], inp[3]) and isinstance(out[2], int) and out[2] > 5
    return False


class YoloxDetector(Detector):
    """YOLOX ONNX detector (person class of a COCO model).

    Preprocessing follows the YOLOX export: the frame is resized to fit the model input keeping its
    aspect, placed at the top-left of a canvas filled with 114, kept BGR 0-255 without
    normalisation. Raw outputs are decoded on grids at strides 8/16/32; score = objectness × person
    probability; boxes overlapping more than ``iou`` are suppressed.

    Args:
        path: ONNX file.
        device: ``cpu`` or ``cuda[:N]`` (CUDA when onnxruntime has the CUDA provider).
        conf: Minimum score.
        iou: NMS IoU threshold.
        imgsz: Input size (H, W) for models with a dynamic input shape (ignored otherwise).
        class_id: Class index of "person" in the model's classes.
    """

    name = "yolox"

    def __init__(
        self,
        path: str | Path,
        device: str = "cpu",
        conf: float = DEFAULT_CONF,
        iou: float = 0.45,
        imgsz: int | tuple[int, int] = 640,
        class_id: int = 0,
    ) -> None:
        self.path = str(path)
        self.device = device
        self.conf = float(conf)
        self.iou = float(iou)
        self.class_id = int(class_id)
        self.session = onnx_session(path, device)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        size = (imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz)
        self.input_hw = tuple(
            d if isinstance(d, int) else s for d, s in zip(inp.shape[2:4], size, strict=True)
        )
        self.fixed_batch = inp.shape[0] if isinstance(inp.shape[0], int) else None
        self.batch_size = self.fixed_batch or 8
        self._grid, self._stride = self._make_grid(*self.input_hw)

    @staticmethod
    def _make_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        grids, strides = [], []
        for s in YOLOX_STRIDES:
            ys, xs = np.meshgrid(np.arange(h // s), np.arange(w // s), indexing="ij")
            grids.append(np.stack([xs, ys], -1).reshape(-1, 2))
            strides.append(np.full((grids[-1].shape[0], 1), s))
        return np.concatenate(grids).astype(np.float32), np.concatenate(strides).astype(np.float32)

    def _letterbox(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        h, w = self.input_hw
        r = min(h / frame.shape[0], w / frame.shape[1])
        nh, nw = int(round(frame.shape[0] * r)), int(round(frame.shape[1] * r))
        canvas = np.full((h, w, 3), 114, np.uint8)
        canvas[:nh, :nw] = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR)
        return canvas.transpose(2, 0, 1).astype(np.float32), r

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return run_onnx(self.session, self.input_name, batch, self.fixed_batch)

    def _decode(self, raw: np.ndarray, ratio: float, shape: tuple[int, ...]) -> Detections:
        scores = raw[:, 4] * raw[:, 5 + self.class_id]
        keep = scores >= self.conf
        if not keep.any():
            return Detections.empty()
        raw, scores = raw[keep], scores[keep]
        grid, stride = self._grid[keep], self._stride[keep]
        cxcy = (raw[:, :2] + grid) * stride
        wh = np.exp(np.minimum(raw[:, 2:4], 20.0)) * stride
        xyxy = np.concatenate([cxcy - wh / 2, cxcy + wh / 2], 1) / ratio
        xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], 1)
        idx = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), self.conf, self.iou)
        idx = np.asarray(idx, np.int64).reshape(-1)
        idx = idx[np.argsort(-scores[idx], kind="stable")]
        return Detections(clip_boxes(xyxy[idx].astype(np.float32), shape), scores[idx])

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        if not len(frames):
            return []
        prepped = [self._letterbox(f) for f in frames]
        raw = self._run(np.stack([p[0] for p in prepped]))
        return [self._decode(raw[i], prepped[i][1], f.shape) for i, f in enumerate(frames)]

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "weights": Path(self.path).name,
            "input_hw": list(self.input_hw),
            "conf": self.conf,
            "iou": self.iou,
            "class_id": self.class_id,
        }


@DETECTORS.register("yolox", help="YOLOX ONNX person detector through onnxruntime")
def _make_yolox(arg: str | None, device: str = "cpu", **options: Any) -> YoloxDetector:
    path = resolve_weights(arg or "yolox_nano", "detector weights")
    batch_size = options.pop("batch_size", None)
    det = YoloxDetector(path, device=device, **options)
    if batch_size:
        det.batch_size = int(batch_size)
    return det
