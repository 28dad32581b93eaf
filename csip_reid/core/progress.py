"""Progress bars in video time, with an ETA, for hours-long recordings.

:class:`VideoProgress` is a thin :class:`tqdm.tqdm` whose position is a frame index and whose text
is in video time, as someone indexing a day of CCTV wants to read it::

    cam03.mp4:  37%|███▋      | 8:52:10/24:00:00 video [41:02<1:09:51, 13.0x real time]

video time done / total (``H:MM:SS``), wall time elapsed < left, and the speed as a multiple of real
time. A resumed video starts its bar at its resume point, and its speed and ETA count this run only.

The total is the container's frame count when it has a usable one. Where it has none (a raw
``.264``/``.h265`` elementary stream, some ``.ts`` and ``.avi`` files) or its count is overtaken by
the frames actually read, :func:`estimate_frame_count` looks for one: the stream's header (frame
count or duration, read at once), else a demux-only count of the stream's packets (no decoding; in a
background thread for a file over :data:`SYNC_COUNT_BYTES`, the bar showing video time and speed
without a total until it arrives). When nothing gives a count, the bar stays open-ended; a wrong
count never stops indexing.

:class:`ArchiveProgress` is the bar over the files of one run (``videos: 3/24 files, 2:50:00/24:00:00
video [...]``), its total the files' durations read in a background thread.
"""

from __future__ import annotations

import logging
import math
import threading
from pathlib import Path
from typing import Any

from tqdm import tqdm

logger = logging.getLogger(__name__)

#: Files up to this size have their packets counted at once (~0.1 s), larger ones in a background thread.
SYNC_COUNT_BYTES = 64 << 20

#: Frame rate used where the caller's is not a positive number (:data:`~csip_reid.core.video.DEFAULT_FPS`).
FALLBACK_FPS = 25.0

_KNOWN = ("{desc}{percentage:3.0f}%|{bar}| {files}{video_n}/{video_total} video "
          "[{elapsed}<{remaining}, {speed}{postfix}]")
_OPEN = "{desc}{files}{video_n}/? video [{elapsed}, {speed}{postfix}]"


def format_video_time(seconds: float) -> str:
    """``H:MM:SS`` of a video position (``8:52:10``; ``0:00:07`` for a short clip; hours past 24 go on)."""
    s = max(0, int(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _open_video_stream(path: str | Path) -> tuple[Any, Any] | None:
    """``(container, first video stream)`` opened with PyAV, or None (no PyAV, no video, unreadable)."""
    try:
        import av
    except ImportError:
        return None
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as e:
        logger.debug("cannot open %s with PyAV: %s", path, e)
        return None
    if not container.streams.video:
        container.close()
        return None
    return container, container.streams.video[0]


def _probe(path: str | Path) -> tuple[int, float | None, float] | None:
    """What the header of ``path`` says, read at once: frames claimed (0: none), seconds (None: none) and
    the stream's frame rate (0.0: none); None where PyAV cannot read it."""
    opened = _open_video_stream(path)
    if opened is None:
        return None
    container, stream = opened
    try:
        if stream.duration and stream.time_base:  # the stream's duration, else the container's
            seconds: float | None = float(stream.duration * stream.time_base)
        else:
            seconds = container.duration / 1_000_000 if container.duration else None  # AV_TIME_BASE
        rate = float(stream.guessed_rate or stream.average_rate or 0)
        ok = seconds is not None and math.isfinite(seconds) and seconds > 0
        return max(0, int(stream.frames or 0)), seconds if ok else None, rate
    finally:
        container.close()


def header_frame_count(path: str | Path, fps: float) -> int | None:
    """Frames the header of ``path`` gives, cheaply: the stream's frame count, else duration x frame rate.

    The duration is the stream's own, else the container's; it is turned into frames with the
    stream's frame rate (``fps`` where it has none). A raw elementary stream has neither.

    Args:
        path: Video file.
        fps: Frame rate to use where the stream reports none.

    Returns:
        A positive frame count, or None where the header gives none (or PyAV cannot read the file).
    """
    probe = _probe(path)
    if probe is None:
        return None
    frames, seconds, rate = probe
    count = frames or (round(seconds * (rate or fps)) if seconds else 0)
    return count if count > 0 else None


def video_duration_s(path: str | Path, stop: threading.Event | None = None) -> float | None:
    """Seconds of video in ``path``: its header's duration, else its packets over its frame rate.

    Args:
        path: Video file.
        stop: Passed to :func:`count_packets`.

    Returns:
        The duration, or None where PyAV cannot read the file (or ``stop`` was set).
    """
    probe = _probe(path)
    if probe is None:
        return None
    _, seconds, rate = probe
    if seconds:
        return seconds
    counted = count_packets(path, stop)
    return counted / (rate or FALLBACK_FPS) if counted else None


def count_packets(path: str | Path, stop: threading.Event | None = None) -> int | None:
    """Frames of the first video stream, counted as its packets by demuxing only (nothing is decoded).

    One packet is one frame for the codecs of CCTV recordings (H.264, H.265, MPEG-4, MJPEG), also in a
    raw elementary stream, whose parser splits it into frames. The cost is reading the file once:
    see ``bench/README.md`` ("Progress bars") for the figures.

    Args:
        path: Video file.
        stop: Counting gives up (returns None) soon after this event is set.

    Returns:
        The packet count, or None where PyAV cannot read the file, it has no packet, or ``stop`` was set.
    """
    opened = _open_video_stream(path)
    if opened is None:
        return None
    container, stream = opened
    import av

    count = 0
    try:
        for packet in container.demux(stream):
            if packet.size:  # the flushing packet at the end is empty
                count += 1
            if stop is not None and count % 256 == 0 and stop.is_set():
                return None
    except (av.error.FFmpegError, OSError) as e:  # a damaged tail: what was read still counts
        logger.debug("demuxing %s stopped after %d packets: %s", path, count, e)
    finally:
        container.close()
    return count or None


def estimate_frame_count(path: str | Path, fps: float, stop: threading.Event | None = None) -> int | None:
    """Frames of a video whose container gives no usable count: its header, else its packets.

    Args:
        path: Video file.
        fps: The video's frame rate (used where the stream reports none).
        stop: Passed to :func:`count_packets`.

    Returns:
        The estimate, or None when neither gives one.
    """
    return header_frame_count(path, fps) or count_packets(path, stop)


class _VideoTimeBar(tqdm):
    """A tqdm bar whose position counts ``fps`` units per second of video, shown as video time.

    Speed and ETA come from the whole run (``smoothing=0``; bench/README.md, "Progress bars"), and
    it redraws by time only (``miniters=1``: tqdm's dynamic ``miniters`` would grow with every jump).
    ``stop`` is set on :meth:`close`, for the work a subclass does in the background.
    """

    fps = 1.0

    def __init__(self, *args: Any, stop: threading.Event | None = None, **kwargs: Any) -> None:
        self._stop = stop if stop is not None else threading.Event()
        kwargs.setdefault("smoothing", 0)
        kwargs.setdefault("miniters", 1)
        super().__init__(*args, **kwargs)

    def close(self) -> None:
        """Close the bar and stop what it does in the background."""
        self._stop.set()
        super().close()

    def _background(self, target: Any, name: str) -> None:
        self._thread = threading.Thread(target=target, name=name, daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the work in the background, if any (for tests: the bar itself never waits)."""
        if getattr(self, "_thread", None) is not None:
            self._thread.join(timeout)

    def files_text(self) -> str:
        """Text before the video time (``3/24 files, ``), empty for one video."""
        return ""

    @property
    def format_dict(self) -> dict[str, Any]:
        """tqdm's fields and ``files``, ``video_n``, ``video_total``, ``speed``, formatted for the total."""
        d = super().format_dict
        if not hasattr(self, "unit"):  # disabled from the start (a closed bar still draws its last line)
            return d
        elapsed = d["elapsed"]
        rate = d["rate"] or ((self.n - self.initial) / elapsed if elapsed else None)
        fmt = _KNOWN if self.total else _OPEN
        d.update(rate=rate, bar_format=fmt if self.desc else fmt.replace("{desc}", ""),
                 files=self.files_text(), video_n=format_video_time(self.n / self.fps),
                 video_total=format_video_time(self.total / self.fps) if self.total else "?",
                 speed=_speed(rate, self.fps))
        if self.desc:
            d["prefix"] = f"{self.desc}: "
        return d


class VideoProgress(_VideoTimeBar):
    """A tqdm bar over one video's frame positions, shown in video time with an ETA.

    Args:
        path: The video file (read only when its total has to be estimated).
        fps: The frame rate the positions are counted in (the reader's).
        frame_count: Frames the container claims (0 = unknown).
        initial: Frame position the run starts at (a resumed video): the bar starts there and its
            speed and ETA count only what this run does.
        end: Frame position the run stops before (a span of the video), the total when given.
        desc: Text before the bar (default: the file name).
        disable: No bar at all (nothing is estimated either).
        estimate: Look for a total where ``frame_count`` is unusable (:func:`estimate_frame_count`;
            a file over :data:`SYNC_COUNT_BYTES` has its packets counted in a background thread).
        **kwargs: More :class:`tqdm.tqdm` options (``file``, ``leave``, ``mininterval``, ...).
    """

    def __init__(self, path: str | Path, fps: float, frame_count: int = 0, *, initial: int = 0,
                 end: int | None = None, desc: str | None = None, disable: bool = False,
                 estimate: bool = True, **kwargs: Any) -> None:
        self.path = Path(path)
        self.fps = float(fps) if fps and math.isfinite(fps) and fps > 0 else FALLBACK_FPS
        self.estimate = estimate and not disable
        self._stop = stop = threading.Event()  # the base class keeps it
        self._counted: int | None = None  # the packet count (made at most once), once made
        self._counting = False  # whether it was started
        claimed = frame_count if frame_count > initial else None
        total = min(end, claimed or end) if end is not None else claimed
        self._from_header = total == claimed  # a total that may be wrong (overtaken), unlike a span's end
        if total is None and self.estimate:
            total = self._estimate(initial)
        kwargs.setdefault("leave", False)
        super().__init__(total=total, initial=initial, desc=desc if desc is not None else self.path.name,
                         unit="frame", disable=disable, stop=stop, **kwargs)

    def _estimate(self, initial: int) -> int | None:
        """A total past ``initial``: the header's, or a small file's packets (a large one's come later)."""
        header = header_frame_count(self.path, self.fps)
        if header and header > initial:
            return header
        self._start_count()
        return self._counted if self._counted and self._counted > initial else None

    def _start_count(self) -> None:
        """Count the packets once: at once for a small file, else in a background thread."""
        if self._counting or not self.estimate:
            return
        self._counting = True
        try:
            small = self.path.stat().st_size <= SYNC_COUNT_BYTES
        except OSError:
            small = True
        if small:
            self._count()
        else:
            self._background(self._count, f"count {self.path.name}")

    def _count(self) -> None:
        try:
            self._counted = count_packets(self.path, self._stop)
        except Exception as e:  # noqa: BLE001 - a count is a nicety: never let it fail a run
            logger.debug("counting the frames of %s failed: %s", self.path, e)

    def update_to(self, position: int) -> None:
        """Advance to frame ``position`` (frames done from the start of the video; jumps are fine).

        A position past the total shows that the total was wrong: the bar goes on without one (no
        ETA) until the packet count gives a larger total.
        """
        if self.disable:
            return
        if self.total is not None and position > self.total:
            if self._from_header:
                logger.debug("%s: position %d is past the claimed %d frames", self.path, position, self.total)
                self._start_count()
            self.total = None
        if self.total is None and self._counted is not None and self._counted >= max(self.n, position):
            self.total = self._counted
        if position > self.n:
            self.update(position - self.n)



def _speed(rate: float | None, fps: float) -> str:
    """Frames per second as a multiple of real time (``13.0x real time``; ``?`` before any)."""
    if not rate:
        return "?x real time"
    x = rate / fps
    return f"{x:.1f}x real time" if x >= 1 else f"{x:.2f}x real time"


class ArchiveProgress(_VideoTimeBar):
    """The bar over the files of one run, in video time: files done, video time done / total, ETA.

    Each file's duration (:func:`video_duration_s`) is read in a background thread, so the first
    video starts at once; until every duration is known the bar has no total. A file skipped (already
    indexed) counts as done but not in the speed, as the resumed part of a :class:`VideoProgress`.

    Args:
        files: The video files of the run.
        desc: Text before the bar.
        disable: No bar at all (no file is read either).
        **kwargs: More :class:`tqdm.tqdm` options.
    """

    def __init__(self, files: list[Path], *, desc: str = "videos", disable: bool = False,
                 **kwargs: Any) -> None:
        self.files = [Path(f) for f in files]
        self.done = 0
        self.durations: dict[Path, float | None] = {}  # written by the thread, read under the lock
        self._average = 0.0  # of the durations known
        self._lock = threading.Lock()
        super().__init__(total=None, desc=desc, unit="s", disable=disable, **kwargs)
        if not disable:
            self._background(self._read_durations, "video durations")

    def _read_durations(self) -> None:
        for f in self.files:
            if self._stop.is_set():
                return
            self._read(f)
        self._known()
        if not self.disable:  # show the total now, not after the first file (tqdm's lock orders the writes)
            self.refresh()

    def _read(self, path: Path) -> None:
        try:
            seconds = video_duration_s(path, self._stop)
        except Exception as e:  # noqa: BLE001 - a duration is a nicety: never let it fail a run
            logger.debug("no duration for %s: %s", path, e)
            seconds = None
        with self._lock:
            self.durations.setdefault(path, seconds)

    def files_text(self) -> str:
        """``3/24 files, ``."""
        return f"{self.done}/{len(self.files)} files, "

    def _known(self) -> dict[Path, float | None]:
        """The durations read so far; the total once all are (a file without one counts as the average)."""
        with self._lock:
            durations = dict(self.durations)
        known = [d for d in durations.values() if d]
        self._average = sum(known) / len(known) if known else 0.0
        if self.total is None and len(durations) >= len(self.files) and known:
            self.total = self._average * len(self.files)
        return durations

    def finished(self, path: str | Path, skipped: bool = False) -> None:
        """One file is done (``skipped``: nothing was done, it was indexed before)."""
        if self.disable:
            return
        path = Path(path)
        self.done += 1
        if path not in self.durations:  # not read yet: read it now (the thread is usually far ahead)
            self._read(path)
        seconds = self._known().get(path) or self._average
        if skipped:
            self.initial += seconds
        self.update(seconds)
