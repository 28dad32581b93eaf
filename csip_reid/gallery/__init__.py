"""Persistent tracklet gallery (SQLite + FAISS), search, and HTML search reports.

The names below load on first use, so ``csip_reid.gallery.kinds`` (the table of index kinds the
CLI help reads) can be imported without FAISS, NumPy or OpenCV.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "KINDS": "kinds", "IndexKind": "kinds", "IndexPolicy": "kinds", "write_report": "report",
    "GalleryRecord": "schema", "Hit": "schema", "Gallery": "store", "embedder_info": "store",
    "StoredVideo": "videos", "VideoRecord": "videos",
}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
