"""Loading the optional mmpose stack without compiled mmcv, and OpenMMLab checkpoints.

The project installs ``mmcv-lite`` (pure Python; ``scripts/install_mmpose.sh``). mmpose imports
``mmcv.ops`` at load time for heads we never build (ED-Pose, DEKR, deformable DETR layers), and
those ops need mmcv's compiled extension. :func:`import_mmpose` therefore registers a stand-in
``mmcv.ops`` module first: any member can be imported, and using one raises ``ImportError``.
"""

from __future__ import annotations

import importlib
import logging
import sys
import types
import warnings
from pathlib import Path
from typing import Any

from csip_reid.core.errors import CheckpointError, ReidError

log = logging.getLogger(__name__)

INSTALL_HINT = "run scripts/install_mmpose.sh (or `make mmpose`) to install the mmpose stack"

# Noise from the OpenMMLab stack that says nothing actionable to a csip-reid user.
_QUIET = (
    r"Fail to import ``MultiScaleDeformableAttention``",  # mmcv-lite, expected
    r"pkg_resources is deprecated",  # mmengine
    r"The metainfo config file .* does not exist",  # mmpose finds it in the wheel instead
    r"`torch\.cuda\.amp\.autocast\(args\.\.\.\)` is deprecated",  # mmpose CSP layers, every call
)


def _missing_op(module: str, name: str) -> type:
    """A placeholder class for ``module.name`` that fails only when instantiated or called."""

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise ImportError(f"{module}.{name} needs mmcv built with its compiled ops (not mmcv-lite)")

    return type(name, (), {"__init__": fail, "__module__": module})


def _ops_stand_in() -> types.ModuleType:
    mod = types.ModuleType("mmcv.ops", "Stand-in for mmcv.ops (compiled ops not installed).")

    def __getattr__(name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return _missing_op("mmcv.ops", name)

    mod.__getattr__ = __getattr__  # type: ignore[method-assign]
    return mod


def install_mmcv_ops_stand_in() -> bool:
    """Register the ``mmcv.ops`` stand-in unless the real compiled ops import.

    Returns:
        True when the stand-in is (now or already) in use.
    """
    current = sys.modules.get("mmcv.ops")
    if current is not None:
        return not hasattr(current, "__file__")
    try:
        importlib.import_module("mmcv.ops")
        return False
    except ImportError:
        sys.modules["mmcv.ops"] = _ops_stand_in()
        return True


def import_mmpose() -> types.ModuleType:
    """Import mmpose (with the ``mmcv.ops`` stand-in when needed).

    Raises:
        ReidError: mmpose, mmengine or mmcv(-lite) is not installed.
    """
    for pattern in _QUIET:
        warnings.filterwarnings("ignore", message=pattern)
    try:
        importlib.import_module("mmcv")
    except ImportError as e:
        raise ReidError(f"RTMPose/3D lifting need mmpose, which is not installed ({e}); {INSTALL_HINT}") from e
    install_mmcv_ops_stand_in()
    try:
        return importlib.import_module("mmpose")
    except ImportError as e:
        raise ReidError(f"cannot import mmpose ({e}); {INSTALL_HINT}") from e


def mmpose_config_dir() -> Path:
    """The ``configs/`` folder shipped inside the mmpose wheel."""
    mmpose = import_mmpose()
    d = Path(mmpose.__file__).parent / ".mim" / "configs"
    if not d.is_dir():
        raise ReidError(f"mmpose at {Path(mmpose.__file__).parent} ships no configs; {INSTALL_HINT}")
    return d


def load_openmmlab_checkpoint(model: Any, path: str | Path) -> dict[str, Any]:
    """Load an OpenMMLab checkpoint into ``model``; returns the checkpoint's ``meta`` dict.

    OpenMMLab checkpoints keep numpy objects in ``meta``, which torch's default
    ``weights_only=True`` loader refuses. They are therefore loaded with ``weights_only=False``,
    which can run code stored in the file: only use checkpoints from a source you trust (the
    official download.openmmlab.com files, or your own).
    """
    import torch

    log.info("loading OpenMMLab checkpoint %s with weights_only=False (trusted source only)", path)
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises many types for corrupt/foreign files
        raise CheckpointError(f"cannot read checkpoint {path}: {e}") from e
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds no state_dict")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing:
        raise CheckpointError(
            f"{path} does not fit the model: {len(missing)} missing keys (e.g. {missing[0]})"
        )
    if unexpected:
        log.warning("%s: %d unexpected keys ignored (e.g. %s)", path, len(unexpected), unexpected[0])
    meta = ckpt.get("meta", {}) if isinstance(ckpt, dict) else {}
    return meta if isinstance(meta, dict) else {}
