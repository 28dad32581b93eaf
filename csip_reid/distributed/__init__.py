"""Scale-out indexing on a Ray cluster (``reid index --executor ray``); see docs/scale.md."""

from csip_reid.distributed.executor import RayIndexer, RayOptions

__all__ = ["RayIndexer", "RayOptions"]
