"""TrackletBuilder: bounded sampling, filters, keypoints, crops and thumbnails."""

from __future__ import annotations

import numpy as np
import pytest

from csip_reid.core.detections import Detections
from csip_reid.core.tracklet import Tracklet
from csip_reid.tracking.builder import TrackletBuilder

H, W = 240, 320


def _frame(index: int) -> np.ndarray:
    """A flat frame whose value encodes its index, so crops can be traced back to their frame."""
    return np.full((H, W, 3), index % 251, np.uint8)


def _feed(
    builder: TrackletBuilder,
    frames: range,
    box=(100, 40, 140, 200),
    tid: int = 7,
    conf=lambda f: 0.8,
    keypoints=None,
) -> list[Tracklet]:
    out = []
    for f in frames:
        kps = None if keypoints is None else keypoints(f)
        dets = Detections(np.array([box], np.float32), np.array([conf(f)]), kps, np.array([tid]))
        out += builder.update(f, f / 10, _frame(f), dets)
    return out


@pytest.mark.parametrize("max_samples", [8, 16])
def test_sample_bound_on_a_long_track(max_samples: int) -> None:
    b = TrackletBuilder("v.mp4", "cam", max_samples=max_samples)
    assert _feed(b, range(1000)) == []
    (t,) = b.finish()
    assert len(t) == 1000 and t.frames.tolist() == list(range(1000))  # observations kept in full
    s = t.sample_frames
    assert max_samples // 2 <= len(s) <= max_samples and len(t.crops) == len(s)
    steps = np.diff(s)
    assert np.all(steps == steps[0])  # evenly spread
    assert s[0] == 0  # first frame represented
    assert s[-1] >= 999 - steps[0]  # and the late frames
    assert t.sample_stride == steps[0]
    for f, crop in zip(s, t.crops, strict=True):
        assert crop.shape == (160, 40, 3) and crop[0, 0, 0] == f % 251  # crop cut from its own frame


def test_samples_never_exceed_the_bound_while_running() -> None:
    b = TrackletBuilder("v.mp4", "cam", max_samples=4)
    for n in range(1, 200):
        _feed(b, range(n - 1, n))
        assert len(b._active[7].samples) <= 4


def test_min_frames_and_min_box_height_filters() -> None:
    b = TrackletBuilder("v.mp4", "cam", min_frames=5, min_box_height=32)
    _feed(b, range(4), tid=1)  # too short
    _feed(b, range(5), tid=2)  # just long enough
    _feed(b, range(20), tid=3, box=(10, 10, 40, 30))  # 20 px tall: too small
    kept = b.finish()
    assert [t.track_id for t in kept] == [2]
    assert b.dropped == 2


def test_lost_tracks_finish_after_lost_after() -> None:
    b = TrackletBuilder("v.mp4", "cam", lost_after=10, min_frames=1)
    _feed(b, range(0, 20))
    assert _feed(b, range(20, 30), tid=8) == []  # track 7 unseen for 10 frames: not yet
    done = _feed(b, range(30, 31), tid=8)
    assert [t.track_id for t in done] == [7] and done[0].end_frame == 19
    assert [t.track_id for t in b.finish()] == [8]


def test_keypoints_in_crop_coordinates_with_nan_rows() -> None:
    b = TrackletBuilder("v.mp4", "cam", max_samples=16, crop_margin=0.1)

    def kps(f: int) -> np.ndarray | None:
        if f % 2:  # odd frames: the detector gave no keypoints
            return None
        k = np.zeros((1, 17, 3), np.float32)
        k[0, :, 0], k[0, :, 1], k[0, :, 2] = 120.0, 100.0 + f, 0.9
        return k

    _feed(b, range(10), keypoints=kps)
    (t,) = b.finish()
    assert t.keypoints.shape == (10, 17, 3) and t.sample_boxes.shape == (10, 4)
    x0, y0 = t.sample_boxes[0, :2]
    assert (x0, y0) == (96, 24)  # box (100, 40, 140, 200) grown by 10 % of 40 x 160
    for row, f in zip(t.keypoints, t.sample_frames, strict=True):
        if f % 2:
            assert np.isnan(row).all()  # missing, never zeros
        else:
            np.testing.assert_allclose(row[:, :2], np.broadcast_to([120 - 96, 100 + f - 24], (17, 2)))
            np.testing.assert_allclose(row[:, 2], 0.9)
    b2 = TrackletBuilder("v.mp4", "cam")
    _feed(b2, range(10))
    assert b2.finish()[0].keypoints is None  # no keypoints at all: None, not a NaN block


def test_keypoints_follow_their_track() -> None:
    b = TrackletBuilder("v.mp4", "cam", min_frames=1)
    kps = np.zeros((2, 17, 3), np.float32)
    kps[0, :, 0], kps[1, :, 0] = 10.0, 200.0  # detection 1 belongs to the track
    boxes = np.array([[0, 0, 5, 5], [150, 20, 250, 220]], np.float32)
    frame_dets = Detections(boxes, np.array([0.5, 0.9]), kps)
    b.update(0, 0.0, _frame(0), frame_dets.with_tracker_ids(np.array([1]), np.array([3])))
    (t,) = b.finish()
    assert t.keypoints[0, 0, 0] == 50.0  # 200 - crop x1 (150)


def test_boxes_clipped_and_empty_crops_skipped() -> None:
    b = TrackletBuilder("v.mp4", "cam", min_frames=1, min_box_height=0)
    _feed(b, range(3), box=(-30, -10, 50, 100))
    _feed(b, range(3, 6), box=(400, 10, 450, 100))  # entirely right of the frame
    (t,) = b.finish()
    assert t.boxes[:3].tolist() == [[0, 0, 50, 100]] * 3
    assert t.boxes[3:].tolist() == [[320, 10, 320, 100]] * 3
    assert t.sample_frames.tolist() == [0, 1, 2]  # no crops for the empty boxes
    assert all(c.shape == (100, 50, 3) for c in t.crops)


def test_thumbnail_is_the_most_confident_crop() -> None:
    b = TrackletBuilder("v.mp4", "cam", thumb_height=64)
    _feed(b, range(30), conf=lambda f: 0.9 if f == 17 else 0.5)
    (t,) = b.finish()
    assert t.thumbnail.shape == (64, 16, 3)  # 40 x 160 box scaled to 64 px high
    assert t.thumbnail[0, 0, 0] == 17
    assert t.scores[17] == pytest.approx(0.9)


def test_tracklet_fields() -> None:
    b = TrackletBuilder("/videos/cam3.mp4", "cam3")
    _feed(b, range(12))
    (t,) = b.finish()
    assert (t.video, t.camera, t.track_id) == ("/videos/cam3.mp4", "cam3", 7)
    assert t.timestamps[-1] == pytest.approx(1.1) and t.scores.dtype == np.float32
    assert set(t.sample_frames.tolist()) <= set(t.frames.tolist())
