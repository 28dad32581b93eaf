"""Layers that follow the official CSIP-ReID code (Rifen-Lin/CSIP-ReID ac5a2ef) and old files that still load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from csip_reid.models import CSIPReID, load_config
from csip_reid.models.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from csip_reid.models.config import PFUConfig, SkeletonConfig
from csip_reid.models.pfu import UpdaterAttention, VisualTokenUpdater, upgrade_pfu_state
from csip_reid.models.skeleton import SGTBlock


def _legacy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict as csip-reid 0.x wrote it: PFU attention as nn.MultiheadAttention."""
    out = dict(state)
    prefixes = {k[: -len("q_proj.weight")] for k in state if k.startswith("pfu.") and k.endswith("attn.q_proj.weight")}
    for p in prefixes:
        out[p + "in_proj_weight"] = torch.cat([out.pop(f"{p}{n}_proj.weight") for n in "qkv"])
        out[p + "in_proj_bias"] = torch.cat([out.pop(f"{p}{n}_proj.bias") for n in "qkv"])
        out[p + "out_proj.weight"], out[p + "out_proj.bias"] = out.pop(p + "proj.weight"), out.pop(p + "proj.bias")
    return out


def test_sgt_dropout_follows_the_output_projection() -> None:
    """Official TranSG/CSIP: ``x + Dropout(out_proj(attn))``; dropping before the projection would leave its bias."""
    torch.manual_seed(0)
    block = SGTBlock(SkeletonConfig(hidden_dim=16, heads=2, ffn_dim=32, dropout=1.0)).train()
    with torch.no_grad():
        block.out.bias.normal_()  # random, so LayerNorm cannot cancel it as it cancels a constant
    x = torch.randn(2, 17, 16)
    out = block(x, torch.ones(2, 17, dtype=torch.bool))
    # p = 1: both residual branches vanish, whatever the projection's bias
    assert torch.allclose(out, block.norm2(block.norm1(x)), atol=1e-6)


def test_updater_attention_has_the_official_layout_and_init() -> None:
    torch.manual_seed(0)
    vtu = VisualTokenUpdater(512, PFUConfig(layers=2, heads=8))
    for layer in vtu.layers:
        for attn in (layer.self_attn, layer.cross_attn):
            assert isinstance(attn, UpdaterAttention)
            assert attn.q_proj.bias is None and attn.k_proj.bias is None and attn.v_proj.bias is None
            assert attn.proj.bias is not None and torch.count_nonzero(attn.proj.bias) == 0
            for lin in (attn.q_proj, attn.k_proj, attn.v_proj, attn.proj):
                assert 0.018 < float(lin.weight.detach().std()) < 0.022  # trunc_normal(0.02), not xavier (~0.054 here)
    assert not any(n.endswith("in_proj_weight") for n, _ in vtu.named_parameters())


def test_updater_dropout_is_on_the_output_not_the_attention_weights() -> None:
    torch.manual_seed(0)
    attn = UpdaterAttention(32, 2, dropout=1.0).train()
    with torch.no_grad():
        attn.proj.bias.fill_(1.0)
    q, kv = torch.randn(2, 5, 32), torch.randn(2, 7, 32)
    assert torch.count_nonzero(attn(q, kv)) == 0  # dropped after the projection: bias gone too
    attn.eval()
    assert torch.count_nonzero(attn(q, kv)) > 0


def test_updater_key_mask_ignores_padded_keys() -> None:
    torch.manual_seed(0)
    attn = UpdaterAttention(32, 2, dropout=0.0).eval()
    q, kv = torch.randn(1, 5, 32), torch.randn(1, 7, 32)
    pad = torch.tensor([[False] * 4 + [True] * 3])
    kv2 = kv.clone()
    kv2[0, 4:] = 50.0
    assert torch.allclose(attn(q, kv, pad), attn(q, kv2, pad), atol=1e-6)
    assert torch.allclose(attn(q, kv, pad), attn(q, kv[:, :4]), atol=1e-6)


def _tiny_with_prototypes(qkv_bias: bool) -> CSIPReID:
    cfg = load_config("csip_tiny")
    cfg.pfu.qkv_bias = qkv_bias
    model = CSIPReID(cfg, 4, 2).eval()
    model.pfu.set_prototypes(torch.randn(4, model.cfg.visual.proj_dim), torch.randn(4, model.cfg.visual.proj_dim))
    return model


def _logits(model: CSIPReID) -> torch.Tensor:
    torch.manual_seed(5)
    cfg = model.cfg
    images = torch.randn(2, cfg.input.seq_len, 3, cfg.input.height, cfg.input.width)
    skel = torch.randn(2, cfg.input.seq_len, 17, 3)
    with torch.no_grad():
        return model.forward_stage2(images, skel, torch.tensor([0, 1]))["csip_logits"]


def test_checkpoint_of_the_old_attention_layout_loads_exactly(tmp_path: Path) -> None:
    torch.manual_seed(0)
    old = _tiny_with_prototypes(qkv_bias=True)
    with torch.no_grad():
        for n, p in old.named_parameters():
            if n.startswith("pfu.") and n.endswith("_proj.bias"):
                p.normal_(0, 0.5)  # trained biases, as a 0.x stage-2 file has
    path = save_checkpoint(tmp_path / "old.pt", old, stage=2, epoch=1, stage_complete=True, skeleton_format=None)
    ckpt = load_checkpoint(path)
    ckpt["state_dict"] = _legacy(ckpt["state_dict"])
    del ckpt["config"]["pfu"]["qkv_bias"]  # 0.x configs do not know the switch
    loaded = model_from_checkpoint(ckpt, path).eval()
    assert loaded.cfg.pfu.qkv_bias is True
    assert torch.allclose(_logits(loaded), _logits(old), atol=1e-5)


@pytest.mark.parametrize("q_bias_zero", [True, False])
def test_old_stage1_weights_fold_into_the_bias_free_layout(q_bias_zero: bool) -> None:
    """Key bias: softmax-invariant; value bias: folded into the output bias; query bias: dropped."""
    torch.manual_seed(0)
    old = _tiny_with_prototypes(qkv_bias=True)
    with torch.no_grad():
        for n, p in old.named_parameters():
            if n.startswith("pfu.") and (n.endswith(("k_proj.bias", "v_proj.bias")) or
                                         (n.endswith("q_proj.bias") and not q_bias_zero)):
                p.normal_(0, 0.5)
            elif n.endswith("q_proj.bias"):
                p.zero_()
    new = _tiny_with_prototypes(qkv_bias=False)
    new.load_state_dict(upgrade_pfu_state(_legacy(old.state_dict()), qkv_bias=False), strict=True)
    same = torch.allclose(_logits(new), _logits(old), atol=1e-4)
    assert same == q_bias_zero
