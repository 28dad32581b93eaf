"""Query sources other than a clip: one photo (a full frame) or a folder of crops of one person.

Both become a one-tracklet query that the gallery's own embedder (and so its own crop
preprocessing) embeds, exactly like the crops of an indexed tracklet. A photo goes through the
gallery's detector first: the largest person is the query unless ``box`` names one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from csip_reid.core.errors import NoPersonError, VideoError
from csip_reid.core.tracklet import Tracklet

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
THUMB_HEIGHT = 128


def is_image(path: str | Path) -> bool:
    """Whether ``path`` is an image file by its extension."""
    return Path(path).suffix.lower() in IMAGE_EXTS


def read_image(path: str | Path) -> np.ndarray:
    """A BGR image; a file that does not decode is a one-line error."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        raise VideoError(f"cannot read image {path}: not a readable image file")
    return img


def _thumb(crop: np.ndarray) -> np.ndarray:
    h, w = crop.shape[:2]
    return cv2.resize(crop, (max(1, round(w * THUMB_HEIGHT / max(h, 1))), THUMB_HEIGHT), interpolation=cv2.INTER_AREA)


def crops_tracklet(crops: list[np.ndarray], source: str, boxes: np.ndarray | None = None) -> Tracklet:
    """One query tracklet made of ``crops`` (one sample per crop)."""
    n = len(crops)
    frames = np.arange(n)
    if boxes is None:
        boxes = np.array([[0, 0, c.shape[1], c.shape[0]] for c in crops], np.float32)
    best = max(range(n), key=lambda i: crops[i].shape[0])
    return Tracklet(video=source, camera="query", track_id=0, frames=frames, timestamps=np.zeros(n),
                    boxes=boxes, sample_frames=frames, crops=list(crops), sample_boxes=boxes,
                    thumbnail=_thumb(crops[best]))


def folder_tracklet(folder: str | Path) -> Tracklet:
    """A query from every image in ``folder`` (sorted by name; crops of one person).

    Raises:
        NoPersonError: The folder holds no image.
    """
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and is_image(p))
    if not files:
        raise NoPersonError(f"no images in folder {folder} (expected crops of one person: "
                            f"{', '.join(sorted(IMAGE_EXTS))})")
    return crops_tracklet([read_image(f) for f in files], str(Path(folder).resolve()))


def parse_box(text: str | tuple | list | None) -> tuple[float, float, float, float] | None:
    """``"x1,y1,x2,y2"`` (or a 4-sequence) → a box; None stays None.

    Raises:
        NoPersonError: Not four numbers with x1 < x2 and y1 < y2.
    """
    if text is None:
        return None
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        x1, y1, x2, y2 = (float(p) for p in parts)
    except ValueError:
        raise NoPersonError(f"--box {text!r}: expected x1,y1,x2,y2 in pixels") from None
    if not (x2 > x1 and y2 > y1):
        raise NoPersonError(f"--box {text!r}: x2 must be larger than x1 and y2 than y1")
    return x1, y1, x2, y2


def photo_tracklet(path: str | Path, detector: Any | None, box: tuple[float, float, float, float] | None = None,
                   min_height: int = 16, min_conf: float = 0.0) -> tuple[Tracklet, dict[str, Any]]:
    """The query person of a full photo: the given box, else the largest person detected with at
    least ``min_conf`` (so one detector, whatever its own threshold, serves photos and clips).

    Returns:
        The tracklet and facts for the query record (``box``, ``people`` detected).

    Raises:
        NoPersonError: No person detected (or a box outside the image).
    """
    img = read_image(path)
    h, w = img.shape[:2]
    people = None
    if box is None:
        det = detector.detect([img])[0]
        xyxy = det.xyxy[np.asarray(det.conf) >= min_conf] if len(det) else det.xyxy
        if not len(xyxy):
            raise NoPersonError(f"no person found in {path}: give the person's box with --box x1,y1,x2,y2")
        area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
        box = tuple(float(v) for v in xyxy[int(np.argmax(area))])
        people = len(xyxy)
    x1, y1 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x2, y2 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x2 - x1 < 2 or y2 - y1 < min_height:
        raise NoPersonError(f"box {box} of {path} is outside the {w}x{h} image or too small for a person")
    crop = img[y1:y2, x1:x2]
    t = crops_tracklet([crop], str(Path(path).resolve()), np.array([[x1, y1, x2, y2]], np.float32))
    return t, {"box": [x1, y1, x2, y2], "people_detected": people}
