"""SGT skeleton encoder: a graph transformer over the 17 Human3.6M joints of each frame.

Per frame, each joint's coordinates go through ``Linear(3, C) - ReLU - Linear(C, C)``, a Laplacian
positional encoding (eigenvectors 1..k of the normalised graph Laplacian, with a random sign flip per
forward pass in training) is added, and ``layers`` post-LN transformer blocks attend across the joints
of that frame only (there is no temporal attention; logits are clamped to ``±logit_clamp`` before the
softmax, as in TranSG). A final ``C x P`` matrix projects the joints into the visual embedding space.

Missing data: the input may hold NaNs (the :class:`~csip_reid.core.tracklet.Tracklet` convention) and/or
come with a boolean mask (the training loader's ``skeleton_mask``, True = present). A joint is present
when the mask says so *and* its three coordinates are finite. Missing joints are zero-filled, are never
attended to, and are left out of every mean; a frame with no present joint is left out of the
sequence mean; a sequence with no present joint gets a zero feature and ``valid = False`` (callers drop
it from losses and prototypes).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import nn

from csip_reid.core.skeleton import H36M_EDGES, H36M_JOINTS
from csip_reid.models.config import SkeletonConfig

log = logging.getLogger(__name__)


def laplacian_eigvecs(edges: tuple[tuple[int, int], ...], num_nodes: int, k: int) -> torch.Tensor:
    """Eigenvectors 1..k (skipping the constant one) of ``I - D^-1/2 A D^-1/2``, shape (num_nodes, k).

    Within a repeated eigenvalue (the H36M graph has 0.134 twice and 1.0 three times) the basis that
    ``eigh`` returns depends on the LAPACK build, so a model must not recompute this after training:
    :class:`SkeletonEncoder` stores it with its weights (the ``lap_pe`` buffer).
    """
    adj = np.zeros((num_nodes, num_nodes), np.float64)
    for a, b in edges:
        adj[a, b] = adj[b, a] = 1.0
    deg = adj.sum(1)
    d_inv_sqrt = np.where(deg > 0, deg ** -0.5, 0.0)
    lap = np.eye(num_nodes) - d_inv_sqrt[:, None] * adj * d_inv_sqrt[None, :]
    _, vecs = np.linalg.eigh(lap)  # ascending eigenvalues
    return torch.from_numpy(vecs[:, 1 : k + 1].astype(np.float32))


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Mean of ``x`` over ``dim`` counting only entries where ``mask`` (x's shape minus the last dim)."""
    w = mask.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(dim) / w.sum(dim).clamp_min(1.0)


class JointAttention(nn.Module):
    """Multi-head attention over joints with clamped logits and a key mask."""

    def __init__(self, dim: int, heads: int, clamp: float) -> None:
        super().__init__()
        self.heads, self.clamp = heads, clamp
        self.qkv = nn.Linear(dim, 3 * dim)
        self.scale = (dim // heads) ** -0.5

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        n, j, d = x.shape
        q, k, v = self.qkv(x).view(n, j, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        logits = (q @ k.transpose(-1, -2) * self.scale).clamp(-self.clamp, self.clamp)
        logits = logits.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        return (logits.softmax(-1) @ v).transpose(1, 2).reshape(n, j, d)


class SGTBlock(nn.Module):
    """Post-LN graph-transformer layer: ``LN(x + Drop(O(attn(x))))`` then ``LN(h + Drop(FFN(h)))`` (as TranSG/CSIP)."""

    def __init__(self, cfg: SkeletonConfig) -> None:
        super().__init__()
        d = cfg.hidden_dim
        self.attn = JointAttention(d, cfg.heads, cfg.logit_clamp)
        self.out = nn.Linear(d, d)
        self.norm1 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, cfg.ffn_dim), nn.ReLU(), nn.Dropout(cfg.dropout),
                                 nn.Linear(cfg.ffn_dim, d))
        self.norm2 = nn.LayerNorm(d)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.drop(self.out(self.attn(x, key_mask))))
        return self.norm2(x + self.drop(self.ffn(x)))


class SkeletonEncoder(nn.Module):
    """SGT encoder: (B, T, J, 3) skeletons → joint tokens (B, T, J, P) and a sequence feature (B, P).

    Args:
        cfg: Encoder sizes.
        out_dim: P, the joint embedding size shared with the visual projection.
    """

    def __init__(self, cfg: SkeletonConfig, out_dim: int) -> None:
        super().__init__()
        if cfg.num_joints != len(H36M_JOINTS):
            raise ValueError(f"the SGT graph is Human3.6M-17; got num_joints={cfg.num_joints}")
        self.cfg = cfg
        d = cfg.hidden_dim
        self.embed = nn.Sequential(nn.Linear(cfg.in_dim, d), nn.ReLU(), nn.Linear(d, d))
        # Persistent: the basis within repeated eigenvalues is machine-dependent (see laplacian_eigvecs),
        # so a checkpoint carries the one the model was trained with.
        self.register_buffer("lap_pe", laplacian_eigvecs(H36M_EDGES, cfg.num_joints, cfg.k_pos_enc))
        self.pe = nn.Linear(cfg.k_pos_enc, d)
        self.blocks = nn.ModuleList(SGTBlock(cfg) for _ in range(cfg.layers))
        self.proj = nn.Parameter(torch.randn(d, out_dim) * d**-0.5)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):  # type: ignore[no-untyped-def]
        key = prefix + "lap_pe"
        if key not in state_dict:
            # Checkpoints written before lap_pe was stored: keep the basis computed on this machine.
            log.warning("checkpoint has no skeleton positional encoding (%s, an older file): using the one "
                        "computed on this machine; its basis within repeated Laplacian eigenvalues may differ "
                        "from the training machine's", key)
            state_dict = dict(state_dict)
            state_dict[key] = self.lap_pe.detach().clone()
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    @staticmethod
    def joint_mask(skel: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """(B, T, J) bool: given mask AND all coordinates finite."""
        present = torch.isfinite(skel).all(-1)
        return present if mask is None else present & mask.to(torch.bool)

    def forward(
        self, skel: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode skeleton sequences.

        Args:
            skel: (B, T, J, in_dim) root-centred joints; NaN = missing.
            mask: (B, T, J) bool, True = joint present (optional).

        Returns:
            ``(tokens (B, T, J, P), feature (B, P), mask (B, T, J))``; the feature is the mean over the
            present joints, then over frames with at least one present joint. ``mask`` is the
            effective presence mask (see the module docstring).
        """
        b, t, j, _ = skel.shape
        m = self.joint_mask(skel, mask)
        x = torch.nan_to_num(skel, nan=0.0, posinf=0.0, neginf=0.0) * m[..., None]
        pe = self.lap_pe
        if self.training:
            pe = pe * (torch.randint(0, 2, (1, pe.shape[1]), device=pe.device) * 2 - 1).to(pe.dtype)
        h = (self.embed(x) + self.pe(pe)).reshape(b * t, j, -1)
        flat = m.reshape(b * t, j)
        # A frame with no present joint attends to all (its output is masked out of every mean).
        key_mask = flat | ~flat.any(-1, keepdim=True)
        for blk in self.blocks:
            h = blk(h, key_mask)
        tokens = (h @ self.proj.to(h.dtype)).reshape(b, t, j, -1)
        frame_feat = masked_mean(tokens, m, dim=2)
        feature = masked_mean(frame_feat, m.any(-1), dim=1)
        return tokens, feature, m


def skeleton_valid(mask: torch.Tensor) -> torch.Tensor:
    """(B,) True where a (B, T, J) presence mask has at least one present joint."""
    return mask.flatten(1).any(1)


def joint_tokens_over_time(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, J, P) per-joint mean over the frames where the joint is present (zero if never)."""
    return masked_mean(tokens, mask, dim=1)


__all__ = [
    "H36M_EDGES", "H36M_JOINTS", "SkeletonEncoder", "joint_tokens_over_time", "laplacian_eigvecs",
    "masked_mean", "skeleton_valid",
]
