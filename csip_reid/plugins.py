"""Import every built-in back-end so the registries are filled, and list them."""

from __future__ import annotations

import importlib

_MODULES = (
    "csip_reid.pipeline.detectors",
    "csip_reid.tracking.trackers",
    "csip_reid.pipeline.pose",
    "csip_reid.pipeline.onnx_embedder",
    "csip_reid.models.embedder",
    "csip_reid.models.skeleton_embedder",
    "csip_reid.data",
)


def load_builtin() -> None:
    """Import the modules that register built-in back-ends."""
    for m in _MODULES:
        importlib.import_module(m)


def all_registries() -> dict[str, list[str]]:
    """Registered names per registry kind."""
    load_builtin()
    from csip_reid.data.datasets import DATASETS
    from csip_reid.pipeline.detectors import DETECTORS
    from csip_reid.pipeline.embedders import EMBEDDERS
    from csip_reid.pipeline.pose import POSES
    from csip_reid.tracking.trackers import TRACKERS

    return {
        "detectors": DETECTORS.names(),
        "trackers": TRACKERS.names(),
        "pose": ["none", *POSES.names()],
        "embedders": EMBEDDERS.names(),
        "datasets": DATASETS.names(),
    }
