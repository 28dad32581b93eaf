"""How an embedder turns a tracklet's crops into one vector: which crops count, and how much.

``mean`` (what csip-reid 0.x did, and what a gallery that records no pooling was built with):
every sampled crop counts the same. ``quality``: crops that probably show someone else or part of
the person are left out before pooling:

* **crowd**: other tracked people's boxes cover more than ``max_overlap`` of the crop's box;
* **edge**: the box touches the frame edge (the person is cut off);
* **small**: the box is shorter than ``min_height`` times the tracklet's median box height (a
  partial detection, or the person far away);
* **unsure**: the detector's confidence is below ``min_score`` times the tracklet's best.

Every threshold is relative to the tracklet itself or a share of a box, so none depends on the
detector's or the ReID model's scale. At least ``min_crops`` crops are always kept (the best by
the product of the four facts) so a tracklet that is bad everywhere still gets a vector. ``flip``
adds each crop's mirror image to the pooled features (frame-level models only). Crops without these
facts (a folder of crops, a dataset) are judged by none of them: all count.

The pooling is part of the embedder's ``describe()`` (so of its fingerprint) whenever it is not
plain ``mean``: index and query pool the same way, and galleries keep what they were built with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from csip_reid.core.arrays import evenly_spaced_indices
from csip_reid.core.tracklet import Tracklet

POOLING_KINDS = ("mean", "quality")
#: The checks of ``quality`` pooling, by name.
CHECKS = ("crowd", "edge", "small", "unsure")


@dataclass(frozen=True)
class CropPooling:
    """How a tracklet's crops are chosen and pooled (see the module docstring).

    Attributes:
        kind: ``mean`` (all crops) or ``quality`` (bad crops left out).
        flip: Average each crop's features with its mirror image's.
        min_crops: Least crops kept per tracklet under ``quality``.
        max_overlap: Largest share of a box other people may cover.
        min_height: Least box height, relative to the tracklet's median.
        min_score: Least detector confidence, relative to the tracklet's best.
        edge: Leave out boxes that touch the frame edge.
    """

    kind: str = "mean"
    flip: bool = False
    min_crops: int = 4
    max_overlap: float = 0.3
    min_height: float = 0.7
    min_score: float = 0.5
    edge: bool = True

    def __post_init__(self) -> None:
        if self.kind not in POOLING_KINDS:
            raise ValueError(f"unknown pooling {self.kind!r}; choose one of {', '.join(POOLING_KINDS)}")
        if self.min_crops < 1:
            raise ValueError("pooling min_crops must be >= 1")

    @property
    def is_mean(self) -> bool:
        """Plain mean pooling (recorded as no pooling at all)."""
        return self.kind == "mean" and not self.flip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> CropPooling:
        """From :meth:`to_dict` (unknown keys ignored); None or empty = ``mean``."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (d or {}).items() if k in names})

    @classmethod
    def parse(cls, text: str) -> CropPooling:
        """``mean``, ``quality``, ``mean+flip`` or ``quality+flip``; ``quality:edge,small`` applies
        only the checks named (``crowd``, ``edge``, ``small``, ``unsure``)."""
        base, _, extra = text.strip().lower().partition("+")
        kind, _, only = base.partition(":")
        if extra not in ("", "flip") or (only and kind != "quality"):
            raise ValueError(f"unknown pooling {text!r}; use mean, quality, mean+flip or quality+flip")
        out = cls(kind=kind, flip=extra == "flip")
        if only:
            checks = set(only.split(","))
            if not checks <= set(CHECKS):
                raise ValueError(f"unknown pooling check in {text!r}; choose from {', '.join(CHECKS)}")
            off = {"crowd": {"max_overlap": 1.0}, "edge": {"edge": False}, "small": {"min_height": 0.0},
                   "unsure": {"min_score": 0.0}}
            out = replace(out, **{k: v for c in CHECKS if c not in checks for k, v in off[c].items()})
        return out

    @property
    def name(self) -> str:
        checks = ""
        if self.kind == "quality":
            on = [c for c, v in zip(CHECKS, (self.max_overlap < 1.0, self.edge, self.min_height > 0,
                                             self.min_score > 0), strict=True) if v]
            checks = "" if len(on) == len(CHECKS) else ":" + ",".join(on)
        return self.kind + checks + ("+flip" if self.flip else "")

    # -- choosing crops ---------------------------------------------------------------------
    def quality(self, t: Tracklet) -> tuple[np.ndarray, np.ndarray]:
        """``(good (S,) bool, score (S,) float)`` of each sampled crop of ``t``."""
        s = len(t.crops)
        good, score = np.ones(s, bool), np.ones(s, np.float64)
        if s == 0:
            return good, score
        if t.sample_overlap is not None:
            good &= t.sample_overlap <= self.max_overlap
            score *= 1.0 - np.clip(t.sample_overlap, 0.0, 1.0)
        if t.sample_cut is not None and self.edge:
            good &= ~t.sample_cut
            score *= np.where(t.sample_cut, 0.5, 1.0)
        if t.sample_boxes is not None and len(t.sample_boxes) == s:
            h = (t.sample_boxes[:, 3] - t.sample_boxes[:, 1]).astype(np.float64)
            rel = h / max(float(np.median(h)), 1e-6)
            good &= rel >= self.min_height
            score *= np.minimum(rel, 1.0)
        if t.sample_scores is not None and np.isfinite(t.sample_scores).any():
            conf = np.nan_to_num(t.sample_scores.astype(np.float64), nan=float(np.nanmedian(t.sample_scores)))
            rel = conf / max(float(conf.max()), 1e-6)
            good &= rel >= self.min_score
            score *= rel
        return good, score

    def select(self, t: Tracklet, max_frames: int | None) -> np.ndarray:
        """Indices of the crops of ``t`` to embed: at most ``max_frames``, evenly spread in time."""
        n = len(t.crops)
        if n == 0:
            raise ValueError("a tracklet needs at least one crop")
        keep = np.arange(n)
        if self.kind == "quality":
            good, score = self.quality(t)
            need = min(self.min_crops, n)
            if good.sum() >= need:
                keep = np.flatnonzero(good)
            else:  # the best `need` crops, in time order
                keep = np.sort(np.argsort(-score, kind="stable")[:need])
        pick = evenly_spaced_indices(len(keep), min(len(keep), max_frames or len(keep)))
        return keep[pick]


#: The pooling new galleries get (chosen by measurement: bench/README.md, "Crop pooling"): bad crops
#: left out costs nothing; mirror images double the embedding time for a few tenths of a mAP point.
DEFAULT_POOLING = CropPooling(kind="quality")


def as_pooling(value: CropPooling | str | dict[str, Any] | None) -> CropPooling:
    """A :class:`CropPooling` from itself, its name (``quality+flip``), its dict, or None (the default)."""
    if value is None:
        return DEFAULT_POOLING
    if isinstance(value, CropPooling):
        return value
    if isinstance(value, str):
        return CropPooling.parse(value)
    return CropPooling.from_dict(value)
