"""The gallery's ``manifest.json``: format, schema version, embedder identity, index policy.

The manifest records the format, the schema version, the embedder that made the vectors
(``describe()`` plus fingerprint) and their dimension, and the index policy. It is written last
when a gallery is created (it is the commit point of creation) and its ``updated`` time is
refreshed after every write. See :mod:`csip_reid.gallery.store` for the whole layout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from csip_reid.core.errors import GalleryError
from csip_reid.core.walltime import now_iso
from csip_reid.gallery.files import DATABASE, MANIFEST, OWN_ENTRIES, read_json, write_json_atomic
from csip_reid.gallery.kinds import IndexPolicy
from csip_reid.gallery.schema import FORMAT, SCHEMA_VERSION


def embedder_info(embedder: Any) -> dict[str, Any]:
    """The identity of an :class:`~csip_reid.core.embedder.Embedder` as galleries store it."""
    return {**embedder.describe(), "fingerprint": embedder.fingerprint()}


def embedder_identity(info: dict[str, Any]) -> tuple[str, int]:
    """``(fingerprint, dim)`` of an :func:`embedder_info` dict.

    Raises:
        GalleryError: ``info`` lacks either.
    """
    try:
        return str(info["fingerprint"]), int(info["dim"])
    except (KeyError, TypeError, ValueError):
        raise GalleryError(
            "embedder info must carry 'fingerprint' and 'dim' (use gallery.store.embedder_info(embedder))"
        ) from None


def describe_embedder(info: dict[str, Any]) -> str:
    """One-line description of an embedder for error messages."""
    name = info.get("spec") or info.get("kind") or "unknown"
    return f"{name} (dim {info.get('dim')}, fingerprint {info.get('fingerprint')})"


def new_manifest(embedder_info: dict[str, Any], policy: IndexPolicy) -> dict[str, Any]:
    """The manifest of a new gallery for vectors of the given embedder."""
    fingerprint, dim = embedder_identity(embedder_info)
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "embedder": {k: v for k, v in embedder_info.items() if k != "fingerprint"},
        "fingerprint": fingerprint,
        "dim": dim,
        "skeleton_format": embedder_info.get("skeleton_format"),
        "index_policy": policy.to_dict(),
        "created": now_iso(),
        "updated": now_iso(),
    }


def check_new_folder(root: Path) -> None:
    """Refuse to create a gallery in ``root`` unless it is new, empty, or left by a crashed creation.

    Raises:
        GalleryError: ``root`` is a gallery already, a file, or a folder with other content.
    """
    if (root / MANIFEST).is_file():
        raise GalleryError(f"{root} is already a gallery; open it or choose another --gallery")
    if root.exists() and not root.is_dir():
        raise GalleryError(f"cannot create gallery {root}: it is a file")
    if root.is_dir():
        foreign = sorted(p.name for p in root.iterdir() if p.name not in OWN_ENTRIES)
        if foreign:
            raise GalleryError(f"cannot create gallery in {root}: the folder is not empty "
                               f"({', '.join(foreign[:3])}...); choose an empty or new folder")


def read_manifest(root: Path) -> dict[str, Any]:
    """The validated manifest of the gallery at ``root``.

    Raises:
        GalleryError: Missing folder, not a gallery, corrupt or foreign manifest, a manifest of a
            newer csip-reid, or no database.
    """
    if not root.is_dir():
        raise GalleryError(f"gallery {root} does not exist")
    if not (root / MANIFEST).is_file():
        raise GalleryError(f"{root} is not a csip-reid gallery (no {MANIFEST})")
    manifest = read_json(root / MANIFEST)
    if manifest is None:
        raise GalleryError(f"gallery {root}: {MANIFEST} is corrupt (not a JSON object)")
    if manifest.get("format") != FORMAT:
        raise GalleryError(f"gallery {root}: {MANIFEST} is not a {FORMAT} manifest")
    if not isinstance(manifest.get("fingerprint"), str) or not isinstance(manifest.get("dim"), int):
        raise GalleryError(f"gallery {root}: {MANIFEST} is corrupt (no embedder fingerprint/dim)")
    if int(manifest.get("schema_version", 0)) > SCHEMA_VERSION:
        raise GalleryError(f"gallery {root} was written by a newer csip-reid (schema "
                           f"{manifest['schema_version']}); upgrade csip-reid")
    if not (root / DATABASE).is_file():
        raise GalleryError(f"gallery {root} is corrupt: {DATABASE} is missing")
    return manifest


def write_manifest(root: Path, manifest: dict[str, Any]) -> None:
    """Replace ``root/manifest.json`` atomically."""
    write_json_atomic(root / MANIFEST, manifest)
