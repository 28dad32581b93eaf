"""Adaptive scanning: the motion gate, the keyframe policy, interpolation, and the scan end to end."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from csip_reid.core.detections import Detections
from csip_reid.core.errors import ConfigError
from csip_reid.core.tracklet import Tracklet
from csip_reid.core.video import VideoReader
from csip_reid.pipeline.detect import create_detector
from csip_reid.pipeline.extract import ExtractStats, extract_tracklets
from csip_reid.pipeline.scan import AGE, DETECT, SKIP, MotionGate, ScanConfig, ScanPolicy, keyframe_interval
from csip_reid.pipeline.settings import PipelineSettings
from csip_reid.tracking.interpolate import box_iou, coverage, fill_gaps, match_scans
from tests.helpers.walkers import BlobDetector

SIZE = (320, 180)


def _frame(rng: np.random.Generator, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    f = rng.integers(20, 36, (SIZE[1], SIZE[0], 3), dtype=np.uint8)  # sensor noise, no motion
    for x1, y1, x2, y2 in boxes:
        f[y1:y2, x1:x2] = 230
    return f


def _walker_video(path: Path, speed: float, n: int = 200, enter: int = 65, leave: int = 145) -> Path:
    """``n`` frames at 10 fps; a 24x60 'person' walks ``speed`` px/frame during [enter, leave)."""
    rng = np.random.default_rng(0)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, SIZE)
    for i in range(n):
        boxes = []
        if enter <= i < leave:
            x = int(10 + speed * (i - enter)) % (SIZE[0] - 30)
            boxes.append((x, 60, x + 24, 120))
        w.write(_frame(rng, boxes))
    w.release()
    return path


def truth(i: int, speed: float, enter: int = 65) -> np.ndarray:
    x = int(10 + speed * (i - enter)) % (SIZE[0] - 30)
    return np.array([[x, 60, x + 24, 120]], np.float32)


# -- motion gate -------------------------------------------------------------------------------------
def test_gate_ignores_noise_and_sees_a_small_person() -> None:
    rng = np.random.default_rng(1)
    gate = MotionGate()
    empty = gate.small(_frame(rng, []))
    assert gate.moved(empty)  # no reference yet: everything is new
    gate.set_reference(empty)
    assert gate.changed(gate.small(_frame(rng, []))) == 0  # fresh noise of the same empty room
    small_person = gate.small(_frame(rng, [(200, 100, 208, 124)]))  # 8x24 px in a 320x180 frame
    assert gate.moved(small_person) and gate.small(_frame(rng, [])).shape == (90, 160)


def test_keyframe_interval_follows_box_speed() -> None:
    box = np.array([100, 50, 124, 110], np.float64)  # 24 px wide
    assert keyframe_interval({}, {1: box}, 1, 3) == 1  # a new track has no speed yet
    assert keyframe_interval({1: box}, {1: box}, 3, 3) == 3  # standing still: the longest interval
    walk = box + [3, 0, 3, 0]  # 1 px/frame over 3 frames = 1/24 width per frame -> 0.2 / (1/24) = 4.8
    assert keyframe_interval({1: box}, {1: walk}, 3, 9) == 4
    run = box + [12, 0, 12, 0]  # 12 px in one frame = half a width per frame
    assert keyframe_interval({1: box}, {1: run}, 1, 9) == 1
    assert keyframe_interval({1: box, 2: box}, {1: box, 2: walk}, 3, 9) == 4  # the fastest track decides


def test_policy_states_on_synthetic_frames() -> None:
    rng = np.random.default_rng(2)
    pol = ScanPolicy(fps=10, lost_steps=10, config=ScanConfig(heartbeat_s=0, max_interval_s=0.3))
    assert pol.max_interval == 3 and pol.gate_period == 1
    empty = _frame(rng, [])
    nobody = Detections(np.zeros((0, 4)), np.zeros(0))
    assert pol.wants(0) and pol.decide(0, empty) == DETECT  # the first frame is always detected
    pol.observe(0, empty, nobody, nobody.with_tracker_ids(np.zeros(0), np.zeros(0)))
    assert not pol.tracking
    for step in range(1, 20):  # idle: each frame is checked by the gate, none is detected
        assert pol.wants(step) and pol.decide(step, _frame(rng, [])) == SKIP
    assert pol.gated == 19 and pol.detected == 1
    person = _frame(rng, [(100, 50, 124, 110)])
    assert pol.decide(20, person) == DETECT and pol.onsets == 1  # motion onset: detected at once
    dets = Detections(np.array([[100, 50, 124, 110]]), np.array([0.9]))
    pol.observe(20, person, dets, dets.with_tracker_ids(np.array([0]), np.array([1])))
    assert pol.tracking and pol.next_key == 21  # a new track: confirm it on the next frame
    pol.observe(21, person, dets, dets.with_tracker_ids(np.array([0]), np.array([1])))
    assert pol.interval == 3 and not pol.wants(22) and not pol.wants(23) and pol.wants(24)
    assert pol.decide(24, person) == DETECT
    pol.observe(24, person, nobody, nobody.with_tracker_ids(np.zeros(0), np.zeros(0)))  # the track is lost
    assert pol.tracking and pol.next_key == 27
    assert pol.decide(27, person) == AGE  # only lost tracks and no change: no detector run
    pol.aged(27)
    moved = _frame(rng, [(200, 50, 224, 110)])
    assert pol.decide(30, moved) == DETECT  # a change: detect
    pol.observe(30, moved, nobody, nobody.with_tracker_ids(np.zeros(0), np.zeros(0)))
    step = 33
    while pol.tracking:  # the lost-track window runs out without the detector, then the gate takes over
        if pol.wants(step):
            assert pol.decide(step, moved) == AGE
            pol.aged(step)
        step += 1
    assert step - 24 <= pol.lost_steps + pol.max_interval and pol.aged_steps >= 3
    assert pol.next_key > 10**9 and pol.decide(step, moved) == SKIP and pol.detected == 5


def test_video_reader_select_grabs_the_rest(tmp_path: Path) -> None:
    video = _walker_video(tmp_path / "w.avi", speed=1.0, n=30)
    asked: list[int] = []

    def select(i: int) -> bool:
        asked.append(i)
        return i % 7 == 0

    reader = VideoReader(video, start=2, stride=2, select=select)
    got = [i for i, _, _ in reader]
    assert asked == list(range(2, 30, 2)) and got == [14, 28] and reader.frames_read == 30


def test_video_reader_lockstep_select_sees_the_consumer_state(tmp_path: Path) -> None:
    """With ``prefetch`` the decoding thread asks ``select`` only once the consumer is done with the
    last frame, so answers that depend on the consumer's work are the same as without the thread."""
    video = _walker_video(tmp_path / "w.avi", speed=1.0, n=40)
    state = {"next": 0, "busy": False}
    asked: list[tuple[int, bool]] = []

    def select(i: int) -> bool:
        asked.append((i, state["busy"]))
        return i >= state["next"]

    def consume(reader: VideoReader) -> list[int]:
        got = []
        for i, _, _ in reader:
            state["busy"] = True
            time.sleep(0.01)  # the decoder thread runs ahead meanwhile
            state["next"] = i + 1 + i % 4  # what the consumer made of frame i picks the next one
            got.append(i)
            state["busy"] = False
        return got

    threaded = consume(VideoReader(video, select=select, prefetch=1))
    assert not any(busy for _, busy in asked)  # never asked while the consumer worked
    asked.clear()
    state["next"] = 0
    plain = consume(VideoReader(video, select=select))
    expected, i = [], 0
    while i < 40:
        expected.append(i)
        i = i + 1 + i % 4
    assert threaded == plain == expected and len(expected) < 40
    for i, _, _ in VideoReader(video, select=lambda i: True, prefetch=1):
        if i == 3:
            break  # closing early stops the decoding thread
    assert not any(t.name == "prefetch" and t.is_alive() for t in threading.enumerate())


# -- interpolation -----------------------------------------------------------------------------------
def test_fill_gaps_interpolates_short_gaps_only() -> None:
    t = Tracklet("v", "c", 1, frames=[0, 3, 4, 20], timestamps=[0, 0.3, 0.4, 2.0],
                 boxes=[[0, 0, 10, 10], [30, 0, 40, 10], [40, 0, 50, 10], [40, 0, 50, 10]],
                 scores=[0.9, 0.8, 0.7, 0.6])
    f = fill_gaps(t, max_gap=6)
    assert f.frames.tolist() == [0, 1, 2, 3, 4, 20]  # the 16-frame gap stays a gap
    assert f.boxes[1].tolist() == [10, 0, 20, 10] and f.timestamps[2] == pytest.approx(0.2)
    assert np.isnan(f.scores[1]) and np.isnan(f.scores[2]) and f.scores[[0, 3, 4, 5]].tolist() == pytest.approx(
        [0.9, 0.8, 0.7, 0.6])
    assert fill_gaps(t, max_gap=1) is t
    assert coverage(f, t) == pytest.approx(4 / 6) and coverage(t, f) == 1.0
    assert box_iou(np.array([[0, 0, 10, 10.0]]), np.array([[5, 0, 15, 10.0]]))[0] == pytest.approx(1 / 3)


# -- the scan end to end -----------------------------------------------------------------------------
def _run(video: Path, scan: str, **kw) -> tuple[list[Tracklet], ExtractStats, BlobDetector]:
    det, stats = BlobDetector(), ExtractStats()
    got = list(extract_tracklets(video, det, scan=scan, stats=stats, progress=False,
                                 builder_opts={"min_box_height": 32}, **kw))
    return got, stats, det


@pytest.mark.parametrize("speed", [1.0, 3.0])
def test_walker_is_kept_with_far_fewer_detections(tmp_path: Path, speed: float) -> None:
    video = _walker_video(tmp_path / "walk.avi", speed)
    full, fstats, fdet = _run(video, "full")
    ada, astats, adet = _run(video, "adaptive")
    assert fdet.seen == fstats.frames_detected == 200
    assert len(ada) == len(full) == 1
    assert astats.frames_read == 200 and adet.seen == astats.frames_detected
    assert astats.motion_onsets >= 1 and astats.gate_checks >= 50
    t = ada[0]
    assert t.start_frame <= 66  # motion onset at frame 65 is detected at once (confirmed on 66)
    (idx, cov), = match_scans(full, ada)
    assert idx == 0 and cov >= 0.9
    truths = np.concatenate([truth(int(i), speed) for i in t.frames])
    assert np.mean(box_iou(t.boxes, truths) >= 0.5) >= 0.9  # interpolated boxes included
    detected = ~np.isnan(t.scores)
    assert set(t.sample_frames.tolist()) <= set(t.frames[detected].tolist())  # crops: detected frames only
    if speed == 1.0:  # 1 px/frame on a 24 px box: the longest interval (3 frames at 10 fps)
        assert adet.seen <= 0.45 * fdet.seen and np.count_nonzero(~detected) >= len(t) / 2
    else:  # 3 px/frame = 1/8 width per frame: every frame is detected while it moves
        assert np.count_nonzero(~detected) <= 0.1 * len(t)


def test_filled_in_frames_the_detector_missed_do_not_make_a_track_long_enough(tmp_path: Path) -> None:
    """A fast walker keeps every frame detected; a second person tracked on 4 frames (missed by the
    detector on one between them) is too short for min_frames=5 in both scans: interpolating the
    missed frame must not lift it over the limit in the adaptive one."""
    rng = np.random.default_rng(1)
    path = tmp_path / "two.avi"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, SIZE)
    for i in range(56):
        x = 10 + 5 * i  # 5 px/frame on a 24 px box: every frame a keyframe
        f = _frame(rng, [(x, 0, x + 24, 60)])
        if 30 <= i < 36:
            f[110:170, 200:224] = 230 if i != 32 else 90  # frame 32: too dim for the detector
        w.write(f)
    w.release()
    full, fstats, _ = _run(path, "full")
    ada, astats, _ = _run(path, "adaptive")
    assert astats.frames_detected >= 0.9 * fstats.frames_detected  # the walker pins k to 1
    assert len(full) == 1 and fstats.tracks_dropped >= 1
    assert len(ada) == len(full) and astats.tracks_dropped == fstats.tracks_dropped


def test_empty_video_is_barely_detected(tmp_path: Path) -> None:
    video = _walker_video(tmp_path / "empty.avi", speed=1.0, enter=10**6)
    got, stats, det = _run(video, "adaptive")
    assert got == [] and stats.frames_read == 200
    assert det.seen <= 1 + 200 // 100  # the first frame and one heartbeat every 10 s (10 fps)
    got, stats, det = _run(video, "adaptive", scan_config=ScanConfig(heartbeat_s=0))
    assert det.seen == 1


def test_adaptive_with_stride_and_range(tmp_path: Path) -> None:
    video = _walker_video(tmp_path / "walk.avi", 1.0)
    got, stats, _ = _run(video, "adaptive", stride=2, start=40, end=180)
    assert stats.frames_read == len(range(40, 180, 2)) and len(got) == 1
    assert all(f % 2 == 0 for f in got[0].frames) and 66 <= got[0].start_frame <= 70


def test_scan_setting_and_old_galleries() -> None:
    from csip_reid.pipeline.query import gallery_settings

    assert PipelineSettings().scan == "adaptive"
    with pytest.raises(ConfigError, match="unknown scan"):
        PipelineSettings.from_dict({"scan": "fast"})

    class Old:  # a manifest written before adaptive scanning: no scan key
        embedder = {"spec": "onnx:osnet_x0_25_msmt17", "pipeline": {"detector": "yolox:yolox_nano"}}

    assert gallery_settings(Old()).scan == "full"
    Old.embedder = {"spec": "x", "pipeline": {"scan": "adaptive"}}
    assert gallery_settings(Old()).scan == "adaptive"


# -- the real Intel clip -----------------------------------------------------------------------------
def _compare_real(intel_clip: Path, yolox_path: Path, end: int | None) -> tuple[list, list, ExtractStats]:
    det = create_detector(f"yolox:{yolox_path}")
    full = list(extract_tracklets(intel_clip, det, scan="full", end=end, progress=False))
    stats = ExtractStats()
    ada = list(extract_tracklets(intel_clip, det, scan="adaptive", end=end, progress=False, stats=stats))
    return full, ada, stats


def _check_nothing_lost(full: list, ada: list, segments: list) -> None:
    assert len(ada) <= len(full)  # no extra fragmentation
    covered = [round(c, 3) for _, c in match_scans(full, ada)]
    assert min(covered) >= 0.9, covered
    for a, b in segments:  # every person segment still yields a tracklet
        assert any(min(b, t.end_frame) - max(a, t.start_frame) > 0.7 * (b - a) for t in ada), (a, b)


def test_intel_first_450_frames(intel_clip: Path, yolox_path: Path, intel_segments: list) -> None:
    full, ada, stats = _compare_real(intel_clip, yolox_path, 450)
    _check_nothing_lost(full, ada, [s for s in intel_segments if s[1] < 450])
    assert stats.frames_read == 450 and stats.frames_detected <= 0.45 * 450


@pytest.mark.slow
def test_intel_whole_clip_adaptive(intel_clip: Path, yolox_path: Path, intel_segments: list) -> None:
    full, ada, stats = _compare_real(intel_clip, yolox_path, None)
    _check_nothing_lost(full, ada, intel_segments)
    assert len(ada) == len(full) == 6 and stats.frames_detected <= 0.4 * stats.frames_read
