"""Shared builders for the gallery tests (fake embedder identity, tracklets with known vectors)."""

from __future__ import annotations

import numpy as np

from csip_reid.core.tracklet import Tracklet
from csip_reid.gallery import IndexPolicy, VideoRecord

DIM = 32
#: Both index kinds through the public policy. ``exact_max=0`` asks for IVF at any size (from 256
#: vectors on) and ``recall_target=0`` accepts the fastest nprobe, so IVF is kept even on the
#: unclustered random vectors these tests use (with them the default target would stay exact).
POLICIES = {"flat": IndexPolicy(), "ivf": IndexPolicy(exact_max=0, recall_target=0.0)}


def fake_embedder_info(dim: int = DIM, fingerprint: str = "fp-a", spec: str = "fake:a") -> dict:
    """What ``embedder_info(embedder)`` returns, for an embedder that does not exist."""
    return {"kind": "FakeEmbedder", "spec": spec, "dim": dim, "weights": "", "skeleton_format": None,
            "fingerprint": fingerprint}


def unit_vectors(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def make_tracklets(vecs: np.ndarray, video: str = "v.mp4", camera: str = "cam1", seed: int = 0,
                   skeleton: bool = False, thumb_height: int = 24) -> list[Tracklet]:
    """One tracklet per row of ``vecs``, with distinct arrays, a thumbnail and a sample stride.

    ``skeleton=True`` adds a skeleton and a 16-d skeleton-space vector (``skeleton_embedding``).
    """
    rng = np.random.default_rng(seed)
    out = []
    for i, v in enumerate(vecs):
        n = 3 + i % 4
        frames = np.arange(n) * 2 + 10 * i
        sample = frames[:: 2]
        t = Tracklet(
            video=video,
            camera=camera,
            track_id=i + 1,
            frames=frames,
            timestamps=frames / 25.0,
            boxes=rng.uniform(0, 400, (n, 4)),
            scores=rng.uniform(0.3, 1.0, n),
            sample_frames=sample,
            thumbnail=rng.integers(0, 255, (thumb_height, thumb_height // 2 + 1, 3), dtype=np.uint8),
            embedding=v,
            sample_stride=2 + i % 3,
        )
        if skeleton:
            t.skeleton = rng.standard_normal((len(sample), 17, 3)).astype(np.float32)
            t.skeleton_format = "coco17-2d-conf"
            t.skeleton_embedding = rng.standard_normal(16).astype(np.float32)
        out.append(t)
    return out


def add_video(gallery, name: str, vecs: np.ndarray, content_hash: str | None = None, **kw) -> int:
    """Add a fake video whose tracklets carry ``vecs``; returns its id."""
    tracklets = make_tracklets(vecs, video=name, **kw)
    return gallery.add_video(VideoRecord(f"/videos/{name}", content_hash or f"hash-{name}", "cam1", fps=25.0,
                                         num_frames=1000, width=640, height=480,
                                         stats={"tracklets": len(vecs)}), tracklets)
