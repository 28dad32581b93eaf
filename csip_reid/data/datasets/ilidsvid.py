"""iLIDS-VID (Wang et al., ECCV 2014): 300 identities seen by 2 cameras, 600 sequences.

Layout of the released archive::

    <root>/i-LIDS-VID/sequences/cam1/person001/cam1_person001_00317.png
    <root>/i-LIDS-VID/sequences/cam2/person001/...
    <root>/train-test people splits/train_test_splits_ilidsvid.mat   ls_set: 10 x 300, 1-based

Row ``split`` of ``ls_set`` lists 1-based positions in the sorted list of person folders. The
**first 150 are the test identities and the last 150 the training identities**, following
Wang et al. and torchreid. CSIP-ReID's loader (inherited from older sequence-ReID code) uses the
opposite halves, so its split k trains on what is tested here. Query = the cam1 sequence of each
test identity, gallery = its cam2 sequence. By default (``eval_chunks=True``, the official
protocol) every 8-frame window of those sequences is its own query/gallery item;
``eval_chunks=False`` keeps one item per sequence (tracklet level).
Training uses both cameras, one record per sequence, or, with ``train_window=8,
train_window_stride=4`` (the official recipe, ``csip_ilidsvid.yaml``), one record per 8-frame
window. Windows start at frames 0, 4, 8, ... below ``n - window`` (the official
``range(0, n - 8, 4)``: a window never ends exactly on the last frame); a sequence of at most
``window`` frames is one record.

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


def window_starts(n: int, window: int, stride: int) -> list[int] | None:
    """Start frames of the ``window``-frame windows of an ``n``-frame sequence (None: keep it whole)."""
    if window <= 0 or n <= window:
        return None
    return list(range(0, n - window, stride))


@DATASETS.register("ilidsvid", help="iLIDS-VID: i-LIDS-VID/sequences/ and the ls_set split file (--split 0..9)")
def build_ilidsvid(root: str | None, split: int = 0, skeletons: str = "auto", train_window: int = 0,
                   train_window_stride: int = 4, eval_chunks: bool = True) -> VideoReIDDataset:
    """Read one of the ten iLIDS-VID splits.

    Args:
        root: Folder holding ``i-LIDS-VID/`` and ``train-test people splits/``.
        split: Split number, 0-9.
        skeletons: ``auto``, ``none`` or a skeleton folder name under the root.
        train_window: Cut training sequences into windows of this many frames (0: whole sequences).
        train_window_stride: Step between window starts.
        eval_chunks: Cut query and gallery into windows (8 frames, stride 4 unless
            ``train_window`` says otherwise): the official chunk-level evaluation (default).
            False: one query/gallery item per sequence.
    """
    if train_window < 0 or train_window_stride < 1:
        raise DatasetError(f"iLIDS-VID: train_window must be >= 0 and train_window_stride >= 1, "
                           f"got {train_window}, {train_window_stride}")
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

    def records(person: str, cam: int, window: int = 0) -> list[SequenceRecord]:
        folder = require_dir(cam_dirs[cam] / person, f"iLIDS-VID sequence of {person} in cam{cam + 1}")
        frames = list_images(folder)
        if not frames:
            raise DatasetError(f"iLIDS-VID: no images in {folder}")
        name = f"cam{cam + 1}_{person}"
        starts = window_starts(len(frames), window, train_window_stride)
        if starts is None:
            return [SequenceRecord(frames, digits(person), cam, locator.find(frames), name)]
        return [SequenceRecord(frames[s : s + window], digits(person), cam, locator.find(frames[s : s + window]),
                               f"{name}#{k}") for k, s in enumerate(starts)]

    eval_window = (train_window or 8) if eval_chunks else 0
    train = [r for p in sorted(train_ids) for c in (0, 1) for r in records(p, c, train_window)]
    query = [r for p in sorted(test_ids) for r in records(p, 0, eval_window)]
    gallery = [r for p in sorted(test_ids) for r in records(p, 1, eval_window)]
    return make_dataset("ilidsvid", train, query, gallery, locator)
