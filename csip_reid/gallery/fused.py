"""Search modes that use the skeleton vector space: ``skeleton`` and ``fused``.

A gallery indexed with ``--embedder csip:CKPT --pose ...`` holds two vector spaces per tracklet:
*appearance* (the embedder's vector, indexed by FAISS) and *skeleton* (the checkpoint's skeleton
encoder, in the ``vectors`` table).

* ``skeleton``: rank every tracklet that has a skeleton vector by cosine similarity of skeleton
  vectors alone. This search is exhaustive, which is cheap at 512-d for the sizes skeleton
  galleries reach (about 10 ms per 100k vectors).
* ``fused``: take a short list from appearance search (``max(10 k, 200)`` candidates), then
  re-rank by ``(1 - w) · s_appearance + w · s_skeleton`` with ``w = --fuse-weight`` (default 0.5).
  Both scores are cosine similarities in [-1, 1], so one weight fits both. A candidate without a
  skeleton vector keeps its appearance score (its skeleton term counts as equal to its
  appearance term), so a missing pose never pushes a good appearance match down.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from csip_reid.core.errors import GalleryError
from csip_reid.gallery.schema import Hit

if TYPE_CHECKING:
    from csip_reid.gallery.store import Gallery

SPACE = "skeleton"


def _hits_for(gallery: Gallery, ids: np.ndarray, scores: np.ndarray) -> list[Hit]:
    """Hit objects for the given tracklet ids, in the given order, with the given scores."""
    hits = []
    for rank, (tid, sc) in enumerate(zip(ids, scores), start=1):
        r = gallery.get_tracklet(int(tid))
        hits.append(Hit(rank=rank, score=float(sc), tracklet_id=r.id, video=r.video, video_name=r.video_name,
                        camera=r.camera, track_id=r.track_id, start_frame=r.start_frame, end_frame=r.end_frame,
                        start_s=r.start_s, end_s=r.end_s, thumbnail=r.thumbnail, start_time=r.start_time,
                        end_time=r.end_time))
    return hits


def search_fused(gallery: Gallery, appearance: np.ndarray, skeleton: np.ndarray, k: int = 10,
                 mode: str = "fused", weight: float = 0.5) -> list[Any]:
    """Rank gallery tracklets for one query by skeleton or fused similarity (see module docstring)."""
    ids, vecs = gallery.vectors(SPACE)
    if not len(ids):
        raise GalleryError(
            f"gallery {gallery.root} has no skeleton vectors: index it with a csip embedder and --pose "
            "to use --mode skeleton or fused"
        )
    q = np.asarray(skeleton, np.float32).reshape(-1)
    q = q / max(float(np.linalg.norm(q)), 1e-12)
    skel_score = dict(zip(ids.tolist(), (vecs @ q).tolist()))
    if mode == "skeleton":
        order = np.argsort(-(vecs @ q), kind="stable")[:k]
        return _hits_for(gallery, ids[order], (vecs @ q)[order])
    if mode != "fused":
        raise GalleryError(f"unknown search mode {mode!r}")
    shortlist = gallery.search(np.asarray(appearance, np.float32)[None], k=max(10 * k, 200))[0]
    fused = []
    for h in shortlist:
        s_app = float(h.score)
        s_skel = skel_score.get(h.tracklet_id, s_app)
        fused.append(((1.0 - weight) * s_app + weight * s_skel, h))
    fused.sort(key=lambda x: -x[0])
    return [replace(h, rank=i, score=float(s)) for i, (s, h) in enumerate(fused[:k], start=1)]
