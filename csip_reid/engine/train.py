"""Two-stage CSIP-ReID training: the public entry point behind ``reid train``.

Run folder (``output``)::

    config.yaml   the resolved config (dataset camera count, epoch overrides applied)
    log.jsonl     one JSON object per log window and per epoch: every loss term, lr, eval metrics
    stage1.pt     the finished stage-1 model (what stage 2 starts from)
    best.pt       stage-2 model with the best mAP so far (rewritten only when the mAP improves)
    last.pt       the latest epoch of whichever stage ran last, with optimizer and grad-scaler
                  state; ``resume=True`` continues from it (at epoch granularity)

Example:
    >>> from csip_reid.engine.train import train
    >>> from csip_reid.models import load_config
    >>> summary = train(load_config("csip_tiny"), "data/mars", "mars", "runs/mars")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from csip_reid.core.errors import CheckpointError, ConfigError, DatasetError, SkeletonFormatError
from csip_reid.data import VideoReIDDataset, build_dataset
from csip_reid.engine.context import TrainContext, log, seed_everything
from csip_reid.engine.optim import stage1_optimizer, stage2_optimizer
from csip_reid.engine.stage1 import run_stage1
from csip_reid.engine.stage2 import compute_prototypes, run_stage2
from csip_reid.models import build_model
from csip_reid.models.checkpoint import load_checkpoint, stored_config
from csip_reid.models.config import CSIPConfig
from csip_reid.models.csip import CSIPReID
from csip_reid.models.pfu import upgrade_pfu_state

_STAGES = {"all": (1, 2), "1": (1,), "2": (2,), "stage1": (1,), "stage2": (2,)}
#: Weights that may be re-initialised when stage 2 starts from a stage-1 model of another dataset.
_DATASET_SPECIFIC = ("classifier", "pfu.proto_", "visual.sie")


def train(
    cfg: CSIPConfig,
    data_root: str,
    dataset: str,
    output: str,
    stage: str = "all",
    resume: bool = False,
    device: str = "cpu",
    epochs_override: dict[str, int] | None = None,
    max_steps: int | None = None,
    progress: bool = True,
    dataset_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train CSIP-ReID on a dataset read by :func:`csip_reid.data.build_dataset`.

    Args:
        cfg: Configuration (see :mod:`csip_reid.models.config`).
        data_root: Dataset root folder.
        dataset: Dataset name (``mars``, ``lsvid``, ``ilidsvid``, ``prid``, ``custom``, ``minimars``).
        output: Run folder (created).
        stage: ``all``, ``1`` or ``2`` (``stage1``/``stage2`` also accepted).
        resume: Continue from ``<output>/last.pt`` (its stored config is used).
        device: Torch device (``cpu``, ``cuda``, ``cuda:1``).
        epochs_override: ``{"stage1": n, "stage2": m}`` replaces the configured epoch counts.
        max_steps: Cap on iterations per epoch (smoke runs); None = full epochs.
        progress: Show progress bars.
        dataset_options: Extra dataset-reader arguments (e.g. ``{"split": 3}`` for iLIDS-VID); they
            override the config's ``dataset_options`` (applied when ``dataset`` is the config's).

    Returns:
        A summary dict (see :func:`fit`).
    """
    ds = build_dataset(dataset, data_root, **reader_options(cfg, dataset, dataset_options))
    return fit(cfg, ds, output, stage=stage, resume=resume, device=device, epochs_override=epochs_override,
               max_steps=max_steps, progress=progress)


def reader_options(cfg: CSIPConfig, dataset: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The dataset-reader options of a run: the config's recipe options (when it is meant for
    ``dataset``, e.g. LS-VID's 48-frame pieces), overridden by ``extra``."""
    recipe = dict(cfg.dataset_options) if dataset == cfg.dataset else {}
    return {**recipe, **(extra or {})}


def fit(
    cfg: CSIPConfig,
    dataset: VideoReIDDataset,
    output: str | Path,
    stage: str = "all",
    resume: bool = False,
    device: str = "cpu",
    epochs_override: dict[str, int] | None = None,
    max_steps: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train on an already-built dataset; same arguments as :func:`train`.

    Returns:
        ``{"output", "dataset", "num_classes", "num_cameras", "stages", "stage1": {...},
        "stage2": {"best": {"mAP", "epoch"} | None, "last_metrics", "last_losses"}, "checkpoints"}``.
    """
    stages = _STAGES.get(str(stage).lower())
    if stages is None:
        raise ConfigError(f"unknown stage {stage!r}; choose one of: all, 1, 2")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    dev = _device(device)
    last = None
    if resume:
        if not (out / "last.pt").is_file():
            raise CheckpointError(f"nothing to resume in {out}: no last.pt")
        last = load_checkpoint(out / "last.pt", purpose="--resume")
        if last.get("train_state") is None:
            raise CheckpointError(f"{out / 'last.pt'} has no training state to resume from")
        cfg = stored_config(last)
    cfg = _resolve_config(cfg, dataset, epochs_override)
    cfg.to_yaml(out / "config.yaml")
    seed_everything(cfg.run.seed)
    ctx = TrainContext(cfg, dataset, out, dev, max_steps=max_steps, progress=progress)
    summary: dict[str, Any] = {"output": str(out), "dataset": dataset.name, "num_classes": dataset.num_train_pids,
                               "num_cameras": cfg.num_cameras, "stages": list(stages)}
    last_stage = int(last["stage"]) if last else 0
    stage1_done = last_stage == 2 or (last_stage == 1 and int(last["epoch"]) >= cfg.stage1.epochs)
    if 1 in stages and not stage1_done:
        summary["stage1"] = _stage1(ctx, last if last_stage == 1 else None)
    if 2 in stages:
        summary["stage2"] = _stage2(ctx, last if last_stage == 2 else None)
    summary["checkpoints"] = {p.stem: str(p) for p in sorted(out.glob("*.pt"))}
    return summary


def _device(device: str) -> torch.device:
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ConfigError(f"bad device {device!r}: {e}") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available")
    return dev


def _resolve_config(cfg: CSIPConfig, ds: VideoReIDDataset, epochs_override: dict[str, int] | None) -> CSIPConfig:
    """Copy of ``cfg`` with the dataset's camera count and skeleton format, and epoch overrides."""
    cfg = CSIPConfig.from_dict(cfg.to_dict())
    if ds.num_cameras > 0:
        cfg.num_cameras = ds.num_cameras
    if ds.skeleton_format:
        cfg.skeleton.format = ds.skeleton_format
    for key, n in (epochs_override or {}).items():
        if key not in ("stage1", "stage2"):
            raise ConfigError(f"epochs_override keys are 'stage1' and 'stage2', got {key!r}")
        if int(n) < 1:
            raise ConfigError(f"{key} epochs must be >= 1, got {n}")
        getattr(cfg, key).epochs = int(n)
    return cfg


def _stage1(ctx: TrainContext, last: dict[str, Any] | None) -> dict[str, Any]:
    ds = ctx.dataset
    if not any(r.skeletons is not None for r in ds.train):
        raise DatasetError(
            f"dataset {ds.name} has no skeletons for its training tracklets; stage 1 (contrastive "
            "skeleton-image pretraining) needs them (see docs/datasets.md)"
        )
    start = 0
    if last is None:
        model = build_model(ctx.cfg, ds.num_train_pids, ctx.cfg.num_cameras).to(ctx.device)
    else:
        model = _model_with_weights(ctx, last["state_dict"], "last.pt")
        start = int(last["epoch"])
        log.info("resuming stage 1 after epoch %d", start)
    model.freeze_visual(True)
    optimizer = stage1_optimizer(model, ctx.cfg.stage1)
    scaler = ctx.grad_scaler()
    if last is not None:
        optimizer.load_state_dict(last["train_state"]["optimizer"])
        scaler.load_state_dict(last["train_state"]["scaler"])
    losses = run_stage1(ctx, model, optimizer, scaler, start_epoch=start)
    return {"start_epoch": start, "epochs": ctx.cfg.stage1.epochs, "last_losses": losses}


def _stage2(ctx: TrainContext, last: dict[str, Any] | None) -> dict[str, Any]:
    s2 = ctx.cfg.stage2
    if last is not None:
        model = _model_with_weights(ctx, last["state_dict"], "last.pt")
        start, best = int(last["epoch"]), last["train_state"].get("best")
        log.info("resuming stage 2 after epoch %d", start)
    else:
        model = _model_from_stage1(ctx)
        model.pfu.set_prototypes(*(p.to(ctx.device) for p in compute_prototypes(ctx, model)))
        start, best = 0, None
    model.freeze_visual(False)
    model.freeze_skeleton(not s2.train_skeleton)
    optimizer = stage2_optimizer(model, s2)
    scaler = ctx.grad_scaler()
    if last is not None:
        optimizer.load_state_dict(last["train_state"]["optimizer"])
        scaler.load_state_dict(last["train_state"]["scaler"])
    result = run_stage2(ctx, model, optimizer, scaler, start_epoch=start, best=best)
    return {"start_epoch": start, "epochs": s2.epochs, **result}


def _model_with_weights(ctx: TrainContext, state: dict[str, torch.Tensor], name: str) -> CSIPReID:
    model = CSIPReID(ctx.cfg, ctx.dataset.num_train_pids, ctx.cfg.num_cameras)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{name} does not fit this config/dataset: {str(e).splitlines()[0]}") from e
    return model.to(ctx.device)


def _model_from_stage1(ctx: TrainContext) -> CSIPReID:
    """A fresh model with the stage-1 weights (dataset-specific heads re-initialised if they differ)."""
    path = ctx.output / "stage1.pt"
    if not path.is_file():
        if not ctx.cfg.stage2.init_checkpoint:
            raise CheckpointError(
                f"stage 2 needs a stage-1 checkpoint: {path} does not exist and stage2.init_checkpoint is not set"
            )
        path = Path(ctx.cfg.stage2.init_checkpoint).expanduser()
    ckpt = load_checkpoint(path, stage=1, purpose="stage 2 (it starts from a stage-1 model)")
    fmt = ckpt.get("skeleton_format")
    if fmt and ctx.dataset.skeleton_format and fmt != ctx.dataset.skeleton_format:
        raise SkeletonFormatError(
            f"{path} was pretrained on {fmt} skeletons; dataset {ctx.dataset.name} has {ctx.dataset.skeleton_format}"
        )
    model = CSIPReID(ctx.cfg, ctx.dataset.num_train_pids, ctx.cfg.num_cameras)
    own = model.state_dict()
    state, reset = {}, []
    for k, v in upgrade_pfu_state(ckpt["state_dict"], ctx.cfg.pfu.qkv_bias).items():
        if k in own and own[k].shape != v.shape and k.startswith(_DATASET_SPECIFIC):
            reset.append(k)
        else:
            state[k] = v
    missing, unexpected = set(own) - set(state) - set(reset), set(state) - set(own)
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not fit this config: {len(missing)} missing and {len(unexpected)} unexpected weights "
            f"(e.g. {', '.join(sorted(missing | unexpected)[:3])})"
        )
    try:
        model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise CheckpointError(f"{path} does not fit this config: {str(e).splitlines()[0]}") from e
    if reset:
        log.warning("stage-1 model from another dataset: re-initialised %s", ", ".join(reset))
    return model.to(ctx.device)
