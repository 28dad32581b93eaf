"""PyAV (FFmpeg) decoding behind the small part of ``cv2.VideoCapture`` that :class:`VideoReader` uses.

Two things make it the decoder for long archive files:

* **Threads.** FFmpeg decodes with frame and slice threads (``thread_type="AUTO"``), about twice
  OpenCV's rate on this project's 2-core machines, and a frame that is only *grabbed* is never
  converted to BGR pixels.
* **Keyframes only.** With :attr:`PyAVCapture.sparse` set, the decoder skips every frame that is not
  a keyframe (``skip_frame="NONKEY"``): a quiet hour of 1080p costs the decode of its keyframes
  (one every 1-4 s in CCTV recordings). :meth:`PyAVCapture.rewind` seeks back to the keyframe before
  the last one and decodes every frame after what was already delivered, so a caller that sees a
  change in a keyframe can look at every frame since the previous keyframe, in order.
* **Motion between keyframes, from packet sizes.** The frames skipped are still demuxed: a
  predicted frame's packet is small while nothing moves (the encoder repeats the last picture) and
  grows when something does. A packet far larger than the quiet ones before it
  (:data:`BURST_RATIO` times their median, and more so the larger the frame) marks its position
  (:meth:`PyAVCapture.moved_before`), so someone who comes and goes between two keyframes, whom
  neither keyframe shows, still makes the reader go back and decode that stretch.

Frame positions come from presentation times (``round((pts - start) * time_base * fps)``), so they
stay right across skipped frames and seeks; a stream without times (a raw ``.264`` elementary
stream) is numbered by counting and cannot skip (``can_skip`` is False). A packet that fails to
decode is counted in :attr:`PyAVCapture.failed` and reading goes on.
"""

from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from csip_reid.core.errors import VideoError

logger = logging.getLogger(__name__)

#: The decoders :class:`~csip_reid.core.video.VideoReader` knows besides ``nvdec``.
PYAV = "pyav"
#: A skipped predicted frame whose packet is this many times the median of the quiet ones before it,
#: and larger by :data:`BURST_BYTES_PER_PIXEL` times the frame's pixels (1,500 bytes at 1080p; at
#: least 64), counts as motion between keyframes.
BURST_RATIO = 4.0
BURST_BYTES_PER_PIXEL = 1500 / (1920 * 1080)
#: Quiet packets the median is taken over (and the fewest it needs).
QUIET_PACKETS, QUIET_MIN = 64, 8


#: Raw elementary streams (no container): FFmpeg's average rate for them is its 25 fps default.
RAW_FORMATS = frozenset({"h264", "hevc"})


def stream_rate(container: Any, stream: Any) -> Any:
    """A video stream's frame rate: the average rate, or for a raw elementary stream the rate FFmpeg
    guesses from the stream's own timing (its average is a 25 fps default there, as is OpenCV's)."""
    if container.format.name in RAW_FORMATS:
        return stream.guessed_rate or stream.average_rate
    return stream.average_rate or stream.guessed_rate


def raw_stream_fps(path: str | Path) -> float | None:
    """The frame rate of a raw ``.264``/``.265`` stream from its own timing (None: not raw, unknown, no PyAV)."""
    try:
        import av
    except ImportError:
        return None
    try:
        with av.open(str(path)) as c:
            if c.format.name not in RAW_FORMATS or not c.streams.video:
                return None
            rate = stream_rate(c, c.streams.video[0])
    except (av.error.FFmpegError, OSError):
        return None
    return float(rate) if rate and 0 < float(rate) <= 1000 else None


def pyav_available() -> bool:
    """True when the ``av`` package (PyAV) imports."""
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


class PyAVCapture:
    """A video opened with PyAV, read frame by frame like ``cv2.VideoCapture``.

    Args:
        path: Video file.
        threads: Decoder threads (0: FFmpeg's choice, one per core).

    Attributes:
        fps: The stream's average frame rate (0.0 when it has none).
        frame_count: Frames the container claims, else duration x fps, else 0.
        position: Frame index of the last grabbed frame (-1 before the first).
        keyframe: Whether the last grabbed frame is a keyframe.
        failed: Packets that failed to decode before a later frame decoded (each skipped); failures
            at the end of the file count as missing frames instead, as OpenCV's reader counts them.
        can_skip: Whether keyframe-only decoding is possible (the stream has presentation times).
        keyframes_decoded: Frames decoded while :attr:`sparse` was on.
        rewinds: Calls of :meth:`rewind`.
        demuxed_to: Position of the latest packet read while skipping to keyframes (-1 before any):
            for telling a tail skipped to keyframes from a missing one.

    Raises:
        VideoError: The file cannot be opened or has no video stream.
    """

    def __init__(self, path: str | Path, threads: int = 0) -> None:
        import av

        self.path = Path(path)
        try:
            self._container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError) as e:
            raise VideoError(f"cannot open video {self.path}: {e}") from e
        if not self._container.streams.video:
            self._container.close()
            raise VideoError(f"cannot open video {self.path}: no video stream")
        self._stream = s = self._container.streams.video[0]
        s.thread_type = "AUTO"
        if threads:
            s.codec_context.thread_count = int(threads)
        rate = stream_rate(self._container, s)
        self.fps = float(rate) if rate else 0.0
        self._tb = float(s.time_base) if s.time_base else 0.0
        self._t0 = int(s.start_time or 0)
        self.frame_count = int(s.frames or 0)
        if not self.frame_count and self.fps:
            seconds = (s.duration * self._tb if s.duration and self._tb
                       else (self._container.duration or 0) / 1e6)
            self.frame_count = max(0, round(seconds * self.fps))
        self.can_skip = bool(self.fps and self._tb)
        self.position = -1
        self.keyframe = False
        self.failed = 0
        self.keyframes_decoded = 0
        self.rewinds = 0
        self.demuxed_to = -1
        self._unconfirmed = 0
        self._sparse = False
        self._pending: deque[Any] = deque()
        self._frame: Any = None
        self._pixels: np.ndarray | None = None
        self._counted = -1  # position by counting, for streams without times
        self._drop_to = -1  # after a rewind: frames up to this position were delivered already
        self._prev_key: tuple[int, int] | None = None  # (pts, position) of the keyframe before the last
        self._last_key: tuple[int, int] | None = None
        self._packets = self._container.demux(s)
        self._quiet: deque[int] = deque(maxlen=QUIET_PACKETS)  # packet sizes of skipped quiet frames
        cc = s.codec_context
        self._burst_bytes = max(64.0, BURST_BYTES_PER_PIXEL * (cc.width or 0) * (cc.height or 0))
        self._bursts: list[int] = []  # positions of skipped frames whose packets say something moved
        #: Skipped frames whose packet said something moved (see :meth:`moved_before`).
        self.bursts = 0

    # -- cv2.VideoCapture's surface ------------------------------------------------------------
    def isOpened(self) -> bool:  # noqa: N802 - cv2's name
        return self._container is not None

    def get(self, prop: int) -> float:
        if prop == cv2.CAP_PROP_FPS:
            return self.fps
        if prop == cv2.CAP_PROP_FRAME_COUNT:
            return float(self.frame_count)
        if prop == cv2.CAP_PROP_FRAME_WIDTH:
            return float(self._stream.codec_context.width)
        if prop == cv2.CAP_PROP_FRAME_HEIGHT:
            return float(self._stream.codec_context.height)
        return 0.0

    def grab(self) -> bool:
        """Decode the next frame (not converted to pixels); False at the end of the stream."""
        while True:
            frame = self._next_decoded()
            if frame is None:
                self._frame = None
                return False
            pos = self._position_of(frame)
            if pos <= self._drop_to or (self._sparse and not frame.key_frame):
                continue  # delivered before a rewind; or decoded before skipping began (threads)
            self._frame, self._pixels = frame, None
            self.position, self.keyframe = pos, bool(frame.key_frame)
            if self._sparse:
                self.keyframes_decoded += 1
            if self.keyframe and frame.pts is not None:
                self._prev_key, self._last_key = self._last_key, (int(frame.pts), pos)
            return True

    def retrieve(self) -> tuple[bool, np.ndarray | None]:
        """BGR pixels of the last grabbed frame."""
        if self._frame is None:
            return False, None
        if self._pixels is None:
            self._pixels = self._frame.to_ndarray(format="bgr24")
        return True, self._pixels

    def read(self) -> tuple[bool, np.ndarray | None]:
        return self.retrieve() if self.grab() else (False, None)

    def release(self) -> None:
        """Close the file: frames, packets and the demuxer go first, then the container."""
        if self._container is not None:
            self._frame = self._pixels = None
            self._pending.clear()
            self._packets.close()
            self._container.close()
            self._container = None

    # -- keyframe-only decoding ------------------------------------------------------------------
    @property
    def sparse(self) -> bool:
        """Keyframes only: the decoder skips every other frame while this is True."""
        return self._sparse

    @sparse.setter
    def sparse(self, on: bool) -> None:
        on = bool(on) and self.can_skip
        if on != self._sparse:
            self._sparse = on
            self._stream.codec_context.skip_frame = "NONKEY" if on else "DEFAULT"

    def keyframe_gap(self) -> int:
        """Frames between the last two keyframes grabbed (0 until two were seen)."""
        if self._prev_key is None or self._last_key is None:
            return 0
        return self._last_key[1] - self._prev_key[1]

    def rewind(self, delivered: int) -> bool:
        """Decode every frame again from the keyframe before the last one, after ``delivered``.

        Turns :attr:`sparse` off, seeks to the keyframe that preceded the last grabbed keyframe and
        drops the frames up to position ``delivered`` (the last one the caller consumed), so the
        next :meth:`grab` returns position ``delivered + 1`` (or the first decodable frame after it).

        Returns:
            False when there is no earlier keyframe to go back to (nothing was skipped).
        """
        self.sparse = False
        if self._prev_key is None:
            return False
        self.rewinds += 1
        self._packets.close()
        self._container.seek(self._prev_key[0], stream=self._stream, backward=True, any_frame=False)
        self._packets = self._container.demux(self._stream)
        self._pending.clear()
        self._bursts.clear()
        self._drop_to = int(delivered)
        self._last_key = self._prev_key
        self._prev_key = None
        return True

    def moved_before(self, position: int) -> bool:
        """Whether a frame skipped before ``position`` had a packet that says something moved (then forgotten)."""
        moved = any(p < position for p in self._bursts)
        self._bursts = [p for p in self._bursts if p >= position]
        return moved

    def _watch(self, packet: Any) -> None:
        """Compare a skipped predicted frame's packet size with the quiet ones before it."""
        if packet.is_keyframe or packet.pts is None or not packet.size:
            return
        if len(self._quiet) >= QUIET_MIN:
            base = float(np.median(self._quiet))
            if packet.size > BURST_RATIO * base and packet.size - base > self._burst_bytes:
                self._bursts.append(round((packet.pts - self._t0) * self._tb * self.fps))
                self.bursts += 1
                return
        self._quiet.append(int(packet.size))

    def seek_to(self, position: int) -> bool:
        """Go to the keyframe at or before frame ``position``; the next :meth:`grab` returns ``position``.

        Returns:
            False for a stream without frame times (nothing moved: frames before ``position`` are
            decoded and the caller drops them).
        """
        if not self.can_skip or position <= 0:
            return False
        pts = self._t0 + round(position / (self.fps * self._tb))
        self._packets.close()
        self._container.seek(pts, stream=self._stream, backward=True, any_frame=False)
        self._packets = self._container.demux(self._stream)
        self._pending.clear()
        self._drop_to = int(position) - 1
        return True

    # -- internals -----------------------------------------------------------------------------
    def _position_of(self, frame: Any) -> int:
        if frame.pts is None or not self.can_skip:
            self._counted += 1
            return self._counted
        return max(0, round((frame.pts - self._t0) * self._tb * self.fps))

    def _next_decoded(self) -> Any:
        import av

        while not self._pending:
            try:
                packet = next(self._packets)
            except StopIteration:
                return None
            except av.error.FFmpegError as e:  # a broken container past this point
                logger.debug("%s: demuxing stopped: %s", self.path, e)
                return None
            try:
                self._pending.extend(packet.decode())
            except av.error.FFmpegError:  # e.g. InvalidDataError on a damaged packet
                self._unconfirmed += 1  # a failure once a later frame decodes; else the end is missing
                continue
            if self._sparse and packet.pts is not None:  # skipped to keyframes: read, not missing
                self.demuxed_to = max(self.demuxed_to, round((packet.pts - self._t0) * self._tb * self.fps))
                self._watch(packet)
        self.failed += self._unconfirmed
        self._unconfirmed = 0
        return self._pending.popleft()


class KeyframeControl(Protocol):
    """What a scan tells the reader about skipping (asked in lockstep, see ``VideoReader``)."""

    def idle(self) -> bool:
        """Nothing is due until something changes: decoding keyframes alone is enough."""

    def opens(self, frame: np.ndarray) -> bool:
        """A keyframe decoded while skipping shows a change worth every frame since the last one."""


class KeyframeSkipper:
    """Turns keyframe-only decoding on and off for one pass over a :class:`PyAVCapture`.

    Args:
        cap: The capture being read.
        control: The scan's answers (:class:`KeyframeControl`).
        max_gap: Keyframes further apart than this many frames turn skipping off for the rest of
            the file (0: no limit).
        off: Why skipping is off from the start ("" : it is allowed).
    """

    def __init__(self, cap: PyAVCapture, control: KeyframeControl, max_gap: float, off: str = "") -> None:
        self.cap, self.control, self.max_gap = cap, control, float(max_gap)
        self.dense_until = -1
        self.off = off or ("" if cap.can_skip else "the stream has no frame times")

    def after_grab(self, index: int, delivered: int) -> bool:
        """Called once the consumer is done with ``delivered``; True when the reader went back.

        Args:
            index: Position of the frame just grabbed.
            delivered: The last position the consumer handled.
        """
        cap = self.cap
        if not cap.sparse:
            if not self.off and index > self.dense_until and self.control.idle():
                cap.sparse = True
            return False
        gap = cap.keyframe_gap()
        if self.max_gap and gap > self.max_gap:
            self.off = f"keyframes {gap} frames apart (limit {self.max_gap:.0f})"
            logger.warning("%s: %s; decoding every frame from here", cap.path.name, self.off)
        elif self.control.idle():
            moved = cap.moved_before(index)  # someone came and went between the two keyframes
            if not moved:
                ok, pixels = cap.retrieve()
                if not (ok and self.control.opens(pixels)):
                    return False
            self.dense_until = index + max(gap, 1)
        return cap.rewind(delivered)

    def stats(self) -> dict[str, Any]:
        """Frames decoded while skipping, rewinds, and why skipping stopped ("" if it did not)."""
        return {"keyframes_decoded": self.cap.keyframes_decoded, "rewinds": self.cap.rewinds,
                "bursts": self.cap.bursts, "skip_off": self.off}
