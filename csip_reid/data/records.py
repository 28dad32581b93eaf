"""Dataset records: one labelled image sequence (a dataset tracklet), and a train/query/gallery split of them.

Every dataset reader (``csip_reid.data.datasets``) returns a :class:`VideoReIDDataset` whose
splits are lists of :class:`SequenceRecord`. Records hold file paths only; pixels and skeletons
are read by the loaders (``csip_reid.data.loaders``) or by ``evaluate_embedder``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass
class SequenceRecord:
    """One tracklet on disk.

    Attributes:
        frames: Frame image paths in temporal order.
        pid: Person id. Train records carry ids relabelled to ``0..num_train_pids-1``; query and
            gallery records carry the dataset's own ids (``-1`` = junk, ``0`` = MARS distractor).
        camid: 0-based camera index.
        skeletons: One skeleton JSON path per frame (a path whose file is absent means a missing
            skeleton for that frame), or ``None`` when the tracklet has no skeletons at all.
        name: Short unique name (e.g. ``0001C1T0001``) for logs and reports.
    """

    frames: list[str]
    pid: int
    camid: int
    skeletons: list[str] | None
    name: str

    def __post_init__(self) -> None:
        if self.skeletons is not None and len(self.skeletons) != len(self.frames):
            raise ValueError(
                f"tracklet {self.name}: {len(self.frames)} frames but {len(self.skeletons)} skeleton paths"
            )

    def __len__(self) -> int:
        return len(self.frames)


def _split_stats(records: Sequence[SequenceRecord]) -> tuple[int, int, int, int, int]:
    pids = {r.pid for r in records}
    cams = {r.camid for r in records}
    frames = sum(len(r) for r in records)
    with_skel = sum(r.skeletons is not None for r in records)
    return len(pids), len(records), frames, len(cams), with_skel


@dataclass
class VideoReIDDataset:
    """A video person-ReID dataset split into train, query and gallery tracklets.

    Attributes:
        name: Dataset name (``mars``, ``minimars``, ...).
        train: Training tracklets, pids relabelled to ``0..num_train_pids-1``.
        query: Query tracklets.
        gallery: Gallery tracklets.
        num_train_pids: Number of training identities (the classifier size).
        num_cameras: Number of cameras (camids lie in ``0..num_cameras-1``).
        skeleton_format: Format of the skeleton JSON files (e.g. ``h36m17-3d``), ``None`` if none.
    """

    name: str
    train: list[SequenceRecord]
    query: list[SequenceRecord]
    gallery: list[SequenceRecord]
    num_train_pids: int
    num_cameras: int
    skeleton_format: str | None = None

    def summary(self) -> str:
        """A fixed-width table of ids, tracklets, frames, cameras and skeleton coverage per split."""
        lines = [
            f"dataset {self.name}: {self.num_train_pids} train ids, {self.num_cameras} cameras, "
            f"skeletons: {self.skeleton_format or 'none'}",
            "  subset   |   ids | tracklets |    frames | cams | with skeletons",
            "  ---------+-------+-----------+-----------+------+---------------",
        ]
        for split in ("train", "query", "gallery"):
            recs = getattr(self, split)
            n_ids, n_trk, n_frm, n_cam, n_skel = _split_stats(recs)
            lines.append(f"  {split:<8} | {n_ids:5d} | {n_trk:9d} | {n_frm:9d} | {n_cam:4d} | {n_skel:14d}")
        return "\n".join(lines)
