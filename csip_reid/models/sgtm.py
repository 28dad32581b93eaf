"""Skeleton Guided Temporal Modeling (SGTM): frame-level temporal aggregation guided by skeletons.

Input: the visual tokens of every frame (``x12`` after ``ln_post``; the caller detaches them, so SGTM
never back-propagates into the ViT) and, in training, the skeleton joint tokens.

* **MTE** (message token encoding): one visual message per frame, ``Linear`` of the mean visual token,
  mixed across frames by self-attention; likewise one skeleton message per frame from the joint
  tokens (``Linear(P, d)``, mean over joints).
* **ATD** (auxiliary temporal distillation, training only): the visual messages cross-attend to the
  skeleton messages over time.
* **Token-type embeddings**: 0 visual tokens, 1 visual message, 2 joints, 3 skeleton message.
* **TA** (temporal aggregation): one pre-LN transformer block over the tokens of each frame:
  ``[visual ; m_v ; joints ; m_s]`` in training, ``[visual ; m_v]`` at test time (skeletons are
  privileged information: inference is RGB-only).
* **Token attention pooling**: ``a_i = sigmoid(w . x_i)`` normalised over the frame's tokens gives a
  frame feature ``z_t``; the sequence feature is ``mean_t z_t``.

Missing skeleton data (see :mod:`csip_reid.models.skeleton`): absent joints and skeleton messages of
frames without joints are masked out of attention and pooling; samples without any skeleton skip ATD.
"""

from __future__ import annotations

import torch
from torch import nn

from csip_reid.models.config import SGTMConfig
from csip_reid.models.skeleton import masked_mean

VISUAL, VISUAL_MSG, JOINT, SKELETON_MSG = range(4)


def _pad_mask(present: torch.Tensor) -> torch.Tensor:
    """``key_padding_mask`` (True = ignore) for ``present``; rows with nothing present ignore nothing."""
    return ~present & present.any(-1, keepdim=True)


class TemporalMixer(nn.Module):
    """``m + MHA(LN(m))`` over the frames of each sample."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)

    def forward(self, m: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm(m)
        return m + self.attn(h, h, h, key_padding_mask=pad, need_weights=False)[0]


class TABlock(nn.Module):
    """Pre-LN transformer block (MHA + GELU MLP) over the tokens of each frame."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, key_padding_mask=pad, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class SGTM(nn.Module):
    """Skeleton guided temporal modelling.

    Args:
        dim: Visual token width d (768 for ViT-B).
        joint_dim: Skeleton joint-token size P.
        cfg: SGTM settings.
    """

    def __init__(self, dim: int, joint_dim: int, cfg: SGTMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.vis_msg = nn.Linear(dim, dim)
        self.vis_mix = TemporalMixer(dim, cfg.heads, cfg.dropout)
        self.ske_in = nn.Linear(joint_dim, dim)
        self.ske_mix = TemporalMixer(dim, cfg.heads, cfg.dropout)
        if cfg.atd:
            self.atd_q_norm = nn.LayerNorm(dim)
            self.atd_kv_norm = nn.LayerNorm(dim)
            self.atd_attn = nn.MultiheadAttention(dim, cfg.heads, dropout=cfg.dropout, batch_first=True)
        self.type_embed = nn.Embedding(4, dim)
        self.ta = TABlock(dim, cfg.heads, cfg.mlp_ratio, cfg.dropout)
        self.pool = nn.Linear(dim, 1)

    def forward(
        self,
        tokens: torch.Tensor,
        joints: torch.Tensor | None = None,
        joint_mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Aggregate frames.

        Args:
            tokens: (B, T, Nv, d) visual tokens (detached ``x12``).
            joints: (B, T, J, P) skeleton joint tokens (training branch) or None (test branch).
            joint_mask: (B, T, J) bool presence of joints (None = all present).

        Returns:
            ``(z (B, T, d) frame features, f_tp (B, d) sequence feature)``.
        """
        b, t, nv, d = tokens.shape
        emb = self.type_embed.weight.to(tokens.dtype)
        m_v = self.vis_mix(self.vis_msg(tokens.mean(2)))
        ske_parts: list[torch.Tensor] = []
        ske_pads: list[torch.Tensor] = []
        if joints is not None:
            j = joints.shape[2]
            mask = (joint_mask if joint_mask is not None
                    else torch.ones(joints.shape[:3], dtype=torch.bool, device=joints.device))
            x_s = self.ske_in(joints.to(tokens.dtype))
            frame_present = mask.any(-1)
            m_s = self.ske_mix(masked_mean(x_s, mask, dim=2), _pad_mask(frame_present))
            if self.cfg.atd:
                has_ske = frame_present.any(-1).to(tokens.dtype)[:, None, None]
                kv = self.atd_kv_norm(m_s)
                m_v = m_v + has_ske * self.atd_attn(self.atd_q_norm(m_v), kv, kv,
                                                    key_padding_mask=_pad_mask(frame_present),
                                                    need_weights=False)[0]
            if self.cfg.faithful_ske_view:
                # The official code's x_ske.view(j, b, T, d) on a (b, T, j, d) tensor, kept for comparison.
                x_s = x_s.contiguous().view(j, b * t, d).transpose(0, 1)
                mask = mask.contiguous().view(j, b * t).transpose(0, 1)
            ske_parts = [x_s.reshape(b * t, j, d) + emb[JOINT], m_s.reshape(b * t, 1, d) + emb[SKELETON_MSG]]
            ske_pads = [~mask.reshape(b * t, j), ~frame_present.reshape(b * t, 1)]
        x = torch.cat([tokens.reshape(b * t, nv, d) + emb[VISUAL],
                       m_v.reshape(b * t, 1, d) + emb[VISUAL_MSG], *ske_parts], 1)
        pad = None
        if ske_pads:
            pad = torch.cat([torch.zeros(b * t, nv + 1, dtype=torch.bool, device=x.device), *ske_pads], 1)
        x = self.ta(x, pad)
        a = torch.sigmoid(self.pool(x))
        if pad is not None:
            a = a * (~pad).unsqueeze(-1).to(x.dtype)
        a = a / (a.sum(1, keepdim=True) + 1e-6)
        z = (a * x).sum(1).reshape(b, t, d)
        return z, z.mean(1)
