"""MARS (Zheng et al., ECCV 2016): 1261 identities, 6 cameras, 20k tracklets.

Layout (``info/`` comes from github.com/liangzheng06/MARS-evaluation)::

    <root>/bbox_train/<pid4>/<pid4>C<cam>T<tracklet4>F<frame3>.jpg
    <root>/bbox_test/<pid4>/...
    <root>/info/train_name.txt          one frame file name per line
    <root>/info/test_name.txt
    <root>/info/tracks_train_info.mat   track_train_info: rows [start, end, pid, cam], 1-based
    <root>/info/tracks_test_info.mat    track_test_info
    <root>/info/query_IDX.mat           query_IDX: 1-based rows of track_test_info

Protocol (torchreid, TF-CLIP and CSIP-ReID agree): tracks with pid -1 (junk) are skipped, pid 0
(distractors) stays in the gallery, train pids are relabelled, cameras become 0-based, and the
gallery is the test tracks minus the query tracks. (The official MATLAB evaluation keeps the
query tracks in the gallery; the PyTorch loaders, and this one, do not.)

Skeletons: ``<root>/skeleton_3d_hmr2.0/bbox_*/<pid4>/<frame>.json`` (CSIP-ReID) or
``<root>/skeletons/bbox_*/<pid4>/<frame>.json`` (``reid skeletons``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.io import loadmat

from csip_reid.core.errors import DatasetError
from csip_reid.data.datasets.base import (
    DATASETS,
    SkeletonLocator,
    dataset_root,
    default_sources,
    make_dataset,
    require_dir,
    require_file,
)
from csip_reid.data.records import SequenceRecord, VideoReIDDataset


def _read_names(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _read_mat(path: Path, key: str) -> np.ndarray:
    try:
        data = loadmat(str(path))
    except Exception as e:  # scipy raises several unrelated types for a corrupt file
        raise DatasetError(f"cannot read {path}: {e}") from e
    if key not in data:
        raise DatasetError(f"{path} has no variable {key!r}")
    return np.asarray(data[key]).astype(np.int64)


def _tracks(
    tracks: np.ndarray, names: list[str], img_dir: Path, locator: SkeletonLocator, info: Path
) -> list[SequenceRecord]:
    if tracks.ndim != 2 or tracks.shape[1] < 4:
        raise DatasetError(f"{info}: expected an N x 4 track table, got shape {tracks.shape}")
    out = []
    for start, end, pid, cam in tracks[:, :4].tolist():
        if pid == -1:
            continue
        if not 1 <= start <= end <= len(names):
            raise DatasetError(f"{info}: track rows {start}..{end} outside the {len(names)} listed frames")
        files = names[start - 1 : end]
        if files[0][5:6] != str(cam):
            raise DatasetError(f"{info}: track of {files[0]} says camera {cam}; the names and the .mat disagree")
        frames = [str(img_dir / f[:4] / f) for f in files]
        out.append(SequenceRecord(frames, int(pid), int(cam) - 1, locator.find(frames), files[0][:11]))
    return out


@DATASETS.register("mars", help="MARS: bbox_train/, bbox_test/ and info/ from MARS-evaluation")
def build_mars(root: str | None, skeletons: str = "auto") -> VideoReIDDataset:
    """Read MARS.

    Args:
        root: Folder holding ``bbox_train/``, ``bbox_test/`` and ``info/``.
        skeletons: ``auto``, ``none`` or a skeleton folder name under the root.
    """
    base = dataset_root(root, "mars")
    info = require_dir(base / "info", "MARS info folder (from MARS-evaluation)")
    train_names = _read_names(require_file(info / "train_name.txt", "MARS train frame list"))
    test_names = _read_names(require_file(info / "test_name.txt", "MARS test frame list"))
    train_info = require_file(info / "tracks_train_info.mat", "MARS train tracks")
    test_info = require_file(info / "tracks_test_info.mat", "MARS test tracks")
    query_info = require_file(info / "query_IDX.mat", "MARS query index")
    train_dir = require_dir(base / "bbox_train", "MARS training images")
    test_dir = require_dir(base / "bbox_test", "MARS test images")

    track_train = _read_mat(train_info, "track_train_info")
    track_test = _read_mat(test_info, "track_test_info")
    query_idx = _read_mat(query_info, "query_IDX").reshape(-1) - 1
    if len(query_idx) and (query_idx.min() < 0 or query_idx.max() >= len(track_test)):
        raise DatasetError(f"{query_info}: query indices outside the {len(track_test)} test tracks")
    is_query = np.zeros(len(track_test), bool)
    is_query[query_idx] = True

    locator = SkeletonLocator(base, default_sources(skeletons))
    train = _tracks(track_train, train_names, train_dir, locator, train_info)
    query = _tracks(track_test[query_idx], test_names, test_dir, locator, test_info)
    gallery = _tracks(track_test[~is_query], test_names, test_dir, locator, test_info)
    return make_dataset("mars", train, query, gallery, locator)
