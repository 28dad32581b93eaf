"""Builders for the identity tests: people with known vectors, seen in videos at known times."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from csip_reid.core.tracklet import Tracklet
from csip_reid.gallery import Gallery, VideoRecord

DIM = 32


def fake_info(dim: int = DIM) -> dict:
    return {"kind": "FakeEmbedder", "spec": "fake:a", "dim": dim, "weights": "", "skeleton_format": None,
            "fingerprint": "fp-id"}


def people(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    """``n`` person centres, far apart."""
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def sighting(centre: np.ndarray, video: str, camera: str, track_id: int, start_s: float, end_s: float,
             noise: float = 0.35, seed: int = 0) -> Tracklet:
    """A tracklet of the person ``centre`` from ``start_s`` to ``end_s`` (10 fps) with a noisy vector."""
    rng = np.random.default_rng(seed)
    frames = np.arange(int(round(start_s * 10)), int(round(end_s * 10)) + 1)
    v = centre + noise * rng.standard_normal(centre.shape).astype(np.float32) / np.sqrt(len(centre))
    return Tracklet(video=video, camera=camera, track_id=track_id, frames=frames, timestamps=frames / 10.0,
                    boxes=np.tile([10, 10, 50, 130], (len(frames), 1)), sample_frames=frames[::4],
                    thumbnail=np.full((24, 12, 3), 100, np.uint8), embedding=v / np.linalg.norm(v))


def add(g: Gallery, video: str, camera: str, tracklets: list[Tracklet], start_time: str | None = None) -> int:
    record = VideoRecord(f"/videos/{camera}/{video}", f"hash-{camera}-{video}", camera, fps=10.0,
                         num_frames=10_000,
                         width=640, height=480, start_time=start_time)
    return g.add_video(record, tracklets)


def crowd_gallery(root: Path, num_people: int = 5, cameras: int = 3, seed: int = 0) -> tuple[Gallery, dict[int, int]]:
    """Each camera films every person once, all at the same time in that camera (so each video
    holds many known-different pairs); cameras film one after the other (10 min apart).

    Returns:
        The open gallery and ``{tracklet id: person}``.
    """
    centres = people(num_people, seed=seed)
    g = Gallery.create(root, fake_info())
    truth: dict[int, int] = {}
    for c in range(cameras):
        ts = [sighting(centres[p], f"c{c}.mp4", f"cam{c}", p + 1, 5.0 + p, 40.0 + p, seed=100 * c + p)
              for p in range(num_people)]
        add(g, f"c{c}.mp4", f"cam{c}", ts, start_time=f"2024-05-01T08:{10 * c:02d}:00")
        truth.update({r.id: r.track_id - 1 for r in g.iter_tracklets(video=f"/videos/cam{c}/c{c}.mp4")})
    return g, truth
