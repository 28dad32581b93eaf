"""Wall-clock start times of videos: parsing, file-name patterns and the container's creation time.

Times are stored as ISO 8601 text in UTC (``2024-05-01T08:00:00+00:00``). A time without a zone is
taken as UTC (CCTV recorders rarely say; give ``+02:00`` when you know better).

The start time of a video comes, in this order, from ``reid index --start-time``, from
``--time-from-name PATTERN`` (strftime fields matched against the file stem), or from the
container's ``creation_time`` tag: read with ``ffprobe`` when it is installed, else PyAV when it is
importable, else straight from the ``mvhd`` box of an MP4/MOV file. A zero or missing tag means
unknown.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from csip_reid.core.errors import ConfigError

_MP4_EPOCH = datetime(1904, 1, 1, tzinfo=UTC)
#: strftime field -> regular expression of what it matches in a file name
_FIELDS = {"Y": r"\d{4}", "m": r"\d{2}", "d": r"\d{2}", "H": r"\d{2}", "M": r"\d{2}", "S": r"\d{2}",
           "y": r"\d{2}", "j": r"\d{3}", "f": r"\d{1,6}", "b": r"[A-Za-z]{3}", "z": r"[+-]\d{4}", "%": "%"}


def to_iso(t: datetime) -> str:
    """A datetime as ISO 8601 UTC text (naive = UTC; milliseconds only when there are any)."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    t = t.astimezone(UTC)
    return t.isoformat(timespec="milliseconds" if t.microsecond else "seconds")


def now_iso() -> str:
    """The current time as ISO 8601 UTC text, to the second (the one clock of galleries and reports)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def offset_time(start_time: str | None, offset_s: float) -> str | None:
    """``start_time`` (ISO 8601) plus ``offset_s`` seconds as ISO 8601 UTC; None if unknown or unreadable."""
    if not start_time:
        return None
    try:
        t0 = datetime.fromisoformat(start_time)
    except ValueError:
        return None
    if t0.tzinfo is None:
        t0 = t0.replace(tzinfo=UTC)
    return to_iso(t0 + timedelta(seconds=float(offset_s)))


def parse_time(text: str) -> str:
    """ISO 8601 text (``2024-05-01T08:00:00``, ``...Z``, ``...+02:00``, ``2024-05-01 08:00``) → UTC ISO.

    Raises:
        ConfigError: Not an ISO 8601 date and time.
    """
    raw = str(text).strip()
    try:
        t = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise ConfigError(f"{text!r} is not an ISO 8601 time (e.g. 2024-05-01T08:00:00 or "
                          "2024-05-01T08:00:00+02:00)") from None
    return to_iso(t)


def parse_datetime(text: str) -> datetime:
    """:func:`parse_time` as an aware datetime."""
    return datetime.fromisoformat(parse_time(text))


def time_from_name(path: str | Path, pattern: str) -> str | None:
    """The time encoded in a file's stem by a strftime-style ``pattern`` (``cam3_%Y%m%d_%H%M%S``).

    The pattern must match the stem from its start; the rest of the stem may be anything. Returns
    None when the stem does not match.

    Raises:
        ConfigError: The pattern has no date field or an unsupported one.
    """
    parts, fields = [], []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "%" and i + 1 < len(pattern):
            f = pattern[i + 1]
            if f not in _FIELDS:
                raise ConfigError(f"--time-from-name: unsupported field %{f} in {pattern!r} "
                                  f"(use %{' %'.join(k for k in _FIELDS if k != '%')})")
            parts.append(f"({_FIELDS[f]})" if f != "%" else "%")
            if f != "%":
                fields.append(f)
            i += 2
            continue
        parts.append(re.escape(ch))
        i += 1
    if not {"Y", "y"} & set(fields):
        raise ConfigError(f"--time-from-name: pattern {pattern!r} has no year (%Y or %y)")
    m = re.match("".join(parts), Path(path).stem)
    if m is None:
        return None
    fmt = "\x00".join(f"%{f}" for f in fields)
    try:
        return to_iso(datetime.strptime("\x00".join(m.groups()), fmt))
    except ValueError:
        return None


def check_times(num_videos: int, start_time: str | None, pattern: str | None) -> None:
    """Validate ``reid index --start-time`` / ``--time-from-name`` before any work.

    Raises:
        ConfigError: A start time for several videos, a bad ISO time, or a bad pattern.
    """
    if start_time is not None:
        if num_videos != 1:
            raise ConfigError(f"--start-time names the start of one video; {num_videos} were given "
                              "(use --time-from-name or `reid gallery set-time` for several)")
        parse_time(start_time)
    if pattern is not None:
        time_from_name("x", pattern)


def video_start_time(path: str | Path, start_time: str | None = None, pattern: str | None = None,
                     log: Callable[[str], None] | None = None) -> str | None:
    """The wall-clock start of a video, by the rule of ``reid index``.

    ``start_time`` (``--start-time``) wins; else the time ``pattern`` (``--time-from-name``) reads
    from the file name; else the container's ``creation_time``; else None (unknown).

    Args:
        path: The video file.
        start_time: Explicit start, ISO 8601.
        pattern: strftime-style pattern of the start in the file stem.
        log: Told, in one line, when the name does not match ``pattern``.
    """
    if start_time:
        return parse_time(start_time)
    if pattern:
        found = time_from_name(path, pattern)
        if found:
            return found
        if log is not None:
            log(f"{Path(path).name}: name does not match --time-from-name {pattern!r}; "
                "trying the container's creation time")
    return creation_time(path)


def creation_time(path: str | Path) -> str | None:
    """The container's ``creation_time`` as UTC ISO text, or None when absent or unreadable."""
    path = Path(path)
    for reader in (_ffprobe_time, _pyav_time, _mvhd_time):
        try:
            t = reader(path)
        except Exception:  # noqa: BLE001 - any failure of one reader means: try the next one
            t = None
        if t:
            return t
    return None


def _ffprobe_time(path: Path) -> str | None:
    exe = shutil.which("ffprobe")
    if exe is None:
        return None
    out = subprocess.run([exe, "-v", "error", "-show_entries", "format_tags=creation_time", "-of", "json",
                          str(path)], capture_output=True, text=True, timeout=30, check=False)
    tag = (json.loads(out.stdout or "{}").get("format", {}).get("tags", {}) or {}).get("creation_time")
    return _valid(parse_time(tag)) if tag else None


def _pyav_time(path: Path) -> str | None:
    try:
        import av  # type: ignore[import-not-found]
    except ImportError:
        return None
    with av.open(str(path)) as c:
        tag = c.metadata.get("creation_time")
    return _valid(parse_time(tag)) if tag else None


def _mvhd_time(path: Path) -> str | None:
    """``creation_time`` of the ``moov/mvhd`` box of an MP4/MOV file (seconds since 1904)."""
    with open(path, "rb") as f:
        end = path.stat().st_size
        box = _find_box(f, 0, end, b"moov")
        if box is None:
            return None
        mvhd = _find_box(f, box[0], box[1], b"mvhd")
        if mvhd is None:
            return None
        f.seek(mvhd[0])
        version = f.read(4)[0]
        raw = f.read(8 if version == 1 else 4)
        secs = struct.unpack(">Q" if version == 1 else ">I", raw)[0]
    return _valid(to_iso(_MP4_EPOCH + timedelta(seconds=secs))) if secs else None


def _find_box(f, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    """``(payload start, payload end)`` of the first box of ``kind`` between ``start`` and ``end``."""
    pos = start
    while pos + 8 <= end:
        f.seek(pos)
        head = f.read(8)
        if len(head) < 8:
            return None
        size, name = struct.unpack(">I4s", head)
        header = 8
        if size == 1:
            size = struct.unpack(">Q", f.read(8))[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header:
            return None
        if name == kind:
            return pos + header, pos + size
        pos += size
    return None


def _valid(iso: str | None) -> str | None:
    """Drop the placeholder times encoders write when they know none (before 1971)."""
    if iso is None or datetime.fromisoformat(iso).year < 1971:
        return None
    return iso
