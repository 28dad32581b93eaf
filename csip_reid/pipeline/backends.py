"""Every back-end registry, filled: the one place that imports the implementations.

The CLI reads its choices and ``reid backends`` its listing from here. Third-party packages add
back-ends through the ``csip_reid.backends`` entry-point group: each entry point names a module
that registers its factories on import (``@DETECTORS.register("mine")``), and the new names show
up in ``reid backends`` and the CLI's choices like the built-in ones.
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points
from typing import Any

from csip_reid.core.registry import Registry

logger = logging.getLogger(__name__)

#: registry kind -> (module that fills it on import, registry attribute)
_REGISTRIES = {
    "detector": ("csip_reid.pipeline.detect", "DETECTORS"),
    "tracker": ("csip_reid.tracking", "TRACKERS"),
    "pose": ("csip_reid.pipeline.pose", "POSES"),
    "embedder": ("csip_reid.pipeline.embed", "EMBEDDERS"),
    "dataset": ("csip_reid.data.datasets", "DATASETS"),
    "model": ("csip_reid.models", "MODELS"),
}
_plugins_loaded = False


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group="csip_reid.backends"):
        try:
            ep.load()
        except Exception as e:  # a broken plugin must not break the built-in back-ends
            logger.warning("back-end plugin %s (%s) failed to load: %s", ep.name, ep.value, e)


def registry(kind: str) -> Registry[Any]:
    """The filled registry of one kind (``detector``, ``tracker``, ``pose``, ``embedder``, ...)."""
    module, attr = _REGISTRIES[kind]
    reg = getattr(importlib.import_module(module), attr)
    _load_plugins()
    return reg


def names(kind: str) -> list[str]:
    """Registered back-end names of one kind."""
    return registry(kind).names()


def all_registries() -> dict[str, list[str]]:
    """Registered names per registry kind (pose also lists ``none``)."""
    out = {f"{k}s": names(k) for k in _REGISTRIES}
    out["pose"] = ["none", *out.pop("poses")]
    return out


def listing() -> str:
    """The text of ``reid backends``: the spec grammar, then each back-end with its help line."""
    lines = [
        "Back-end specs, the same for every kind:  KIND[:ARG]",
        "  KIND  a name below (case-insensitive)",
        "  ARG   what it loads: a weights name (`reid weights`) or file, a settings YAML (trackers),",
        "        or `random` for untrained weights (tests). Examples: yolox:yolox_nano, bytetrack,",
        "        botsort:my.yaml, movenet, rtmpose-s:random, onnx:osnet_x0_25_msmt17, csip:run/best.pt",
        "",
    ]
    for kind in _REGISTRIES:
        lines.append("pose:" if kind == "pose" else f"{kind}s:")
        if kind == "pose":
            lines.append(f"  {'none':<14} no pose stage")
        lines += [f"  {line}" for line in registry(kind).help_lines()]
        lines.append("")
    return "\n".join(lines).rstrip()
