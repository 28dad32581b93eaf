"""``csip:CHECKPOINT`` embedder: a trained CSIP-ReID model as a tracklet embedder.

* The checkpoint (``best.pt``/``last.pt`` of stage 2, written by ``reid train``) is read with
  ``weights_only=True``; the model is rebuilt from its stored config (no CLIP download) and the stored
  preprocessing is used, so indexing and querying cannot disagree with training.
* Each tracklet is resampled to exactly ``T`` = ``seq_len`` crops spread evenly over it (crops repeat
  when it has fewer than ``T``), matching the fixed-length clips the model was trained on.
* Camera → SIE embedding: ``cameras[i]`` is a camera index of the training set. ``None``, negative,
  or an index the model does not know (``>= num_cameras``) gets the *mean* of the learned camera
  embeddings: an "average camera", the neutral choice for footage from cameras never seen in training.
* Output: the RGB-only inference feature ``[CLS ; projected CLS ; SGTM]`` (2048-d for ViT-B/16),
  L2-normalised. Skeletons are not used at inference (they are training-only privileged information),
  so ``needs_skeleton`` is False; ``skeleton_format`` reports what the model was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from csip_reid.core.arrays import evenly_spaced_indices
from csip_reid.core.embedder import EMBEDDERS, CropPreprocess, Embedder, l2_normalize
from csip_reid.core.errors import ConfigError
from csip_reid.core.weights import file_sha256, resolve_weights


@dataclass
class CSIPEmbedder(Embedder):
    """Embeds tracklets with a stage-2 CSIP-ReID checkpoint (see the module docstring)."""

    path: str = ""
    device: str = "cpu"
    batch_size: int = 16

    def __post_init__(self) -> None:
        from csip_reid.models.checkpoint import load_checkpoint, model_from_checkpoint  # timm: only when used

        ckpt = load_checkpoint(self.path, stage=2, purpose="the csip embedder")
        self.model = model_from_checkpoint(ckpt, self.path).to(self.device).eval()
        self.preprocess = CropPreprocess.from_dict(ckpt["preprocess"])
        self.dim = self.model.feature_dim
        self.max_frames = self.model.cfg.input.seq_len
        self.skeleton_format = ckpt.get("skeleton_format")
        self.needs_skeleton = False
        self._sha = file_sha256(self.path)

    def weights_id(self) -> str:
        return self._sha

    def _camera_tensor(self, cameras: Sequence[int | None] | None, n: int) -> torch.Tensor:
        cams = [-1 if c is None else int(c) for c in (cameras or [None] * n)]
        if len(cams) != n:
            raise ValueError(f"{n} items but {len(cams)} cameras")
        return torch.tensor([c if 0 <= c < self.model.num_cameras else -1 for c in cams], dtype=torch.long)

    @torch.no_grad()
    def embed_crops(
        self,
        crops: Sequence[Sequence[np.ndarray]],
        cameras: Sequence[int | None] | None = None,
        skeletons: Sequence[np.ndarray | None] | None = None,
    ) -> np.ndarray:
        """Embed N items (each a sequence of BGR crops) into (N, dim) unit vectors."""
        if any(len(item) == 0 for item in crops):
            raise ValueError("every item needs at least one crop")
        if not len(crops):
            return np.zeros((0, self.dim), np.float32)
        t = self.max_frames
        cams = self._camera_tensor(cameras, len(crops))
        out = []
        for s in range(0, len(crops), self.batch_size):
            chunk = crops[s : s + self.batch_size]
            frames = [item[i] for item in chunk for i in evenly_spaced_indices(len(item), t)]
            batch = torch.from_numpy(self.preprocess(frames)).view(len(chunk), t, 3, self.preprocess.height,
                                                                   self.preprocess.width)
            feats = self.model.extract(batch.to(self.device), cams[s : s + len(chunk)].to(self.device))
            out.append(feats.float().cpu().numpy())
        return l2_normalize(np.concatenate(out, 0))

    def embed_skeletons(self, skeletons: Sequence[np.ndarray | None]) -> np.ndarray:
        """Skeleton-space vectors from this checkpoint's skeleton encoder (for ``--mode fused``)."""
        from csip_reid.pipeline.embed.skeleton import skeleton_features

        return skeleton_features(self.model.skeleton, skeletons, self.max_frames, self.device)


@EMBEDDERS.register("csip", help="CSIP-ReID checkpoint trained with `reid train` (RGB-only inference)")
def _make_csip(arg: str | None, device: str = "cpu", **options: Any) -> CSIPEmbedder:
    if not arg:
        raise ConfigError("the csip embedder needs a checkpoint: --embedder csip:PATH/best.pt")
    path = resolve_weights(arg, "CSIP-ReID checkpoint")
    return CSIPEmbedder(spec=f"csip:{arg}", path=str(path), device=device, **options)
