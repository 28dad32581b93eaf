"""Shared pieces of the dataset readers: the registry, path checks, relabelling, skeleton lookup."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from csip_reid.core.errors import DatasetError
from csip_reid.core.registry import Registry
from csip_reid.data.records import SequenceRecord, VideoReIDDataset
from csip_reid.data.skeleton_io import HMR_FORMAT, read_skeleton_json

#: Dataset readers: ``factory(root, **options) -> VideoReIDDataset``.
DATASETS: Registry[VideoReIDDataset] = Registry("dataset")

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a folder, else a :class:`DatasetError` naming the expected folder."""
    if not path.is_dir():
        raise DatasetError(f"{what} not found: expected folder {path}")
    return path


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else a :class:`DatasetError` naming the expected file."""
    if not path.is_file():
        raise DatasetError(f"{what} not found: expected file {path}")
    return path


def dataset_root(root: str | os.PathLike[str] | None, name: str) -> Path:
    """The dataset root as a Path; a missing root is a :class:`DatasetError`."""
    if root is None or str(root) == "":
        raise DatasetError(f"dataset {name} needs a root folder")
    return require_dir(Path(root).expanduser(), f"{name} dataset root")


def natural_key(s: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders embedded numbers numerically (``f2`` before ``f10``)."""
    return tuple((0, int(t)) if t.isdigit() else (1, t) for t in re.split(r"(\d+)", s) if t)


def list_images(folder: Path) -> list[str]:
    """Image files directly in ``folder``, in natural order, as strings."""
    names = [n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTS)]
    return [str(folder / n) for n in sorted(names, key=natural_key)]


def digits(name: str) -> int:
    """The number in a folder name such as ``person_0042`` or ``person042``."""
    m = re.findall(r"\d+", name)
    if not m:
        raise DatasetError(f"cannot read a person number from folder name {name!r}")
    return int(m[-1])


def relabel(records: Iterable[SequenceRecord]) -> tuple[list[SequenceRecord], int]:
    """Map the records' pids to ``0..N-1`` in increasing pid order."""
    records = list(records)
    pid2label = {pid: i for i, pid in enumerate(sorted({r.pid for r in records}))}
    return [replace(r, pid=pid2label[r.pid]) for r in records], len(pid2label)


@dataclass(frozen=True)
class SkeletonSource:
    """Where skeleton JSONs of some frames live: their image folder with a prefix swapped.

    The skeleton of ``<root>/<from_prefix><rest>/<stem>.<ext>`` is
    ``<root>/<to_prefix><rest>/<stem>.json``.

    Attributes:
        from_prefix: Leading part of the frame folder (relative to the root) that is replaced.
        to_prefix: What replaces it (``""`` with an empty ``from_prefix``: next to the frames).
        fmt: Format of these files, or ``None`` to read it from the files (``format`` key).
    """

    from_prefix: str
    to_prefix: str
    fmt: str | None = None


def default_sources(skeletons: str) -> list[SkeletonSource]:
    """Sources for a ``skeletons`` option: ``auto``, ``none``, a folder name under the root or an absolute folder.

    ``auto`` looks in ``skeleton_3d_hmr2.0/`` (CSIP-ReID's HMR2.0 files, format ``h36m17-3d``)
    and then in ``skeletons/`` (written by ``reid skeletons``; format from the files), both
    mirroring the image paths.
    """
    if skeletons == "none":
        return []
    if skeletons == "auto":
        return [SkeletonSource("", "skeleton_3d_hmr2.0/", HMR_FORMAT), SkeletonSource("", "skeletons/")]
    if os.path.isabs(skeletons):  # a folder outside the root (e.g. `reid skeletons --out` for a read-only dataset)
        return [SkeletonSource("", skeletons.rstrip("/") + "/")]
    return [SkeletonSource("", skeletons.strip("/") + "/")]


class SkeletonLocator:
    """Finds each tracklet's per-frame skeleton files and the dataset's skeleton format.

    Folder listings are cached, so a dataset costs one listing per frame folder.

    Args:
        root: Dataset root.
        sources: Candidate sources, tried in order for each tracklet; the first one holding at
            least one of the tracklet's skeletons wins.
    """

    def __init__(self, root: Path, sources: Sequence[SkeletonSource]) -> None:
        self.root = str(root)
        self.sources = [
            s for s in sources if not s.to_prefix or os.path.isdir(os.path.join(self.root, s.to_prefix))
        ]
        self._listings: dict[str, frozenset[str]] = {}
        self._rel: dict[str, str] = {}
        self._used: dict[SkeletonSource, str] = {}

    def _listing(self, folder: str) -> frozenset[str]:
        if folder not in self._listings:
            try:
                self._listings[folder] = frozenset(os.listdir(folder))
            except OSError:
                self._listings[folder] = frozenset()
        return self._listings[folder]

    def _skeleton_dir(self, src: SkeletonSource, frame_dir: str) -> str | None:
        if frame_dir not in self._rel:
            self._rel[frame_dir] = os.path.relpath(frame_dir, self.root).replace(os.sep, "/")
        rel = self._rel[frame_dir]
        if not rel.startswith(src.from_prefix):
            return None
        return os.path.join(self.root, src.to_prefix + rel[len(src.from_prefix) :])

    def find(self, frames: Sequence[str]) -> list[str] | None:
        """Skeleton paths for ``frames`` (one per frame), or ``None`` if no source has any."""
        for src in self.sources:
            paths, first_hit = [], None
            for f in frames:
                d, name = os.path.split(f)
                sd = self._skeleton_dir(src, d)
                if sd is None:
                    break
                js = os.path.splitext(name)[0] + ".json"
                paths.append(os.path.join(sd, js))
                if first_hit is None and js in self._listing(sd):
                    first_hit = paths[-1]
            else:
                if first_hit is not None:
                    self._used.setdefault(src, first_hit)
                    return paths
        return None

    def skeleton_format(self) -> str | None:
        """Format of the skeletons found so far (``None`` if none); mixed formats are an error."""
        formats = set()
        for src, example in self._used.items():
            fmt = src.fmt or read_skeleton_json(example)[1] or HMR_FORMAT
            formats.add(fmt)
        if len(formats) > 1:
            raise DatasetError(f"skeletons of mixed formats found under {self.root}: {', '.join(sorted(formats))}")
        return formats.pop() if formats else None


def make_dataset(
    name: str,
    train: Sequence[SequenceRecord],
    query: Sequence[SequenceRecord],
    gallery: Sequence[SequenceRecord],
    locator: SkeletonLocator | None = None,
    skeleton_format: str | None = None,
) -> VideoReIDDataset:
    """Relabel the train pids, count cameras and settle the skeleton format.

    Args:
        name: Dataset name.
        train: Training records with their original pids.
        query: Query records.
        gallery: Gallery records.
        locator: The locator that filled the records' skeleton paths.
        skeleton_format: Explicit format (e.g. from a manifest); wins over the locator's.
    """
    train, num_pids = relabel(train)
    cams = {r.camid for split in (train, query, gallery) for r in split}
    if cams and min(cams) < 0:
        raise DatasetError(f"dataset {name}: negative camera index {min(cams)}")
    fmt = skeleton_format or (locator.skeleton_format() if locator else None)
    return VideoReIDDataset(
        name=name,
        train=train,
        query=list(query),
        gallery=list(gallery),
        num_train_pids=num_pids,
        num_cameras=max(cams) + 1 if cams else 0,
        skeleton_format=fmt,
    )
