"""Import ultralytics with safe defaults for a library that may run offline.

Import this module (or call :func:`import_ultralytics`) before anything imports ``ultralytics``.
It sets, only where the user has not set them:

* ``YOLO_AUTOINSTALL=false``: ultralytics never runs ``pip`` at run time.
* ``YOLO_OFFLINE=1`` when csip-reid is offline (``REID_OFFLINE``/``HF_HUB_OFFLINE``): no
  connectivity check at import, and a missing hub download fails at once.
* ``YOLO_CONFIG_DIR`` to ``<csip-reid cache>/ultralytics`` when ultralytics' own settings folder
  (``$XDG_CONFIG_HOME/Ultralytics`` or ``~/.config/Ultralytics``) is not writable (containers,
  read-only home).

ultralytics also sets ``OMP_NUM_THREADS=1`` at import. If torch is imported after that, torch runs
single-threaded for the whole process; so torch is imported first here and the variable is removed
again if ultralytics was the one who set it. Each new ultralytics predictor further calls
``torch.set_num_threads(cpu_count - 1)``; wrap predictor calls in :func:`keep_torch_threads`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

from csip_reid.core.weights import cache_dir, is_offline


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _default_config_writable() -> bool:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    target = Path(base) / "Ultralytics"
    probe = target if target.exists() else _nearest_existing(target)
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def set_env_defaults() -> None:
    """Set the ultralytics environment defaults described in the module docstring."""
    os.environ.setdefault("YOLO_AUTOINSTALL", "false")
    if is_offline():
        os.environ.setdefault("YOLO_OFFLINE", "1")
    if "YOLO_CONFIG_DIR" not in os.environ and not _default_config_writable():
        d = cache_dir() / "ultralytics"
        d.mkdir(parents=True, exist_ok=True)
        os.environ["YOLO_CONFIG_DIR"] = str(d)


def import_ultralytics() -> ModuleType:
    """Import and return the ``ultralytics`` package with the defaults applied."""
    import sys

    if "ultralytics" in sys.modules:
        return sys.modules["ultralytics"]
    set_env_defaults()
    import torch

    torch.get_num_threads()  # fixes torch's pool size before ultralytics touches OMP_NUM_THREADS
    user_omp = os.environ.get("OMP_NUM_THREADS")
    import ultralytics

    if user_omp is None and os.environ.get("OMP_NUM_THREADS") == "1":
        del os.environ["OMP_NUM_THREADS"]
    return ultralytics


@contextmanager
def keep_torch_threads() -> Iterator[int]:
    """Restore ``torch.get_num_threads()`` on exit (ultralytics predictors change it)."""
    import torch

    n = torch.get_num_threads()
    try:
        yield n
    finally:
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


set_env_defaults()
