"""`reid index` on a raw `.264` stream, which has no frame count: the bar on stderr still shows a total."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.cli import OFFLINE_ARGS, run_reid

av = pytest.importorskip("av")


ARGS = [a for a in OFFLINE_ARGS if a != "-q"]  # with progress bars


def _clip(path: Path, fmt: str | None = None) -> Path:
    """60 frames of H.264 at 25 fps (OpenCV reads a raw stream at 25 fps too)."""
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        for i in range(60):
            frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), 50 + i, np.uint8), format="bgr24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_index_of_a_raw_stream_shows_its_total_in_video_time(tmp_path: Path, offline_env: dict) -> None:
    video = _clip(tmp_path / "cam07.264", "h264")
    p = run_reid("index", str(video), "--gallery", str(tmp_path / "g"), *ARGS, env_extra=offline_env, check=True)
    renders = [r for r in p.stderr.split("\r") if r.startswith("cam07.264:")]
    assert renders, p.stderr[-2000:]
    assert all("/0:00:02 video [" in r for r in renders), renders  # 60 frames at 25 fps: a total from the start
    bar = r"\d+%\|.*\| 0:00:0\d/0:00:02 video \[\d\d:\d\d<(\d\d:\d\d|\?), ([\d.]+|\?)x real time\]"
    assert all(re.fullmatch(bar, r.removeprefix("cam07.264: ").strip()) for r in renders), renders


def test_index_of_several_files_shows_the_files_and_their_video_time(tmp_path: Path, offline_env: dict) -> None:
    videos = [_clip(tmp_path / "cam01.mp4"), _clip(tmp_path / "cam02.264", "h264")]
    p = run_reid("index", *map(str, videos), "--gallery", str(tmp_path / "g"), *ARGS, env_extra=offline_env,
                 check=True)
    renders = [r.strip() for r in p.stderr.split("\r") if r.strip().startswith("videos:")]
    assert renders[0] == "videos: 0/2 files, 0:00:00/? video [00:00, ?x real time]", renders
    assert re.fullmatch(r"videos: 100%\|.*\| 2/2 files, 0:00:04/0:00:04 video \[\d\d:\d\d<00:00, [\d.]+x real time\]",
                        renders[-1]), renders
