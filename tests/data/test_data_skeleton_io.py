"""Skeleton JSON reading/writing, missing frames and joints, root-centring."""

from __future__ import annotations

import json

import numpy as np
import pytest

from csip_reid.core.errors import DatasetError
from csip_reid.data.skeleton_io import (
    coordinate_channels,
    load_skeleton_sequence,
    read_skeleton_json,
    root_centre,
    write_skeleton_json,
)
from tests.helpers.datasets import skeleton_frame


def test_roundtrip_with_missing_joint(tmp_path):
    kp = skeleton_frame(1.5)
    kp[3] = np.nan
    write_skeleton_json(tmp_path / "a.json", kp, "h36m17-3d")
    raw = json.loads((tmp_path / "a.json").read_text())
    # no null anywhere: the official loader's np.array(keypoints) must give a float (17, 3) array
    assert raw["format"] == "h36m17-3d" and raw["keypoints"][3] == [0.0, 0.0, 0.0] and raw["missing"] == [3]
    assert np.array(raw["keypoints"]).dtype == np.float64 and "null" not in (tmp_path / "a.json").read_text()
    back, fmt = read_skeleton_json(tmp_path / "a.json")
    assert fmt == "h36m17-3d" and back.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(back).any(1), np.arange(17) == 3)
    np.testing.assert_allclose(np.delete(back, 3, 0), np.delete(kp, 3, 0))


def test_older_files_with_null_joints_and_zero_confidence_read_as_missing(tmp_path):
    rows = [[float(j + 1), 2.0, 0.9] for j in range(17)]
    rows[5], rows[7] = None, [1.0, 1.0, 0.0]
    (tmp_path / "o.json").write_text(json.dumps({"keypoints": rows, "format": "h36m17-2d-conf"}))
    back, _ = read_skeleton_json(tmp_path / "o.json")
    np.testing.assert_array_equal(np.isnan(back).any(1), np.isin(np.arange(17), [5, 7]))
    (tmp_path / "bad.json").write_text(json.dumps({"keypoints": rows, "missing": [17]}))
    with pytest.raises(DatasetError, match="missing"):
        read_skeleton_json(tmp_path / "bad.json")


def test_all_missing_frame_written_as_zeros_read_as_missing(tmp_path):
    write_skeleton_json(tmp_path / "z.json", np.full((17, 3), np.nan))
    raw = json.loads((tmp_path / "z.json").read_text())
    assert raw == {"keypoints": [[0.0, 0.0, 0.0]] * 17}  # what CSIP's reader calls "no detection"
    back, fmt = read_skeleton_json(tmp_path / "z.json")
    assert fmt is None and np.isnan(back).all()


def test_csip_file_without_format(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"keypoints": skeleton_frame(0).tolist()}))
    back, fmt = read_skeleton_json(tmp_path / "c.json")
    assert fmt is None
    np.testing.assert_allclose(back, skeleton_frame(0))


@pytest.mark.parametrize("content", ['{"keypoints": [[1, 2, 3]]}', '{"points": []}', "not json",
                                     '{"keypoints": ' + json.dumps([[1, 2]] * 17) + "}"])
def test_malformed_files_raise(tmp_path, content):
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(DatasetError, match="bad.json"):
        read_skeleton_json(tmp_path / "bad.json")


def test_root_centre_coordinates_only():
    sk = np.stack([skeleton_frame(5.0), skeleton_frame(1.0)])
    sk[1, 0] = np.nan  # frame 1 lost its root: cannot be centred
    out = root_centre(sk, 3)
    np.testing.assert_allclose(out[0, 0], 0.0)
    np.testing.assert_allclose(out[0, 4], [4.0, 8.0, 12.0])  # joint 4 minus joint 0 = (5+4-5, 8, 12)
    assert np.isnan(out[1]).all()
    conf = root_centre(sk[:1], coordinate_channels("h36m17-2d-conf"))
    np.testing.assert_allclose(conf[0, :, 2], sk[0, :, 2])  # confidence channel untouched
    np.testing.assert_allclose(conf[0, :, :2], sk[0, :, :2] - sk[0, :1, :2])


def test_load_sequence_masks_missing_frames_and_joints(tmp_path):
    a = skeleton_frame(2.0)
    a[7] = np.nan
    write_skeleton_json(tmp_path / "0.json", a)
    write_skeleton_json(tmp_path / "2.json", np.full((17, 3), np.nan))
    paths = [str(tmp_path / "0.json"), str(tmp_path / "1.json"), str(tmp_path / "2.json"), None]
    skel, mask = load_skeleton_sequence(paths)
    assert skel.shape == (4, 17, 3) and mask.shape == (4, 17) and mask.dtype == bool
    assert mask[0].sum() == 16 and not mask[0, 7] and not mask[1:].any()
    assert (skel[~mask] == 0).all()
    np.testing.assert_allclose(skel[0, 10], [10.0, 20.0, 30.0])  # root-centred: (2+10-2, 20, 30)
