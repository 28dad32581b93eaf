"""Pipeline settings for ``reid index`` / ``reid query``: defaults, YAML files, CLI overrides.

Precedence (last wins): built-in defaults < ``--config FILE`` (YAML) < command-line options. The
settings a gallery was built with are stored in its manifest, and ``reid query`` reuses them, so a
query clip goes through exactly the detector, tracker, pose and embedder of the gallery.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from csip_reid.core.configs import config_path
from csip_reid.core.errors import ConfigError


@dataclass
class PipelineSettings:
    """Everything that decides how a video becomes embedded tracklets.

    Attributes:
        detector: Detector spec (``ultralytics:yolo11n.pt``, ``yolox:yolox_nano``).
        detector_conf: Minimum person confidence kept by the detector (low: ByteTrack uses low-score boxes in its second association).
        detector_batch: Frames per detector call.
        tracker: Tracker name (``bytetrack`` or ``botsort``).
        tracker_opts: Overrides of the tracker's YAML parameters.
        embedder: Embedder spec (``openvino:person-reidentification-retail-0277``, the default, chosen
            by ``bench/models.py``; ``onnx:osnet_x0_25_msmt17``, ``csip:run/best.pt``).
        pose: Pose spec (``none``, ``movenet``, ``yolo-pose``, ``rtmpose-s``...).
        stride: Process every N-th frame.
        scan: ``adaptive`` (detect motion onsets and keyframes, interpolate between them; see
            :mod:`csip_reid.pipeline.scan`) or ``full`` (detect every frame). Galleries written
            before adaptive scanning store no ``scan`` and are read as ``full``.
        min_frames: Tracks with fewer observations are dropped.
        min_box_height: Tracks whose median box height (px) is lower are dropped.
        max_samples: Crops kept per tracklet (evenly spread); pose and embedding only see these.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        decoder: Video decoder: ``auto`` (the GPU's NVDEC on a CUDA device when PyNvVideoCodec is
            installed, else ``pyav``), ``pyav`` (the adaptive scan decodes quiet stretches keyframes
            only), ``opencv`` or ``nvdec`` (:mod:`csip_reid.core.nvdec`).
        camera_map: Gallery camera name → training-camera index for a CSIP model's SIE embedding
            (:mod:`csip_reid.pipeline.camera_map`); cameras not in it get the mean embedding.
        segment_s: ``reid index`` commits a long video in segments of at least this many seconds
            of video, each ending where nobody is tracked, with a resume point (0: one commit per
            video); see :func:`csip_reid.pipeline.extract.extract_segments`.
    """

    detector: str = "ultralytics:yolo11n.pt"
    detector_conf: float = 0.1
    detector_batch: int = 8
    tracker: str = "bytetrack"
    tracker_opts: dict[str, Any] = field(default_factory=dict)
    embedder: str = "openvino:person-reidentification-retail-0277"
    pose: str = "none"
    stride: int = 1
    scan: str = "adaptive"
    min_frames: int = 5
    min_box_height: int = 32
    max_samples: int = 16
    device: str = "cpu"
    decoder: str = "auto"
    camera_map: dict[str, int] = field(default_factory=dict)
    segment_s: float = 30.0

    @classmethod
    def load(cls, path: str | Path | None = None, **overrides: Any) -> PipelineSettings:
        """Defaults, then the YAML file (if any), then non-None ``overrides``."""
        data: dict[str, Any] = {}
        if path is not None:
            p = config_path(path)
            try:
                loaded = yaml.safe_load(p.read_text()) or {}
            except yaml.YAMLError as e:
                raise ConfigError(f"config file {p} is not valid YAML: {e}") from None
            if not isinstance(loaded, dict):
                raise ConfigError(f"config file {p} must hold a mapping")
            data.update(loaded.get("pipeline", loaded))
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PipelineSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown pipeline setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        s = cls(**data)
        if s.camera_map:
            from csip_reid.pipeline.camera_map import validate_camera_map

            s.camera_map = validate_camera_map(s.camera_map)
        if s.stride < 1:
            raise ConfigError("stride must be >= 1")
        if s.max_samples < 1:
            raise ConfigError("max_samples must be >= 1")
        if not s.segment_s >= 0:
            raise ConfigError(f"segment_s must be >= 0 seconds, got {s.segment_s}")
        if s.scan not in ("adaptive", "full"):
            raise ConfigError(f"unknown scan {s.scan!r}; choose adaptive or full")
        from csip_reid.core.nvdec import check_decoder

        check_decoder(s.decoder)
        return s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
