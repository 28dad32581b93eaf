"""The canonical result type: one person track in one video.

Every stage reads and extends a :class:`Tracklet`: the tracker fills the observation arrays
(``frames``, ``timestamps``, ``boxes``, ``scores``) and a bounded, evenly spread sample of crops;
the pose stage fills ``keypoints``/``skeleton`` for the sampled crops; the embedder fills
``embedding``; the gallery stores all of it.

Array conventions:
    * ``frames`` (N,) int64 frame indices in the source video, increasing.
    * ``timestamps`` (N,) float64 seconds from the video start.
    * ``boxes`` (N, 4) float32 ``x1, y1, x2, y2`` in pixels of the source frame.
    * ``scores`` (N,) float32 detector confidences; NaN for boxes interpolated between the
      keyframes of an adaptive scan (not detected).
    * ``sample_frames`` (S,) int64: the frame index of each kept crop (a subset of ``frames``).
    * ``crops``: S BGR uint8 images (H, W, 3), one per ``sample_frames`` entry.
    * ``sample_boxes`` (S, 4) float32: the frame region of each crop.
    * ``sample_scores`` (S,) float32: the detector confidence of each crop (NaN: interpolated).
    * ``sample_overlap`` (S,) float32: the share of each crop's box covered by other tracked
      people's boxes in that frame (0 = nobody in front or behind, 1 = fully covered).
    * ``sample_cut`` (S,) bool: the crop's box touches the frame edge (the person may be cut off).
    * ``keypoints`` (S, 17, 3) float32 COCO-17 ``x, y, score`` in *crop* pixels; NaN rows = missing.
    * ``skeleton`` (S, 17, 3) float32 in the format named by ``skeleton_format``; NaN = missing.
    * ``embedding`` (D,) float32, L2-normalised.
    * ``skeleton_embedding`` (P,) float32, L2-normalised: the skeleton-space vector (``--mode fused``).

Scalar fields: ``camera_index`` is the training-camera index the SIE camera embedding of a CSIP-ReID
model uses (``None``: unknown camera, the model's mean embedding); ``sample_stride`` is the
observation stride of the kept crops; ``gallery_id`` is the row id once the tracklet is stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Tracklet:
    """One tracked person in one video, plus everything later stages attach to it."""

    video: str
    camera: str
    track_id: int
    frames: np.ndarray
    timestamps: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray | None = None
    sample_frames: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    crops: list[np.ndarray] = field(default_factory=list)
    sample_boxes: np.ndarray | None = None
    sample_scores: np.ndarray | None = None
    sample_overlap: np.ndarray | None = None
    sample_cut: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    skeleton: np.ndarray | None = None
    skeleton_format: str | None = None
    thumbnail: np.ndarray | None = None
    embedding: np.ndarray | None = None
    skeleton_embedding: np.ndarray | None = None
    camera_index: int | None = None
    sample_stride: int = 1
    gallery_id: int | None = None

    def __post_init__(self) -> None:
        self.frames = np.asarray(self.frames, dtype=np.int64).reshape(-1)
        self.timestamps = np.asarray(self.timestamps, dtype=np.float64).reshape(-1)
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        if self.scores is not None:
            self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.sample_frames = np.asarray(self.sample_frames, dtype=np.int64).reshape(-1)
        n = len(self.frames)
        if len(self.timestamps) != n or len(self.boxes) != n:
            raise ValueError(
                f"tracklet arrays disagree: {n} frames, {len(self.timestamps)} timestamps, "
                f"{len(self.boxes)} boxes"
            )
        for name, dtype in (("sample_scores", np.float32), ("sample_overlap", np.float32), ("sample_cut", bool)):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value, dtype=dtype).reshape(-1)
                if len(value) != len(self.sample_frames):
                    raise ValueError(f"{len(value)} {name} but {len(self.sample_frames)} sample frame indices")
                setattr(self, name, value)
        if self.crops and len(self.crops) != len(self.sample_frames):
            raise ValueError(
                f"{len(self.crops)} crops but {len(self.sample_frames)} sample frame indices"
            )

    # -- derived facts ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.frames)

    @property
    def num_samples(self) -> int:
        """Number of kept crops."""
        return len(self.crops)

    @property
    def start_frame(self) -> int:
        return int(self.frames[0]) if len(self.frames) else -1

    @property
    def end_frame(self) -> int:
        return int(self.frames[-1]) if len(self.frames) else -1

    @property
    def start_s(self) -> float:
        return float(self.timestamps[0]) if len(self.timestamps) else 0.0

    @property
    def end_s(self) -> float:
        return float(self.timestamps[-1]) if len(self.timestamps) else 0.0

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def mean_box_height(self) -> float:
        if not len(self.boxes):
            return 0.0
        return float(np.mean(self.boxes[:, 3] - self.boxes[:, 1]))

    def summary(self) -> dict[str, Any]:
        """JSON-friendly description (no arrays)."""
        return {
            "video": self.video,
            "camera": self.camera,
            "track_id": int(self.track_id),
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "num_frames": len(self),
            "num_samples": self.num_samples,
            "has_skeleton": self.skeleton is not None,
        }
