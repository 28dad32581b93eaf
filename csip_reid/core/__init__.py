"""The bottom layer: types and contracts every other package builds on; imports nothing of ours.

* :class:`~csip_reid.core.tracklet.Tracklet` (the one result type) and
  :class:`~csip_reid.core.detections.Detections` (per-frame detections, tracked or not).
* The embedder contract: :class:`~csip_reid.core.embedder.Embedder`,
  :class:`~csip_reid.core.embedder.CropPreprocess`, :func:`~csip_reid.core.arrays.l2_normalize`.
* :class:`~csip_reid.core.registry.Registry` and the one back-end spec grammar.
* Errors (:mod:`.errors`), weights by name (:mod:`.weights`), onnxruntime helpers (:mod:`.onnx`),
  video reading (:mod:`.video`), skeleton formats (:mod:`.skeleton`), shipped configs
  (:mod:`.configs`), and the ultralytics import guard (:mod:`.ultralytics_env`).

Importing :mod:`csip_reid.core` loads none of torch, cv2 or onnxruntime; its modules import what
they need.
"""

from importlib.metadata import PackageNotFoundError, version

try:  # the one place the version is read: the installed distribution's metadata (pyproject.toml)
    __version__ = version("csip-reid")
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0+unknown"
