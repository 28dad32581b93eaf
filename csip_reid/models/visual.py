"""CLIP ViT visual encoder with a camera (SIE) embedding, returning every token.

The tower is a timm :class:`~timm.models.vision_transformer.VisionTransformer` with CLIP's layout
(pre-norm ``ln_pre``, CLS token, post-norm ``ln_post``) and a bias-free projection to the joint
image-skeleton space (CLIP's ``proj``). The forward pass is written out so that the camera embedding
can be added to the CLS token before the positional embedding and so that three token sets come
back, as in CLIP-ReID/CSIP-ReID:

* ``x11`` (N, 1+Np, width): output of the second-to-last block,
* ``x12`` (N, 1+Np, width): output of the last block after ``ln_post`` (all tokens),
* ``xproj`` (N, 1+Np, proj_dim): ``x12`` projected.

Pretrained CLIP weights come through :func:`csip_reid.core.weights.resolve_weights`: by name
(``clip_vit_b16`` = OpenAI's ``ViT-B-16.pt``, downloaded when online) or from a local file, which may
be OpenAI's TorchScript archive, an OpenCLIP/timm state dict (``.bin``/``.pth``) or a ``.safetensors``
file. The 14x14 positional embedding is bilinearly resized to the configured grid (16x8 for 256x128),
as CLIP-ReID's ``resize_pos_embed`` does.
"""

from __future__ import annotations

import warnings
import zipfile
from functools import partial
from pathlib import Path

import torch
from timm.layers import trunc_normal_
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn
from torch import nn

from csip_reid.core.errors import CheckpointError
from csip_reid.core.weights import WeightsInfo, register_weights, resolve_weights
from csip_reid.models.config import InputConfig, VisualConfig

register_weights(
    WeightsInfo(
        "clip_vit_b16",
        "ViT-B-16.pt",
        "https://openaipublic.azureedge.net/clip/models/"
        "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt",
        "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f",
        "OpenAI CLIP ViT-B/16 (TorchScript archive); CSIP-ReID's visual encoder initialisation",
        "MIT", "400M web image-text pairs (not published; its model card puts deployed use out of scope)",
        False, "reid",
    )
)


class VisualEncoder(nn.Module):
    """CLIP ViT image tower with SIE camera embedding.

    Args:
        cfg: Tower sizes and pretrained-weights settings.
        inp: Input size (the positional embedding is built for this grid).
        num_cameras: Number of SIE camera embeddings (0 disables SIE).
    """

    def __init__(self, cfg: VisualConfig, inp: InputConfig, num_cameras: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.vit = VisionTransformer(
            img_size=(inp.height, inp.width),
            patch_size=cfg.patch_size,
            embed_dim=cfg.width,
            depth=cfg.depth,
            num_heads=cfg.heads,
            mlp_ratio=cfg.mlp_ratio,
            pre_norm=True,
            norm_layer=partial(nn.LayerNorm, eps=1e-5),
            act_layer=cfg.act,
            num_classes=0,
            global_pool="token",
        )
        self.proj = nn.Linear(cfg.width, cfg.proj_dim, bias=False)
        nn.init.normal_(self.proj.weight, std=cfg.width**-0.5)
        self.num_cameras = num_cameras if cfg.sie else 0
        if self.num_cameras > 0:
            self.sie = nn.Parameter(torch.zeros(self.num_cameras, cfg.width))
            trunc_normal_(self.sie, std=0.02)
        else:
            self.register_parameter("sie", None)

    @property
    def num_tokens(self) -> int:
        """Tokens per image: CLS + patches."""
        return 1 + self.vit.patch_embed.num_patches

    def camera_embedding(self, cams: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """(n, width) SIE term for camera indices; ``-1``/out-of-range/None → mean embedding."""
        if self.sie is None:
            return None
        mean = self.sie.mean(0, keepdim=True)
        if cams is None:
            return self.cfg.sie_coe * mean.expand(n, -1)
        cams = cams.to(self.sie.device).long().reshape(-1)
        known = (cams >= 0) & (cams < self.num_cameras)
        emb = self.sie[cams.clamp(0, self.num_cameras - 1)]
        emb = torch.where(known[:, None], emb, mean.expand_as(emb))
        return self.cfg.sie_coe * emb

    def forward(
        self, images: torch.Tensor, cams: torch.Tensor | None = None, sie: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode images.

        Args:
            images: (N, 3, H, W) normalised images.
            cams: (N,) camera indices (``-1`` = unknown) or None (all unknown). An unknown camera
                gets the mean SIE embedding, the neutral "average camera".
            sie: False = no camera term at all (the official ``get_image=True`` path: stage-1 visual
                targets and the visual prototypes); ``cams`` is then ignored.

        Returns:
            ``(x11, x12, xproj)`` token tensors, see the module docstring.
        """
        vit = self.vit
        x = vit.patch_embed(images)
        cls = vit.cls_token.expand(x.shape[0], -1, -1)
        sie = self.camera_embedding(cams, x.shape[0]) if sie else None
        if sie is not None:
            cls = cls + sie[:, None, :].to(cls.dtype)
        x = torch.cat([cls, x], dim=1) + vit.pos_embed
        x = vit.norm_pre(vit.patch_drop(vit.pos_drop(x)))
        for blk in vit.blocks[:-1]:
            x = blk(x)
        x11 = x
        x12 = vit.norm(vit.blocks[-1](x11))
        return x11, x12, self.proj(x12)

    def load_clip(self, source: str) -> None:
        """Load CLIP weights from a name or a file (see the module docstring)."""
        path = resolve_weights(source, "CLIP visual weights")
        state = _read_state_dict(path)
        try:
            state = checkpoint_filter_fn(state, self.vit, interpolation="bilinear", antialias=False)
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(f"{path} is not a CLIP ViT checkpoint this model can use: {e}") from e
        proj = state.pop("head.weight", None)
        state.pop("head.bias", None)
        try:
            missing, unexpected = self.vit.load_state_dict(state, strict=False)
        except RuntimeError as e:  # shape mismatches
            raise CheckpointError(
                f"{path} does not match the configured ViT (width {self.cfg.width}, depth {self.cfg.depth}, "
                f"patch {self.cfg.patch_size}): {str(e).splitlines()[1].strip()}"
            ) from e
        if missing or unexpected or proj is None:
            raise CheckpointError(
                f"{path} does not match the configured ViT (width {self.cfg.width}, depth "
                f"{self.cfg.depth}, patch {self.cfg.patch_size}): {len(missing)} missing and "
                f"{len(unexpected)} unexpected keys{'' if proj is not None else ', no projection'}"
            )
        if proj.shape != self.proj.weight.shape:
            raise CheckpointError(
                f"{path}: projection is {tuple(proj.shape)}, config wants {tuple(self.proj.weight.shape)}"
            )
        with torch.no_grad():
            self.proj.weight.copy_(proj)


def _is_torchscript(path: Path) -> bool:
    """True for a TorchScript archive (OpenAI's ``ViT-B-16.pt``): a zip with ``code/`` entries."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any("/code/" in n or n.endswith("constants.pkl") for n in z.namelist())


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a CLIP checkpoint: safetensors, TorchScript archive or a pickled state dict."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    if _is_torchscript(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load is deprecated, still the only reader
            return torch.jit.load(str(path), map_location="cpu").state_dict()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several unrelated types for foreign files
        from csip_reid.models.safe_load import unreadable_reason

        raise CheckpointError(f"{path} is not a CLIP weights file: {unreadable_reason(path, e)}") from e
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a state dict")
    return state.get("state_dict", state)
