"""Camera map: gallery camera names → training-camera indices of a CSIP-ReID model (SIE).

A CSIP-ReID model adds a learned camera embedding (SIE) for each *training* camera. Footage from
those same cameras can use it: ``reid index --camera-map FILE`` maps the gallery's camera names
(what ``--camera``/``--camera-from`` give each video) to training-camera indices and sets
:attr:`Tracklet.camera_index`. A camera not in the map, or an index the model does not know, gets
the mean camera embedding (the documented default for unseen cameras). The map is stored with the
gallery's pipeline settings, so ``reid query`` applies the same map to the query clip's camera.

Files (indices are 0-based, as in the training set's ``camid``)::

    # cameras.yaml                      # cameras.csv
    lobby_east: 0                       camera,index
    car_park: 3                         lobby_east,0
                                        car_park,3

A YAML file may also nest the mapping under a ``cameras:`` key.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import yaml

from csip_reid.core.errors import ConfigError


def validate_camera_map(data: Any, source: str = "camera map") -> dict[str, int]:
    """``{name: index}`` with string names and integer indices >= 0; raise :class:`ConfigError` otherwise."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source} must map camera names to training-camera indices, got {type(data).__name__}")
    out: dict[str, int] = {}
    for name, idx in data.items():
        if isinstance(idx, bool) or not isinstance(idx, (int, str)) or not str(idx).strip().lstrip("+").isdigit():
            raise ConfigError(f"{source}: camera {name!r} has index {idx!r}; indices are integers >= 0")
        out[str(name)] = int(idx)
    return out


def load_camera_map(path: str | Path) -> dict[str, int]:
    """Read a YAML (``.yaml``/``.yml``) or CSV camera map (see the module docstring)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read camera map {p}: {e.strerror or e}") from None
    if p.suffix.lower() == ".csv":
        rows = [r for r in csv.reader(text.splitlines()) if r and any(c.strip() for c in r)]
        if rows and not rows[0][-1].strip().lstrip("+").isdigit():
            rows = rows[1:]  # header
        if any(len(r) != 2 for r in rows):
            raise ConfigError(f"camera map {p}: every CSV row must be 'camera,index'")
        data: Any = {r[0].strip(): r[1].strip() for r in rows}
    else:
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"camera map {p} is not valid YAML: {str(e).splitlines()[0]}") from None
        if isinstance(data, dict) and set(data) == {"cameras"}:
            data = data["cameras"]
    out = validate_camera_map(data, f"camera map {p}")
    if not out:
        raise ConfigError(f"camera map {p} is empty")
    return out
