"""CSIP-ReID losses.

* Stage 1: symmetric supervised contrastive loss between visual and skeleton sequence features
  (``L_v2s + L_s2v``; temperature 1, features not normalised, positives = same identity).
* Stage 2: ``id_w * (CE_cls + CE_proj + CE_tp) + tri_w * (Tri_cls + Tri_proj + Tri_tp)
  + csip_w * CE_csip + frame_w * CE_frame / T`` with label-smoothed CE and batch-hard triplet on the
  pre-BN features. Every term is returned separately for logging.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from csip_reid.models.config import LossConfig


def supcon_loss(
    anchors: torch.Tensor, contrast: torch.Tensor, anchor_labels: torch.Tensor,
    contrast_labels: torch.Tensor, temperature: float = 1.0,
) -> torch.Tensor:
    """One direction of the supervised contrastive loss.

    ``L = -mean_i [ sum_j m_ij log softmax_j(a_i . c_j / tau) / sum_j m_ij ]`` with ``m_ij`` = same label.
    Anchors without any positive are left out of the mean.
    """
    logits = anchors.float() @ contrast.float().t() / temperature
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = (anchor_labels[:, None] == contrast_labels[None, :]).float()
    n_pos = pos.sum(1)
    keep = n_pos > 0
    per_anchor = (pos * log_prob).sum(1)[keep] / n_pos[keep]
    return -per_anchor.mean()


def symmetric_supcon(v: torch.Tensor, s: torch.Tensor, labels: torch.Tensor,
                     temperature: float = 1.0) -> dict[str, torch.Tensor]:
    """Stage-1 loss terms ``{"v2s", "s2v"}`` for paired visual/skeleton features."""
    return {"v2s": supcon_loss(v, s, labels, labels, temperature),
            "s2v": supcon_loss(s, v, labels, labels, temperature)}


def label_smooth_ce(logits: torch.Tensor, targets: torch.Tensor, epsilon: float = 0.1) -> torch.Tensor:
    """Cross-entropy against ``(1 - eps) * onehot + eps / N`` targets, averaged over the batch."""
    log_p = F.log_softmax(logits.float(), dim=1)
    n = logits.shape[1]
    smooth = torch.full_like(log_p, epsilon / n).scatter_(1, targets[:, None], 1.0 - epsilon + epsilon / n)
    return -(smooth * log_p).sum(1).mean()


def batch_hard_triplet(features: torch.Tensor, labels: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """Batch-hard triplet loss on Euclidean distances of unnormalised features.

    For each anchor: the farthest positive and the nearest negative; ``mean(relu(d_ap - d_an + margin))``
    over the anchors that have a negative in the batch (zero when none has).
    """
    f = features.float()
    sq = (f * f).sum(1)
    dist = (sq[:, None] + sq[None, :] - 2.0 * f @ f.t()).clamp_min(1e-12).sqrt()
    same = labels[:, None] == labels[None, :]
    d_ap = dist.masked_fill(~same, float("-inf")).max(1).values
    d_an = dist.masked_fill(same, float("inf")).min(1).values
    keep = torch.isfinite(d_an)
    if not keep.any():
        return f.sum() * 0.0
    return F.relu(d_ap[keep] - d_an[keep] + margin).mean()


def stage2_losses(out: dict[str, torch.Tensor], pids: torch.Tensor, cfg: LossConfig,
                  seq_len: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted stage-2 total and its unweighted terms.

    Args:
        out: :meth:`CSIPReID.forward_stage2` output.
        pids: (B,) identity labels.
        cfg: Loss weights.
        seq_len: T, used to divide the frame loss (``frame_divide_by_t``) and to repeat labels.

    Returns:
        ``(total, terms)`` with terms ``id_cls, id_proj, id_tp, tri_cls, tri_proj, tri_tp, csip, frame``.
    """
    eps, margin = cfg.label_smooth, cfg.triplet_margin
    frame_pids = pids.repeat_interleave(out["frame_logits"].shape[0] // pids.shape[0])
    terms = {
        "id_cls": label_smooth_ce(out["cls_logits"], pids, eps),
        "id_proj": label_smooth_ce(out["proj_logits"], pids, eps),
        "id_tp": label_smooth_ce(out["tp_logits"], pids, eps),
        "tri_cls": batch_hard_triplet(out["feat_cls"], pids, margin),
        "tri_proj": batch_hard_triplet(out["feat_proj"], pids, margin),
        "tri_tp": batch_hard_triplet(out["feat_tp"], pids, margin),
        "csip": label_smooth_ce(out["csip_logits"], pids, eps),
        "frame": label_smooth_ce(out["frame_logits"], frame_pids, eps),
    }
    frame_w = cfg.frame_weight / (seq_len if cfg.frame_divide_by_t else 1)
    total = (cfg.id_weight * (terms["id_cls"] + terms["id_proj"] + terms["id_tp"])
             + cfg.triplet_weight * (terms["tri_cls"] + terms["tri_proj"] + terms["tri_tp"])
             + cfg.csip_weight * terms["csip"] + frame_w * terms["frame"])
    return total, terms
