"""Dataset readers, one module per dataset, registered in :data:`DATASETS`.

``build_dataset("mars", "/data/mars")`` returns a :class:`~csip_reid.data.records.VideoReIDDataset`.
Layouts and protocols are described in each module and in ``docs/datasets.md``.
"""

from __future__ import annotations

import os
from typing import Any

from csip_reid.data.datasets import custom, ilidsvid, lsvid, mars, minimars, prid  # noqa: F401  (registration)
from csip_reid.data.datasets.base import DATASETS
from csip_reid.data.records import VideoReIDDataset


def build_dataset(name: str, root: str | os.PathLike[str], **options: Any) -> VideoReIDDataset:
    """Read dataset ``name`` from ``root``.

    Args:
        name: One of :func:`list_datasets` (``mars``, ``lsvid``, ``ilidsvid``, ``prid``, ``custom``,
            ``minimars``).
        root: The dataset folder.
        **options: Reader options, e.g. ``split=3`` (iLIDS-VID, PRID), ``skeletons="none"``,
            ``train_piece_len=48`` (LS-VID).

    Raises:
        ConfigError: Unknown dataset name.
        DatasetError: Missing root or files, or an unexpected layout.
    """
    return DATASETS.entry(name).factory(os.fspath(root), **options)


def list_datasets() -> list[str]:
    """Names accepted by :func:`build_dataset`."""
    return DATASETS.names()


__all__ = ["DATASETS", "build_dataset", "list_datasets"]
