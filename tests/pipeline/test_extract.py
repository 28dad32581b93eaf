"""extract_tracklets end to end: a synthetic video with a blob detector, and the real Intel clip."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from csip_reid.pipeline.detect import create_detector
from csip_reid.pipeline.extract import ExtractStats, extract_tracklets
from tests.helpers.walkers import BlobDetector


def _blob_video(path: Path) -> Path:
    """90 frames at 10 fps: person A in frames 0-24, person B in frames 50-89."""
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    for i in range(90):
        f = np.zeros((120, 160, 3), np.uint8)
        if i < 25:
            f[20:90, 10 + 2 * i : 30 + 2 * i] = 255
        if i >= 50:
            f[30:100, 130 - (i - 50) : 150 - (i - 50)] = 255
        w.write(f)
    w.release()
    return path


def test_streams_tracklets_as_tracks_end(tmp_path: Path) -> None:
    video = _blob_video(tmp_path / "lobby_cam.avi")
    stats = ExtractStats()
    det = BlobDetector()
    seen_at = []
    got = []
    for t in extract_tracklets(
        video, det, stats=stats, progress=False, builder_opts={"min_box_height": 32, "max_samples": 8}
    ):
        seen_at.append(stats.frames_read)
        got.append(t)
    assert len(got) == 2
    a, b = got
    assert (a.start_frame, a.end_frame) == pytest.approx(
        (1, 24), abs=1
    )  # a track is confirmed on its 2nd frame
    assert (b.start_frame, b.end_frame) == pytest.approx((51, 89), abs=1)
    assert a.camera == "lobby_cam" and a.video == str(video)  # camera defaults to the file stem
    assert seen_at[0] < 50  # A was yielded long before the video ended
    assert a.num_samples <= 8 and a.crops[0].shape == (70, 20, 3)
    assert (stats.frames_read, stats.frames_failed, stats.tracks, stats.tracks_dropped) == (90, 0, 2, 0)
    assert stats.detections == 25 + 40 and (stats.width, stats.height, stats.fps) == (160, 120, 10.0)
    assert max(det.calls) == 4 and sum(det.calls) == 90  # batched by detector.batch_size


def test_stride_and_range(tmp_path: Path) -> None:
    video = _blob_video(tmp_path / "v.avi")
    stats = ExtractStats()
    got = list(
        extract_tracklets(
            video,
            BlobDetector(),
            stride=3,
            start=45,
            camera="c1",
            stats=stats,
            progress=False,
            builder_opts={"min_box_height": 32},
        )
    )
    assert stats.frames_read == len(range(45, 90, 3))
    assert len(got) == 1 and got[0].camera == "c1"
    assert all(f % 3 == 0 and f >= 51 for f in got[0].frames)
    assert got[0].timestamps[0] == pytest.approx(got[0].frames[0] / 10.0)


def test_intel_clip_segments(intel_clip: Path, yolox_path: Path, intel_segments: list) -> None:
    det = create_detector(f"yolox:{yolox_path}")
    stats = ExtractStats()
    got = list(extract_tracklets(intel_clip, det, stride=2, end=460, stats=stats, progress=False))
    assert stats.frames_read == 230 and stats.frames_failed == 0
    _check_segments(got, [s for s in intel_segments if s[1] < 460])


@pytest.mark.slow
def test_intel_whole_clip(intel_clip: Path, yolox_path: Path, intel_segments: list) -> None:
    got = list(extract_tracklets(intel_clip, f"yolox:{yolox_path}", stride=2, progress=False))
    _check_segments(got, intel_segments)


def _check_segments(tracklets: list, segments: list[tuple[int, int]], slack: int = 15) -> None:
    """Every tracklet lies inside one documented segment; every segment has exactly one tracklet."""
    hits = {s: 0 for s in segments}
    for t in tracklets:
        inside = [s for s in segments if s[0] - slack <= t.start_frame and t.end_frame <= s[1] + slack]
        assert len(inside) == 1, f"tracklet {t.start_frame}-{t.end_frame} is outside the person segments"
        hits[inside[0]] += 1
        assert t.end_frame - t.start_frame > 0.7 * (inside[0][1] - inside[0][0])  # covers most of it
        assert 8 <= t.num_samples <= 16 and t.thumbnail is not None
    assert all(n == 1 for n in hits.values()), hits
