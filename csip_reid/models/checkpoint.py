"""CSIP-ReID checkpoints: one self-describing file that rebuilds the model and its preprocessing.

A checkpoint is a dict that ``torch.load(path, weights_only=True)`` can read (tensors, dicts, lists,
tuples, str/int/float/bool/None only)::

    format          "csip-reid/ckpt-v1"
    config          CSIPConfig.to_dict()
    preprocess      CropPreprocess.to_dict() (input size, mean/std, RGB, 1/255, PIL bilinear;
                    files written before csip-reid 1.0 say OpenCV bilinear, as they were trained)
    skeleton_format skeleton format the model was trained on (e.g. "h36m17-3d"), or None
    num_classes     training identities (classifier / prototype count)
    num_cameras     SIE camera count
    state_dict      model weights (CPU tensors; stage-2 files include the PFU prototypes)
    stage           1 (skeleton pretraining) or 2 (fine-tuning)
    epoch           epochs completed in that stage
    stage_complete  whether the stage ran to its last epoch
    metrics         last evaluation (mAP, r1, ...) or {}
    train_state     (``last.pt`` only) optimizer, grad-scaler, best mAP: what ``--resume`` needs
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from csip_reid.core.embedder import CropPreprocess
from csip_reid.core.errors import CheckpointError
from csip_reid.models.config import CSIPConfig
from csip_reid.models.csip import CSIPReID
from csip_reid.models.pfu import has_legacy_attention
from csip_reid.models.safe_load import unreadable_reason

FORMAT = "csip-reid/ckpt-v1"


def preprocess_for(cfg: CSIPConfig) -> CropPreprocess:
    """The crop preprocessing a model of this config was trained with (same as the data loaders)."""
    return CropPreprocess(
        height=cfg.input.height, width=cfg.input.width,
        mean=tuple(cfg.input.mean), std=tuple(cfg.input.std),
        rgb=True, scale=1.0 / 255.0, interpolation="pil_bilinear",
    )


def _plain(obj: Any) -> Any:
    """Tuples → lists, recursively (for the descriptive parts of the file)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def save_checkpoint(
    path: str | Path,
    model: CSIPReID,
    *,
    stage: int,
    epoch: int,
    stage_complete: bool,
    skeleton_format: str | None,
    metrics: dict[str, float] | None = None,
    train_state: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (temporary file + rename) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "config": _plain(model.cfg.to_dict()),
        "preprocess": _plain(preprocess_for(model.cfg).to_dict()),
        "skeleton_format": skeleton_format,
        "num_classes": int(model.num_classes),
        "num_cameras": int(model.num_cameras),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "stage": int(stage),
        "epoch": int(epoch),
        "stage_complete": bool(stage_complete),
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
        "train_state": train_state,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path, stage: int | None = None, purpose: str = "this command") -> dict[str, Any]:
    """Read and validate a checkpoint.

    Args:
        path: The file.
        stage: Required stage (2 for inference / evaluation, 1 to start stage 2 from), or None.
        purpose: Words for the error message ("the csip embedder", "stage 2", ...).

    Raises:
        CheckpointError: Missing file, not a csip-reid checkpoint, unknown format version, or a
            checkpoint of the wrong stage.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many unrelated types (UnpicklingError, KeyError, ...) for foreign files
        raise CheckpointError(f"{path} is not a csip-reid checkpoint: {unreadable_reason(path, e)}") from e
    if not isinstance(ckpt, dict) or "format" not in ckpt:
        if isinstance(ckpt, dict) and ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
            raise CheckpointError(
                f"{path} is a bare state_dict, not a csip-reid checkpoint (no config or preprocessing); "
                "use a best.pt/last.pt written by `reid train`"
            )
        raise CheckpointError(f"{path} is not a csip-reid checkpoint (no 'format' key)")
    if ckpt["format"] != FORMAT:
        raise CheckpointError(f"{path} has checkpoint format {ckpt['format']!r}; this version reads {FORMAT!r}")
    missing = [k for k in ("config", "state_dict", "stage", "num_classes", "num_cameras") if k not in ckpt]
    if missing:
        raise CheckpointError(f"{path} is an incomplete checkpoint: missing {', '.join(missing)}")
    if stage is not None and int(ckpt["stage"]) != stage:
        if stage == 2:
            raise CheckpointError(
                f"{path} is a stage-1 checkpoint (skeleton pretraining only); {purpose} needs a stage-2 "
                "checkpoint such as best.pt"
            )
        raise CheckpointError(f"{path} is a stage-{ckpt['stage']} checkpoint; {purpose} needs a stage-{stage} one")
    return ckpt


def stored_config(ckpt: dict[str, Any]) -> CSIPConfig:
    """The config a checkpoint's weights were built with.

    Files written before the PFU attention followed the official layout hold q/k/v biases: they are
    rebuilt with ``pfu.qkv_bias`` so their weights load unchanged (see docs/csip-quirks.md).
    """
    cfg = CSIPConfig.from_dict(ckpt["config"])
    if has_legacy_attention(ckpt["state_dict"]):
        cfg.pfu.qkv_bias = True
    return cfg


def model_from_checkpoint(ckpt: dict[str, Any], path: str | Path = "checkpoint") -> CSIPReID:
    """Rebuild the model (random init, no CLIP download) and load the stored weights."""
    cfg = stored_config(ckpt)
    model = CSIPReID(cfg, int(ckpt["num_classes"]), int(ckpt["num_cameras"]))
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not match the stored config: {str(e).splitlines()[0]}") from e
    return model
