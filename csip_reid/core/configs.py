"""The YAML configs shipped inside the package, found by name or by path.

One copy lives in ``csip_reid/configs/`` (package data); the repository's ``configs/`` folder is a
link to it, so ``--config configs/csip_mars.yaml`` and ``--config csip_mars`` read the same file.
"""

from __future__ import annotations

from pathlib import Path

from csip_reid.core.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def shipped_configs(prefix: str = "") -> list[str]:
    """Names (file stems) of the shipped configs starting with ``prefix``."""
    return sorted(p.stem for p in CONFIG_DIR.glob(f"{prefix}*.yaml"))


def config_path(path_or_name: str | Path, prefix: str = "") -> Path:
    """The YAML file for a path, or for the name of a shipped config (``csip_tiny``, ``pipeline``).

    Args:
        path_or_name: A file path, or a shipped config's name with or without ``.yaml``.
        prefix: Only shipped configs whose name starts with this count (``csip_`` for models).

    Raises:
        ConfigError: Neither an existing file nor a shipped config (the message lists the names).
    """
    p = Path(path_or_name).expanduser()
    if p.is_file():
        return p
    names = shipped_configs(prefix)
    if p.parent == Path(".") and p.suffix in ("", ".yaml", ".yml") and p.stem in names:
        return CONFIG_DIR / f"{p.stem}.yaml"
    raise ConfigError(
        f"config {str(path_or_name)!r} not found: not a file and not a shipped config ({', '.join(names)})"
    )
