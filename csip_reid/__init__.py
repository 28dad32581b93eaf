"""csip-reid: video person re-identification with CSIP-ReID and a FAISS gallery."""

import os

# Idle OpenMP threads sleep instead of spinning: on a small CPU shared by decoding, detection,
# ONNX and torch stages, spinning threads starve the others (bench/README.md: yolo11n on 2 cores,
# 2 torch threads under load 453-1294 ms/frame with spinning vs 87 ms passive). Must be set before
# torch is imported; a user's own value wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from csip_reid.tracklet import Tracklet  # noqa: E402

__all__ = ["Tracklet", "__version__"]
__version__ = "0.1.0"
