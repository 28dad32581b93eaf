"""Resolve model weights by name, from a local weights folder, or by download.

Resolution order for a weights argument ``W``:

1. ``W`` is an existing file path → used as is.
2. A file named ``W`` (or the registered file name of ``W``) in one of the folders of
   ``$REID_WEIGHTS_DIR`` (``os.pathsep``-separated) or in the cache folder
   (``$REID_CACHE_DIR``, default ``~/.cache/csip-reid``) ``/weights``.
3. ``W`` is a registered name with a URL and the process is online → downloaded once into the
   cache folder with a progress bar, checked against its SHA-256, then used.
4. Otherwise a :class:`~csip_reid.core.errors.WeightsNotFoundError` that lists where it looked and how to
   pass a local file.

The process is *offline* when ``REID_OFFLINE``, ``HF_HUB_OFFLINE`` or ``YOLO_OFFLINE`` is set to a
true value; offline, step 3 is skipped at once instead of waiting for a network time-out.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from csip_reid.core.errors import WeightsNotFoundError

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class WeightsInfo:
    """A named, downloadable weights file.

    Attributes:
        name: The name users type (``osnet_x0_25_msmt17``).
        filename: File name on disk (``osnet_x0_25_msmt17.onnx``).
        url: Download address, or ``""`` when it must be supplied by hand.
        sha256: Expected SHA-256 of the file, or ``""`` to skip the check.
        description: One line for ``reid weights``.
    """

    name: str
    filename: str
    url: str = ""
    sha256: str = ""
    description: str = ""


KNOWN_WEIGHTS: dict[str, WeightsInfo] = {}


def register_weights(info: WeightsInfo) -> WeightsInfo:
    """Add ``info`` to the table of named weights (by name and by file name)."""
    KNOWN_WEIGHTS[info.name] = info
    KNOWN_WEIGHTS[info.filename] = info
    return info


register_weights(
    WeightsInfo(
        "osnet_x0_25_msmt17",
        "osnet_x0_25_msmt17.onnx",
        "https://github.com/Smorodov/Multitarget-tracker/raw/master/data/reid/osnet_x0_25_msmt17.onnx",
        "bb2267b23a64675f67bffc3177b7319e3a08de56041d153562c0206699634bce",
        "OSNet x0.25 trained on MSMT17 (torchreid), ONNX, 512-d appearance features",
    )
)
register_weights(
    WeightsInfo(
        "yolox_nano",
        "yolox_nano.onnx",
        "https://github.com/Kazuhito00/YOLOX-ONNX-TFLite-Sample/raw/main/model/yolox_nano.onnx",
        "695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14",
        "YOLOX-Nano (Megvii, COCO) ONNX person detector, 416x416",
    )
)
register_weights(
    WeightsInfo(
        "movenet_lightning",
        "movenet_singlepose_lightning_int8_4.tflite",
        "https://github.com/Kazuhito00/MoveNet-Python-Example/raw/main/tflite/"
        "lite-model_movenet_singlepose_lightning_tflite_int8_4.tflite",
        "cd7cc22fa946e5d146a7b98d496853e1923e22828d3972d579973f27f91bb105",
        "Google MoveNet SinglePose Lightning v4 (int8 TFLite), COCO-17 keypoints",
    )
)


def is_offline() -> bool:
    """True when an environment variable forbids network access."""
    return any(
        os.environ.get(v, "").strip().lower() in _TRUE
        for v in ("REID_OFFLINE", "HF_HUB_OFFLINE", "YOLO_OFFLINE")
    )


def cache_dir() -> Path:
    """The per-user cache folder (``$REID_CACHE_DIR`` or ``~/.cache/csip-reid``)."""
    env = os.environ.get("REID_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "csip-reid"


def weights_dirs() -> list[Path]:
    """Folders searched for weights files, in order."""
    dirs = [Path(p).expanduser() for p in os.environ.get("REID_WEIGHTS_DIR", "").split(os.pathsep) if p]
    dirs.append(cache_dir() / "weights")
    return dirs


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def find_local(name: str) -> Path | None:
    """Return a local file for ``name`` (path, or name in a weights folder), else ``None``."""
    p = Path(name).expanduser()
    if p.is_file():
        return p
    info = KNOWN_WEIGHTS.get(name)
    candidates = [p.name] + ([info.filename] if info else [])
    for d in weights_dirs():
        for c in candidates:
            q = d / c
            if q.is_file():
                return q
    return None


def _download(info: WeightsInfo, dest: Path) -> None:
    from tqdm import tqdm

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".part")
    try:
        with urllib.request.urlopen(info.url, timeout=60) as r, os.fdopen(fd, "wb") as out:
            total = int(r.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {info.filename}") as bar:
                while block := r.read(1 << 16):
                    out.write(block)
                    bar.update(len(block))
        if info.sha256 and file_sha256(tmp) != info.sha256:
            raise WeightsNotFoundError(
                f"downloaded {info.filename} does not match its SHA-256; not using it"
            )
        shutil.move(tmp, dest)
    except urllib.error.HTTPError as e:
        raise WeightsNotFoundError(f"could not download {info.name} from {info.url}: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        reason = getattr(e, "reason", e)
        raise WeightsNotFoundError(
            f"cannot download {info.name}: this machine looks offline ({reason}); on a connected machine "
            f"fetch {info.url}, then copy {info.filename} into a folder named by $REID_WEIGHTS_DIR (or "
            f"{cache_dir() / 'weights'}), or pass the file's path; REID_OFFLINE=1 skips download attempts"
        ) from e
    except OSError as e:
        raise WeightsNotFoundError(f"could not download {info.name} from {info.url}: {e}") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def resolve_weights(name: str, what: str = "weights") -> Path:
    """Resolve ``name`` (a path or a registered name) to a local file, downloading if allowed.

    Args:
        name: A file path, a file name in a weights folder, or a registered name.
        what: Word used in error messages ("detector weights", ...).

    Returns:
        Path to an existing local file.

    Raises:
        WeightsNotFoundError: The file is nowhere local and cannot be downloaded.
    """
    local = find_local(name)
    if local is not None:
        return local
    info = KNOWN_WEIGHTS.get(name)
    where = ", ".join(str(d) for d in weights_dirs())
    if info is None or not info.url:
        raise WeightsNotFoundError(
            f"{what} {name!r} not found: not a file, and not in the weights folders ({where}); "
            "pass a local file path or put the file in $REID_WEIGHTS_DIR"
        )
    if is_offline():
        raise WeightsNotFoundError(
            f"{what} {name!r} is not on this machine and downloads are off (offline); copy "
            f"{info.filename} into $REID_WEIGHTS_DIR (searched: {where}) or pass its path"
        )
    dest = cache_dir() / "weights" / info.filename
    _download(info, dest)
    return dest
