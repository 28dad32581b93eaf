"""The embedder contract: a tracklet's crops (and optional skeletons) in, one vector out.

This module is the contract only; the back-ends live in :mod:`csip_reid.pipeline.embed` and are
built with :func:`csip_reid.pipeline.embed.create_embedder`. Every embedder declares its preprocessing (:class:`CropPreprocess`) and a fingerprint of its
weights + preprocessing. The gallery stores that fingerprint, so a gallery built with one embedder
can never be searched with vectors of another (index and query cannot disagree).

Specs (``--embedder``):
    * ``onnx:PATH_OR_NAME`` any ONNX person-ReID model (``onnx:osnet_x0_25_msmt17``).
    * ``csip:CHECKPOINT`` a CSIP-ReID checkpoint trained with ``reid train``.
    * ``skeleton:CHECKPOINT`` the skeleton encoder of such a checkpoint alone (needs ``--pose``).
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image

from csip_reid.core.arrays import l2_normalize
from csip_reid.core.pooling import CropPooling
from csip_reid.core.registry import Registry
from csip_reid.core.tracklet import Tracklet

__all__ = ["EMBEDDERS", "IMAGENET_MEAN", "IMAGENET_STD", "CropPooling", "CropPreprocess", "Embedder", "l2_normalize"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_INTERP = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC, "nearest": cv2.INTER_NEAREST,
           "area": cv2.INTER_AREA}


@dataclass(frozen=True)
class CropPreprocess:
    """How a person crop becomes a network input.

    Attributes:
        height: Input height in pixels.
        width: Input width in pixels.
        mean: Per-channel mean, after scaling, in the model's channel order.
        std: Per-channel std.
        rgb: True if the model takes RGB (crops arrive as OpenCV BGR).
        scale: Multiplier applied to uint8 pixels before mean/std (1/255 for most models).
        interpolation: Resize filter: bilinear, bicubic, nearest or area (OpenCV), or pil_bilinear
            (PIL's bilinear, antialiased when shrinking: what CSIP-ReID's loaders use).
    """

    height: int = 256
    width: int = 128
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    rgb: bool = True
    scale: float = 1.0 / 255.0
    interpolation: str = "bilinear"

    def __call__(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """BGR uint8 crops → (N, 3, H, W) float32 batch."""
        # resize one by one (sizes differ), then convert the whole batch at once: a few large
        # numpy operations instead of several small ones per crop
        batch = np.empty((len(crops), self.height, self.width, 3), np.uint8)
        size = (self.width, self.height)
        if self.interpolation == "pil_bilinear":  # per-channel filter: BGR order does not matter
            for i, crop in enumerate(crops):
                batch[i] = np.asarray(Image.fromarray(np.ascontiguousarray(crop)).resize(size, Image.Resampling.BILINEAR))
        else:
            interp = _INTERP[self.interpolation]
            for i, crop in enumerate(crops):
                batch[i] = cv2.resize(crop, size, interpolation=interp)
        if self.rgb:
            batch = batch[..., ::-1]
        mean = np.asarray(self.mean, np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(self.std, np.float32).reshape(1, 3, 1, 1)
        out = batch.transpose(0, 3, 1, 2).astype(np.float32, order="C")
        out *= np.float32(self.scale)
        out -= mean
        out /= std
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CropPreprocess:
        d = dict(d)
        for k in ("mean", "std"):
            if k in d:
                d[k] = tuple(float(x) for x in d[k])
        return cls(**d)


@dataclass
class Embedder(ABC):
    """Base class of tracklet embedders.

    Subclasses set ``dim`` and ``preprocess`` and implement :meth:`embed_crops`.
    """

    spec: str
    dim: int = 0
    preprocess: CropPreprocess = field(default_factory=CropPreprocess)
    #: The embedder cannot work without skeletons (e.g. the skeleton-only embedder).
    needs_skeleton: bool = False
    #: Skeleton format the model was trained on (None: uses no skeletons).
    skeleton_format: str | None = None
    #: Max crops per tracklet the embedder looks at (evenly spread), None = all.
    max_frames: int | None = None
    #: Which crops count and how they are pooled (:mod:`csip_reid.core.pooling`).
    pooling: CropPooling = field(default_factory=CropPooling)

    @abstractmethod
    def embed_crops(
        self,
        crops: Sequence[Sequence[np.ndarray]],
        cameras: Sequence[int | None] | None = None,
        skeletons: Sequence[np.ndarray | None] | None = None,
    ) -> np.ndarray:
        """Embed N items, each a sequence of BGR crops, into (N, dim) L2-normalised float32."""

    def weights_id(self) -> str:
        """Identity of the weights (e.g. their SHA-256); part of the fingerprint."""
        return ""

    def frame_features(self, crops: Sequence[np.ndarray]) -> np.ndarray | None:
        """(N, D) features of single crops, as the model pools them (L2-normalised per crop unless the
        model says otherwise); None for models that embed whole clips."""
        return None

    def pool_frames(self, items: Sequence[Sequence[np.ndarray]]) -> np.ndarray | None:
        """(N, dim) pooled vectors of a frame-level model: each item's per-crop features (summed
        with their mirror images' under ``pooling.flip``) averaged; None for clip models."""
        flat = [c for item in items for c in item]
        if any(len(item) == 0 for item in items):
            raise ValueError("every item needs at least one crop")
        if not flat:
            return np.zeros((0, self.dim), np.float32)
        feats = self.frame_features(flat)
        if feats is None:
            return None
        if self.pooling.flip:
            feats = feats + self.frame_features([np.ascontiguousarray(c[:, ::-1]) for c in flat])
        out, s = np.empty((len(items), feats.shape[1]), np.float32), 0
        for i, item in enumerate(items):
            out[i] = feats[s : s + len(item)].mean(0)
            s += len(item)
        return l2_normalize(out)

    def use_recorded_pooling(self, recorded: dict[str, Any]) -> None:
        """Pool as a gallery's recorded ``describe()`` says (no ``pooling`` entry: plain mean), so a
        gallery keeps the pooling it was built with whatever today's default is."""
        self.pooling = CropPooling.from_dict(recorded.get("pooling"))

    def describe(self) -> dict[str, Any]:
        """What identifies this embedder's vector space (stored in gallery manifests)."""
        return {
            "kind": type(self).__name__,
            "spec": self.spec,
            "dim": self.dim,
            "weights": self.weights_id(),
            "preprocess": self.preprocess.to_dict(),
            "skeleton_format": self.skeleton_format,
            "max_frames": self.max_frames,
            **({} if self.pooling.is_mean else {"pooling": self.pooling.to_dict()}),
        }

    def fingerprint(self) -> str:
        """Short hash of everything that defines the vector space (spec path excluded)."""
        d = self.describe()
        d.pop("spec", None)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def embed_tracklets(self, tracklets: Sequence[Tracklet], batch_size: int = 64) -> np.ndarray:
        """Embed tracklets from their sampled crops (chosen and pooled as ``pooling`` says); also
        sets ``tracklet.embedding``."""
        if not tracklets:
            return np.zeros((0, self.dim), np.float32)
        out = []
        for s in range(0, len(tracklets), batch_size):
            chunk = tracklets[s : s + batch_size]
            crops, skels = [], []
            for t in chunk:
                idx = self.pooling.select(t, self.max_frames)
                crops.append([t.crops[i] for i in idx])
                skels.append(None if t.skeleton is None else t.skeleton[idx])
            cams = [t.camera_index for t in chunk]
            out.append(self.embed_crops(crops, cams, skels))
        emb = np.concatenate(out, 0)
        for t, e in zip(tracklets, emb):
            t.embedding = e
        return emb


EMBEDDERS: Registry[Embedder] = Registry("embedder")

