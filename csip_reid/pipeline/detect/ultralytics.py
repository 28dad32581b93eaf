"""``ultralytics:WEIGHTS``: any ultralytics model restricted to the person class.

The weights are a ``.pt`` checkpoint, an exported model (``.onnx``, ``.engine``,
``_openvino_model/`` ...), or a model ``.yaml`` (random weights; for tests). Pose models (task
``pose``) also fill :attr:`Detections.keypoints` (COCO-17, frame pixels), row for row with the boxes.
Online, ultralytics downloads a hub name (``yolo11n.pt``) into the csip-reid cache; offline, a hub
name that is not on disk fails at once with a :class:`~csip_reid.core.errors.WeightsNotFoundError`
that says how to pass a local file.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from csip_reid.core.detections import Detections
from csip_reid.core.errors import ConfigError, WeightsNotFoundError
from csip_reid.core.weights import cache_dir, find_local, is_offline
from csip_reid.pipeline.detect.base import DEFAULT_CONF, DETECTORS, Detector

logger = logging.getLogger(__name__)


_WEIGHTS_HINT = (
    "download the file on a connected machine, then pass its path (--detector ultralytics:/path/to/file.pt) "
    "or copy it into $REID_WEIGHTS_DIR"
)


def _ultralytics_weights(name: str) -> str:
    """Local path (or model yaml) for an ultralytics weights argument; never downloads offline."""
    if name.endswith((".yaml", ".yml")):
        return name  # a model definition: ultralytics builds it with random weights
    p = Path(name).expanduser()
    if p.exists():  # files and exported model folders (OpenVINO, TF SavedModel)
        return str(p)
    local = find_local(name)
    if local is not None:
        return str(local)
    from ultralytics.utils import SETTINGS

    in_settings = Path(SETTINGS["weights_dir"]) / p.name
    if in_settings.is_file():
        return str(in_settings)
    if is_offline():
        raise WeightsNotFoundError(
            f"detector weights {name!r} are not on this machine and downloads are off (offline); "
            + _WEIGHTS_HINT
        )
    # online: ultralytics downloads hub names (yolo11n.pt ...) to the path it is given: our cache,
    # where find_local finds it next time, rather than the current folder
    dest = cache_dir() / "weights" / p.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    return str(dest)


class UltralyticsDetector(Detector):
    """An ultralytics model (detect, segment or pose task) restricted to the person class.

    Args:
        weights: Path, weights name (``yolo11n.pt``, downloaded when online) or model yaml.
        device: ``cpu``, ``cuda``, ``cuda:N`` ... (passed to ultralytics).
        conf: Minimum confidence.
        iou: NMS IoU threshold.
        imgsz: Inference size.
        batch_size: Frames per forward pass (default 16 on CUDA, 4 on CPU).
        half: FP16 inference (default: on for CUDA).
        max_det: Maximum detections per frame.
    """

    name = "ultralytics"

    def __init__(
        self,
        weights: str = "yolo11n.pt",
        device: str = "cpu",
        conf: float = DEFAULT_CONF,
        iou: float = 0.7,
        imgsz: int = 640,
        batch_size: int | None = None,
        half: bool | None = None,
        max_det: int = 300,
    ) -> None:
        from csip_reid.core.ultralytics_env import import_ultralytics, keep_torch_threads

        import_ultralytics()
        from ultralytics import YOLO

        source = _ultralytics_weights(weights)
        try:
            with keep_torch_threads():
                self.model = YOLO(source)
        except Exception as e:  # ultralytics raises many types for missing/corrupt weights
            hint = f"; {_WEIGHTS_HINT}" if isinstance(e, ConnectionError) else ""
            raise WeightsNotFoundError(f"cannot load detector weights {weights!r}: {e}{hint}") from e
        if source.endswith((".yaml", ".yml")):
            logger.warning("detector %s is a model definition: random weights, it will find nobody", source)
        self.weights = source
        self.task = self.model.task
        if self.task not in ("detect", "segment", "pose"):
            raise ConfigError(f"detector {weights!r} is a {self.task!r} model; need a detect or pose model")
        self.has_keypoints = self.task == "pose"
        if self.has_keypoints:
            kpt_shape = tuple(getattr(self.model.model, "kpt_shape", None) or (17, 3))
            if kpt_shape[0] != 17:
                raise ConfigError(f"pose detector {weights!r} has {kpt_shape[0]} keypoints; COCO-17 needed")
        names = {int(k): str(v).lower() for k, v in (self.model.names or {}).items()}
        self.class_id = next((k for k, v in names.items() if v == "person"), 0)
        self.device = device
        self.conf, self.iou, self.imgsz, self.max_det = float(conf), float(iou), int(imgsz), int(max_det)
        cuda = device.startswith("cuda") or device.isdigit()
        self.half = cuda if half is None else bool(half)
        self.batch_size = batch_size or (16 if cuda else 4)
        self._keep_threads = keep_torch_threads
        self._precision: dict[str, Any] = {}
        if self.half:  # ultralytics >= 8.4 names FP16 `quantize=16`; older releases `half=True`
            from ultralytics.cfg import DEFAULT_CFG_DICT

            self._precision = {"quantize": 16} if "quantize" in DEFAULT_CFG_DICT else {"half": True}

    def _to_detections(self, result: Any) -> Detections:
        boxes = result.boxes
        xyxy = boxes.xyxy.float().cpu().numpy()
        conf = boxes.conf.float().cpu().numpy()
        kps = None
        if self.has_keypoints:
            if result.keypoints is None:
                kps = np.full((len(xyxy), 17, 3), np.nan, np.float32)
            else:
                data = result.keypoints.data.float().cpu().numpy()
                if data.shape[-1] == 2:  # models trained without visibility: treat as seen
                    data = np.concatenate([data, np.ones_like(data[..., :1])], -1)
                kps = data
        order = np.argsort(-conf, kind="stable")
        return Detections(xyxy[order], conf[order], None if kps is None else kps[order])

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        if not len(frames):
            return []
        import torch

        with self._keep_threads(), torch.inference_mode():
            results = self.model.predict(
                list(frames),
                conf=self.conf,
                iou=self.iou,
                imgsz=self.imgsz,
                classes=[self.class_id],
                device=self.device,
                max_det=self.max_det,
                verbose=False,
                **self._precision,
            )
        return [self._to_detections(r) for r in results]

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "weights": Path(self.weights).name,
            "task": self.task,
            "imgsz": self.imgsz,
            "conf": self.conf,
            "iou": self.iou,
            "class_id": self.class_id,
            "half": self.half,
        }


@DETECTORS.register("ultralytics", help="ultralytics YOLO model (detect or pose), person class")
def _make_ultralytics(arg: str | None, device: str = "cpu", **options: Any) -> UltralyticsDetector:
    return UltralyticsDetector(arg or "yolo11n.pt", device=device, **options)
