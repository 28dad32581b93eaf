"""iLIDS-VID (Wang et al., ECCV 2014): 300 identities seen by 2 cameras, 600 sequences.

Layout of the released archive::

    <root>/i-LIDS-VID/sequences/cam1/person001/cam1_person001_00317.png
    <root>/i-LIDS-VID/sequences/cam2/person001/...
    <root>/train-test people splits/train_test_splits_ilidsvid.mat   ls_set: 10 x 300, 1-based

Row ``split`` of ``ls_set`` lists 1-based positions in the sorted list of person folders. The
**first 150 are the test identities and the last 150 the training identities**, following
Wang et al. and torchreid. CSIP-ReID's loader (inherited from older sequence-ReID code) uses the
opposite halves, so its split k trains on what is tested here. Query = the cam1 sequence of each
test identity, gallery = its cam2 sequence, one record per sequence (tracklet level; CSIP instead
scores every 8-frame window as its own query/gallery item). Training uses both cameras.

Skeletons: ``<root>/i-LIDS-VID/sequences_skeleton_3d_hmr2.0/cam*/person*/<frame>.json``
(CSIP-ReID), ``<root>/skeleton_3d_hmr2.0/i-LIDS-VID/sequences/...`` or
``<root>/skeletons/i-LIDS-VID/sequences/...``.
"""

from __future__ import annotations

import numpy as np
from scipy.io import loadmat

from csip_reid.core.errors import DatasetError
from csip_reid.data.datasets.base import (
    DATASETS,
    SkeletonLocator,
    SkeletonSource,
    dataset_root,
    default_sources,
    digits,
    list_images,
    make_dataset,
    require_dir,
    require_file,
)
from csip_reid.data.records import SequenceRecord, VideoReIDDataset
from csip_reid.data.skeleton_io import HMR_FORMAT

_SEQ = "i-LIDS-VID/sequences"
_SPLITS = "train-test people splits/train_test_splits_ilidsvid.mat"


@DATASETS.register("ilidsvid", help="iLIDS-VID: i-LIDS-VID/sequences/ and the ls_set split file (--split 0..9)")
def build_ilidsvid(root: str | None, split: int = 0, skeletons: str = "auto") -> VideoReIDDataset:
    """Read one of the ten iLIDS-VID splits.

    Args:
        root: Folder holding ``i-LIDS-VID/`` and ``train-test people splits/``.
        split: Split number, 0-9.
        skeletons: ``auto``, ``none`` or a skeleton folder name under the root.
    """
    base = dataset_root(root, "ilidsvid")
    cam_dirs = [require_dir(base / _SEQ / c, f"iLIDS-VID {c} sequences") for c in ("cam1", "cam2")]
    split_file = require_file(base / _SPLITS, "iLIDS-VID split file")
    try:
        ls_set = np.asarray(loadmat(str(split_file))["ls_set"], dtype=np.int64)
    except Exception as e:  # scipy raises several unrelated types for a corrupt file
        raise DatasetError(f"cannot read 'ls_set' from {split_file}: {e}") from e
    if ls_set.ndim != 2 or ls_set.shape[1] % 2:
        raise DatasetError(f"{split_file}: ls_set must be splits x (an even number of persons), got {ls_set.shape}")
    if not 0 <= split < ls_set.shape[0]:
        raise DatasetError(f"iLIDS-VID split {split} does not exist; choose 0..{ls_set.shape[0] - 1}")

    persons = sorted(p.name for p in cam_dirs[0].iterdir() if p.is_dir())
    row = ls_set[split] - 1
    if row.min() < 0 or row.max() >= len(persons):
        raise DatasetError(f"{split_file}: split {split} indexes persons beyond the {len(persons)} folders in cam1")
    half = len(row) // 2
    test_ids, train_ids = [persons[i] for i in row[:half]], [persons[i] for i in row[half:]]

    sources = default_sources(skeletons)
    if skeletons == "auto":
        sources.insert(0, SkeletonSource(_SEQ, "i-LIDS-VID/sequences_skeleton_3d_hmr2.0", HMR_FORMAT))
    locator = SkeletonLocator(base, sources)

    def record(person: str, cam: int) -> SequenceRecord:
        folder = require_dir(cam_dirs[cam] / person, f"iLIDS-VID sequence of {person} in cam{cam + 1}")
        frames = list_images(folder)
        if not frames:
            raise DatasetError(f"iLIDS-VID: no images in {folder}")
        return SequenceRecord(frames, digits(person), cam, locator.find(frames), f"cam{cam + 1}_{person}")

    train = [record(p, c) for p in sorted(train_ids) for c in (0, 1)]
    query = [record(p, 0) for p in sorted(test_ids)]
    gallery = [record(p, 1) for p in sorted(test_ids)]
    return make_dataset("ilidsvid", train, query, gallery, locator)
