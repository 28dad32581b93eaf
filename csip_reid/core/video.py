"""Video input: a frame reader that survives damaged files, content hashes and file discovery.

:class:`VideoReader` reads a video with OpenCV and yields ``(frame_index, timestamp_s, frame_bgr)``.
Frame indices count decoded positions from the start of the file (0-based); timestamps are
``frame_index / fps`` with the container's frame rate. Frames that fail to decode in the middle of
a file are counted in :attr:`VideoReader.failed_frames` and skipped; reading goes on. FFmpeg's own
log is silenced (a truncated MP4 makes it print hundreds of ``partial file`` lines); instead each
damaged video gets one line, :meth:`VideoReader.damage_report`: frames decoded, frames that failed,
frames the header promised.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

# FFmpeg's log level is read once, when OpenCV's FFmpeg back-end first opens a file: set it before.
# -8 = AV_LOG_QUIET; a user who wants FFmpeg's messages sets OPENCV_FFMPEG_LOGLEVEL themselves.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from csip_reid.core.errors import VideoError
from csip_reid.core.prefetch import Demand, prefetched
from csip_reid.core.pyav import KeyframeControl, raw_stream_fps

logger = logging.getLogger(__name__)

#: Raw H.264/H.265 elementary streams, as CCTV recorders export them.
RAW_SUFFIXES = (".264", ".h264", ".265", ".h265", ".hevc")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".ts", ".webm", ".wmv", ".flv",
                    *RAW_SUFFIXES)

#: Frame rate assumed when the container reports none (0, NaN or absurd values).
DEFAULT_FPS = 25.0

#: Reading stops after this many consecutive frames fail to decode (end of a truncated stream).
MAX_CONSECUTIVE_FAILURES = 32

Frame = tuple[int, float, np.ndarray]


class VideoReader:
    """Iterate over the frames of a video file.

    Args:
        path: Video file.
        stride: Yield every ``stride``-th frame (counted from ``start``); the frames in between are
            grabbed without being converted, which is cheaper than reading them.
        start: First frame index to yield.
        end: Frame index to stop before (exclusive); ``None`` reads to the end.
        prefetch: If > 0, decode in a background thread into a queue of at most this many frames.
            Exceptions raised while decoding are re-raised in the consuming thread. With
            ``select`` the thread runs in lockstep with the consumer instead (see ``select``).
        decoder: ``opencv`` (default), ``pyav`` (:mod:`csip_reid.core.pyav`), ``nvdec`` (the GPU's
            decoder, :mod:`csip_reid.core.nvdec`) or ``auto`` (``nvdec`` on a CUDA ``device`` when
            PyNvVideoCodec is installed).
        device: The device the frames are for (``auto`` decodes on it when it is a GPU).
        select: Optional ``select(frame_index) -> bool``, asked for each frame the stride keeps once
            it is decoded (grabbed): False leaves it unconverted (it costs only its decode) and does
            not yield it. Called in the decoding thread, in frame order (adaptive scanning). With
            ``prefetch`` it is only called while the consumer waits for its next frame, i.e. after
            the consumer has finished with every frame yielded before; so ``select`` may depend on
            what the consumer made of those frames, and the answers do not depend on timing. The
            thread still decodes (grabs) the next frame while the consumer works on the last one.
        keyframes: Optional :class:`KeyframeControl` (``pyav`` decoder, with ``select`` and
            ``prefetch``): while it says the scan is idle, only keyframes are decoded, and a keyframe
            that it says shows a change makes the reader go back to the keyframe before and decode
            every frame since the last one it handled. Keyframes further apart than
            ``max_keyframe_gap_s`` turn this off for the rest of the file (a person could enter and
            leave unseen between them).
        max_keyframe_gap_s: See ``keyframes``.
        seek: Jump to ``start`` instead of decoding every frame before it (a resumed video): OpenCV
            and PyAV seek to the keyframe before it and decode from there, which gives the same
            pixels as reading from the first frame. Streams without frame times (raw ``.264``) and
            NVDEC are still decoded from their first frame.
        skip_off: Keyframe skipping is off for this file from the start, for this reason (a resumed
            video whose earlier part turned it off).
        probe: A reader of the same file: its frame rate, frame count and size are taken instead of
            opening the file to read them (the next segment of a video).

    Attributes:
        fps: Container frame rate, or :data:`DEFAULT_FPS` when it reports none.
        fps_assumed: True when :attr:`fps` is the fallback, not the container's value.
        frame_count: Number of frames the container claims (0 when unknown; may be inaccurate).
        width: Frame width in pixels.
        height: Frame height in pixels.
        failed_frames: Frames that failed to decode and were skipped during the last iteration.
        frames_read: Frames decoded successfully during the last iteration (yielded or skipped
            by the stride).
        frames_missing: Frames the header promised that the last iteration never decoded at the
            end of the file (a truncated or damaged tail); 0 when the range had an explicit end.

    Raises:
        VideoError: The file is missing, empty, not a video, or has no decodable frame.
    """

    def __init__(
        self,
        path: str | Path,
        stride: int = 1,
        start: int = 0,
        end: int | None = None,
        prefetch: int = 0,
        select: Callable[[int], bool] | None = None,
        decoder: str = "opencv",
        device: str = "cpu",
        keyframes: KeyframeControl | None = None,
        max_keyframe_gap_s: float = 4.0,
        seek: bool = False,
        skip_off: str = "",
        probe: VideoReader | None = None,
    ) -> None:
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid frame range start={start} end={end}")
        self.path = Path(path)
        self.stride = int(stride)
        self.start = int(start)
        self.end = None if end is None else int(end)
        self.prefetch = int(prefetch)
        self.select = select
        self.device = str(device)
        from csip_reid.core.nvdec import resolve_decoder

        #: The decoder iteration uses: ``opencv`` or ``nvdec``.
        self.decoder = resolve_decoder(decoder, self.device)
        self.failed_frames = 0
        self.frames_read = 0
        self.frames_missing = 0
        #: Keyframe skipping (set it before iterating; used with ``pyav``, ``select`` and ``prefetch``).
        self.keyframes = keyframes
        self.max_keyframe_gap_s = float(max_keyframe_gap_s)
        self.seek = bool(seek)
        self.skip_off = str(skip_off)
        #: Keyframe-only decoding in the last iteration: frames decoded while skipping, rewinds, and
        #: why it was turned off ("" while it was allowed).
        self.skip_stats: dict[str, Any] = {}
        self._demand: Demand | None = None

        if probe is not None:  # the same file, opened before: its facts, without opening it again
            self.fps, self.fps_assumed, self.frame_count = probe.fps, probe.fps_assumed, probe.frame_count
            self.width, self.height = probe.width, probe.height
            return
        cap = self._open()
        try:
            ok, first = cap.read()
            if not ok or first is None or first.size == 0:
                raise self._error("no decodable frame")
            raw = self.path.suffix.lower() in RAW_SUFFIXES  # OpenCV says 25 fps for every raw stream
            fps = (raw and raw_stream_fps(self.path)) or cap.get(cv2.CAP_PROP_FPS)
            self.fps_assumed = not (math.isfinite(fps) and 0 < fps <= 1000)
            self.fps = DEFAULT_FPS if self.fps_assumed else float(fps)
            if self.fps_assumed:
                logger.warning("%s reports no frame rate; assuming %.0f fps", self.path, DEFAULT_FPS)
            count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
            self.frame_count = int(count) if math.isfinite(count) and count > 0 else 0
            self.height, self.width = first.shape[:2]
        finally:
            cap.release()

    def _error(self, why: str) -> VideoError:
        return VideoError(f"cannot open video {self.path}: {why}")

    def _open(self) -> cv2.VideoCapture:
        if not self.path.exists():
            raise self._error("no such file")
        if not self.path.is_file():
            raise self._error("not a file")
        if self.path.stat().st_size == 0:
            raise self._error("file is empty")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise self._error("not a video OpenCV can decode")
        return cap

    @property
    def duration_s(self) -> float:
        """Duration claimed by the container, in seconds (0 when unknown)."""
        return self.frame_count / self.fps

    @property
    def expected_frames(self) -> int | None:
        """How many frames iteration should yield, from the container's claim (None if unknown)."""
        stop = self.frame_count if self.end is None else min(self.end, self.frame_count or self.end)
        if not stop:
            return None
        return max(0, math.ceil((stop - self.start) / self.stride))

    def set_span(self, start_s: float | None, end_s: float | None) -> None:
        """Iterate over ``[start_s, end_s)`` only, in seconds of this video's frame rate (None: its start or end).

        Raises:
            VideoError: The span holds no frame.
        """
        start = int(round((start_s or 0.0) * self.fps))
        end = None if end_s is None else int(round(end_s * self.fps))
        if start < 0 or (end is not None and end <= start):
            raise VideoError(f"the span {start_s}-{end_s} s holds no frame of {self.path}")
        self.start, self.end = start, end

    def damage_report(self) -> str | None:
        """One line on a damaged file after an iteration (None when every promised frame decoded).

        Example: ``decoded 341 of the 682 frames the header promises (341 missing at the end, 0 failed
        mid-file): the file looks truncated or damaged``.
        """
        if not self.failed_frames and not self.frames_missing:
            return None
        promised = self.expected_frames
        of = f" of the {promised} frames the header promises" if promised else ""
        return (f"decoded {self.frames_read}{of} ({self.frames_missing} missing at the end, "
                f"{self.failed_frames} failed mid-file): the file looks truncated or damaged")

    def __iter__(self) -> Iterator[Frame]:
        self._demand = None
        if self.prefetch > 0 and self.select is not None:
            self._demand = Demand()
            return prefetched(self._frames(), 1, demand=self._demand)
        if self.prefetch > 0:
            return prefetched(self._frames(), self.prefetch)
        return self._frames()

    def _capture(self) -> Any:
        """The decoder for one iteration (NVDEC, or OpenCV when NVDEC cannot open this file)."""
        if self.decoder == "pyav":
            from csip_reid.core.pyav import PyAVCapture

            return PyAVCapture(self.path)
        if self.decoder == "nvdec":
            from csip_reid.core.nvdec import NvdecCapture

            try:
                return NvdecCapture(self.path, self.device)
            except VideoError as e:
                logger.warning("%s; decoding %s with OpenCV", e, self.path.name)
                self.decoder = "opencv"
        return self._open()

    def _seek(self, cap: Any) -> tuple[Any, int]:
        """Position ``cap`` just before :attr:`start`; returns it and the index of the frame before the next."""
        if hasattr(cap, "seek_to"):  # PyAV: by presentation time (positions stay exact)
            cap.seek_to(self.start)
            return cap, -1
        if self.decoder == "opencv" and self.frame_count and self.start < self.frame_count:
            if cap.set(cv2.CAP_PROP_POS_FRAMES, self.start) and round(cap.get(cv2.CAP_PROP_POS_FRAMES)) == self.start:
                return cap, self.start - 1
            cap.release()  # the container would not seek there: read it from the first frame
            cap = self._open()
        return cap, -1

    def _frames(self) -> Iterator[Frame]:
        self.failed_frames = 0
        self.frames_read = 0
        self.frames_missing = 0
        self.skip_stats = {}
        cap = self._capture()
        positioned = hasattr(cap, "position")  # PyAV numbers frames itself (it can skip and seek)
        skipper = None
        if self.keyframes is not None and self.decoder == "pyav" and self._demand is not None:
            from csip_reid.core.pyav import KeyframeSkipper

            skipper = KeyframeSkipper(cap, self.keyframes, self.max_keyframe_gap_s * self.fps, self.skip_off)
        pending_failures = 0  # failures only count once a later frame decodes (else: end of stream)
        cap, index = self._seek(cap) if self.seek and self.start > 0 else (cap, -1)
        last_ok = self.start - 1
        try:
            while True:
                if not positioned and self.end is not None and index + 1 >= self.end:
                    break
                ok = cap.grab()
                if positioned and not ok:
                    break  # PyAV skips what it cannot decode and counts it; False is the end
                index = cap.position if positioned else index + 1
                if self.end is not None and index >= self.end:
                    break
                wanted = ok and index >= self.start and (index - self.start) % self.stride == 0
                frame = None
                if ok and self.select is not None and (wanted or skipper is not None):
                    if self._demand is not None and not self._demand.wait():
                        return  # the consumer stopped: the rest was not asked for (none of it is missing)
                    if skipper is not None and skipper.after_grab(index, last_ok):
                        continue  # went back to an earlier keyframe: what follows is decoded again
                    wanted = wanted and bool(self.select(index))  # asked only for frames that decoded
                if ok and wanted:
                    ok, frame = cap.retrieve()
                    ok = ok and frame is not None and frame.size > 0
                if not ok:
                    pending_failures += 1
                    past_claim = self.frame_count and index >= self.frame_count
                    if past_claim or pending_failures >= MAX_CONSECUTIVE_FAILURES:
                        break
                    continue
                if pending_failures:
                    self.failed_frames += pending_failures
                    logger.debug("%s: %d frame(s) before frame %d failed to decode", self.path, pending_failures, index)
                    pending_failures = 0
                self.frames_read += 1
                last_ok = index
                if wanted:
                    if self._demand is not None:
                        self._demand.spend()
                    yield index, index / self.fps, frame
            self.failed_frames += int(getattr(cap, "failed", 0))
            if self.end is None and self.frame_count:
                if positioned:  # PyAV: what it read but skipped (keyframes only) or failed is not missing
                    last_ok = max(last_ok, cap.demuxed_to)
                self.frames_missing = max(0, math.ceil((self.frame_count - 1 - last_ok) / self.stride))
            report = self.damage_report()
            if report:  # callers (the indexer) report it, once per video
                logger.debug("%s: %s", self.path, report)
        finally:  # also when the consumer stopped early (the end of a segment)
            if skipper is not None:
                self.skip_stats = skipper.stats()
            cap.release()


def video_content_hash(path: str | Path, block: int = 4 << 20) -> str:
    """Fast content hash of a video: SHA-256 of its size and three 4 MiB blocks.

    The blocks are the first, the middle and the last ``block`` bytes (the whole file when it is
    smaller than three blocks). Editing any byte of a small file, or changing a large file's length,
    head, middle or tail, changes the hash; it stays fast on multi-gigabyte recordings. Used to skip
    videos that are already indexed.

    Returns:
        64 hex digits.
    """
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.sha256(size.to_bytes(8, "little"))
    with open(path, "rb") as f:
        if size <= 3 * block:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        else:
            for offset in (0, (size - block) // 2, size - block):
                f.seek(offset)
                h.update(f.read(block))
    return h.hexdigest()


def iter_video_files(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """Expand files and folders into a sorted, de-duplicated list of video files.

    Folders are searched recursively for files with a :data:`VIDEO_EXTENSIONS` suffix (any case;
    hidden files such as ``._clip.mp4`` are skipped). A file named explicitly is kept whatever its
    extension.

    Raises:
        VideoError: A path does not exist.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    found: dict[Path, None] = {}
    for p in map(Path, paths):
        if p.is_file():
            found[p.resolve()] = None
        elif p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                for name in files:
                    if not name.startswith(".") and name.lower().endswith(VIDEO_EXTENSIONS):
                        found[(Path(root) / name).resolve()] = None
        else:
            raise VideoError(f"cannot open video {p}: no such file or folder")
    return sorted(found)


def cut_clip(src: str | Path, dst: str | Path, start: int, end: int) -> Path:
    """Copy frames ``[start, end)`` of ``src`` into a new MP4 ``dst`` (same size and frame rate).

    Useful to make a query clip out of a long recording. Frames that fail to decode are skipped.

    Raises:
        VideoError: ``src`` cannot be opened, or no frame of the range could be written.
    """
    reader = VideoReader(src, start=start, end=end)
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    out = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), reader.fps, (reader.width, reader.height))
    written = 0
    try:
        for _, _, frame in reader:
            out.write(frame)
            written += 1
    finally:
        out.release()
    if not written:
        raise VideoError(f"no frame of {src} in range {start}-{end}")
    return dst
