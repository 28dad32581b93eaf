"""mini-MARS: 64 real MARS tracklets of 16 identities, described by a ``labels.csv``.

Layout (``$REID_TEST_DATA/reid_tracklets/mini_mars``)::

    <root>/labels.csv    path, person_id, camera, tracklet, split, frame_index_in_tracklet, ...
    <root>/bbox_test/<pid4>/<pid4>C<cam>T<tracklet4>F<frame3>.jpg

One row per frame. Rows sharing ``tracklet`` form one tracklet, ordered by
``frame_index_in_tracklet``; ``camera`` is 1-based; ``split`` is ``train``, ``query`` or ``gallery``.

``mini_mars_full`` has a ``train`` split of other people (``bbox_train/``): the dataset's train
records are those, and training never sees a test identity. ``mini_mars`` has no ``train`` rows;
then train holds the query and gallery tracklets (pids relabelled 0..15), for smoke training only,
since it overlaps the evaluation splits.
"""

from __future__ import annotations

import csv
from collections import defaultdict

from csip_reid.core.errors import DatasetError
from csip_reid.data.datasets.base import (
    DATASETS,
    SkeletonLocator,
    dataset_root,
    default_sources,
    make_dataset,
    require_file,
)
from csip_reid.data.records import SequenceRecord, VideoReIDDataset

_COLUMNS = {"path", "person_id", "camera", "tracklet", "split", "frame_index_in_tracklet"}


@DATASETS.register("minimars", help="mini-MARS test material (labels.csv layout)")
def build_minimars(root: str | None, skeletons: str = "auto") -> VideoReIDDataset:
    """Read mini-MARS.

    Args:
        root: Folder holding ``labels.csv``.
        skeletons: ``auto``, ``none`` or a skeleton folder name under the root.
    """
    base = dataset_root(root, "minimars")
    labels = require_file(base / "labels.csv", "mini-MARS labels")
    with open(labels, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = _COLUMNS - set(reader.fieldnames or [])
        if missing:
            raise DatasetError(f"{labels} lacks columns {sorted(missing)}")
        rows = list(reader)

    groups: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        groups[row["tracklet"]].append(row)
    locator = SkeletonLocator(base, default_sources(skeletons))
    splits: dict[str, list[SequenceRecord]] = {"train": [], "query": [], "gallery": []}
    for name, members in groups.items():
        members.sort(key=lambda r: int(r["frame_index_in_tracklet"]))
        head = members[0]
        if {(r["person_id"], r["camera"], r["split"]) for r in members} != {
            (head["person_id"], head["camera"], head["split"])
        }:
            raise DatasetError(f"{labels}: tracklet {name} mixes persons, cameras or splits")
        if head["split"] not in splits:
            raise DatasetError(f"{labels}: tracklet {name} has split {head['split']!r}, "
                               "expected train, query or gallery")
        frames = [str(base / r["path"]) for r in members]
        rec = SequenceRecord(frames, int(head["person_id"]), int(head["camera"]) - 1, locator.find(frames), name)
        splits[head["split"]].append(rec)
    query, gallery = splits["query"], splits["gallery"]
    train = splits["train"] or query + gallery
    return make_dataset("minimars", train, query, gallery, locator)
