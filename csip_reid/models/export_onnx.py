"""ONNX export of a CSIP-ReID checkpoint's inference path (``reid export-onnx``).

The graph is :meth:`CSIPReID.extract` followed by L2 normalisation:

* input ``clips`` (B, T, 3, H, W) float32: T crops of one tracklet, already preprocessed
  (resize, RGB, 1/255, mean/std as recorded below);
* input ``cameras`` (B,) int64: training-camera index of each clip, ``-1`` = unknown (the mean SIE
  embedding, as in the ``csip:`` embedder);
* output ``embedding`` (B, D) float32, unit length.

``B`` is 1 unless ``dynamic_batch``. The exporter is torch's ``torch.export``-based one
(``dynamo=True``, needs ``onnx`` and ``onnxscript``: ``pip install 'csip-reid[export]'``): on the
CSIP graph it gives about a third of the nodes of the TorchScript exporter, without its
trace-time warnings, and the same parity.

``metadata_props`` (all strings) make the file self-describing, so ``--embedder onnx:FILE`` needs
no flags: ``csip_reid.format`` = :data:`ONNX_FORMAT`, ``csip_reid.preprocess`` (JSON of
:class:`~csip_reid.core.embedder.CropPreprocess`), ``csip_reid.seq_len`` (T),
``csip_reid.feature_dim``, ``csip_reid.num_cameras``, ``csip_reid.skeleton_format``,
``csip_reid.checkpoint_sha256`` and ``csip_reid.config`` (the model config name).
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csip_reid.core.errors import ConfigError
from csip_reid.core.onnx import CLIP_ONNX_FORMAT
from csip_reid.models.checkpoint import load_checkpoint, model_from_checkpoint, preprocess_for
from csip_reid.models.csip import CSIPReID

log = logging.getLogger(__name__)

ONNX_FORMAT = CLIP_ONNX_FORMAT


class InferenceGraph(torch.nn.Module):
    """``(clips, cameras) -> unit embedding``: the exported module."""

    def __init__(self, model: CSIPReID) -> None:
        super().__init__()
        self.model = model

    def forward(self, clips: torch.Tensor, cameras: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.model.extract(clips, cameras), dim=1)


def export_onnx(checkpoint: str | Path, out: str | Path, dynamic_batch: bool = False,
                opset: int = 18) -> dict[str, Any]:
    """Export a stage-2 checkpoint to ONNX and check it against PyTorch on a random clip.

    Args:
        checkpoint: ``best.pt``/``last.pt`` written by ``reid train``.
        out: The ONNX file to write (replaced atomically).
        dynamic_batch: Make the batch dimension dynamic (else fixed at 1).
        opset: ONNX opset.

    Returns:
        ``{"out", "seq_len", "input_shape", "feature_dim", "dynamic_batch", "nodes", "max_abs_diff"}``.

    Raises:
        CheckpointError: Not a stage-2 csip-reid checkpoint.
        ConfigError: ``onnx``/``onnxscript`` are not installed.
    """
    try:
        import onnx
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"reid export-onnx needs the onnx exporter packages ({e.name} is missing): "
                          "pip install 'csip-reid[export]'") from None
    from csip_reid.core.weights import file_sha256

    ckpt = load_checkpoint(checkpoint, stage=2, purpose="reid export-onnx")
    model = model_from_checkpoint(ckpt, checkpoint).eval()
    graph = InferenceGraph(model).eval()
    cfg = model.cfg
    t, h, w = cfg.input.seq_len, cfg.input.height, cfg.input.width
    clips = torch.randn(2 if dynamic_batch else 1, t, 3, h, w)
    cams = torch.zeros(len(clips), dtype=torch.long)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    dyn = None
    if dynamic_batch:
        batch = torch.export.Dim("batch", min=1, max=4096)
        dyn = {"clips": {0: batch}, "cameras": {0: batch}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(graph, (clips, cams), dynamo=True, input_names=["clips", "cameras"],
                                 output_names=["embedding"], dynamic_shapes=dyn, opset_version=opset,
                                 external_data=False, verbose=False)
    proto = prog.model_proto
    meta = {
        "csip_reid.format": ONNX_FORMAT,
        "csip_reid.preprocess": json.dumps(ckpt.get("preprocess") or preprocess_for(cfg).to_dict()),
        "csip_reid.seq_len": str(t),
        "csip_reid.feature_dim": str(model.feature_dim),
        "csip_reid.num_cameras": str(model.num_cameras),
        "csip_reid.skeleton_format": str(ckpt.get("skeleton_format") or ""),
        "csip_reid.checkpoint_sha256": file_sha256(checkpoint),
        "csip_reid.config": cfg.name,
    }
    del proto.metadata_props[:]
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save_model(proto, str(tmp))
    os.replace(tmp, out)
    diff = parity(out, graph, clips.numpy(), cams.numpy())
    return {"out": str(out), "seq_len": t, "input_shape": ["B" if dynamic_batch else 1, t, 3, h, w],
            "feature_dim": model.feature_dim, "dynamic_batch": dynamic_batch, "nodes": len(proto.graph.node),
            "max_abs_diff": diff}


def parity(path: str | Path, graph: torch.nn.Module, clips: np.ndarray, cams: np.ndarray) -> float:
    """Max abs difference between onnxruntime and PyTorch on the same inputs."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"clips": clips.astype(np.float32), "cameras": cams.astype(np.int64)})[0]
    with torch.no_grad():
        ref = graph(torch.from_numpy(clips), torch.from_numpy(cams)).numpy()
    return float(np.abs(got - ref).max())
