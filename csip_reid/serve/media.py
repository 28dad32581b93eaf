"""Files the app serves and receives: by gallery id only, never by a client path.

* Videos are looked up by their gallery id; the stored path must still be a regular file.
* Thumbnails are looked up by tracklet id; the file, symlinks resolved, must lie inside the
  gallery's ``thumbs/`` folder (a link planted there that points elsewhere is refused).
* Crop strips are cut from the source video at the tracklet's sampled frames.
* Uploads are streamed to a private temp folder with a size limit, then decoded to check their
  type (an image with OpenCV, else a video with :class:`~csip_reid.core.video.VideoReader`).
"""

from __future__ import annotations

import mimetypes
import os
import shutil
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from csip_reid.core.errors import ReidError, VideoError
from csip_reid.core.video import VIDEO_EXTENSIONS, VideoReader
from csip_reid.gallery.thumbs import encode_jpeg

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
CHUNK = 1 << 20


class UploadError(ReidError):
    """An upload is too large, empty, or not a decodable image or video."""


def safe_file(path: str | Path | None, inside: Path | None = None) -> Path | None:
    """``path`` resolved, if it is a regular file (and lies inside ``inside`` when given)."""
    if not path:
        return None
    p = Path(path)
    try:
        real = p.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if inside is not None:
        base = inside.resolve()
        if real != base and base not in real.parents:
            return None
    return real if real.is_file() else None


def media_type(path: Path) -> str:
    """The MIME type of a video file from its suffix (``video/mp4`` when unknown)."""
    return mimetypes.guess_type(path.name)[0] or "video/mp4"


class CropCache:
    """Strips of a tracklet's sampled crops (JPEG bytes), the last ``size`` kept in memory."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._items: OrderedDict[tuple[int, int], bytes] = OrderedDict()

    def strip(self, key: tuple[int, int], video: Path, frames: list[int], boxes: dict[int, np.ndarray],
              count: int = 8, height: int = 128) -> bytes | None:
        """A horizontal strip of up to ``count`` crops (each ``height`` px high) as JPEG bytes."""
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        wanted = [f for f in frames if f in boxes]
        if len(wanted) > count:
            wanted = [wanted[round(i * (len(wanted) - 1) / (count - 1))] for i in range(count)]
        crops = []
        cap = cv2.VideoCapture(str(video))
        try:
            for f in wanted:
                cap.set(cv2.CAP_PROP_POS_FRAMES, f)
                ok, frame = cap.read()
                if not ok:
                    continue
                x1, y1, x2, y2 = (int(round(v)) for v in boxes[f])
                h, w = frame.shape[:2]
                x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
                if x2 - x1 < 2 or y2 - y1 < 2:
                    continue
                crop = frame[y1:y2, x1:x2]
                scale = height / crop.shape[0]
                crops.append(cv2.resize(crop, (max(1, round(crop.shape[1] * scale)), height)))
        finally:
            cap.release()
        if not crops:
            return None
        data = encode_jpeg(np.concatenate(crops, axis=1), max_height=height)
        if data is not None:
            self._items[key] = data
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return data


def frame_jpeg(video: Path, frame: int, max_width: int = 1280) -> bytes | None:
    """Frame ``frame`` of a video as JPEG bytes (downscaled to ``max_width``); None past the end."""
    cap = cv2.VideoCapture(str(video))
    try:
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(frame))
        ok, img = cap.read()
    finally:
        cap.release()
    if not ok or img is None:
        return None
    h, w = img.shape[:2]
    if w > max_width:
        img = cv2.resize(img, (max_width, max(1, round(h * max_width / w))), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return buf.tobytes() if ok else None


@dataclass
class Upload:
    """An upload saved in its own temp folder; :meth:`cleanup` deletes the folder.

    Attributes:
        path: The saved file (a fixed name chosen here, never the client's).
        kind: ``"image"`` or ``"video"``.
        folder: The temp folder.
    """

    path: Path
    kind: str
    folder: Path

    def cleanup(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def save_upload(stream: BinaryIO, filename: str | None, max_bytes: int, temp_root: Path | None = None) -> Upload:
    """Copy an upload to a new temp folder, enforcing ``max_bytes``, and check it decodes.

    Raises:
        UploadError: Empty, larger than ``max_bytes``, or neither an image nor a video.
    """
    suffix = Path(filename or "").suffix.lower()
    if suffix not in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS:
        suffix = ".bin"
    folder = Path(tempfile.mkdtemp(prefix="reid-upload-", dir=temp_root))
    try:
        path = folder / f"upload{suffix}"
        size = 0
        with open(path, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise UploadError(f"upload is larger than the limit of {max_bytes / 1e6:.0f} MB "
                                      "(start the server with a larger --max-upload-mb)")
                out.write(chunk)
        if size == 0:
            raise UploadError("the uploaded file is empty")
        kind = sniff(path)
        # the query pipeline tells photos from clips by the suffix: make it say what decoding found
        if kind == "image" and suffix not in IMAGE_EXTENSIONS:
            os.replace(path, folder / "upload.png")
            path = folder / "upload.png"
        elif kind == "video" and suffix not in VIDEO_EXTENSIONS:
            os.replace(path, folder / "upload.mp4")
            path = folder / "upload.mp4"
        return Upload(path, kind, folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def sniff(path: Path) -> str:
    """``"image"`` or ``"video"``, decided by decoding the file (its name is not trusted).

    Raises:
        UploadError: It decodes as neither.
    """
    data = np.fromfile(str(path), dtype=np.uint8, count=64 << 20)
    img = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if img is not None and img.size:
        return "image"
    try:
        VideoReader(path)
    except VideoError:
        raise UploadError("the upload is neither an image nor a video that can be decoded") from None
    return "video"
