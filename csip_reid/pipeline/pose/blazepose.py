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
person box, so the default ROI is the crop padded to a centred square and enlarged by
``roi_scale`` (MediaPipe's 1.25), with zero borders, no rotation. ``+detector`` (e.g.
``blazepose-3d:full+detector``) aligns the ROI with MediaPipe's detector (``pose_detection.tflite``)
instead, as MediaPipe does: worse on upright people in ``bench/README.md``, but it follows a
person lying or seen rotated. Keypoints map back to crop pixels through the ROI's affine map, and
the world landmarks' x, y are rotated back by the ROI's rotation, so they stay in camera axes.

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

from csip_reid.core.errors import ConfigError, WeightsNotFoundError
from csip_reid.core.skeleton import H36M_3D_WORLD
from csip_reid.core.weights import KNOWN_WEIGHTS, resolve_weights
from csip_reid.pipeline.pose.base import POSES, SKELETON_FORMAT_OF_KIND, PoseEstimator, nan_keypoints
from csip_reid.pipeline.pose.skeleton import coco_points_to_h36m

#: variant → (registered weights name, file name of the npm ``@mediapipe/pose`` model)
VARIANTS: dict[str, tuple[str, str]] = {
    "full": ("blazepose_full", "pose_landmark_full.tflite"),
    "heavy": ("blazepose_heavy", "pose_landmark_heavy.tflite"),
}
#: BlazePose-33 index of each COCO-17 keypoint.
BLAZE_TO_COCO = np.array([0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28])
_INPUT = 256
_DET_INPUT = 224
_POINTS = 39


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -30.0, 30.0)))


def _interpreter(path: Path, num_threads: int | None, what: str) -> Any:
    from ai_edge_litert.interpreter import Interpreter

    if num_threads is None:
        import torch

        num_threads = torch.get_num_threads()
    try:
        it = Interpreter(model_path=str(path), num_threads=num_threads)
        it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        raise WeightsNotFoundError(f"cannot load {what} {path}: {e}") from e
    return it


def _ssd_anchor_centres() -> np.ndarray:
    """(2254, 2) anchor centres (0-1) of the BlazePose detector: MediaPipe's SSD anchors for a 224
    input, strides 8, 16, 32, 32, 32 (layers of one stride share a grid), 2 anchors per layer."""
    out = []
    for stride, per_cell in ((8, 2), (16, 2), (32, 6)):
        n = _DET_INPUT // stride
        yy, xx = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="ij")
        out.append(np.repeat(np.stack([xx.ravel(), yy.ravel()], -1), per_cell, axis=0))
    return np.concatenate(out).astype(np.float32)


class RoiDetector:
    """MediaPipe's BlazePose person detector (``pose_detection.tflite``), used to align the ROI.

    It returns, for the best person of a crop, the hip centre and a point on the circle around the
    whole body; MediaPipe's ROI is centred on the hips, rotated so the second point is straight up,
    with side 2 x their distance x 1.25.
    """

    def __init__(self, weights: str = "blazepose_detector", num_threads: int | None = None,
                 min_score: float = 0.5) -> None:
        if weights == "blazepose_detector" and weights not in KNOWN_WEIGHTS:
            weights = "pose_detection.tflite"
        self.path = resolve_weights(weights, "BlazePose ROI detector")
        self.interpreter = _interpreter(self.path, num_threads, "BlazePose ROI detector")
        outs = {d["name"]: d for d in self.interpreter.get_output_details()}
        if tuple(outs.get("Identity", {}).get("shape", ())) != (1, 2254, 12):
            raise WeightsNotFoundError(f"{self.path} is not the BlazePose ROI detector")
        self.input_index = self.interpreter.get_input_details()[0]["index"]
        self.out_boxes, self.out_scores = outs["Identity"]["index"], outs["Identity_1"]["index"]
        self.anchors = _ssd_anchor_centres()
        self.min_score = min_score

    def hips_and_top(self, crop: np.ndarray) -> np.ndarray | None:
        """(2, 2) hip centre and body-circle point in crop pixels, or None when nobody is found."""
        h, w = crop.shape[:2]
        k = _DET_INPUT / max(h, w)
        px, py = (_DET_INPUT - w * k) / 2, (_DET_INPUT - h * k) / 2
        m = np.array([[k, 0.0, px], [0.0, k, py]], np.float32)
        img = cv2.warpAffine(crop, m, (_DET_INPUT, _DET_INPUT), flags=cv2.INTER_LINEAR)
        x = img[None, :, :, ::-1].astype(np.float32) * (2.0 / 255.0) - 1.0
        self.interpreter.set_tensor(self.input_index, np.ascontiguousarray(x))
        self.interpreter.invoke()
        raw = self.interpreter.get_tensor(self.out_boxes)[0]
        score = _sigmoid(self.interpreter.get_tensor(self.out_scores)[0, :, 0])
        best = int(np.argmax(score))
        if score[best] < self.min_score:
            return None
        # the best anchor's neighbours (box centres within half its size) averaged by score, like
        # MediaPipe's weighted non-maximum suppression
        ctr = raw[:, :2] / _DET_INPUT + self.anchors
        near = (np.abs(ctr - ctr[best]).max(1) < raw[best, 2:4].max() / _DET_INPUT / 2) & (score >= self.min_score)
        kp = raw[near, 4:8].reshape(-1, 2, 2) / _DET_INPUT + self.anchors[near, None, :]
        kp = (kp * score[near, None, None]).sum(0) / score[near].sum()
        return (kp * _DET_INPUT - [px, py]) / k


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
                 min_person_score: float = 0.5, roi_scale: float = 1.25, min_presence: float = 0.2,
                 roi: str = "box") -> None:
        super().__init__(spec)
        if roi not in ("box", "detector"):
            raise ConfigError(f"BlazePose roi must be 'box' or 'detector', got {roi!r}")
        self.path: Path = resolve_blazepose(weights)
        self.interpreter = _interpreter(self.path, num_threads, "BlazePose model")
        self.detector = None
        if roi == "detector":  # the detector file beside the landmark model, else by name
            beside = self.path.parent / "pose_detection.tflite"
            self.detector = RoiDetector(str(beside) if beside.is_file() else "blazepose_detector", num_threads)
        self.roi = roi
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
        return {**super().describe(), "roi": self.roi, "roi_scale": self.roi_scale,
                "min_person_score": self.min_person_score}

    def _roi(self, crop: np.ndarray) -> np.ndarray:
        """(2, 3) affine map from ROI pixels (256x256) to crop pixels.

        ``box``: the crop centred in a square ``roi_scale`` times its longer side. ``detector``:
        MediaPipe's alignment (hip centre, rotated upright, side 2 x hips-to-circle x ``roi_scale``);
        the box ROI when the detector finds nobody.
        """
        h, w = crop.shape[:2]
        centre, side, xdir = np.array([w / 2, h / 2]), max(h, w) * self.roi_scale, np.array([1.0, 0.0])
        pts = self.detector.hips_and_top(crop) if self.detector is not None else None
        if pts is not None and np.linalg.norm(pts[1] - pts[0]) > 1:
            up = (pts[1] - pts[0]) / np.linalg.norm(pts[1] - pts[0])
            centre, side, xdir = pts[0], 2 * np.linalg.norm(pts[1] - pts[0]) * self.roi_scale, np.array([-up[1], up[0]])
        ydir = np.array([-xdir[1], xdir[0]])
        k = side / _INPUT
        return np.array([[k * xdir[0], k * ydir[0], centre[0] - side / 2 * (xdir[0] + ydir[0])],
                         [k * xdir[1], k * ydir[1], centre[1] - side / 2 * (xdir[1] + ydir[1])]], np.float32)

    def _run_one(self, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """COCO-17 ``x, y, score`` in crop pixels and 3D H36M-17 world joints (NaN: no person)."""
        missing = nan_keypoints(1)[0], nan_keypoints(1)[0]
        if crop.size == 0:
            return missing
        m = self._roi(crop)
        img = cv2.warpAffine(crop, m, (_INPUT, _INPUT), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        x = np.ascontiguousarray(img[None, :, :, ::-1].astype(np.float32) * (1.0 / 255.0))
        self.interpreter.set_tensor(self.input_index, x)
        self.interpreter.invoke()
        if float(self.interpreter.get_tensor(self.out_flag).reshape(-1)[0]) < self.min_person_score:
            return missing
        lm = self.interpreter.get_tensor(self.out_landmarks).reshape(_POINTS, 5)[BLAZE_TO_COCO]
        xy = lm[:, :2] @ m[:, :2].T + m[:, 2]
        kps = np.concatenate([xy, _sigmoid(lm[:, 3:4])], -1).astype(np.float32)
        if not self.world:
            return kps, missing[1]
        pts = self.interpreter.get_tensor(self.out_world).reshape(_POINTS, 3)[BLAZE_TO_COCO].astype(np.float32)
        rot = m[:, :2] / np.linalg.norm(m[:, 0])  # the ROI's rotation, undone on the world x, y
        pts[:, :2] = pts[:, :2] @ rot.T
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


def _parse_arg(arg: str | None) -> dict[str, Any]:
    """``VARIANT|PATH[+detector]`` → constructor options (default ``full``, the box ROI)."""
    arg = arg or "full"
    weights, _, roi = arg.rpartition("+") if arg.endswith("+detector") else (arg, "", "box")
    return {"weights": weights or "full", "roi": roi}


@POSES.register("blazepose", "BlazePose GHUM TFLite, 33 -> COCO-17 keypoints (blazepose:full|heavy|PATH[+detector])")
def _make_blazepose(arg: str | None, device: str = "cpu", **options: Any) -> BlazePose:
    """BlazePose 2D keypoints (CPU only; ``device`` is ignored)."""
    return BlazePose(f"blazepose:{arg or 'full'}", **{**_parse_arg(arg), **options})


SKELETON_FORMAT_OF_KIND["blazepose-3d"] = H36M_3D_WORLD


@POSES.register("blazepose-3d", "BlazePose GHUM metric 3D world landmarks -> h36m17-3d-world skeletons "
                "(blazepose-3d:full|heavy|PATH[+detector])")
def _make_blazepose_3d(arg: str | None, device: str = "cpu", **options: Any) -> BlazePose:
    """BlazePose with its 3D world landmarks as the skeletons (CPU only)."""
    return BlazePose(f"blazepose-3d:{arg or 'full'}", world=True, **{**_parse_arg(arg), **options})
