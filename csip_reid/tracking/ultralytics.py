"""ByteTrack and BoT-SORT (ultralytics) behind the :class:`~csip_reid.tracking.base.Tracker` contract.

The trackers are ultralytics' ByteTrack and BoT-SORT used standalone (no ultralytics predictor):
we feed them one frame of detections at a time and read back which detection each active track
took. Specs (``--tracker``):

* ``bytetrack`` (default) / ``bytetrack:my.yaml``: ByteTrack, two-stage IoU association.
* ``botsort`` / ``botsort:my.yaml``: BoT-SORT. Camera-motion compensation is off by default
  (``gmc_method: none``: CCTV cameras are static); set ``gmc_method: sparseOptFlow`` for moving
  cameras (frames are then needed in :meth:`UltralyticsTracker.update`). ``with_reid`` is off.

Settings start from ultralytics' ``bytetrack.yaml`` / ``botsort.yaml``; a YAML file given as the
spec argument and then keyword overrides replace keys of it (unknown keys are refused).

``track_buffer`` follows the ByteTrack convention: it is counted in frames at 30 fps, so a lost
track survives ``track_buffer / 30`` seconds whatever the video's frame rate (pass the rate of the
frames the tracker actually sees, e.g. ``fps / stride``).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import yaml

from csip_reid.core.detections import Detections
from csip_reid.core.errors import ConfigError
from csip_reid.tracking.base import TRACKERS, Tracker


class TrackerInput:
    """Detections seen through the interface ultralytics' trackers read.

    Exposes ``conf``, ``cls`` (all 0: person), ``xyxy``, ``xywh`` (centre, size), ``len()`` and
    boolean-mask / index-array indexing.
    """

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray) -> None:
        self.xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
        self.conf = np.asarray(conf, np.float32).reshape(-1)
        self.cls = np.zeros(len(self.conf), np.float32)

    @classmethod
    def from_detections(cls, dets: Detections) -> TrackerInput:
        return cls(dets.xyxy, dets.conf)

    @property
    def xywh(self) -> np.ndarray:
        wh = self.xyxy[:, 2:] - self.xyxy[:, :2]
        return np.concatenate([self.xyxy[:, :2] + wh / 2, wh], 1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, idx: np.ndarray | slice) -> TrackerInput:
        return TrackerInput(self.xyxy[idx], self.conf[idx])


def load_tracker_config(kind: str, config: str | Path | None = None, **overrides: Any) -> dict[str, Any]:
    """Settings of an ultralytics tracker: its packaged YAML, then ``config``, then ``overrides``.

    Raises:
        ConfigError: Unreadable YAML or a key the tracker does not have.
    """
    from csip_reid.core.ultralytics_env import import_ultralytics

    pkg = Path(import_ultralytics().__file__).parent
    with open(pkg / "cfg" / "trackers" / f"{kind}.yaml") as f:
        cfg = yaml.safe_load(f)
    extra: dict[str, Any] = {}
    if config is not None:
        try:
            with open(config) as f:
                extra = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"cannot read tracker config {config}: {e}") from e
        if not isinstance(extra, dict):
            raise ConfigError(f"tracker config {config} must be a mapping of settings")
    extra.update(overrides)
    extra.pop("tracker_type", None)
    unknown = sorted(set(extra) - set(cfg))
    if unknown:
        raise ConfigError(f"unknown {kind} setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(cfg))}")
    cfg.update(extra)
    return cfg


class UltralyticsTracker(Tracker):
    """One ultralytics tracker instance, for one video.

    Args:
        kind: ``bytetrack`` or ``botsort``.
        frame_rate: Rate of the frames passed to :meth:`update` (video fps / stride).
        config: Optional YAML file of settings.
        **overrides: Settings replacing those of the YAML files.
    """

    def __init__(
        self, kind: str, frame_rate: float = 30.0, config: str | Path | None = None, **overrides: Any
    ) -> None:
        from csip_reid.core.ultralytics_env import import_ultralytics

        import_ultralytics()
        from ultralytics.trackers.bot_sort import BOTSORT
        from ultralytics.trackers.byte_tracker import BYTETracker

        if kind == "botsort":
            overrides.setdefault("gmc_method", "none")
            overrides.setdefault("with_reid", False)
        self.name = kind
        self.frame_rate = float(frame_rate)
        self.config = load_tracker_config(kind, config, **overrides)
        cls = {"bytetrack": BYTETracker, "botsort": BOTSORT}[kind]
        self._tracker = cls(SimpleNamespace(**self.config))
        self.set_frame_rate(self.frame_rate)

    def set_frame_rate(self, frame_rate: float) -> None:
        """Rescale the lost-track window (``track_buffer`` is in frames at 30 fps) to ``frame_rate``."""
        self.frame_rate = float(frame_rate)
        #: Frames (as passed to update) a lost track is kept before it can no longer come back.
        self.max_lost = max(1, round(self.config["track_buffer"] * self.frame_rate / 30.0))
        for attr in ("max_frames_lost", "max_time_lost"):  # ultralytics 8.4 / 8.3 names
            if hasattr(self._tracker, attr):
                setattr(self._tracker, attr, self.max_lost)

    def update(
        self, dets: Detections, frame: np.ndarray | None = None, feats: np.ndarray | None = None
    ) -> Detections:
        """Advance one frame.

        Args:
            dets: The frame's detections.
            frame: The BGR frame (needed only for BoT-SORT camera-motion compensation).
            feats: Optional (N, D) appearance features for BoT-SORT ``with_reid`` (``model: auto``).

        Returns:
            The detections that a track took in this frame, ``tracker_id`` set, sorted by it.
        """
        out = self._tracker.update(TrackerInput.from_detections(dets), frame, feats)
        if not len(out):
            return dets.with_tracker_ids(np.zeros(0, np.int64), np.zeros(0, np.int64))
        out = out[np.argsort(out[:, 4], kind="stable")]
        return dets.with_tracker_ids(out[:, 7].astype(np.int64), out[:, 4].astype(np.int64))

    def reset(self) -> None:
        self._tracker.reset()

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name, "frame_rate": self.frame_rate, "max_lost": self.max_lost, **self.config}


@TRACKERS.register("bytetrack", help="ByteTrack (ultralytics), two-stage IoU association")
def _make_bytetrack(arg: str | None, frame_rate: float = 30.0, **overrides: Any) -> UltralyticsTracker:
    return UltralyticsTracker("bytetrack", frame_rate, arg, **overrides)


@TRACKERS.register("botsort", help="BoT-SORT (ultralytics); camera-motion compensation off by default")
def _make_botsort(arg: str | None, frame_rate: float = 30.0, **overrides: Any) -> UltralyticsTracker:
    return UltralyticsTracker("botsort", frame_rate, arg, **overrides)

