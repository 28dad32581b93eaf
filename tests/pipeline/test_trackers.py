"""Trackers on synthetic moving boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from csip_reid.core.detections import Detections
from csip_reid.core.errors import ConfigError
from csip_reid.tracking import TRACKERS, Tracker, create_tracker
from csip_reid.tracking.ultralytics import TrackerInput


def _objects(frame: int) -> np.ndarray:
    """Three people walking in straight lines, never overlapping (x1, y1, x2, y2)."""
    return np.array(
        [
            [20 + 4 * frame, 50, 80 + 4 * frame, 230],
            [600 - 3 * frame, 40, 660 - 3 * frame, 220],
            [300, 260 + frame, 350, 400 + frame],
        ],
        np.float32,
    )


@pytest.mark.parametrize("name", TRACKERS.names())
def test_one_id_per_object_and_det_index(name: str) -> None:
    rng = np.random.default_rng(0)
    tracker = create_tracker(name, frame_rate=10)
    owner: dict[int, int] = {}  # track id -> object
    for f in range(60):
        boxes = _objects(f) + rng.normal(0, 1.0, (3, 4)).astype(np.float32)
        objs = np.arange(3)
        if f in (20, 21):  # object 1 is missed for two frames
            objs = objs[objs != 1]
        perm = rng.permutation(objs)  # detection order changes every frame
        dets = Detections(boxes[perm], np.full(len(perm), 0.9))
        upd = tracker.update(dets)
        assert isinstance(tracker, Tracker) and isinstance(upd, Detections)
        assert upd.tracker_id.dtype == np.int64
        assert np.all(np.diff(upd.tracker_id) > 0)  # sorted by track id, each once
        for tid, box, conf in zip(upd.tracker_id, upd.xyxy, upd.conf, strict=True):
            rows = np.flatnonzero((dets.xyxy == box).all(1))  # the detector's own box comes back
            assert len(rows) == 1 and dets.conf[rows[0]] == conf
            obj = int(perm[rows[0]])
            assert owner.setdefault(int(tid), obj) == obj, f"track {tid} jumped to another object"
        if f >= 2:
            assert len(upd.tracker_id) == len(perm)  # every detection is tracked once tracks are confirmed
    assert sorted(owner.values()) == [0, 1, 2]  # one id per object, object 1 kept its id over the gap


@pytest.mark.parametrize("name", TRACKERS.names())
def test_reset_and_empty_frames(name: str) -> None:
    tracker = create_tracker(name)
    for f in range(3):
        tracker.update(Detections(_objects(f), np.full(3, 0.9)))
    empty = tracker.update(Detections.empty())
    assert empty.tracker_id.shape == (0,) and empty.xyxy.shape == (0, 4)
    tracker.reset()
    upd = tracker.update(Detections(_objects(0)[:1], [0.9]))
    assert upd.tracker_id.tolist() == [1]


def test_lost_track_gets_a_new_id_after_the_buffer() -> None:
    tracker = create_tracker("bytetrack", frame_rate=30, track_buffer=5)
    assert tracker.max_lost == 5
    box = Detections([[100, 100, 160, 280]], [0.9])
    ids = [tracker.update(box).tracker_id.tolist() for _ in range(3)]
    for _ in range(3):
        tracker.update(Detections.empty())
    assert tracker.update(box).tracker_id.tolist() == ids[-1]  # back within the buffer: same id
    for _ in range(8):
        tracker.update(Detections.empty())
    tracker.update(box)
    assert tracker.update(box).tracker_id.tolist() != ids[-1]  # gone longer than the buffer: new id


def test_buffer_scales_with_frame_rate() -> None:
    assert create_tracker("bytetrack", frame_rate=30).max_lost == 30
    assert create_tracker("bytetrack", frame_rate=10).max_lost == 10  # 1 s whatever the rate
    assert create_tracker("bytetrack", frame_rate=5, track_buffer=60).max_lost == 10


def test_settings(tmp_path: Path) -> None:
    bot = create_tracker("botsort")
    assert bot.config["gmc_method"] == "none" and bot.config["with_reid"] is False
    cfg = tmp_path / "t.yaml"
    cfg.write_text("track_buffer: 90\nmatch_thresh: 0.7\n")
    t = create_tracker(f"bytetrack:{cfg}", match_thresh=0.6)
    assert t.config["track_buffer"] == 90 and t.config["match_thresh"] == 0.6  # kwargs beat the file
    with pytest.raises(ConfigError, match="unknown bytetrack setting"):
        create_tracker("bytetrack", trak_buffer=3)
    with pytest.raises(ConfigError, match="cannot read tracker config"):
        create_tracker(f"bytetrack:{tmp_path / 'missing.yaml'}")
    with pytest.raises(ConfigError, match="unknown tracker"):
        create_tracker("sort")


def test_tracker_input_adapter() -> None:
    ti = TrackerInput(np.array([[0, 0, 10, 20], [5, 5, 7, 9]], np.float32), np.array([0.9, 0.2], np.float32))
    np.testing.assert_allclose(ti.xywh, [[5, 10, 10, 20], [6, 7, 2, 4]])
    sub = ti[np.array([False, True])]
    assert len(sub) == 1 and sub.conf.tolist() == pytest.approx([0.2]) and sub.cls.tolist() == [0.0]
