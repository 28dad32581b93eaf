"""Skeleton-space embeddings: how a person moves, independent of clothing.

* ``skeleton:CHECKPOINT`` is an embedder that uses only the CSIP-ReID skeleton encoder. This is
  the skeleton-only ReID setting of the paper (BIWI/IAS style), so it needs a pose back-end.
  Its vectors do not change when a person changes clothes.
* :func:`skeleton_features` is shared with the ``csip`` embedder. When a gallery is indexed with
  ``--embedder csip:CKPT --pose ...``, each tracklet also gets a skeleton vector from the same
  checkpoint, stored as the gallery's ``skeleton`` vector space. ``reid query --mode
  skeleton|fused`` reads it.

A sequence is resampled to the model's ``T`` frames, evenly spread. Missing joints (NaN) are
masked out of the encoder's means. A tracklet with no joint at all gets a zero vector, which
matches nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from csip_reid.core.arrays import evenly_spaced_indices
from csip_reid.core.embedder import EMBEDDERS, Embedder, l2_normalize
from csip_reid.core.errors import ConfigError
from csip_reid.core.weights import file_sha256, resolve_weights


@torch.no_grad()
def skeleton_features(encoder: torch.nn.Module, skeletons: Sequence[np.ndarray | None], seq_len: int,
                      device: str = "cpu", batch_size: int = 64) -> np.ndarray:
    """(N, P) L2-normalised skeleton sequence features; zero rows for items without skeletons.

    Args:
        encoder: A :class:`~csip_reid.models.skeleton.SkeletonEncoder` (in eval mode).
        skeletons: (S, 17, 3) arrays with NaN at missing joints, or None.
        seq_len: Frames fed to the encoder (evenly resampled).
        device: Torch device.
        batch_size: Sequences per forward pass.
    """
    dim = int(encoder.proj.shape[1])
    out = np.zeros((len(skeletons), dim), np.float32)
    items = [(i, np.asarray(s, np.float32)) for i, s in enumerate(skeletons)
             if s is not None and len(s) and np.isfinite(s).all(-1).any()]
    for b in range(0, len(items), batch_size):
        chunk = items[b : b + batch_size]
        batch = np.stack([s[evenly_spaced_indices(len(s), seq_len)] for _, s in chunk])
        _, feat, _mask = encoder(torch.from_numpy(batch).to(device))
        feat = feat.float().cpu().numpy()
        for (i, _), f in zip(chunk, feat):
            out[i] = f
    nonzero = np.linalg.norm(out, axis=1) > 0
    out[nonzero] = l2_normalize(out[nonzero])
    return out


@dataclass
class SkeletonEmbedder(Embedder):
    """The CSIP-ReID skeleton encoder alone, as a tracklet embedder (needs ``--pose``)."""

    path: str = ""
    device: str = "cpu"

    def __post_init__(self) -> None:
        from csip_reid.models.checkpoint import load_checkpoint, model_from_checkpoint  # timm: only when used

        ckpt = load_checkpoint(self.path, stage=None, purpose="the skeleton embedder")
        model = model_from_checkpoint(ckpt, self.path)
        self.encoder = model.skeleton.to(self.device).eval()
        self.seq_len = int(model.cfg.input.seq_len)
        self.dim = int(self.encoder.proj.shape[1])
        self.skeleton_format = ckpt.get("skeleton_format")
        if not self.skeleton_format:
            raise ConfigError(f"checkpoint {self.path} records no skeleton format; it was not trained on skeletons")
        self.needs_skeleton = True
        self._sha = file_sha256(self.path)

    def weights_id(self) -> str:
        return self._sha

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "space": "skeleton"}

    def embed_crops(self, crops, cameras=None, skeletons=None) -> np.ndarray:
        if skeletons is None:
            raise ConfigError("the skeleton embedder needs skeletons: index with --pose")
        return skeleton_features(self.encoder, skeletons, self.seq_len, self.device)

    def embed_skeletons(self, skeletons: Sequence[np.ndarray | None]) -> np.ndarray:
        """Skeleton-space vectors (the same as :meth:`embed_crops` here)."""
        return skeleton_features(self.encoder, skeletons, self.seq_len, self.device)


@EMBEDDERS.register("skeleton", help="CSIP-ReID skeleton encoder alone (motion, clothing-independent; needs --pose)")
def _make_skeleton(arg: str | None, device: str = "cpu", **options: Any) -> SkeletonEmbedder:
    if not arg:
        raise ConfigError("the skeleton embedder needs a checkpoint: --embedder skeleton:PATH/best.pt")
    path = resolve_weights(arg, "CSIP-ReID checkpoint")
    return SkeletonEmbedder(spec=f"skeleton:{arg}", path=str(path), device=device, **options)
