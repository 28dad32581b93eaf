"""``blazepose[:full|heavy|PATH]`` and ``blazepose-3d[:...]``: Google BlazePose GHUM through ``ai-edge-litert``.

The BlazePose landmark model (``pose_landmark_full.tflite`` or ``pose_landmark_heavy.tflite``, the
MediaPipe Pose models) takes one 256x256 RGB region of interest in 0-1 and returns, for 39 points
of which the first 33 are body keypoints:

* ``Identity`` (1, 195): per point ``x, y, z, visibility, presence``; ``x, y`` in ROI pixels,
  visibility and presence as logits (MediaPipe applies a sigmoid);
* ``Identity_1`` (1, 1): the probability that the ROI holds a person (MediaPipe drops a pose
  below 0.5);
* ``Identity_4`` (1, 117): per point ``x, y, z`` *world* landmarks in metres, origin between the
  hips, x to the image right, y down, z away from the camera, in the axes of the ROI.

MediaPipe aligns the ROI with its own person detector: centred on the hip midpoint, rotated
upright, side 1.25 times the body's extent. In this pipeline the tracker already gives an upright
person box, so the ROI is the crop padded to a centred square and enlarged by ``roi_scale``
(default MediaPipe's 1.25), with zero borders; no rotation, so the world landmarks are already
in camera-aligned axes. Keypoints map back to crop pixels by one scale and one shift.

33 → COCO-17: nose 0, eyes 2/5, ears 7/8, shoulders 11/12, elbows 13/14, wrists 15/16, hips
23/24, knees 25/26, ankles 27/28 (BlazePose's "left" is the person's left, as in COCO); score =
sigmoid(visibility). ``blazepose-3d`` also returns the world landmarks as Human3.6M-17 joints
(format ``h36m17-3d-world``), derived with the same table as :func:`coco_to_h36m`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from csip_reid.core.errors import WeightsNotFoundError
from csip_reid.core.skeleton import H36M_3D_WORLD
from csip_reid.core.weights import KNOWN_WEIGHTS, resolve_weights
from csip_reid.pipeline.pose.base import POSES, PoseEstimator, nan_keypoints
from csip_reid.pipeline.pose.skeleton import coco_points_to_h36m

#: variant → (registered weights name, file name of the npm ``@mediapipe/pose`` model)
VARIANTS: dict[str, tuple[str, str]] = {
    "full": ("blazepose_full", "pose_landmark_full.tflite"),
    "heavy": ("blazepose_heavy", "pose_landmark_heavy.tflite"),
}
#: BlazePose-33 index of each COCO-17 keypoint.
BLAZE_TO_COCO = np.array([0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28])
_INPUT = 256
_POINTS = 39


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0)))


def resolve_blazepose(weights: str) -> Path:
    """The landmark model file for a variant name (``full``, ``heavy``) or a path/weights name."""
    if weights in VARIANTS:
        registered, filename = VARIANTS[weights]
        weights = registered if registered in KNOWN_WEIGHTS else filename
    return resolve_weights(weights, "BlazePose landmark model")


class BlazePose(PoseEstimator):
    """BlazePose GHUM landmark model on CPU (TFLite, XNNPACK), one person per crop.

    Args:
        spec: The spec string (for :meth:`describe`).
        weights: ``full``, ``heavy``, a ``.tflite`` path or a registered weights name.
        world: Also return the metric 3D world landmarks (``blazepose-3d``); the pose stage then
            stores skeletons in format ``h36m17-3d-world``.
        num_threads: Interpreter threads; default: torch's current thread count.
        min_person_score: A crop whose person probability is below this holds no person (its
            keypoints are NaN); MediaPipe's threshold is 0.5.
        roi_scale: The square ROI's side over the crop's longer side.
        min_presence: A world joint whose presence probability (inside the ROI) is below this is NaN.
    """

    name = "blazepose"

    def __init__(self, spec: str, weights: str = "full", world: bool = False, num_threads: int | None = None,
                 min_person_score: float = 0.5, roi_scale: float = 1.25, min_presence: float = 0.2) -> None:
        super().__init__(spec)
        from ai_edge_litert.interpreter import Interpreter

        self.path: Path = resolve_blazepose(weights)
        if num_threads is None:
            import torch

            num_threads = torch.get_num_threads()
        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise WeightsNotFoundError(f"cannot load BlazePose model {self.path}: {e}") from e
        inp = self.interpreter.get_input_details()[0]
        outs = {d["name"]: d for d in self.interpreter.get_output_details()}
        shapes = {n: tuple(int(s) for s in d["shape"]) for n, d in outs.items()}
        if (tuple(int(s) for s in inp["shape"]) != (1, _INPUT, _INPUT, 3) or shapes.get("Identity") != (1, _POINTS * 5)
                or shapes.get("Identity_1") != (1, 1) or shapes.get("Identity_4") != (1, _POINTS * 3)):
            raise WeightsNotFoundError(f"{self.path} is not a BlazePose landmark model "
                                       f"(input {inp['shape']}, outputs {shapes})")
        self.input_index = inp["index"]
        self.out_landmarks = outs["Identity"]["index"]
        self.out_flag = outs["Identity_1"]["index"]
        self.out_world = outs["Identity_4"]["index"]
        self.world = world
        if world:
            self.name = "blazepose-3d"
            self.skeleton_format = H36M_3D_WORLD
        self.min_person_score = min_person_score
        self.roi_scale = roi_scale
        self.min_presence = min_presence

    def weights_file(self) -> Path:
        return self.path

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "roi_scale": self.roi_scale, "min_person_score": self.min_person_score}

    def _roi(self, crop: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        """The model input for a crop, and (scale, shift x, shift y): crop px = ROI px * scale - shift."""
        h, w = crop.shape[:2]
        side = max(h, w) * self.roi_scale
        k = _INPUT / side
        sx, sy = (side - w) / 2, (side - h) / 2
        m = np.array([[k, 0.0, sx * k], [0.0, k, sy * k]], np.float32)
        img = cv2.warpAffine(crop, m, (_INPUT, _INPUT), flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        x = img[None, :, :, ::-1].astype(np.float32) * (1.0 / 255.0)
        return np.ascontiguousarray(x), 1.0 / k, sx, sy

    def _run_one(self, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """COCO-17 ``x, y, score`` in crop pixels and 3D H36M-17 world joints (NaN: no person)."""
        missing = nan_keypoints(1)[0], nan_keypoints(1)[0]
        if crop.size == 0:
            return missing
        x, scale, sx, sy = self._roi(crop)
        self.interpreter.set_tensor(self.input_index, x)
        self.interpreter.invoke()
        if float(self.interpreter.get_tensor(self.out_flag).reshape(-1)[0]) < self.min_person_score:
            return missing
        lm = self.interpreter.get_tensor(self.out_landmarks).reshape(_POINTS, 5)[BLAZE_TO_COCO]
        kps = np.stack([lm[:, 0] * scale - sx, lm[:, 1] * scale - sy, _sigmoid(lm[:, 3])], -1).astype(np.float32)
        if not self.world:
            return kps, missing[1]
        pts = self.interpreter.get_tensor(self.out_world).reshape(_POINTS, 3)[BLAZE_TO_COCO].astype(np.float32)
        pts[_sigmoid(lm[:, 4]) < self.min_presence] = np.nan
        h36m = coco_points_to_h36m(pts)
        return kps, (h36m - h36m[:1]).astype(np.float32)

    def estimate_with_world(self, crops: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
        """COCO-17 keypoints in crop pixels and, for ``blazepose-3d``, (N, 17, 3) world H36M-17 joints.

        World joints are metres, root-centred on the pelvis (mid-hips), x right, y down, z away from
        the camera; a frame without a person or without a pelvis is NaN.
        """
        if not len(crops):
            return nan_keypoints(0), (nan_keypoints(0) if self.world else None)
        kps, world = zip(*(self._run_one(c) for c in crops))
        return np.stack(kps), (np.stack(world) if self.world else None)

    def estimate(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        return self.estimate_with_world(crops)[0]


def _variant(arg: str | None) -> str:
    return arg or "full"


@POSES.register("blazepose", "BlazePose GHUM TFLite, 33 -> COCO-17 keypoints (blazepose:full|heavy|PATH)")
def _make_blazepose(arg: str | None, device: str = "cpu", **options: Any) -> BlazePose:
    """BlazePose 2D keypoints (CPU only; ``device`` is ignored)."""
    return BlazePose(f"blazepose:{_variant(arg)}", weights=_variant(arg), **options)


@POSES.register("blazepose-3d", "BlazePose GHUM metric 3D world landmarks -> h36m17-3d-world skeletons "
                "(blazepose-3d:full|heavy|PATH)")
def _make_blazepose_3d(arg: str | None, device: str = "cpu", **options: Any) -> BlazePose:
    """BlazePose with its 3D world landmarks as the skeletons (CPU only)."""
    return BlazePose(f"blazepose-3d:{_variant(arg)}", weights=_variant(arg), world=True, **options)
