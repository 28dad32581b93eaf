"""A user's own tracklets in a plain folder layout (documented in ``docs/datasets.md``).

::

    <root>/train/<person>/<camera>_<tracklet>/<frame>.jpg
    <root>/query/<person>/<camera>_<tracklet>/<frame>.jpg
    <root>/gallery/<person>/<camera>_<tracklet>/<frame>.jpg
    <root>/dataset.json                     optional: {"name": ..., "skeleton_format": ..., ...}

* Frames are ``.jpg``, ``.jpeg``, ``.png`` or ``.bmp``, ordered by their names with numbers
  compared numerically (``f2`` before ``f10``).
* ``<person>``: when every person folder is an integer, that integer is the person id; otherwise
  the ids are the positions of the names in their sorted list (shared by all splits, so a person
  in query and gallery gets one id). The same folder name in train and query is the same person.
* ``<camera>_<tracklet>``: the camera is the part before the last ``_``. Camera indices are the
  positions of the camera names in their sorted list over all splits (numbers sort numerically).
* A skeleton file may sit next to each frame with the same stem and ``.json``
  (``{"keypoints": 17x3, "format": ...}``, see ``csip_reid.data.skeleton_io``), or under
  ``<root>/skeletons/`` mirroring the frame paths. The format is ``dataset.json``'s
  ``skeleton_format``, else the files' ``format`` key, else ``h36m17-3d``.
* ``dataset.json`` is optional; only its ``name`` and ``skeleton_format`` are read (other keys,
  such as those ``reid export-dataset`` writes, are informative).
* ``train`` alone (training only), ``query`` + ``gallery`` alone (evaluation only) or all three.
"""

from __future__ import annotations

import json
from pathlib import Path

from csip_reid.core.errors import DatasetError
from csip_reid.data.datasets.base import (
    DATASETS,
    IMAGE_EXTS,
    SkeletonLocator,
    SkeletonSource,
    dataset_root,
    default_sources,
    list_images,
    make_dataset,
    natural_key,
)
from csip_reid.data.records import SequenceRecord, VideoReIDDataset

_SPLITS = ("train", "query", "gallery")
_MANIFEST_KEYS = ("name", "skeleton_format")


def _manifest(base: Path) -> dict[str, str]:
    """The ``name`` and ``skeleton_format`` of ``dataset.json`` (other keys are informative only)."""
    path = base / "dataset.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as e:
        raise DatasetError(f"cannot parse {path}: {e}") from e
    if not isinstance(data, dict):
        raise DatasetError(f"{path} must hold a JSON object")
    out = {}
    for key in _MANIFEST_KEYS:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise DatasetError(f"{path}: {key!r} must be a non-empty string, got {value!r}")
        out[key] = value
    return out


def _scan(split_dir: Path) -> list[tuple[str, str, Path]]:
    """``(person, camera, tracklet folder)`` for every tracklet folder of one split."""
    found = []
    for person in sorted((p for p in split_dir.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name)):
        for entry in sorted(person.iterdir(), key=lambda p: natural_key(p.name)):
            if entry.is_file() and entry.suffix.lower() in IMAGE_EXTS:
                raise DatasetError(
                    f"image {entry} sits directly in a person folder; expected "
                    f"{split_dir}/<person>/<camera>_<tracklet>/<frame>.jpg"
                )
            if not entry.is_dir():
                continue
            camera, sep, _ = entry.name.rpartition("_")
            if not sep or not camera:
                raise DatasetError(f"tracklet folder {entry} must be named <camera>_<tracklet>")
            found.append((person.name, camera, entry))
    return found


def _id_map(names: set[str]) -> dict[str, int]:
    if all(n.lstrip("-").isdigit() for n in names):
        return {n: int(n) for n in names}
    return {n: i for i, n in enumerate(sorted(names, key=natural_key))}


@DATASETS.register("custom", help="your own tracklets: <root>/{train,query,gallery}/<person>/<camera>_<tracklet>/")
def build_custom(root: str | None, skeletons: str = "auto") -> VideoReIDDataset:
    """Read a dataset in the custom folder layout.

    Args:
        root: The dataset folder.
        skeletons: ``auto`` (next to the frames, then ``skeletons/``), ``none`` or a skeleton
            folder name under the root.
    """
    base = dataset_root(root, "custom")
    manifest = _manifest(base)
    scans = {s: _scan(base / s) if (base / s).is_dir() else [] for s in _SPLITS}
    if not any(scans.values()):
        raise DatasetError(f"no tracklets found: expected {base}/train, {base}/query or {base}/gallery "
                           "holding <person>/<camera>_<tracklet>/<frame>.jpg")
    if bool(scans["query"]) != bool(scans["gallery"]):
        have, missing = ("query", "gallery") if scans["query"] else ("gallery", "query")
        raise DatasetError(f"{base} has a {have} split but no {missing} split (expected {base / missing})")

    people = _id_map({p for s in scans.values() for p, _, _ in s})
    cameras = {c: i for i, c in enumerate(sorted({c for s in scans.values() for _, c, _ in s}, key=natural_key))}
    sources = default_sources(skeletons)
    if skeletons == "auto":
        sources.insert(0, SkeletonSource("", ""))
    locator = SkeletonLocator(base, sources)

    splits: dict[str, list[SequenceRecord]] = {}
    for split, entries in scans.items():
        records = []
        for person, camera, folder in entries:
            frames = list_images(folder)
            if not frames:
                raise DatasetError(f"tracklet folder {folder} holds no images ({', '.join(IMAGE_EXTS)})")
            name = f"{split}/{person}/{folder.name}"
            records.append(SequenceRecord(frames, people[person], cameras[camera], locator.find(frames), name))
        splits[split] = records
    return make_dataset(manifest.get("name", "custom"), splits["train"], splits["query"], splits["gallery"],
                        locator, manifest.get("skeleton_format"))
