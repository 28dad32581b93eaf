"""The NVDEC decoder path (``--decoder``), against a stand-in PyNvVideoCodec on this GPU-less machine.

The stand-in decodes with OpenCV and hands frames over as DLPack RGB tensors in batches, as
PyNvVideoCodec's ``SimpleDecoder`` does on a GPU; what is tested is csip-reid's side: the choice of
decoder, frame order and pixels after the RGB -> BGR copy, strides, ranges, the adaptive scan's
``select`` (skipped frames are never copied to the host), the fallback to OpenCV for a file NVDEC
cannot open, and the errors.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from csip_reid.core.errors import ConfigError
from csip_reid.core.nvdec import check_decoder, nvdec_available, resolve_decoder
from csip_reid.core.video import VideoReader


class _Frame:
    """A decoded frame exposing DLPack, like PyNvVideoCodec's ``DecodedFrame``; counts host copies."""

    copies = 0

    def __init__(self, rgb: np.ndarray, planar: bool) -> None:
        t = torch.from_numpy(rgb)
        self._t = t.permute(2, 0, 1).contiguous() if planar else t

    def __dlpack__(self, *args, **kwargs):
        _Frame.copies += 1
        return self._t.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self._t.__dlpack_device__()


class _SimpleDecoder:
    opened: list[dict] = []
    planar = False

    def __init__(self, path: str, gpu_id: int = 0, use_device_memory: bool = True, decoder_cache_size: int = 4,
                 output_color_type: str = "") -> None:
        if path.endswith(".avi"):
            raise RuntimeError("codec not supported by NVDEC")
        cap = cv2.VideoCapture(path)
        self._frames = []
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            self._frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        cap.release()
        self._pos = 0
        _SimpleDecoder.opened.append({"gpu_id": gpu_id, "cache": decoder_cache_size, "color": output_color_type})

    def get_batch_frames(self, n: int) -> list[_Frame]:
        out = [_Frame(f, self.planar) for f in self._frames[self._pos : self._pos + n]]
        self._pos += len(out)
        return out


@pytest.fixture
def fake_nvc(monkeypatch: pytest.MonkeyPatch):
    module = types.SimpleNamespace(SimpleDecoder=_SimpleDecoder, OutputColorType=types.SimpleNamespace(RGB="rgb"))
    monkeypatch.setitem(sys.modules, "PyNvVideoCodec", module)
    _SimpleDecoder.opened.clear()
    _SimpleDecoder.planar = False
    _Frame.copies = 0
    return module


@pytest.fixture
def no_nvc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "PyNvVideoCodec", None)  # import raises ImportError


def _video(path: Path, n: int = 30, fourcc: str = "mp4v") -> Path:
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 10.0, (96, 64))
    for i in range(n):
        f = np.zeros((64, 96, 3), np.uint8)
        f[:, : 3 * i + 3] = (20 + 5 * i, 120, 250 - 5 * i)  # a bar growing frame by frame, three colours
        w.write(f)
    w.release()
    return path


def _frames(reader: VideoReader) -> list[tuple[int, np.ndarray]]:
    return [(i, f) for i, _, f in reader]


def test_decoder_choice(no_nvc) -> None:
    assert not nvdec_available()
    assert resolve_decoder("auto", "cuda") == "pyav" and resolve_decoder("opencv", "cuda:1") == "opencv"
    with pytest.raises(ConfigError, match="--decoder nvdec needs PyNvVideoCodec"):
        resolve_decoder("nvdec", "cuda")
    with pytest.raises(ConfigError, match="unknown decoder 'gpu'"):
        check_decoder("gpu")


def test_pyav_is_the_cpu_default_and_needs_pyav(no_nvc, monkeypatch: pytest.MonkeyPatch) -> None:
    import csip_reid.core.pyav as pyav

    assert resolve_decoder("auto", "cpu") == "pyav" and resolve_decoder("pyav", "cpu") == "pyav"
    monkeypatch.setattr(pyav, "pyav_available", lambda: False)
    with pytest.raises(ConfigError, match="--decoder pyav needs PyAV"):
        resolve_decoder("pyav", "cpu")
    assert resolve_decoder("auto", "cpu") == "opencv", "without PyAV, auto is OpenCV"


def test_auto_picks_nvdec_on_cuda_only(fake_nvc) -> None:
    assert resolve_decoder("auto", "cpu") == "pyav"
    assert resolve_decoder("auto", "cuda:1") == "nvdec" and resolve_decoder("nvdec", "cpu") == "nvdec"


@pytest.mark.parametrize("planar", [False, True])
@pytest.mark.parametrize("kw", [{}, {"stride": 3}, {"start": 5, "end": 22, "stride": 2}])
def test_nvdec_frames_match_opencv(fake_nvc, tmp_path: Path, kw: dict, planar: bool) -> None:
    _SimpleDecoder.planar = planar
    video = _video(tmp_path / "v.mp4")
    cpu = _frames(VideoReader(video, **kw))
    gpu_reader = VideoReader(video, decoder="nvdec", device="cuda:1", **kw)
    gpu = _frames(gpu_reader)
    assert gpu_reader.decoder == "nvdec" and _SimpleDecoder.opened[-1]["gpu_id"] == 1
    assert _SimpleDecoder.opened[-1]["cache"] >= 2 and _SimpleDecoder.opened[-1]["color"] == "rgb"
    assert [i for i, _ in gpu] == [i for i, _ in cpu] and len(cpu) >= 8
    for (_, a), (_, b) in zip(gpu, cpu, strict=True):
        assert a.dtype == np.uint8 and a.shape == b.shape == (64, 96, 3) and a.flags.c_contiguous
        assert np.array_equal(a, b)  # BGR, like OpenCV's
    assert gpu_reader.frames_read == 30 if "end" not in kw else gpu_reader.frames_read == 22
    assert _Frame.copies == len(gpu)  # only the yielded frames were copied to the host


def test_nvdec_select_copies_only_selected_frames(fake_nvc, tmp_path: Path) -> None:
    video = _video(tmp_path / "v.mp4")
    for prefetch in (0, 1):  # plain, and the adaptive scan's lockstep thread
        _Frame.copies = 0
        got = _frames(VideoReader(video, decoder="nvdec", device="cuda", prefetch=prefetch,
                                  select=lambda i: i % 7 == 0))
        assert [i for i, _ in got] == [0, 7, 14, 21, 28] and _Frame.copies == 5


def test_file_nvdec_cannot_open_falls_back_to_opencv(fake_nvc, tmp_path: Path, caplog) -> None:
    video = _video(tmp_path / "v.avi", fourcc="MJPG")
    reader = VideoReader(video, decoder="auto", device="cuda")
    assert reader.decoder == "nvdec"
    with caplog.at_level("WARNING"):
        got = _frames(reader)
    assert reader.decoder == "opencv" and len(got) == 30
    assert "NVDEC cannot open" in caplog.text and "decoding v.avi with OpenCV" in caplog.text
    assert np.array_equal(got[4][1], _frames(VideoReader(video))[4][1])


def test_index_refuses_nvdec_without_pynvvideocodec(no_nvc, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from csip_reid.cli import main

    video = _video(tmp_path / "v.mp4")
    r = CliRunner().invoke(main, ["index", str(video), "--gallery", str(tmp_path / "g"), "--decoder", "nvdec",
                                  "--detector", "yolox:yolox_nano"])
    assert r.exit_code == 2, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert lines[-1].startswith("error: --decoder nvdec needs PyNvVideoCodec") and len(lines) == 1
    assert not (tmp_path / "g").exists()  # refused before any work
