"""Builders of tiny on-disk dataset trees in the real layouts (MARS, LS-VID, iLIDS-VID, PRID, custom).

Images are a few pixels large. In the ``coded_custom`` tree every frame is a uniform grey PNG
whose value encodes its frame number (``value = 20 * i + 5``), so loader tests can tell which
frames were sampled from the pixels alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import h5py
import numpy as np
from scipy.io import savemat

from csip_reid.data.skeleton_io import write_skeleton_json


def write_image(path: Path, value: int = 128, size: tuple[int, int] = (8, 4)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((size[0], size[1], 3), value, np.uint8)
    assert cv2.imwrite(str(path), img)


def coded_value(i: int) -> int:
    return 20 * i + 5


def decode_values(values: np.ndarray) -> np.ndarray:
    """Frame numbers from pixel values in 0..255."""
    return np.round((np.asarray(values) - 5) / 20).astype(int)


def skeleton_frame(offset: float) -> np.ndarray:
    """A (17, 3) skeleton with joint j at (offset + j, 2j, 3j)."""
    j = np.arange(17, dtype=np.float32)
    return np.stack([offset + j, 2 * j, 3 * j], axis=1)


# MARS ------------------------------------------------------------------------------------------
# (pid, cam, tracklet, n_frames); names are <pid4>C<cam>T<trk4>F<frame3>.jpg ("00-1" for junk).
MARS_TRAIN = [(1, 1, 1, 3), (1, 2, 2, 2), (3, 1, 1, 4)]
MARS_TEST = [(2, 1, 1, 3), (2, 2, 1, 2), (0, 3, 1, 2), (-1, 1, 1, 2), (4, 1, 1, 2), (4, 1, 2, 3)]
MARS_QUERY_ROWS = [1, 5]  # 1-based rows of MARS_TEST: (2, cam1) and (4, cam1, T1)


def _mars_names(tracks: list[tuple[int, int, int, int]]) -> tuple[list[str], np.ndarray]:
    names, rows = [], []
    for pid, cam, trk, n in tracks:
        tag = "00-1" if pid == -1 else f"{pid:04d}"
        start = len(names) + 1
        names += [f"{tag}C{cam}T{trk:04d}F{f:03d}.jpg" for f in range(1, n + 1)]
        rows.append([start, len(names), pid, cam])
    return names, np.asarray(rows, np.float64)


def make_mars(root: Path) -> Path:
    info = root / "info"
    info.mkdir(parents=True)
    for split, tracks, key in (("train", MARS_TRAIN, "track_train_info"), ("test", MARS_TEST, "track_test_info")):
        names, rows = _mars_names(tracks)
        (info / f"{split}_name.txt").write_text("\n".join(names) + "\n")
        savemat(str(info / f"tracks_{split}_info.mat"), {key: rows})
        for n in names:
            write_image(root / f"bbox_{split}" / n[:4] / n)
    savemat(str(info / "query_IDX.mat"), {"query_IDX": np.asarray([MARS_QUERY_ROWS], np.float64)})
    # CSIP-style HMR skeletons for the first test tracklet (pid 2, cam 1): no "format" key.
    for f in range(1, 4):
        write_skeleton_json(root / "skeleton_3d_hmr2.0" / "bbox_test" / "0002" / f"0002C1T0001F{f:03d}.json",
                            skeleton_frame(f))
    return root


# LS-VID ----------------------------------------------------------------------------------------
# (folder, pid, cam, tracklet, n_frames); frames <pid4>_<x>_<cam2>_<trk4>_<frame5>.jpg
LSVID_TRAIN = [("tracklet_train", 7, 3, 1, 5), ("tracklet_train", 7, 4, 2, 1), ("tracklet_train", 9, 3, 3, 2)]
LSVID_TEST = [("tracklet_test", 11, 1, 1, 2), ("tracklet_test", 11, 15, 2, 3), ("tracklet_test", -1, 2, 3, 2),
              ("tracklet_test", 12, 2, 4, 2), ("tracklet_test", 12, 5, 5, 2)]
LSVID_QUERY_ROWS = [1, 4]


def _lsvid_list(root: Path, rows: list[tuple[str, int, int, int, int]]) -> str:
    lines = []
    for folder, pid, cam, trk, n in rows:
        tag = "junk" if pid == -1 else f"{pid:04d}"
        prefix = f"{folder}/{tag}/{tag}_0001_{cam:02d}_{trk:04d}_"
        for f in range(n):
            write_image(root / f"{prefix}{f:05d}.jpg")
        lines.append(f"{prefix} {pid}")
    return "\n".join(lines) + "\n"


def make_lsvid(root: Path, info_layout: bool = False) -> Path:
    lists = root / ("info/list_sequence" if info_layout else "list_sequence")
    lists.mkdir(parents=True)
    (lists / "list_seq_train.txt").write_text(_lsvid_list(root, LSVID_TRAIN))
    (lists / "list_seq_test.txt").write_text(_lsvid_list(root, LSVID_TEST))
    mat = root / ("info/data/info_test.mat" if info_layout else "test/data/info_test.mat")
    mat.parent.mkdir(parents=True)
    with h5py.File(mat, "w") as f:  # MATLAB v7.3 stores doubles, shape (1, N)
        f.create_dataset("query", data=np.asarray([LSVID_QUERY_ROWS], np.float64))
    return root


# iLIDS-VID -------------------------------------------------------------------------------------
ILIDS_PERSONS = ["person001", "person002", "person005", "person007"]
ILIDS_LS_SET = [[3, 1, 2, 4], [2, 4, 1, 3]]  # 1-based into sorted persons; first half = test


def make_ilids(root: Path) -> Path:
    for k, person in enumerate(ILIDS_PERSONS):
        for cam in (1, 2):
            for f in range(2 + k):
                write_image(root / "i-LIDS-VID/sequences" / f"cam{cam}" / person / f"cam{cam}_{person}_{f:05d}.png")
    split = root / "train-test people splits" / "train_test_splits_ilidsvid.mat"
    split.parent.mkdir(parents=True)
    savemat(str(split), {"ls_set": np.asarray(ILIDS_LS_SET, np.float64)})
    for f in range(2):
        write_skeleton_json(root / "i-LIDS-VID/sequences_skeleton_3d_hmr2.0/cam1/person001"
                            / f"cam1_person001_{f:05d}.json", skeleton_frame(f))
    return root


# PRID ------------------------------------------------------------------------------------------
def make_prid(root: Path) -> Path:
    for person in ("person_0001", "person_0002", "person_0003"):
        for cam in ("cam_a", "cam_b"):
            for f in range(1, 4):
                write_image(root / "prid_2011/multi_shot" / cam / person / f"{f:04d}.png")
    splits = [{"train": ["person_0002"], "test": ["person_0003", "person_0001"]},
              {"train": ["person_0001", "person_0003"], "test": ["person_0002"]}]
    (root / "splits_prid2011.json").write_text(json.dumps(splits))
    return root


# custom ----------------------------------------------------------------------------------------
# split -> [(person, "<camera>_<tracklet>", n_frames)]
CUSTOM = {
    "train": [("alice", "lobby_1", 5), ("alice", "gate_2", 3), ("bob", "lobby_3", 9), ("bob", "gate_4", 4),
              ("carol", "lobby_5", 2), ("carol", "gate_6", 7), ("dave", "lobby_7", 6), ("dave", "gate_8", 1)],
    "query": [("erin", "lobby_9", 4), ("frank", "gate_10", 3)],
    "gallery": [("erin", "gate_11", 5), ("frank", "lobby_12", 2), ("frank", "car_park_13", 3)],
}


def make_custom(root: Path, coded: bool = True, skeleton_tracklet: str | None = "train/bob/lobby_3") -> Path:
    for split, entries in CUSTOM.items():
        for person, folder, n in entries:
            for i in range(n):
                write_image(root / split / person / folder / f"f{i}.png", coded_value(i) if coded else 128)
    if skeleton_tracklet:
        # skeletons for every second frame only; frame 4 has an all-zero (missing) skeleton
        d = root / skeleton_tracklet
        for i in range(0, 9, 2):
            kp = np.full((17, 3), np.nan) if i == 4 else skeleton_frame(10.0 * i)
            write_skeleton_json(d / f"f{i}.json", kp, "h36m17-3d")
    return root
