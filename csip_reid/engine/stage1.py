"""Stage 1: contrastive skeleton-image pretraining (the visual encoder is frozen).

Each step: T frames and skeletons per tracklet; visual feature = mean over frames of the projected
CLS token of the frozen CLIP encoder (computed under ``no_grad``); skeleton feature = SGT sequence
feature; loss = symmetric supervised contrastive loss with same-identity positives. Only the skeleton
encoder is optimised. Samples without any skeleton are left out of the loss.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from csip_reid.data import build_train_loader
from csip_reid.engine.context import Meter, TrainContext, epoch_seed, log, seed_everything, timed
from csip_reid.engine.optim import set_epoch_lr
from csip_reid.models.checkpoint import save_checkpoint
from csip_reid.models.csip import CSIPReID
from csip_reid.models.losses import symmetric_supcon


def stage1_step(
    ctx: TrainContext, model: CSIPReID, batch: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
) -> dict[str, float] | None:
    """One optimisation step; returns the loss terms, or None when the batch has < 2 skeletons."""
    b = ctx.to_device(batch)
    with ctx.autocast():
        out = model.forward_stage1(b["images"], b["skeletons"], b["camid"], b["skeleton_mask"])
    valid = out["valid"]
    if int(valid.sum()) < 2:
        return None
    terms = symmetric_supcon(out["v"][valid], out["s"][valid], b["pid"][valid], ctx.cfg.loss.supcon_temperature)
    loss = terms["v2s"] + terms["s2v"]
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return {"loss": loss.item(), **{k: v.item() for k, v in terms.items()}}


def run_stage1(
    ctx: TrainContext, model: CSIPReID, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
    start_epoch: int = 0,
) -> dict[str, float]:
    """Train stage 1 from ``start_epoch``; writes ``last.pt`` every epoch and ``stage1.pt`` at the end.

    Returns:
        The last epoch's mean loss terms.
    """
    cfg, s1 = ctx.cfg, ctx.cfg.stage1
    model.freeze_visual(True)
    last: dict[str, float] = {}
    for epoch in range(start_epoch, s1.epochs):
        seed_everything(epoch_seed(cfg, 1, epoch))
        lr = set_epoch_lr(optimizer, s1, epoch)
        loader = build_train_loader(
            ctx.dataset, batch_size=s1.batch_size, sampler=s1.sampler, num_instances=s1.num_instances,
            augment=s1.augment, seed=epoch_seed(cfg, 1, epoch), skeletons=True, drop_last=s1.drop_last,
            **ctx.loader_kwargs())
        model.train()
        model.visual.eval()
        epoch_meter, window, skipped = Meter(), Meter(), 0
        n_steps = len(loader) if ctx.max_steps is None else min(len(loader), ctx.max_steps)
        bar = tqdm(loader, total=n_steps, desc=f"stage1 {epoch + 1}/{s1.epochs}", disable=not ctx.progress,
                   leave=False, dynamic_ncols=True)
        with timed() as t:
            for i, batch in enumerate(bar):
                if i >= n_steps:
                    break
                terms = stage1_step(ctx, model, batch, optimizer, scaler)
                if terms is None:
                    skipped += 1
                    continue
                epoch_meter.add(terms)
                window.add(terms)
                bar.set_postfix(loss=f"{terms['loss']:.3f}")
                if window.n >= cfg.run.log_period:
                    ctx.logger.write({"stage": 1, "epoch": epoch + 1, "iter": i + 1, "lr": lr, **window.means()})
                    window = Meter()
        last = epoch_meter.means()
        ctx.logger.write({"stage": 1, "epoch": epoch + 1, "type": "epoch", "lr": lr, "steps": epoch_meter.n,
                          "skipped_batches": skipped, "time_s": round(t["s"], 2), **last})
        log.info("stage 1 epoch %d/%d loss %.4f (%.1fs)", epoch + 1, s1.epochs, last.get("loss", float("nan")), t["s"])
        done = epoch + 1 == s1.epochs
        save_checkpoint(ctx.output / "last.pt", model, stage=1, epoch=epoch + 1, stage_complete=done,
                        skeleton_format=ctx.dataset.skeleton_format or cfg.skeleton.format, metrics=last,
                        train_state={"optimizer": optimizer.state_dict(), "scaler": scaler.state_dict()})
    save_checkpoint(ctx.output / "stage1.pt", model, stage=1, epoch=s1.epochs, stage_complete=True,
                    skeleton_format=ctx.dataset.skeleton_format or cfg.skeleton.format, metrics=last)
    return last
