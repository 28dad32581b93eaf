"""LS-VID (Li et al., ICCV 2019): 3772 identities, 15 cameras, 14,943 tracklets.

Layout of the released archive (TF-CLIP/CSIP-ReID expect the same files under ``info/``; both
are accepted)::

    <root>/list_sequence/list_seq_train.txt   lines "<frame path prefix> <pid>"
    <root>/list_sequence/list_seq_test.txt
    <root>/test/data/info_test.mat            HDF5, dataset "query": 1-based rows of the test list
    <root>/tracklet_train/..., <root>/tracklet_test/...

A tracklet's frames are the files whose path starts with its prefix, in sorted order. The third
``_``-separated field of a frame's file name is its camera (1-15). Tracks with pid -1 are skipped;
the gallery is the test list minus the query rows (as in TF-CLIP/CSIP; some older loaders keep
the query rows in the gallery because 140 queries have no other match).

``train_piece_len``: CSIP-ReID/TF-CLIP cut each training tracklet into pieces of 48 frames (the
last piece takes the remainder) and, by a bug, drop tracklets shorter than 48 frames. Here the
default 0 keeps whole tracklets; with a positive value short tracklets are kept whole.

Skeletons: ``<root>/skeleton_3d_hmr2.0/<same relative path>.json`` or ``<root>/skeletons/...``.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from csip_reid.core.errors import DatasetError
from csip_reid.data.datasets.base import (
    DATASETS,
    SkeletonLocator,
    dataset_root,
    default_sources,
    make_dataset,
    require_file,
)
from csip_reid.data.records import SequenceRecord, VideoReIDDataset


def _first_existing(base: Path, candidates: tuple[str, ...], what: str) -> Path:
    for c in candidates:
        if (base / c).is_file():
            return base / c
    return require_file(base / candidates[0], what)


def _read_list(path: Path) -> list[tuple[str, int]]:
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise DatasetError(f"{path}:{n}: expected '<path prefix> <pid>', got {line!r}")
        rows.append((parts[0], int(parts[1])))
    return rows


class _PrefixGlob:
    """Files of a folder starting with a prefix, with one cached listing per folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[Path, list[str]] = {}

    def __call__(self, prefix: str) -> list[str]:
        full = self.root / prefix
        folder, stem = full.parent, full.name
        if folder not in self._cache:
            self._cache[folder] = sorted(os.listdir(folder)) if folder.is_dir() else []
        return [str(folder / n) for n in self._cache[folder] if n.startswith(stem)]


def _records(
    rows: list[tuple[str, int]], files: _PrefixGlob, locator: SkeletonLocator, piece_len: int = 0
) -> list[SequenceRecord]:
    out = []
    for prefix, pid in rows:
        if pid == -1:
            continue
        frames = files(prefix)
        if not frames:
            raise DatasetError(f"LS-VID: no frames match {files.root / prefix}*")
        fields = os.path.basename(frames[0]).split("_")
        if len(fields) < 4 or not fields[2].isdigit():
            raise DatasetError(f"LS-VID: cannot read the camera from {frames[0]} (expected a_b_CAM_d...)")
        camid = int(fields[2]) - 1
        name = os.path.basename(prefix).rstrip("_")
        pieces = [frames]
        if piece_len > 0 and len(frames) >= piece_len:
            n = len(frames) // piece_len
            pieces = [frames[i * piece_len : (i + 1) * piece_len if i < n - 1 else None] for i in range(n)]
        for k, part in enumerate(pieces):
            out.append(SequenceRecord(part, pid, camid, locator.find(part), name if len(pieces) == 1 else f"{name}#{k}"))
    return out


@DATASETS.register("lsvid", help="LS-VID: list_sequence/ lists and test/data/info_test.mat")
def build_lsvid(root: str | None, skeletons: str = "auto", train_piece_len: int = 0) -> VideoReIDDataset:
    """Read LS-VID.

    Args:
        root: The LS-VID folder.
        skeletons: ``auto``, ``none`` or a skeleton folder name under the root.
        train_piece_len: Cut training tracklets into pieces of this many frames (0: keep whole).
    """
    base = dataset_root(root, "lsvid")
    train_list = _first_existing(base, ("list_sequence/list_seq_train.txt", "info/list_sequence/list_seq_train.txt"),
                                 "LS-VID train list")
    test_list = _first_existing(base, ("list_sequence/list_seq_test.txt", "info/list_sequence/list_seq_test.txt"),
                                "LS-VID test list")
    info = _first_existing(base, ("test/data/info_test.mat", "info/data/info_test.mat"), "LS-VID query index")
    try:
        with h5py.File(info, "r") as f:
            query_idx = np.asarray(f["query"], dtype=np.int64).reshape(-1) - 1
    except (OSError, KeyError) as e:
        raise DatasetError(f"cannot read the 'query' dataset of {info} (HDF5): {e}") from e

    test_rows = _read_list(test_list)
    if len(query_idx) and (query_idx.min() < 0 or query_idx.max() >= len(test_rows)):
        raise DatasetError(f"{info}: query indices outside the {len(test_rows)} test tracklets")
    is_query = np.zeros(len(test_rows), bool)
    is_query[query_idx] = True

    files = _PrefixGlob(base)
    locator = SkeletonLocator(base, default_sources(skeletons))
    train = _records(_read_list(train_list), files, locator, train_piece_len)
    query = _records([test_rows[i] for i in query_idx], files, locator)
    gallery = _records([r for r, q in zip(test_rows, is_query, strict=True) if not q], files, locator)
    return make_dataset("lsvid", train, query, gallery, locator)
