"""Embedder back-ends, one file each, behind :data:`~csip_reid.core.embedder.EMBEDDERS`.

* ``onnx:PATH_OR_NAME``: any ONNX person-ReID image model (:mod:`.onnx`).
* ``openvino:PATH_OR_NAME``: an OpenVINO IR or ONNX person-ReID model (:mod:`.openvino`).
* ``csip:CHECKPOINT``: a CSIP-ReID checkpoint trained with ``reid train`` (:mod:`.csip`).
* ``skeleton:CHECKPOINT``: that checkpoint's skeleton encoder alone (:mod:`.skeleton`).
"""

from __future__ import annotations

from typing import Any

from csip_reid.core.embedder import EMBEDDERS, Embedder
from csip_reid.pipeline.embed import csip as _csip  # noqa: F401  (registers)
from csip_reid.pipeline.embed import onnx as _onnx  # noqa: F401
from csip_reid.pipeline.embed import openvino as _openvino  # noqa: F401
from csip_reid.pipeline.embed import skeleton as _skeleton  # noqa: F401

__all__ = ["EMBEDDERS", "create_embedder"]


def create_embedder(spec: str, device: str = "cpu", **options: Any) -> Embedder:
    """Build an embedder from a spec such as ``onnx:osnet_x0_25_msmt17`` or ``csip:run/best.pt``."""
    return EMBEDDERS.create(spec, device=device, **options)
