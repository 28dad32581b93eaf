"""Tracklet thumbnails: small JPEGs written next to the gallery database."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from csip_reid.core.tracklet import Tracklet

THUMB_HEIGHT = 256
JPEG_QUALITY = 90


def thumbnail_image(t: Tracklet) -> np.ndarray | None:
    """The tracklet's thumbnail, else its middle crop, else None."""
    if t.thumbnail is not None:
        return t.thumbnail
    if t.crops:
        return t.crops[len(t.crops) // 2]
    return None


def encode_jpeg(img: np.ndarray, max_height: int = THUMB_HEIGHT) -> bytes | None:
    """BGR (or grey) uint8 image → JPEG bytes, downscaled to ``max_height``; None if unusable."""
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim not in (2, 3) or min(img.shape[:2]) < 1:
        return None
    h, w = img.shape[:2]
    if h > max_height:
        img = cv2.resize(img, (max(1, round(w * max_height / h)), max_height), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return buf.tobytes() if ok else None


def write_thumbnails(folder: Path, tracklets: list[Tracklet]) -> list[str | None]:
    """Write one JPEG per tracklet into ``folder`` (temp name, then rename).

    Returns:
        For each tracklet, the file name inside ``folder``, or None if it has no usable image.
    """
    folder.mkdir(parents=True, exist_ok=True)
    names: list[str | None] = []
    for i, t in enumerate(tracklets):
        img = thumbnail_image(t)
        data = None if img is None else encode_jpeg(img)
        if data is None:
            names.append(None)
            continue
        name = f"{i:05d}_{int(t.track_id)}.jpg"
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, folder / name)
        names.append(name)
    return names


def remove_folder(folder: Path) -> None:
    """Delete a thumbnail folder if it exists."""
    shutil.rmtree(folder, ignore_errors=True)
