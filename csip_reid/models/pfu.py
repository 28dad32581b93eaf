"""Prototype Fusion Updater (PFU): identity prototypes that the CSIP logits are computed against.

Before stage 2, the stage-1 model runs over the training set and each identity k gets a skeleton
prototype ``P_S[k]`` and a visual prototype ``P_V[k]`` (means of sequence features). Then, per step:

1. **Fusion** (static): ``alpha_k = sigmoid(MLP([P_S[k]; P_V[k]]))``,
   ``P_F[k] = alpha_k P_S[k] + (1 - alpha_k) P_V[k]``.
2. **Visual Token Updater** (dynamic, per sample b): the fused prototypes query the sample's tokens
   (its projected visual tokens and its skeleton joint tokens, each averaged over time) through
   ``layers`` prompt-generator layers; ``P'_F[b] = P_F + VTU(P_F, tokens_b)``.
3. **CSIP logits**: ``logits[b, k] = <v_b, P'_F[b, k]>`` (raw dot product), trained with CE.

The prototypes are buffers (saved with the model). They stay fixed during stage 2 unless
``prototype_momentum`` > 0 (see :meth:`PrototypeFusionUpdater.momentum_update`).
"""

from __future__ import annotations

import torch
from timm.layers import trunc_normal_
from torch import nn

from csip_reid.models.config import PFUConfig


class QuickGELU(nn.Module):
    """CLIP's ``x * sigmoid(1.702 x)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class PrototypeFusion(nn.Module):
    """Gate mixing skeleton and visual prototypes: returns ``(P_F (N, D), alpha (N,))``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(nn.Linear(2 * dim, hidden), nn.ReLU(), nn.Linear(hidden, 1), nn.Sigmoid())

    def forward(self, p_s: torch.Tensor, p_v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        alpha = self.gate(torch.cat([p_s, p_v], -1))
        return alpha * p_s + (1.0 - alpha) * p_v, alpha.squeeze(-1)


class UpdaterAttention(nn.Module):
    """Multi-head attention of the official prompt-generator layers.

    Separate q/k/v projections (no bias unless ``qkv_bias``: files written before this module
    existed had biases), softmax without dropout, an output projection with bias, then dropout.
    An optional key padding mask (True = ignore) leaves out missing joints.
    """

    def __init__(self, dim: int, heads: int, dropout: float, qkv_bias: bool = False) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.q_proj = nn.Linear(dim, dim, bias=qkv_bias)
        self.k_proj = nn.Linear(dim, dim, bias=qkv_bias)
        self.v_proj = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, q: torch.Tensor, kv: torch.Tensor, key_pad: torch.Tensor | None = None) -> torch.Tensor:
        b, n, d = q.shape
        m, h = kv.shape[1], self.heads
        qh = self.q_proj(q).view(b, n, h, d // h).transpose(1, 2)
        kh = self.k_proj(kv).view(b, m, h, d // h).transpose(1, 2)
        vh = self.v_proj(kv).view(b, m, h, d // h).transpose(1, 2)
        logits = qh @ kh.transpose(-1, -2) * self.scale
        if key_pad is not None:
            logits = logits.masked_fill(key_pad[:, None, None, :], float("-inf"))
        out = (logits.softmax(-1) @ vh).transpose(1, 2).reshape(b, n, d)
        return self.drop(self.proj(out))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs):  # type: ignore[no-untyped-def]
        upgrade_legacy_attention(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)


def upgrade_legacy_attention(state: dict[str, torch.Tensor], prefix: str) -> None:
    """Rename, in place, the ``nn.MultiheadAttention`` weights under ``prefix`` (files written before
    :class:`UpdaterAttention`) to its q/k/v/proj names; exact when the model keeps ``qkv_bias``."""
    if prefix + "in_proj_weight" not in state:
        return
    for name, t in zip(("q_proj", "k_proj", "v_proj"), state.pop(prefix + "in_proj_weight").chunk(3), strict=True):
        state[f"{prefix}{name}.weight"] = t
    bias = state.pop(prefix + "in_proj_bias", None)
    if bias is not None:
        for name, t in zip(("q_proj", "k_proj", "v_proj"), bias.chunk(3), strict=True):
            state[f"{prefix}{name}.bias"] = t
    for part in ("weight", "bias"):
        if prefix + "out_proj." + part in state:
            state[f"{prefix}proj.{part}"] = state.pop(prefix + "out_proj." + part)


def has_legacy_attention(state: dict[str, torch.Tensor]) -> bool:
    """Whether a state dict holds PFU attention weights in the old ``nn.MultiheadAttention`` layout."""
    return any(k.startswith("pfu.") and k.endswith("attn.in_proj_bias") for k in state)


def upgrade_pfu_state(state: dict[str, torch.Tensor], qkv_bias: bool) -> dict[str, torch.Tensor]:
    """A copy of a model state dict with old-layout PFU attention weights in the current layout.

    Without ``qkv_bias`` the old biases are removed: the key bias exactly (softmax ignores a shift
    shared by all keys), the value bias exactly (folded into the output projection's bias, since
    the attention weights sum to 1); the query bias cannot be folded and is dropped (it is zero in
    a stage-1 file, whose updater is never trained).
    """
    out = dict(state)
    prefixes = {k[: -len("in_proj_weight")] for k in state if k.startswith("pfu.") and k.endswith("in_proj_weight")}
    for prefix in prefixes:
        upgrade_legacy_attention(out, prefix)
        if qkv_bias or prefix + "q_proj.bias" not in out:
            continue
        out.pop(prefix + "q_proj.bias")
        out.pop(prefix + "k_proj.bias")
        b_v = out.pop(prefix + "v_proj.bias")
        out[prefix + "proj.bias"] = out[prefix + "proj.bias"] + out[prefix + "proj.weight"] @ b_v
    return out


class UpdaterLayer(nn.Module):
    """Pre-LN layer: self-attention over prototypes, cross-attention to the sample's tokens, MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float, qkv_bias: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.self_attn = UpdaterAttention(dim, heads, dropout, qkv_bias)
        self.norm2 = nn.LayerNorm(dim)
        self.cross_attn = UpdaterAttention(dim, heads, dropout, qkv_bias)
        self.norm3 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), QuickGELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_pad: torch.Tensor | None) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.self_attn(h, h)
        x = x + self.cross_attn(self.norm2(x), memory, memory_pad)
        return x + self.drop(self.mlp(self.norm3(x)))


class VisualTokenUpdater(nn.Module):
    """Per-sample prototype update: ``(N, D)`` prototypes + ``(B, M, D)`` tokens → ``(B, N, D)`` delta."""

    def __init__(self, dim: int, cfg: PFUConfig) -> None:
        super().__init__()
        self.memory_proj = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.LayerNorm(dim))
        self.proto_proj = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim))
        self.layers = nn.ModuleList(UpdaterLayer(dim, cfg.heads, cfg.mlp_ratio, cfg.dropout, cfg.qkv_bias)
                                    for _ in range(cfg.layers))
        self.out_proj = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim))
        self.apply(_init_weights)

    def forward(
        self, protos: torch.Tensor, memory: torch.Tensor, memory_pad: torch.Tensor | None = None
    ) -> torch.Tensor:
        memory = self.memory_proj(memory)
        x = self.proto_proj(protos).unsqueeze(0).expand(memory.shape[0], -1, -1)
        for layer in self.layers:
            x = layer(x, memory, memory_pad)
        return self.out_proj(x)


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class PrototypeFusionUpdater(nn.Module):
    """Prototype buffers + fusion gate + visual token updater → CSIP logits.

    Args:
        num_classes: Number of training identities N.
        dim: Prototype / projected-feature size D.
        cfg: PFU settings.
    """

    def __init__(self, num_classes: int, dim: int, cfg: PFUConfig) -> None:
        super().__init__()
        self.momentum = cfg.prototype_momentum
        self.register_buffer("proto_s", torch.zeros(num_classes, dim))
        self.register_buffer("proto_v", torch.zeros(num_classes, dim))
        self.register_buffer("initialized", torch.tensor(False))
        self.fusion = PrototypeFusion(dim, cfg.gate_hidden)
        self.vtu = VisualTokenUpdater(dim, cfg)

    @torch.no_grad()
    def set_prototypes(self, p_s: torch.Tensor, p_v: torch.Tensor) -> None:
        """Store the (N, D) skeleton and visual prototypes computed by the stage-1 model."""
        if p_s.shape != self.proto_s.shape or p_v.shape != self.proto_v.shape:
            raise ValueError(f"prototypes must be {tuple(self.proto_s.shape)}, got "
                             f"{tuple(p_s.shape)} / {tuple(p_v.shape)}")
        self.proto_s.copy_(p_s)
        self.proto_v.copy_(p_v)
        self.initialized.fill_(True)

    def forward(
        self,
        v: torch.Tensor,
        vis_tokens: torch.Tensor,
        joint_tokens: torch.Tensor | None,
        joint_present: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """CSIP logits.

        Args:
            v: (B, D) sequence visual feature (projected CLS, mean over frames).
            vis_tokens: (B, 1+Np, D) projected visual tokens, mean over frames.
            joint_tokens: (B, J, D) skeleton joint tokens, mean over frames, or None.
            joint_present: (B, J) bool, joints present in at least one frame.

        Returns:
            ``(logits (B, N), alpha (N,))``.
        """
        if not bool(self.initialized):
            raise RuntimeError("PFU prototypes are not set; call set_prototypes() first")
        fused, alpha = self.fusion(self.proto_s, self.proto_v)
        memory, pad = vis_tokens, None
        if joint_tokens is not None:
            memory = torch.cat([vis_tokens, joint_tokens.to(vis_tokens.dtype)], 1)
            present = joint_present if joint_present is not None else torch.ones(
                joint_tokens.shape[:2], dtype=torch.bool, device=joint_tokens.device)
            pad = torch.cat([torch.zeros(vis_tokens.shape[:2], dtype=torch.bool, device=present.device),
                             ~present], 1)
        protos = fused + self.vtu(fused, memory, pad)
        logits = torch.einsum("bd,bnd->bn", v, protos.to(v.dtype))
        return logits, alpha

    @torch.no_grad()
    def momentum_update(self, v: torch.Tensor, s: torch.Tensor, s_valid: torch.Tensor,
                        pids: torch.Tensor) -> None:
        """EMA update of the prototypes of the identities in the batch (only when momentum > 0).

        Buffers are replaced, not modified in place, so tensors saved for backward stay intact.
        """
        if self.momentum <= 0:
            return
        m = self.momentum
        new_s, new_v = self.proto_s.clone(), self.proto_v.clone()
        for k in pids.unique():
            sel = pids == k
            new_v[k] = m * new_v[k] + (1 - m) * v[sel].float().mean(0)
            sel_s = sel & s_valid
            if sel_s.any():
                new_s[k] = m * new_s[k] + (1 - m) * s[sel_s].float().mean(0)
        self.proto_s, self.proto_v = new_s, new_v
