"""A truncated MP4: FFmpeg stays quiet, and `reid index` says once what it decoded of what was promised."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from csip_reid.core.video import VideoReader
from tests.helpers.cli import OFFLINE_ARGS, cut_clip, run_reid_process


@pytest.fixture(scope="module")
def damaged(videos_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    video = videos_dir / "intel_one-by-one-person-detection.mp4"
    if not video.is_file():
        pytest.skip("intel_one-by-one-person-detection.mp4 missing")
    d = tmp_path_factory.mktemp("damaged")
    full = cut_clip(video, d / "full.mp4", 70, 150)  # 80 frames, a person walking in
    data = full.read_bytes()
    out = d / "cam_truncated.mp4"
    # cut_clip writes the moov atom (the frame table) at the end: keep it and drop half of the frames.
    moov = data.rfind(b"moov") - 4
    assert moov > 0
    out.write_bytes(data[: moov // 2] + b"\0" * (moov - moov // 2) + data[moov:])
    return out


def test_reader_reports_decoded_failed_and_promised(damaged: Path) -> None:
    r = VideoReader(damaged)
    n = sum(1 for _ in r)
    assert r.frame_count == 80 and n == r.frames_read
    assert 0 < n < 80
    assert r.frames_read + r.failed_frames + r.frames_missing == 80
    line = r.damage_report()
    assert line is not None and f"decoded {n} of the 80 frames the header promises" in line
    assert VideoReader(damaged.with_name("full.mp4")).damage_report() is None


def test_ffmpeg_log_is_silenced(damaged: Path) -> None:
    code = ("import sys; from csip_reid.core.video import VideoReader; r = VideoReader(sys.argv[1]); "
            "print(sum(1 for _ in r))")
    p = subprocess.run([sys.executable, "-c", code, str(damaged)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and int(p.stdout) > 0
    assert "partial file" not in p.stderr and "[mov" not in p.stderr and "[h264" not in p.stderr, p.stderr[:500]


def test_index_reports_each_video_once(damaged: Path, offline_env: dict, tmp_path: Path) -> None:
    """A real process: FFmpeg logs on file descriptor 2 would reach the user, not the runner's stderr."""
    broken = damaged.with_name("cam_broken.mp4")
    broken.write_bytes(b"this is not a video" * 100)
    p = run_reid_process("index", str(damaged), str(broken), "--gallery", str(tmp_path / "g"), *OFFLINE_ARGS,
                         env_extra=offline_env)
    assert p.returncode == 1  # one video failed
    err = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert not [ln for ln in err if "partial file" in ln or ln.startswith("[")], err
    about_damaged = [ln for ln in err if str(damaged.name) in ln]
    about_broken = [ln for ln in err if str(broken.name) in ln]
    assert len(about_damaged) == 1 and len(about_broken) == 1, err
    m = re.search(r"decoded (\d+) of the 80 frames the header promises", about_damaged[0])
    assert m and 0 < int(m.group(1)) < 80
    assert "failed" in about_broken[0]
    assert "failed 1" in p.stdout and "indexed 1" in p.stdout
