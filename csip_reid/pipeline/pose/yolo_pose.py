"""``yolo-pose[:WEIGHTS]``: an ultralytics pose model run on person crops.

When the *detector* is already a pose model, its keypoints are attached to the tracklets by the
tracklet builder and :func:`~csip_reid.pipeline.pose.skeleton.attach_skeletons` uses those instead of
running this estimator (``uses_detector_keypoints``); the model is therefore only loaded on the
first :meth:`YoloPose.estimate` call.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from csip_reid.core.errors import WeightsNotFoundError
from csip_reid.core.weights import find_local, is_offline
from csip_reid.pipeline.pose.base import POSES, PoseEstimator, nan_keypoints

DEFAULT_WEIGHTS = "yolo11n-pose.pt"


def _box_iou_with_frame(xyxy: np.ndarray, w: int, h: int) -> np.ndarray:
    """IoU of each (x1, y1, x2, y2) box with the whole image ``(0, 0, w, h)``."""
    x1 = np.clip(xyxy[:, 0], 0, w)
    y1 = np.clip(xyxy[:, 1], 0, h)
    x2 = np.clip(xyxy[:, 2], 0, w)
    y2 = np.clip(xyxy[:, 3], 0, h)
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = np.clip(xyxy[:, 2] - xyxy[:, 0], 0, None) * np.clip(xyxy[:, 3] - xyxy[:, 1], 0, None)
    return inter / np.maximum(area + w * h - inter, 1e-9)


class YoloPose(PoseEstimator):
    """Ultralytics YOLO-pose on crops; keeps, per crop, the person that best fills the crop.

    Among the person detections of a crop, the one with the largest IoU-with-the-crop ×
    confidence is kept. A crop without any detection gets NaN keypoints.

    Args:
        spec: The spec string.
        weights: A local ``.pt``/exported model, a model ``.yaml`` (random init), or an
            ultralytics hub name (downloaded by ultralytics when online).
        device: ``cpu``, ``cuda``, ``cuda:0``...
        conf: Minimum person confidence.
        imgsz: Inference size; crops are letterboxed to it.
    """

    name = "yolo-pose"
    uses_detector_keypoints = True

    def __init__(
        self, spec: str, weights: str = DEFAULT_WEIGHTS, device: str = "cpu", conf: float = 0.25,
        imgsz: int = 320,
    ) -> None:
        super().__init__(spec)
        self.device = device
        self.conf = conf
        self.imgsz = imgsz
        self._model: Any = None
        local = find_local(weights)
        if local is not None:
            self.weights: str = str(local)
        elif weights.endswith((".yaml", ".yml")):
            self.weights = weights  # ultralytics builds a random-init model from its own configs
        elif is_offline():
            raise WeightsNotFoundError(
                f"pose weights {weights!r} are not on this machine and downloads are off (offline); "
                f"pass a local file (--pose yolo-pose:/path/to/{Path(weights).name}) or put it in "
                "$REID_WEIGHTS_DIR"
            )
        else:
            self.weights = weights

    def weights_file(self) -> Path | None:
        p = Path(self.weights)
        return p if p.is_file() else None

    @property
    def model(self) -> Any:
        """The ultralytics model, loaded on first use."""
        if self._model is None:
            from csip_reid.core.ultralytics_env import import_ultralytics

            ultralytics = import_ultralytics()
            try:
                model = ultralytics.YOLO(self.weights)
            except Exception as e:  # ultralytics raises plain Exceptions for download failures
                raise WeightsNotFoundError(
                    f"cannot load pose weights {self.weights!r}: {e}; pass a local file path"
                ) from e
            if model.task != "pose":
                raise WeightsNotFoundError(
                    f"{self.weights} is a {model.task!r} model, not a pose model (e.g. yolo11n-pose.pt)"
                )
            kpt_shape = list(getattr(model.model, "kpt_shape", None) or [])
            if kpt_shape[:1] != [17]:
                raise WeightsNotFoundError(f"{self.weights} predicts {kpt_shape} keypoints, not COCO-17")
            self._model = model
        return self._model

    def estimate(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        out = nan_keypoints(len(crops))
        if not len(crops):
            return out
        from csip_reid.core.ultralytics_env import keep_torch_threads

        model = self.model
        keep = [i for i, c in enumerate(crops) if c.size]
        if not keep:
            return out
        with keep_torch_threads():
            results = model.predict(
                [crops[i] for i in keep], classes=[0], conf=self.conf, imgsz=self.imgsz,
                device=self.device, verbose=False,
            )
        for i, r in zip(keep, results, strict=True):
            if r.keypoints is None or len(r.boxes) == 0:
                continue
            h, w = crops[i].shape[:2]
            score = _box_iou_with_frame(r.boxes.xyxy.cpu().numpy(), w, h) * r.boxes.conf.cpu().numpy()
            kp = r.keypoints.data[int(np.argmax(score))].cpu().numpy()
            out[i, :, : kp.shape[-1]] = kp
            if kp.shape[-1] == 2:  # a model without keypoint confidences: use the box's
                out[i, :, 2] = r.boxes.conf[int(np.argmax(score))].item()
        return out

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(conf=self.conf, imgsz=self.imgsz)
        return d


@POSES.register("yolo-pose", "ultralytics pose model on crops (default yolo11n-pose.pt); "
                             "reuses a pose detector's keypoints")
def _make_yolo_pose(arg: str | None, device: str = "cpu", **options: Any) -> YoloPose:
    """Ultralytics YOLO-pose on crops."""
    spec = f"yolo-pose:{arg}" if arg else "yolo-pose"
    return YoloPose(spec, weights=arg or DEFAULT_WEIGHTS, device=device, **options)
