"""Evaluate features or a whole embedder on a video ReID dataset (``reid eval``).

:func:`evaluate_features` scores given query/gallery features; :func:`evaluate_embedder` first
embeds every query and gallery tracklet with an :class:`~csip_reid.core.embedder.Embedder`.

Frame sampling of :func:`evaluate_embedder` (``sampling``):

* ``rrs``: ``seq_len`` frames, the first of each of ``seq_len`` equal chunks (CSIP's ``rrs_test``);
* ``even``: ``seq_len`` frames evenly spread over the tracklet;
* ``stride``: every ``stride``-th frame (0, stride, 2*stride, ...);
* ``dense``: all frames in consecutive ``seq_len``-frame clips, one embedding per clip, averaged
  over the clips of a tracklet and L2-normalised (TF-CLIP's reporting protocol);
* ``all``: every frame as one item.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from tqdm import tqdm

from csip_reid.core.embedder import Embedder, l2_normalize
from csip_reid.core.errors import ConfigError, DatasetError, SkeletonFormatError
from csip_reid.data.loaders import read_bgr
from csip_reid.data.records import SequenceRecord, VideoReIDDataset
from csip_reid.data.sampling import TEST_MODES, sample_clips
from csip_reid.data.skeleton_io import HMR_FORMAT, load_skeleton_sequence
from csip_reid.engine.metrics import rank_features

REPORTED_RANKS = (1, 5, 10, 20)


def evaluate_features(
    qf: Any,
    gf: Any,
    q_pids: Any,
    g_pids: Any,
    q_cams: Any,
    g_cams: Any,
    metric: str = "cosine",
    chunk: int = 256,
) -> dict[str, float | int]:
    """Market-1501-protocol scores of query features against gallery features.

    Args:
        qf: ``(Q, D)`` query features (numpy or torch).
        gf: ``(G, D)`` gallery features.
        q_pids: Query person ids.
        g_pids: Gallery person ids (``-1`` = junk).
        q_cams: Query cameras.
        g_cams: Gallery cameras.
        metric: ``cosine`` or ``euclidean``.
        chunk: Queries per distance block.

    Returns:
        ``{"mAP", "r1", "r5", "r10", "r20", "num_valid_queries", "num_skipped_queries"}``.
    """
    res = rank_features(qf, gf, q_pids, g_pids, q_cams, g_cams, metric=metric, max_rank=max(REPORTED_RANKS),
                        chunk=chunk)
    out: dict[str, float | int] = {"mAP": res.mAP}
    out.update({f"r{k}": res.rank(k) for k in REPORTED_RANKS})
    out["num_valid_queries"] = res.num_valid
    out["num_skipped_queries"] = res.num_skipped
    return out


def _skeletons(record: SequenceRecord, idx: np.ndarray, fmt: str | None) -> np.ndarray:
    if record.skeletons is None:
        raise DatasetError(f"tracklet {record.name} has no skeletons, and the embedder needs them")
    skel, mask = load_skeleton_sequence([record.skeletons[i] for i in idx.tolist()], fmt or HMR_FORMAT)
    return np.where(mask[..., None], skel, np.nan).astype(np.float32)


def embed_records(
    embedder: Embedder,
    records: Sequence[SequenceRecord],
    sampling: str = "rrs",
    seq_len: int = 8,
    stride: int = 4,
    batch_size: int = 32,
    progress: bool = True,
    skeleton_format: str | None = None,
    desc: str = "embedding",
) -> np.ndarray:
    """Embed tracklet records into ``(N, embedder.dim)`` L2-normalised float32 features.

    Frames are read as BGR (OpenCV), picked by ``sampling`` (see the module docstring), and
    passed with the record's camera to ``embedder.embed_crops`` ``batch_size`` items at a time.
    Skeletons are read only for embedders with ``needs_skeleton``.
    """
    items = []
    for ri, rec in enumerate(records):
        if not rec.frames:
            raise DatasetError(f"tracklet {rec.name} has no frames")
        items.extend((ri, idx) for idx in sample_clips(sampling, len(rec), seq_len, stride))
    sums = np.zeros((len(records), embedder.dim), np.float64)
    bar = tqdm(total=len(items), desc=desc, unit="clip" if sampling == "dense" else "tracklet",
               disable=not progress, leave=False)
    with ThreadPoolExecutor(max_workers=4) as pool:
        for s in range(0, len(items), batch_size):
            batch = items[s : s + batch_size]
            paths = sorted({records[ri].frames[i] for ri, idx in batch for i in idx.tolist()})
            images = dict(zip(paths, pool.map(read_bgr, paths), strict=True))
            crops = [[images[records[ri].frames[i]] for i in idx.tolist()] for ri, idx in batch]
            cams = [records[ri].camid for ri, _ in batch]
            skels = None
            if embedder.needs_skeleton:
                skels = [_skeletons(records[ri], idx, skeleton_format) for ri, idx in batch]
            emb = np.asarray(embedder.embed_crops(crops, cams, skels), np.float64)
            np.add.at(sums, [ri for ri, _ in batch], emb)
            bar.update(len(batch))
    bar.close()
    return l2_normalize(sums)


def evaluate_embedder(
    embedder: Embedder,
    dataset: VideoReIDDataset,
    sampling: str = "rrs",
    seq_len: int = 8,
    stride: int = 4,
    batch_size: int = 32,
    progress: bool = True,
    metric: str = "cosine",
) -> dict[str, Any]:
    """Embed ``dataset``'s query and gallery tracklets and score them.

    Args:
        embedder: Any registered embedder (``create_embedder("onnx:...")``, ``csip:...``).
        dataset: The dataset; its ``query`` and ``gallery`` splits are used.
        sampling: ``rrs``, ``even``, ``stride``, ``dense`` or ``all`` (module docstring).
        seq_len: Frames per clip for ``rrs``/``even``/``dense``.
        stride: Frame step for ``stride``.
        batch_size: Items per ``embed_crops`` call.
        progress: Show progress bars.
        metric: ``cosine`` or ``euclidean``.

    Returns:
        The :func:`evaluate_features` scores plus ``num_query``, ``num_gallery``, ``sampling`` and
        ``seconds`` (embedding + scoring wall time).
    """
    if sampling not in TEST_MODES:
        raise ConfigError(f"unknown sampling {sampling!r}; choose one of: {', '.join(TEST_MODES)}")
    if not dataset.query or not dataset.gallery:
        raise DatasetError(f"dataset {dataset.name} has no query/gallery split to evaluate on")
    if embedder.needs_skeleton and embedder.skeleton_format and dataset.skeleton_format \
            and embedder.skeleton_format != dataset.skeleton_format:
        raise SkeletonFormatError(f"model trained on {embedder.skeleton_format} skeletons; dataset "
                                  f"{dataset.name} has {dataset.skeleton_format}")
    t0 = time.perf_counter()
    kw = dict(sampling=sampling, seq_len=seq_len, stride=stride, batch_size=batch_size, progress=progress,
              skeleton_format=dataset.skeleton_format)
    qf = embed_records(embedder, dataset.query, desc="query", **kw)
    gf = embed_records(embedder, dataset.gallery, desc="gallery", **kw)
    out: dict[str, Any] = evaluate_features(
        qf, gf,
        [r.pid for r in dataset.query], [r.pid for r in dataset.gallery],
        [r.camid for r in dataset.query], [r.camid for r in dataset.gallery],
        metric=metric,
    )
    out.update(num_query=len(dataset.query), num_gallery=len(dataset.gallery), sampling=sampling,
               seconds=time.perf_counter() - t0)
    return out
