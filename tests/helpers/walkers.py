"""A generated H.264 recording of blob 'people' walking by, and the detector that finds them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from csip_reid.core.detections import Detections
from csip_reid.pipeline.detect import Detector

FPS, SIZE, GOP = 10, (320, 180), 10
#: (enter, leave, speed px/frame, top): four people; the third walks through the first segment end.
WALKERS = [(20, 70, 4.0, 30), (60, 130, 2.0, 100), (150, 262, 2.5, 60), (300, 340, 5.0, 20)]
FRAMES = 400
SEGMENT_S = 5.0  # 50 frames


class BlobDetector(Detector):
    """Bright rectangles on a dark, noisy background (one person each); counts its calls and frames."""

    name = "blob"
    batch_size = 4

    def __init__(self) -> None:
        self.calls: list[int] = []  # frames per call
        self.seen = 0  # frames in all

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        self.calls.append(len(frames))
        self.seen += len(frames)
        out = []
        for f in frames:
            n, _, st, _ = cv2.connectedComponentsWithStats((f.max(2) > 128).astype(np.uint8))
            boxes = [[x, y, x + w, y + h] for x, y, w, h, a in st[1:n] if a > 50]
            out.append(Detections(np.array(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.9)))
        return out

    def describe(self) -> dict:
        return {"kind": self.name}


def _picture(rng: np.random.Generator, i: int) -> np.ndarray:
    f = rng.integers(20, 36, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
    for enter, leave, speed, top in WALKERS:
        if enter <= i < leave:
            x = int(5 + speed * (i - enter)) % (SIZE[0] - 30)
            f[top:top + 56, x:x + 22] = 230
    return f


def write_walkers(path: Path) -> Path:
    """40 s of H.264 at 10 fps, a keyframe every second, people in four stretches (:data:`WALKERS`)."""
    import av

    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=FPS)
        s.width, s.height, s.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        s.options = {"g": str(GOP), "keyint_min": str(GOP), "sc_threshold": "0"}
        for i in range(FRAMES):
            for p in s.encode(av.VideoFrame.from_ndarray(_picture(rng, i), format="bgr24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path
