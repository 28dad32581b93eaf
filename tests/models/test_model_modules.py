"""Building blocks: visual encoder (SIE, CLIP loading), SGT skeleton encoder, SGTM, PFU."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from csip_reid.core.errors import CheckpointError
from csip_reid.models.config import PFUConfig, SGTMConfig, load_config
from csip_reid.models.pfu import PrototypeFusionUpdater
from csip_reid.models.sgtm import SGTM
from csip_reid.models.skeleton import H36M_EDGES, SkeletonEncoder, laplacian_eigvecs
from csip_reid.models.visual import VisualEncoder

TINY = load_config("csip_tiny")


@pytest.fixture()
def visual() -> VisualEncoder:
    torch.manual_seed(0)
    return VisualEncoder(TINY.visual, TINY.input, num_cameras=3).eval()


# -- visual ------------------------------------------------------------------------------------
def test_visual_token_shapes(visual: VisualEncoder) -> None:
    x11, x12, xproj = visual(torch.randn(2, 3, 64, 32), torch.tensor([0, 2]))
    n_tok = 1 + (64 // 8) * (32 // 8)
    assert visual.num_tokens == n_tok
    assert x11.shape == x12.shape == (2, n_tok, 64) and xproj.shape == (2, n_tok, 32)
    # x12 is ln_post(last block(x11)) and xproj its bias-free projection.
    assert torch.allclose(x12, visual.vit.norm(visual.vit.blocks[-1](x11)), atol=1e-6)
    assert torch.allclose(xproj, x12 @ visual.proj.weight.t(), atol=1e-6)


def test_sie_unknown_camera_is_the_mean_embedding(visual: VisualEncoder) -> None:
    img = torch.randn(1, 3, 64, 32).expand(4, -1, -1, -1)
    _, x12, _ = visual(img, torch.tensor([0, 1, -1, 7]))
    _, x12_none, _ = visual(img[:1], None)
    assert not torch.allclose(x12[0], x12[1])
    assert torch.allclose(x12[2], x12[3], atol=1e-6)  # -1 and out-of-range are both "unknown"
    assert torch.allclose(x12[2], x12_none[0], atol=1e-6)
    emb = visual.camera_embedding(torch.tensor([-1]), 1)
    assert torch.allclose(emb[0], visual.sie.mean(0))


def _openai_layout(vit: VisionTransformer, proj: torch.Tensor) -> dict[str, torch.Tensor]:
    """The tensors of ``vit`` renamed to OpenAI CLIP's ``visual.*`` keys (written independently here)."""
    sd = vit.state_dict()
    out = {
        "visual.conv1.weight": sd["patch_embed.proj.weight"],
        "visual.class_embedding": sd["cls_token"].reshape(-1),
        "visual.positional_embedding": sd["pos_embed"][0],
        "visual.ln_pre.weight": sd["norm_pre.weight"], "visual.ln_pre.bias": sd["norm_pre.bias"],
        "visual.ln_post.weight": sd["norm.weight"], "visual.ln_post.bias": sd["norm.bias"],
        "visual.proj": proj.t().contiguous(),
        "transformer.resblocks.0.ln_1.weight": torch.zeros(3),  # text tower: must be ignored
    }
    for i in range(len(vit.blocks)):
        p, q = f"blocks.{i}.", f"visual.transformer.resblocks.{i}."
        for a, b in [("norm1", "ln_1"), ("norm2", "ln_2"), ("attn.proj", "attn.out_proj"),
                     ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")]:
            out[q + b + ".weight"], out[q + b + ".bias"] = sd[p + a + ".weight"], sd[p + a + ".bias"]
        out[q + "attn.in_proj_weight"], out[q + "attn.in_proj_bias"] = sd[p + "attn.qkv.weight"], sd[p + "attn.qkv.bias"]
    return out


class _Holder(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _torchscript_archive(state: dict[str, torch.Tensor], path: Path) -> None:
    """Save ``state`` as a TorchScript archive, the format of OpenAI's ``ViT-B-16.pt``."""
    root = _Holder()
    for key, value in state.items():
        *mods, leaf = key.split(".")
        m = root
        for name in mods:
            if not hasattr(m, name):
                m.add_module(name, _Holder())
            m = getattr(m, name)
        m.register_parameter(leaf, torch.nn.Parameter(value.clone(), requires_grad=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.script(root), str(path))


@pytest.mark.parametrize("layout", ["openai", "torchscript", "timm"])
def test_clip_weights_load_and_pos_embed_is_resized(tmp_path: Path, visual: VisualEncoder, layout: str) -> None:
    # A "pretrained" tower on a 4x4 grid (32x32 input); ours is 8x4 (64x32): the pos-embed is resized.
    torch.manual_seed(1)
    src = VisionTransformer(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=2, pre_norm=True,
                            num_classes=0, act_layer="quick_gelu")
    proj = torch.randn(32, 64)
    path = tmp_path / "clip.pth"
    if layout == "timm":
        torch.save({**src.state_dict(), "head.weight": proj, "head.bias": torch.zeros(32)}, path)
    elif layout == "openai":
        torch.save(_openai_layout(src, proj), path)
    else:
        _torchscript_archive(_openai_layout(src, proj), path)
    visual.load_clip(str(path))
    assert torch.equal(visual.vit.blocks[1].mlp.fc2.weight, src.blocks[1].mlp.fc2.weight)
    assert torch.equal(visual.vit.blocks[0].attn.qkv.bias, src.blocks[0].attn.qkv.bias)
    assert torch.equal(visual.proj.weight, proj)
    assert torch.equal(visual.vit.cls_token, src.cls_token)
    pe = visual.vit.pos_embed
    assert pe.shape == (1, 1 + 8 * 4, 64)
    assert torch.equal(pe[0, 0], src.pos_embed[0, 0])  # the CLS position is kept as is
    # CLIP-ReID resizes the grid bilinearly (here 4x4 → 8x4), the CLS position untouched.
    grid = src.pos_embed[0, 1:].detach().reshape(1, 4, 4, 64).permute(0, 3, 1, 2)
    want = torch.nn.functional.interpolate(grid, size=(8, 4), mode="bilinear", align_corners=False)
    assert torch.allclose(pe[0, 1:].detach(), want.permute(0, 2, 3, 1).reshape(32, 64), atol=1e-6)


def test_clip_weights_of_another_size_are_refused(tmp_path: Path, visual: VisualEncoder) -> None:
    src = VisionTransformer(img_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=2, num_classes=0)
    torch.save({**src.state_dict(), "head.weight": torch.randn(32, 48)}, tmp_path / "w.pth")
    with pytest.raises(CheckpointError):
        visual.load_clip(str(tmp_path / "w.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError):
        visual.load_clip(str(tmp_path / "junk.pth"))


# -- skeleton ----------------------------------------------------------------------------------
def test_laplacian_eigvecs_are_eigenvectors() -> None:
    n, k = 17, 10
    vecs = laplacian_eigvecs(H36M_EDGES, n, k).double().numpy()
    adj = np.zeros((n, n))
    for a, b in H36M_EDGES:
        adj[a, b] = adj[b, a] = 1
    d = adj.sum(1)
    lap = np.eye(n) - adj / np.sqrt(np.outer(d, d))
    assert vecs.shape == (n, k)
    assert np.allclose(vecs.T @ vecs, np.eye(k), atol=1e-6)
    lam = np.diag(vecs.T @ lap @ vecs)
    assert np.allclose(lap @ vecs, vecs * lam, atol=1e-6)
    # Eigenvalues 1..k in ascending order, compared with eigvalsh's at float32 precision (the vectors
    # are float32; the H36M graph has repeated eigenvalues, whose Rayleigh quotients may differ in
    # the last bits in either direction).
    ref = np.linalg.eigvalsh(lap)
    assert ref[0] == pytest.approx(0.0, abs=1e-9)  # the trivial (constant) vector is skipped
    assert np.allclose(lam, ref[1 : k + 1], atol=1e-6)
    # Within a repeated eigenvalue only the spanned subspace is defined: its projector is.
    for val in (ref[2], 1.0):  # 0.134 twice, 1.0 three times
        cols = np.isclose(lam, val, atol=1e-6)
        proj = vecs[:, cols] @ vecs[:, cols].T
        full = np.linalg.eigh(lap)[1][:, np.isclose(ref, val, atol=1e-6)]
        assert cols.sum() >= 2 and np.allclose(proj, full @ full.T, atol=1e-5)


def test_skeleton_encoder_shapes_and_missing_data() -> None:
    torch.manual_seed(0)
    enc = SkeletonEncoder(TINY.skeleton, out_dim=32).eval()
    x = torch.randn(3, 4, 17, 3)
    mask = torch.ones(3, 4, 17, dtype=torch.bool)
    mask[0, 1, 5] = False  # one joint missing
    mask[1, 2] = False  # one frame missing
    mask[2] = False  # no skeleton at all
    tokens, feat, m = enc(x, mask)
    assert tokens.shape == (3, 4, 17, 32) and feat.shape == (3, 32)
    assert torch.equal(m, mask)
    # Whatever sits at missing places (garbage or NaN) changes nothing.
    y = x.clone()
    y[0, 1, 5] = 1e3
    y[1, 2] = float("nan")
    _, feat2, _ = enc(y, mask)
    assert torch.allclose(feat, feat2, atol=1e-5)
    assert torch.all(feat[2] == 0)
    # NaN input without a mask is treated as missing.
    z = x.clone()
    z[0, 1, 5] = float("nan")
    _, feat3, m3 = enc(z)
    assert not m3[0, 1, 5] and m3.sum() == 3 * 4 * 17 - 1
    assert torch.allclose(feat3[0], feat[0], atol=1e-5)


def test_skeleton_pe_sign_flip_only_in_training() -> None:
    cfg = load_config("csip_tiny").skeleton
    cfg.dropout = 0.0
    torch.manual_seed(0)
    enc = SkeletonEncoder(cfg, out_dim=32)
    x = torch.randn(2, 2, 17, 3)
    enc.eval()
    assert torch.equal(enc(x)[1], enc(x)[1])
    enc.train()
    outs = {tuple(enc(x)[1][0, :3].tolist()) for _ in range(12)}
    assert len(outs) > 1


# -- SGTM --------------------------------------------------------------------------------------
def _sgtm(faithful: bool = False) -> SGTM:
    torch.manual_seed(0)
    return SGTM(64, 32, SGTMConfig(heads=2, dropout=0.0, faithful_ske_view=faithful)).eval()


def test_sgtm_branches_shapes() -> None:
    m = _sgtm()
    tok = torch.randn(2, 4, 9, 64)
    joints = torch.randn(2, 4, 17, 32)
    z, f = m(tok, joints)
    assert z.shape == (2, 4, 64) and f.shape == (2, 64)
    assert torch.allclose(f, z.mean(1))
    z_test, _ = m(tok)
    assert z_test.shape == (2, 4, 64) and not torch.allclose(z, z_test)


def test_sgtm_masked_joints_are_ignored() -> None:
    m = _sgtm()
    tok, joints = torch.randn(2, 3, 9, 64), torch.randn(2, 3, 17, 32)
    mask = torch.ones(2, 3, 17, dtype=torch.bool)
    mask[0, :, :4] = False
    mask[1] = False  # no skeleton: ATD skipped, joint tokens masked out
    z, _ = m(tok, joints, mask)
    j2 = joints.clone()
    j2[0, :, :4] = 50.0
    j2[1] = -7.0
    z2, _ = m(tok, j2, mask)
    assert torch.allclose(z, z2, atol=1e-5)


def test_faithful_view_scrambles_joint_tokens() -> None:
    tok, joints = torch.randn(2, 3, 9, 64), torch.randn(2, 3, 17, 32)
    fixed, faithful = _sgtm(False), _sgtm(True)
    z_fixed, _ = fixed(tok, joints)
    z_faithful, _ = faithful(tok, joints)
    assert not torch.allclose(z_fixed, z_faithful, atol=1e-4)
    # With every joint token identical the scramble is invisible.
    same = joints[:1, :1, :1].expand(2, 3, 17, 32)
    assert torch.allclose(fixed(tok, same)[0], faithful(tok, same)[0], atol=1e-5)


# -- PFU ---------------------------------------------------------------------------------------
def test_pfu_fusion_and_logits() -> None:
    torch.manual_seed(0)
    pfu = PrototypeFusionUpdater(5, 32, PFUConfig(gate_hidden=16, layers=1, heads=2, dropout=0.0)).eval()
    with pytest.raises(RuntimeError, match="prototypes"):
        pfu(torch.randn(2, 32), torch.randn(2, 9, 32), None, None)
    p_s, p_v = torch.randn(5, 32), torch.randn(5, 32)
    pfu.set_prototypes(p_s, p_v)
    fused, alpha = pfu.fusion(p_s, p_v)
    assert alpha.shape == (5,) and torch.all((alpha > 0) & (alpha < 1))
    assert torch.allclose(fused, alpha[:, None] * p_s + (1 - alpha[:, None]) * p_v, atol=1e-6)
    v = torch.randn(2, 32)
    vis, joints = torch.randn(2, 9, 32), torch.randn(2, 17, 32)
    present = torch.ones(2, 17, dtype=torch.bool)
    logits, _ = pfu(v, vis, joints, present)
    assert logits.shape == (2, 5)
    # logits = <v_b, P_F + VTU(P_F, tokens_b)>
    upd = fused + pfu.vtu(fused, torch.cat([vis, joints], 1))
    assert torch.allclose(logits, torch.einsum("bd,bnd->bn", v, upd), atol=1e-5)
    # Absent joints do not influence the update.
    present[0, 3:] = False
    j2 = joints.clone()
    j2[0, 3:] = 99.0
    assert torch.allclose(pfu(v, vis, joints, present)[0], pfu(v, vis, j2, present)[0], atol=1e-5)


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_prototype_update_rule(momentum: float) -> None:
    pfu = PrototypeFusionUpdater(3, 4, PFUConfig(gate_hidden=8, layers=1, heads=2, prototype_momentum=momentum))
    p_s, p_v = torch.zeros(3, 4), torch.ones(3, 4)
    pfu.set_prototypes(p_s, p_v)
    v = torch.tensor([[3.0] * 4, [5.0] * 4, [9.0] * 4])
    s = torch.tensor([[2.0] * 4, [4.0] * 4, [6.0] * 4])
    pfu.momentum_update(v, s, torch.tensor([True, False, True]), torch.tensor([1, 1, 2]))
    if momentum == 0:
        assert torch.equal(pfu.proto_v, p_v) and torch.equal(pfu.proto_s, p_s)
    else:
        # id 1: v mean (3+5)/2 = 4 → 0.5*1 + 0.5*4 = 2.5; s only from the valid sample: 0.5*0 + 0.5*2 = 1.
        # id 2: v 0.5 + 4.5 = 5; s 3. id 0 untouched.
        assert torch.allclose(pfu.proto_v[:, 0], torch.tensor([1.0, 2.5, 5.0]))
        assert torch.allclose(pfu.proto_s[:, 0], torch.tensor([0.0, 1.0, 3.0]))


def test_pretrained_clip_offline_gives_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from csip_reid.core.errors import WeightsNotFoundError
    from csip_reid.models import build_model

    monkeypatch.setenv("REID_OFFLINE", "1")
    monkeypatch.setenv("REID_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("REID_CACHE_DIR", str(tmp_path / "cache"))
    cfg = load_config("csip_mars")
    assert cfg.visual.pretrained
    with torch.device("meta"), pytest.raises(WeightsNotFoundError, match="ViT-B-16.pt"):
        build_model(cfg, num_classes=10)
