"""Dataset readers on tiny fake trees in the real layouts, and on the real mini-MARS."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from scipy.io import loadmat, savemat

from csip_reid.core.errors import ConfigError, DatasetError
from csip_reid.data import build_dataset, list_datasets
from tests.helpers.datasets import make_custom, make_lsvid, write_image


def _summary(records):
    return [(r.pid, r.camid, len(r)) for r in records]


# -- every registered reader ---------------------------------------------------------------------
def test_all_readers_registered():
    assert set(list_datasets()) >= {"mars", "lsvid", "ilidsvid", "prid", "custom", "minimars"}


@pytest.mark.parametrize("name", list_datasets())
def test_missing_root_is_a_dataset_error(name, tmp_path):
    with pytest.raises(DatasetError, match="root"):
        build_dataset(name, tmp_path / "nope")


@pytest.mark.parametrize("name", list_datasets())
def test_empty_root_names_what_is_expected(name, tmp_path):
    with pytest.raises(DatasetError, match=r"expected|no tracklets"):
        build_dataset(name, tmp_path)


def test_unknown_dataset_lists_choices(tmp_path):
    with pytest.raises(ConfigError, match="mars"):
        build_dataset("market", tmp_path)


# -- MARS ----------------------------------------------------------------------------------------
def test_mars_splits_relabel_junk_and_distractors(mars_root):
    ds = build_dataset("mars", mars_root)
    # train pids 1, 1, 3 -> 0, 0, 1; cameras 1, 2, 1 -> 0, 1, 0
    assert _summary(ds.train) == [(0, 0, 3), (0, 1, 2), (1, 0, 4)]
    assert ds.num_train_pids == 2
    # query = rows 1 and 5 of the test tracks; original pids kept
    assert _summary(ds.query) == [(2, 0, 3), (4, 0, 2)]
    # gallery = rows 2, 3, 6: row 4 (pid -1) is junk and skipped, pid 0 distractor kept
    assert _summary(ds.gallery) == [(2, 1, 2), (0, 2, 2), (4, 0, 3)]
    assert ds.num_cameras == 3
    assert ds.query[0].name == "0002C1T0001"
    assert ds.query[0].frames[2].endswith(os.path.join("bbox_test", "0002", "0002C1T0001F003.jpg"))
    assert all(Path(f).is_file() for r in ds.train + ds.query + ds.gallery for f in r.frames)


def test_mars_finds_csip_skeletons(mars_root):
    ds = build_dataset("mars", mars_root)
    skel = ds.query[0].skeletons
    assert skel is not None and len(skel) == 3 and all(Path(p).is_file() for p in skel)
    assert skel[0].endswith(os.path.join("skeleton_3d_hmr2.0", "bbox_test", "0002", "0002C1T0001F001.json"))
    assert all(r.skeletons is None for r in ds.train + ds.query[1:] + ds.gallery)
    assert ds.skeleton_format == "h36m17-3d"
    plain = build_dataset("mars", mars_root, skeletons="none")
    assert plain.skeleton_format is None and all(r.skeletons is None for r in plain.query)


def test_mars_missing_info_file_named(mars_root):
    (mars_root / "info" / "query_IDX.mat").unlink()
    with pytest.raises(DatasetError, match="query_IDX.mat"):
        build_dataset("mars", mars_root)


def test_mars_names_and_tracks_must_agree(mars_root):
    path = str(mars_root / "info" / "tracks_test_info.mat")
    rows = loadmat(path)["track_test_info"]
    rows[0, 3] = 5  # frames named C1, table says camera 5
    savemat(path, {"track_test_info": rows})
    with pytest.raises(DatasetError, match="disagree"):
        build_dataset("mars", mars_root)


# -- LS-VID --------------------------------------------------------------------------------------
@pytest.mark.parametrize("info_layout", [False, True], ids=["archive", "info-folder"])
def test_lsvid_splits(tmp_path, info_layout):
    ds = build_dataset("lsvid", make_lsvid(tmp_path / "lsvid", info_layout=info_layout))
    assert _summary(ds.train) == [(0, 2, 5), (0, 3, 1), (1, 2, 2)]  # pids 7, 7, 9; cams 3, 4, 3
    assert _summary(ds.query) == [(11, 0, 2), (12, 1, 2)]  # rows 1 and 4
    assert _summary(ds.gallery) == [(11, 14, 3), (12, 4, 2)]  # rows 2, 5; row 3 junk
    assert ds.num_cameras == 15
    frames = ds.gallery[0].frames
    assert frames == sorted(frames) and frames[0].endswith("0011_0001_15_0002_00000.jpg")


def test_lsvid_train_pieces_keep_short_tracklets(lsvid_root):
    ds = build_dataset("lsvid", lsvid_root, train_piece_len=2)
    # 5 frames -> pieces of 2 and 3 (the last takes the remainder); 1 frame (< 2) kept whole; 2 -> one piece
    assert [len(r) for r in ds.train] == [2, 3, 1, 2]
    assert ds.train[0].frames + ds.train[1].frames == build_dataset("lsvid", lsvid_root).train[0].frames
    assert ds.train[0].name.endswith("#0") and ds.train[1].name.endswith("#1")


def test_lsvid_missing_query_file(lsvid_root):
    (lsvid_root / "test/data/info_test.mat").unlink()
    with pytest.raises(DatasetError, match="info_test.mat"):
        build_dataset("lsvid", lsvid_root)


# -- iLIDS-VID -----------------------------------------------------------------------------------
def test_ilids_first_half_is_test(ilids_root):
    ds = build_dataset("ilidsvid", ilids_root, split=0)
    # ls_set row 0 = [3, 1, 2, 4] over sorted [person001, person002, person005, person007]:
    # test = person005, person001; train = person002, person007
    assert _summary(ds.query) == [(1, 0, 2), (5, 0, 4)]
    assert _summary(ds.gallery) == [(1, 1, 2), (5, 1, 4)]
    assert _summary(ds.train) == [(0, 0, 3), (0, 1, 3), (1, 0, 5), (1, 1, 5)]
    assert ds.num_cameras == 2 and ds.num_train_pids == 2
    assert ds.query[0].skeletons is not None and all(Path(p).is_file() for p in ds.query[0].skeletons)
    assert ds.skeleton_format == "h36m17-3d"
    other = build_dataset("ilidsvid", ilids_root, split=1)  # row [2, 4, 1, 3]
    assert [r.pid for r in other.query] == [2, 7]


def test_ilids_bad_split(ilids_root):
    with pytest.raises(DatasetError, match="split 2"):
        build_dataset("ilidsvid", ilids_root, split=2)


# -- PRID ----------------------------------------------------------------------------------------
def test_prid_split(prid_root):
    ds = build_dataset("prid", prid_root, split=0)
    assert _summary(ds.query) == [(1, 0, 3), (3, 0, 3)]
    assert _summary(ds.gallery) == [(1, 1, 3), (3, 1, 3)]
    assert _summary(ds.train) == [(0, 0, 3), (0, 1, 3)]
    assert [r.pid for r in build_dataset("prid", prid_root, split=1).query] == [2]
    with pytest.raises(DatasetError, match="split 5"):
        build_dataset("prid", prid_root, split=5)


# -- custom --------------------------------------------------------------------------------------
def test_custom_layout(coded_custom):
    ds = build_dataset("custom", coded_custom)
    # people sorted: alice bob carol dave erin frank -> 0..5; cameras sorted: car_park gate lobby -> 0..2
    assert _summary(ds.query) == [(4, 2, 4), (5, 1, 3)]
    assert _summary(ds.gallery) == [(4, 1, 5), (5, 0, 3), (5, 2, 2)]
    assert [r.pid for r in ds.train] == [0, 0, 1, 1, 2, 2, 3, 3] and ds.num_train_pids == 4
    assert ds.num_cameras == 3
    bob = next(r for r in ds.train if r.name == "train/bob/lobby_3")
    assert bob.skeletons is not None and len(bob.skeletons) == 9
    assert [Path(p).is_file() for p in bob.skeletons] == [i % 2 == 0 for i in range(9)]
    assert sum(r.skeletons is not None for r in ds.train + ds.query + ds.gallery) == 1
    assert ds.skeleton_format == "h36m17-3d"  # from the files' "format" key


def test_custom_manifest_and_numeric_ids(tmp_path):
    root = tmp_path / "c"
    for split, cam in (("query", "c1_1"), ("gallery", "c2_1")):
        for i in (1, 2, 10):
            write_image(root / split / "0042" / cam / f"{i}.jpg")
    (root / "dataset.json").write_text(json.dumps({"name": "shop", "skeleton_format": "h36m17-2d-conf",
                                                   "frames": 6}))
    ds = build_dataset("custom", root)
    assert ds.name == "shop" and ds.skeleton_format == "h36m17-2d-conf"
    assert [r.pid for r in ds.query + ds.gallery] == [42, 42] and ds.train == []
    assert [Path(f).stem for f in ds.query[0].frames] == ["1", "2", "10"]  # numeric order


@pytest.mark.parametrize("problem", ["loose image", "no camera", "no gallery"])
def test_custom_layout_errors(tmp_path, problem):
    root = make_custom(tmp_path / "c", coded=False, skeleton_tracklet=None)
    if problem == "loose image":
        write_image(root / "train" / "alice" / "x.jpg")
    elif problem == "no camera":
        write_image(root / "train" / "alice" / "nocamera" / "0.jpg")
    else:
        for p in sorted((root / "gallery").rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
    with pytest.raises(DatasetError, match={"loose image": "directly", "no camera": "<camera>_<tracklet>",
                                            "no gallery": "no gallery"}[problem]):
        build_dataset("custom", root)


# -- mini-MARS (real) ----------------------------------------------------------------------------
def test_minimars(mini_mars):
    ds = build_dataset("minimars", mini_mars)
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (64, 32, 32)
    assert sorted({r.pid for r in ds.train}) == list(range(16)) and ds.num_train_pids == 16
    assert ds.num_cameras == 6
    assert {r.pid for r in ds.query} == {r.pid for r in ds.gallery} and 4 in {r.pid for r in ds.query}
    for r in ds.query + ds.gallery:
        names = [Path(f).name for f in r.frames]
        assert names == sorted(names) and names[0].startswith(r.name)
        assert int(r.name[5]) - 1 == r.camid and int(r.name[:4]) == r.pid
    cross = sum(any(g.pid == q.pid and g.camid != q.camid for g in ds.gallery) for q in ds.query)
    assert cross == 23  # the queries the reference figure counts
    assert sum(len(r) for r in ds.train) == 1731
    assert "query" in ds.summary() and "1731" in ds.summary()


def test_ilids_official_windows_and_chunk_eval(ilids_root):
    ds = build_dataset("ilidsvid", ilids_root, split=0, train_window=2, train_window_stride=1)
    # official starts range(0, n - 2, 1): train sequences of 3 and 5 frames -> 1 and 3 windows of 2 frames
    assert [len(r) for r in ds.train] == [2] * (1 + 1 + 3 + 3)
    whole = build_dataset("ilidsvid", ilids_root, split=0, eval_chunks=False)
    assert ds.train[3].frames == whole.train[2].frames[1:3] and ds.train[3].name.endswith("#1")
    assert _summary(whole.query) == [(1, 0, 2), (5, 0, 4)]  # eval_chunks=False: one item per sequence
    # chunk-level evaluation by default (the official protocol): query of 2 and 4 frames -> 1 and 2 items
    assert [(r.pid, len(r)) for r in ds.query] == [(1, 2), (5, 2), (5, 2)]
    chunked = build_dataset("ilidsvid", ilids_root, split=0, train_window=2, train_window_stride=2)
    assert [len(r) for r in chunked.train] == [2, 2, 2, 2, 2, 2]  # 3 -> [0:2]; 5 -> [0:2], [2:4]
    assert [(r.pid, len(r)) for r in chunked.query] == [(1, 2), (5, 2)]  # 4 frames: range(0, 2, 2) -> [0:2]
    with pytest.raises(DatasetError, match="train_window"):
        build_dataset("ilidsvid", ilids_root, train_window_stride=0)


def test_official_recipes_carry_their_training_units():
    from csip_reid.engine.train import reader_options
    from csip_reid.models import load_config

    lsvid, ilids = load_config("csip_lsvid"), load_config("csip_ilidsvid")
    assert reader_options(lsvid, "lsvid") == {"train_piece_len": 48}
    assert reader_options(ilids, "ilidsvid", {"split": 3}) == {"train_window": 8, "train_window_stride": 4, "split": 3}
    assert reader_options(lsvid, "custom") == {}  # the recipe's options only apply to its dataset
    assert reader_options(load_config("csip_mars"), "mars") == {}
