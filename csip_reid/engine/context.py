"""Shared training plumbing: run context, JSONL log, seeding, AMP, batch transfer."""

from __future__ import annotations

import json
import logging
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csip_reid.data import VideoReIDDataset
from csip_reid.models.config import CSIPConfig

log = logging.getLogger("csip_reid.train")


class JsonlLog:
    """Append-only JSON-lines log (``log.jsonl``): one object per line, with a wall-clock ``time``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, record: dict[str, Any]) -> None:
        rec = {"time": round(time.time(), 3), **record}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")


class Meter:
    """Running means of named scalars (loss terms) over a window."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.n = 0

    def add(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] += float(v)
        self.n += 1

    def means(self) -> dict[str, float]:
        return {k: v / max(self.n, 1) for k, v in self.sums.items()}


@dataclass
class TrainContext:
    """Everything a stage loop needs.

    Attributes:
        cfg: Resolved config (num_cameras = the dataset's).
        dataset: The dataset.
        output: Run folder.
        device: Torch device.
        max_steps: Cap on iterations per epoch (smoke runs), None = full epochs.
        progress: Show tqdm progress bars.
    """

    cfg: CSIPConfig
    dataset: VideoReIDDataset
    output: Path
    device: torch.device
    max_steps: int | None = None
    progress: bool = True
    logger: JsonlLog = field(init=False)

    def __post_init__(self) -> None:
        self.logger = JsonlLog(self.output / "log.jsonl")

    @property
    def amp(self) -> bool:
        """Mixed precision: CUDA only, and only when the config asks for it."""
        return self.cfg.run.amp and self.device.type == "cuda"

    def autocast(self) -> torch.autocast:
        return torch.autocast(device_type=self.device.type, dtype=torch.float16, enabled=self.amp)

    def grad_scaler(self) -> torch.amp.GradScaler:
        return torch.amp.GradScaler(self.device.type, enabled=self.amp)

    def loader_kwargs(self) -> dict[str, Any]:
        """Input-size / normalisation arguments shared by the train and test loaders."""
        i = self.cfg.input
        return {"seq_len": i.seq_len, "height": i.height, "width": i.width, "mean": i.mean, "std": i.std,
                "num_workers": self.cfg.run.num_workers}

    def to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices).

    The loops reseed at the start of every epoch from ``(run seed, stage, epoch)`` and rebuild the
    loaders with a per-epoch seed, so an epoch's randomness does not depend on what ran before:
    a resumed run repeats an uninterrupted one without storing generator states.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(cfg: CSIPConfig, stage: int, epoch: int) -> int:
    """The seed of one epoch of one stage."""
    return cfg.run.seed + 100_003 * stage + epoch


@contextmanager
def timed() -> Iterator[dict[str, float]]:
    """``with timed() as t: ...`` then ``t["s"]`` holds the elapsed seconds."""
    t0 = time.perf_counter()
    out: dict[str, float] = {}
    try:
        yield out
    finally:
        out["s"] = time.perf_counter() - t0
