"""The ``csip:`` embedder on real mini-MARS crops, with a randomly initialised csip_tiny checkpoint."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from csip_reid.core.errors import CheckpointError, ConfigError, WeightsNotFoundError
from csip_reid.core.tracklet import Tracklet
from csip_reid.core.weights import file_sha256
from csip_reid.data import build_dataset
from csip_reid.data.sampling import rrs_test_indices
from csip_reid.engine.context import TrainContext
from csip_reid.engine.stage2 import extract_features
from csip_reid.models import create_model
from csip_reid.models.checkpoint import save_checkpoint
from csip_reid.pipeline.embed import create_embedder
from csip_reid.pipeline.embed.csip import CSIPEmbedder


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    torch.manual_seed(0)
    model = create_model("csip_tiny", num_classes=16, num_cameras=6)
    d = tmp_path_factory.mktemp("ckpt")
    s1 = save_checkpoint(d / "stage1.pt", model, stage=1, epoch=2, stage_complete=True, skeleton_format="h36m17-3d")
    model.pfu.set_prototypes(torch.randn(16, 32), torch.randn(16, 32))
    s2 = save_checkpoint(d / "best.pt", model, stage=2, epoch=2, stage_complete=True, skeleton_format="h36m17-3d",
                         metrics={"mAP": 0.5})
    return {"stage1": s1, "stage2": s2}


@pytest.fixture(scope="module")
def embedder(ckpts: dict[str, Path]) -> CSIPEmbedder:
    emb = create_embedder(f"csip:{ckpts['stage2']}")
    assert isinstance(emb, CSIPEmbedder)
    return emb


def _crops(mini_mars: Path, n_items: int, n_crops: list[int]) -> tuple[list[list[np.ndarray]], list]:
    ds = build_dataset("minimars", str(mini_mars))
    recs = ds.query[:n_items]
    return [[cv2.imread(f) for f in r.frames[:k]] for r, k in zip(recs, n_crops, strict=True)], recs


def test_embedder_declares_the_checkpoint(embedder: CSIPEmbedder, ckpts: dict[str, Path]) -> None:
    assert embedder.dim == 2 * 64 + 32
    assert embedder.max_frames == 4
    assert (embedder.preprocess.height, embedder.preprocess.width) == (64, 32)
    assert embedder.preprocess.mean == pytest.approx((0.485, 0.456, 0.406))
    assert embedder.skeleton_format == "h36m17-3d" and embedder.needs_skeleton is False
    assert embedder.weights_id() == file_sha256(ckpts["stage2"])
    d = embedder.describe()
    assert d["dim"] == 160 and d["weights"] == file_sha256(ckpts["stage2"])
    assert len(embedder.fingerprint()) == 16


def test_embeds_real_tracklets_into_unit_vectors(embedder: CSIPEmbedder, mini_mars: Path) -> None:
    crops, _ = _crops(mini_mars, 3, [9, 2, 1])  # more than, fewer than, and a single crop vs T=4
    out = embedder.embed_crops(crops, [0, 3, None])
    assert out.shape == (3, 160) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert len({tuple(np.round(r, 4)) for r in out}) == 3
    assert embedder.embed_crops([]).shape == (0, 160)
    with pytest.raises(ValueError):
        embedder.embed_crops([[]])


def test_unknown_camera_uses_the_mean_embedding(embedder: CSIPEmbedder, mini_mars: Path) -> None:
    crops, _ = _crops(mini_mars, 1, [4])
    item = crops * 4
    out = embedder.embed_crops(item, [None, 99, -1, 2])
    assert np.allclose(out[0], out[1], atol=1e-6) and np.allclose(out[0], out[2], atol=1e-6)
    assert not np.allclose(out[0], out[3], atol=1e-4)
    assert np.allclose(embedder.embed_crops(crops)[0], out[0], atol=1e-6)


def test_matches_the_training_evaluation_path(embedder: CSIPEmbedder, mini_mars: Path, tmp_path: Path) -> None:
    """Index/query embeddings equal the features the trainer evaluates with (same frames)."""
    ds = build_dataset("minimars", str(mini_mars))
    recs = ds.query[:4]
    cfg = embedder.model.cfg
    ctx = TrainContext(cfg, ds, tmp_path, torch.device("cpu"), progress=False)
    want = extract_features(ctx, embedder.model, recs)
    crops = [[cv2.imread(r.frames[i]) for i in rrs_test_indices(len(r), cfg.input.seq_len)] for r in recs]
    got = embedder.embed_crops(crops, [r.camid for r in recs])
    assert np.allclose(got, want, atol=1e-4)


def test_embed_tracklets_sets_embeddings(embedder: CSIPEmbedder, mini_mars: Path) -> None:
    crops, _ = _crops(mini_mars, 2, [6, 3])
    tracks = []
    for i, c in enumerate(crops):
        n = len(c)
        tracks.append(Tracklet("v.mp4", "cam", i, np.arange(n), np.arange(n) / 10.0, np.zeros((n, 4)),
                               sample_frames=np.arange(n), crops=c, camera_index=i))
    emb = embedder.embed_tracklets(tracks)
    assert emb.shape == (2, 160)
    assert all(np.array_equal(t.embedding, e) for t, e in zip(tracks, emb, strict=True))


def test_refuses_wrong_checkpoints(ckpts: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="stage-1"):
        create_embedder(f"csip:{ckpts['stage1']}")
    torch.save(create_model("csip_tiny", num_classes=3).state_dict(), tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="bare state_dict"):
        create_embedder(f"csip:{tmp_path / 'bare.pt'}")
    with pytest.raises(ConfigError, match="checkpoint"):
        create_embedder("csip")
    with pytest.raises(WeightsNotFoundError):
        create_embedder(f"csip:{tmp_path / 'missing.pt'}")
