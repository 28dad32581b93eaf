"""Progress bars in video time: the rendered text, resumed runs, jumps, and totals that are wrong or missing."""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from csip_reid.core import progress  # noqa: E402
from csip_reid.core.progress import (  # noqa: E402
    VideoProgress,
    count_packets,
    estimate_frame_count,
    format_video_time,
    header_frame_count,
)

FPS, N = 10, 95
DAY = 24 * 3600 * 25  # frames of a 24 h recording at 25 fps


def _write(path: Path, fmt: str | None = None, codec: str = "libx264") -> Path:
    """``N`` frames at ``FPS`` (``fmt="h264"`` or ``"hevc"``: a raw elementary stream, no container)."""
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=FPS)
        s.width, s.height, s.pix_fmt = 96, 64, "yuv420p"
        s.options = {"g": "10", "bf": "0"}
        for i in range(N):
            img = np.full((64, 96, 3), 40 + 2 * i, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("progress")
    clips = {"mp4": _write(d / "cam.mp4"), "ts": _write(d / "cam.ts", "mpegts"), "264": _write(d / "cam.264", "h264")}
    if "libx265" in av.codecs_available:
        clips["h265"] = _write(d / "cam.h265", "hevc", "libx265")
    return clips


def _bar(*args: object, **kwargs: object) -> tuple[VideoProgress, io.StringIO]:
    out = io.StringIO()
    return VideoProgress(*args, file=out, mininterval=0, **kwargs), out  # type: ignore[arg-type]


def _renders(out: io.StringIO) -> list[str]:
    """Each drawing of the bar (``\\r``-separated), without the cursor moves of nested bars."""
    return [r.replace("\x1b[A", "").strip() for r in out.getvalue().split("\r") if r.strip()]


def _last(out: io.StringIO) -> str:
    """The bar as the terminal shows it now."""
    return _renders(out)[-1]


def _seconds(text: str) -> int:
    parts = [int(x) for x in text.split(":")]
    return sum(v * 60**i for i, v in enumerate(reversed(parts)))


@pytest.mark.parametrize(("seconds", "text"), [(0, "0:00:00"), (7.9, "0:00:07"), (31930, "8:52:10"),
                                               (86400, "24:00:00"), (90061, "25:01:01"), (-3, "0:00:00")])
def test_video_time_is_h_mm_ss(seconds: float, text: str) -> None:
    assert format_video_time(seconds) == text


@pytest.mark.parametrize("kind", ["mp4", "ts", "264", "h265"])
def test_the_estimate_is_within_a_few_frames_of_the_true_count(clips: dict[str, Path], kind: str) -> None:
    if kind not in clips:
        pytest.skip("this FFmpeg has no libx265 encoder")
    assert abs(estimate_frame_count(clips[kind], FPS) - N) <= 2
    assert count_packets(clips[kind]) == N


def test_a_raw_stream_has_no_header_count_but_its_packets_count(clips: dict[str, Path]) -> None:
    assert header_frame_count(clips["264"], FPS) is None
    assert header_frame_count(clips["mp4"], FPS) == N
    bar, _ = _bar(clips["264"], 25.0, 0)  # what OpenCV reports for a raw stream: 25 fps, no count
    assert bar.total == N
    bar.close()


def test_a_counted_stream_can_be_stopped(clips: dict[str, Path], tmp_path: Path) -> None:
    long = tmp_path / "long.264"
    long.write_bytes(clips["264"].read_bytes() * 4)  # raw streams concatenate
    assert count_packets(long) == 4 * N
    stop = threading.Event()
    stop.set()
    assert count_packets(long, stop) is None


def test_unreadable_files_give_no_estimate(tmp_path: Path) -> None:
    junk = tmp_path / "junk.264"
    junk.write_bytes(b"\x00\x01not a video" * 100)
    assert estimate_frame_count(junk, FPS) is None
    assert estimate_frame_count(tmp_path / "missing.mp4", FPS) is None
    bar, out = _bar(junk, FPS, 0)
    bar.update_to(50)
    assert bar.total is None and "0:00:05/? video" in _last(out)
    bar.close()


def test_the_bar_shows_video_time_done_and_total_with_eta_and_speed() -> None:
    bar, out = _bar("/archive/cam03.mp4", 25.0, DAY)  # the container's count: the file is not read
    time.sleep(0.05)
    bar.update_to(798_250)  # 8:52:10 at 25 fps
    text = _last(out)
    bar.close()
    assert text.startswith("cam03.mp4:  37%|")
    assert "| 8:52:10/24:00:00 video [" in text
    eta = re.search(r"\[(\S+)<(\S+), ([\d.]+)x real time\]", text)
    assert eta is not None, text
    assert float(eta.group(3)) > 1000  # 8.9 h of video in well under a minute
    assert _seconds(eta.group(2)) < 60


def test_a_resumed_bar_starts_at_its_position_and_times_this_run_only() -> None:
    bar, out = _bar("cam03.mp4", 25.0, DAY, initial=90_000)
    assert bar.n == 90_000 and "1:00:00/24:00:00 video" in _last(out)
    t0 = time.perf_counter()
    time.sleep(0.3)
    bar.update_to(90_000 + 250)  # 10 s of video in this run
    elapsed = time.perf_counter() - t0
    text = _last(out)
    rate = bar.format_dict["rate"]
    bar.close()
    assert "1:00:10/24:00:00 video" in text
    assert rate == pytest.approx(250 / elapsed, rel=0.3)  # not 90,250 frames in 0.3 s
    speed = float(re.search(r"([\d.]+)x real time", text).group(1))  # type: ignore[union-attr]
    assert speed == pytest.approx(10 / elapsed, rel=0.3)
    left = _seconds(re.search(r"<(\S+),", text).group(1))  # type: ignore[union-attr]
    assert left == pytest.approx((DAY - 90_250) / (250 / elapsed), rel=0.3)  # ~40 min, not seconds


def test_positions_jump_forward_and_never_back() -> None:
    bar, out = _bar("cam.mp4", 25.0, 100_000)
    bar.update_to(10)
    bar.update_to(5_000)  # keyframes skipped
    assert bar.n == 5_000 and "0:03:20/1:06:40 video" in _last(out)
    bar.update_to(4_000)
    assert bar.n == 5_000
    bar.close()


def test_a_count_smaller_than_the_position_is_replaced_by_the_packet_count(clips: dict[str, Path]) -> None:
    bar, out = _bar(clips["mp4"], FPS, 50)  # the container claims 50 of the 95 frames
    bar.update_to(40)
    assert bar.total == 50 and "0:00:04/0:00:05 video" in _last(out)
    bar.update_to(60)
    assert bar.total == N and "0:00:06/0:00:09 video" in _last(out)
    bar.update_to(N + 20)  # past every count: open-ended, no ETA
    text = _last(out)
    bar.close()
    assert bar.total is None and "0:00:11/? video [" in text and "<" not in text and "%|" not in text


def test_an_unknown_total_shows_time_and_speed_without_eta(clips: dict[str, Path]) -> None:
    bar, out = _bar(clips["264"], FPS, 0, estimate=False)
    time.sleep(0.02)
    bar.update_to(50)
    text = _last(out)
    bar.close()
    assert bar.total is None
    assert re.fullmatch(r"cam\.264: 0:00:05/\? video \[00:00, [\d.]+x real time\]", text.strip()), text


def test_a_large_raw_stream_is_counted_in_the_background(clips: dict[str, Path],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "SYNC_COUNT_BYTES", 0)
    release = threading.Event()

    def slow_count(path: Path, stop: threading.Event | None = None) -> int | None:
        release.wait(30)  # a long file: the count takes a while
        return count_packets(path, stop)

    monkeypatch.setattr(progress, "count_packets", slow_count)
    bar, out = _bar(clips["264"], FPS, 0)
    assert bar.total is None  # the video starts without waiting for the count
    bar.update_to(10)
    assert "0:00:01/? video" in _last(out)
    release.set()
    bar.wait(timeout=30)
    bar.update_to(30)
    assert bar.total == N and "0:00:03/0:00:09 video" in _last(out)
    bar.close()


def test_a_span_end_is_the_total_and_a_disabled_bar_reads_nothing(clips: dict[str, Path],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    bar, _ = _bar(clips["264"], FPS, 0, initial=20, end=60)
    assert (bar.n, bar.total) == (20, 60)
    bar.close()

    def no_reading(*_: object, **__: object) -> None:
        raise AssertionError("a disabled bar must not read the video")

    monkeypatch.setattr(progress, "count_packets", no_reading)
    monkeypatch.setattr(progress, "header_frame_count", no_reading)
    bar, out = _bar(clips["264"], FPS, 0, disable=True)
    bar.update_to(40)
    bar.close()
    assert out.getvalue() == ""


def test_video_duration_from_the_header_or_the_packets(clips: dict[str, Path], tmp_path: Path) -> None:
    for kind in ("mp4", "ts", "264"):  # the raw stream: 95 packets at its own 10 fps
        assert progress.video_duration_s(clips[kind]) == pytest.approx(N / FPS, abs=0.2)
    assert progress.video_duration_s(tmp_path / "missing.mp4") is None


def test_the_files_bar_shows_files_and_video_time(clips: dict[str, Path], tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 50)
    files = [clips["mp4"], clips["264"], junk, clips["ts"]]
    out = io.StringIO()
    bar = progress.ArchiveProgress(files, file=out, mininterval=0)
    first = _renders(out)[0]  # drawn before the durations are read
    assert first == "videos: 0/4 files, 0:00:00/? video [00:00, ?x real time]"
    bar.wait(timeout=30)  # every duration read: the total is shown at once
    assert bar.total == pytest.approx(4 * 9.5, abs=0.5)  # the unreadable file counts as the average
    assert "videos:   0%|" in _last(out) and "| 0/4 files, 0:00:00/0:00:38 video [" in _last(out)
    bar.finished(clips["mp4"], skipped=True)  # indexed before: done, but not in the speed
    assert bar.initial == pytest.approx(9.5, abs=0.2) and bar.format_dict["rate"] == pytest.approx(0, abs=1e-3)
    time.sleep(0.2)
    bar.finished(clips["264"])
    text = _last(out)
    assert "videos:  50%|" in text and "| 2/4 files, 0:00:19/0:00:38 video [" in text, text
    speed = float(re.search(r"([\d.]+)x real time", text).group(1))  # type: ignore[union-attr]
    assert speed < 9.5 / 0.2 * 1.1  # 9.5 s of video in >= 0.2 s: the skipped file is not counted
    bar.finished(junk)
    bar.finished(clips["ts"])
    assert bar.n == pytest.approx(bar.total) and "4/4 files, 0:00:38/0:00:38 video" in _last(out)
    bar.close()


def test_a_bar_left_on_screen_keeps_its_video_time_when_closed() -> None:
    bar, out = _bar("cam03.mp4", 25.0, 900, leave=True)
    bar.update_to(900)
    bar.close()
    assert _last(out).startswith("cam03.mp4: 100%|") and "| 0:00:36/0:00:36 video [" in _last(out)
