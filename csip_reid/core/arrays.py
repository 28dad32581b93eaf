"""Small array helpers shared by every layer."""

from __future__ import annotations

import numpy as np


def l2_normalize(x: np.ndarray, axis: int = -1, eps: float = 1e-12) -> np.ndarray:
    """Row-wise L2 normalisation (float32)."""
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=axis, keepdims=True), eps)


def evenly_spaced_indices(n: int, k: int) -> np.ndarray:
    """``k`` indices evenly spread over ``0..n-1`` (first and last included).

    When ``n < k`` some indices repeat, spread over the range rather than piled at its end;
    ``evenly_spaced_indices(n, min(n, k))`` gives at most ``n`` distinct indices.
    """
    if n < 1:
        raise ValueError("a tracklet needs at least one frame")
    if k == 1:
        return np.zeros(1, np.int64)
    return np.round(np.linspace(0, n - 1, k)).astype(np.int64)
