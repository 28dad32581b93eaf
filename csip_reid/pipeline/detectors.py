"""Person detectors: batches of BGR frames in, one :class:`Detections` per frame out.

Specs (``--detector``):
    * ``ultralytics:WEIGHTS`` (default, ``ultralytics:yolo11n.pt``): any ultralytics model: a
      ``.pt`` checkpoint, an exported model (``.onnx``, ``.engine``, ``_openvino_model/`` ...), or a
      model ``.yaml`` (random weights; for tests). Person class only. Pose models (task ``pose``)
      also fill :attr:`Detections.keypoints` (COCO-17, frame pixels), row for row with the boxes.
    * ``yolox:WEIGHTS`` (``yolox:yolox_nano``): a YOLOX ONNX export run with onnxruntime.
    * A bare ``WEIGHTS``: YOLOX when it names an ``.onnx`` file whose output is YOLOX-shaped
      (see :func:`is_yolox_onnx`), ultralytics otherwise.

Weights are looked up as a path, then in ``$REID_WEIGHTS_DIR`` and the csip-reid cache (see
:mod:`csip_reid.weights`). Online, ultralytics downloads a hub name (``yolo11n.pt``) into the
csip-reid cache; offline, a hub name that is not on disk fails at once with a
:class:`~csip_reid.errors.WeightsNotFoundError` that says how to pass a local file.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from csip_reid.errors import ConfigError, WeightsNotFoundError
from csip_reid.pipeline.detections import Detections
from csip_reid.registry import Registry, split_spec
from csip_reid.weights import KNOWN_WEIGHTS, cache_dir, find_local, is_offline, resolve_weights

logger = logging.getLogger(__name__)

DEFAULT_DETECTOR = "ultralytics:yolo11n.pt"
#: Default confidence threshold. Low on purpose: ByteTrack uses detections between 0.1 and its
#: high threshold (0.25) to keep tracks alive through occlusions.
DEFAULT_CONF = 0.1
YOLOX_STRIDES = (8, 16, 32)


class Detector(ABC):
    """Base class of person detectors.

    Attributes:
        name: Short back-end name (``ultralytics``, ``yolox``).
        batch_size: How many frames callers should pass to :meth:`detect` at once.
        has_keypoints: True when the returned detections carry COCO-17 keypoints.
    """

    name: str = ""
    batch_size: int = 1
    has_keypoints: bool = False

    @abstractmethod
    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """Detect people in BGR uint8 frames; one :class:`Detections` per frame, best first."""

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """JSON-friendly settings that define this detector's output (stored with a gallery)."""


DETECTORS: Registry[Detector] = Registry("detector")


def _clip(xyxy: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    h, w = shape[:2]
    xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, w)
    xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, h)
    return xyxy


# -- YOLOX (ONNX) --------------------------------------------------------------------------------
def onnx_session(path: str | Path, device: str = "cpu", threads: int | None = None) -> Any:
    """An onnxruntime session that shares the CPU well with the rest of the pipeline.

    Intra-op threads default to torch's thread count (the one process-wide setting, which users
    change with ``OMP_NUM_THREADS`` or ``torch.set_num_threads``), and idle pool threads sleep
    instead of spinning. The detector, the ReID model, the pose model and the decoding thread take
    turns on the same cores; a spinning pool burns the core the next stage needs. On a busy
    2-core machine this made YOLOX-Nano 2-3x faster (see ``bench/README.md``).

    Args:
        path: ONNX file.
        device: ``cpu`` or ``cuda[:N]`` (CUDA when onnxruntime has the CUDA provider).
        threads: Intra-op threads (default: ``torch.get_num_threads()``).

    Raises:
        WeightsNotFoundError: The file is not a loadable ONNX model.
    """
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = max(1, int(threads))
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as e:  # onnxruntime raises its own exception types
        raise WeightsNotFoundError(f"cannot load ONNX model {path}: {e}") from e


def run_onnx(session: Any, input_name: str, batch: np.ndarray, fixed_batch: int | None) -> np.ndarray:
    """First output of ``session`` for ``batch``; models exported with a fixed batch size are fed
    in chunks of that size (the last one padded by repeating its last item, then trimmed)."""
    if not fixed_batch:
        return session.run(None, {input_name: batch})[0]
    outs = []
    for s in range(0, len(batch), fixed_batch):
        part = batch[s : s + fixed_batch]
        n = len(part)
        if n < fixed_batch:
            part = np.concatenate([part, np.repeat(part[-1:], fixed_batch - n, 0)])
        outs.append(session.run(None, {input_name: part})[0][:n])
    return np.concatenate(outs, 0)


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
        return Detections(_clip(xyxy[idx].astype(np.float32), shape), scores[idx])

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


# -- ultralytics -----------------------------------------------------------------------------------
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
        from csip_reid._ultralytics import import_ultralytics, keep_torch_threads

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


# -- factory ---------------------------------------------------------------------------------------
def _bare_kind(name: str) -> str:
    """Back-end for a spec without ``KIND:`` (the rule in :func:`is_yolox_onnx`)."""
    local = find_local(name)
    info = KNOWN_WEIGHTS.get(name)
    filename = str(local) if local else (info.filename if info else name)
    if not filename.lower().endswith(".onnx"):
        return "ultralytics"
    if local is None:
        local = resolve_weights(name, "detector weights")
    return "yolox" if is_yolox_onnx(local) else "ultralytics"


def create_detector(
    spec: str = DEFAULT_DETECTOR, device: str = "cpu", conf: float = DEFAULT_CONF, **opts: Any
) -> Detector:
    """Build a detector from a spec (see the module docstring).

    Args:
        spec: ``KIND:WEIGHTS``, ``KIND`` or bare ``WEIGHTS``.
        device: ``cpu`` or ``cuda[:N]``.
        conf: Minimum detection confidence.
        **opts: Back-end options (``iou``, ``imgsz``, ``batch_size`` ...).

    Raises:
        WeightsNotFoundError: Weights missing (offline hub names fail at once) or unreadable.
        ConfigError: Unknown back-end or unsuitable model.
    """
    kind, arg = split_spec(spec)
    if kind not in DETECTORS:
        kind, arg = _bare_kind(spec.strip()), spec.strip()
    return DETECTORS.create(f"{kind}:{arg}" if arg else kind, device=device, conf=conf, **opts)
