"""``onnx:`` embedder: any ONNX person-ReID image model, pooled over a tracklet's crops.

Which crops count and how they are pooled is the embedder's ``pooling`` (:mod:`csip_reid.core.pooling`;
default ``quality``, option ``pooling=`` of :func:`~csip_reid.pipeline.embed.create_embedder`).

A file written by ``reid export-onnx`` (``metadata_props["csip_reid.format"]`` =
``csip-reid/onnx-clip-v1``) is a *clip* model instead: it takes ``(B, T, 3, H, W)`` clips and
``(B,)`` camera indices and returns one vector per clip. Its preprocessing and ``T`` are read from
the metadata, each tracklet is resampled to exactly ``T`` evenly spread crops (as the ``csip:``
embedder does), and the camera index follows the ``csip:`` rule (unknown → ``-1``, the mean SIE
embedding). The fingerprint follows the usual rule: the file's SHA-256 plus that preprocessing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from csip_reid.core.arrays import evenly_spaced_indices
from csip_reid.core.embedder import EMBEDDERS, CropPreprocess, Embedder, l2_normalize
from csip_reid.core.errors import WeightsNotFoundError
from csip_reid.core.onnx import CLIP_ONNX_FORMAT, onnx_session, run_onnx
from csip_reid.core.pooling import as_pooling
from csip_reid.core.weights import KNOWN_WEIGHTS, file_sha256, resolve_weights

#: Crops per forward pass of a model with a dynamic batch. A video's tracklets are embedded
#: together (6 x 16 crops on the Intel clip); one pass over all 96 cost OSNet x0.5 1.3x the time
#: per crop of passes of 8, the Intel models the same (bench/README.md, "Models").
MAX_BATCH = 8


@dataclass
class OnnxEmbedder(Embedder):
    """Frame-level ONNX ReID model; per-frame L2-normalised features pooled (``pooling``), re-normalised.

    The model must take one (B, 3, H, W) float32 input and return (B, D) features. Models exported
    with a fixed batch of 1 (common for ReID ONNX exports) are run frame by frame.
    """

    path: str = ""
    device: str = "cpu"
    frame_norm: bool = True
    #: Set from the file: a ``reid export-onnx`` clip model (see the module docstring).
    clip_model: bool = False
    num_cameras: int = 0

    def __post_init__(self) -> None:
        self.session = onnx_session(self.path, self.device)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape
        self.fixed_batch = shape[0] if isinstance(shape[0], int) else None
        meta = self.session.get_modelmeta().custom_metadata_map or {}
        self.clip_model = meta.get("csip_reid.format") == CLIP_ONNX_FORMAT
        if self.clip_model:
            self._init_clip(meta)
            self._sha = file_sha256(self.path)
            self.pooling = replace(self.pooling, flip=False)  # a clip model sees whole clips, not mirrored frames
            return
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

    def _init_clip(self, meta: dict[str, str]) -> None:
        """Settings of a ``reid export-onnx`` file, from its metadata."""
        try:
            self.preprocess = CropPreprocess.from_dict(json.loads(meta["csip_reid.preprocess"]))
            self.max_frames = int(meta["csip_reid.seq_len"])
            self.dim = int(meta["csip_reid.feature_dim"])
            self.num_cameras = int(meta.get("csip_reid.num_cameras", "0"))
        except (KeyError, ValueError, TypeError) as e:
            raise WeightsNotFoundError(f"{self.path}: incomplete csip-reid ONNX metadata ({e})") from e
        self.skeleton_format = meta.get("csip_reid.skeleton_format") or None
        self.frame_norm = False

    def weights_id(self) -> str:
        return self._sha

    def _embed_clips(self, crops: Sequence[Sequence[np.ndarray]], cameras: Sequence[int | None] | None) -> np.ndarray:
        t, p = int(self.max_frames or 1), self.preprocess
        cams = [-1 if c is None else int(c) for c in (cameras or [None] * len(crops))]
        if len(cams) != len(crops):
            raise ValueError(f"{len(crops)} items but {len(cams)} cameras")
        cams_arr = np.array([c if 0 <= c < self.num_cameras else -1 for c in cams], np.int64)
        step = self.fixed_batch or 32
        out = []
        for s in range(0, len(crops), step):
            chunk = crops[s : s + step]
            frames = [item[i] for item in chunk for i in evenly_spaced_indices(len(item), t)]
            clips = p(frames).reshape(len(chunk), t, 3, p.height, p.width)
            cam = cams_arr[s : s + step]
            n = len(chunk)
            if self.fixed_batch and n < self.fixed_batch:  # pad by repeating the last clip, then trim
                pad = self.fixed_batch - n
                clips = np.concatenate([clips, np.repeat(clips[-1:], pad, 0)])
                cam = np.concatenate([cam, np.repeat(cam[-1:], pad, 0)])
            res = self.session.run(None, {self.input_name: clips, self.session.get_inputs()[1].name: cam})[0]
            out.append(res[:n].astype(np.float32))
        return l2_normalize(np.concatenate(out, 0))

    def _run(self, batch: np.ndarray) -> np.ndarray:
        return run_onnx(self.session, self.input_name, batch, self.fixed_batch, MAX_BATCH).reshape(len(batch), -1)

    def embed_frames(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N, D) features of single BGR crops (not normalised)."""
        if not len(crops):
            return np.zeros((0, self.dim), np.float32)
        return self._run(self.preprocess(crops)).astype(np.float32)

    def frame_features(self, crops: Sequence[np.ndarray]) -> np.ndarray | None:
        if self.clip_model:
            return None
        feats = self.embed_frames(crops)
        return l2_normalize(feats) if self.frame_norm else feats

    def embed_crops(self, crops, cameras=None, skeletons=None) -> np.ndarray:
        if any(len(item) == 0 for item in crops):
            raise ValueError("every item needs at least one crop")
        if self.clip_model:
            return self._embed_clips(crops, cameras) if len(crops) else np.zeros((0, self.dim), np.float32)
        return self.pool_frames(crops)


@EMBEDDERS.register("onnx", help="ONNX image ReID model, pooled over crops")
def _make_onnx(arg: str | None, device: str = "cpu", **options: Any) -> OnnxEmbedder:
    name = arg or "osnet_x0_25_msmt17"
    path = resolve_weights(name, "ReID weights")
    info = KNOWN_WEIGHTS.get(name) or KNOWN_WEIGHTS.get(path.name)
    pre = options.pop("preprocess", None) or (info.preprocess if info else None)
    pre = CropPreprocess.from_dict(pre) if isinstance(pre, dict) else (pre or CropPreprocess())
    return OnnxEmbedder(spec=f"onnx:{name}", preprocess=pre, path=str(path), device=device,
                        max_frames=options.pop("max_frames", 16), pooling=as_pooling(options.pop("pooling", None)),
                        **options)
