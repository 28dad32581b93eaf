"""PRID-2011 multi-shot (Hirzer et al., SCIA 2011), with the splits of the iLIDS-VID authors.

Layout (as torchreid expects it)::

    <root>/prid_2011/multi_shot/cam_a/person_0001/0001.png
    <root>/prid_2011/multi_shot/cam_b/person_0001/...
    <root>/splits_prid2011.json     [{"train": ["person_0001", ...], "test": [...]}, ... 10 splits]

The splits cover the 178 persons seen by both cameras with enough frames. Query = the cam_a
sequence of each test person, gallery = its cam_b sequence; training uses both cameras.
CSIP-ReID does not use PRID.

Skeletons: ``<root>/skeleton_3d_hmr2.0/prid_2011/...`` or ``<root>/skeletons/prid_2011/...``.
"""

from __future__ import annotations

import json

from csip_reid.core.errors import DatasetError
from csip_reid.data.datasets.base import (
    DATASETS,
    SkeletonLocator,
    dataset_root,
    default_sources,
    digits,
    list_images,
    make_dataset,
    require_dir,
    require_file,
)
from csip_reid.data.records import SequenceRecord, VideoReIDDataset

_SHOT = "prid_2011/multi_shot"


@DATASETS.register("prid", help="PRID-2011 multi_shot with splits_prid2011.json (--split 0..9)")
def build_prid(root: str | None, split: int = 0, skeletons: str = "auto") -> VideoReIDDataset:
    """Read one PRID-2011 split.

    Args:
        root: Folder holding ``prid_2011/`` and ``splits_prid2011.json``.
        split: Split number (0-9 in the usual file).
        skeletons: ``auto``, ``none`` or a skeleton folder name under the root.
    """
    base = dataset_root(root, "prid")
    cam_dirs = [require_dir(base / _SHOT / c, f"PRID-2011 {c} sequences") for c in ("cam_a", "cam_b")]
    split_file = require_file(base / "splits_prid2011.json", "PRID-2011 split file")
    try:
        splits = json.loads(split_file.read_text())
    except ValueError as e:
        raise DatasetError(f"cannot parse {split_file}: {e}") from e
    if not isinstance(splits, list) or not 0 <= split < len(splits):
        n = len(splits) if isinstance(splits, list) else 0
        raise DatasetError(f"PRID-2011 split {split} does not exist in {split_file} ({n} splits)")
    entry = splits[split]
    if not isinstance(entry, dict) or "train" not in entry or "test" not in entry:
        raise DatasetError(f"{split_file}: split {split} needs 'train' and 'test' lists")

    locator = SkeletonLocator(base, default_sources(skeletons))

    def record(person: str, cam: int) -> SequenceRecord:
        folder = require_dir(cam_dirs[cam] / person, f"PRID-2011 sequence of {person} in {cam_dirs[cam].name}")
        frames = list_images(folder)
        if not frames:
            raise DatasetError(f"PRID-2011: no images in {folder}")
        return SequenceRecord(frames, digits(person), cam, locator.find(frames), f"{cam_dirs[cam].name}_{person}")

    train = [record(p, c) for p in sorted(entry["train"]) for c in (0, 1)]
    query = [record(p, 0) for p in sorted(entry["test"])]
    gallery = [record(p, 1) for p in sorted(entry["test"])]
    return make_dataset("prid", train, query, gallery, locator)
