"""Person detector back-ends, one file each, behind :data:`DETECTORS`.

Specs (``--detector``, see ``reid backends``):
    * ``ultralytics:WEIGHTS`` (default, ``ultralytics:yolo11n.pt``): :mod:`.ultralytics`.
    * ``yolox:WEIGHTS`` (``yolox:yolox_nano``): :mod:`.yolox`.

Weights are looked up as a path, then in ``$REID_WEIGHTS_DIR`` and the csip-reid cache (see
:mod:`csip_reid.core.weights`).
"""

from __future__ import annotations

from typing import Any

from csip_reid.core.weights import KNOWN_WEIGHTS, find_local, resolve_weights
from csip_reid.pipeline.detect import ultralytics as _ultralytics  # noqa: F401  (registers)
from csip_reid.pipeline.detect import yolox as _yolox  # noqa: F401
from csip_reid.pipeline.detect.base import DEFAULT_CONF, DEFAULT_DETECTOR, DETECTORS, Detector
from csip_reid.pipeline.detect.yolox import is_yolox_onnx

__all__ = ["DEFAULT_CONF", "DEFAULT_DETECTOR", "DETECTORS", "Detector", "create_detector"]


def _bare_weights(spec: str) -> str:
    """Old spelling: weights alone. YOLOX for a YOLOX-shaped ``.onnx`` file, ultralytics otherwise."""
    local = find_local(spec)
    info = KNOWN_WEIGHTS.get(spec)
    filename = str(local) if local else (info.filename if info else spec)
    if not filename.lower().endswith(".onnx"):
        return f"ultralytics:{spec}"
    if local is None:
        local = resolve_weights(spec, "detector weights")
    return f"yolox:{spec}" if is_yolox_onnx(local) else f"ultralytics:{spec}"


DETECTORS.legacy = _bare_weights


def create_detector(
    spec: str = DEFAULT_DETECTOR, device: str = "cpu", conf: float = DEFAULT_CONF, **opts: Any
) -> Detector:
    """Build a detector from a spec (see the module docstring).

    Args:
        spec: ``KIND[:WEIGHTS]`` (a bare ``WEIGHTS`` of older galleries is still read).
        device: ``cpu`` or ``cuda[:N]``.
        conf: Minimum detection confidence.
        **opts: Back-end options (``iou``, ``imgsz``, ``batch_size`` ...).

    Raises:
        WeightsNotFoundError: Weights missing (offline hub names fail at once) or unreadable.
        ConfigError: Unknown back-end or unsuitable model.
    """
    return DETECTORS.create(spec, device=device, conf=conf, **opts)
