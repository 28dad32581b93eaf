"""Clustered synthetic embeddings for index tests and the search benchmark.

Uniform random unit vectors are a poor stand-in for ReID embeddings: in high dimension every pair
is almost orthogonal, the "nearest" neighbours are barely nearer than the rest, and any
approximate index looks far worse than it does on real features. Real galleries are clustered:
several tracklets of the same person sit close together, and people who look alike (same clothing
colours, same camera) form coarser groups. :func:`clustered_unit_vectors` draws from such a
two-level mixture of Gaussians projected onto the unit sphere.
"""

from __future__ import annotations

import numpy as np


def _normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class ClusteredSphere:
    """A two-level mixture on the unit sphere: coarse *modes*, *identities* inside each mode.

    With the default spreads, two samples of the same identity have cosine ≈ 0.5 (a typical
    same-person similarity of ReID features), identity centres of the same mode ≈ 0.3, and
    anything else ≈ 0.

    Args:
        dim: Vector dimension.
        num_ids: Number of identities (cluster centres).
        num_modes: Number of coarse modes; ``None`` = one per 100 identities.
        id_spread: Noise norm of a sample around its identity centre.
        mode_spread: Noise norm of an identity centre around its mode.
        seed: Random seed.
    """

    def __init__(
        self,
        dim: int,
        num_ids: int,
        num_modes: int | None = None,
        id_spread: float = 1.0,
        mode_spread: float = 1.5,
        seed: int = 0,
    ) -> None:
        self.dim = dim
        self.id_spread = id_spread
        self.rng = np.random.default_rng(seed)
        num_modes = num_modes or max(1, num_ids // 100)
        modes = _normalise(self.rng.standard_normal((num_modes, dim), dtype=np.float32))
        mode_of = self.rng.integers(0, num_modes, num_ids)
        self.centres = np.empty((num_ids, dim), np.float32)
        for s in range(0, num_ids, 65536):
            e = min(num_ids, s + 65536)
            noise = self.rng.standard_normal((e - s, dim), dtype=np.float32)
            self.centres[s:e] = _normalise(modes[mode_of[s:e]] + noise * (mode_spread / dim**0.5))

    def sample(self, n: int, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` unit vectors and their identity labels: ``((n, dim) float32, (n,) int64)``."""
        labels = self.rng.integers(0, len(self.centres), n)
        out = np.empty((n, self.dim), np.float32)
        scale = np.float32(self.id_spread / self.dim**0.5)
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            noise = self.rng.standard_normal((e - s, self.dim), dtype=np.float32)
            noise *= scale
            noise += self.centres[labels[s:e]]
            out[s:e] = _normalise(noise)
        return out, labels


def clustered_unit_vectors(
    n: int, dim: int, per_id: int = 10, num_queries: int = 0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` clustered gallery vectors (about ``per_id`` per identity) and ``num_queries`` queries.

    Queries are fresh samples of identities that exist in the gallery, as in a real search.

    Returns:
        ``(gallery (n, dim), queries (num_queries, dim))``, float32, L2-normalised rows.
    """
    sphere = ClusteredSphere(dim, max(1, n // per_id), seed=seed)
    gallery, _ = sphere.sample(n)
    queries, _ = sphere.sample(num_queries)
    return gallery, queries
