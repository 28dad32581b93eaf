"""The gallery directory's file names, and crash-safe JSON files (written aside, fsynced, renamed).

See :mod:`csip_reid.gallery.store` for the whole layout. Every JSON file of a gallery (the manifest,
the index sidecar) is replaced atomically by :func:`write_json_atomic`: a reader sees the old file
or the new one, never a torn one.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
DATABASE = "gallery.db"
LOCK = "write.lock"
THUMBS = "thumbs"
#: The index sidecar: names the committed FAISS file and which tracklet ids it holds.
SIDECAR = "index.json"
#: Entries a gallery folder may hold before it is created (a crashed creation leaves these).
OWN_ENTRIES = frozenset({MANIFEST, DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm", f"{DATABASE}-journal",
                         THUMBS, LOCK})


def fsync_file(path: Path) -> None:
    """Flush a written file's content to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temporary file in the same folder, fsync it, then rename over ``path``."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None if it is missing or not a JSON object."""
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None
