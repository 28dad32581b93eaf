"""``onnx:`` embedder: any ONNX person-ReID image model, mean-pooled over a tracklet's crops."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from csip_reid.core.embedder import EMBEDDERS, CropPreprocess, Embedder, l2_normalize
from csip_reid.core.onnx import onnx_session, run_onnx
from csip_reid.core.weights import file_sha256, resolve_weights


@dataclass
class OnnxEmbedder(Embedder):
    """Frame-level ONNX ReID model; per-frame L2-normalised features averaged, re-normalised.

    The model must take one (B, 3, H, W) float32 input and return (B, D) features. Models exported
    with a fixed batch of 1 (common for ReID ONNX exports) are run frame by frame.
    """

    path: str = ""
    device: str = "cpu"
    frame_norm: bool = True

    def __post_init__(self) -> None:
        self.session = onnx_session(self.path, self.device)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        if isinstance(shape[2], int) and isinstance(shape[3], int):
            if (shape[2], shape[3]) != (self.preprocess.height, self.preprocess.width):
                self.preprocess = CropPreprocess(**{**self.preprocess.to_dict(),
                                                    "height": shape[2], "width": shape[3]})
        out_shape = self.session.get_outputs()[0].shape
        if isinstance(out_shape[-1], int):
            self.dim = out_shape[-1]
        else:
            self.dim = int(self._run(np.zeros((1, 3, self.preprocess.height, self.preprocess.width),
                                              np.float32)).shape[-1])
        self._sha = file_sha256(self.path)

    def weights_id(self) -> str:
        return self._sha

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return run_onnx(self.session, self.input_name, batch, self.fixed_batch).reshape(len(batch), -1)

    def embed_frames(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N, D) features of single BGR crops (not normalised)."""
        if not len(crops):
            return np.zeros((0, self.dim), np.float32)
        return self._run(self.preprocess(crops)).astype(np.float32)

    def embed_crops(self, crops, cameras=None, skeletons=None) -> np.ndarray:
        flat = [c for item in crops for c in item]
        if any(len(item) == 0 for item in crops):
            raise ValueError("every item needs at least one crop")
        feats = self.embed_frames(flat)
        if self.frame_norm:
            feats = l2_normalize(feats)
        out, s = np.empty((len(crops), self.dim), np.float32), 0
        for i, item in enumerate(crops):
            out[i] = feats[s : s + len(item)].mean(0)
            s += len(item)
        return l2_normalize(out)


@EMBEDDERS.register("onnx", help="ONNX image ReID model, mean-pooled over crops")
def _make_onnx(arg: str | None, device: str = "cpu", **options: Any) -> OnnxEmbedder:
    name = arg or "osnet_x0_25_msmt17"
    path = resolve_weights(name, "ReID weights")
    pre = options.pop("preprocess", None)
    pre = CropPreprocess.from_dict(pre) if isinstance(pre, dict) else (pre or CropPreprocess())
    return OnnxEmbedder(spec=f"onnx:{name}", preprocess=pre, path=str(path), device=device,
                        max_frames=options.pop("max_frames", 16), **options)
