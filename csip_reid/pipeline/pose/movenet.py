"""``movenet[:PATH]``: Google MoveNet SinglePose (TFLite) through ``ai-edge-litert``.

MoveNet takes one square RGB image (192x192 for Lightning, 256x256 for Thunder) and returns
17 COCO keypoints as ``(y, x, score)`` in 0-1 of that image. Each crop is padded at the
right/bottom to a square before resizing, so the person's aspect ratio is kept and the output maps
back to crop pixels by one multiplication.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from csip_reid.core.errors import WeightsNotFoundError
from csip_reid.core.weights import resolve_weights
from csip_reid.pipeline.pose.base import POSES, PoseEstimator, nan_keypoints, pad_to_square

DEFAULT_WEIGHTS = "movenet_lightning"


class MoveNet(PoseEstimator):
    """MoveNet SinglePose on CPU (TFLite, XNNPACK).

    Args:
        spec: The spec string (for :meth:`describe`).
        weights: A ``.tflite`` path or a registered weights name.
        num_threads: Interpreter threads; default: torch's current thread count.
        min_person_score: A crop whose mean keypoint score is below this holds no person (its
            keypoints are NaN). On empty or noise images MoveNet's mean score stays below ~0.1.
    """

    name = "movenet"

    def __init__(
        self,
        spec: str,
        weights: str = DEFAULT_WEIGHTS,
        num_threads: int | None = None,
        min_person_score: float = 0.15,
    ) -> None:
        super().__init__(spec)
        from ai_edge_litert.interpreter import Interpreter

        self.path: Path = resolve_weights(weights, "MoveNet weights")
        if num_threads is None:
            import torch

            num_threads = torch.get_num_threads()
        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise WeightsNotFoundError(f"cannot load MoveNet model {self.path}: {e}") from e
        inp = self.interpreter.get_input_details()[0]
        out = self.interpreter.get_output_details()[0]
        shape = tuple(int(s) for s in inp["shape"])
        if len(shape) != 4 or shape[1] != shape[2] or shape[3] != 3 or tuple(out["shape"][-2:]) != (17, 3):
            raise WeightsNotFoundError(
                f"{self.path} is not a MoveNet SinglePose model (input {shape}, output {out['shape']})"
            )
        self.size = shape[1]
        self.input_index = inp["index"]
        self.input_dtype = inp["dtype"]
        self.output_index = out["index"]
        self.min_person_score = min_person_score

    def weights_file(self) -> Path:
        return self.path

    def _run_one(self, crop: np.ndarray) -> np.ndarray:
        if crop.size == 0:
            return nan_keypoints(1)[0]
        square = pad_to_square(crop)
        side = square.shape[0]
        img = cv2.resize(square, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        x = np.ascontiguousarray(img[None, :, :, ::-1]).astype(self.input_dtype)
        self.interpreter.set_tensor(self.input_index, x)
        self.interpreter.invoke()
        yxs = self.interpreter.get_tensor(self.output_index).reshape(17, 3)
        if float(yxs[:, 2].mean()) < self.min_person_score:
            return nan_keypoints(1)[0]
        return np.stack([yxs[:, 1] * side, yxs[:, 0] * side, yxs[:, 2]], axis=-1).astype(np.float32)

    def estimate(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        if not len(crops):
            return nan_keypoints(0)
        return np.stack([self._run_one(c) for c in crops])


@POSES.register("movenet", "MoveNet SinglePose TFLite (default weights: movenet_lightning)")
def _make_movenet(arg: str | None, device: str = "cpu", **options) -> MoveNet:
    """MoveNet SinglePose TFLite (CPU only; ``device`` is ignored)."""
    spec = f"movenet:{arg}" if arg else "movenet"
    return MoveNet(spec, weights=arg or DEFAULT_WEIGHTS, **options)
