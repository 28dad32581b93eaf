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
from typing import Any

from csip_reid.core.errors import WeightsNotFoundError

_TRUE = {"1", "true", "yes", "on"}


#: Licences that let a product ship the weights without copyleft or research-only terms.
PERMISSIVE_LICENCES = frozenset({"Apache-2.0", "MIT", "BSD-3-Clause", "BSD-2-Clause"})


@dataclass(frozen=True)
class WeightsInfo:
    """A named, downloadable weights file, with the facts a user needs before shipping it.

    Attributes:
        name: The name users type (``osnet_x0_25_msmt17``).
        filename: File name on disk (``osnet_x0_25_msmt17.onnx``).
        url: Download address, or ``""`` when it must be supplied by hand.
        sha256: Expected SHA-256 of the file, or ``""`` to skip the check.
        description: One line for ``reid weights``.
        licence: Licence of the weights (SPDX id such as ``Apache-2.0``, or ``research-only``).
        training_data: What the weights were trained on (a dataset's terms can restrict their use).
        commercial_use: Whether the licence and training data allow use in a commercial product
            (copyleft licences such as AGPL-3.0 do, with their obligations).
        task: ``reid``, ``detector`` or ``pose``.
        preprocess: Crop preprocessing of a ReID model (the fields of
            :class:`~csip_reid.core.embedder.CropPreprocess`), so a name resolves to weights *and*
            the input the model expects; None for the default (RGB/255, ImageNet mean/std).
        companions: Files that must sit beside this one (the ``.bin`` of an OpenVINO ``.xml``).
    """

    name: str
    filename: str
    url: str = ""
    sha256: str = ""
    description: str = ""
    licence: str = ""
    training_data: str = ""
    commercial_use: bool = False
    task: str = ""
    preprocess: dict[str, Any] | None = None
    companions: tuple[WeightsInfo, ...] = ()

    @property
    def permissive(self) -> bool:
        """A permissive licence and training data that allow commercial use."""
        return self.licence in PERMISSIVE_LICENCES and self.commercial_use


KNOWN_WEIGHTS: dict[str, WeightsInfo] = {}


def register_weights(info: WeightsInfo) -> WeightsInfo:
    """Add ``info`` to the table of named weights (by name and by file name)."""
    KNOWN_WEIGHTS[info.name] = info
    KNOWN_WEIGHTS[info.filename] = info
    return info


def registered_weights() -> list[WeightsInfo]:
    """Every registered weights entry once, in registration order."""
    return list({id(i): i for i in KNOWN_WEIGHTS.values()}.values())


_GH = "https://github.com/"
_MSMT = "MSMT17 (research-only dataset: no commercial use of models trained on it)"
_COCO = "COCO 2017 (person class used)"
#: Intel IR models: the model takes BGR 0-255, mean/std are inside it (its conversion parameters).
_IR_BGR = {"height": 256, "width": 128, "rgb": False, "scale": 1.0, "mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}
_OMZ_SRC = _GH + "yas-sim/object-tracking-line-crossing-area-intrusion/raw/{commit}/intel/{name}/FP16/{name}{ext}"
_OMZ = {  # name: (commit of the source, xml sha256, bin sha256, what Intel published)
    "person-reidentification-retail-0277": (
        "798e80bd3184f97da5891a805f79198b5bc6d279",
        "82039b1bb986231c50345550e59def94e63579998e9cddbd1a312f293eb87729",
        "6bb69e09d07733cc3896b29081d2627f92db7b9aacd50f1a8c3df491cb10f1b7", "Market-1501 R1 96.2 / mAP 87.7"),
    "person-reidentification-retail-0286": (
        "c3e57ed790af43bbfd822046ab82054a28ea996d",
        "cc547e622d8aeabf97938213f68171bf59ac7d01c910ceadfea984aa96e5d1b5",
        "d06beb9e2b2661d42b233f64ef623f3518fc46dc11f6b7dd53cda8962d9d1bd9", "Market-1501 R1 94.8 / mAP 83.7"),
    "person-reidentification-retail-0288": (
        "c3e57ed790af43bbfd822046ab82054a28ea996d",
        "0d5021c772e603dce69d9ef2e326ecf0a43234cc8b4c5bb5e8aa566f090bdb51",
        "08e24c2f1dd976ff8e1f667b93db2950ac8db8da09e163e1ca6463b82d1dbc42", "the smallest of the three"),
}
_MP_POSE = "https://cdn.jsdelivr.net/npm/@mediapipe/pose@0.5.1675469404/"
_BLAZEPOSE_DATA = "Google's in-house pose data (BlazePose GHUM 3D model card)"

for _name, _info in {
    "osnet_x0_25_msmt17": ("osnet_x0_25_msmt17.onnx",
                           _GH + "Smorodov/Multitarget-tracker/raw/master/data/reid/osnet_x0_25_msmt17.onnx",
                           "bb2267b23a64675f67bffc3177b7319e3a08de56041d153562c0206699634bce",
                           "OSNet x0.25 (torchreid), ONNX, 512-d, batch 1", "research-only", _MSMT, False, "reid"),
    "osnet_x0_5_msmt17": ("osnet_x0_5_msmt17.onnx",
                          _GH + "GrepCut/OpenClipper/raw/70342863187bee4c3957fa3754d18f8c5f33d17c/"
                          "public/models/osnet/osnet_x0_5_msmt17.onnx",
                          "8a228689f8a2539a4f60c40eb006cde5f4d022875a4c1bc5432824539873f7c5",
                          "OSNet x0.5 (torchreid, MSMT17 combineall), ONNX, 512-d", "research-only", _MSMT, False,
                          "reid"),
    "yolox_nano": ("yolox_nano.onnx", _GH + "Kazuhito00/YOLOX-ONNX-TFLite-Sample/raw/main/model/yolox_nano.onnx",
                   "695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14",
                   "YOLOX-Nano (Megvii) ONNX person detector, 416x416", "Apache-2.0", _COCO, True, "detector"),
    "yolov8n_int8": ("yolov8n_integer_quant.tflite",
                     _GH + "LightsByDennis/Airsoft-player-tracking-project/raw/593a4c5d8e66aceccd0b8912eee8a8ce3b9cadf2/"
                     "yolov8n_saved_model/yolov8n_integer_quant.tflite",
                     "91136908d2f2d2e6f664858a8257357b0eff3a68c70dc7ba859a0be84c34210c",
                     "Ultralytics YOLOv8n, int8 TFLite (export 8.2.8), 640x640", "AGPL-3.0", _COCO, True,
                     "detector"),
    "movenet_lightning": ("movenet_singlepose_lightning_int8_4.tflite",
                          _GH + "Kazuhito00/MoveNet-Python-Example/raw/main/tflite/"
                          "lite-model_movenet_singlepose_lightning_tflite_int8_4.tflite",
                          "cd7cc22fa946e5d146a7b98d496853e1923e22828d3972d579973f27f91bb105",
                          "Google MoveNet SinglePose Lightning v4 (int8 TFLite), COCO-17 keypoints", "Apache-2.0",
                          "COCO 2017 + Google's Active dataset", True, "pose"),
    "blazepose_full": ("pose_landmark_full.tflite", _MP_POSE + "pose_landmark_full.tflite",
                       "e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f",
                       "Google BlazePose GHUM 3D landmarks, full (33 keypoints + 3-D world)", "Apache-2.0",
                       _BLAZEPOSE_DATA, True, "pose"),
    "blazepose_heavy": ("pose_landmark_heavy.tflite", _MP_POSE + "pose_landmark_heavy.tflite",
                        "59e42d71bcd44cbdbabc419f0ff76686595fd265419566bd4009ef703ea8e1fe",
                        "Google BlazePose GHUM 3D landmarks, heavy (33 keypoints + 3-D world)", "Apache-2.0",
                        _BLAZEPOSE_DATA, True, "pose"),
    "blazepose_detector": ("pose_detection.tflite", "",  # packed inside @mediapipe/pose's assets file
                           "a63c614bef30d35947f13be361820b1e4e3bec9cfeebf4d11216a18373108e85",
                           "Google BlazePose person/ROI detector, 224x224 (bytes 0-2962288 of "
                           "pose_solution_packed_assets.data in @mediapipe/pose 0.5.1675469404)", "Apache-2.0",
                           _BLAZEPOSE_DATA, True, "pose"),
}.items():
    _file, _url, _sha, _desc, _lic, _data, _com, _task = _info
    register_weights(WeightsInfo(_name, _file, _url, _sha, _desc, _lic, _data, _com, _task))
for _name, (_commit, _xml, _bin, _published) in _OMZ.items():
    register_weights(WeightsInfo(
        _name, f"{_name}.xml", _OMZ_SRC.format(commit=_commit, name=_name, ext=".xml"), _xml,
        f"Intel Open Model Zoo person ReID, OpenVINO IR FP16, 256-d ({_published})", "Apache-2.0",
        "Intel's person ReID training set (not published; Open Model Zoo model card)", True, "reid", _IR_BGR,
        (WeightsInfo(f"{_name}.bin", f"{_name}.bin", _OMZ_SRC.format(commit=_commit, name=_name, ext=".bin"),
                     _bin),)))


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
    for part in (info, *info.companions):
        if not (dest.parent / part.filename).is_file():
            _download(part, dest.parent / part.filename)
    return dest


def weights_rows(permissive: bool = False, licence: str | None = None, task: str | None = None) -> list[dict[str, Any]]:
    """The registered weights as rows for ``reid weights``, filtered.

    Args:
        permissive: Only weights under a permissive licence whose training data allow commercial use.
        licence: Only weights under this licence (case-insensitive, e.g. ``apache-2.0``).
        task: Only weights of this task (``reid``, ``detector``, ``pose``).

    Returns:
        One dict per entry: name, file, task, licence, permissive, commercial_use, training_data,
        description, sha256, url, companions, local (path or None) and status (``present``,
        ``download`` on first use, or ``missing``: absent and offline or no address).

    Raises:
        ValueError: ``licence`` or ``task`` names none of the registered entries.
    """
    infos = registered_weights()
    for value, field_name in ((licence, "licence"), (task, "task")):
        known = sorted({getattr(i, field_name) for i in infos if getattr(i, field_name)}, key=str.lower)
        if value is not None and value.lower() not in {k.lower() for k in known}:
            raise ValueError(f"no weights with {field_name} {value!r}; known: {', '.join(known)}")
    rows = []
    for info in infos:
        if (permissive and not info.permissive) or (licence and info.licence.lower() != licence.lower()) \
                or (task and info.task.lower() != task.lower()):
            continue
        local = find_local(info.name)
        status = "present" if local else ("download" if info.url and not is_offline() else "missing")
        rows.append({"name": info.name, "file": info.filename, "task": info.task, "licence": info.licence,
                     "permissive": info.permissive, "commercial_use": info.commercial_use,
                     "training_data": info.training_data, "description": info.description,
                     "sha256": info.sha256, "url": info.url, "companions": [c.filename for c in info.companions],
                     "local": str(local) if local else None, "status": status})
    return rows
