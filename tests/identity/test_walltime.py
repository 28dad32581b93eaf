"""Wall-clock start times: ISO parsing, file-name patterns, the container's creation time."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from csip_reid.core.errors import ConfigError
from csip_reid.core.walltime import creation_time, parse_time, time_from_name


def test_parse_time_normalises_to_utc() -> None:
    assert parse_time("2024-05-01T10:00:00+02:00") == "2024-05-01T08:00:00+00:00"
    assert parse_time("2024-05-01 08:00:00Z") == "2024-05-01T08:00:00+00:00"
    assert parse_time("2024-05-01T08:00:00.250") == "2024-05-01T08:00:00.250+00:00"  # naive = UTC
    with pytest.raises(ConfigError, match="not an ISO 8601 time"):
        parse_time("yesterday at noon")


def test_time_from_name() -> None:
    assert time_from_name("/x/cam3_20240501_081502.mp4", "cam3_%Y%m%d_%H%M%S") == "2024-05-01T08:15:02+00:00"
    assert time_from_name("/x/cam3_20240501_081502_part2.mp4", "cam3_%Y%m%d_%H%M%S") == "2024-05-01T08:15:02+00:00"
    assert time_from_name("/x/other.mp4", "cam3_%Y%m%d_%H%M%S") is None
    assert time_from_name("/x/cam3_20241301_081502.mp4", "cam3_%Y%m%d_%H%M%S") is None  # month 13
    with pytest.raises(ConfigError, match="no year"):
        time_from_name("/x/a.mp4", "cam_%H%M")
    with pytest.raises(ConfigError, match="unsupported field %Q"):
        time_from_name("/x/a.mp4", "%Y%Q")


def _mp4(path: Path) -> Path:
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for _ in range(5):
        out.write(np.zeros((48, 64, 3), np.uint8))
    out.release()
    return path


def test_creation_time_from_the_mp4_header(tmp_path: Path) -> None:
    video = _mp4(tmp_path / "a.mp4")
    data = bytearray(video.read_bytes())
    at = data.find(b"mvhd")
    assert at > 0, "OpenCV wrote no mvhd box"
    version = data[at + 4]
    when = datetime(2024, 5, 1, 8, 0, 0, tzinfo=UTC)
    secs = int((when - datetime(1904, 1, 1, tzinfo=UTC)).total_seconds())
    if version == 1:
        data[at + 8 : at + 16] = struct.pack(">Q", secs)
    else:
        data[at + 8 : at + 12] = struct.pack(">I", secs)
    stamped = tmp_path / "stamped.mp4"
    stamped.write_bytes(bytes(data))
    assert creation_time(stamped) == "2024-05-01T08:00:00+00:00"
    data[at + 8 : at + 12] = b"\0\0\0\0"  # zero: the writer knew no time
    if version == 0:
        stamped.write_bytes(bytes(data))
        assert creation_time(stamped) is None
    assert creation_time(tmp_path / "missing.mp4") is None
    (tmp_path / "junk.mp4").write_bytes(b"\0\0\0\x08junk" * 3)
    assert creation_time(tmp_path / "junk.mp4") is None


def test_index_time_options_fail_before_any_work(tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from csip_reid.cli import main

    for i in range(2):
        _mp4(tmp_path / f"v{i}.mp4")
    cases = [(["--start-time", "2024-05-01T08:00:00"], "names the start of one video; 2 were given"),
             (["--time-from-name", "cam_%H%M"], "no year")]
    for extra, message in cases:
        r = CliRunner().invoke(main, ["index", str(tmp_path / "v0.mp4"), str(tmp_path / "v1.mp4"), "--gallery",
                                      str(tmp_path / "g"), *extra])
        assert r.exit_code == 2 and message in r.output, r.output
    r = CliRunner().invoke(main, ["index", str(tmp_path / "v0.mp4"), "--gallery", str(tmp_path / "g"),
                                  "--start-time", "noon"])
    assert r.exit_code == 2 and "not an ISO 8601 time" in r.output
    assert not (tmp_path / "g").exists()
