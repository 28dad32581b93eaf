"""The CSIP-ReID model: CLIP visual encoder + SGT skeleton encoder + PFU + SGTM + BNNeck heads.

Shapes: ``images`` (B, T, 3, H, W), ``skel`` (B, T, 17, 3), ``skel_mask`` (B, T, 17) bool,
``cams`` (B,) long (``-1`` = unknown camera), ``pids`` (B,) long.

* :meth:`CSIPReID.forward_stage1`: contrastive pretraining features. The visual encoder is frozen
  (no gradient, run under ``no_grad``); only the skeleton encoder learns.
* :meth:`CSIPReID.forward_stage2`: everything for the stage-2 losses.
* :meth:`CSIPReID.extract`: the RGB-only inference feature
  ``[CLS (width) ; projected CLS (proj_dim) ; SGTM f_tp (width)]`` before the BNNecks (2048-d for
  ViT-B/16), not normalised (callers L2-normalise).
"""

from __future__ import annotations

import torch
from torch import nn

from csip_reid.models.config import CSIPConfig
from csip_reid.models.pfu import PrototypeFusionUpdater
from csip_reid.models.sgtm import SGTM
from csip_reid.models.skeleton import SkeletonEncoder, joint_tokens_over_time, skeleton_valid
from csip_reid.models.visual import VisualEncoder


def _bnneck(dim: int) -> nn.BatchNorm1d:
    bn = nn.BatchNorm1d(dim)
    bn.bias.requires_grad_(False)
    return bn


def _classifier(dim: int, num_classes: int) -> nn.Linear:
    fc = nn.Linear(dim, num_classes, bias=False)
    nn.init.normal_(fc.weight, std=0.001)
    return fc


class CSIPReID(nn.Module):
    """CSIP-ReID.

    Args:
        cfg: Model configuration (sizes, switches).
        num_classes: Number of training identities.
        num_cameras: Number of cameras for the SIE embedding (default: ``cfg.num_cameras``).
    """

    def __init__(self, cfg: CSIPConfig, num_classes: int, num_cameras: int | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_classes = num_classes
        self.num_cameras = cfg.num_cameras if num_cameras is None else num_cameras
        width, proj = cfg.visual.width, cfg.visual.proj_dim
        self.visual = VisualEncoder(cfg.visual, cfg.input, self.num_cameras)
        self.skeleton = SkeletonEncoder(cfg.skeleton, proj)
        self.pfu = PrototypeFusionUpdater(num_classes, proj, cfg.pfu)
        self.sgtm = SGTM(width, proj, cfg.sgtm)
        self.bottleneck = _bnneck(width)
        self.bottleneck_proj = _bnneck(proj)
        self.bottleneck_temp = _bnneck(width)
        self.bottleneck_temp_seq = _bnneck(width)
        self.classifier = _classifier(width, num_classes)
        self.classifier_proj = _classifier(proj, num_classes)
        self.classifier_temp = _classifier(width, num_classes)
        self.frozen_skeleton = False

    @property
    def feature_dim(self) -> int:
        """Size of the :meth:`extract` feature."""
        return 2 * self.cfg.visual.width + self.cfg.visual.proj_dim

    # -- freezing --------------------------------------------------------------------------
    def freeze_visual(self, frozen: bool = True) -> None:
        """Stop (or restart) gradients into the visual encoder."""
        self.visual.requires_grad_(not frozen)

    def freeze_skeleton(self, frozen: bool = True) -> None:
        """Freeze the skeleton encoder; a frozen encoder also stays in eval mode (no dropout)."""
        self.frozen_skeleton = frozen
        self.skeleton.requires_grad_(not frozen)
        if frozen:
            self.skeleton.eval()

    def train(self, mode: bool = True) -> CSIPReID:
        super().train(mode)
        if self.frozen_skeleton:
            self.skeleton.eval()
        return self

    # -- shared pieces ---------------------------------------------------------------------
    def _encode_images(
        self, images: torch.Tensor, cams: torch.Tensor | None, sie: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x12, xproj) reshaped to (B, T, 1+Np, ·); ``sie=False`` adds no camera embedding."""
        b, t = images.shape[:2]
        frame_cams = None if cams is None else cams.reshape(b, 1).expand(b, t).reshape(-1)
        _, x12, xproj = self.visual(images.flatten(0, 1), frame_cams, sie=sie)
        return x12.reshape(b, t, *x12.shape[1:]), xproj.reshape(b, t, *xproj.shape[1:])

    def _encode_skeleton(
        self, skel: torch.Tensor, skel_mask: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.frozen_skeleton:
            with torch.no_grad():
                return self.skeleton(skel, skel_mask)
        return self.skeleton(skel, skel_mask)

    # -- stage 1 ---------------------------------------------------------------------------
    def forward_stage1(
        self, images: torch.Tensor, skel: torch.Tensor, cams: torch.Tensor | None,
        skel_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Stage-1 features: ``v`` (B, P) mean projected CLS from the frozen encoder, ``s`` (B, P)
        skeleton sequence feature, ``valid`` (B,) samples with a skeleton.

        ``v`` has no SIE term, as in the official ``get_image=True`` path (the camera table is random
        at this point and is not trained in stage 1); ``cams`` is accepted for a uniform call. It is
        computed in fp32 even inside an autocast region, as the official code computes its targets
        outside ``amp.autocast``; the skeleton branch follows the caller's autocast.
        """
        with torch.no_grad(), torch.autocast(images.device.type, enabled=False):
            _, xproj = self._encode_images(images.float(), cams, sie=False)
            v = xproj[:, :, 0].mean(1)
        _, s, mask = self.skeleton(skel, skel_mask)
        return {"v": v.float(), "s": s.float(), "valid": skeleton_valid(mask)}

    # -- stage 2 ---------------------------------------------------------------------------
    def forward_stage2(
        self, images: torch.Tensor, skel: torch.Tensor | None, cams: torch.Tensor | None,
        pids: torch.Tensor | None = None, skel_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Stage-2 outputs.

        Args:
            images, skel, cams, skel_mask: see the module docstring (``skel`` None = no skeletons).
            pids: (B,) labels; used only for the optional prototype momentum update.

        Returns:
            ``cls_logits, proj_logits, tp_logits`` (B, N); ``frame_logits`` (B*T, N);
            ``csip_logits`` (B, N); ``feat_cls`` (B, width), ``feat_proj`` (B, P), ``feat_tp`` (B, width)
            pre-BN features; ``alpha`` (N,) fusion gates.
        """
        x12, xproj = self._encode_images(images, cams)
        f_cls = x12[:, :, 0].mean(1)
        f_proj = xproj[:, :, 0].mean(1)
        tokens = mask = joints_t = present = s = None
        if skel is not None:
            tokens, s, mask = self._encode_skeleton(skel, skel_mask)
            joints_t = joint_tokens_over_time(tokens, mask)
            present = mask.any(1)
        csip_logits, alpha = self.pfu(f_proj, xproj.mean(1), joints_t, present)
        z, f_tp = self.sgtm(x12.detach(), tokens, mask)
        out = {
            "cls_logits": self.classifier(self.bottleneck(f_cls)),
            "proj_logits": self.classifier_proj(self.bottleneck_proj(f_proj)),
            "tp_logits": self.classifier_temp(self.bottleneck_temp_seq(f_tp)),
            "frame_logits": self.classifier_temp(self.bottleneck_temp(z.flatten(0, 1))),
            "csip_logits": csip_logits,
            "feat_cls": f_cls,
            "feat_proj": f_proj,
            "feat_tp": f_tp,
            "alpha": alpha,
        }
        if pids is not None and self.training and s is not None:
            self.pfu.momentum_update(f_proj.detach(), s.detach(), skeleton_valid(mask), pids)
        return out

    # -- inference -------------------------------------------------------------------------
    def extract(self, images: torch.Tensor, cams: torch.Tensor | None = None) -> torch.Tensor:
        """RGB-only (B, feature_dim) feature before BN: ``[CLS ; proj CLS ; f_tp]``."""
        x12, xproj = self._encode_images(images, cams)
        _, f_tp = self.sgtm(x12)
        return torch.cat([x12[:, :, 0].mean(1), xproj[:, :, 0].mean(1), f_tp], 1)

    @torch.no_grad()
    def sequence_features(
        self, images: torch.Tensor, skel: torch.Tensor | None, cams: torch.Tensor | None,
        skel_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Prototype inputs: ``v`` (B, P) mean projected CLS without SIE (the official
        ``get_image=True`` path), and ``s`` (B, P) / ``valid`` (B,) skeleton features when ``skel``
        is given."""
        _, xproj = self._encode_images(images, cams, sie=False)
        out = {"v": xproj[:, :, 0].mean(1).float()}
        if skel is not None:
            _, s, mask = self.skeleton(skel, skel_mask)
            out.update(s=s.float(), valid=skeleton_valid(mask))
        return out
