"""A resumed video's progress bar starts at its resume point, in video time, and goes on by frame position."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from csip_reid.pipeline.extract import ResumePoint, extract_segments
from tests.helpers.walkers import SEGMENT_S, BlobDetector, write_walkers

pytest.importorskip("av")


@pytest.mark.parametrize("scan", ["full", "adaptive"])
def test_a_resumed_bar_starts_at_the_resume_point(tmp_path: Path, scan: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    video = write_walkers(tmp_path / "cam.mp4")  # 40 s at 10 fps
    out = list(extract_segments(video, BlobDetector(), progress=True, scan=scan, segment_s=SEGMENT_S,
                                resume=ResumePoint(200, 0, 4)))
    assert out
    renders = [r.strip() for r in capsys.readouterr().err.split("\r") if r.strip().startswith("cam.mp4:")]
    assert renders[0].startswith("cam.mp4:  50%|") and "| 0:00:20/0:00:40 video [" in renders[0], renders[:2]
    done = [int(m.group(1)) for r in renders if (m := re.search(r"\| 0:00:(\d\d)/0:00:40 video", r))]
    assert len(done) == len(renders) and done == sorted(done)  # every render in video time, never back
