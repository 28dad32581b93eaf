"""Decoding on the GPU's hardware video decoder (NVDEC) through PyNvVideoCodec.

:class:`NvdecCapture` gives :class:`~csip_reid.core.video.VideoReader` the part of OpenCV's
``VideoCapture`` interface it uses (``grab``, ``retrieve``, ``read``, ``release``), so frame
indices, strides, ranges, the adaptive scan's ``select`` and the damaged-file accounting are the
same with either decoder. ``grab`` decodes on the GPU; only ``retrieve`` copies a frame to host
memory (as BGR ``uint8``, what the rest of the pipeline reads), so frames the adaptive scan skips
never leave the GPU.

Decoders (``--decoder``, a pipeline setting):

* ``opencv``: OpenCV's FFmpeg back-end on the CPU (every machine);
* ``pyav``: FFmpeg through PyAV (``pip install av``) with decoder threads, and keyframe-only
  decoding of quiet stretches for the adaptive scan (:mod:`csip_reid.core.pyav`);
* ``nvdec``: PyNvVideoCodec (``pip install PyNvVideoCodec``, an NVIDIA GPU with NVDEC); an error
  when either is missing;
* ``auto`` (default): ``nvdec`` when the pipeline runs on CUDA and PyNvVideoCodec imports, else
  ``pyav`` (a core dependency; ``opencv`` where it does not import). A file NVDEC cannot open (a
  codec it lacks, e.g. MJPEG) falls back to OpenCV with a warning. ``pyav`` became the CPU default
  by measurement (``bench/README.md``, "Archive footage").
"""

from __future__ import annotations

import importlib
import logging
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from csip_reid.core.errors import ConfigError, VideoError

logger = logging.getLogger(__name__)

DECODERS = ("auto", "opencv", "pyav", "nvdec")


def check_decoder(name: str) -> str:
    """Validate a ``--decoder`` value.

    Raises:
        ConfigError: Not one of :data:`DECODERS`.
    """
    if name not in DECODERS:
        raise ConfigError(f"unknown decoder {name!r}; choose one of {', '.join(DECODERS)}")
    return name


def _module() -> Any | None:
    try:
        return importlib.import_module("PyNvVideoCodec")
    except Exception:  # noqa: BLE001 - missing, or present without a driver: both mean "not here"
        return None


def nvdec_available() -> bool:
    """Whether PyNvVideoCodec imports (it needs an NVIDIA driver to do so)."""
    return _module() is not None


def resolve_decoder(name: str, device: str = "cpu") -> str:
    """The decoder a run uses: ``opencv``, ``pyav`` or ``nvdec`` (``auto`` picks by device and installation:
    NVDEC on a CUDA device with PyNvVideoCodec, else PyAV, else OpenCV).

    Raises:
        ConfigError: An unknown name, or ``nvdec`` without PyNvVideoCodec.
    """
    check_decoder(name)
    if name == "nvdec" and not nvdec_available():
        raise ConfigError("--decoder nvdec needs PyNvVideoCodec and an NVIDIA GPU: pip install PyNvVideoCodec "
                          "(or use --decoder opencv)")
    if name == "pyav":
        from csip_reid.core.pyav import pyav_available

        if not pyav_available():
            raise ConfigError("--decoder pyav needs PyAV: pip install av (or use --decoder opencv)")
    if name == "auto":
        if str(device).startswith("cuda") and nvdec_available():
            return "nvdec"
        from csip_reid.core.pyav import pyav_available

        return "pyav" if pyav_available() else "opencv"
    return name


def _gpu_id(device: str) -> int:
    _, _, index = str(device).partition(":")
    return int(index) if index.isdigit() else 0


class NvdecCapture:
    """A video file decoded by NVDEC, read like ``cv2.VideoCapture`` (see the module docstring).

    Args:
        path: Video file (a container PyNvVideoCodec can demux: MP4, MKV, MOV, TS ...).
        device: ``cuda`` or ``cuda:N`` (the GPU whose decoder is used).
        batch: Frames decoded per call into PyNvVideoCodec.

    Raises:
        VideoError: PyNvVideoCodec is missing or cannot open the file.
    """

    def __init__(self, path: str | Path, device: str = "cuda", batch: int = 4) -> None:
        nvc = _module()
        if nvc is None:
            raise VideoError("PyNvVideoCodec is not installed")
        self.batch = max(1, int(batch))
        try:
            # the decoder keeps more surfaces than a batch holds, so a frame stays valid until read
            self._decoder = nvc.SimpleDecoder(str(path), gpu_id=_gpu_id(device), use_device_memory=True,
                                              decoder_cache_size=2 * self.batch,
                                              output_color_type=nvc.OutputColorType.RGB)
        except Exception as e:  # noqa: BLE001 - the library's own exception types vary by version
            raise VideoError(f"NVDEC cannot open {path}: {type(e).__name__}: {e}") from None
        self._pending: deque[Any] = deque()
        self._frame: Any = None
        self._ended = False

    def isOpened(self) -> bool:  # noqa: N802 - the cv2.VideoCapture name
        return self._decoder is not None

    def grab(self) -> bool:
        """Decode the next frame (on the GPU); False at the end of the stream or on a decode error."""
        self._frame = None
        if not self._pending and not self._ended:
            try:
                self._pending.extend(self._decoder.get_batch_frames(self.batch) or [])
            except Exception as e:  # noqa: BLE001 - a damaged packet: counted as a failed frame
                logger.debug("NVDEC decode error: %s", e)
                return False
            self._ended = not self._pending
        if not self._pending:
            return False
        self._frame = self._pending.popleft()
        return True

    def retrieve(self) -> tuple[bool, np.ndarray | None]:
        """The grabbed frame as a BGR ``uint8`` host array."""
        if self._frame is None:
            return False, None
        return True, to_bgr(self._frame)

    def read(self) -> tuple[bool, np.ndarray | None]:
        return self.retrieve() if self.grab() else (False, None)

    def release(self) -> None:
        self._pending.clear()
        self._frame = None
        self._decoder = None


def to_bgr(frame: Any) -> np.ndarray:
    """A decoded RGB frame (DLPack: ``H x W x 3`` interleaved or ``3 x H x W`` planar) as BGR host memory."""
    import torch

    t = torch.from_dlpack(frame)
    if t.ndim == 3 and t.shape[0] == 3 and t.shape[-1] != 3:
        t = t.permute(1, 2, 0)
    return np.ascontiguousarray(t.flip(-1).cpu().numpy())
