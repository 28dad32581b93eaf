"""Segments and resume points: a resumed scan gives exactly the tracklets of an uninterrupted one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from csip_reid.core.tracklet import Tracklet
from csip_reid.pipeline.extract import ExtractStats, ResumePoint, extract_segments
from tests.helpers.walkers import SEGMENT_S, WALKERS, BlobDetector, write_walkers

pytest.importorskip("av")


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_walkers(tmp_path_factory.mktemp("segments") / "cam.mp4")


def _run(video: Path, scan: str, decoder: str, segment_s: float = SEGMENT_S,
         resume: ResumePoint | None = None) -> tuple[list[Tracklet | ResumePoint], ExtractStats]:
    stats = ExtractStats()
    items = list(extract_segments(video, BlobDetector(), scan=scan, decoder=decoder, stats=stats, progress=False,
                                  segment_s=segment_s, resume=resume, builder_opts={"min_box_height": 32}))
    return items, stats


def _key(t: Tracklet) -> tuple:
    return t.track_id, t.frames.tolist(), np.round(t.boxes, 3).tolist()


@pytest.mark.parametrize("decoder", ["opencv", "pyav"])
@pytest.mark.parametrize("scan", ["full", "adaptive"])
def test_resuming_from_any_point_gives_the_uninterrupted_tracklets(video: Path, scan: str, decoder: str) -> None:
    items, stats = _run(video, scan, decoder)
    points = [i for i, x in enumerate(items) if isinstance(x, ResumePoint)]
    tracklets = [x for x in items if isinstance(x, Tracklet)]
    assert len(points) >= 2 and stats.segments == len(points)
    assert len(tracklets) == len(WALKERS)
    assert len({t.track_id for t in tracklets}) == len(tracklets), "track ids are unique across segments"
    # the third walker is on screen when the first segment is due (frame 50 + ...): one tracklet
    crossing = [t for t in tracklets if t.start_frame <= 152 and t.end_frame >= 258]
    assert len(crossing) == 1
    for k in points:
        point = items[k]
        assert isinstance(point, ResumePoint) and point.frame % 1 == 0
        assert all(t.end_frame < point.frame for t in items[:k] if isinstance(t, Tracklet))
        resumed, rstats = _run(video, scan, decoder, resume=point)
        tail = [_key(x) for x in items[k + 1:] if isinstance(x, Tracklet)]
        assert [_key(x) for x in resumed if isinstance(x, Tracklet)] == tail
        assert [x for x in resumed if isinstance(x, ResumePoint)] == [x for x in items[k + 1:]
                                                                       if isinstance(x, ResumePoint)]
        # counters carried over: the resumed run ends with the uninterrupted run's totals
        for name in ("frames_read", "frames_detected", "tracks", "segments"):
            assert getattr(rstats, name) == getattr(stats, name), name
        assert rstats.resumed_at == point.frame


@pytest.mark.parametrize("scan", ["full", "adaptive"])
def test_segments_change_no_span(video: Path, scan: str) -> None:
    """Segment ends fall where nobody is tracked: the spans are those of a scan in one piece."""
    one, _ = _run(video, scan, "opencv", segment_s=0)
    many, _ = _run(video, scan, "opencv")
    spans = sorted((t.start_frame, t.end_frame) for t in one)
    assert all(isinstance(t, Tracklet) for t in one) and len(spans) == len(WALKERS)
    got = sorted((t.start_frame, t.end_frame) for t in many if isinstance(t, Tracklet))
    assert np.abs(np.array(got) - np.array(spans)).max() <= 2, (got, spans)


def test_a_resume_point_round_trips_through_json() -> None:
    p = ResumePoint(1234, 17, 3, "keyframes 200 frames apart (limit 100)", {"frames_read": 1000, "tracks": 16})
    assert ResumePoint.from_dict(p.to_dict()) == p
