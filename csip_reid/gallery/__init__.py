"""Persistent tracklet gallery (SQLite + FAISS), search, and HTML search reports."""

from csip_reid.gallery.index import IndexPolicy
from csip_reid.gallery.report import write_report
from csip_reid.gallery.schema import GalleryRecord, Hit
from csip_reid.gallery.store import Gallery, embedder_info

__all__ = ["Gallery", "GalleryRecord", "Hit", "IndexPolicy", "embedder_info", "write_report"]
