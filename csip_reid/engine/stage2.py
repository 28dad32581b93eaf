"""Stage 2: prototype-guided fine-tuning, plus prototype building and in-training evaluation.

* :func:`compute_prototypes`: the stage-1 model runs once over the training set (test transform,
  ``rrs`` sampling); per identity, the visual prototype is the mean visual sequence feature and the
  skeleton prototype the mean skeleton sequence feature of its tracklets that have skeletons (an
  identity without any skeleton gets its visual prototype as skeleton prototype, so its fused
  prototype is the visual one whatever the gate says).
* :func:`run_stage2`: ID + triplet + CSIP + frame losses (:func:`~csip_reid.models.losses.stage2_losses`),
  evaluation every ``eval_period`` epochs and at the last one, ``best.pt`` written only when the mAP
  improves, ``last.pt`` every epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from csip_reid.data import SequenceRecord, build_test_loader, build_train_loader
from csip_reid.engine.context import Meter, TrainContext, epoch_seed, log, seed_everything, timed
from csip_reid.engine.optim import set_epoch_lr
from csip_reid.models.checkpoint import save_checkpoint
from csip_reid.models.csip import CSIPReID
from csip_reid.models.losses import stage2_losses


def _skeleton_format(ctx: TrainContext) -> str:
    return ctx.dataset.skeleton_format or ctx.cfg.skeleton.format


@torch.no_grad()
def compute_prototypes(ctx: TrainContext, model: CSIPReID) -> tuple[torch.Tensor, torch.Tensor]:
    """(P_S, P_V), each (num_classes, proj_dim), from ``model`` over the training tracklets."""
    n, dim = model.num_classes, model.cfg.visual.proj_dim
    v_sum = torch.zeros(n, dim, dtype=torch.float64)
    s_sum = torch.zeros(n, dim, dtype=torch.float64)
    v_cnt = torch.zeros(n, dtype=torch.float64)
    s_cnt = torch.zeros(n, dtype=torch.float64)
    loader = build_test_loader(ctx.dataset.train, mode="rrs", batch_size=ctx.cfg.run.eval_batch_size,
                               skeletons=True, skeleton_format=_skeleton_format(ctx), **ctx.loader_kwargs())
    model.eval()
    for batch in tqdm(loader, desc="prototypes", disable=not ctx.progress, leave=False, dynamic_ncols=True):
        b = ctx.to_device(batch)
        with ctx.autocast():
            out = model.sequence_features(b["images"], b["skeletons"], b["camid"], b["skeleton_mask"])
        pid = batch["pid"]
        valid = out["valid"].cpu()
        v_sum.index_add_(0, pid, out["v"].cpu().double())
        v_cnt.index_add_(0, pid, torch.ones(len(pid), dtype=torch.float64))
        s_sum.index_add_(0, pid[valid], out["s"].cpu().double()[valid])
        s_cnt.index_add_(0, pid[valid], torch.ones(int(valid.sum()), dtype=torch.float64))
    if (v_cnt == 0).any():
        log.warning("%d identities have no training tracklet; their prototypes are zero", int((v_cnt == 0).sum()))
    p_v = v_sum / v_cnt.clamp_min(1)[:, None]
    p_s = torch.where(s_cnt[:, None] > 0, s_sum / s_cnt.clamp_min(1)[:, None], p_v)
    return p_s.float(), p_v.float()


@torch.no_grad()
def extract_features(ctx: TrainContext, model: CSIPReID, records: Sequence[SequenceRecord]) -> np.ndarray:
    """(N, feature_dim) L2-normalised RGB-only features (clip features averaged per record)."""
    loader = build_test_loader(records, mode=ctx.cfg.stage2.eval_sampling, batch_size=ctx.cfg.run.eval_batch_size,
                               skeletons=False, **ctx.loader_kwargs())
    sums = torch.zeros(len(records), model.feature_dim, dtype=torch.float64)
    counts = torch.zeros(len(records), dtype=torch.float64)
    model.eval()
    for batch in tqdm(loader, desc="extract", disable=not ctx.progress, leave=False, dynamic_ncols=True):
        with torch.autocast(ctx.device.type, enabled=False):  # evaluation in fp32, as the official code
            f = model.extract(batch["images"].to(ctx.device), batch["camid"].to(ctx.device))
        sums.index_add_(0, batch["index"], f.cpu().double())
        counts.index_add_(0, batch["index"], torch.ones(len(f), dtype=torch.float64))
    feats = sums / counts.clamp_min(1)[:, None]
    return torch.nn.functional.normalize(feats, dim=1).float().numpy()


def evaluate_model(ctx: TrainContext, model: CSIPReID) -> dict[str, float]:
    """mAP / CMC of ``model`` on the dataset's query and gallery (cosine on unit features)."""
    from csip_reid.engine.evaluate import evaluate_features

    ds = ctx.dataset
    qf = extract_features(ctx, model, ds.query)
    gf = extract_features(ctx, model, ds.gallery)
    res = evaluate_features(
        qf, gf,
        np.array([r.pid for r in ds.query]), np.array([r.pid for r in ds.gallery]),
        np.array([r.camid for r in ds.query]), np.array([r.camid for r in ds.gallery]),
    )
    return {k: float(v) for k, v in res.items()}


def stage2_step(
    ctx: TrainContext, model: CSIPReID, batch: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
) -> dict[str, float]:
    """One optimisation step; returns the total and every loss term."""
    b = ctx.to_device(batch)
    with ctx.autocast():
        out = model.forward_stage2(b["images"], b["skeletons"], b["camid"], b["pid"], b["skeleton_mask"])
        total, terms = stage2_losses(out, b["pid"], ctx.cfg.loss, b["images"].shape[1])
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(total).backward()
    scaler.step(optimizer)
    scaler.update()
    return {"loss": total.item(), **{k: v.item() for k, v in terms.items()}, "alpha": out["alpha"].mean().item()}


def run_stage2(
    ctx: TrainContext, model: CSIPReID, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
    start_epoch: int = 0, best: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train stage 2 from ``start_epoch``.

    Args:
        best: ``{"mAP", "epoch"}`` of the best evaluation so far (when resuming).

    Returns:
        ``{"best": {...} | None, "last_metrics": {...}, "last_losses": {...}}``.
    """
    cfg, s2 = ctx.cfg, ctx.cfg.stage2
    can_eval = bool(ctx.dataset.query) and bool(ctx.dataset.gallery)
    if not can_eval:
        log.warning("dataset %s has no query/gallery split: no evaluation, no best.pt", ctx.dataset.name)
    metrics: dict[str, float] = {}
    losses: dict[str, float] = {}
    for epoch in range(start_epoch, s2.epochs):
        seed_everything(epoch_seed(cfg, 2, epoch))
        lr = set_epoch_lr(optimizer, s2, epoch)
        loader = build_train_loader(
            ctx.dataset, batch_size=s2.batch_size, sampler=s2.sampler, num_instances=s2.num_instances,
            augment=s2.augment, seed=epoch_seed(cfg, 2, epoch), skeletons=True, **ctx.loader_kwargs())
        model.train()
        epoch_meter, window = Meter(), Meter()
        n_steps = len(loader) if ctx.max_steps is None else min(len(loader), ctx.max_steps)
        bar = tqdm(loader, total=n_steps, desc=f"stage2 {epoch + 1}/{s2.epochs}", disable=not ctx.progress,
                   leave=False, dynamic_ncols=True)
        with timed() as t:
            for i, batch in enumerate(bar):
                if i >= n_steps:
                    break
                terms = stage2_step(ctx, model, batch, optimizer, scaler)
                epoch_meter.add(terms)
                window.add(terms)
                bar.set_postfix(loss=f"{terms['loss']:.3f}")
                if window.n >= cfg.run.log_period:
                    ctx.logger.write({"stage": 2, "epoch": epoch + 1, "iter": i + 1, "lr": lr, **window.means()})
                    window = Meter()
        losses = epoch_meter.means()
        done = epoch + 1 == s2.epochs
        metrics = {}
        if can_eval and ((epoch + 1) % s2.eval_period == 0 or done):
            metrics = evaluate_model(ctx, model)
        ctx.logger.write({"stage": 2, "epoch": epoch + 1, "type": "epoch", "lr": lr, "steps": epoch_meter.n,
                          "time_s": round(t["s"], 2), **losses, **{f"eval_{k}": v for k, v in metrics.items()}})
        log.info("stage 2 epoch %d/%d loss %.4f%s", epoch + 1, s2.epochs, losses.get("loss", float("nan")),
                 f" mAP {metrics['mAP']:.4f}" if metrics else "")
        if metrics and (best is None or metrics["mAP"] > best["mAP"]):
            best = {"mAP": metrics["mAP"], "epoch": epoch + 1}
            save_checkpoint(ctx.output / "best.pt", model, stage=2, epoch=epoch + 1, stage_complete=done,
                            skeleton_format=_skeleton_format(ctx), metrics=metrics)
        save_checkpoint(ctx.output / "last.pt", model, stage=2, epoch=epoch + 1, stage_complete=done,
                        skeleton_format=_skeleton_format(ctx), metrics=metrics,
                        train_state={"optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                                     "best": best})
    return {"best": best, "last_metrics": metrics, "last_losses": losses}
