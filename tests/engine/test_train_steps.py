"""Training steps of csip_tiny on real mini-MARS tracklets (synthetic skeletons, see tests/helpers/training.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from csip_reid.data import VideoReIDDataset, build_train_loader
from csip_reid.engine.context import TrainContext
from csip_reid.engine.optim import (
    is_bias,
    set_epoch_lr,
    stage1_lr,
    stage1_optimizer,
    stage2_factor,
    stage2_optimizer,
)
from csip_reid.engine.stage1 import stage1_step
from csip_reid.engine.stage2 import compute_prototypes, stage2_step
from csip_reid.models import build_model, load_config
from csip_reid.models.config import Stage1Config, Stage2Config
from csip_reid.models.csip import CSIPReID
from csip_reid.models.losses import stage2_losses
from tests.helpers.training import minimars_with_synthetic_skeletons, one_torch_thread  # noqa: F401


@pytest.fixture(scope="module")
def synth(mini_mars: Path, tmp_path_factory: pytest.TempPathFactory) -> VideoReIDDataset:
    return minimars_with_synthetic_skeletons(mini_mars, tmp_path_factory.mktemp("synthetic"))


@pytest.fixture()
def ctx(synth: VideoReIDDataset, tmp_path: Path) -> TrainContext:
    cfg = load_config("csip_tiny")
    cfg.skeleton.dropout = 0.0
    return TrainContext(cfg, synth, tmp_path, torch.device("cpu"), progress=False)


def _batches(ctx: TrainContext, n: int, batch_size: int, sampler: str, augment: bool) -> list[dict]:
    loader = build_train_loader(ctx.dataset, batch_size=batch_size, sampler=sampler, num_instances=4,
                                augment=augment, seed=3, **ctx.loader_kwargs())
    it = iter(loader)
    return [next(it) for _ in range(n)]


def _model(ctx: TrainContext) -> CSIPReID:
    torch.manual_seed(0)
    return build_model(ctx.cfg, ctx.dataset.num_train_pids, ctx.dataset.num_cameras)


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def test_stage1_trains_only_the_skeleton_encoder(ctx: TrainContext) -> None:
    model = _model(ctx)
    model.freeze_visual(True)
    opt = stage1_optimizer(model, ctx.cfg.stage1)
    before = _snapshot(model)
    (batch,) = _batches(ctx, 1, 16, "shuffle", False)
    assert batch["skeleton_mask"].any()
    terms = stage1_step(ctx, model, batch, opt, ctx.grad_scaler())
    assert terms is not None and all(math.isfinite(v) for v in terms.values())
    after = dict(model.named_parameters())
    for name, p in after.items():
        if name.startswith("skeleton."):
            continue
        assert p.grad is None, f"{name} got a gradient in stage 1"
        assert torch.equal(p.detach(), before[name]), f"{name} changed in stage 1"
    assert all(not p.requires_grad for p in model.visual.parameters())
    changed = [n for n, p in after.items() if n.startswith("skeleton.") and not torch.equal(p.detach(), before[n])]
    assert len(changed) == len([n for n in after if n.startswith("skeleton.")])


def test_stage1_loss_decreases(ctx: TrainContext) -> None:
    model = _model(ctx)
    model.freeze_visual(True)
    model.train()
    opt = stage1_optimizer(model, ctx.cfg.stage1)
    batches = _batches(ctx, 2, 16, "shuffle", False)
    scaler = ctx.grad_scaler()
    epochs = [[stage1_step(ctx, model, b, opt, scaler)["loss"] for b in batches] for _ in range(6)]
    first, last = sum(epochs[0]) / 2, sum(epochs[-1]) / 2
    print(f"stage-1 SupCon loss over 6 passes of 2 batches: {first:.3f} -> {last:.3f}")
    assert last < first - 0.1


def _stage2_model(ctx: TrainContext) -> CSIPReID:
    model = _model(ctx)
    model.pfu.set_prototypes(*compute_prototypes(ctx, model))
    model.freeze_skeleton(True)
    return model


def test_stage2_total_loss_decreases_and_skeleton_stays_frozen(ctx: TrainContext) -> None:
    model = _stage2_model(ctx)
    skel_before = _snapshot(model.skeleton)
    vis_before = _snapshot(model.visual)
    opt = stage2_optimizer(model, ctx.cfg.stage2)
    batches = _batches(ctx, 2, 8, "pk", True)
    scaler = ctx.grad_scaler()
    model.train()
    passes = [[stage2_step(ctx, model, b, opt, scaler) for b in batches] for _ in range(5)]
    first = sum(t["loss"] for t in passes[0]) / 2
    last = sum(t["loss"] for t in passes[-1]) / 2
    print(f"stage-2 total loss over 5 passes of 2 batches: {first:.3f} -> {last:.3f}")
    assert last < first
    assert all(math.isfinite(v) for t in passes[-1] for v in t.values())
    assert set(passes[0][0]) >= {"id_cls", "id_proj", "id_tp", "tri_cls", "tri_proj", "tri_tp", "csip", "frame"}
    assert all(torch.equal(p.detach(), skel_before[n]) for n, p in model.skeleton.named_parameters())
    assert not model.skeleton.training  # frozen encoder stays in eval mode (no dropout)
    assert any(not torch.equal(p.detach(), vis_before[n]) for n, p in model.visual.named_parameters())


def test_sgtm_sends_no_gradient_to_the_vit(ctx: TrainContext) -> None:
    model = _stage2_model(ctx)
    model.train()
    (b,) = _batches(ctx, 1, 8, "pk", False)
    out = model.forward_stage2(b["images"], b["skeletons"], b["camid"], b["pid"], b["skeleton_mask"])
    _, terms = stage2_losses(out, b["pid"], ctx.cfg.loss, b["images"].shape[1])
    (terms["frame"] + terms["id_tp"] + terms["tri_tp"]).backward()
    assert all(p.grad is None for p in model.visual.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.sgtm.parameters())


def test_prototypes_are_per_identity_means(ctx: TrainContext) -> None:
    model = _model(ctx)
    p_s, p_v = compute_prototypes(ctx, model)
    n = ctx.dataset.num_train_pids
    assert p_s.shape == p_v.shape == (n, ctx.cfg.visual.proj_dim)
    # Independent recomputation, one tracklet at a time.
    from csip_reid.data import build_test_loader

    loader = build_test_loader(ctx.dataset.train, mode="rrs", batch_size=1, skeleton_format="h36m17-3d",
                               **{k: v for k, v in ctx.loader_kwargs().items() if k != "num_workers"})
    vs: dict[int, list[torch.Tensor]] = {}
    ss: dict[int, list[torch.Tensor]] = {}
    model.eval()
    for batch in loader:
        f = model.sequence_features(batch["images"], batch["skeletons"], batch["camid"], batch["skeleton_mask"])
        vs.setdefault(int(batch["pid"]), []).append(f["v"][0])
        ss.setdefault(int(batch["pid"]), []).append(f["s"][0])
    for k in range(n):
        assert torch.allclose(p_v[k], torch.stack(vs[k]).mean(0), atol=1e-5)
        assert torch.allclose(p_s[k], torch.stack(ss[k]).mean(0), atol=1e-5)


def test_identity_without_skeletons_falls_back_to_visual_prototype(ctx: TrainContext) -> None:
    ds = ctx.dataset
    no_skel = [r if r.pid != 2 else type(r)(r.frames, r.pid, r.camid, None, r.name) for r in ds.train]
    ctx.dataset = VideoReIDDataset(ds.name, no_skel, ds.query, ds.gallery, ds.num_train_pids, ds.num_cameras,
                                   ds.skeleton_format)
    p_s, p_v = compute_prototypes(ctx, _model(ctx))
    assert torch.equal(p_s[2], p_v[2])
    assert not torch.allclose(p_s[3], p_v[3])


def test_schedules_follow_the_official_one_based_epochs(ctx: TrainContext) -> None:
    # Official: timm CosineLRScheduler(t_initial=120, lr_min=1e-6, warmup_t=5, warmup_lr_init=1e-5)
    # stepped with epoch = 1..120, so lr(t) = 1e-5 + t * (3.5e-4 - 1e-5) / 5 for t < 5, then
    # 1e-6 + 0.5 (3.5e-4 - 1e-6)(1 + cos(pi t / 120)).
    s1 = Stage1Config(epochs=120, lr=3.5e-4, warmup_epochs=5, warmup_lr=1e-5, min_lr=1e-6)
    assert stage1_lr(s1, 1) == pytest.approx(7.8e-5)
    assert stage1_lr(s1, 4) == pytest.approx(2.82e-4)
    assert stage1_lr(s1, 5) == pytest.approx(1e-6 + 0.5 * 3.49e-4 * (1 + math.cos(math.pi * 5 / 120)))
    assert stage1_lr(s1, 60) == pytest.approx(1e-6 + 0.5 * (3.5e-4 - 1e-6))  # cos(pi/2) = 0
    assert stage1_lr(s1, 120) == pytest.approx(1e-6)  # the last epoch reaches lr_min
    # Official WarmupMultiStepLR(milestones=[30, 50, 70], gamma=0.1, warmup_factor=0.1, warmup_iters=10,
    # linear) with last_epoch = 1..80: factor = 0.1 (1 - e/10) + e/10, times 0.1 per milestone <= e.
    s2 = Stage2Config(warmup_epochs=10, warmup_factor=0.1, milestones=[30, 50, 70], gamma=0.1)
    assert stage2_factor(s2, 1) == pytest.approx(0.19)
    assert stage2_factor(s2, 5) == pytest.approx(0.55)
    assert [stage2_factor(s2, e) for e in (10, 29, 30, 49, 50, 70, 80)] == pytest.approx(
        [1, 1, 0.1, 0.1, 0.01, 0.001, 0.001])
    # The training loops pass their 0-based index: loop epoch 0 is official epoch 1.
    model = _model(ctx)
    opt1 = stage1_optimizer(model, s1)
    assert set_epoch_lr(opt1, s1, 0) == pytest.approx(7.8e-5)
    opt2 = stage2_optimizer(model, Stage2Config(lr=5e-6, warmup_epochs=10, warmup_factor=0.1))
    assert set_epoch_lr(opt2, Stage2Config(lr=5e-6, warmup_epochs=10, warmup_factor=0.1), 0) == pytest.approx(
        0.19 * opt2.param_groups[0]["base_lr"])


def test_in_proj_bias_gets_the_bias_learning_rate(ctx: TrainContext) -> None:
    model = _model(ctx)
    cfg = Stage2Config(lr=5e-6, bias_lr_factor=2.0, large_fc_lr=True, fc_lr_factor=10.0)
    opt = stage2_optimizer(model, cfg)
    group_of = {id(p): g for g in opt.param_groups for p in g["params"]}
    in_proj = [(n, p) for n, p in model.named_parameters() if n.endswith("in_proj_bias") and p.requires_grad]
    assert in_proj, "the model has MultiheadAttention layers"
    for name, p in in_proj:
        g = group_of[id(p)]
        big = 10.0 if name.startswith(("pfu.", "sgtm.")) else 1.0
        assert g["lr"] == pytest.approx(5e-6 * 2.0 * big), name
        assert g["weight_decay"] == cfg.weight_decay_bias
    assert not is_bias("visual.vit.blocks.0.attn.in_proj_weight") and is_bias("sgtm.x.in_proj_bias")


@pytest.mark.parametrize("large_fc_lr", [True, False])
def test_stage2_param_groups(ctx: TrainContext, large_fc_lr: bool) -> None:
    model = _model(ctx)
    model.freeze_skeleton(True)
    cfg = Stage2Config(lr=5e-6, bias_lr_factor=2.0, large_fc_lr=large_fc_lr, fc_lr_factor=10.0)
    opt = stage2_optimizer(model, cfg)
    lr_of = {id(p): g["lr"] for g in opt.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    big = 10.0 if large_fc_lr else 1.0
    assert lr_of[id(named["visual.vit.blocks.0.attn.qkv.weight"])] == pytest.approx(5e-6)
    assert lr_of[id(named["visual.vit.blocks.0.attn.qkv.bias"])] == pytest.approx(1e-5)
    assert lr_of[id(named["sgtm.pool.weight"])] == pytest.approx(5e-6 * big)
    assert lr_of[id(named["pfu.fusion.gate.0.bias"])] == pytest.approx(1e-5 * big)
    assert lr_of[id(named["classifier_temp.weight"])] == pytest.approx(5e-6 * big)
    assert lr_of[id(named["classifier.weight"])] == pytest.approx(5e-6)
    # Frozen skeleton and frozen BN biases are not optimised at all.
    assert id(named["skeleton.proj"]) not in lr_of and id(named["bottleneck.bias"]) not in lr_of
    assert len(lr_of) == sum(p.requires_grad for p in model.parameters())


def test_prototypes_are_deterministic_eval_mode_first_frames(ctx: TrainContext) -> None:
    """Decision (docs/csip-quirks.md #20): eval mode + rrs_test frames, not the official train mode."""
    model = _model(ctx)
    model.train()
    torch.manual_seed(1)
    a = compute_prototypes(ctx, model)
    torch.manual_seed(2)
    b = compute_prototypes(ctx, model)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    # What the official train-mode pass would add: the skeleton encoder's dropout and PE sign flips.
    skel = torch.randn(2, 4, 17, 3)
    model.skeleton.train()
    assert not torch.allclose(model.skeleton(skel)[1], model.skeleton(skel)[1])
    model.skeleton.eval()
    assert torch.equal(model.skeleton(skel)[1], model.skeleton(skel)[1])
