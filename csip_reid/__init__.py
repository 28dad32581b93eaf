"""csip-reid: video person re-identification with CSIP-ReID and a FAISS gallery."""

import os

# Idle OpenMP threads sleep instead of spinning: on a small CPU shared by decoding, detection,
# ONNX and torch stages, spinning threads starve the others (bench/README.md: yolo11n on 2 cores,
# 2 torch threads under load 453-1294 ms/frame with spinning vs 87 ms passive). Must be set before
# torch is imported; a user's own value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import importlib  # noqa: E402
from typing import Any  # noqa: E402

from csip_reid.core import __version__  # noqa: E402
from csip_reid.core.tracklet import Tracklet  # noqa: E402

# The public API, imported on first use so that `import csip_reid` stays light (no torch, no cv2).
_LAZY = {
    "PipelineSettings": "csip_reid.pipeline.settings",
    "Pipeline": "csip_reid.pipeline.indexer",
    "Indexer": "csip_reid.pipeline.indexer",
    "run_query": "csip_reid.pipeline.query",
    "run_query_tracklet": "csip_reid.pipeline.query",
    "build_identities": "csip_reid.identity",
    "list_identities": "csip_reid.identity",
    "label": "csip_reid.identity",
    "Gallery": "csip_reid.gallery",
    "Hit": "csip_reid.gallery",
    "Detections": "csip_reid.core.detections",
    "Embedder": "csip_reid.core.embedder",
    "create_embedder": "csip_reid.pipeline.embed",
    "create_detector": "csip_reid.pipeline.detect",
    "create_tracker": "csip_reid.tracking",
    "create_pose": "csip_reid.pipeline.pose",
    "extract_tracklets": "csip_reid.pipeline.extract",
    "build_dataset": "csip_reid.data",
    "evaluate_embedder": "csip_reid.engine.evaluate",
    "train": "csip_reid.engine.train",
    "resolve_weights": "csip_reid.core.weights",
}

__all__ = ["Tracklet", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'csip_reid' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
