"""Per-frame skeleton JSON files in the CSIP-ReID layout.

One JSON file per frame::

    {"keypoints": [[x, y, z], ... 17 rows ...], "format": "h36m17-3d"}

* ``keypoints`` holds 17 joints in Human3.6M-17 order (0 = pelvis, the root).
* ``format`` is optional. CSIP-ReID's released HMR2.0 files have none; a file without it is read as
  ``default_format`` (the dataset's format, ``h36m17-3d`` for CSIP's files).
* A frame whose keypoints are all zero is a *missing* frame (CSIP's convention for frames where
  HMR2.0 found nobody).
* Missing joints: :func:`write_skeleton_json` writes them as ``[0, 0, 0]`` (zero coordinates and,
  in the ``-conf`` formats, confidence 0) and lists their indices under ``"missing"``, so CSIP-ReID's
  own loader (``np.array`` of the rows, which cannot hold ``null``) reads every file, and this reader
  restores the mask. Reading also takes a joint as missing when it is ``null`` or has a
  ``null``/``NaN`` value (files of csip-reid 0.x), or, in a ``-conf`` format, has confidence 0.

In memory a skeleton frame is a ``(17, 3)`` float32 array with NaN rows for missing joints.
:func:`load_skeleton_sequence` turns a tracklet's files into what the models eat: root-centred
coordinates with zeros at missing joints plus a boolean presence mask.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from csip_reid.core.errors import DatasetError
from csip_reid.core.skeleton import H36M_3D

NUM_JOINTS = 17
#: Format of CSIP-ReID's HMR2.0 skeletons (root-centred metres, no scale normalisation).
HMR_FORMAT = H36M_3D


def coordinate_channels(fmt: str | None) -> int:
    """How many leading channels of a joint are coordinates in format ``fmt``.

    Formats whose name ends in ``-conf`` (e.g. ``h36m17-2d-conf``) store ``x, y, confidence``: two
    coordinates. Every other format (``h36m17-3d``, or unknown) stores three coordinates.
    """
    return 2 if fmt and fmt.endswith("-conf") else 3


def _parse_keypoints(raw: object, path: str | os.PathLike[str]) -> np.ndarray:
    if not isinstance(raw, list) or len(raw) != NUM_JOINTS:
        n = len(raw) if isinstance(raw, list) else type(raw).__name__
        raise DatasetError(f"skeleton file {path}: 'keypoints' must be {NUM_JOINTS}x3, got {n} rows")
    out = np.full((NUM_JOINTS, 3), np.nan, np.float32)
    for j, row in enumerate(raw):
        if row is None:
            continue
        if not isinstance(row, list) or len(row) != 3:
            raise DatasetError(f"skeleton file {path}: joint {j} must have 3 values, got {row!r}")
        if any(v is None for v in row):
            continue
        try:
            out[j] = [float(v) for v in row]
        except (TypeError, ValueError):
            raise DatasetError(f"skeleton file {path}: joint {j} has non-numeric values {row!r}") from None
    if np.all(np.nan_to_num(out) == 0.0):
        out[:] = np.nan
    return out


def read_skeleton_json(path: str | os.PathLike[str]) -> tuple[np.ndarray, str | None]:
    """Read one skeleton file.

    Args:
        path: The JSON file.

    Returns:
        ``(keypoints, format)``: a ``(17, 3)`` float32 array with NaN rows for missing joints (all
        NaN for an all-zero frame) and the file's ``format`` value, or ``None`` when it has none.

    Raises:
        DatasetError: The file cannot be read or does not hold 17x3 keypoints.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise DatasetError(f"cannot read skeleton file {path}: {e}") from e
    if not isinstance(data, dict) or "keypoints" not in data:
        raise DatasetError(f"skeleton file {path} has no 'keypoints' key")
    fmt = data.get("format")
    kp = _parse_keypoints(data["keypoints"], path)
    missing = data.get("missing") or []
    if not isinstance(missing, list) or not all(isinstance(j, int) and 0 <= j < NUM_JOINTS for j in missing):
        raise DatasetError(f"skeleton file {path}: 'missing' must list joint indices 0..{NUM_JOINTS - 1}")
    kp[missing] = np.nan
    if fmt is not None and coordinate_channels(str(fmt)) == 2:
        kp[kp[:, 2] <= 0] = np.nan  # confidence 0: not detected
    return kp, (str(fmt) if fmt is not None else None)


def write_skeleton_json(path: str | os.PathLike[str], keypoints: np.ndarray, fmt: str | None = None) -> None:
    """Write one skeleton frame: NaN joints → ``[0, 0, 0]`` listed under ``"missing"``; an all-NaN frame → all zeros.

    Args:
        path: Destination JSON file; parent folders are created.
        keypoints: ``(17, 3)`` array, NaN where a joint is missing.
        fmt: Format name stored under ``"format"`` (omitted when ``None``).
    """
    kp = np.asarray(keypoints, np.float64)
    if kp.shape != (NUM_JOINTS, 3):
        raise ValueError(f"keypoints must be ({NUM_JOINTS}, 3), got {kp.shape}")
    missing = np.isnan(kp).any(axis=1)
    rows = [[0.0, 0.0, 0.0] if m else [float(v) for v in row] for row, m in zip(kp, missing, strict=True)]
    data: dict[str, object] = {"keypoints": rows}
    if missing.any() and not missing.all():
        data["missing"] = [int(j) for j in np.flatnonzero(missing)]
    if fmt is not None:
        data["format"] = fmt
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data), encoding="utf-8")


def root_centre(skeleton: np.ndarray, coord_dims: int = 3) -> np.ndarray:
    """Subtract joint 0 (pelvis) from every joint, per frame, on the coordinate channels.

    Args:
        skeleton: ``(T, 17, C)`` array with NaN rows for missing joints.
        coord_dims: Leading channels that are coordinates (see :func:`coordinate_channels`); the
            rest (e.g. a confidence) are left unchanged.

    Returns:
        A new array. Frames whose root is missing cannot be centred and become all NaN.
    """
    out = np.array(skeleton, np.float32, copy=True)
    root_missing = np.isnan(out[:, 0, :coord_dims]).any(axis=-1)
    out[:, :, :coord_dims] -= out[:, :1, :coord_dims]
    out[root_missing] = np.nan
    return out


def load_skeleton_sequence(
    paths: Sequence[str | None],
    default_format: str | None = HMR_FORMAT,
    centre: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Read a tracklet's skeleton files into model inputs.

    Args:
        paths: One path per frame; ``None`` or a path whose file does not exist is a missing frame.
        default_format: Format assumed for files without a ``format`` key.
        centre: Root-centre each frame on joint 0 (CSIP-ReID's only skeleton preprocessing).

    Returns:
        ``(skeleton, mask)``: ``(T, 17, 3)`` float32 with zeros at missing joints and ``(T, 17)``
        bool, True where the joint is present.
    """
    seq = np.full((len(paths), NUM_JOINTS, 3), np.nan, np.float32)
    fmt = default_format
    for t, p in enumerate(paths):
        if p is None or not os.path.isfile(p):
            continue
        seq[t], file_fmt = read_skeleton_json(p)
        fmt = file_fmt or fmt
    if centre and len(paths):
        seq = root_centre(seq, coordinate_channels(fmt))
    mask = ~np.isnan(seq).any(axis=-1)
    return np.where(mask[..., None], seq, 0.0).astype(np.float32), mask

