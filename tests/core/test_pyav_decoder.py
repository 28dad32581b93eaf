"""PyAV decoding: same frames as OpenCV, keyframe-only skipping, going back to the keyframe before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")

from csip_reid.core.pyav import PyAVCapture  # noqa: E402
from csip_reid.core.video import VideoReader  # noqa: E402

FPS, GOP, N = 10, 10, 80
ENTER, LEAVE = 37, 52  # a bright square is in the picture on these frames (half-open)


def _picture(i: int) -> np.ndarray:
    img = np.full((120, 160, 3), 60, np.uint8)
    img[:, :, 1] = 90
    if ENTER <= i < LEAVE:
        x = 20 + 4 * (i - ENTER)
        img[40:100, x : x + 30] = 230
    return img


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An H.264 clip with a keyframe every GOP frames and one moving square."""
    path = tmp_path_factory.mktemp("pyav") / "quiet.mp4"
    with av.open(str(path), "w", options={"movflags": "faststart"}) as c:
        s = c.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        s.options = {"g": str(GOP), "keyint_min": str(GOP), "sc_threshold": "0", "bf": "0"}
        for i in range(N):
            for p in s.encode(av.VideoFrame.from_ndarray(_picture(i), format="bgr24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


class Scan:
    """A scan in miniature: idle while no square was seen in the last frames it handled."""

    def __init__(self) -> None:
        self.handled: list[int] = []
        self.seen_at: int | None = None

    def select(self, index: int) -> bool:
        return True

    def consume(self, index: int, frame: np.ndarray) -> None:
        self.handled.append(index)
        if frame.max() > 200:
            self.seen_at = index

    def idle(self) -> bool:
        return self.seen_at is None or self.handled[-1] - self.seen_at > 3

    def opens(self, frame: np.ndarray) -> bool:
        return bool(frame.max() > 200)


def _run(clip: Path, scan: Scan, **kw: object) -> VideoReader:
    reader = VideoReader(clip, decoder="pyav", select=scan.select, prefetch=1, keyframes=scan, **kw)
    for index, _, frame in reader:
        scan.consume(index, frame)
    return reader


def test_pyav_gives_the_frames_opencv_gives(clip: Path) -> None:
    cv = list(VideoReader(clip, decoder="opencv"))
    pa = list(VideoReader(clip, decoder="pyav", prefetch=4))
    assert [i for i, _, _ in pa] == [i for i, _, _ in cv] == list(range(N))
    for (_, t1, a), (_, t2, b) in zip(cv, pa, strict=True):
        assert t1 == pytest.approx(t2)
        assert np.abs(a.astype(int) - b.astype(int)).mean() < 2.0


def test_pyav_capture_reports_the_container(clip: Path) -> None:
    cap = PyAVCapture(clip)
    assert cap.fps == FPS and cap.frame_count == N and cap.can_skip
    keys = []
    while cap.grab():
        if cap.keyframe:
            keys.append(cap.position)
    cap.release()
    assert keys == list(range(0, N, GOP))


def test_quiet_stretches_decode_keyframes_only_and_a_change_goes_back(clip: Path) -> None:
    scan = Scan()
    reader = _run(clip, scan)
    got = scan.handled
    assert got == sorted(set(got)), "frames reach the consumer once each, in order"
    # before the square: keyframes only (after the first frame, where the scan turns idle)
    assert [i for i in got if i < 30] == [0, 10, 20]
    # keyframe 40 shows the square: the reader went back to keyframe 30 and decoded every frame
    # after it, so the square is seen from the frame it entered on
    assert list(range(31, LEAVE + 4)) == [i for i in got if 31 <= i < LEAVE + 4]
    assert scan.handled.index(ENTER) > 0 and min(i for i in got if i >= ENTER) == ENTER
    # after it left: keyframes only again, up to the end
    assert [i for i in got if i > LEAVE + 10] == [70]
    stats = reader.skip_stats
    assert stats["rewinds"] == 1 and stats["skip_off"] == ""
    assert reader.failed_frames == 0
    assert reader.frames_missing == 0 and reader.damage_report() is None, "a skipped tail is not damage"


def test_keyframes_too_far_apart_turn_skipping_off(clip: Path) -> None:
    scan = Scan()
    reader = _run(clip, scan, max_keyframe_gap_s=0.5)  # the clip has one keyframe a second
    assert scan.handled == list(range(N)), "every frame, once, in order"
    assert "apart" in reader.skip_stats["skip_off"]


def test_a_truncated_file_still_reports_its_missing_tail(clip: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.mp4"
    data = clip.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    scan = Scan()
    reader = _run(cut, scan)
    assert scan.handled and scan.handled == sorted(set(scan.handled))
    assert reader.frames_missing > 0 and "truncated" in (reader.damage_report() or "")


@pytest.mark.parametrize("kw", [{"decoder": "opencv", "prefetch": 1}, {"decoder": "pyav", "prefetch": 0}])
def test_skipping_needs_the_pyav_decoder_and_a_lockstep_scan(clip: Path, kw: dict) -> None:
    scan = Scan()
    reader = VideoReader(clip, select=scan.select, keyframes=scan, **kw)
    for index, _, frame in reader:
        scan.consume(index, frame)
    assert scan.handled == list(range(N)) and reader.skip_stats == {}


def _passer_clip(path: Path, enter: int, leave: int, noise: bool) -> Path:
    """12 s of 320x240 at 10 fps, a keyframe every 4 s (0, 40, 80); a textured square walks by on
    [enter, leave) only, as a person costs the encoder bits."""
    rng = np.random.default_rng(1)
    texture = rng.integers(120, 255, (80, 40, 3), dtype=np.uint8)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = 320, 240, "yuv420p"
        s.options = {"g": "40", "keyint_min": "40", "sc_threshold": "0", "bf": "0"}
        for i in range(120):
            img = np.full((240, 320, 3), 60, np.uint8)
            if noise:  # sensor noise: every predicted frame costs bytes, quiet or not
                img = (img + rng.integers(0, 8, img.shape)).astype(np.uint8)
            if enter <= i < leave:
                x = 10 + 12 * (i - enter)
                img[80:160, x : x + 40] = texture
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="bgr24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


@pytest.mark.parametrize("noise", [False, True])
def test_someone_between_two_keyframes_is_seen_from_the_packet_sizes(tmp_path: Path, noise: bool) -> None:
    """Neither keyframe (40, 80) shows the square (frames 47-66): the skipped frames' packets do."""
    clip = _passer_clip(tmp_path / "passer.mp4", 47, 67, noise)  # 2 s, shorter than the keyframe interval
    scan = Scan()
    reader = _run(clip, scan)
    assert scan.seen_at is not None and 47 <= min(i for i in scan.handled if i >= 47) <= 48
    assert set(range(47, 67)) <= set(scan.handled), "every frame of the passage reaches the scan"
    assert reader.skip_stats["bursts"] >= 1 and reader.skip_stats["rewinds"] == 1
    assert [i for i in scan.handled if i < 40] == [0], "before it: keyframes only"
    quiet = _run(_passer_clip(tmp_path / "nobody.mp4", 10**6, 10**6, noise), Scan())
    assert quiet.skip_stats["bursts"] == 0 and quiet.skip_stats["rewinds"] == 0, "no motion, no rewind"


@pytest.mark.parametrize("rate", [10, 15, 30])
def test_a_raw_stream_keeps_its_own_frame_rate(tmp_path: Path, rate: int) -> None:
    """OpenCV and FFmpeg's average rate say 25 fps for any raw .264; the stream's own timing does not."""
    path = tmp_path / f"cam_{rate}.264"
    with av.open(str(path), "w", format="h264") as c:
        s = c.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt = 160, 120, "yuv420p"
        for i in range(30):
            for p in s.encode(av.VideoFrame.from_ndarray(_picture(i), format="bgr24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    for decoder in ("opencv", "pyav"):
        reader = VideoReader(path, decoder=decoder)
        got = list(reader)
        assert reader.fps == rate and not reader.fps_assumed, decoder
        assert len(got) == 30 and got[-1][1] == pytest.approx(29 / rate), decoder
    assert PyAVCapture(path).fps == rate
