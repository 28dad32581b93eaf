"""``rtmpose-t|s|m[:CHECKPOINT|:random]``, ``rtmpose:CONFIG[@CHECKPOINT]``: mmpose RTMPose on crops.

Names ``rtmpose-t``, ``rtmpose-s``, ``rtmpose-m`` map to the COCO 256x192 configs shipped in the
mmpose wheel and to their public checkpoints (registered weights ``rtmpose-{t,s,m}-coco``, found in
``$REID_WEIGHTS_DIR`` or the cache, downloaded when online). ``@PATH`` gives a local checkpoint;
``@random`` builds the network with random weights (tests, benchmarks). The aliases
``rtmpose-t[:CHECKPOINT]``, ``rtmpose-s[:...]``, ``rtmpose-m[:...]`` are registered too.

Each crop is one top-down sample whose box is the whole crop; a batch of crops is one forward
pass (the per-sample pipeline is the model's own test pipeline, as in mmpose's
``inference_topdown``, which handles only one image per call).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from csip_reid.core.errors import ConfigError, WeightsNotFoundError
from csip_reid.core.weights import WeightsInfo, register_weights, resolve_weights
from csip_reid.pipeline.pose.base import POSES, PoseEstimator, nan_keypoints
from csip_reid.pipeline.pose.mmlab import (
    import_mmpose,
    load_openmmlab_checkpoint,
    mmpose_config_dir,
)

_URL = "https://download.openmmlab.com/mmpose/v1/projects/rtmposev1/"
#: name → (config path inside the mmpose configs folder, registered weights name)
RTMPOSE_MODELS: dict[str, tuple[str, str]] = {}
DEFAULT_MODEL = "rtmpose-m"

for _name, _file, _what in (
    ("rtmpose-t", "rtmpose-tiny_simcc-coco_pt-aic-coco_420e-256x192-e613ba3f_20230127.pth", "3.3 M params"),
    ("rtmpose-s", "rtmpose-s_simcc-coco_pt-aic-coco_420e-256x192-8edcf0d7_20230127.pth", "5.5 M params"),
    ("rtmpose-m", "rtmpose-m_simcc-coco_pt-aic-coco_420e-256x192-d8dd5ca4_20230127.pth", "13.6 M params"),
):
    register_weights(WeightsInfo(f"{_name}-coco", _file, _URL + _file, "",
                                 f"RTMPose-{_name[-1]} COCO-17 256x192 (OpenMMLab, {_what})", "Apache-2.0",
                                 "COCO 2017, pre-trained on AI Challenger (non-commercial terms)", False, "pose"))
    RTMPOSE_MODELS[_name] = (f"body_2d_keypoint/rtmpose/coco/{_name}_8xb256-420e_coco-256x192.py",
                             f"{_name}-coco")


def load_config(config_or_name: str) -> Any:
    """An mmengine ``Config`` for an RTMPose name or config file, made buildable offline.

    The backbone's ``_scope_='mmdet'`` is dropped (mmpose's own CSPNeXt is used, no compiled mmcv
    ops needed) and its ``init_cfg`` is cleared (no ImageNet-pretrained download).
    """
    import_mmpose()
    from mmengine.config import Config

    if config_or_name in RTMPOSE_MODELS:
        path = mmpose_config_dir() / RTMPOSE_MODELS[config_or_name][0]
    else:
        path = Path(config_or_name).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"RTMPose config {config_or_name!r} is neither a file nor one of: "
                f"{', '.join(RTMPOSE_MODELS)}"
            )
    cfg = Config.fromfile(str(path))
    backbone = cfg.model.get("backbone", {})
    backbone.pop("_scope_", None)
    backbone["init_cfg"] = None
    return cfg


class RTMPose(PoseEstimator):
    """RTMPose (SimCC) top-down 2D pose, batched over crops.

    Args:
        spec: The spec string.
        config: ``rtmpose-t``/``-s``/``-m`` or a path to an mmpose top-down config.
        checkpoint: Checkpoint path or registered name; ``"random"`` for random weights;
            ``None`` for the name's public checkpoint.
        device: torch device.
        flip_test: Also run each crop mirrored and average (the configs' test setting; about
            twice the cost for a small accuracy gain). Off by default, as in RTMPose's deployed
            (ONNX/rtmlib) form.
    """

    name = "rtmpose"

    def __init__(self, spec: str, config: str = DEFAULT_MODEL, checkpoint: str | None = None,
                 device: str = "cpu", flip_test: bool = False) -> None:
        super().__init__(spec)
        import_mmpose()
        from mmpose.apis import init_model

        cfg = load_config(config)
        self.checkpoint: Path | None = None
        if checkpoint is None:
            if config not in RTMPOSE_MODELS:
                raise WeightsNotFoundError(
                    f"no checkpoint given for RTMPose config {config}; use rtmpose:{config}@CHECKPOINT "
                    f"(or @random for untrained weights)"
                )
            checkpoint = RTMPOSE_MODELS[config][1]
        if checkpoint != "random":
            self.checkpoint = resolve_weights(checkpoint, "RTMPose checkpoint")
        self.model = init_model(cfg, checkpoint=None, device=device)
        if self.checkpoint is not None:
            meta = load_openmmlab_checkpoint(self.model, self.checkpoint)
            if "dataset_meta" in meta:
                self.model.dataset_meta = meta["dataset_meta"]
        self.model.test_cfg["flip_test"] = flip_test
        self.flip_test = flip_test
        if int(self.model.dataset_meta.get("num_keypoints", 17)) != 17:
            raise ConfigError(f"{config} is not a COCO-17 body model")
        from mmengine.dataset import Compose

        self.pipeline = Compose(self.model.cfg.test_dataloader.dataset.pipeline)
        self.random_weights = checkpoint == "random"

    def weights_file(self) -> Path | None:
        return self.checkpoint

    def estimate(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        out = nan_keypoints(len(crops))
        if not len(crops):
            return out
        import torch
        from mmengine.dataset import pseudo_collate
        from mmengine.registry import init_default_scope

        init_default_scope(self.model.cfg.get("default_scope", "mmpose"))
        batch, keep = [], []
        for i, crop in enumerate(crops):
            h, w = crop.shape[:2]
            if h == 0 or w == 0:
                continue
            info = {"img": crop, "bbox": np.array([[0, 0, w, h]], np.float32),
                    "bbox_score": np.ones(1, np.float32), **self.model.dataset_meta}
            batch.append(self.pipeline(info))
            keep.append(i)
        if not batch:
            return out
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"mmpose\.")
            results = self.model.test_step(pseudo_collate(batch))
        for i, r in zip(keep, results, strict=True):
            xy = np.asarray(r.pred_instances.keypoints, np.float32).reshape(-1, 17, 2)[0]
            score = np.asarray(r.pred_instances.keypoint_scores, np.float32).reshape(-1, 17)[0]
            out[i, :, :2] = xy
            out[i, :, 2] = np.clip(score, 0.0, 1.0)  # SimCC maxima can exceed 1
        return out

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(random_weights=self.random_weights, flip_test=self.flip_test)
        return d


def _parse(arg: str | None, default: str) -> tuple[str, str | None]:
    if not arg:
        return default, None
    config, _, ckpt = arg.rpartition("@") if "@" in arg else (arg, "", "")
    return config or default, ckpt or None


@POSES.register("rtmpose", "mmpose RTMPose: rtmpose:NAME_OR_CONFIG[@CHECKPOINT|@random] "
                           "(NAME: rtmpose-t, rtmpose-s, rtmpose-m)")
def _make_rtmpose(arg: str | None, device: str = "cpu", **options: Any) -> RTMPose:
    """mmpose RTMPose top-down on crops (needs scripts/install_mmpose.sh)."""
    config, ckpt = _parse(arg, DEFAULT_MODEL)
    spec = f"rtmpose:{arg}" if arg else "rtmpose"
    return RTMPose(spec, config=config, checkpoint=ckpt, device=device, **options)


def _register_alias(name: str) -> None:
    def make(arg: str | None, device: str = "cpu", **options: Any) -> RTMPose:
        ckpt = arg.removeprefix("@") if arg else None
        spec = f"{name}:{ckpt}" if ckpt else name
        return RTMPose(spec, config=name, checkpoint=ckpt, device=device, **options)

    POSES.register(name, f"mmpose {name} (COCO 256x192): {name}[:CHECKPOINT|:random]")(make)


for _name in RTMPOSE_MODELS:
    _register_alias(_name)
