"""mini-MARS with SYNTHETIC skeletons, for training tests.

mini-MARS is real RGB tracklets without any skeleton, and CSIP-ReID's stage 1 needs skeletons. This
writes a *synthetic stand-in*: per identity a fixed random 17x3 pose, plus Gaussian jitter per frame,
one JSON per frame in the CSIP layout. It is labelled ``synthetic`` everywhere (file folder, record
names); it only gives the contrastive loss an identity signal to learn, it is not a real pose.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from csip_reid.data import SequenceRecord, VideoReIDDataset, build_dataset
from csip_reid.data.skeleton_io import write_skeleton_json


def minimars_with_synthetic_skeletons(mini_mars: Path, out: Path, seed: int = 0,
                                      jitter: float = 0.1) -> VideoReIDDataset:
    """mini-MARS whose train tracklets carry synthetic per-identity skeletons (see module docstring)."""
    ds = build_dataset("minimars", str(mini_mars))
    rng = np.random.default_rng(seed)
    poses = rng.normal(size=(ds.num_train_pids, 17, 3)).astype(np.float32)
    poses -= poses[:, :1]  # root-centred like real data
    folder = out / "synthetic_skeletons"
    train = []
    for rec in ds.train:
        paths = []
        for i in range(len(rec.frames)):
            p = folder / rec.name / f"{i:04d}.json"
            if not p.exists():
                frame = poses[rec.pid] + jitter * rng.normal(size=(17, 3))
                frame[0] = 0.0
                write_skeleton_json(p, frame, "h36m17-3d")
            paths.append(str(p))
        train.append(SequenceRecord(rec.frames, rec.pid, rec.camid, paths, f"{rec.name}_synthetic"))
    return VideoReIDDataset(f"{ds.name}-synthetic-skeletons", train, ds.query, ds.gallery,
                            ds.num_train_pids, ds.num_cameras, "h36m17-3d")


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """Run csip_tiny single-threaded: its ops are too small for intra-op threads to pay off (on a
    busy 2-core machine two OpenMP threads made each training step about 5x slower than one).
    Import it into a test module (or a conftest) to apply it there."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
