"""Adaptive scanning: which frames of a video are worth running the detector on.

Archive footage is mostly empty rooms and people walking a few pixels per frame, yet the detector
is the whole cost of indexing. The ``adaptive`` scan (``--scan adaptive``, the default) detects only
the frames that can change the result:

* **Motion gate.** While no track is active, every ``gate_period``-th frame is reduced to a small,
  blurred greyscale copy and compared with a reference (the last detected frame). When more than
  ``gate_min_pixels`` pixels changed by more than ``gate_threshold`` grey levels, the frame is
  detected at once, so nobody who enters is missed. When nothing moves, nothing is detected (apart
  from one *heartbeat* detection every ``heartbeat_s`` seconds, 10 by default, for someone the
  detector missed as they came in and who then stood still). Slow changes (daylight) accumulate against the reference until they trigger one
  detection, which finds nobody and becomes the new reference.
* **Keyframes.** While tracks are active, every ``k``-th frame is detected. ``k`` comes from the
  video's frame rate and how fast the tracked boxes move: the displacement between two keyframes
  stays under ``max_shift`` box widths, so IoU association and linear interpolation stay accurate;
  ``k`` is 1 for fast motion and at most ``max_interval_s`` seconds of video for walkers. A new
  track (or a confident detection no track took yet) gets the very next frame, so the tracker can
  confirm it and measure its speed. After the last track is lost, keyframes go on for the tracker's
  lost-track window (so a track that could come back does) and the gate takes over.
* Frames that are neither gate frames nor keyframes are grabbed without being converted
  (:class:`~csip_reid.core.video.VideoReader` ``select``), so they cost only their decode.

Boxes of the frames between keyframes are interpolated afterwards
(:func:`csip_reid.tracking.interpolate.fill_gaps`); crops are only ever taken from detected frames.
``--scan full`` detects every frame (the behaviour of csip-reid before adaptive scanning).

All decisions depend on frame indices and detector output only (never on timing), so a scan is
deterministic and a query clip goes through exactly the scan its gallery used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from csip_reid.core.detections import Detections
from csip_reid.core.errors import ConfigError

SCANS = ("adaptive", "full")
NEVER = 1 << 62
#: :meth:`ScanPolicy.decide` answers.
SKIP, DETECT, AGE = "skip", "detect", "age"


def check_scan(scan: str) -> str:
    """Validate a ``--scan`` value.

    Raises:
        ConfigError: Not one of :data:`SCANS`.
    """
    if scan not in SCANS:
        raise ConfigError(f"unknown scan {scan!r}; choose one of {', '.join(SCANS)}")
    return scan


@dataclass
class ScanConfig:
    """Knobs of the adaptive scan (defaults suit CCTV footage at 5-30 fps).

    Attributes:
        gate_width: Width in pixels of the greyscale copy the gate compares.
        gate_period_s: Seconds between two gate checks while idle (every frame at <= 10 fps).
        gate_threshold: Grey-level change (0-255, after a 5x5 blur) that counts as a changed pixel.
        gate_min_pixels: Changed pixels of the small copy that count as motion.
        heartbeat_s: While idle, detect at least once every this many seconds (0: never); 10 s,
            not 2: on quiet archives the 2-s heartbeat was half of all detections, and dropping it
            to 10 s changed no tracklet (``bench/README.md``, "Archive footage").
        max_interval_s: Longest keyframe interval, in seconds of video.
        max_shift: Largest box displacement between two keyframes, in box widths.
        new_track_conf: Detections at least this confident that no track took make the next
            frame a keyframe (a track is being born; ByteTrack's ``new_track_thresh``).
    """

    gate_width: int = 160
    gate_period_s: float = 0.1
    gate_threshold: int = 25
    gate_min_pixels: int = 10
    heartbeat_s: float = 10.0
    max_interval_s: float = 0.5
    max_shift: float = 0.2
    new_track_conf: float = 0.25


class MotionGate:
    """Change measure on a small greyscale copy of a frame against a reference frame.

    Args:
        width: Width of the copy (its height keeps the frame's aspect).
        threshold: Grey-level change that counts as a changed pixel.
        min_pixels: Changed pixels that count as motion.
    """

    def __init__(self, width: int = 160, threshold: int = 25, min_pixels: int = 10) -> None:
        self.width, self.threshold, self.min_pixels = int(width), int(threshold), int(min_pixels)
        self.reference: np.ndarray | None = None

    def small(self, frame: np.ndarray) -> np.ndarray:
        """The blurred greyscale copy the gate compares (``width`` pixels wide)."""
        s = max(1, -(-frame.shape[1] // self.width))  # subsample by an integer step: ~10x cheaper
        small = np.ascontiguousarray(frame[::s, ::s])  # than INTER_AREA, and the blur removes aliasing
        if small.ndim == 3:
            small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        return cv2.GaussianBlur(small, (5, 5), 0)

    def changed(self, small: np.ndarray) -> int:
        """Pixels of ``small`` that differ from the reference (all of them without a reference)."""
        if self.reference is None or self.reference.shape != small.shape:
            return small.size
        return int(np.count_nonzero(cv2.absdiff(small, self.reference) > self.threshold))

    def moved(self, small: np.ndarray) -> bool:
        return self.changed(small) >= self.min_pixels

    def set_reference(self, small: np.ndarray) -> None:
        self.reference = small


def keyframe_interval(prev: dict[int, np.ndarray], cur: dict[int, np.ndarray], frames_between: int,
                      max_interval: int, max_shift: float = 0.2) -> int:
    """Frames to the next keyframe from the boxes of the tracks seen at two keyframes.

    Args:
        prev: Track id -> box (x1, y1, x2, y2) at the previous keyframe.
        cur: Track id -> box at the current keyframe.
        frames_between: Frames from the previous keyframe to the current one (>= 1).
        max_interval: Longest interval allowed.
        max_shift: Largest displacement between keyframes, in box widths.

    Returns:
        1 when a track is new (no speed yet) or moves ``max_shift`` widths per frame or more;
        otherwise the longest interval over which the fastest track moves at most ``max_shift``
        of its width, capped at ``max_interval``. ``max_interval`` when no track is seen.
    """
    k = max(1, int(max_interval))
    for tid, box in cur.items():
        old = prev.get(tid)
        if old is None:
            return 1
        width = max(1.0, float(min(box[2] - box[0], box[3] - box[1])))
        shift = float(np.abs((box[:2] + box[2:]) / 2 - (old[:2] + old[2:]) / 2).max())
        shift = max(shift, float(np.abs(box - old).max()) / 2)  # growing/shrinking boxes count too
        speed = shift / max(1, frames_between) / width  # widths per frame
        if speed > 0:
            k = min(k, max(1, math.floor(max_shift / speed)))
    return k


class ScanPolicy:
    """Decides, frame by frame, whether a frame is skipped, detected, or only ages lost tracks.

    Frame positions are *steps*: frame indices counted from the scan's first frame in units of the
    stride. The caller asks :meth:`wants` before decoding a step (True: convert it to pixels), then
    :meth:`decide` with its pixels, and reports what it did: :meth:`observe` with the detector and
    tracker output of a ``DETECT`` step, :meth:`aged` after feeding the tracker an empty frame for
    an ``AGE`` step (while only lost tracks remain and the gate sees no change, their lost-track
    window runs on without running the detector).

    Args:
        fps: Rate of the steps (video fps / stride).
        lost_steps: Steps a lost track is kept by the tracker; keyframes continue this long after
            the last tracked box so lost tracks can come back or expire.
        config: Scan knobs.
    """

    def __init__(self, fps: float, lost_steps: int, config: ScanConfig | None = None) -> None:
        self.config = c = config or ScanConfig()
        self.fps = float(fps)
        self.max_interval = max(1, math.floor(c.max_interval_s * self.fps + 1e-6))
        self.gate_period = max(1, round(c.gate_period_s * self.fps))
        self.heartbeat = max(1, round(c.heartbeat_s * self.fps)) if c.heartbeat_s > 0 else 0
        self.lost_steps = int(lost_steps) + 2 * self.max_interval
        self.gate = MotionGate(c.gate_width, c.gate_threshold, c.gate_min_pixels)
        self.interval = 1
        self.next_key = 0  # step of the next keyframe while tracking; the first step is detected
        self.last_step = -NEVER  # last step detected or aged
        self.last_detect = -NEVER
        self.last_tracked = -NEVER
        self._prev: dict[int, np.ndarray] = {}
        self._births = 0
        self._small: np.ndarray | None = None
        #: Steps seen by the gate, detected, detected because the gate saw motion, and aged.
        self.gated = self.detected = self.onsets = self.aged_steps = 0

    @property
    def tracking(self) -> bool:
        """True while a track is active (or lost but able to come back)."""
        return self.last_tracked > -NEVER and self.last_step - self.last_tracked <= self.lost_steps

    def _beat(self, step: int) -> bool:
        return bool(self.heartbeat) and step - self.last_detect >= self.heartbeat

    def wants(self, step: int) -> bool:
        """Whether ``step`` is converted to pixels (a keyframe or a gate check)."""
        if self.tracking:
            return step >= self.next_key
        return step % self.gate_period == 0 or step >= self.next_key or self._beat(step)

    def _moved(self, frame: np.ndarray) -> bool:
        self.gated += 1
        self._small = self.gate.small(frame)
        return self.gate.moved(self._small)

    def decide(self, step: int, frame: np.ndarray) -> str:
        """``DETECT``, ``AGE`` or ``SKIP`` for the converted ``step``."""
        self._small = None
        due = step >= self.next_key
        if self.tracking:
            if not due:
                return SKIP
            if self._prev or self._births or self._beat(step):
                return DETECT
            return DETECT if self._moved(frame) else AGE  # only lost tracks: detect on change only
        if due or self._beat(step):
            return DETECT
        if self._moved(frame):
            self.onsets += 1
            return DETECT
        return SKIP

    def aged(self, step: int) -> None:
        """The tracker got an empty frame for ``step`` (an ``AGE`` decision)."""
        self.aged_steps += 1
        self.last_step = step
        self.interval = self.max_interval
        self.next_key = step + self.max_interval if self.tracking else NEVER

    def observe(self, step: int, frame: np.ndarray, dets: Detections, tracked: Detections) -> None:
        """Report the detector and tracker output of a detected step; plans the next keyframe."""
        self.detected += 1
        between = max(1, step - self.last_step) if self.last_step > -NEVER else 1
        self.last_step = self.last_detect = step
        self.gate.set_reference(self._small if self._small is not None else self.gate.small(frame))
        self._small = None
        ids = [] if tracked.tracker_id is None else tracked.tracker_id.tolist()
        cur = {int(t): tracked.xyxy[i].astype(np.float64) for i, t in enumerate(ids)}
        if cur:
            self.last_tracked = step
            k = keyframe_interval(self._prev, cur, between, self.max_interval, self.config.max_shift)
        elif self.tracking:
            k = self.max_interval  # only lost tracks: keep looking until they come back or expire
        else:
            k = 1
        # a confident detection that no track took and that overlaps no tracked box: a track is
        # being born, confirm it on the next frame (at most 3 times in a row, so a detection that
        # never becomes a track cannot pin k to 1)
        unborn = _unmatched(dets, tracked, self.config.new_track_conf)
        born = unborn and self._births < 3
        self._births = self._births + 1 if unborn else 0
        if born:
            k = 1
        self._prev = cur
        self.interval = k
        self.next_key = step + k if self.tracking or born else NEVER

    def idle(self) -> bool:
        """Nothing is due until the picture changes: no track, no keyframe planned (keyframe skipping)."""
        return not self.tracking and self.next_key == NEVER

    def opens(self, frame: np.ndarray) -> bool:
        """Whether ``frame`` differs from the gate's reference (asked of keyframes decoded while skipping)."""
        return self.gate.moved(self.gate.small(frame))

    def stats(self) -> dict[str, int]:
        return {"gate_checks": self.gated, "detected": self.detected, "motion_onsets": self.onsets,
                "aged": self.aged_steps}


def _unmatched(dets: Detections, tracked: Detections, conf: float) -> bool:
    """True when a detection of at least ``conf`` overlaps no tracked box (IoU < 0.5)."""
    boxes = dets.xyxy[dets.conf >= conf] if len(dets) else np.zeros((0, 4), np.float32)
    if not len(boxes):
        return False
    if not len(tracked):
        return True
    t = tracked.xyxy
    lt = np.maximum(boxes[:, None, :2], t[None, :, :2])
    rb = np.minimum(boxes[:, None, 2:], t[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), 2)
    area = (np.prod(boxes[:, 2:] - boxes[:, :2], 1)[:, None] + np.prod(t[:, 2:] - t[:, :2], 1)[None] - inter)
    iou = inter / np.maximum(area, 1e-9)
    return bool((iou.max(1) < 0.5).any())
