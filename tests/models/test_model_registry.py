"""Every registered model: built, forward passes, feature size, parameter counts."""

from __future__ import annotations

import pytest
import timm
import torch

from csip_reid.core.errors import ConfigError
from csip_reid.models import create_model, list_models
from csip_reid.models.config import CSIPConfig


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_registry_names() -> None:
    assert list_models() == ["csip_tiny", "csip_vit_b16"]
    with pytest.raises(ConfigError, match="csip_tiny"):
        create_model("csip_nope")


def _skeleton_count(c: CSIPConfig, proj: int) -> int:
    """Parameters of the SGT encoder, from the architecture description."""
    d, f, k = c.skeleton.hidden_dim, c.skeleton.ffn_dim, c.skeleton.k_pos_enc
    embed = (3 * d + d) + (d * d + d)
    pe = k * d + d
    block = (d * 3 * d + 3 * d) + (d * d + d) + 2 * d + (d * f + f) + (f * d + d) + 2 * d
    return embed + pe + c.skeleton.layers * block + d * proj


def _mha(d: int) -> int:
    return 4 * d * d + 4 * d


def _pfu_count(c: CSIPConfig, n: int) -> int:
    p, h = c.visual.proj_dim, c.pfu.gate_hidden
    hid = int(p * c.pfu.mlp_ratio)
    gate = (2 * p * h + h) + (h + 1)
    attn = 3 * p * p + (p * p + p)  # official q/k/v without bias, output projection with bias
    layer = 3 * (2 * p) + 2 * attn + (p * hid + hid) + (hid * p + p)
    vtu = (2 * p + p * p + p + 2 * p) + (2 * p + p * p + p) + c.pfu.layers * layer + (2 * p + p * p + p)
    return gate + vtu


def _sgtm_count(c: CSIPConfig) -> int:
    d, p = c.visual.width, c.visual.proj_dim
    hid = int(d * c.sgtm.mlp_ratio)
    mixer = 2 * d + _mha(d)
    atd = (4 * d + _mha(d)) if c.sgtm.atd else 0
    ta = 4 * d + _mha(d) + (d * hid + hid) + (hid * d + d)
    return (d * d + d) + mixer + (p * d + d) + mixer + atd + 4 * d + ta + (d + 1)


@pytest.mark.parametrize("name", [n for n in list_models() if n != "csip_vit_b16"])
def test_small_models_forward(name: str) -> None:
    torch.manual_seed(0)
    n_cls = 7
    model = create_model(name, num_classes=n_cls)
    c = model.cfg
    b, t, h, w = 4, c.input.seq_len, c.input.height, c.input.width
    images = torch.randn(b, t, 3, h, w)
    skel, cams, pids = torch.randn(b, t, 17, 3), torch.tensor([0, 1, 2, -1]), torch.tensor([0, 0, 1, 1])
    s1 = model.forward_stage1(images, skel, cams)
    assert s1["v"].shape == s1["s"].shape == (b, c.visual.proj_dim) and s1["valid"].all()
    model.pfu.set_prototypes(torch.randn(n_cls, c.visual.proj_dim), torch.randn(n_cls, c.visual.proj_dim))
    out = model.forward_stage2(images, skel, cams, pids)
    for key in ("cls_logits", "proj_logits", "tp_logits", "csip_logits"):
        assert out[key].shape == (b, n_cls) and torch.isfinite(out[key]).all()
    assert out["frame_logits"].shape == (b * t, n_cls)
    # Without skeletons (none given, or all masked out) stage 2 still gives finite outputs.
    for sk, mask in ((None, None), (torch.zeros_like(skel), torch.zeros(b, t, 17, dtype=torch.bool))):
        out = model.forward_stage2(images, sk, cams, pids, mask)
        assert all(torch.isfinite(v).all() for v in out.values())
    model.eval()
    feat = model.extract(images, cams)
    assert feat.shape == (b, model.feature_dim) == (b, 2 * c.visual.width + c.visual.proj_dim)


@pytest.mark.parametrize("name", list_models())
def test_parameter_counts(name: str) -> None:
    """Every part's parameter count equals a count derived from the architecture (built on meta)."""
    with torch.device("meta"):
        model = create_model(name, num_classes=625, num_cameras=6)
        c = model.cfg
        # The CLIP image tower as timm builds it (its head = the CLIP projection, plus a bias we do
        # not have), plus 6 SIE camera embeddings.
        ref = timm.models.vision_transformer.VisionTransformer(
            img_size=(c.input.height, c.input.width), patch_size=c.visual.patch_size, embed_dim=c.visual.width,
            depth=c.visual.depth, num_heads=c.visual.heads, pre_norm=True, num_classes=c.visual.proj_dim)
    w, p = c.visual.width, c.visual.proj_dim
    assert count(model.visual) == count(ref) - p + 6 * w
    assert count(model.skeleton) == _skeleton_count(c, p)
    assert count(model.pfu) == _pfu_count(c, 625)
    assert count(model.sgtm) == _sgtm_count(c)
    heads = 625 * (w + p + w) + 2 * (w + p + w + w)  # classifiers + BNNeck weight/bias
    total = count(model)
    assert total == count(model.visual) + count(model.skeleton) + count(model.pfu) + count(model.sgtm) + heads
    assert model.feature_dim == 2 * w + p
    if name == "csip_vit_b16":
        with torch.device("meta"):
            timm_clip = timm.create_model("vit_base_patch16_clip_224", pretrained=False, img_size=(256, 128),
                                          num_classes=512)
        assert count(ref) == count(timm_clip) == 86_140_928  # timm's CLIP ViT-B/16 tower at 256x128
        assert model.feature_dim == 2048
        print(f"CSIP-ReID ViT-B/16 parameters: total {total:,}; visual {count(model.visual):,}; "
              f"skeleton {count(model.skeleton):,}; PFU {count(model.pfu):,}; SGTM {count(model.sgtm):,}")


@pytest.mark.slow
def test_full_model_shapes_at_256x128() -> None:
    torch.manual_seed(0)
    model = create_model("csip_vit_b16", num_classes=625, num_cameras=6)
    images = torch.randn(1, 2, 3, 256, 128)
    x11, x12, xproj = model.visual(images[0], torch.tensor([3, 3]))
    assert x11.shape == x12.shape == (2, 129, 768) and xproj.shape == (2, 129, 512)
    model.eval()
    with torch.no_grad():
        feat = model.extract(images, torch.tensor([3]))
    assert feat.shape == (1, 2048) and model.feature_dim == 2048
    assert torch.isfinite(feat).all()
