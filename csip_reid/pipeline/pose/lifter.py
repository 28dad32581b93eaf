"""Optional 2D → 3D lifting of H36M-17 skeletons with an mmpose single-frame lifter.

CSIP-ReID was trained on root-centred 3D H36M-17 skeletons (HMR2.0). A 2D skeleton can be lifted
to that format (``h36m17-3d``) with VideoPose3D's single-frame model (``videopose3d-1frm``, the
1-frame fully-convolutional TCN fine-tuned on CPN detections). The tracklet's sampled crops are
not consecutive frames, so only a single-frame lifter fits them; multi-frame (27/81/243) lifters
would need the dense, evenly timed 2D track that the pipeline deliberately does not keep.

Each frame's 2D joints are moved into the Human3.6M image statistics the lifter was trained on,
as mmpose's demo does (``norm_pose_2d``): the crop box is rescaled to the dataset's mean person box
(centre (528, 427), size 400 px) in a 1000x1002 image, then normalised by that image width.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from csip_reid.core.errors import ConfigError, WeightsNotFoundError
from csip_reid.core.weights import WeightsInfo, register_weights, resolve_weights
from csip_reid.pipeline.pose.mmlab import (
    import_mmpose,
    load_openmmlab_checkpoint,
    mmpose_config_dir,
)

_H36M_BOX_CENTER = np.array([528.0, 427.0], np.float32)
_H36M_BOX_SCALE = 400.0
_H36M_IMAGE = (1000.0, 1002.0)

_VP3D = "videopose_h36m_1frame_fullconv_supervised_cpn_ft-5c3afaed_20210527.pth"
register_weights(WeightsInfo(
    "videopose3d-1frm-h36m", _VP3D, "https://download.openmmlab.com/mmpose/body3d/videopose/" + _VP3D, "",
    "VideoPose3D single-frame 2D→3D lifter, Human3.6M (OpenMMLab)", "research-only",
    "Human3.6M (academic licence: no commercial use)", False, "pose",
))
#: name → (config path inside the mmpose configs folder, registered weights name)
LIFTERS: dict[str, tuple[str, str]] = {
    "videopose3d-1frm": (
        "body_3d_keypoint/video_pose_lift/h36m/video-pose-lift_tcn-1frm-supv-cpn-ft_8xb128-160e_h36m.py",
        "videopose3d-1frm-h36m",
    ),
}


class PoseLifter:
    """Single-frame H36M-17 2D → 3D lifter (mmpose ``PoseLifter`` with a 1-frame TCN).

    Args:
        name: A key of :data:`LIFTERS`.
        checkpoint: Checkpoint path or registered name; ``"random"`` for random weights;
            ``None`` for the name's public checkpoint (local, or downloaded when online).
        device: torch device.
    """

    def __init__(self, name: str = "videopose3d-1frm", checkpoint: str | None = None,
                 device: str = "cpu") -> None:
        if name not in LIFTERS:
            raise ConfigError(f"unknown 3D lifter {name!r}; choose one of: {', '.join(LIFTERS)}")
        import_mmpose()
        from mmengine.config import Config
        from mmpose.apis import init_model

        cfg_path, weights_name = LIFTERS[name]
        cfg = Config.fromfile(str(mmpose_config_dir() / cfg_path))
        self.name = name
        self.device = device
        self.checkpoint: Path | None = None
        if checkpoint != "random":
            self.checkpoint = resolve_weights(checkpoint or weights_name, "3D lifter checkpoint")
        self.model = init_model(cfg, checkpoint=None, device=device)
        if self.checkpoint is not None:
            load_openmmlab_checkpoint(self.model, self.checkpoint)
        if self.model.backbone.in_channels != 34:
            raise WeightsNotFoundError(f"{name} does not take 17 2D joints")

    def describe(self) -> dict[str, Any]:
        from csip_reid.core.weights import file_sha256

        return {"lifter": self.name,
                "weights": file_sha256(self.checkpoint) if self.checkpoint else None}

    def lift(self, h36m_2d: np.ndarray, crop_sizes: np.ndarray) -> np.ndarray:
        """Lift (S, 17, 2+) H36M pixel joints of crops of ``crop_sizes`` (S, 2) ``w, h``.

        Returns:
            (S, 17, 3) float32 root-centred metres (camera axes, y down); a frame with any
            missing (NaN) joint is all NaN.
        """
        import torch

        xy = np.asarray(h36m_2d, np.float32).reshape(-1, 17, np.shape(h36m_2d)[-1])[..., :2]
        sizes = np.asarray(crop_sizes, np.float32).reshape(-1, 2)
        out = np.full((len(xy), 17, 3), np.nan, np.float32)
        ok = np.isfinite(xy).all(axis=(1, 2)) & (sizes > 0).all(axis=1)
        if not ok.any():
            return out
        center = sizes[ok, None, :] / 2
        scale = sizes[ok].max(axis=1)[:, None, None]
        px = (xy[ok] - center) / scale * _H36M_BOX_SCALE + _H36M_BOX_CENTER
        w, h = _H36M_IMAGE
        norm = (px - np.array([w / 2, h / 2], np.float32)) / (w / 2)
        x = torch.from_numpy(norm.reshape(len(norm), 34, 1)).to(self.device)
        with torch.no_grad():
            pred = self.model.head.forward(self.model.extract_feat(x)).cpu().numpy()
        out[ok] = pred - pred[:, :1]
        return out
