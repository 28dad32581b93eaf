"""VideoReader, content hash and file discovery."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from csip_reid.core import video as video_mod
from csip_reid.core.errors import VideoError
from csip_reid.core.video import VideoReader, iter_video_files, prefetched, video_content_hash


@pytest.fixture
def tiny(tmp_path: Path, write_video) -> Path:
    return write_video(tmp_path / "tiny.avi", 20, fps=5.0)


def _level(frame: np.ndarray) -> int:
    """Frame index encoded by write_video (flat grey 10 * index)."""
    return int(round(frame.mean() / 10))


def test_reads_every_frame_with_timestamps(tiny: Path) -> None:
    r = VideoReader(tiny)
    assert (r.fps, r.frame_count, r.width, r.height, r.fps_assumed) == (5.0, 20, 64, 48, False)
    frames = list(r)
    assert [f[0] for f in frames] == list(range(20))
    assert [f[1] for f in frames] == pytest.approx([i / 5.0 for i in range(20)])
    assert [_level(f[2]) for f in frames] == list(range(20))
    assert frames[0][2].shape == (48, 64, 3) and frames[0][2].dtype == np.uint8
    assert r.failed_frames == 0 and r.frames_read == 20


@pytest.mark.parametrize(("stride", "start", "end"), [(3, 0, None), (2, 5, 12), (4, 3, None), (1, 18, 40)])
def test_stride_and_range(tiny: Path, stride: int, start: int, end: int | None) -> None:
    r = VideoReader(tiny, stride=stride, start=start, end=end)
    want = list(range(start, min(20, end or 20), stride))
    got = list(r)
    assert [f[0] for f in got] == want
    assert [_level(f[2]) for f in got] == want  # the pixels are those of the claimed index
    assert r.expected_frames == len(want)


def test_prefetch_yields_the_same_frames(tiny: Path) -> None:
    plain = [(i, t, f.sum()) for i, t, f in VideoReader(tiny, stride=2)]
    threaded = [(i, t, f.sum()) for i, t, f in VideoReader(tiny, stride=2, prefetch=3)]
    assert threaded == plain


def test_mp4_container(tmp_path: Path, write_video) -> None:
    p = write_video(tmp_path / "tiny.mp4", 12, fps=8.0)
    frames = list(VideoReader(p))
    assert len(frames) == 12 and frames[-1][1] == pytest.approx(11 / 8.0)


def test_corrupt_frames_are_counted_and_skipped(tiny: Path, tmp_path: Path) -> None:
    data = bytearray(tiny.read_bytes())
    jpeg_starts = [m for m in range(len(data) - 1) if data[m] == 0xFF and data[m + 1] == 0xD8]
    assert len(jpeg_starts) == 20
    for k in (5, 6, 12):  # wipe the start of three JPEG frames
        data[jpeg_starts[k] : jpeg_starts[k] + 200] = bytes(200)
    bad = tmp_path / "corrupt.avi"
    bad.write_bytes(bytes(data))
    r = VideoReader(bad)
    got = list(r)
    want = [i for i in range(20) if i not in (5, 6, 12)]
    assert [f[0] for f in got] == want
    assert [_level(f[2]) for f in got] == want  # indices stay aligned after the damaged frames
    assert r.failed_frames == 3


def test_missing_fps_falls_back_to_25(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = cv2.VideoCapture

    class NoFps:
        def __init__(self, path: str) -> None:
            self._cap = real(path)

        def get(self, prop: int) -> float:
            return float("nan") if prop == cv2.CAP_PROP_FPS else self._cap.get(prop)

        def __getattr__(self, name: str):
            return getattr(self._cap, name)

    monkeypatch.setattr(video_mod.cv2, "VideoCapture", NoFps)
    r = VideoReader(tiny)
    assert r.fps == 25.0 and r.fps_assumed
    assert [f[1] for f in r][:3] == pytest.approx([0.0, 0.04, 0.08])


def test_real_clip(intel_clip: Path) -> None:
    r = VideoReader(intel_clip, stride=100)
    assert (r.fps, r.frame_count, r.width, r.height) == (10.0, 1394, 768, 432)
    got = list(r)
    assert [f[0] for f in got] == list(range(0, 1394, 100))
    assert got[-1][1] == pytest.approx(130.0)
    assert r.failed_frames == 0 and r.frames_read == 1394
    assert all(f[2].shape == (432, 768, 3) for f in got)


def test_open_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.touch()
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    for bad in (tmp_path / "missing.mp4", empty, text, tmp_path):
        with pytest.raises(VideoError, match="cannot open video"):
            VideoReader(bad)


def test_bad_arguments(tiny: Path) -> None:
    with pytest.raises(ValueError):
        VideoReader(tiny, stride=0)
    with pytest.raises(ValueError):
        VideoReader(tiny, start=10, end=5)


def test_prefetched_passes_exceptions_after_items() -> None:
    def gen():
        yield 1
        yield 2
        raise RuntimeError("decoder died")

    got = []
    with pytest.raises(RuntimeError, match="decoder died"):
        for x in prefetched(gen(), 1):
            got.append(x)
    assert got == [1, 2]


def test_prefetched_stops_its_thread_on_early_exit() -> None:
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    it = prefetched(endless(), 2)
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    it.close()
    assert closed.wait(5)
    assert not any(t.name == "prefetch" and t.is_alive() for t in threading.enumerate())


def test_content_hash(tmp_path: Path) -> None:
    a = tmp_path / "a.bin"
    a.write_bytes(bytes(range(256)) * 100)
    b = tmp_path / "b.mp4"
    b.write_bytes(a.read_bytes())
    assert video_content_hash(a) == video_content_hash(b)  # content, not name
    data = bytearray(a.read_bytes())
    data[12345] ^= 1
    b.write_bytes(bytes(data))
    assert video_content_hash(a) != video_content_hash(b)


def test_content_hash_samples_large_files(tmp_path: Path) -> None:
    block = 1 << 20
    size = 10 * block
    base = bytearray(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes())
    ref = tmp_path / "ref.bin"
    ref.write_bytes(bytes(base))
    h = video_content_hash(ref, block=block)

    def variant(pos: int) -> str:
        data = bytearray(base)
        data[pos] ^= 0xFF
        p = tmp_path / f"v{pos}.bin"
        p.write_bytes(bytes(data))
        return video_content_hash(p, block=block)

    assert variant(10) != h  # head block
    assert variant(size // 2) != h  # middle block
    assert variant(size - 1) != h  # tail block
    assert variant(2 * block) == h  # between the sampled blocks: not read, by design
    longer = tmp_path / "longer.bin"
    longer.write_bytes(bytes(base) + b"\0")
    assert video_content_hash(longer, block=block) != h


def test_iter_video_files(tmp_path: Path) -> None:
    (tmp_path / "b" / "deep").mkdir(parents=True)
    (tmp_path / ".cache").mkdir()
    for name in ["a.mp4", "b/c.MKV", "b/deep/d.avi", "b/notes.txt", "b/._a.mp4", ".cache/x.mp4", "e.dav"]:
        (tmp_path / name).write_bytes(b"x")
    found = iter_video_files([tmp_path, tmp_path / "a.mp4", str(tmp_path / "b")])
    assert found == sorted([tmp_path / "a.mp4", tmp_path / "b/c.MKV", tmp_path / "b/deep/d.avi"])
    assert iter_video_files(tmp_path / "e.dav") == [tmp_path / "e.dav"]  # named files are kept
    with pytest.raises(VideoError):
        iter_video_files([tmp_path / "nope"])
