"""csip-reid: video person re-identification with CSIP-ReID and a FAISS gallery."""

from csip_reid.tracklet import Tracklet

__all__ = ["Tracklet", "__version__"]
__version__ = "0.1.0"
