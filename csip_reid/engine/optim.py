"""Optimisers and per-epoch learning-rate schedules of the two CSIP-ReID stages.

* Stage 1: Adam over the skeleton encoder only; cosine schedule with linear warm-up
  (timm ``CosineLRScheduler`` semantics, stepped per epoch):
  ``lr(e) = warmup_lr + e (lr - warmup_lr) / warmup_epochs`` during warm-up, then
  ``min_lr + (lr - min_lr) (1 + cos(pi e / epochs)) / 2``.
* Stage 2: Adam with parameter groups (biases at ``bias_lr_factor`` x lr with their own weight
  decay; PFU / SGTM / temporal classifier at ``fc_lr_factor`` x lr when ``large_fc_lr``); warm-up
  multi-step schedule: factor ``warmup_factor (1 - a) + a`` with ``a = e / warmup_epochs`` during
  warm-up, times ``gamma ** (number of milestones <= e)``.

Both schedules take the **1-based** epoch number, as the official loops step them
(``for epoch in range(1, N + 1)``): stage-1 epoch 1 runs at ``1e-5 + 6.8e-5 = 7.8e-5`` and stage-2
epoch 1 at factor ``0.1 * 0.9 + 0.1 = 0.19``. :func:`set_epoch_lr` takes the 0-based loop index.
A parameter is a "bias" when its name contains ``bias`` (the official rule), which includes the
``in_proj_bias`` of :class:`torch.nn.MultiheadAttention`.

Schedules are pure functions of the epoch, so resuming only needs the epoch number; each param
group keeps its un-scheduled rate under ``"base_lr"``.
"""

from __future__ import annotations

import math
from bisect import bisect_right

import torch

from csip_reid.models.config import Stage1Config, Stage2Config
from csip_reid.models.csip import CSIPReID

#: Parameter-name prefixes of the modules that are new in stage 2 (the "large FC lr" group).
NEW_MODULES = ("pfu.", "sgtm.", "classifier_temp.")


def stage1_lr(cfg: Stage1Config, epoch: int) -> float:
    """Learning rate of stage-1 epoch ``epoch`` (1-based, timm ``CosineLRScheduler.step(epoch)``)."""
    if epoch < cfg.warmup_epochs:
        return cfg.warmup_lr + epoch * (cfg.lr - cfg.warmup_lr) / cfg.warmup_epochs
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * epoch / cfg.epochs))


def stage2_factor(cfg: Stage2Config, epoch: int) -> float:
    """Multiplier of every stage-2 base rate at epoch ``epoch`` (1-based, ``WarmupMultiStepLR``)."""
    warm = 1.0
    if epoch < cfg.warmup_epochs:
        a = epoch / cfg.warmup_epochs
        warm = cfg.warmup_factor * (1.0 - a) + a
    return warm * cfg.gamma ** bisect_right(sorted(cfg.milestones), epoch)


def stage1_optimizer(model: CSIPReID, cfg: Stage1Config) -> torch.optim.Adam:
    """Adam over the trainable skeleton-encoder parameters (the visual encoder is frozen)."""
    params = [p for p in model.skeleton.parameters() if p.requires_grad]
    return torch.optim.Adam([{"params": params, "lr": cfg.lr, "base_lr": cfg.lr,
                              "weight_decay": cfg.weight_decay}])


def is_bias(name: str) -> bool:
    """The official bias rule: ``"bias" in name`` (so ``attn.in_proj_bias`` counts)."""
    return "bias" in name.rsplit(".", 1)[-1]


def stage2_optimizer(model: CSIPReID, cfg: Stage2Config) -> torch.optim.Adam:
    """Adam over every trainable parameter, grouped by (bias?, new module?)."""
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        large = cfg.large_fc_lr and name.startswith(NEW_MODULES)
        groups.setdefault((is_bias(name), large), []).append(p)
    param_groups = []
    for (bias, large), params in sorted(groups.items()):
        lr = cfg.lr * (cfg.fc_lr_factor if large else 1.0) * (cfg.bias_lr_factor if bias else 1.0)
        param_groups.append({"params": params, "lr": lr, "base_lr": lr,
                             "weight_decay": cfg.weight_decay_bias if bias else cfg.weight_decay})
    return torch.optim.Adam(param_groups)


def set_epoch_lr(optimizer: torch.optim.Optimizer, cfg: Stage1Config | Stage2Config, epoch: int) -> float:
    """Apply the schedule of ``cfg``'s stage for the 0-based loop index ``epoch`` (official epoch
    ``epoch + 1``); return the first group's rate."""
    for g in optimizer.param_groups:
        if isinstance(cfg, Stage1Config):
            g["lr"] = stage1_lr(cfg, epoch + 1) * g["base_lr"] / cfg.lr
        else:
            g["lr"] = g["base_lr"] * stage2_factor(cfg, epoch + 1)
    return float(optimizer.param_groups[0]["lr"])
